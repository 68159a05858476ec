//! One endpoint connection: the ESMTP state machine (RFC 5321 §4.1, §4.3.2), STARTTLS (RFC 3207) and the
//! transcript it fills in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::behaviour::AfterStarttls;
use super::command::{self, Command, Param};
use super::config::EndpointConfig;
use super::line::{Line, LineIo};
use super::message::MessageSink;
use super::script::{Reply, Script, Stage};
use super::stream::{Stream, TlsFailure, classify, version_name};
use super::transcript::{MailFrom, TlsInfo, Transcript};

/// RFC 5321 §4.5.3.1.8 requires room for 100 recipients; more are refused with 452 (§4.5.3.1.10).
const MAX_RECIPIENTS: usize = 100;
/// Client mistakes (5xx replies) tolerated before the endpoint closes with 421 (Postfix: smtpd_hard_error_limit).
const MAX_ERRORS: u32 = 20;
/// Over-long lines tolerated before the endpoint closes with 421.
const MAX_LONG_LINES: u32 = 3;
/// Events one session may record (a normal delivery records about 20); past this the
/// endpoint closes with 421, so memory stays bounded and the transcript stays whole.
pub(crate) const MAX_EVENTS: usize = 10_000;
/// Longest command text copied into an event.
const EVENT_TEXT_MAX: usize = 200;
/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including its CRLF, "not counting the leading dot
/// duplicated for transparency": 998 octets of content plus that one dot.
const MAX_TEXT_LINE: usize = 998 + 1;

/// A DATA line's length as RFC 5321 §4.5.3.1.6 counts it: without the dot a client doubled for transparency (§4.5.2).
fn text_len(line: &[u8]) -> usize {
    line.len() - usize::from(line.first() == Some(&b'.'))
}

/// The TLS side of an endpoint, decided once per `serve`.
#[derive(Clone)]
pub(crate) enum TlsSetup {
    /// No chain (or a behaviour without TLS): STARTTLS is not offered.
    None,
    Ready(Arc<rustls::ServerConfig>),
    /// A chain was configured but rustls refused it (recorded in the log's errors): STARTTLS gets 454.
    Broken,
}

/// Why a connection ended (becomes `Transcript::end`).
type EndReason = &'static str;

enum Flow {
    Continue,
    Close(EndReason),
}

enum Incoming {
    Line(Vec<u8>),
    TooLong,
    End(EndReason),
}

enum Guarded<T> {
    Done(T),
    TimedOut,
    Stopped,
}

/// Runs `fut` unless the idle timeout passes or the endpoint shuts down first. `fut` is polled first, so a write
/// that can complete (the 421 sent on shutdown) does complete.
async fn guarded<F: Future>(stop: &mut watch::Receiver<bool>, idle: Duration, fut: F) -> Guarded<F::Output> {
    tokio::select! {
        biased;
        r = tokio::time::timeout(idle, fut) => match r {
            Ok(v) => Guarded::Done(v),
            Err(_) => Guarded::TimedOut,
        },
        // An error means `serve` is gone, which is a shutdown too.
        _ = stop.wait_for(|s| *s) => Guarded::Stopped,
    }
}

pub(crate) struct Session {
    io: LineIo<Stream>,
    config: Arc<EndpointConfig>,
    /// This connection's script: its own by ordinal, or the endpoint's (`EndpointConfig::sessions`).
    script: Script,
    tls: TlsSetup,
    stop: watch::Receiver<bool>,
    t: Transcript,
    greeted: bool,
    /// Some(accepted recipients) while a mail transaction is open.
    txn: Option<usize>,
    errors: u32,
    long_lines: u32,
    /// The open transaction's MAIL FROM declared BODY=8BITMIME (RFC 6152 §3).
    declared_8bit: bool,
    /// No read has completed since the handshake: in TLS 1.3 the client judges the certificate after the server
    /// finished its flight, so its verdict (alert or silent close) shows up here.
    tls_fresh: bool,
    /// A scripted 554 greeting: RFC 5321 §3.1 has the server answer 503 to everything but QUIT.
    no_service: bool,
}

