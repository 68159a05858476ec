//! End-to-end tests: the endpoint driven by the reference sender's client (and by raw sockets where a client
//! would refuse to misbehave), over 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::sender::reference::smtp_client::{ClientError, SmtpClient, StartTls};

const T: Duration = Duration::from_secs(5);
const BODY: &[u8] = b"Subject: hello\n\nfirst line\n.starts with a dot\nlast line";

struct Running {
    addr: SocketAddr,
    log: TranscriptLog,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    async fn start(config: impl Into<EndpointHandle>) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound socket has an address");
        let log = TranscriptLog::default();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config.into(), log.clone(), async move {
            let _ = rx.await;
        }));
        Running { addr, log, stop, task }
    }

    /// Waits for every connection to finish, stops the endpoint and returns the transcripts.
    async fn finish(self) -> Vec<Transcript> {
        assert!(self.log.settle(T).await, "endpoint connections did not settle");
        let _ = self.stop.send(());
        tokio::time::timeout(T, self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve does not panic");
        self.log.transcripts()
    }
}

fn chain(label: &str, name: &str) -> TlsChain {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ring generates Ed25519 keys");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("valid DNS name")
        .self_signed(&key)
        .expect("self-signing works");
    let der = cert.der().clone();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).expect("rcgen emits valid DER");
    let spki = hex::encode(Sha256::digest(parsed.tbs_certificate.subject_pki.raw));
    TlsChain {
        label: label.to_string(),
        certs: vec![der],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        spki_sha256: vec![spki],
    }
}

fn endpoint(behaviour: Behaviour, with_chain: bool) -> EndpointConfig {
    EndpointConfig {
        name: "mx1.example.test".into(),
        behaviour,
        chain: with_chain.then(|| chain("mx1-ee", "mx1.example.test")),
        limits: Limits::default(),
        script: Script::default(),
        sessions: Default::default(),
        sni_chains: Vec::new(),
    }
}

/// A verifier that accepts or refuses every certificate (signatures are still checked).
#[derive(Debug)]
struct Verifier {
    accept: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(accept: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { accept, provider }))
        .with_no_client_auth();
    Arc::new(config)
}

fn sni() -> ServerName<'static> {
    ServerName::try_from("mx1.example.test").expect("valid DNS name")
}

async fn connect(addr: SocketAddr) -> SmtpClient {
    let tcp = TcpStream::connect(addr).await.expect("connect to loopback");
    let (client, greeting) = SmtpClient::start(tcp, T).await.expect("greeting");
    assert_eq!(greeting.code, 220);
    assert!(greeting.lines[0].starts_with("mx1.example.test "));
    client
}

/// MAIL, RCPT, DATA with BODY; asserts every reply.
async fn send_message(c: &mut SmtpClient) {
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        250
    );
    assert_eq!(c.command("RCPT TO:<bob@example.test>").await.expect("RCPT").code, 250);
    let done = c.data(BODY).await.expect("DATA");
    assert_eq!(done.code, 250);
    assert_eq!(done.enhanced().as_deref(), Some("2.0.0"));
    assert!(done.lines[0].ends_with("queued as 1"), "{done:?}");
}

/// Reads one complete reply from a raw stream; returns its code, or None on EOF/error.
async fn raw_reply<S: AsyncRead + Unpin>(s: &mut S) -> Option<u16> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match tokio::time::timeout(T, s.read(&mut b))
            .await
            .expect("reply within timeout")
        {
            Ok(1) => {}
            _ => return None,
        }
        if b[0] != b'\n' {
            line.push(b[0]);
            continue;
        }
        if line.get(3) != Some(&b'-') {
            let code = std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()?;
            return Some(code);
        }
        line.clear();
    }
}

async fn raw_send<S: AsyncWrite + Unpin>(s: &mut S, text: &[u8]) {
    s.write_all(text).await.expect("write to endpoint");
    s.flush().await.expect("flush to endpoint");
}

fn has_event(t: &Transcript, needle: &str) -> bool {
    t.events.iter().any(|e| e.contains(needle))
}

#[tokio::test]
async fn plain_delivery_is_recorded() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut c = connect(ep.addr).await;
    let ehlo = c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(ehlo.reply.code, 250);
    assert!(!ehlo.starttls, "no chain, so no STARTTLS");
    for ext in ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"] {
        assert!(
            ehlo.extensions.iter().any(|e| e == ext),
            "{ext} missing from {:?}",
            ehlo.extensions
        );
    }
    assert!(ehlo.extensions.iter().any(|e| e.starts_with("SIZE ")));
    send_message(&mut c).await;
    c.quit().await.expect("QUIT");

    let ts = ep.finish().await;
    assert_eq!(ts.len(), 1);
    let t = &ts[0];
    assert_eq!(t.connection, 1);
    assert_eq!(t.ehlo.as_deref(), Some("client.test"));
    assert!(!t.starttls_offered && !t.starttls_used && t.tls.is_none());
    assert_eq!(
        t.mail_from,
        Some(MailFrom {
            address: "alice@sender.test".into(),
            over_tls: false
        })
    );
    assert_eq!(t.rcpt_to, vec!["bob@example.test".to_string()]);
    assert!(t.accepted && t.quit);
    assert_eq!(t.body_sha256.as_deref(), Some(body_sha256(BODY).as_str()));
    assert_eq!(t.accepted_messages, vec![body_sha256(BODY)]);
    assert_eq!(t.end, "quit");
    assert_eq!(
        t.events,
        vec![
            "S: 220",
            "C: EHLO client.test",
            "S: 250",
            "C: MAIL FROM:<alice@sender.test>",
            "S: 250",
            "C: RCPT TO:<bob@example.test>",
            "S: 250",
            "C: DATA",
            "S: 354",
            &format!("C: <message, {} bytes>", normalize_body(BODY).len()),
            "S: 250",
            "C: QUIT",
            "S: 221",
        ]
    );
}

