//! What an endpoint saw on each connection (the impartial witness), and the shared log that collects it.

use std::collections::{BTreeMap, VecDeque};
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
    /// The connections in `done`, in the order they finished; the first finished as number
    /// `finished - order.len()` (0-based), so a reader can take only what is new.
    order: VecDeque<u32>,
    /// Connections ever finished, kept or not.
    finished: u64,
    errors: Vec<String>,
    /// The most transcripts (and errors) kept; `None` keeps them all. A run's witness needs
    /// every connection of an attempt; a long-lived `serve` keeps only the latest.
    capacity: Option<usize>,
}

impl LogState {
    fn record(&mut self, connection: u32, transcript: Transcript) {
        if self.done.insert(connection, transcript).is_none() {
            self.order.push_back(connection);
        }
        self.finished += 1;
        self.trim();
    }

    fn trim(&mut self) {
        let Some(capacity) = self.capacity else {
            return;
        };
        while self.order.len() > capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.done.remove(&oldest);
            }
        }
        if self.errors.len() > capacity {
            let excess = self.errors.len() - capacity;
            self.errors.drain(..excess);
        }
    }
}

/// The connections finished after a cursor ([`TranscriptLog::since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptsSince {
    /// Connections finished after the cursor whose transcripts are no longer kept.
    pub skipped: u64,
    /// The kept transcripts finished after the cursor, in the order they finished.
    pub transcripts: Vec<Transcript>,
    /// The cursor for the next call: the number of connections ever finished.
    pub next: u64,
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

    /// Keep at most the latest `capacity` transcripts (and endpoint errors) from now on.
    pub fn set_capacity(&self, capacity: usize) {
        let mut state = self.lock();
        state.capacity = Some(capacity);
        state.trim();
    }

    /// The connections finished since `cursor` (a previous [`TranscriptsSince::next`], or 0),
    /// in the order they finished: only those are copied, so polling an idle log costs nothing.
    pub fn since(&self, cursor: u64) -> TranscriptsSince {
        let state = self.lock();
        let next = state.finished;
        let first = next - state.order.len() as u64;
        let from = cursor.clamp(first, next);
        let skip = usize::try_from(from - first).unwrap_or(usize::MAX);
        TranscriptsSince {
            skipped: from.saturating_sub(cursor.min(next)),
            transcripts: state
                .order
                .iter()
                .skip(skip)
                .filter_map(|c| state.done.get(c).cloned())
                .collect(),
            next,
        }
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
        let mut state = self.lock();
        state.errors.push(error);
        state.trim();
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
        self.log.lock().record(self.connection, transcript);
        self.finished = true;
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if !self.finished {
            let mut t = Transcript::new(self.connection);
            t.end = "aborted".into();
            self.log.lock().record(self.connection, t);
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
        // Readers get connections in the order they finished.
        let order: Vec<u32> = log.since(0).transcripts.iter().map(|t| t.connection).collect();
        assert_eq!(order, [2, 1]);
    }

    #[test]
    fn a_bounded_log_keeps_the_latest_and_readers_take_only_what_is_new() {
        let log = TranscriptLog::default();
        log.set_capacity(2);
        for _ in 0..5 {
            let guard = log.begin();
            let mut t = Transcript::new(guard.connection());
            t.end = "quit".into();
            guard.finish(t);
            log.record_error("accept failed".into());
        }
        let numbers = |t: &[Transcript]| t.iter().map(|t| t.connection).collect::<Vec<_>>();
        assert_eq!(numbers(&log.transcripts()), [4, 5]);
        assert_eq!(log.errors().len(), 2);
        let s = log.since(0);
        assert_eq!((s.skipped, numbers(&s.transcripts), s.next), (3, vec![4, 5], 5));
        let idle = log.since(s.next);
        assert_eq!((idle.skipped, idle.transcripts.len(), idle.next), (0, 0, 5));
        // Unbounded (a run): everything stays.
        let all = TranscriptLog::default();
        for _ in 0..100 {
            drop(all.begin());
        }
        assert_eq!(all.transcripts().len(), 100);
    }
}
