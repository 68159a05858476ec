//! A bounded load loop against `danesim serve` (issue 14: serve's memory and idle CPU must
//! stay flat under load). `ci/bench` runs it; it is a client only and never asserts.
//!
//! ```text
//! cargo run --release --example serve_load -- DNS_ADDR SMTP_ADDR [QUERIES] [SESSIONS]
//! ```
//!
//! `DNS_ADDR` and `SMTP_ADDR` are the loopback addresses serve prints (`dns ADDR`,
//! `smtp HOST WORLD-ADDR -> ADDR`); anything else is refused, so that the loop cannot be
//! aimed away from this machine. It sends `QUERIES` DNS queries over UDP from a fixed number
//! of lockstep clients (the bounded window: at most `DNS_WINDOW` in flight), then runs
//! `SESSIONS` SMTP sessions (connect, EHLO, QUIT) with at most `SMTP_WINDOW` at once, and
//! prints one line of figures per protocol.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

/// DNS queries in flight at most (one per lockstep client).
const DNS_WINDOW: usize = 64;
/// SMTP sessions at once at most.
const SMTP_WINDOW: usize = 16;
/// A query or an SMTP reply not answered within this is counted as lost and the loop goes on.
const WAIT: Duration = Duration::from_secs(2);

/// What the world of `dane-ee/positive-control` answers, and names it does not have (NXDOMAIN
/// with an NSEC3 proof, so that the denial path is exercised as well).
const QUESTIONS: [(&str, RecordType); 4] = [
    ("example.test.", RecordType::MX),
    ("_25._tcp.mx1.example.test.", RecordType::TLSA),
    ("mx1.example.test.", RecordType::A),
    ("absent.example.test.", RecordType::A),
];

fn usage() -> ! {
    eprintln!("usage: serve_load DNS_ADDR SMTP_ADDR [QUERIES] [SESSIONS]   (loopback addresses only)");
    std::process::exit(2)
}

fn loopback(arg: Option<String>) -> SocketAddr {
    match arg.and_then(|a| a.parse::<SocketAddr>().ok()) {
        Some(a) if a.ip().is_loopback() => a,
        _ => usage(),
    }
}

fn count(arg: Option<String>, default: u64) -> u64 {
    arg.map_or(default, |a| a.parse().unwrap_or_else(|_| usage()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dns = loopback(args.next());
    let smtp = loopback(args.next());
    let queries = count(args.next(), 1_000_000);
    let sessions = count(args.next(), 10_000);

    let (answered, lost, secs) = dns_load(dns, queries).await;
    println!(
        "serve_load dns: {queries} queries, {answered} answered, {lost} lost, {secs:.1} s, {:.0} queries/s",
        answered as f64 / secs
    );
    let (ok, failed, secs) = smtp_load(smtp, sessions).await;
    println!(
        "serve_load smtp: {sessions} sessions, {ok} completed, {failed} failed, {secs:.1} s, {:.0} sessions/s",
        ok as f64 / secs
    );
}

/// Wire form of each question, with EDNS and DO=1 (RFC 3225) as a validator asks.
fn templates() -> Vec<Vec<u8>> {
    QUESTIONS
        .iter()
        .map(|(name, rtype)| {
            let mut m = Message::query();
            m.add_query(Query::query(Name::from_ascii(name).expect("a constant name"), *rtype));
            let mut edns = Edns::new();
            edns.set_dnssec_ok(true);
            edns.set_max_payload(1232);
            m.set_edns(edns);
            m.to_vec().expect("a constant query encodes")
        })
        .collect()
}

async fn dns_load(server: SocketAddr, total: u64) -> (u64, u64, f64) {
    let templates = Arc::new(templates());
    let next = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..DNS_WINDOW {
        let (templates, next, answered, lost) = (templates.clone(), next.clone(), answered.clone(), lost.clone());
        tasks.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback UDP socket");
            socket.connect(server).await.expect("connect the UDP socket");
            let mut buf = vec![0u8; 4096];
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let mut query = templates[(n % templates.len() as u64) as usize].clone();
                let id = (n as u16).to_be_bytes();
                query[..2].copy_from_slice(&id);
                if socket.send(&query).await.is_err() {
                    lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // Skip stale answers (to a query that had timed out) until ours arrives.
                let got = tokio::time::timeout(WAIT, async {
                    loop {
                        match socket.recv(&mut buf).await {
                            Ok(len) if len >= 2 && buf[..2] == id => return true,
                            Ok(_) => continue,
                            Err(_) => return false,
                        }
                    }
                })
                .await;
                let counter = if matches!(got, Ok(true)) { &answered } else { &lost };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    (answered.load(Ordering::Relaxed), lost.load(Ordering::Relaxed), secs)
}

async fn smtp_load(server: SocketAddr, total: u64) -> (u64, u64, f64) {
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SMTP_WINDOW {
        let (next, ok, failed) = (next.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let done = tokio::time::timeout(4 * WAIT, session(server)).await;
                let counter = if matches!(done, Ok(Ok(()))) { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), secs)
}

/// One short SMTP session: greeting, EHLO (RFC 5321 §4.1.1.1), QUIT (§4.1.1.10).
async fn session(server: SocketAddr) -> std::io::Result<()> {
    let tcp = TcpStream::connect(server).await?;
    tcp.set_nodelay(true)?;
    let (read, mut write) = tcp.into_split();
    let mut lines = BufReader::new(read).lines();
    expect(&mut lines, "220").await?;
    write.write_all(b"EHLO load.client.test\r\n").await?;
    expect(&mut lines, "250").await?;
    write.write_all(b"QUIT\r\n").await?;
    expect(&mut lines, "221").await?;
    Ok(())
}

/// Reads one (possibly multi-line, RFC 5321 §4.2.1) reply and checks its code.
async fn expect(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    code: &str,
) -> std::io::Result<()> {
    loop {
        let Some(line) = lines.next_line().await? else {
            return Err(std::io::Error::other("connection closed"));
        };
        if !line.starts_with(code) {
            return Err(std::io::Error::other(format!("expected {code}, got {line}")));
        }
        // "250-..." continues; "250 ..." (or a bare code) ends the reply.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