#[tokio::test]
async fn starttls_delivery_is_recorded() {
    let config = endpoint(Behaviour::Normal, true);
    let expected_spki = config.chain.as_ref().expect("configured above").spki_sha256.clone();
    let expected_leaf = config.chain.as_ref().expect("configured above").certs[0].clone();
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    let ehlo = c.ehlo("client.test").await.expect("EHLO");
    assert!(ehlo.starttls);
    let (mut c, session) = match c.starttls(client_config(true), sni()).await {
        StartTls::Upgraded(c, s) => (c, s),
        StartTls::Refused(_, r) => panic!("refused: {r:?}"),
        StartTls::HandshakeFailed(e) => panic!("handshake failed: {e}"),
    };
    assert!(c.is_tls());
    assert_eq!(session.version, "TLSv1.3");
    assert_eq!(session.peer_chain, vec![expected_leaf]);
    // RFC 3207 §4.2: greet again; STARTTLS is not offered any more.
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        503
    );
    let ehlo = c.ehlo("client.test").await.expect("EHLO after TLS");
    assert!(!ehlo.starttls);
    assert_eq!(c.command("STARTTLS").await.expect("second STARTTLS").code, 503);
    send_message(&mut c).await;
    c.quit().await.expect("QUIT");

    let t = ep.finish().await.remove(0);
    assert!(t.starttls_offered && t.starttls_used);
    assert_eq!(
        t.tls,
        Some(TlsInfo {
            version: "TLSv1.3".into(),
            sni: Some("mx1.example.test".into()),
            chain_label: "mx1-ee".into(),
            chain_spki_sha256: expected_spki,
        })
    );
    assert_eq!(t.client_hello_sni.as_deref(), Some("mx1.example.test"));
    assert_eq!(t.client_alert, None);
    assert_eq!(
        t.mail_from,
        Some(MailFrom {
            address: "alice@sender.test".into(),
            over_tls: true
        })
    );
    assert!(t.accepted && t.quit);
    assert_eq!(t.body_sha256, Some(body_sha256(BODY)));
    assert_eq!(t.end, "quit");
    assert!(has_event(&t, "TLS: ClientHello sni=mx1.example.test"));
    assert!(has_event(&t, "TLS: TLSv1.3 established"));
}

#[tokio::test]
async fn quit_over_tls_is_followed_by_close_notify() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"EHLO raw.test\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(250));
    raw_send(&mut tcp, b"STARTTLS\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    let mut tls = tokio_rustls::TlsConnector::from(client_config(true))
        .connect(sni(), tcp)
        .await
        .expect("handshake");
    raw_send(&mut tls, b"QUIT\r\n").await;
    assert_eq!(raw_reply(&mut tls).await, Some(221));
    // A clean EOF (Ok(0)) only follows a close_notify; without it rustls reports UnexpectedEof.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(T, tls.read_to_end(&mut rest))
        .await
        .expect("server closes");
    assert_eq!(n.expect("close_notify before EOF"), 0);
    let t = ep.finish().await.remove(0);
    assert_eq!(t.end, "quit");
    assert_eq!(t.ehlo.as_deref(), Some("raw.test"));
}

#[tokio::test]
async fn no_starttls_behaviour_does_not_offer_it() {
    let ep = Running::start(endpoint(Behaviour::NoStarttls, true)).await;
    let mut c = connect(ep.addr).await;
    let ehlo = c.ehlo("client.test").await.expect("EHLO");
    assert!(!ehlo.starttls);
    let c = match c.starttls(client_config(true), sni()).await {
        StartTls::Refused(c, reply) => {
            assert_eq!(reply.code, 502);
            assert_eq!(reply.enhanced().as_deref(), Some("5.5.1"));
            c
        }
        _ => panic!("STARTTLS must be refused"),
    };
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert!(!t.starttls_offered && !t.starttls_used && t.tls.is_none());
    assert_eq!(t.end, "quit");
}

#[tokio::test]
async fn client_rejecting_the_certificate_is_recorded() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let mut c = connect(ep.addr).await;
    assert!(c.ehlo("client.test").await.expect("EHLO").starttls);
    match c.starttls(client_config(false), sni()).await {
        StartTls::HandshakeFailed(e) => assert!(e.contains("certificate"), "{e}"),
        _ => panic!("the verifier refuses every certificate"),
    }
    let t = ep.finish().await.remove(0);
    assert!(t.starttls_used);
    assert_eq!(t.client_alert.as_deref(), Some("AccessDenied"));
    assert_eq!(t.client_hello_sni.as_deref(), Some("mx1.example.test"));
    assert_eq!(t.mail_from, None);
    assert!(!t.accepted);
    assert_eq!(t.end, "tls handshake failed");
    assert!(has_event(&t, "TLS: client alert AccessDenied"));
}

#[tokio::test]
async fn client_dropping_after_the_handshake_is_recorded() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    for clean in [false, true] {
        let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
        assert_eq!(raw_reply(&mut tcp).await, Some(220));
        raw_send(&mut tcp, b"EHLO raw.test\r\nSTARTTLS\r\n").await;
        assert_eq!(raw_reply(&mut tcp).await, Some(250));
        assert_eq!(raw_reply(&mut tcp).await, Some(220));
        let mut tls = tokio_rustls::TlsConnector::from(client_config(true))
            .connect(sni(), tcp)
            .await
            .expect("handshake");
        if clean {
            // Like a sender that judged the certificate after the handshake and closed politely.
            tls.shutdown().await.expect("close_notify");
        }
        drop(tls);
    }
    let ts = ep.finish().await;
    assert_eq!(ts.len(), 2);
    assert_eq!(ts[0].client_alert.as_deref(), Some("closed without alert"));
    assert_eq!(ts[1].client_alert.as_deref(), Some("CloseNotify"));
    for t in &ts {
        assert!(t.tls.is_some(), "the server side of the handshake completed");
        assert_eq!(t.mail_from, None);
        assert_eq!(t.end, "client closed");
    }
}

