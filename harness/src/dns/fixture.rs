//! Test fixtures: fixed keys, the sample world of the DNS tests, and a served instance of it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{DnsError, QueryLog, SignedWorld, WorldDnsSpec, ZoneSpec, serve};

/// 64 hex digits of TLSA data for `_25._tcp.mx1.example.test`.
pub(crate) const TLSA_HEX: &str = "8CB0FC6C527506A053F4F14C8464BEBBD6DEDE2738D11468DD953D7D6A3021F1";

/// An Ed25519 PKCS#8 v1 DER (RFC 8410 §7) whose 32-byte seed is `seed_byte` repeated.
pub(crate) fn ed25519_pkcs8_v1(seed_byte: u8) -> Vec<u8> {
    let mut der = hex::decode("302e020100300506032b657004220420").expect("constant PKCS#8 prefix is valid hex");
    der.extend_from_slice(&[seed_byte; 32]);
    der
}

fn zone(origin: &str, signed: bool, seed: u8, records: &[&str]) -> ZoneSpec {
    ZoneSpec {
        origin: origin.into(),
        signed,
        key_pkcs8: ed25519_pkcs8_v1(seed),
        default_ttl: 300,
        records: records.iter().map(|s| s.to_string()).collect(),
        parsed: Vec::new(),
        ds: super::zone::DsMode::Secure,
        denial: super::zone::Denial::Nsec3,
        windows: Vec::new(),
    }
}

/// Signed `test.`, signed `example.test.` (MX, A, TLSA at mx1; mx2 without TLSA; a wildcard
/// below `wild`) and the unsigned child `insecure.test.`.
pub(crate) fn sample_spec() -> WorldDnsSpec {
    let tlsa = format!("_25._tcp.mx1 TLSA 3 1 1 {TLSA_HEX}");
    WorldDnsSpec {
        zones: vec![
            zone("test.", true, 1, &[]),
            zone(
                "example.test",
                true,
                2,
                &[
                    "@ MX 10 mx1",
                    "@ MX 20 mx2",
                    "mx1 A 192.0.2.10",
                    &tlsa,
                    "mx2 A 192.0.2.20",
                    "*.wild A 192.0.2.99",
                ],
            ),
            zone("insecure.test.", false, 3, &["@ MX 10 mx", "mx A 192.0.2.30"]),
        ],
        // 2023-11-14 .. 2030-03-17: fixed, so signatures are byte-stable and valid today.
        inception: 1_700_000_000,
        expiration: 1_900_000_000,
        nameserver: Ipv4Addr::LOCALHOST,
        faults: Vec::new(),
        rogue_key_pkcs8: ed25519_pkcs8_v1(99),
    }
}

/// A world being served on 127.0.0.1 (UDP and TCP on the same port) until dropped.
pub(crate) struct Served {
    pub addr: SocketAddr,
    pub world: Arc<SignedWorld>,
    pub log: QueryLog,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), DnsError>>>,
}

impl Served {
    /// Stop the server and wait for it.
    pub async fn stop(mut self) -> Result<(), DnsError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| DnsError::Server(format!("server task: {e}")))?,
            None => Ok(()),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serve `spec` on 127.0.0.1:PORT (one port for UDP and TCP).
pub(crate) async fn serve_spec(spec: &WorldDnsSpec) -> Served {
    let world = Arc::new(SignedWorld::build(spec).expect("the fixture world builds"));
    // Find a port free for both transports: bind UDP on :0, then TCP on the same port.
    let mut bound = None;
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP on loopback");
        let port = udp.local_addr().expect("bound socket has an address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            bound = Some((udp, tcp));
            break;
        }
    }
    let (udp, tcp) = bound.expect("some loopback port is free for both UDP and TCP");
    let addr = udp.local_addr().expect("bound socket has an address");
    let log = QueryLog::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(world.clone(), udp, tcp, log.clone(), async move {
        let _ = stopped.await;
    }));
    Served {
        addr,
        world,
        log,
        stop: Some(stop),
        task: Some(task),
    }
}

pub(crate) async fn serve_sample() -> Served {
    serve_spec(&sample_spec()).await
}