impl Session {
    pub(crate) async fn run(
        tcp: TcpStream,
        config: Arc<EndpointConfig>,
        tls: TlsSetup,
        stop: watch::Receiver<bool>,
        connection: u32,
    ) -> Transcript {
        let (script, own) = config.sessions.pick(&config.script, connection);
        let script = script.clone();
        let mut s = Session {
            io: LineIo::new(Stream::Plain(tcp)),
            script,
            config,
            tls,
            stop,
            t: Transcript::new(connection),
            greeted: false,
            txn: None,
            errors: 0,
            long_lines: 0,
            declared_8bit: false,
            tls_fresh: false,
            no_service: false,
        };
        if !s.config.sessions.is_empty() {
            // Which script ran is evidence: a retry that succeeded must show it met another one.
            let whose = if own {
                format!("connection {connection}'s own")
            } else {
                "the endpoint's".to_string()
            };
            s.event(format!("S: <session script: {whose}>"));
        }
        let end = s.converse().await;
        s.t.end = end.to_string();
        // Best effort: on TLS this sends close_notify (after 221 to QUIT in particular).
        let grace = s.config.limits.idle_timeout.min(Duration::from_secs(2));
        let _ = tokio::time::timeout(grace, tokio::io::AsyncWriteExt::shutdown(s.io.get_mut())).await;
        s.t
    }

    async fn converse(&mut self) -> EndReason {
        let greeting = format!("{} ESMTP danesim", self.config.name);
        if let Flow::Close(r) = self.pause(Stage::Greeting).await {
            return r;
        }
        let flow = match self.script.reply(Stage::Greeting).cloned() {
            Some(r) => {
                self.no_service = !r.is_positive();
                self.scripted(&r).await
            }
            None => self.reply(220, &greeting).await,
        };
        if let Flow::Close(r) = flow {
            return r;
        }
        loop {
            if self.t.events.len() >= MAX_EVENTS {
                // A peer that never ends its session (NOOP or RSET forever) would grow the
                // transcript without bound; end it instead of dropping evidence silently.
                self.event(format!("S: <{MAX_EVENTS} events in one session: closing>"));
                let text = format!("4.7.0 {} Error: too many commands in one session", self.config.name);
                let _ = self.reply(421, &text).await;
                return "too many commands";
            }
            let flow = match self.next_line(self.config.limits.max_line).await {
                Incoming::Line(line) => self.command(&line).await,
                Incoming::TooLong => self.too_long().await,
                Incoming::End(r) => return r,
            };
            if let Flow::Close(r) = flow {
                return r;
            }
        }
    }

    fn is_tls(&self) -> bool {
        self.t.tls.is_some()
    }

    fn event(&mut self, e: String) {
        self.t.events.push(e);
    }

    async fn next_line(&mut self, limit: usize) -> Incoming {
        let idle = self.config.limits.idle_timeout;
        // Checked before reading, so a client that keeps sending cannot hold a shutting-down endpoint open.
        let read = if *self.stop.borrow() {
            Guarded::Stopped
        } else {
            guarded(&mut self.stop, idle, self.io.read_line(limit)).await
        };
        let fresh = std::mem::replace(&mut self.tls_fresh, false);
        match read {
            Guarded::Done(Ok(Line::Complete(line))) => Incoming::Line(line),
            Guarded::Done(Ok(Line::TooLong)) => Incoming::TooLong,
            Guarded::Done(Ok(Line::Eof)) => {
                if fresh {
                    // tokio-rustls returns a clean EOF only after close_notify.
                    self.t.client_alert.get_or_insert_with(|| "CloseNotify".into());
                    self.event("TLS: client alert CloseNotify".into());
                }
                Incoming::End("client closed")
            }
            Guarded::Done(Err(e)) => Incoming::End(self.read_failed(&e, fresh)),
            Guarded::TimedOut => {
                let text = format!("4.4.2 {} Error: timeout exceeded", self.config.name);
                let _ = self.reply(421, &text).await;
                Incoming::End("timeout")
            }
            Guarded::Stopped => {
                let text = format!("4.3.2 {} Service shutting down", self.config.name);
                let _ = self.reply(421, &text).await;
                Incoming::End("shutdown")
            }
        }
    }