#[tokio::test]
async fn strip_attacker_downgrades_and_the_endpoint_witnesses_it() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let relay_addr = listener.local_addr().expect("bound socket has an address");
    let attacker_log = AttackerLog::default();
    let (stop, rx) = oneshot::channel::<()>();
    let relay = tokio::spawn(serve_attacker(
        listener,
        ep.addr,
        Attack::StripStarttls,
        attacker_log.clone(),
        async move {
            let _ = rx.await;
        },
    ));

    let mut c = connect(relay_addr).await;
    let ehlo = c.ehlo("client.test").await.expect("EHLO");
    assert!(!ehlo.starttls, "the relay must hide STARTTLS: {:?}", ehlo.extensions);
    assert_eq!(ehlo.reply.code, 250);
    assert_eq!(ehlo.extensions.last().map(String::as_str), Some("8BITMIME"));
    // A sender that tries anyway gets the relay's own 454.
    let mut c = match c.starttls(client_config(true), sni()).await {
        StartTls::Refused(c, reply) => {
            assert_eq!(reply.code, 454);
            c
        }
        _ => panic!("the relay answers STARTTLS itself"),
    };
    // A sender that then falls back to cleartext (what DANE forbids).
    send_message(&mut c).await;
    c.quit().await.expect("QUIT");

    let t = ep.finish().await.remove(0);
    let _ = stop.send(());
    tokio::time::timeout(T, relay)
        .await
        .expect("relay stops")
        .expect("relay does not panic");
    assert!(t.starttls_offered, "the endpoint did offer STARTTLS");
    assert!(!t.starttls_used && t.tls.is_none());
    assert!(!has_event(&t, "C: STARTTLS"), "the relay must not forward STARTTLS");
    assert_eq!(
        t.mail_from,
        Some(MailFrom {
            address: "alice@sender.test".into(),
            over_tls: false
        })
    );
    assert!(t.accepted);
    assert_eq!(t.body_sha256, Some(body_sha256(BODY)));
    let events = attacker_log.events();
    assert!(
        events.contains(&"1: stripped STARTTLS from EHLO reply".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"1: answered STARTTLS with 454 (not forwarded)".to_string()),
        "{events:?}"
    );
    assert_eq!(events.first().map(String::as_str), Some("1: relaying"));
}

/// An attacker relay on a loopback port in front of `upstream`: its address and log; stop it
/// with the sender, join the handle.
async fn start_attacker(
    upstream: SocketAddr,
    attack: Attack,
) -> (SocketAddr, AttackerLog, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("bound socket has an address");
    let log = AttackerLog::default();
    let (stop, rx) = oneshot::channel::<()>();
    let relay = tokio::spawn(serve_attacker(listener, upstream, attack, log.clone(), async move {
        let _ = rx.await;
    }));
    (addr, log, stop, relay)
}

async fn stop_attacker(stop: oneshot::Sender<()>, relay: JoinHandle<()>) {
    let _ = stop.send(());
    tokio::time::timeout(T, relay)
        .await
        .expect("relay stops")
        .expect("relay does not panic");
}

#[tokio::test]
async fn interceptor_reads_what_a_trusting_client_sends() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let mitm = chain("mitm", "mx1.example.test");
    let mitm_leaf = mitm.certs[0].clone();
    let (relay_addr, log, stop, relay) = start_attacker(ep.addr, Attack::Intercept { chain: mitm }).await;

    let mut c = connect(relay_addr).await;
    assert!(
        c.ehlo("client.test").await.expect("EHLO").starttls,
        "the interceptor lets STARTTLS through"
    );
    let (mut c, session) = match c.starttls(client_config(true), sni()).await {
        StartTls::Upgraded(c, s) => (c, s),
        _ => panic!("a client that checks nothing completes the handshake"),
    };
    assert_eq!(
        session.peer_chain,
        vec![mitm_leaf],
        "the client sees the interceptor's chain"
    );
    c.ehlo("client.test").await.expect("EHLO after TLS");
    send_message(&mut c).await;
    c.quit().await.expect("QUIT");

    let t = ep.finish().await.remove(0);
    stop_attacker(stop, relay).await;
    // The endpoint saw a TLS session (the attacker's) and accepted the message over it.
    assert!(t.starttls_used);
    assert_eq!(t.tls.as_ref().map(|i| i.chain_label.as_str()), Some("mx1-ee"));
    assert!(t.mail_from.as_ref().is_some_and(|m| m.over_tls));
    assert_eq!(t.body_sha256, Some(body_sha256(BODY)));
    assert_eq!(log.intercepted_deliveries(), 1);
    assert_eq!(log.client_handshakes(), 1);
    let events = log.events();
    for want in [
        "1: answered STARTTLS with 220 itself (not forwarded)",
        "1: completed TLSv1.3 with the client presenting mitm (SNI mx1.example.test)",
        "1: opened its own TLS session to the endpoint",
        "1: read \"MAIL FROM:<alice@sender.test>\" inside the intercepted TLS session",
        "1: the endpoint accepted a message the interceptor read in the clear",
    ] {
        assert!(events.contains(&want.to_string()), "missing {want:?} in {events:?}");
    }
}

