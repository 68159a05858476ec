//! Cross-checks with independent validators: BIND's delv against the served world, and
//! ldns-verify-zone against the zone text.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::process::Command;

use super::fixture::{self, Served};
use super::world::SignedWorld;

const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// A private scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "danesim-dns-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a scratch directory in the temp dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run a tool to completion (killed on timeout), failing with an install hint if missing.
async fn run(program: &str, package: &str, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(TOOL_TIMEOUT, command.output()).await;
    match output {
        Err(_) => panic!("`{program} {}` did not finish within {TOOL_TIMEOUT:?}", args.join(" ")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed: run `apt-get install {package}`")
        }
        Ok(Err(e)) => panic!("cannot run `{program}`: {e}"),
        Ok(Ok(output)) => output,
    }
}

async fn delv(served: &Served, anchors: &Path, name: &str, rtype: &str) -> String {
    let port = served.addr.port().to_string();
    let anchors = anchors.to_str().expect("temp paths are UTF-8");
    let output = run(
        "delv",
        "bind9-dnsutils",
        &["@127.0.0.1", "-p", &port, "-a", anchors, "+root=test.", name, rtype],
    )
    .await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn delv_validates_the_served_world() {
    let served = fixture::serve_sample().await;
    let scratch = Scratch::new("delv");
    let anchors = scratch.file("anchors.conf", &served.world.trust_anchor().delv_anchors());

    for (name, rtype) in [
        ("example.test.", "MX"),
        ("mx1.example.test.", "A"),
        ("_25._tcp.mx1.example.test.", "TLSA"),
        // A wildcard expansion keeps its NSEC3 (RFC 5155 §7.2.6).
        ("host.wild.example.test.", "A"),
    ] {
        let out = delv(&served, &anchors, name, rtype).await;
        assert!(
            out.contains("; fully validated"),
            "{name} {rtype}: delv did not fully validate:\n{out}"
        );
    }
    for (name, rtype) in [
        // mx2 has no TLSA (an NXDOMAIN: `_tcp.mx2` does not exist).
        ("_25._tcp.mx2.example.test.", "TLSA"),
        ("nope.example.test.", "A"),
        // NODATA: mx1 exists without AAAA.
        ("mx1.example.test.", "AAAA"),
    ] {
        let out = delv(&served, &anchors, name, rtype).await;
        assert!(
            out.contains("; negative response, fully validated"),
            "{name} {rtype}: delv did not validate the denial:\n{out}"
        );
    }
    let out = delv(&served, &anchors, "insecure.test.", "MX").await;
    assert!(
        out.contains("; unsigned answer"),
        "insecure.test MX: delv did not see an insecure delegation:\n{out}"
    );
    assert!(out.contains("mx.insecure.test."), "{out}");

    // Hickory defect 1: the DS of a child apex is answered by the parent (with data).
    let log = served.log.entries();
    assert!(
        log.iter()
            .any(|e| e.qname == "example.test." && e.qtype == "DS" && e.answers > 0),
        "DS example.test. was not answered from test.: {log:?}"
    );
    served.stop().await.unwrap();
}

#[tokio::test]
async fn delv_rejects_a_wrong_anchor() {
    let served = fixture::serve_sample().await;
    let scratch = Scratch::new("delv-bad");
    let mut anchor = served.world.trust_anchor();
    anchor.public_key[5] ^= 0x40;
    let anchors = scratch.file("anchors.conf", &anchor.delv_anchors());
    let out = delv(&served, &anchors, "mx1.example.test.", "A").await;
    assert!(!out.contains("; fully validated"), "{out}");
    served.stop().await.unwrap();
}

#[tokio::test]
async fn ldns_verify_zone_accepts_the_zone_text() {
    let world = SignedWorld::build(&fixture::sample_spec()).unwrap();
    let scratch = Scratch::new("ldns");
    for origin in ["example.test.", "test."] {
        let text = world.zone_text(origin).unwrap().unwrap();
        let path = scratch.file(&format!("{origin}zone"), &text);
        let path = path.to_str().expect("temp paths are UTF-8");
        // The fixed window is 2023-11-14 .. 2030-03-17: validate at a time inside it.
        let output = run("ldns-verify-zone", "ldnsutils", &["-t", "20250101000000", path]).await;
        assert!(
            output.status.success(),
            "ldns-verify-zone rejected {origin}:\n{}{}\n{text}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
