//! The reference sender's SMTP client: RFC 5321 commands and replies, RFC 3207 STARTTLS over tokio-rustls.
//!
//! It knows nothing of DANE: the caller brings the rustls `ClientConfig` (with its DANE verifier) and decides what
//! to do with each reply. Every read is bounded by the timeout, and anything malformed from the server is a
//! [`ClientError`], never a panic.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Longest reply line accepted. RFC 5321 §4.5.3.1.5 allows 512 octets; servers are sometimes sloppy.
const MAX_REPLY_LINE: usize = 4096;
/// Most lines accepted in one multi-line reply.
const MAX_REPLY_LINES: usize = 256;
const READ_CHUNK: usize = 4096;

/// Errors talking to an SMTP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("connection closed by the server")]
    Closed,
    #[error("malformed reply: {0}")]
    Malformed(String),
    #[error("command contains CR or LF")]
    InvalidCommand,
    #[error("unexpected reply {}: {}", .0.code, .0.lines.join(" / "))]
    Unexpected(Reply),
}

/// A complete (possibly multi-line) reply, RFC 5321 §4.2.1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reply {
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// The RFC 3463 enhanced status code at the start of the first line (e.g. "4.7.0"), when present and of the
    /// same class as the reply code.
    pub fn enhanced(&self) -> Option<String> {
        let first = self.lines.first()?.split(' ').next()?;
        let mut parts = first.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
        let class_ok = matches!(class, "2" | "4" | "5") && class.parse::<u16>().ok() == Some(self.code / 100);
        (class_ok && digits(subject, 3) && digits(detail, 3)).then(|| first.to_string())
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// All lines joined with " / ", for logs.
    pub fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// The reply to EHLO and what it advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ehlo {
    pub reply: Reply,
    pub starttls: bool,
    /// Extension lines (everything after the first line), as sent.
    pub extensions: Vec<String>,
}

impl Ehlo {
    /// Whether the server advertised the extension `keyword` (RFC 5321 §2.4: case-insensitive).
    pub fn offers(&self, keyword: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.split(' ').next().is_some_and(|k| k.eq_ignore_ascii_case(keyword)))
    }
}

/// What the TLS handshake established.
#[derive(Debug, Clone)]
pub struct TlsSession {
    /// "TLSv1.3" or "TLSv1.2".
    pub version: String,
    /// Leaf first, as the server presented it.
    pub peer_chain: Vec<CertificateDer<'static>>,
}