#[tokio::test]
async fn interceptor_gets_nothing_from_a_client_that_checks() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let (relay_addr, log, stop, relay) = start_attacker(
        ep.addr,
        Attack::Intercept {
            chain: chain("mitm", "mx1.example.test"),
        },
    )
    .await;
    let mut c = connect(relay_addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert!(matches!(
        c.starttls(client_config(false), sni()).await,
        StartTls::HandshakeFailed(_)
    ));
    let t = ep.finish().await.remove(0);
    stop_attacker(stop, relay).await;
    assert!(
        !t.starttls_used && t.mail_from.is_none(),
        "the endpoint saw only EHLO: {t:?}"
    );
    assert_eq!(log.intercepted_deliveries(), 0);
    let events = log.events();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("1: the client refused the interceptor's chain `mitm`")),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("1: closed: client refused the chain")
    );
}

#[tokio::test]
async fn injected_replies_replace_the_real_one_only_in_cleartext() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    // A forged RCPT reply works on a cleartext session...
    let forged = Reply::parse("550 5.1.1 No such user").expect("valid reply");
    let (relay_addr, log, stop, relay) = start_attacker(
        ep.addr,
        Attack::Inject {
            at: InjectAt::Stage(Stage::Rcpt),
            reply: forged.clone(),
        },
    )
    .await;
    let mut c = connect(relay_addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        250
    );
    let r = c.command("RCPT TO:<bob@example.test>").await.expect("RCPT");
    assert_eq!((r.code, r.text()), (550, "5.1.1 No such user".to_string()));
    c.quit().await.expect("QUIT");
    // ...but not after STARTTLS: the relay only copies ciphertext.
    let mut c = connect(relay_addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    let mut c = match c.starttls(client_config(true), sni()).await {
        StartTls::Upgraded(c, _) => c,
        _ => panic!("STARTTLS goes through to the endpoint"),
    };
    c.ehlo("client.test").await.expect("EHLO after TLS");
    c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL");
    let r = c.command("RCPT TO:<bob@example.test>").await.expect("RCPT");
    assert_eq!(r.code, 250, "the real reply, not the forgery");
    assert_eq!(c.data(BODY).await.expect("DATA").code, 250);
    c.quit().await.expect("QUIT");

    let ts = ep.finish().await;
    stop_attacker(stop, relay).await;
    assert_eq!(
        ts[0].rcpt_to,
        vec!["bob@example.test".to_string()],
        "the endpoint itself said 250"
    );
    assert!(ts[1].accepted && ts[1].tls.is_some());
    let events = log.events();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("1: replaced the rcpt reply \"250 ")
                && e.ends_with("with \"550 5.1.1 No such user\"")),
        "{events:?}"
    );
    assert!(
        events.contains(&"2: STARTTLS went through: only ciphertext from here on, nothing left to forge".to_string()),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_forged_starttls_refusal_never_reaches_the_endpoint() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let (relay_addr, log, stop, relay) = start_attacker(
        ep.addr,
        Attack::Inject {
            at: InjectAt::Starttls,
            reply: Reply::parse("454 4.7.0 TLS not available").expect("valid reply"),
        },
    )
    .await;
    let mut c = connect(relay_addr).await;
    assert!(c.ehlo("client.test").await.expect("EHLO").starttls);
    let c = match c.starttls(client_config(true), sni()).await {
        StartTls::Refused(c, reply) => {
            assert_eq!(reply.code, 454);
            c
        }
        _ => panic!("the relay forges the refusal"),
    };
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    stop_attacker(stop, relay).await;
    assert!(
        !has_event(&t, "C: STARTTLS"),
        "the command was not forwarded: {:?}",
        t.events
    );
    assert_eq!(
        log.events()[1],
        "1: answered STARTTLS with \"454 4.7.0 TLS not available\" (not forwarded)"
    );
}

#[tokio::test]
async fn a_replaced_chain_serves_from_the_next_connection_on() {
    let handle = EndpointHandle::from(endpoint(Behaviour::Normal, true));
    let ep = Running::start(handle.clone()).await;
    let renewed = chain("mx1-renewed", "mx1.example.test");
    let renewed_leaf = renewed.certs[0].clone();
    let mut first = connect(ep.addr).await;
    first.ehlo("client.test").await.expect("EHLO");
    // Renewed while a connection is open: that connection keeps the chain it started with.
    handle.replace_chain(renewed).expect("a good chain is accepted");
    let (first, before) = match first.starttls(client_config(true), sni()).await {
        StartTls::Upgraded(c, s) => (c, s),
        _ => panic!("handshake"),
    };
    first.quit().await.expect("QUIT");
    let mut second = connect(ep.addr).await;
    second.ehlo("client.test").await.expect("EHLO");
    let (second, after) = match second.starttls(client_config(true), sni()).await {
        StartTls::Upgraded(c, s) => (c, s),
        _ => panic!("handshake"),
    };
    second.quit().await.expect("QUIT");
    assert_ne!(before.peer_chain, after.peer_chain);
    assert_eq!(after.peer_chain, vec![renewed_leaf]);
    let labels: Vec<String> = ep
        .finish()
        .await
        .iter()
        .map(|t| t.tls.as_ref().expect("TLS").chain_label.clone())
        .collect();
    assert_eq!(labels, ["mx1-ee", "mx1-renewed"]);
    // A chain rustls refuses changes nothing.
    let mut broken = chain("broken", "mx1.example.test");
    broken.certs.clear();
    assert!(handle.replace_chain(broken).is_err());
    assert_eq!(
        handle.config().chain.as_ref().map(|c| c.label.as_str()),
        Some("mx1-renewed")
    );
}

#[tokio::test]
async fn pipelined_bytes_after_starttls_drop_the_connection() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"EHLO evil.test\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(250));
    raw_send(&mut tcp, b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, None, "no 220: the connection is dropped");
    let t = ep.finish().await.remove(0);
    assert_eq!(t.end, "pipelined after STARTTLS");
    assert!(!t.starttls_used && t.tls.is_none());
    assert_eq!(t.mail_from, None, "the injected MAIL was never processed");
    assert!(has_event(&t, "CVE-2011-0411"));
}

