//! Our DNSSEC, judged by a validator we did not write: BIND's `delv`, given only the
//! world's trust anchor, must fully validate every answer of every scenario's world, fully
//! validate the denials (NODATA, NXDOMAIN), and call data in unsigned zones unsigned.

use danesim::pki::KeyStore;
use danesim::scenario;
use danesim::world::World;
use std::path::PathBuf;
use std::process::Command;

fn delv_path() -> PathBuf {
    let p = PathBuf::from("/usr/bin/delv");
    assert!(
        p.exists(),
        "BIND's delv is required for this test and CI must not skip it: run `ci/test` (it installs bind9-dnsutils) \
         or `apt-get install bind9-dnsutils`"
    );
    p
}

fn delv(anchors: &std::path::Path, port: u16, name: &str, rtype: &str) -> String {
    let out = Command::new(delv_path())
        .args(["@127.0.0.1", "-p", &port.to_string(), "-a"])
        .arg(anchors)
        .args(["+root=test.", name, rtype])
        .output()
        .expect("delv runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn delv_validates_every_seed_world() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = scenario::discover(&[root.join("scenarios")]).expect("scenarios are readable");
    assert!(!files.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = KeyStore::embedded();
    let dir = std::env::temp_dir().join(format!("danesim-delv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut checked = 0;
    for f in files {
        let s = scenario::load(&f).expect("seed scenarios load");
        let world = rt.block_on(World::start(&s, &keys)).expect("world starts");
        let anchors = dir.join(format!("{}.anchors", s.id));
        std::fs::write(&anchors, world.dns.trust_anchor().delv_anchors()).expect("write anchors");
        let port = world.dns_addr.port();
        // What delv must say, predicted from the world's own records (CNAMEs followed) and
        // the signing of each zone on the way: never from what our server answered.
        let predict = |name: &str, rtype: &str| -> &'static str {
            let r = world.published.resolve(name, rtype);
            match (r.secure, r.data.is_empty()) {
                (true, false) => "; fully validated",
                (true, true) => "; negative response, fully validated",
                (false, false) => "; unsigned answer",
                (false, true) => "; negative response, unsigned answer",
            }
        };
        let mut expect = vec![(s.message.domain.clone(), "MX")];
        for e in &s.endpoints {
            expect.push((e.host.clone(), "A"));
            expect.push((format!("_25._tcp.{}", e.host), "TLSA"));
        }
        expect.push((format!("no-such-host.{}", s.message.domain), "A"));
        for (name, rtype) in expect {
            let want = predict(&name, rtype);
            let out = delv(&anchors, port, &name, rtype);
            assert!(
                out.contains(want),
                "{}: delv {name} {rtype}: expected `{want}`, got:\n{out}",
                s.id
            );
            checked += 1;
        }
        rt.block_on(world.stop());
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("delv checked {checked} answers");
    assert!(checked >= 20);
}
