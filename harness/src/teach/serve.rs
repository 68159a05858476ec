//! `danesim serve SCENARIO`: the scenario's world on loopback until the shutdown future
//! resolves (the CLI passes SIGINT or SIGTERM), so that a learner can point real tools at
//! it: `dig`, `delv` with the world's trust anchor, `posttls-finger`, `swaks`.
//!
//! The first lines on stdout are machine-readable (`dns ADDR`, `smtp HOST WORLD-ADDR ->
//! LOOPBACK-ADDR`, `anchor FILE`, then `ready`); the suggested commands follow as `#`
//! lines, then one line per DNS query (`query ...`) and per finished SMTP connection
//! (`smtp ...`) as the witnesses record them.

use super::{TeachError, lesson};
use crate::pki::KeyStore;
use crate::scenario::Scenario;
use crate::world::World;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How often idle logs are read: often enough to feel live, rarely enough to cost nothing
/// (each read copies only what is new).
const POLL: Duration = Duration::from_millis(100);
/// How soon the logs are read again after a read that found something: under load, often
/// enough that the bounded history below is printed before it is overwritten.
const BUSY_POLL: Duration = Duration::from_millis(10);
/// The DNS queries serve keeps (issue 14: it kept every one, and RSS and idle CPU grew with
/// them). At the busy poll this covers 800k queries/s, ten times what the server answers.
pub(super) const QUERY_HISTORY: usize = 8192;
/// The finished SMTP connections kept per endpoint.
pub(super) const TRANSCRIPT_HISTORY: usize = 1024;

/// What a serve session saw, for the closing line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    pub queries: usize,
    pub connections: usize,
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM, with the signal's name. The handlers
/// are installed before this returns, so a signal that arrives at once is not lost (the
/// default action would kill the process without stopping the world).
pub fn shutdown_signals() -> Result<impl Future<Output = &'static str>, TeachError> {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind, name| signal(kind).map_err(|source| TeachError::Signal { signal: name, source });
    let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
    let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}

/// Serves `s` until `shutdown` resolves, then stops every task of the world and removes the
/// trust anchor file. Must run inside a tokio runtime.
pub async fn serve(
    s: &Scenario,
    keys: &KeyStore,
    shutdown: impl Future<Output = &'static str>,
) -> Result<Served, TeachError> {
    serve_in(&std::env::temp_dir(), s, keys, shutdown).await
}

/// As [`serve`], with its scratch directory (new, 0700, random name: world::workdir) under `parent`.
async fn serve_in(
    parent: &Path,
    s: &Scenario,
    keys: &KeyStore,
    shutdown: impl Future<Output = &'static str>,
) -> Result<Served, TeachError> {
    let world = World::start(s, keys).await?;
    let dir = match crate::world::workdir::scratch_in(parent, "danesim-serve-") {
        Ok(d) => d,
        Err(e) => {
            world.stop().await;
            return Err(e.into());
        }
    };
    let anchors = dir.path().join("delv.anchors");
    if let Err(e) = write_anchor(&world, dir.path(), &anchors) {
        world.stop().await;
        return Err(e);
    }
    announce(s, &world, &anchors);
    let (signal, served) = watch(&world, shutdown).await;
    world.stop().await;
    let _ = dir.close();
    crate::outln!(
        "# {signal}: stopped the world of {} after {} DNS queries and {} SMTP connections",
        s.id,
        served.queries,
        served.connections
    );
    Ok(served)
}

/// Logs what arrives at `world` until `shutdown` resolves: the signal's name and the totals.
///
/// The world's logs are bounded first (a serve may run for days), and each read takes only
/// the entries after a cursor, so memory stays flat and an idle serve costs nothing.
pub(super) async fn watch(world: &World, shutdown: impl Future<Output = &'static str>) -> (&'static str, Served) {
    world.queries.set_capacity(QUERY_HISTORY);
    for e in &world.endpoints {
        e.transcripts.set_capacity(TRANSCRIPT_HISTORY);
        if let Some(a) = &e.attacker {
            a.set_capacity(TRANSCRIPT_HISTORY);
        }
    }
    let mut seen = Seen {
        queries: 0,
        connections: vec![0; world.endpoints.len()],
    };
    tokio::pin!(shutdown);
    let mut delay = POLL;
    let signal = loop {
        tokio::select! {
            sig = &mut shutdown => break sig,
            _ = tokio::time::sleep(delay) => {
                delay = if seen.report(world) { BUSY_POLL } else { POLL };
                // Nobody reads the lines any more (`serve | head`): stop like a filter would.
                if crate::output::closed() {
                    break "stdout closed";
                }
            }
        }
    };
    // What arrived between the last read and the signal.
    seen.report(world);
    let served = Served {
        queries: usize::try_from(seen.queries).unwrap_or(usize::MAX),
        connections: usize::try_from(seen.connections.iter().sum::<u64>()).unwrap_or(usize::MAX),
    };
    (signal, served)
}

/// The delv anchor file, and an empty Postfix configuration directory: posttls-finger
/// refuses to start without a main.cf, and the defaults are what the suggestions need.
pub(super) fn write_anchor(world: &World, dir: &Path, file: &Path) -> Result<(), TeachError> {
    let write = |p: &Path, source| TeachError::Write {
        path: p.to_path_buf(),
        source,
    };
    let postfix = dir.join("postfix");
    std::fs::create_dir_all(&postfix).map_err(|e| write(&postfix, e))?;
    let main_cf = postfix.join("main.cf");
    std::fs::write(&main_cf, "").map_err(|e| write(&main_cf, e))?;
    std::fs::write(file, world.dns.trust_anchor().delv_anchors()).map_err(|e| write(file, e))
}