#[tokio::test]
async fn oversized_lines_get_500_and_repeated_abuse_closes() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut c = connect(ep.addr).await;
    let long = format!("NOOP {}", "x".repeat(5000));
    let reply = c.command(&long).await.expect("reply to long line");
    assert_eq!(reply.code, 500);
    assert_eq!(reply.enhanced().as_deref(), Some("5.5.2"));
    assert_eq!(c.command("NOOP").await.expect("NOOP after long line").code, 250);
    assert_eq!(c.command(&long).await.expect("second long line").code, 500);
    // The third one exhausts the endpoint's patience: 500, then 421 and close.
    assert_eq!(c.command(&long).await.expect("third long line").code, 500);
    match c.command("NOOP").await {
        Ok(r) => assert_eq!(r.code, 421),
        Err(e) => panic!("expected the 421 that was already sent: {e}"),
    }
    assert!(matches!(
        c.command("NOOP").await,
        Err(ClientError::Closed | ClientError::Io(_))
    ));
    let t = ep.finish().await.remove(0);
    assert_eq!(t.end, "line too long");
    assert_eq!(t.events.iter().filter(|e| *e == "C: <line too long>").count(), 3);
}

#[tokio::test]
async fn idle_clients_time_out() {
    let mut config = endpoint(Behaviour::Normal, true);
    config.limits.idle_timeout = Duration::from_millis(200);
    let ep = Running::start(config).await;
    // Idle at the command prompt: 421, then close.
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(raw_reply(&mut tcp).await, Some(421));
    assert_eq!(raw_reply(&mut tcp).await, None);
    // Idle in the middle of a TLS handshake.
    let mut tcp2 = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp2).await, Some(220));
    raw_send(&mut tcp2, b"STARTTLS\r\n").await;
    assert_eq!(raw_reply(&mut tcp2).await, Some(220));
    assert_eq!(
        raw_reply(&mut tcp2).await,
        None,
        "no ClientHello: the endpoint gives up"
    );
    let ts = ep.finish().await;
    assert_eq!(ts[0].end, "timeout");
    assert_eq!(ts[0].events.last().map(String::as_str), Some("S: 421"));
    assert_eq!(ts[1].end, "timeout");
    assert!(has_event(&ts[1], "TLS: handshake timed out"));
}

#[tokio::test]
async fn garbage_and_early_closes_never_hang() {
    let ep = Running::start(endpoint(Behaviour::Normal, true)).await;
    // 1: binary garbage instead of a ClientHello.
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"STARTTLS\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"\x16\x03\x01\x00\x05garbage-not-tls\r\n").await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(T, tcp.read_to_end(&mut sink))
        .await
        .expect("endpoint closes");
    // 2: a close in the middle of a ClientHello.
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"STARTTLS\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"\x16\x03\x01").await;
    drop(tcp);
    // 3: binary junk and NULs at the command prompt, then a close mid-line.
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, b"\x00\xff\xfe\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(500));
    raw_send(&mut tcp, b"EHLO half-a-li").await;
    drop(tcp);
    // 4: a close in the middle of DATA.
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(
        &mut tcp,
        b"EHLO x.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhalf a mess",
    )
    .await;
    for code in [250, 250, 250, 354] {
        assert_eq!(raw_reply(&mut tcp).await, Some(code));
    }
    drop(tcp);

    let ts = ep.finish().await;
    assert_eq!(ts.len(), 4);
    assert_eq!(ts[0].end, "tls handshake failed");
    assert!(has_event(&ts[0], "TLS: handshake failed"));
    assert_eq!(ts[1].end, "tls handshake failed");
    assert_eq!(ts[1].client_alert.as_deref(), Some("closed without alert"));
    assert_eq!(ts[2].end, "client closed");
    assert!(has_event(&ts[2], "C: \\u{0}\u{fffd}\u{fffd}"), "{:?}", ts[2].events);
    assert_eq!(ts[3].end, "client closed");
    assert!(!ts[3].accepted && ts[3].body_sha256.is_none());
}

#[tokio::test]
async fn replies_follow_rfc_5321() {
    let mut config = endpoint(Behaviour::Normal, false);
    config.limits.max_message = 100;
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    let code = |r: Result<_, ClientError>| r.map(|r: crate::sender::reference::smtp_client::Reply| r.code).ok();
    assert_eq!(
        code(c.command("MAIL FROM:<a@x.test>").await),
        Some(503),
        "MAIL before EHLO"
    );
    assert_eq!(code(c.command("HELO client.test").await), Some(250));
    assert_eq!(
        code(c.command("RCPT TO:<b@y.test>").await),
        Some(503),
        "RCPT before MAIL"
    );
    assert_eq!(code(c.command("DATA").await), Some(503), "DATA before MAIL");
    assert_eq!(code(c.command("FROBNICATE").await), Some(500));
    assert_eq!(code(c.command("MAIL FROM:a@x.test").await), Some(501));
    assert_eq!(code(c.command("MAIL FROM:<a@x.test> FOO=bar").await), Some(555));
    assert_eq!(code(c.command("MAIL FROM:<a@x.test> SIZE=1000").await), Some(552));
    assert_eq!(code(c.command("EXPN staff").await), Some(502));
    assert_eq!(code(c.command("VRFY bob").await), Some(252));
    assert_eq!(code(c.command("HELP").await), Some(214));
    assert_eq!(code(c.command("STARTTLS").await), Some(502), "no chain configured");
    assert_eq!(code(c.command("MAIL FROM:<> SIZE=10 BODY=8BITMIME").await), Some(250));
    assert_eq!(code(c.command("MAIL FROM:<a@x.test>").await), Some(503), "nested MAIL");
    assert_eq!(code(c.command("DATA").await), Some(503), "DATA before RCPT");
    assert_eq!(code(c.command("RCPT TO:<b@y.test>").await), Some(250));
    let big = vec![b'x'; 300];
    assert_eq!(c.data(&big).await.expect("DATA").code, 552, "message over max_message");
    assert_eq!(code(c.command("RSET").await), Some(250));
    assert_eq!(code(c.command("NOOP").await), Some(250));
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert_eq!(
        t.mail_from.map(|m| m.address),
        Some("a@x.test".to_string()),
        "first MAIL seen is recorded"
    );
    assert!(!t.accepted && t.body_sha256.is_none());
    assert_eq!(t.end, "quit");
}