/// Outcome of [`SmtpClient::starttls`].
pub enum StartTls {
    Upgraded(SmtpClient, TlsSession),
    /// The server did not answer 220; the cleartext session continues (the caller may QUIT).
    Refused(SmtpClient, Reply),
    /// The handshake (or the STARTTLS exchange before it) failed; the connection is gone.
    HandshakeFailed(String),
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, data),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An SMTP client session, in cleartext or after STARTTLS.
pub struct SmtpClient {
    transport: Transport,
    buf: Vec<u8>,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("tls", &self.is_tls())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpClient {
    /// Reads the server greeting. Any code is returned to the caller (a 554 greeting is a valid reply).
    pub async fn start(stream: TcpStream, timeout: Duration) -> Result<(SmtpClient, Reply), ClientError> {
        let mut client = SmtpClient {
            transport: Transport::Plain(stream),
            buf: Vec::new(),
            timeout,
        };
        let greeting = client.read_reply("greeting").await?;
        Ok((client, greeting))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// EHLO; a non-250 reply is returned with no extensions (the caller may fall back to HELO).
    pub async fn ehlo(&mut self, name: &str) -> Result<Ehlo, ClientError> {
        let reply = self.command(&format!("EHLO {name}")).await?;
        let extensions = if reply.code == 250 {
            reply.lines.iter().skip(1).cloned().collect()
        } else {
            Vec::new()
        };
        let mut ehlo = Ehlo {
            reply,
            starttls: false,
            extensions,
        };
        // RFC 3207 §4: the keyword is "STARTTLS".
        ehlo.starttls = ehlo.offers("STARTTLS");
        Ok(ehlo)
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        // A CR or LF would smuggle a second command onto the wire.
        if line.contains(['\r', '\n']) {
            return Err(ClientError::InvalidCommand);
        }
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply("reply").await
    }

    /// STARTTLS (RFC 3207) and, on 220, the TLS handshake with `config`, sending `sni` as server name.
    pub async fn starttls(mut self, config: Arc<rustls::ClientConfig>, sni: ServerName<'static>) -> StartTls {
        let reply = match self.command("STARTTLS").await {
            Ok(r) => r,
            Err(e) => return StartTls::HandshakeFailed(format!("STARTTLS exchange failed: {e}")),
        };
        if reply.code != 220 {
            return StartTls::Refused(self, reply);
        }
        // Mirror of CVE-2011-0411: bytes the server sent after 220 but before the handshake must not be taken as
        // if they had come inside TLS.
        if !self.buf.is_empty() {
            return StartTls::HandshakeFailed("server sent data after 220 to STARTTLS".into());
        }
        let Transport::Plain(tcp) = self.transport else {
            return StartTls::HandshakeFailed("TLS is already active".into());
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = match tokio::time::timeout(self.timeout, connector.connect(sni, tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return StartTls::HandshakeFailed(e.to_string()),
            Err(_) => return StartTls::HandshakeFailed("TLS handshake timed out".into()),
        };
        let conn = tls.get_ref().1;
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let peer_chain = conn.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
        // RFC 3207 §4.2: the client must forget everything from the cleartext session (and EHLO again).
        let client = SmtpClient {
            transport: Transport::Tls(Box::new(tls)),
            buf: Vec::new(),
            timeout: self.timeout,
        };
        StartTls::Upgraded(client, TlsSession { version, peer_chain })
    }

    /// DATA, and on 354 the body (bare LF → CRLF, final CRLF added, dot-stuffed per RFC 5321 §4.5.2) and ".".
    /// Returns the reply to DATA if it was not 354, otherwise the reply to the final ".".
    pub async fn data(&mut self, body: &[u8]) -> Result<Reply, ClientError> {
        let reply = self.command("DATA").await?;
        if reply.code != 354 {
            return Ok(reply);
        }
        self.send(&encode_body(body)).await?;
        self.read_reply("reply to end of data").await
    }

    /// QUIT, expects 221, then closes (with close_notify on TLS).
    pub async fn quit(mut self) -> Result<(), ClientError> {
        let result = self.command("QUIT").await;
        let _ = tokio::time::timeout(self.timeout, self.transport.shutdown()).await;
        match result? {
            r if r.code == 221 => Ok(()),
            r => Err(ClientError::Unexpected(r)),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let write = async {
            self.transport.write_all(bytes).await?;
            self.transport.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ClientError::Timeout("the server to accept data")),
        }
    }

    async fn read_reply(&mut self, what: &'static str) -> Result<Reply, ClientError> {
        match tokio::time::timeout(self.timeout, self.read_reply_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(what)),
        }
    }

    async fn read_reply_inner(&mut self) -> Result<Reply, ClientError> {
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let (c, last, text) = parse_reply_line(&line)?;
            if code.is_some_and(|prev| prev != c) {
                return Err(ClientError::Malformed(format!(
                    "reply code changed within a reply: {}",
                    escape(&line)
                )));
            }
            code = Some(c);
            lines.push(text);
            if last {
                return Ok(Reply { code: c, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(ClientError::Malformed("too many lines in one reply".into()));
            }
        }
    }

    async fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_REPLY_LINE {
                return Err(ClientError::Malformed("reply line too long".into()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = self.transport.read(&mut chunk).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// RFC 5321 §4.2: `Reply-code [ SP textstring ]` or `Reply-code "-" textstring`, where the code's first digit is
/// 2-5 and the second 0-5.
fn parse_reply_line(line: &[u8]) -> Result<(u16, bool, String), ClientError> {
    let bad = || ClientError::Malformed(escape(line));
    let digits = line.get(..3).ok_or_else(bad)?;
    let ok = matches!(digits[0], b'2'..=b'5') && matches!(digits[1], b'0'..=b'5') && digits[2].is_ascii_digit();
    if !ok {
        return Err(bad());
    }
    let code = digits.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &line[3..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(bad()),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// The body as sent after 354: normalised line endings, dot-stuffed, terminated by ".".
fn encode_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 5);
    let mut at_line_start = true;
    let mut prev = None;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != Some(b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = Some(b);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn escape(line: &[u8]) -> String {
    let shown: String = line
        .iter()
        .take(120)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if line.len() > 120 { format!("{shown}...") } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn reply_lines_parse_or_fail() {
        assert_eq!(
            parse_reply_line(b"250-PIPELINING").ok(),
            Some((250, false, "PIPELINING".into()))
        );
        assert_eq!(
            parse_reply_line(b"221 2.0.0 Bye").ok(),
            Some((221, true, "2.0.0 Bye".into()))
        );
        assert_eq!(parse_reply_line(b"354").ok(), Some((354, true, String::new())));
        for bad in [
            &b""[..],
            b"25",
            b"2x0 hi",
            b"650 no",
            b"260 no",
            b"250_x",
            b"\xff\xff\xff",
        ] {
            assert!(
                matches!(parse_reply_line(bad), Err(ClientError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn enhanced_codes() {
        let r = |code, text: &str| Reply {
            code,
            lines: vec![text.to_string()],
        };
        assert_eq!(r(250, "2.1.0 Ok").enhanced().as_deref(), Some("2.1.0"));
        assert_eq!(r(450, "4.7.323 tlsa-invalid").enhanced().as_deref(), Some("4.7.323"));
        assert_eq!(r(550, "4.7.0 wrong class").enhanced(), None);
        assert_eq!(r(250, "mx.example.test").enhanced(), None);
        assert_eq!(r(250, "2.1.0.1 too long").enhanced(), None);
        assert_eq!(
            Reply {
                code: 250,
                lines: vec![]
            }
            .enhanced(),
            None
        );
        assert!(r(250, "").is_positive() && r(451, "").is_transient());
    }

    #[test]
    fn bodies_are_normalised_and_dot_stuffed() {
        assert_eq!(encode_body(b""), b".\r\n");
        assert_eq!(encode_body(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(encode_body(b".\n"), b"..\r\n.\r\n");
    }

    /// A scripted server: sends `script` after reading the first line, then keeps the socket open a while.
    async fn scripted(greeting: &'static [u8], script: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound socket has an address");
        tokio::spawn(async move {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let _ = s.write_all(greeting).await;
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(script).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        addr
    }

    async fn connect(addr: std::net::SocketAddr, timeout: Duration) -> Result<(SmtpClient, Reply), ClientError> {
        let tcp = TcpStream::connect(addr).await.expect("connect to loopback");
        SmtpClient::start(tcp, timeout).await
    }

    #[tokio::test]
    async fn multi_line_replies_and_errors() {
        let addr = scripted(b"220-first\r\n220 second\r\n", b"250-a\r\n251 b\r\n").await;
        let (mut c, greeting) = connect(addr, Duration::from_secs(2)).await.expect("greeting parses");
        assert_eq!(
            greeting,
            Reply {
                code: 220,
                lines: vec!["first".into(), "second".into()]
            }
        );
        assert!(matches!(c.command("NOOP").await, Err(ClientError::Malformed(_))));
        assert!(matches!(
            c.command("NOOP\r\nRSET").await,
            Err(ClientError::InvalidCommand)
        ));

        let addr = scripted(b"garbage\r\n", b"").await;
        assert!(matches!(
            connect(addr, Duration::from_secs(2)).await,
            Err(ClientError::Malformed(_))
        ));

        let addr = scripted(b"220 ok\r\n", b"").await;
        let (mut c, _) = connect(addr, Duration::from_millis(200))
            .await
            .expect("greeting parses");
        assert!(matches!(c.command("NOOP").await, Err(ClientError::Timeout(_))));

        let long: &'static [u8] = Box::leak(vec![b'2'; 10_000].into_boxed_slice());
        let addr = scripted(long, b"").await;
        assert!(matches!(
            connect(addr, Duration::from_secs(2)).await,
            Err(ClientError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn server_closing_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound socket has an address");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"220 ok\r\n").await;
            }
        });
        let (mut c, _) = connect(addr, Duration::from_secs(2)).await.expect("greeting parses");
        assert!(matches!(
            c.command("NOOP").await,
            Err(ClientError::Closed | ClientError::Io(_))
        ));
    }
}