/// The machine-readable lines, then how to use them.
fn announce(s: &Scenario, world: &World, anchors: &Path) {
    let dns = world.dns_addr;
    crate::outln!("dns {dns}");
    let mut smtp = Vec::new();
    for e in &world.endpoints {
        let public = SocketAddr::new(e.decl.address, e.decl.port);
        if let Some(local) = world.dialer.route(public) {
            crate::outln!(
                "smtp {} {} -> {local}",
                e.decl.host.trim_end_matches('.'),
                e.decl.shown_address()
            );
            smtp.push((e, local));
        }
    }
    crate::outln!("anchor {}", anchors.display());
    crate::outln!("ready");

    let (ip, port) = (dns.ip(), dns.port());
    let domain = s.message.domain.trim_end_matches('.');
    crate::outln!("# danesim serve: {} ({})", s.id, s.title);
    crate::outln!(
        "# The world runs on loopback until Ctrl-C (SIGINT) or SIGTERM. DNS, with DNSSEC (trust anchor: the key of test.):"
    );
    crate::outln!("#   dig @{ip} -p {port} +dnssec MX {domain}");
    crate::outln!(
        "#   delv @{ip} -p {port} -a {} +root=test. MX {domain}",
        anchors.display()
    );
    for e in &s.endpoints {
        let host = e.host.trim_end_matches('.');
        crate::outln!(
            "#   delv @{ip} -p {port} -a {} +root=test. TLSA _25._tcp.{host}",
            anchors.display()
        );
    }
    crate::outln!("# SMTP (world address:25 is served on the loopback port shown; tools cannot look up MX or TLSA");
    crate::outln!("# through this DNS port, so name the server directly):");
    for (e, local) in &smtp {
        let (lip, lport) = (local.ip(), local.port());
        crate::outln!(
            "#   swaks --server {lip}:{lport} --from {} --to {} --tls",
            s.message.from,
            s.message.to
        );
        let pf = format!("MAIL_CONFIG={}", anchors.with_file_name("postfix").display());
        crate::outln!("#   {pf} posttls-finger -c -C -L summary \"[{lip}]:{lport}\"   (the chain it presents, in PEM)");
        let leaf = e.decl.chain.first().and_then(|n| world.pki.get(n));
        if let Some(c) = leaf {
            let fp: Vec<String> = hex::decode(&c.spki_sha256)
                .unwrap_or_default()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            // Postfix's fingerprint level with a public-key digest is what a 3 1 1 record checks.
            crate::outln!(
                "#   {pf} posttls-finger -c -l fingerprint -d sha256 \"[{lip}]:{lport}\" {}   (checks the key as `3 1 1` would)",
                fp.join(":")
            );
        }
    }
    if s.timeline.is_some() {
        crate::outln!(
            "# This scenario is a timeline: serve shows its world before any step; `danesim explain` plays it."
        );
    }
}

/// How far the printing has got: cursors into the world's logs (entries ever recorded).
struct Seen {
    queries: u64,
    /// One cursor per endpoint, in `world.endpoints` order.
    connections: Vec<u64>,
}

impl Seen {
    /// Prints what arrived since the last call; whether there was anything.
    fn report(&mut self, world: &World) -> bool {
        let new = world.queries.since(self.queries);
        if new.skipped > 0 {
            crate::outln!(
                "# {} DNS queries not shown: they came faster than they could be printed (serve keeps the latest {QUERY_HISTORY})",
                new.skipped
            );
        }
        let mut any = new.next != self.queries;
        for q in &new.entries {
            crate::outln!(
                "query {} {}{}{} {} -> {}, {} answer record(s){}",
                q.qname,
                q.qtype,
                if q.dnssec_ok { " +do" } else { "" },
                if q.checking_disabled { " +cd" } else { "" },
                if q.tcp { "tcp" } else { "udp" },
                q.rcode,
                q.answers,
                q.fault.as_deref().map(|f| format!(" (fault {f})")).unwrap_or_default()
            );
        }
        self.queries = new.next;
        for (e, cursor) in world.endpoints.iter().zip(&mut self.connections) {
            let new = e.transcripts.since(*cursor);
            if new.skipped > 0 {
                crate::outln!(
                    "# {} SMTP connections to {} not shown (serve keeps the latest {TRANSCRIPT_HISTORY})",
                    new.skipped,
                    e.decl.host.trim_end_matches('.')
                );
            }
            any |= new.next != *cursor;
            for t in &new.transcripts {
                crate::outln!(
                    "smtp {} {} connection {}: {}",
                    e.decl.host.trim_end_matches('.'),
                    e.decl.shown_address(),
                    t.connection,
                    lesson::connection(t)
                );
            }
            *cursor = new.next;
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serve_stops_when_told_and_leaves_no_files() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dane-ee/positive-control.toml");
        let s = crate::scenario::load(&file).expect("the seed scenario loads");
        let parent = tempfile::tempdir().expect("a temp dir");
        let served = serve_in(parent.path(), &s, &KeyStore::embedded(), async { "a test" })
            .await
            .expect("the world starts and stops");
        assert_eq!(served, Served::default());
        let left: Vec<_> = std::fs::read_dir(parent.path()).expect("listable").flatten().collect();
        assert!(left.is_empty(), "the scratch directory is removed: {left:?}");
    }
}