#[tokio::test]
async fn too_many_errors_close_the_connection() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    raw_send(&mut tcp, "XYZZY\r\n".repeat(22).as_bytes()).await;
    for _ in 0..20 {
        assert_eq!(raw_reply(&mut tcp).await, Some(500));
    }
    assert_eq!(raw_reply(&mut tcp).await, Some(421));
    assert_eq!(raw_reply(&mut tcp).await, None);
    assert_eq!(ep.finish().await[0].end, "too many errors");
}

#[tokio::test]
async fn pipelined_transaction_and_several_messages() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    // RFC 2920: everything up to DATA in one write.
    raw_send(
        &mut tcp,
        b"EHLO p.test\r\nMAIL FROM:<a@p.test>\r\nRCPT TO:<b@q.test>\r\nRCPT TO:<c@q.test>\r\nDATA\r\n",
    )
    .await;
    for code in [250, 250, 250, 250, 354] {
        assert_eq!(raw_reply(&mut tcp).await, Some(code));
    }
    raw_send(
        &mut tcp,
        b"one\r\n..dot\r\n.\r\nMAIL FROM:<a@p.test>\r\nRCPT TO:<b@q.test>\r\nDATA\r\n",
    )
    .await;
    for code in [250, 250, 250, 354] {
        assert_eq!(raw_reply(&mut tcp).await, Some(code));
    }
    raw_send(&mut tcp, b"two\n.\nQUIT\r\n").await;
    assert_eq!(raw_reply(&mut tcp).await, Some(250));
    assert_eq!(raw_reply(&mut tcp).await, Some(221));
    let t = ep.finish().await.remove(0);
    assert_eq!(t.rcpt_to, vec!["b@q.test", "c@q.test", "b@q.test"]);
    assert_eq!(
        t.accepted_messages,
        vec![body_sha256(b"one\n.dot\n"), body_sha256(b"two")]
    );
    assert_eq!(t.body_sha256, Some(body_sha256(b"one\r\n.dot")));
    assert!(t.quit);
}

#[tokio::test]
async fn shutdown_ends_open_sessions() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    let Running { log, stop, task, .. } = ep;
    let _ = stop.send(());
    tokio::time::timeout(T, task)
        .await
        .expect("serve returns")
        .expect("serve does not panic");
    assert_eq!(raw_reply(&mut tcp).await, Some(421));
    let ts = log.transcripts();
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].end, "shutdown");
}

#[tokio::test]
async fn a_broken_chain_is_reported_and_starttls_gets_454() {
    let mut config = endpoint(Behaviour::Normal, true);
    if let Some(chain) = config.chain.as_mut() {
        chain.key = chain_key_of_another_cert();
    }
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    assert!(c.ehlo("client.test").await.expect("EHLO").starttls);
    let c = match c.starttls(client_config(true), sni()).await {
        StartTls::Refused(c, r) => {
            assert_eq!(r.code, 454);
            c
        }
        _ => panic!("a broken chain cannot do TLS"),
    };
    c.quit().await.expect("QUIT");
    let errors = ep.log.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("mx1-ee"));
    ep.finish().await;
}

fn chain_key_of_another_cert() -> PrivateKeyDer<'static> {
    chain("other", "other.example.test").key
}

#[tokio::test]
async fn starttls_454_refuses_and_records_nothing_of_tls() {
    let ep = Running::start(endpoint(Behaviour::Starttls454, true)).await;
    let mut c = connect(ep.addr).await;
    assert!(
        c.ehlo("client.test").await.expect("EHLO").starttls,
        "454 servers still advertise it"
    );
    let c = match c.starttls(client_config(true), sni()).await {
        StartTls::Refused(c, reply) => {
            assert_eq!(reply.code, 454);
            c
        }
        _ => panic!("STARTTLS must be refused with 454"),
    };
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert!(t.starttls_offered && !t.starttls_used && t.tls.is_none());
}

#[tokio::test]
async fn starttls_abort_and_tls_alert_fail_the_handshake() {
    for behaviour in [Behaviour::StarttlsAbort, Behaviour::TlsAlert] {
        let ep = Running::start(endpoint(behaviour, true)).await;
        let mut c = connect(ep.addr).await;
        c.ehlo("client.test").await.expect("EHLO");
        assert!(
            matches!(
                c.starttls(client_config(true), sni()).await,
                StartTls::HandshakeFailed(_)
            ),
            "{behaviour:?}: the handshake must fail"
        );
        let t = ep.finish().await.remove(0);
        assert!(t.starttls_used && t.tls.is_none(), "{behaviour:?}: {t:?}");
        match behaviour {
            Behaviour::StarttlsAbort => assert!(has_event(&t, "closed after 220"), "{t:?}"),
            _ => assert!(has_event(&t, "TLS: handshake failed"), "{t:?}"),
        }
    }
}

