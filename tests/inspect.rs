//! `danesim tlsa` and `danesim check` as a user meets them: record lines cross-checked with
//! ldns-dane, check reports snapshotted on the fixture sites of `fixtures/check/`, exit codes,
//! and errors that name the file (and line:col for zone files).
//!
//! The fixture sites are generated here, deterministically (fixed Ed25519 keys from
//! `fixtures/keys/`, fixed dates, ldns-signzone with fixed times), and
//! `check_fixtures_are_reproducible` fails if the committed files differ from what the generator
//! makes. `fixtures/check/regen.sh` rewrites them (DANESIM_REGEN_FIXTURES=1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use danesim::pki::{CertSpec, KeyRef, KeyStore, Pki};
mod common;

use common::{TempDir, danesim, root};

/// A program from ldnsutils, or a failure that says how to install it (CI installs it with
/// `ci/install-deps`; these tests do not skip).
fn ldns_tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: install ldnsutils (`apt-get install ldnsutils`, which ci/install-deps does)");
}

// ---------------------------------------------------------------------------------------------
// danesim tlsa

/// The RDATA of a TLSA line (`3 1 1 <hex>`), hex lowercased and unsplit.
fn rdata_of(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| *f == "TLSA")
        .unwrap_or_else(|| panic!("no TLSA in `{line}`"));
    let rest = &fields[at + 1..];
    assert!(rest.len() >= 4, "short TLSA line `{line}`");
    format!(
        "{} {} {} {}",
        rest[0],
        rest[1],
        rest[2],
        rest[3..].concat().to_lowercase()
    )
}

/// Chains for the cross-check: an Ed25519 leaf and a P-256 leaf, each under a self-signed
/// Ed25519 CA (ldns-dane wants a chain that ends in a self-signed certificate for usage 2).
fn cross_check_chains(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let specs = vec![
        ca_spec("xc-ca", "ed25519:xc-ca", "Cross-check CA"),
        leaf_spec("xc-ed", "ed25519:xc-ed", "mx.example.com", "xc-ca"),
        leaf_spec("xc-p256", "p256:1", "mx2.example.com", "xc-ca"),
    ];
    let pki = Pki::issue(&specs, &KeyStore::embedded()).expect("cross-check certificates issue");
    [("xc-ed", "mx.example.com"), ("xc-p256", "mx2.example.com")]
        .into_iter()
        .map(|(name, host)| {
            let p = dir.join(format!("{name}.pem"));
            std::fs::write(&p, chain_pem(&pki, name)).expect("temp dir is writable");
            (p, host)
        })
        .collect()
}