    fn read_failed(&mut self, e: &std::io::Error, fresh: bool) -> EndReason {
        if !self.is_tls() {
            return "client closed";
        }
        match classify(e) {
            TlsFailure::Alert(alert) if fresh => {
                // TLS 1.3 (RFC 8446 §4.4.4): a client may send its Finished and then reject the server with a
                // fatal alert. Whether rustls had processed the Finished (handshake "established") before the alert
                // depends only on how the two records were segmented, so a fatal alert before any application data
                // is recorded as a failed handshake either way: the session never carried anything.
                self.t.tls = None;
                self.t
                    .events
                    .retain(|ev| !(ev.starts_with("TLS: ") && ev.ends_with(" established")));
                self.event(format!("TLS: client alert {alert}"));
                self.t.client_alert = Some(alert);
                "tls handshake failed"
            }
            TlsFailure::Alert(alert) => {
                self.event(format!("TLS: client alert {alert}"));
                self.t.client_alert.get_or_insert(alert);
                "tls alert"
            }
            TlsFailure::ClosedWithoutAlert => {
                if fresh {
                    self.event("TLS: closed without alert".into());
                    self.t.client_alert.get_or_insert_with(|| "closed without alert".into());
                }
                "client closed"
            }
            TlsFailure::Other(m) => {
                self.event(format!("TLS: error: {m}"));
                "tls error"
            }
        }
    }

    async fn write(&mut self, bytes: Vec<u8>) -> Flow {
        let idle = self.config.limits.idle_timeout;
        match guarded(&mut self.stop, idle, self.io.write_all(&bytes)).await {
            Guarded::Done(Ok(())) => Flow::Continue,
            Guarded::Done(Err(_)) => Flow::Close("write failed"),
            Guarded::TimedOut => Flow::Close("timeout"),
            Guarded::Stopped => Flow::Close("shutdown"),
        }
    }

    async fn reply(&mut self, code: u16, text: &str) -> Flow {
        self.event(format!("S: {code}"));
        self.write(format!("{code} {text}\r\n").into_bytes()).await
    }

    /// The scripted wait before the reply at `stage`, if any; recorded in the transcript.
    async fn pause(&mut self, stage: Stage) -> Flow {
        let Some(delay) = self.script.delay(stage) else {
            return Flow::Continue;
        };
        self.event(format!(
            "S: <waits {} before replying to {}>",
            crate::duration::format(delay),
            stage.name()
        ));
        match guarded(
            &mut self.stop,
            delay + Duration::from_secs(1),
            tokio::time::sleep(delay),
        )
        .await
        {
            Guarded::Done(()) | Guarded::TimedOut => Flow::Continue,
            Guarded::Stopped => Flow::Close("shutdown"),
        }
    }

    /// A reply the scenario scripted; 421 closes the connection after it (RFC 5321 §3.8).
    async fn scripted(&mut self, r: &Reply) -> Flow {
        if !r.is_positive() {
            self.t.scripted_refusal.get_or_insert(r.code);
        }
        match self.reply(r.code, &r.text).await {
            Flow::Continue if r.closes() => Flow::Close("closed by a scripted 421"),
            flow => flow,
        }
    }