#[tokio::test]
async fn tls_version_limits_are_what_gets_negotiated() {
    for (behaviour, version) in [(Behaviour::Tls12Only, "TLSv1.2"), (Behaviour::Tls13Only, "TLSv1.3")] {
        let ep = Running::start(endpoint(behaviour, true)).await;
        let mut c = connect(ep.addr).await;
        c.ehlo("client.test").await.expect("EHLO");
        let StartTls::Upgraded(c, _) = c.starttls(client_config(true), sni()).await else {
            panic!("{behaviour:?}: handshake must succeed");
        };
        c.quit().await.expect("QUIT");
        let t = ep.finish().await.remove(0);
        assert_eq!(t.tls.expect("TLS established").version, version);
    }
}

#[tokio::test]
async fn scripted_replies_replace_the_usual_ones_and_are_recorded() {
    let mut config = endpoint(Behaviour::Normal, false);
    config
        .script
        .replies
        .insert(Stage::Rcpt, Reply::parse("550 5.1.1 User unknown").unwrap());
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        250
    );
    let rcpt = c.command("RCPT TO:<bob@example.test>").await.expect("RCPT");
    assert_eq!((rcpt.code, rcpt.enhanced().as_deref()), (550, Some("5.1.1")));
    // The refused recipient opened no transaction: DATA has no valid recipient.
    assert_eq!(c.command("DATA").await.expect("DATA").code, 503);
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert!(t.rcpt_to.is_empty() && !t.accepted);
    assert_eq!(t.scripted_refusal, Some(550));

    // A 421 greeting closes the connection.
    let mut config = endpoint(Behaviour::Normal, false);
    config
        .script
        .replies
        .insert(Stage::Greeting, Reply::parse("421 4.3.2 Busy").unwrap());
    let ep = Running::start(config).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(421));
    assert_eq!(raw_reply(&mut tcp).await, None, "closed after 421");
    let t = ep.finish().await.remove(0);
    assert_eq!(t.scripted_refusal, Some(421));
}

#[tokio::test]
async fn a_drop_during_data_accepts_nothing() {
    let mut config = endpoint(Behaviour::Normal, false);
    config.script.drop_in_data = true;
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        250
    );
    assert_eq!(c.command("RCPT TO:<bob@example.test>").await.expect("RCPT").code, 250);
    assert!(c.data(BODY).await.is_err(), "no final reply: the connection dropped");
    let t = ep.finish().await.remove(0);
    assert!(!t.accepted && t.accepted_messages.is_empty());
    assert_eq!(t.end, "dropped during DATA");
}

#[tokio::test]
async fn the_chain_is_chosen_by_sni_and_recorded() {
    let mut config = endpoint(Behaviour::Normal, true);
    config.sni_chains = vec![("mx1.example.test".into(), chain("mx1-by-sni", "mx1.example.test"))];
    let ep = Running::start(config).await;
    // With the name: the SNI chain.
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    let StartTls::Upgraded(c, _) = c.starttls(client_config(true), sni()).await else {
        panic!("handshake must succeed");
    };
    c.quit().await.expect("QUIT");
    // With another name: the default chain.
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    let other = ServerName::try_from("other.example.test").expect("a DNS name");
    let StartTls::Upgraded(c, _) = c.starttls(client_config(true), other).await else {
        panic!("handshake must succeed");
    };
    c.quit().await.expect("QUIT");
    let ts = ep.finish().await;
    assert_eq!(ts[0].tls.as_ref().expect("TLS").chain_label, "mx1-by-sni");
    assert_eq!(ts[1].tls.as_ref().expect("TLS").chain_label, "mx1-ee");
    assert_ne!(
        ts[0].tls.as_ref().expect("TLS").chain_spki_sha256,
        ts[1].tls.as_ref().expect("TLS").chain_spki_sha256
    );
}

#[tokio::test]
async fn scripted_delays_are_recorded() {
    let mut config = endpoint(Behaviour::Normal, false);
    config.script.delays.insert(Stage::Greeting, Duration::from_millis(10));
    let ep = Running::start(config).await;
    let c = connect(ep.addr).await;
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert!(has_event(&t, "waits 10ms before replying to greeting"), "{t:?}");
}

/// One mail transaction with `body`; the reply to the final dot.
async fn send_body(c: &mut SmtpClient, body: &[u8]) -> u16 {
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        250
    );
    assert_eq!(c.command("RCPT TO:<bob@example.test>").await.expect("RCPT").code, 250);
    c.data(body).await.expect("a reply to the final dot").code
}

fn body_with_line(len: usize, first: u8) -> Vec<u8> {
    let mut b = b"Subject: long\r\n\r\n".to_vec();
    b.push(first);
    b.extend(std::iter::repeat_n(b'x', len - 1));
    b.extend_from_slice(b"\r\nend\r\n");
    b
}

#[tokio::test]
async fn data_lines_over_1000_octets_are_refused_by_default() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    // RFC 5321 §4.5.3.1.6: 998 octets + CRLF is the longest text line; the dot the client
    // doubles for transparency does not count.
    assert_eq!(send_body(&mut c, &body_with_line(998, b'x')).await, 250);
    assert_eq!(send_body(&mut c, &body_with_line(998, b'.')).await, 250);
    // One octet more is refused with RFC 5321 §4.5.3.1.10's 500, and the session goes on.
    assert_eq!(send_body(&mut c, &body_with_line(999, b'x')).await, 500);
    assert_eq!(send_body(&mut c, &body_with_line(200_000, b'x')).await, 500);
    assert_eq!(send_body(&mut c, BODY).await, 250);
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert_eq!(t.accepted_messages.len(), 3, "{t:?}");
    assert!(has_event(&t, "DATA line over 1000 octets"), "{t:?}");
}

#[tokio::test]
async fn a_scripted_lenient_endpoint_takes_long_lines() {
    let mut config = endpoint(Behaviour::Normal, false);
    config.script.long_lines = true;
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(send_body(&mut c, &body_with_line(5000, b'x')).await, 250);
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    assert_eq!(t.accepted_messages.len(), 1, "{t:?}");
    assert!(!has_event(&t, "over 1000 octets"), "{t:?}");
}

