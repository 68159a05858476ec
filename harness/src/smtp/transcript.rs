//! What an endpoint saw on each connection (the impartial witness), and the shared log that collects it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::activity::Activity;

/// The record of one accepted connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transcript {
    /// 1, 2, ... in accept order (per log; one log per endpoint).
    pub connection: u32,
    /// The domain of the latest EHLO or HELO (after STARTTLS the client must greet again, RFC 3207 §4.2).
    pub ehlo: Option<String>,
    /// STARTTLS appeared in at least one EHLO reply.
    pub starttls_offered: bool,
    /// The client sent STARTTLS and the endpoint answered 220.
    pub starttls_used: bool,
    /// The server name of the ClientHello, recorded even when the handshake then failed (DESIGN: `SNI(h)`).
    pub client_hello_sni: Option<String>,
    /// Set when a handshake completed.
    pub tls: Option<TlsInfo>,
    /// The alert the client sent (e.g. "AccessDenied", "BadCertificate"; "CloseNotify" when it closed cleanly right
    /// after the handshake), or "closed without alert" when it dropped during or just after the handshake.
    pub client_alert: Option<String>,
    /// The first MAIL command seen, whatever the reply (the witness cares what the client revealed).
    pub mail_from: Option<MailFrom>,
    /// Every recipient answered with 250, in order.
    pub rcpt_to: Vec<String>,
    /// Hash of the first accepted message (see [`super::body_sha256`]).
    pub body_sha256: Option<String>,
    /// Hashes of every accepted message, in order (a client may send several per connection).
    pub accepted_messages: Vec<String>,
    /// A message was accepted (250 after the final ".").
    pub accepted: bool,
    /// The client sent QUIT.
    pub quit: bool,
    /// The code of the first 4xx/5xx reply the scenario scripted and the endpoint sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scripted_refusal: Option<u16>,
    /// Compact protocol log: "C: EHLO client.test", "S: 250", "TLS: TLSv1.3 sni=mx1.example.test", ...
    pub events: Vec<String>,
    /// How the connection ended: "quit", "client closed", "timeout", "line too long", "too many errors",
    /// "pipelined after STARTTLS", "tls handshake failed", "tls error", "message too big", "write failed",
    /// "shutdown", "aborted".
    pub end: String,
}

impl Transcript {
    pub(crate) fn new(connection: u32) -> Self {
        Transcript {
            connection,
            ehlo: None,
            starttls_offered: false,
            starttls_used: false,
            client_hello_sni: None,
            tls: None,
            client_alert: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            body_sha256: None,
            accepted_messages: Vec::new(),
            accepted: false,
            quit: false,
            scripted_refusal: None,
            events: Vec::new(),
            end: String::new(),
        }
    }
}

/// A completed TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub version: String,
    pub sni: Option<String>,
    /// The label of the chain presented.
    pub chain_label: String,
    /// Hex SHA-256 of each presented certificate's SPKI, leaf first.
    pub chain_spki_sha256: Vec<String>,
}

/// The envelope sender and whether it was sent inside TLS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailFrom {
    pub address: String,
    pub over_tls: bool,
}

/// Shared, cloneable log of one endpoint's transcripts.
#[derive(Clone, Default)]
pub struct TranscriptLog(Arc<LogInner>);

#[derive(Default)]
struct LogInner {
    state: Mutex<LogState>,
    /// Connections accepted but not yet finished.
    active: Activity,
}

#[derive(Default)]
struct LogState {
    next: u32,
    done: BTreeMap<u32, Transcript>,
    errors: Vec<String>,
}

impl std::fmt::Debug for TranscriptLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("TranscriptLog")
            .field("finished", &state.done.len())
            .finish_non_exhaustive()
    }
}

impl TranscriptLog {
    /// Finished connections, ordered by connection number. Connections still running are not included; call
    /// [`TranscriptLog::settle`] first.
    pub fn transcripts(&self) -> Vec<Transcript> {
        self.lock().done.values().cloned().collect()
    }

    /// Endpoint-level problems that belong to no connection (a chain that rustls refused, accept failures).
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// Waits until every accepted connection has finished, or `timeout` passes. Returns whether it settled.
    /// A connection the kernel completed but `serve` has not accepted yet is not waited for.
    pub async fn settle(&self, timeout: Duration) -> bool {
        self.0.active.settle(timeout).await
    }

    /// Registers a newly accepted connection.
    pub(crate) fn begin(&self) -> ConnectionGuard {
        let connection = {
            let mut state = self.lock();
            state.next += 1;
            state.next
        };
        self.0.active.begin();
        ConnectionGuard {
            log: self.clone(),
            connection,
            finished: false,
        }
    }

    pub(crate) fn record_error(&self, error: String) {
        self.lock().errors.push(error);
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding this lock cannot leave the map half-updated (single inserts), so a poisoned
        // lock is still safe to use.
        self.0.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps the active count right even if a session task is cancelled or panics.
pub(crate) struct ConnectionGuard {
    log: TranscriptLog,
    connection: u32,
    finished: bool,
}

impl ConnectionGuard {
    pub(crate) fn connection(&self) -> u32 {
        self.connection
    }

    pub(crate) fn finish(mut self, transcript: Transcript) {
        self.log.lock().done.insert(self.connection, transcript);
        self.finished = true;
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if !self.finished {
            let mut t = Transcript::new(self.connection);
            t.end = "aborted".into();
            self.log.lock().done.insert(self.connection, t);
        }
        self.log.0.active.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settle_waits_for_active_connections() {
        let log = TranscriptLog::default();
        assert!(log.settle(Duration::from_millis(10)).await);
        let a = log.begin();
        let b = log.begin();
        assert_eq!((a.connection(), b.connection()), (1, 2));
        assert!(!log.settle(Duration::from_millis(20)).await);
        let mut t = Transcript::new(2);
        t.end = "quit".into();
        b.finish(t);
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move { log.settle(Duration::from_secs(5)).await })
        };
        drop(a);
        assert!(waiter.await.expect("settle task does not panic"));
        let ends: Vec<_> = log.transcripts().into_iter().map(|t| (t.connection, t.end)).collect();
        assert_eq!(ends, vec![(1, "aborted".to_string()), (2, "quit".to_string())]);
    }
}