#[test]
fn tlsa_agrees_with_ldns_dane_for_every_combination() {
    let ldns = ldns_tool("ldns-dane");
    let dir = TempDir::new("danesim-inspect");
    let mut compared = 0;
    for (pem, host) in cross_check_chains(dir.path()) {
        let pem_s = pem.to_str().expect("a UTF-8 temp path");
        for usage in ["3", "2"] {
            for selector in ["0", "1"] {
                for mtype in ["0", "1", "2"] {
                    let (code, ours, err) = danesim(&[
                        "tlsa",
                        "--cert",
                        pem_s,
                        "--host",
                        host,
                        "--usage",
                        usage,
                        "--selector",
                        selector,
                        "--mtype",
                        mtype,
                    ]);
                    assert_eq!(code, 0, "{err}");
                    assert_eq!(ours.lines().count(), 1, "one line on stdout: {ours}");
                    assert!(
                        ours.starts_with(&format!("_25._tcp.{host}. IN TLSA {usage} {selector} {mtype} ")),
                        "{ours}"
                    );
                    // -n: no name check against the certificate; -c: the certificate file, so
                    // no TLS connection and no DNS lookup is made.
                    let out = Command::new(&ldns)
                        .args(["-n", "-c", pem_s, "create", host, "25", usage, selector, mtype])
                        .output()
                        .expect("ldns-dane runs");
                    let theirs = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success(),
                        "ldns-dane {usage} {selector} {mtype} failed: {}{theirs}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert_eq!(
                        rdata_of(&ours),
                        rdata_of(&theirs),
                        "danesim and ldns-dane disagree on {usage} {selector} {mtype} for {pem_s}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(
        compared, 24,
        "2 chains x usages 3, 2 x selectors 0, 1 x matching types 0, 1, 2"
    );
}

#[test]
fn tlsa_defaults_and_certificate_choice() {
    let dir = TempDir::new("danesim-inspect");
    let chains = cross_check_chains(dir.path());
    let pem = chains[0].0.to_str().expect("a UTF-8 temp path");
    // Defaults: 3 1 1, port 25, tcp, the owner from the leaf's DNS name (noted on stderr).
    let (code, out, err) = danesim(&["tlsa", "--cert", pem]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("_25._tcp.mx.example.com. IN TLSA 3 1 1 "), "{out}");
    let hex = out.trim().rsplit(' ').next().expect("a hex field");
    assert_eq!(hex.len(), 64);
    assert!(
        hex.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
        "uppercase hex: {hex}"
    );
    assert!(
        err.contains("owner name from the leaf certificate's first DNS name"),
        "{err}"
    );

    // Usage 2 takes the last certificate (the CA); --index 0 takes the leaf instead.
    let (_, ta, err) = danesim(&["tlsa", "--cert", pem, "--usage", "2", "--host", "MX.Example.com."]);
    assert!(ta.starts_with("_25._tcp.mx.example.com. IN TLSA 2 1 1 "), "{ta}");
    assert!(
        err.contains("trust anchor: certificate 1 of") && err.contains("CN=Cross-check CA"),
        "{err}"
    );
    let (_, leaf_ta, err) = danesim(&["tlsa", "--cert", pem, "--usage", "2", "--index", "0"]);
    assert_ne!(rdata_of(&ta), rdata_of(&leaf_ta));
    assert_eq!(
        rdata_of(&leaf_ta).split_once(' ').unwrap().1,
        rdata_of(&out).split_once(' ').unwrap().1
    );
    assert!(err.contains("is not a CA certificate"), "{err}");

    // Another port and protocol.
    let (_, other, _) = danesim(&[
        "tlsa",
        "--cert",
        pem,
        "--port",
        "465",
        "--proto",
        "udp",
        "--host",
        "smtp.example",
    ]);
    assert!(other.starts_with("_465._udp.smtp.example. IN TLSA 3 1 1 "), "{other}");

    // Usages 0 and 1 print, with a note that SMTP cannot use them.
    let (code, _, err) = danesim(&["tlsa", "--cert", pem, "--usage", "1"]);
    assert_eq!(code, 0);
    assert!(err.contains("usage 1 is unusable for SMTP (RFC 7672 §3.1.3)"), "{err}");
}

#[test]
fn tlsa_bad_input_exits_2_and_says_what_to_do() {
    let dir = TempDir::new("danesim-inspect");
    let chains = cross_check_chains(dir.path());
    let pem = chains[0].0.to_str().expect("a UTF-8 temp path");
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--cert", "no/such.pem"], "cannot read no/such.pem".into()),
        (
            vec!["--cert", key.to_str().unwrap()],
            "found only PRIVATE KEY block(s)".into(),
        ),
        (
            vec!["--cert", text.to_str().unwrap()],
            "no PEM certificate found".into(),
        ),
        (
            vec!["--cert", pem, "--usage", "4"],
            "--usage 4: not a defined certificate usage".into(),
        ),
        (
            vec!["--cert", pem, "--selector", "2"],
            "--selector 2: not a defined selector".into(),
        ),
        (
            vec!["--cert", pem, "--mtype", "3"],
            "--mtype 3: not a defined matching type".into(),
        ),
        (
            vec!["--cert", pem, "--proto", "quic"],
            "--proto quic: use tcp, udp or sctp".into(),
        ),
        (vec!["--cert", pem, "--index", "5"], "--index 5:".into()),
        (
            vec!["--cert", pem, "--host", "bad..name"],
            "--host bad..name: not a domain name".into(),
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["tlsa"];
        all.extend(&args);
        let (code, out, err) = danesim(&all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: nothing on stdout, got {out}");
        assert!(
            err.starts_with("error: ") && err.contains(&want),
            "{args:?}: expected `{want}` in:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, err) = danesim(&["tlsa"]);
    assert_eq!(code, 2, "clap reports a missing --cert: {err}");
}

// ---------------------------------------------------------------------------------------------
// danesim check: the fixture sites

/// Fixed validity: far in the past and future, so no fixture expires; tests pass --now too.
fn dates() -> (time::OffsetDateTime, time::OffsetDateTime) {
    (rcgen::date_time_ymd(2025, 1, 1), rcgen::date_time_ymd(2099, 12, 31))
}

fn ca_spec(name: &str, key: &str, cn: &str) -> CertSpec {
    let (nb, na) = dates();
    CertSpec {
        ca: true,
        common_name: Some(cn.into()),
        ..CertSpec::new(name, KeyRef::parse(key).expect("a valid key reference"), nb, na)
    }
}

fn leaf_spec(name: &str, key: &str, host: &str, issuer: &str) -> CertSpec {
    let (nb, na) = dates();
    CertSpec {
        issuer: Some(issuer.into()),
        common_name: Some(host.into()),
        sans: vec![host.into()],
        ..CertSpec::new(name, KeyRef::parse(key).expect("a valid key reference"), nb, na)
    }
}

/// Every certificate of the fixture sites. Ed25519 only, so every byte is reproducible.
fn fixture_specs() -> Vec<CertSpec> {
    vec![
        ca_spec("issuing-ca", "ed25519:check-issuing-ca", "Example Issuing CA"),
        // good/: the served certificate and the next one, published ahead.
        leaf_spec(
            "good-mail",
            "ed25519:check-good-mail-1",
            "mail.example.com",
            "issuing-ca",
        ),
        leaf_spec(
            "good-mail-next",
            "ed25519:check-good-mail-2",
            "mail.example.com",
            "issuing-ca",
        ),
        // dane-ta/: two hosts under one private CA, and that CA's successor.
        ca_spec("net-ca", "ed25519:check-net-ca-1", "Example Net Mail CA"),
        ca_spec("net-ca-next", "ed25519:check-net-ca-2", "Example Net Mail CA 2"),
        leaf_spec("ta-mx1", "ed25519:check-ta-mx1", "mx1.example.net", "net-ca"),
        leaf_spec("ta-mx2", "ed25519:check-ta-mx2", "mx2.example.net", "net-ca"),
        // stale-tlsa/: renewed with a new key; the TLSA record still names the old one.
        leaf_spec(
            "stale-old",
            "ed25519:check-stale-mail-1",
            "mail.example.org",
            "issuing-ca",
        ),
        leaf_spec(
            "stale-new",
            "ed25519:check-stale-mail-2",
            "mail.example.org",
            "issuing-ca",
        ),
        // risky/
        leaf_spec(
            "risky-mx1",
            "ed25519:check-risky-mx1",
            "mx1.risky.example",
            "issuing-ca",
        ),
        leaf_spec(
            "risky-mx2",
            "ed25519:check-risky-mx2",
            "mx2.risky.example",
            "issuing-ca",
        ),
        leaf_spec(
            "risky-server",
            "ed25519:check-risky-server",
            "server.risky.example",
            "issuing-ca",
        ),
        // agility/: the current key (SHA-256) and the previous one (SHA-512).
        leaf_spec(
            "agility-mail",
            "ed25519:check-agility-mail-2",
            "mail.agility.example",
            "issuing-ca",
        ),
        leaf_spec(
            "agility-old",
            "ed25519:check-agility-mail-1",
            "mail.agility.example",
            "issuing-ca",
        ),
    ]
}

fn pem_block(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The chain as the server sends it: the leaf, then its issuers.
fn chain_pem(pki: &Pki, leaf: &str) -> String {
    pki.chain(leaf)
        .expect("the fixture chain exists")
        .iter()
        .map(|c| pem_block(&c.der))
        .collect()
}

/// The RDATA `danesim tlsa` prints for a file (the CLI under test makes the fixtures' TLSA).
fn tlsa_rdata(pem: &Path, params: &str, index: Option<usize>) -> String {
    let p: Vec<&str> = params.split(' ').collect();
    let mut args = vec![
        "tlsa",
        "--cert",
        pem.to_str().expect("a UTF-8 path"),
        "--host",
        "fixture.invalid",
        "--usage",
        p[0],
        "--selector",
        p[1],
        "--mtype",
        p[2],
    ];
    let idx = index.map(|i| i.to_string());
    if let Some(i) = &idx {
        args.extend(["--index", i.as_str()]);
    }
    let (code, out, err) = danesim(&args);
    assert_eq!(code, 0, "{err}");
    out.trim().split_once(" IN TLSA ").expect("a TLSA line").1.to_string()
}

/// Signs a zone with ldns-signzone and a key derived like every danesim key (label
/// `check-zone:<origin>`), with fixed inception and expiration: the output is the same
/// every run (Ed25519 signatures are deterministic).
fn sign(zone: &Path, origin: &str, out: &Path, scratch: &Path) {
    let keys = KeyStore::embedded();
    let label = format!("check-zone:{origin}");
    let pkcs8 = keys.ed25519_pkcs8(&label);
    let seed = &pkcs8[pkcs8.len() - 32..];
    let pair = keys
        .key_pair(&KeyRef::parse(&format!("ed25519:{label}")).expect("a valid key reference"))
        .expect("an Ed25519 key pair");
    let b64 = base64::engine::general_purpose::STANDARD;
    let base = scratch.join(format!("K{origin}zone"));
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", base.display()));
    std::fs::write(
        with("private"),
        format!(
            "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: {}\n",
            b64.encode(seed)
        ),
    )
    .expect("scratch dir is writable");
    std::fs::write(
        with("key"),
        format!("{origin}\tIN\tDNSKEY\t257 3 15 {}\n", b64.encode(pair.public_key_raw())),
    )
    .expect("scratch dir is writable");
    // RRSIG times are 32-bit serial numbers, read within 68 years of now (RFC 4034 §3.1.5):
    // 2085 is as far as stays unambiguous from 2025 on.
    let st = Command::new(ldns_tool("ldns-signzone"))
        .args(["-i", "20250101000000", "-e", "20851231000000", "-f"])
        .arg(out)
        .arg(zone)
        .arg(&base)
        .output()
        .expect("ldns-signzone runs");
    assert!(
        st.status.success(),
        "ldns-signzone: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

const SOA: &str = "@       SOA   ns1 hostmaster 2025010101 7200 3600 1209600 300\n";

/// Writes every file of `fixtures/check/` (except README.md and regen.sh) under `out`.
fn build_fixtures(out: &Path) -> Vec<PathBuf> {
    let pki = Pki::issue(&fixture_specs(), &KeyStore::embedded()).expect("fixture certificates issue");
    let scratch = TempDir::new("danesim-inspect");
    let mut files = Vec::new();
    let mut write = |rel: &str, text: &str| {
        let p = out.join(rel);
        std::fs::create_dir_all(p.parent().expect("a relative path with a directory")).unwrap();
        std::fs::write(&p, text).unwrap();
        files.push(PathBuf::from(rel));
        p
    };
    let chain = |leaf: &str| chain_pem(&pki, leaf);

    // good/: one MX, 3 1 1 for the served key and for the next key; signed.
    let cur = write("good/mail.pem", &chain("good-mail"));
    let next = write("good/mail-next.pem", &chain("good-mail-next"));
    let good = format!(
        "$ORIGIN example.com.\n$TTL 3600\n{SOA}\
         @       NS    ns1\n\
         ns1     A     192.0.2.53\n\
         @       MX    10 mail\n\
         mail    A     192.0.2.25\n\
         mail    AAAA  2001:db8::25\n\
         _25._tcp.mail TLSA {}\n\
         _25._tcp.mail TLSA {}\n",
        tlsa_rdata(&cur, "3 1 1", None),
        tlsa_rdata(&next, "3 1 1", None)
    );

    // dane-ta/: two MX hosts, CNAMEs to one DANE-TA RRset (RFC 7672 §3.1.2); signed.
    let mx1 = write("dane-ta/mx1.pem", &chain("ta-mx1"));
    write("dane-ta/mx2.pem", &chain("ta-mx2"));
    let ca_next = write(
        "dane-ta/ca-next.pem",
        &pem_block(&pki.get("net-ca-next").expect("declared").der),
    );
    let dane_ta = format!(
        "$ORIGIN example.net.\n$TTL 3600\n{SOA}\
         @       NS    ns1\n\
         ns1     A     192.0.2.53\n\
         @       MX    10 mx1\n\
         @       MX    20 mx2\n\
         mx1     A     192.0.2.31\n\
         mx2     A     192.0.2.32\n\
         _25._tcp.mx1  CNAME tlsa201._dane\n\
         _25._tcp.mx2  CNAME tlsa201._dane\n\
         tlsa201._dane TLSA {}\n\
         tlsa201._dane TLSA {}\n",
        tlsa_rdata(&mx1, "2 0 1", None),
        tlsa_rdata(&ca_next, "2 0 1", None)
    );

    // stale-tlsa/: the certificate was renewed with a new key; the TLSA record was not.
    let old = write("stale-tlsa/mail-old.pem", &chain("stale-old"));
    write("stale-tlsa/mail.pem", &chain("stale-new"));
    let stale = format!(
        "; example.org as exported from its DNS host (unsigned export)\n\
         $ORIGIN example.org.\n$TTL 3600\n{SOA}\
         @       NS    ns1.example.net.\n\
         @       MX    10 mail\n\
         mail    A     192.0.2.40\n\
         ; published for the certificate of 2025; the server now presents a renewed one\n\
         _25._tcp.mail TLSA {}\n",
        tlsa_rdata(&old, "3 1 1", None)
    );

    // risky/: working, but with every risk the check knows.
    let r1 = write("risky/mx1.pem", &chain("risky-mx1"));
    let r2 = write("risky/mx2.pem", &chain("risky-mx2"));
    let r3 = write("risky/server.pem", &chain("risky-server"));
    let spki = tlsa_rdata(&r2, "3 1 1", None);
    let hex = spki.splitn(4, ' ').nth(3).expect("four fields").to_string();
    let risky = format!(
        "$ORIGIN risky.example.\n$TTL 3600\n{SOA}\
         @       NS    ns1\n\
         ns1     A     192.0.2.53\n\
         @       MX    20 mx1\n\
         @       MX    30 mx2\n\
         @       MX    40 mx3\n\
         @       MX    50 backup.example.net.\n\
         mx1     A     192.0.2.61\n\
         mx2     A     192.0.2.62\n\
         mx3     CNAME server\n\
         server  A     192.0.2.63\n\
         ; the whole certificate pinned, a PKIX-EE record beside it, a two-day TTL\n\
         _25._tcp.mx1 172800 TLSA {}\n\
         _25._tcp.mx1 172800 TLSA {}\n\
         ; nothing SMTP can use: PKIX usages, an unknown usage, selector and matching type\n\
         _25._tcp.mx2 TLSA {}\n\
         _25._tcp.mx2 TLSA {}\n\
         _25._tcp.mx2 TLSA 4 1 1 {hex}\n\
         _25._tcp.mx2 TLSA 3 2 1 {hex}\n\
         _25._tcp.mx2 TLSA 3 1 3 {hex}\n\
         ; at the name the MX host's CNAME points to (RFC 7672 §2.2.3)\n\
         _25._tcp.server TLSA {}\n",
        tlsa_rdata(&r1, "3 0 1", None),
        tlsa_rdata(&r1, "1 1 1", None),
        tlsa_rdata(&r2, "0 0 1", Some(1)),
        tlsa_rdata(&r2, "1 1 1", None),
        tlsa_rdata(&r3, "3 1 1", None)
    );

    // agility/: SHA-256 of the served key, SHA-512 of the previous key (RFC 7671 §9).
    let cur = write("agility/mail.pem", &chain("agility-mail"));
    let old = write("agility/mail-old.pem", &chain("agility-old"));
    let agility = format!(
        "$ORIGIN agility.example.\n$TTL 3600\n{SOA}\
         @       NS    ns1.example.net.\n\
         @       MX    0 mail\n\
         mail    A     192.0.2.80\n\
         _25._tcp.mail TLSA {}\n\
         _25._tcp.mail TLSA {}\n",
        tlsa_rdata(&cur, "3 1 1", None),
        tlsa_rdata(&old, "3 1 2", None)
    );

    // broken/: a TLSA record whose data is not hex (line 9, column 27).
    let broken = format!(
        "$ORIGIN broken.example.\n$TTL 3600\n{SOA}\
         @       NS    ns1.example.net.\n\
         @       MX    10 mail\n\
         mail    A     192.0.2.90\n\
         ; a digest pasted with a stray character\n\
         _25._tcp.mail TLSA 3 1 1 ( 0123456789ABCDEF0123456789ABCDEF\n\
         \x20                         0123456789ABCDEF0123456789ABCDEX )\n"
    );

    let mut signed = Vec::new();
    for (rel, text) in [
        ("stale-tlsa/example.org.zone", stale),
        ("risky/risky.example.zone", risky),
        ("agility/agility.example.zone", agility),
        ("broken/broken.example.zone", broken),
    ] {
        write(rel, &text);
    }
    for (rel, origin, text) in [
        ("good/example.com.zone", "example.com.", good),
        ("dane-ta/example.net.zone", "example.net.", dane_ta),
    ] {
        let unsigned = scratch.path().join(format!("{origin}unsigned"));
        std::fs::write(&unsigned, text).unwrap();
        sign(&unsigned, origin, &out.join(rel), scratch.path());
        signed.push(PathBuf::from(rel));
    }
    files.extend(signed);
    files.sort();
    files
}

#[test]
fn check_fixtures_are_reproducible() {
    let dir = TempDir::new("danesim-inspect");
    let files = build_fixtures(dir.path());
    let fixtures = root().join("fixtures/check");
    if std::env::var_os("DANESIM_REGEN_FIXTURES").is_some() {
        for f in &files {
            let dest = fixtures.join(f);
            std::fs::create_dir_all(dest.parent().expect("has a directory")).unwrap();
            std::fs::copy(dir.path().join(f), &dest).unwrap();
            eprintln!("wrote fixtures/check/{}", f.display());
        }
        return;
    }
    for f in &files {
        let want = std::fs::read_to_string(dir.path().join(f)).unwrap();
        let have = std::fs::read_to_string(fixtures.join(f))
            .unwrap_or_else(|e| panic!("fixtures/check/{}: {e}; run fixtures/check/regen.sh", f.display()));
        assert!(
            have == want,
            "fixtures/check/{} differs from what the generator makes; run fixtures/check/regen.sh and review",
            f.display()
        );
    }
    // Nothing stale lies beside them.
    let mut committed = Vec::new();
    for site in std::fs::read_dir(&fixtures).unwrap() {
        let site = site.unwrap().path();
        if site.is_dir() {
            for f in std::fs::read_dir(&site).unwrap() {
                committed.push(f.unwrap().path().strip_prefix(&fixtures).unwrap().to_path_buf());
            }
        }
    }
    committed.sort();
    assert_eq!(
        committed, files,
        "fixtures/check/ holds files the generator does not make"
    );
}

/// The fixed check time of every snapshot.
const NOW: &str = "2026-01-01";

fn check_site(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check", "--now", NOW];
    all.extend(args);
    danesim(&all)
}

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// The sites, their arguments and exit codes.
fn sites() -> BTreeMap<&'static str, (Vec<&'static str>, i32)> {
    BTreeMap::from([
        (
            "good",
            (
                vec![
                    "--zone",
                    "fixtures/check/good/example.com.zone",
                    "--cert",
                    "mail.example.com=fixtures/check/good/mail.pem",
                ],
                0,
            ),
        ),
        (
            "dane-ta",
            (
                vec![
                    "--zone",
                    "fixtures/check/dane-ta/example.net.zone",
                    "--cert",
                    "mx1.example.net=fixtures/check/dane-ta/mx1.pem",
                    "--cert",
                    "mx2.example.net.=fixtures/check/dane-ta/mx2.pem",
                ],
                0,
            ),
        ),
        (
            "stale-tlsa",
            (
                vec![
                    "--zone",
                    "fixtures/check/stale-tlsa/example.org.zone",
                    "--cert",
                    "mail.example.org=fixtures/check/stale-tlsa/mail.pem",
                ],
                1,
            ),
        ),
        (
            "risky",
            (
                vec![
                    "--zone",
                    "fixtures/check/risky/risky.example.zone",
                    "--cert",
                    "mx1.risky.example=fixtures/check/risky/mx1.pem",
                    "--cert",
                    "MX2.risky.example=fixtures/check/risky/mx2.pem",
                ],
                0,
            ),
        ),
        (
            "agility",
            (
                vec![
                    "--zone",
                    "fixtures/check/agility/agility.example.zone",
                    "--cert",
                    "mail.agility.example=fixtures/check/agility/mail.pem",
                ],
                1,
            ),
        ),
    ])
}

fn run_site(name: &str) -> String {
    let (args, want) = sites().remove(name).expect("a known site");
    let (code, out, err) = check_site(&args);
    snapshot(&format!("check-{name}"), &out);
    assert_eq!(code, want, "exit code of check on {name}:\n{out}\n{err}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
    let result = if want == 0 { "Result: PASS\n" } else { "Result: FAIL\n" };
    assert!(out.ends_with(result), "{out}");
    out
}

/// Lines of one section: from its title to the next blank line.
fn section<'a>(out: &'a str, title_prefix: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| !l.starts_with(title_prefix))
        .take_while(|l| !l.is_empty())
        .collect()
}

#[test]
fn check_good_site_passes_with_a_next_key_and_no_warning() {
    let out = run_site("good");
    let host = section(&out, "mail.example.com. (MX 10)");
    assert!(
        host.iter().any(|l| l.contains("[ok]   matches the leaf certificate")),
        "{out}"
    );
    assert!(
        host.iter().any(|l| l.contains("[ok]   authenticated by 3 1 1")),
        "{out}"
    );
    assert!(
        host.iter().any(|l| l.contains("[ok]   rollover: 1 DANE-EE record(s)")),
        "{out}"
    );
    assert!(out.contains("[ok]   signed export: 1 DNSKEY"), "{out}");
    assert!(
        out.contains("_25._tcp.mail.example.com. TLSA"),
        "the TLSA RRSIG is checked: {out}"
    );
    assert!(out.contains("; 0 warning(s)\n"), "{out}");
    assert!(!out.contains("[warn]") && !out.contains("[fail]"), "{out}");
}

#[test]
fn check_dane_ta_site_follows_cnames_and_checks_the_anchor() {
    let out = run_site("dane-ta");
    for host in ["mx1.example.net. (MX 10)", "mx2.example.net. (MX 20)"] {
        let lines = section(&out, host);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("via CNAME _25._tcp.") && l.contains("-> tlsa201._dane.example.net.")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("matches the certificate at depth 1 (") && l.contains("CN=Example Net Mail CA)"))
        );
        assert!(
            lines.iter().any(|l| l.contains("[ok]   authenticated by 2 0 1")),
            "{out}"
        );
    }
    assert!(
        out.contains("[warn] 2 MX records (10 mx1.example.net, 20 mx2.example.net): enablement expects exactly one"),
        "{out}"
    );
    assert!(
        out.contains("Summary: 2 MX host(s): 2 authenticated, 0 failed;"),
        "{out}"
    );
}

#[test]
fn check_stale_tlsa_fails_like_the_exchange_outage() {
    let out = run_site("stale-tlsa");
    let host = section(&out, "mail.example.org. (MX 10)");
    assert!(
        host.iter().any(|l| l.contains("[info] matches no certificate in")),
        "{out}"
    );
    let fail = host.iter().find(|l| l.contains("[fail]")).expect("a [fail] line");
    assert!(
        fail.contains("no usable TLSA record matches the presented chain"),
        "{fail}"
    );
    assert!(
        host.iter().any(|l| l.trim()
            == "DANE senders defer mail for this host (RFC 7672 §3.2); Exchange Online \
             reports 450 4.7.323 tlsa-invalid"),
        "{out}"
    );
    // The suggested fix is exactly the record `danesim tlsa` makes for the served chain.
    let (_, line, _) = danesim(&["tlsa", "--cert", "fixtures/check/stale-tlsa/mail.pem"]);
    let fix = format!("fix: publish `{}` for the served key", line.trim());
    assert!(
        host.iter().any(|l| l.trim().starts_with(&fix)),
        "`{fix}` missing in:\n{out}"
    );
    assert!(out.contains("[warn] unsigned file"), "{out}");
    assert!(out.contains("1 failed"), "{out}");
}

#[test]
fn check_risky_site_warns_but_passes() {
    let out = run_site("risky");
    let mx1 = section(&out, "mx1.risky.example. (MX 20)");
    for want in [
        "3 0 x pins the whole certificate",
        "unusable: PKIX-EE(1) is unusable for SMTP (RFC 7672 §3.1.3)",
        "no next key: every DANE-EE record matches the current certificate",
        "TLSA TTL 172800 (2 d) is over a day",
        "TLSA TTL 172800 is longer than the MX TTL 3600",
    ] {
        assert!(mx1.iter().any(|l| l.contains(want)), "mx1: `{want}` missing in:\n{out}");
    }
    let mx2 = section(&out, "mx2.risky.example. (MX 30)");
    for want in [
        "unusable: PKIX-TA(0)",
        "unusable: unknown certificate usage",
        "unusable: unknown selector",
        "unusable: unknown matching type",
        "no usable TLSA record (all are PKIX usages 0/1)",
    ] {
        let hits = mx2.iter().filter(|l| l.contains(want)).count();
        if want.starts_with("no usable") {
            // Unknown parameters are not PKIX: the parenthesis must not appear for mx2.
            assert_eq!(hits, 0, "{out}");
        } else {
            assert_eq!(hits, 1, "mx2: `{want}` in:\n{out}");
        }
    }
    assert!(mx2.iter().any(|l| l.contains("[warn] no usable TLSA record:")), "{out}");
    let mx3 = section(&out, "mx3.risky.example. (MX 40)");
    assert!(
        mx3.iter().any(|l| l.contains("is a CNAME for server.risky.example.")),
        "{out}"
    );
    assert!(
        mx3.iter().any(|l| l.contains("TLSA _25._tcp.server.risky.example.")),
        "{out}"
    );
    assert!(
        mx3.iter().any(|l| l.contains("not checked: no certificate given")),
        "{out}"
    );
    assert!(mx3.iter().any(|l| l.contains("a single DANE-EE record")), "{out}");
    let backup = section(&out, "backup.example.net. (MX 50)");
    assert!(
        backup
            .iter()
            .any(|l| l.contains("[warn] not in this zone, cannot check")),
        "{out}"
    );
    let exo = section(&out, "Exchange Online inbound DANE prerequisites");
    assert!(exo.iter().any(|l| l.contains("[warn] 4 MX records")), "{out}");
    assert!(exo.iter().any(|l| l.contains("[warn] MX preference 20")), "{out}");
    assert!(out.contains("Summary: 4 MX host(s): 1 authenticated, 0 failed, 1 not checked, 1 outside this zone, 1 without usable TLSA;"), "{out}");
}

#[test]
fn check_digest_agility_trap_fails() {
    let out = run_site("agility");
    let fail = out.lines().find(|l| l.contains("[fail]")).expect("a [fail] line");
    assert!(
        fail.contains("3 1 1 matches, but senders with digest agility use only the strongest digest"),
        "{fail}"
    );
    assert!(out.contains("ignored by senders with digest agility"), "{out}");
}

#[test]
fn check_dane_ta_name_mismatch_fails_with_the_host_mismatch_code() {
    // mx2's certificate served on mx1: the anchor matches, the leaf's name does not
    // (RFC 7672 §3.2.2).
    let (code, out, _) = check_site(&[
        "--zone",
        "fixtures/check/dane-ta/example.net.zone",
        "--cert",
        "mx1.example.net=fixtures/check/dane-ta/mx2.pem",
    ]);
    assert_eq!(code, 1, "{out}");
    let mx1 = section(&out, "mx1.example.net. (MX 10)");
    let fail = mx1.iter().find(|l| l.contains("[fail]")).expect("a [fail] line");
    assert!(
        fail.contains(
            r#"["mx2.example.net"] match none of the reference identifiers ["mx1.example.net", "example.net"]"#
        ),
        "{fail}"
    );
    assert!(
        mx1.iter().any(|l| l.contains("450 4.7.325 certificate-host-mismatch")),
        "{out}"
    );
    assert!(
        mx1.iter().any(|l| l.trim().starts_with("fix: re-issue the leaf")),
        "{out}"
    );
    let mx2 = section(&out, "mx2.example.net. (MX 20)");
    assert!(
        mx2.iter()
            .any(|l| l.contains("[warn] not checked: no certificate given; pass --cert mx2.example.net=FILE.pem")),
        "{out}"
    );
}

#[test]
fn check_a_broken_zone_file_exits_2_at_file_line_col() {
    let (code, out, err) = check_site(&["--zone", "fixtures/check/broken/broken.example.zone"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(
            "error: fixtures/check/broken/broken.example.zone:9:27: TLSA: `0123456789ABCDEF0123456789ABCDEX` is not hex"
        ),
        "{err}"
    );
}

#[test]
fn check_bad_arguments_exit_2_and_say_what_to_do() {
    let zone = "fixtures/check/good/example.com.zone";
    let cases: &[(&[&str], &str)] = &[
        (&["--zone", "no/such.zone"], "error: cannot read no/such.zone"),
        (
            &["--zone", zone, "--cert", "mx9.example.com=fixtures/check/good/mail.pem"],
            "mx9.example.com. is not an MX host of example.com. (MX hosts: mail.example.com.)",
        ),
        (
            &["--zone", zone, "--cert", "mail.example.com"],
            "expected HOST=FILE.pem",
        ),
        (
            &["--zone", zone, "--cert", "mail.example.com=no/such.pem"],
            "error: cannot read no/such.pem",
        ),
        (
            &["--zone", zone, "--domain", "example.org"],
            "example.org. is not in this zone",
        ),
        (&["--zone", zone, "--now", "tomorrow"], "--now tomorrow: use YYYY-MM-DD"),
        (
            &["--zone", zone, "--domain", "nothing.example.com"],
            "no MX RRset and no A/AAAA record at nothing.example.com.",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["check"];
        all.extend(*args);
        let (code, out, err) = danesim(&all);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: expected `{want}` in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The domain only needs an address when it has no MX: then the host is the domain itself.
    let (code, out, _) = danesim(&["check", "--now", NOW, "--zone", zone, "--domain", "ns1.example.com"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ns1.example.com. (no MX RRset: the domain itself, RFC 5321 §5.1)"),
        "{out}"
    );
}

#[test]
fn check_expired_signatures_fail() {
    // The good site's signatures run to 2085-12-31; a week before, the check warns; after, it fails.
    let (args, _) = sites().remove("good").expect("a known site");
    let mut warn = vec!["check", "--now", "2085-12-28"];
    warn.extend(&args);
    let (code, out, _) = danesim(&warn);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("example.com. MX: the RRSIG expires on 2085-12-31, within a week"),
        "{out}"
    );
    let mut fail = vec!["check", "--now", "2086-01-02"];
    fail.extend(&args);
    let (code, out, _) = danesim(&fail);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[fail] _25._tcp.mail.example.com. TLSA: every RRSIG expired (latest 2085-12-31)"),
        "{out}"
    );
}