    /// RFC 5321 §4.2.1: "code-text" on every line but the last, "code text" on the last.
    async fn reply_multi(&mut self, code: u16, lines: &[String]) -> Flow {
        self.event(format!("S: {code}"));
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{code}{sep}{line}\r\n"));
        }
        self.write(out.into_bytes()).await
    }

    /// A 5xx for a client mistake; repeated mistakes close the connection.
    async fn client_error(&mut self, code: u16, text: &str) -> Flow {
        if let Flow::Close(r) = self.reply(code, text).await {
            return Flow::Close(r);
        }
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            let text = format!("4.7.0 {} Error: too many errors", self.config.name);
            let _ = self.reply(421, &text).await;
            return Flow::Close("too many errors");
        }
        Flow::Continue
    }

    async fn too_long(&mut self) -> Flow {
        self.event("C: <line too long>".into());
        // RFC 5321 §4.5.3.1.4 / §4.2.2: "500 Line too long".
        if let Flow::Close(r) = self.reply(500, "5.5.2 Error: line too long").await {
            return Flow::Close(r);
        }
        self.long_lines += 1;
        if self.long_lines >= MAX_LONG_LINES {
            let text = format!("4.7.0 {} Error: too many long lines", self.config.name);
            let _ = self.reply(421, &text).await;
            return Flow::Close("line too long");
        }
        Flow::Continue
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        self.event(format!("C: {}", printable(line)));
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => {
                let text = format!("{} Error: {e}", e.enhanced_code());
                return self.client_error(e.reply_code(), &text).await;
            }
        };
        if self.no_service && cmd != Command::Quit {
            return self.reply(503, "5.5.1 Error: no service").await;
        }
        match cmd {
            Command::Ehlo(domain) => self.ehlo(domain).await,
            Command::Helo(domain) => {
                self.txn = None;
                self.greeted = true;
                self.t.ehlo = Some(domain);
                let name = self.config.name.clone();
                self.reply(250, &name).await
            }
            Command::Mail { path, params } => self.mail(path, params).await,
            Command::Rcpt { path, params } => self.rcpt(path, params).await,
            Command::Data => self.data().await,
            Command::Rset => {
                self.txn = None;
                self.reply(250, "2.0.0 Ok").await
            }
            Command::Noop => self.reply(250, "2.0.0 Ok").await,
            // RFC 5321 §3.5.3: a server that does not verify answers 252.
            Command::Vrfy(_) => self.reply(252, "2.0.0 Cannot VRFY user, but will accept message").await,
            Command::Expn(_) => self.client_error(502, "5.5.1 Error: command not implemented").await,
            Command::Help(_) => self.reply(214, "2.0.0 See RFC 5321").await,
            Command::Quit => {
                self.t.quit = true;
                match self.reply(221, "2.0.0 Bye").await {
                    Flow::Continue => Flow::Close("quit"),
                    close => close,
                }
            }
            Command::StartTls => self.starttls().await,
            Command::Unknown(_) => self.client_error(500, "5.5.2 Error: command not recognized").await,
        }
    }

    async fn ehlo(&mut self, domain: String) -> Flow {
        // RFC 5321 §4.1.4: EHLO resets any transaction in progress.
        self.txn = None;
        self.greeted = true;
        self.t.ehlo = Some(domain);
        if let Flow::Close(r) = self.pause(Stage::Ehlo).await {
            return Flow::Close(r);
        }
        if let Some(r) = self.script.reply(Stage::Ehlo).cloned() {
            return self.scripted(&r).await;
        }
        let mut lines = vec![
            self.config.name.clone(),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.limits.max_message),
        ];
        // RFC 3207 §4.2: never offered again once TLS is active.
        if !self.is_tls() && self.config.offers_starttls() {
            lines.push("STARTTLS".into());
            self.t.starttls_offered = true;
        }
        // RFC 2034: we use enhanced status codes, so we say so.
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push("8BITMIME".into());
        self.reply_multi(250, &lines).await
    }

    async fn mail(&mut self, path: String, params: Vec<Param>) -> Flow {
        if self.t.mail_from.is_none() {
            self.t.mail_from = Some(MailFrom {
                address: path,
                over_tls: self.is_tls(),
            });
        }
        if !self.greeted {
            return self.client_error(503, "5.5.1 Error: send HELO/EHLO first").await;
        }
        if self.txn.is_some() {
            return self.client_error(503, "5.5.1 Error: nested MAIL command").await;
        }
        let mut declared_8bit = false;
        for p in &params {
            match (p.keyword.as_str(), p.value.as_deref()) {
                // RFC 1870 §6.
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > self.config.limits.max_message as u64 => {
                        return self.client_error(552, "5.3.4 Message size exceeds fixed limit").await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.client_error(501, "5.5.4 Bad SIZE parameter").await,
                },
                // RFC 6152.
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {}
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => declared_8bit = true,
                ("SIZE" | "BODY", _) => return self.client_error(501, "5.5.4 Bad parameter value").await,
                // RFC 5321 §4.1.1.11.
                _ => return self.client_error(555, "5.5.4 Unsupported option").await,
            }
        }
        self.declared_8bit = declared_8bit;
        if let Flow::Close(r) = self.pause(Stage::Mail).await {
            return Flow::Close(r);
        }
        if let Some(r) = self.script.reply(Stage::Mail).cloned() {
            if r.is_positive() {
                self.txn = Some(0);
            }
            return self.scripted(&r).await;
        }
        self.txn = Some(0);
        self.reply(250, "2.1.0 Ok").await
    }

    async fn rcpt(&mut self, path: String, params: Vec<Param>) -> Flow {
        let Some(count) = self.txn else {
            return self.client_error(503, "5.5.1 Error: need MAIL command").await;
        };
        if !params.is_empty() {
            return self.client_error(555, "5.5.4 Unsupported option").await;
        }
        if count >= MAX_RECIPIENTS {
            return self.reply(452, "4.5.3 Error: too many recipients").await;
        }
        if let Flow::Close(r) = self.pause(Stage::Rcpt).await {
            return Flow::Close(r);
        }
        if let Some(r) = self.script.reply(Stage::Rcpt).cloned() {
            if r.is_positive() {
                self.txn = Some(count + 1);
                self.t.rcpt_to.push(path);
            }
            return self.scripted(&r).await;
        }
        self.txn = Some(count + 1);
        self.t.rcpt_to.push(path);
        self.reply(250, "2.1.5 Ok").await
    }

    async fn data(&mut self) -> Flow {
        match self.txn {
            None => return self.client_error(503, "5.5.1 Error: need MAIL command").await,
            // RFC 5321 §3.3: no valid recipient → 503 or 554.
            Some(0) => return self.client_error(503, "5.5.1 Error: need RCPT command").await,
            Some(_) => {}
        }
        if let Flow::Close(r) = self.pause(Stage::Data).await {
            return Flow::Close(r);
        }
        let flow = match self.script.reply(Stage::Data).cloned() {
            Some(r) if r.code != 354 => return self.scripted(&r).await,
            Some(r) => self.scripted(&r).await,
            None => self.reply(354, "End data with <CR><LF>.<CR><LF>").await,
        };
        if let Flow::Close(r) = flow {
            return Flow::Close(r);
        }
        let max = self.config.limits.max_message;
        let mut sink = MessageSink::new(max);
        // Past this the client is just flooding us; stop reading.
        let hard_cap = max.saturating_mul(2).saturating_add(1024 * 1024);
        // The RFC limit holds unless the scenario scripts a lenient server (`long_lines = true`).
        let line_limit = if self.script.long_lines {
            max.saturating_add(2)
        } else {
            MAX_TEXT_LINE
        };
        let mut over_long = false;
        loop {
            match self.next_line(line_limit).await {
                Incoming::Line(line) if !self.script.long_lines && text_len(&line) > MAX_TEXT_LINE - 1 => {
                    if !over_long {
                        self.event("C: <DATA line over 1000 octets (RFC 5321 §4.5.3.1.6)>".into());
                    }
                    over_long = true;
                    sink.push_discarded(line.len());
                }
                Incoming::Line(line) => {
                    if sink.push_line(&line) {
                        break;
                    }
                    if self.script.drop_in_data && sink.body_size() >= self.script.drop_after_body_bytes.unwrap_or(0) {
                        let body = match self.script.drop_after_body_bytes {
                            Some(_) => format!(" ({} of the body)", sink.body_size()),
                            None => String::new(),
                        };
                        self.event(format!(
                            "S: <connection dropped during DATA, {} bytes in{body}>",
                            sink.size()
                        ));
                        return Flow::Close("dropped during DATA");
                    }
                }
                Incoming::TooLong if !self.script.long_lines => {
                    // Read on to the final dot (the client is still sending), then refuse the message.
                    if !over_long {
                        self.event("C: <DATA line over 1000 octets (RFC 5321 §4.5.3.1.6)>".into());
                    }
                    over_long = true;
                    sink.push_discarded(line_limit);
                }
                Incoming::TooLong => sink.push_too_long(),
                Incoming::End(r) => {
                    self.event(format!("C: <message incomplete, {} bytes>", sink.size()));
                    return Flow::Close(r);
                }
            }
            if sink.size() > hard_cap {
                self.event(format!("C: <message over {hard_cap} bytes>"));
                let _ = self.reply(552, "5.3.4 Error: message too big").await;
                return Flow::Close("message too big");
            }
        }
        self.event(format!("C: <message, {} bytes>", sink.size()));
        if self.script.drop_in_data {
            // A drop point past the message's end: say so, or the scenario reads as if it dropped.
            self.event(format!(
                "S: <drop point not reached: the body ended at {} bytes>",
                sink.body_size()
            ));
        }
        if sink.has_8bit() && !self.declared_8bit {
            // RFC 6152 §3: a client MUST NOT send octets above 127 without BODY=8BITMIME.
            self.event("C: <8-bit message without BODY=8BITMIME (RFC 6152 §3)>".into());
        }
        self.txn = None;
        if over_long {
            // RFC 5321 §4.5.3.1.10 names this reply: "500 Line too long". The transaction is over
            // (§4.1.1.4: the message was not taken), so the client may start another.
            return self
                .reply(
                    500,
                    "5.5.2 Error: line too long (over 1000 octets, RFC 5321 §4.5.3.1.6)",
                )
                .await;
        }
        if let Flow::Close(r) = self.pause(Stage::EndOfData).await {
            return Flow::Close(r);
        }
        let scripted = self.script.reply(Stage::EndOfData).cloned();
        match sink.finish() {
            // RFC 5321 §4.1.1.4: a 4xx/5xx after the final dot means the message was not taken.
            Some(_) if scripted.as_ref().is_some_and(|r| !r.is_positive()) => {
                let r = scripted.expect("checked in the guard");
                self.event("S: <message refused after DATA by the script>".into());
                self.scripted(&r).await
            }
            Some(hash) => {
                self.t.accepted = true;
                self.t.body_sha256.get_or_insert_with(|| hash.clone());
                self.t.accepted_messages.push(hash);
                match scripted {
                    Some(r) => self.scripted(&r).await,
                    None => {
                        let text = format!("2.0.0 Ok: queued as {}", self.t.connection);
                        self.reply(250, &text).await
                    }
                }
            }
            None => self.reply(552, "5.3.4 Error: message too big").await,
        }
    }

    async fn starttls(&mut self) -> Flow {
        if self.is_tls() {
            return self.client_error(503, "5.5.1 Error: TLS already active").await;
        }
        if !self.config.offers_starttls() {
            return self.client_error(502, "5.5.1 Error: command not implemented").await;
        }
        if self.txn.is_some() {
            return self
                .client_error(503, "5.5.1 Error: MAIL transaction in progress")
                .await;
        }
        if let Some((code, text)) = self.config.behaviour.starttls_refusal() {
            return self.reply(code, text).await;
        }
        let server_config = match &self.tls {
            TlsSetup::Ready(c) => c.clone(),
            // RFC 3207 §4: 454 when TLS is temporarily unavailable.
            TlsSetup::None | TlsSetup::Broken => {
                return self.reply(454, "4.7.0 TLS not available due to local problem").await;
            }
        };
        let io = std::mem::replace(&mut self.io, LineIo::new(Stream::Detached));
        let (stream, ahead) = io.into_parts();
        let Stream::Plain(tcp) = stream else {
            // Unreachable: is_tls() was false, so the stream is the cleartext one.
            return Flow::Close("tls error");
        };
        // CVE-2011-0411 / RFC 3207 §5: bytes the client sent after STARTTLS, before our 220, must not be read as
        // if they had come inside TLS. Look both in our buffer and in the socket.
        let mut pipelined = !ahead.is_empty();
        if !pipelined {
            let mut probe = [0u8; 512];
            match tcp.try_read(&mut probe) {
                Ok(0) => return Flow::Close("client closed"),
                Ok(_) => pipelined = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Flow::Close("client closed"),
            }
        }
        if pipelined {
            self.event("C: <data pipelined after STARTTLS (CVE-2011-0411): dropped>".into());
            return Flow::Close("pipelined after STARTTLS");
        }
        self.io = LineIo::new(Stream::Plain(tcp));
        if let Flow::Close(r) = self.reply(220, "2.0.0 Ready to start TLS").await {
            return Flow::Close(r);
        }
        self.t.starttls_used = true;
        if self.config.behaviour.after_starttls() == AfterStarttls::Close {
            self.event("S: <closed after 220, no TLS handshake>".into());
            return Flow::Close("closed after STARTTLS");
        }
        let io = std::mem::replace(&mut self.io, LineIo::new(Stream::Detached));
        let (stream, _) = io.into_parts();
        let Stream::Plain(tcp) = stream else {
            return Flow::Close("tls error");
        };
        tcp_handshake(self, tcp, server_config).await
    }

    fn handshake_failed(&mut self, e: &std::io::Error) -> Flow {
        match classify(e) {
            TlsFailure::Alert(alert) => {
                self.event(format!("TLS: client alert {alert}"));
                self.t.client_alert = Some(alert);
            }
            TlsFailure::ClosedWithoutAlert => {
                self.event("TLS: closed without alert".into());
                self.t.client_alert = Some("closed without alert".into());
            }
            TlsFailure::Other(m) => self.event(format!("TLS: handshake failed: {m}")),
        }
        Flow::Close("tls handshake failed")
    }
}