#[tokio::test]
async fn undeclared_8bit_content_is_witnessed() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut c = connect(ep.addr).await;
    let ehlo = c.ehlo("client.test").await.expect("EHLO");
    assert!(ehlo.offers("8BITMIME") && ehlo.offers("8bitmime") && !ehlo.offers("8BIT"));
    let body = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    // Declared (RFC 6152 §3): nothing to note.
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test> BODY=8BITMIME")
            .await
            .expect("MAIL")
            .code,
        250
    );
    assert_eq!(c.command("RCPT TO:<bob@example.test>").await.expect("RCPT").code, 250);
    assert_eq!(c.data(body).await.expect("DATA").code, 250);
    // Undeclared: the endpoint takes it (as real servers do) but the transcript says so.
    assert_eq!(send_body(&mut c, body).await, 250);
    // 7-bit content needs no declaration.
    assert_eq!(send_body(&mut c, BODY).await, 250);
    c.quit().await.expect("QUIT");
    let t = ep.finish().await.remove(0);
    let noted = t.events.iter().filter(|e| e.contains("without BODY=8BITMIME")).count();
    assert_eq!(noted, 1, "{t:?}");
}

#[tokio::test]
async fn a_session_that_never_ends_is_closed_before_its_transcript_grows_without_bound() {
    let ep = Running::start(endpoint(Behaviour::Normal, false)).await;
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(220));
    // One at a time: unread pipelined commands would make the close a reset that loses the 421.
    let mut noops = 0;
    let last = loop {
        raw_send(&mut tcp, b"NOOP\r\n").await;
        match raw_reply(&mut tcp).await {
            Some(250) if noops < 6000 => noops += 1,
            other => break other,
        }
    };
    assert_eq!(last, Some(421), "after {noops} NOOPs");
    assert!(noops < 6000, "{noops}");
    let t = ep.finish().await.remove(0);
    assert_eq!(t.end, "too many commands");
    assert!(t.events.len() <= super::session::MAX_EVENTS + 4, "{}", t.events.len());
}

/// MAIL and RCPT accepted, then the body; the final reply or the error of a dropped connection.
async fn mail_and_data(c: &mut SmtpClient, body: &[u8]) -> Option<u16> {
    assert_eq!(
        c.command("MAIL FROM:<alice@sender.test>").await.expect("MAIL").code,
        250
    );
    assert_eq!(c.command("RCPT TO:<bob@example.test>").await.expect("RCPT").code, 250);
    c.data(body).await.ok().map(|r| r.code)
}

#[tokio::test]
async fn a_drop_after_n_bytes_reads_that_far_and_a_short_message_is_not_dropped() {
    // A header line, the separator, and a body of 40 lines of 50 octets (48 + CRLF): the drop
    // point falls inside the body's line 21.
    let line = "x".repeat(48);
    let body = format!("Subject: t\n\n{}", format!("{line}\n").repeat(40)).into_bytes();
    let mut config = endpoint(Behaviour::Normal, false);
    config.script.drop_in_data = true;
    config.script.drop_after_body_bytes = Some(1010);
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(mail_and_data(&mut c, &body).await, None, "no final reply: dropped");
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(
        mail_and_data(&mut c, BODY).await,
        Some(250),
        "shorter than the drop point"
    );
    c.quit().await.expect("QUIT");
    let ts = ep.finish().await;
    assert_eq!(ts[0].end, "dropped during DATA");
    assert!(
        has_event(&ts[0], "dropped during DATA, 1064 bytes in (1050 of the body)"),
        "{:?}",
        ts[0].events
    );
    assert!(ts[1].accepted, "{:?}", ts[1].events);
    assert!(has_event(&ts[1], "drop point not reached"), "{:?}", ts[1].events);
}

#[tokio::test]
async fn each_connection_runs_its_own_script_and_the_rest_the_endpoints() {
    let mut config = endpoint(Behaviour::Normal, false);
    // The endpoint's own script: every connection drops during DATA ...
    config.script.drop_in_data = true;
    // ... except the second, which gets 421 at the greeting, and the third, which is unscripted.
    let mut second = Script::default();
    second
        .replies
        .insert(Stage::Greeting, Reply::parse("421 4.3.2 Busy").unwrap());
    config.sessions = crate::smtp::Sessions([(2, second), (3, Script::default())].into_iter().collect());
    let ep = Running::start(config).await;
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(mail_and_data(&mut c, BODY).await, None, "connection 1: dropped");
    let mut tcp = TcpStream::connect(ep.addr).await.expect("connect");
    assert_eq!(raw_reply(&mut tcp).await, Some(421), "connection 2: 421");
    assert_eq!(raw_reply(&mut tcp).await, None, "closed after 421");
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(mail_and_data(&mut c, BODY).await, Some(250), "connection 3: unscripted");
    c.quit().await.expect("QUIT");
    let mut c = connect(ep.addr).await;
    c.ehlo("client.test").await.expect("EHLO");
    assert_eq!(
        mail_and_data(&mut c, BODY).await,
        None,
        "connection 4: the endpoint's script"
    );
    let ts = ep.finish().await;
    let ends: Vec<&str> = ts.iter().map(|t| t.end.as_str()).collect();
    assert_eq!(
        ends,
        [
            "dropped during DATA",
            "closed by a scripted 421",
            "quit",
            "dropped during DATA"
        ]
    );
    assert_eq!(ts[0].events[0], "S: <session script: the endpoint's>");
    assert_eq!(ts[1].events[0], "S: <session script: connection 2's own>");
    assert_eq!(ts[1].scripted_refusal, Some(421));
    assert!(ts[2].accepted);
}