/// The handshake proper: ClientHello first (so SNI is recorded even if the handshake fails), then the rest.
async fn tcp_handshake(s: &mut Session, tcp: TcpStream, server_config: Arc<rustls::ServerConfig>) -> Flow {
    let idle = s.config.limits.idle_timeout;
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let start = match guarded(&mut s.stop, idle, acceptor).await {
        Guarded::Done(Ok(start)) => start,
        Guarded::Done(Err(e)) => return s.handshake_failed(&e),
        Guarded::TimedOut => {
            s.event("TLS: handshake timed out".into());
            return Flow::Close("timeout");
        }
        Guarded::Stopped => return Flow::Close("shutdown"),
    };
    let hello_sni = start.client_hello().server_name().map(str::to_string);
    s.event(format!("TLS: ClientHello sni={}", hello_sni.as_deref().unwrap_or("-")));
    s.t.client_hello_sni = hello_sni;
    let tls = match guarded(&mut s.stop, idle, start.into_stream(server_config)).await {
        Guarded::Done(Ok(tls)) => tls,
        Guarded::Done(Err(e)) => return s.handshake_failed(&e),
        Guarded::TimedOut => {
            s.event("TLS: handshake timed out".into());
            return Flow::Close("timeout");
        }
        Guarded::Stopped => return Flow::Close("shutdown"),
    };
    let conn = tls.get_ref().1;
    let version = version_name(conn.protocol_version());
    let sni = conn.server_name().map(str::to_string);
    // With SNI-selected chains, the one presented is the one for the ClientHello's name.
    let (chain_label, chain_spki_sha256) = s
        .config
        .chain_for(sni.as_deref())
        .map(|c| (c.label.clone(), c.spki_sha256.clone()))
        .unwrap_or_default();
    s.event(format!("TLS: {version} established"));
    s.t.tls = Some(TlsInfo {
        version,
        sni,
        chain_label,
        chain_spki_sha256,
    });
    // RFC 3207 §4.2: discard all knowledge obtained from the client; it must send EHLO again.
    s.greeted = false;
    s.txn = None;
    s.tls_fresh = true;
    s.io = LineIo::new(Stream::Tls(Box::new(tls)));
    Flow::Continue
}

/// A command line as shown in events: non-printable bytes escaped, long lines cut.
fn printable(line: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(line).chars() {
        if out.len() >= EVENT_TEXT_MAX {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_and_truncates() {
        assert_eq!(printable(b"EHLO a\tb\0"), "EHLO a\\tb\\u{0}");
        assert_eq!(printable(b"\xff"), "\u{fffd}");
        let long = printable(&[b'x'; 1000]);
        assert!(long.ends_with("...") && long.len() <= EVENT_TEXT_MAX + 3);
    }
}
