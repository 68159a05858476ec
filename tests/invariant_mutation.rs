//! No vacuous invariant (DESIGN.md, "Rules that keep it honest"): every invariant of the
//! catalogue that names a host, an address or a name is mutated, and each mutant must be
//! caught, either by the loader (an undeclared name: a file:line:col error that lists what
//! the world declares) or by the verdict of a reference run (the mutated invariant shows up
//! violated). A mutant that loads and passes survived: its invariant could not fail.
//!
//! The invariants that name nothing (NOCLEAR, ONCE, NOQUERY's kind) are shown to fail on
//! crafted scenarios below; ONCE within one session is in tests/every_message.rs.

use danesim::outcome::{Outcome, Verdict};
use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario::{self, ScenarioError};
use danesim::sender::SenderKind;
use danesim::vocab::{ConnectTarget, Invariant, fqdn};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Enough of a scenario file to find its invariant strings and their spans.
#[derive(Deserialize)]
struct RawFile {
    expect: RawExpect,
}

#[derive(Deserialize)]
struct RawExpect {
    #[serde(default)]
    invariants: Vec<toml::Spanned<String>>,
}

/// How a mutant must be caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caught {
    /// The mutant names something the world does not have: loading fails at its span.
    Load,
    /// The mutant loads; a reference run's verdict must show it violated.
    Violation,
}

struct Mutant {
    file: PathBuf,
    /// The original invariant, as written.
    original: String,
    /// The mutated invariant, as written into the file.
    written: String,
    /// Byte offset of the invariant's text (inside the quotes) in the original file.
    offset: usize,
    source: String,
    caught: Caught,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `mx1.example.test.` → `typo-mx1.example.test.`: a plausible misspelling that no catalogue
/// world declares (checked by the loader, which is the point).
fn typo(name: &str) -> String {
    format!("typo-{}", fqdn(name))
}

/// The reference run of a scenario as written (its last attempt is what invariants judge).
/// The name with its host label (the first not under `_port._proto.`) misspelled.
fn typo_host(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    let i = labels.iter().position(|l| !l.starts_with('_')).unwrap_or(0);
    let typoed = format!("typo-{}", labels[i]);
    let mut mis = labels.clone();
    mis[i] = &typoed;
    mis.join(".")
}

fn run(rt: &tokio::runtime::Runtime, keys: &KeyStore, s: &scenario::Scenario) -> Outcome {
    rt.block_on(runner::run(s, &SenderKind::Reference, keys))
        .unwrap_or_else(|e| panic!("{}: the world runs: {e}", s.id))
        .outcome
}

/// Every mutant of one scenario file; needs the file's own reference outcome to aim the
/// mutants that must load (NOMAIL at a host that got mail, NOCONNECT at an address that got
/// a connection).
fn mutants(file: &Path, source: &str, s: &scenario::Scenario, outcome: &Outcome) -> Vec<Mutant> {
    let raw: RawFile = toml::from_str(source).expect("a catalogue file parses");
    let mut out = Vec::new();
    let declared: Vec<IpAddr> = s.endpoints.iter().map(|e| e.address).collect();
    let mailed: Vec<&str> = outcome
        .witness
        .endpoints
        .iter()
        .filter(|e| e.connections.iter().any(|t| t.mail_from.is_some()))
        .map(|e| e.host.as_str())
        .collect();
    let connected: Vec<&str> = outcome
        .witness
        .endpoints
        .iter()
        .filter(|e| !e.connections.is_empty())
        .map(|e| e.address.as_str())
        .collect();
    for text in &raw.expect.invariants {
        let original = text.get_ref().clone();
        let inv = Invariant::parse(&original).expect("a catalogue invariant parses");
        let mut push = |written: String, caught: Caught| {
            let span = text.span();
            let mut mutated = source.to_string();
            // The span includes the quotes.
            mutated.replace_range(span.start + 1..span.end - 1, &written);
            out.push(Mutant {
                file: file.to_path_buf(),
                original: original.clone(),
                written,
                offset: span.start + 1,
                source: mutated,
                caught,
            });
        };
        match &inv {
            Invariant::NoMail(h) => {
                push(format!("NOMAIL({})", typo(h)), Caught::Load);
                for m in mailed.iter().filter(|m| **m != h.as_str()) {
                    push(format!("NOMAIL({m})"), Caught::Violation);
                }
            }
            Invariant::NoConnect {
                at: ConnectTarget::Host(h),
                port,
            } => {
                let p = port.map(|p| format!(":{p}")).unwrap_or_default();
                push(format!("NOCONNECT({}{p})", typo(h)), Caught::Load);
                push(format!("NOCONNECT({h}:587)"), Caught::Load);
            }
            Invariant::NoConnect {
                at: ConnectTarget::Address(a),
                ..
            } => {
                let free = (1..=254u8)
                    .map(|i| IpAddr::from([192, 0, 2, i]))
                    .find(|x| !declared.contains(x))
                    .expect("a world declares fewer than 254 endpoints");
                push(format!("NOCONNECT({free})"), Caught::Load);
                push(
                    format!("NOCONNECT({})", std::net::SocketAddr::new(*a, 587)),
                    Caught::Load,
                );
                for c in connected.iter().filter(|c| **c != a.to_string()) {
                    push(format!("NOCONNECT({c})"), Caught::Violation);
                }
            }
            Invariant::Sni { host, name } => {
                push(format!("SNI({}) = {name}", typo(host)), Caught::Load);
                push(format!("SNI({host}) = {}", typo(name)), Caught::Violation);
            }
            Invariant::NoQuery { name, rtype } => {
                // Misspell the host under the `_port._proto.` labels, as a typo would.
                let labels: Vec<&str> = name.split('.').collect();
                let i = labels.iter().position(|l| !l.starts_with('_')).unwrap_or(0);
                let mut mis = labels.clone();
                let typoed = format!("typo-{}", labels[i]);
                mis[i] = &typoed;
                push(format!("NOQUERY({} {rtype})", mis.join(".")), Caught::Load);
                match &s.relay {
                    // Every sender asks for the next-hop domain's MX first (RFC 7672 §2.2.1).
                    None => push(format!("NOQUERY({} MX)", s.message.domain), Caught::Violation),
                    // A relay skips MX, but asks for the TLSA RRset of its port (§2.2.3).
                    Some(r) => push(format!("NOQUERY(_{}._tcp.{} TLSA)", r.port, r.host), Caught::Violation),
                }
            }
            Invariant::Query { name, .. } | Invariant::Tcp { name, .. } => {
                let what = if matches!(inv, Invariant::Query { .. }) {
                    "QUERY"
                } else {
                    "TCP"
                };
                push(format!("{what}({} A)", typo_host(name)), Caught::Load);
                // A type nobody asks for at the same name.
                push(format!("{what}({name} HINFO)"), Caught::Violation);
            }
            Invariant::Order { before, after } => {
                // The same two lookups the other way round.
                push(
                    format!("ORDER({} {} < {} {})", after.0, after.1, before.0, before.1),
                    Caught::Violation,
                );
                push(
                    format!("ORDER({} {} < {} {})", typo_host(&before.0), before.1, after.0, after.1),
                    Caught::Load,
                );
            }
            Invariant::NoClear | Invariant::Once | Invariant::NoAuthLog => {}
        }
    }
    out
}

/// None when the mutant was caught as it must be; otherwise why it survived.
fn judge_mutant(rt: &tokio::runtime::Runtime, keys: &KeyStore, m: &Mutant) -> Option<String> {
    let what = format!("{}: `{}` → `{}`", m.file.display(), m.original, m.written);
    match (scenario::load_str(&m.file, &m.source), m.caught) {
        (
            Err(ScenarioError::At {
                location,
                message,
                help,
                ..
            }),
            Caught::Load,
        ) => {
            let (line, col) = scenario::error::line_col(&m.source, m.offset);
            let want = format!("{}:{line}:{col}", m.file.display());
            let help = help.unwrap_or_default();
            if location != want {
                return Some(format!("{what}: error at {location}, not at the invariant ({want})"));
            }
            // A port other than 25 is refused for its reason; an undeclared name with what
            // the world declares instead.
            let port = !m.written.starts_with("NOQUERY") && m.written.contains(":587");
            if port && !message.contains("listens on port 587") {
                return Some(format!("{what}: the error does not say why: {message}"));
            }
            if !port && !help.contains("declared endpoints") && !help.contains("the world's zones") {
                return Some(format!("{what}: the error lists nothing declared: {message} / {help}"));
            }
            None
        }
        (Err(e), _) => Some(format!("{what}: an unexpected load error: {e}")),
        (Ok(_), Caught::Load) => Some(format!("{what}: loads, so the undeclared name went unnoticed")),
        (Ok(s), Caught::Violation) => {
            let o = run(rt, keys, &s);
            let mutated = Invariant::parse(&m.written).expect("the mutant parses").to_string();
            let violated = match &o.verdict {
                Verdict::Violation(v) | Verdict::Deviation(v) => v.iter().any(|v| v.invariant == mutated),
                Verdict::Pass => false,
            };
            (!violated).then(|| {
                format!(
                    "{what}: loads and the verdict does not show it violated ({:?})",
                    o.verdict
                )
            })
        }
    }
}

#[test]
fn every_catalogue_invariant_that_names_something_can_fail() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let keys = Arc::new(KeyStore::embedded());
    let files = scenario::discover(&[root().join("scenarios")]).expect("the catalogue is readable");
    let mut all = Vec::new();
    for f in &files {
        let source = std::fs::read_to_string(f).expect("readable");
        let s = scenario::load_str(f, &source).unwrap_or_else(|e| panic!("{e}"));
        let o = run(&rt, &keys, &s);
        // A catalogued deviation of the reference sender (ta-14-ca-leaf) still judges the
        // invariants; the mutants below must then add their own violation.
        assert!(
            o.verdict.acceptable(),
            "{}: the unmutated scenario passes on reference (or deviates as catalogued)",
            s.id
        );
        all.extend(mutants(f, &source, &s, &o));
    }
    let survived: Vec<String> = all.iter().filter_map(|m| judge_mutant(&rt, &keys, m)).collect();
    let loads = all.iter().filter(|m| m.caught == Caught::Load).count();
    println!(
        "{} mutant(s) of the invariants of {} scenario(s): {loads} must fail to load, {} must be violated; {} survived",
        all.len(),
        files.len(),
        all.len() - loads,
        survived.len()
    );
    let mut kinds: std::collections::BTreeMap<(String, &str), usize> = Default::default();
    for m in &all {
        let kind = m.written.split('(').next().unwrap_or("").to_string();
        let how = if m.caught == Caught::Load {
            "load error"
        } else {
            "violation"
        };
        *kinds.entry((kind, how)).or_default() += 1;
    }
    for ((kind, how), n) in &kinds {
        println!("  {kind}: {n} caught by {how}");
    }
    for s in &survived {
        println!("survived: {s}");
    }
    assert!(
        all.len() > 100,
        "the catalogue's invariants give mutants ({})",
        all.len()
    );
    assert!(
        survived.is_empty(),
        "{} mutant(s) survived:\n{}",
        survived.len(),
        survived.join("\n")
    );
}

/// A scenario of one MX host `mx1.example.test` at 192.0.2.10 whose zone and endpoint are
/// given, expecting `result` with `invariants`.
fn crafted(records: &str, endpoint: &str, result: &str, invariants: &str) -> String {
    format!(
        r#"id = "crafted"
title = "crafted"
teaches = "a check that must fail"

[[cert]]
name = "mx1"
key = "ed25519:mx1"
sans = ["mx1.example.test"]

[[zone]]
origin = "example.test."
records = [{records}]

[[endpoint]]
address = "192.0.2.10"
host = "mx1.example.test"
{endpoint}

[expect]
result = "{result}"
invariants = [{invariants}]
"#
    )
}

fn violated(source: &str) -> Vec<String> {
    violations(source).into_iter().map(|(invariant, _)| invariant).collect()
}

/// The failed invariants of a run of `source`, each with the witness's detail.
fn violations(source: &str) -> Vec<(String, String)> {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let s = scenario::load_str(Path::new("crafted.toml"), source).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&rt, &KeyStore::embedded(), &s);
    match o.verdict {
        Verdict::Pass => Vec::new(),
        Verdict::Violation(v) | Verdict::Deviation(v) => v.into_iter().map(|v| (v.invariant, v.detail)).collect(),
    }
}

#[test]
fn an_explicit_noclear_fails_on_a_cleartext_delivery() {
    // No TLSA, no STARTTLS: the reference sender rightly delivers in cleartext (RFC 7672
    // §2.2), so only the explicit NOCLEAR can object, and must.
    let v = violated(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10""#,
        r#"behaviour = "no-starttls""#,
        "OPP",
        r#""NOCLEAR""#,
    ));
    assert_eq!(v, vec!["NOCLEAR"]);
}

#[test]
fn nomail_and_sni_follow_the_route_not_the_greeting() {
    // The MX host's server greets with another name: the checks about the MX host still
    // apply to it, because that is where the MX host's address leads.
    let src = crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10""#,
        r#"behaviour = "no-starttls""#,
        "OPP",
        r#""NOMAIL(mx1.example.test)""#,
    )
    .replace(r#"host = "mx1.example.test""#, r#"host = "smtp.provider.test""#);
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let s = scenario::load_str(Path::new("crafted.toml"), &src).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&rt, &KeyStore::embedded(), &s);
    let Verdict::Violation(v) = o.verdict else {
        panic!("NOMAIL at the routed endpoint must fail: {:?}", o.verdict);
    };
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].invariant, "NOMAIL(mx1.example.test.)");
    assert_eq!(
        v[0].detail,
        "mx1.example.test. (the endpoint at 192.0.2.10, smtp.provider.test.) received MAIL FROM on connection 1"
    );
}

#[test]
fn a_host_whose_route_a_step_removed_is_not_passed_unchecked() {
    // The loader accepts NOMAIL(www) because `www` leads to mx1 at the start; after the step
    // it leads nowhere, and the last attempt's check says so instead of holding vacuously.
    let src = crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "www CNAME mx1""#,
        r#"behaviour = "no-starttls""#,
        "OPP",
        r#""NOMAIL(www.example.test)""#,
    ) + r#"
[timeline]
attempts = 2
expect = ["OPP", "OPP"]

[[step]]
when = "after attempt 1"
remove = ["www CNAME"]
"#;
    let v = violated(&src);
    assert_eq!(v, vec!["NOMAIL(www.example.test.)"]);
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let s = scenario::load_str(Path::new("crafted.toml"), &src).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&rt, &KeyStore::embedded(), &s);
    let Verdict::Violation(v) = o.verdict else {
        panic!("a violation")
    };
    assert_eq!(
        v[0].detail,
        "attempt 2: www.example.test. leads to no endpoint in the world of this attempt, so nothing was checked"
    );
}

#[test]
fn noquery_fails_when_the_query_is_asked() {
    // A secure MX host: a DANE sender must ask for its TLSA RRset (RFC 7672 §2.2.2).
    let v = violated(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}""#,
        r#"cert = "mx1""#,
        "AUTH",
        r#""NOQUERY(_25._tcp.mx1.example.test TLSA)""#,
    ));
    assert_eq!(v, vec!["NOQUERY(_25._tcp.mx1.example.test. TLSA)"]);
}

#[test]
fn once_fails_when_nothing_is_delivered() {
    // The endpoint refuses the message: zero copies is not "exactly once".
    let v = violated(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}""#,
        "cert = \"mx1\"\nreplies = { data = \"550 5.7.1 No\" }",
        "BOUNCE",
        r#""ONCE""#,
    ));
    assert_eq!(v, vec!["ONCE"]);
}

#[test]
fn noauth_log_fails_on_a_claimed_authentication() {
    let v = violated(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}""#,
        r#"cert = "mx1""#,
        "AUTH",
        r#""NOAUTH-LOG""#,
    ));
    assert_eq!(v, vec!["NOAUTH-LOG"]);
}

/// The loader's errors for undeclared names, as a scenario author sees them.
#[test]
fn undeclared_names_fail_to_load_at_the_invariant() {
    let cases = [
        ("NOMAIL(mx2.example.test)", "`mx2.example.test.` leads to no endpoint"),
        ("SNI(mx2.example.test) = mx2.example.test", "leads to no endpoint"),
        ("NOCONNECT(192.0.2.20)", "no endpoint is declared at 192.0.2.20"),
        (
            "NOCONNECT(192.0.2.10:587)",
            "no endpoint that 192.0.2.10 leads to listens on port 587",
        ),
        (
            "NOCONNECT(mx1.example.test:2525)",
            "no endpoint that mx1.example.test. leads to listens on port 2525",
        ),
        (
            "NOCONNECT(mx2.example.test:25)",
            "`mx2.example.test.` leads to no endpoint",
        ),
        (
            "NOCONNECT([2001:db8::10]:25)",
            "no endpoint is declared at 2001:db8::10",
        ),
        ("NOQUERY(_25._tcp.mx2.example.test TLSA)", "no name of this world"),
        // The root parses (a name one can query) but this world has no root zone.
        ("NOQUERY(. NS)", "`.` is no name of this world"),
        ("QUERY(. NS)", "`.` is no name of this world"),
    ];
    for (inv, why) in cases {
        let src = crafted(
            r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "www CNAME mx1""#,
            r#"cert = "mx1""#,
            "AUTH",
            &format!("\"NOCLEAR\",\n  \"{inv}\""),
        );
        let err = scenario::load_str(Path::new("crafted.toml"), &src).expect_err(inv);
        let ScenarioError::At {
            location,
            message,
            help,
            ..
        } = err
        else {
            panic!("{inv}: an unlocated error");
        };
        // Line 22 holds the second invariant, whose text begins in column 4.
        assert_eq!(location, "crafted.toml:22:4", "{inv}: {message}");
        assert!(message.contains(why), "{inv}: {message}");
        let help = help.unwrap_or_default();
        if !inv.contains("QUERY") && !inv.contains(":587") && !inv.contains(":2525") {
            // What is declared, with the names that lead there (the MX target and the alias).
            assert!(
                help.contains(
                    "192.0.2.10 (host mx1.example.test.; names routed to it: mx1.example.test., www.example.test.)"
                ),
                "{inv}: {help}"
            );
        }
    }
    // The same names load when the world has them, by route as well as by greeting name.
    for inv in [
        "NOMAIL(www.example.test)",
        "SNI(www.example.test) = mx1.example.test",
        "NOCONNECT(192.0.2.10:25)",
        "NOCONNECT(www.example.test:25)",
        "NOQUERY(_25._tcp.www.example.test TLSA)",
    ] {
        let src = crafted(
            r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "www CNAME mx1""#,
            r#"cert = "mx1""#,
            "AUTH",
            &format!("\"{inv}\""),
        );
        scenario::load_str(Path::new("crafted.toml"), &src).unwrap_or_else(|e| panic!("{inv}: {e}"));
    }
}

/// QUERY fails when the lookup never happens: with insecure address records a DANE sender
/// must not ask for the TLSA RRset (RFC 7672 §2.2.2), and an unsigned zone makes them so.
#[test]
fn query_fails_when_the_lookup_is_skipped() {
    let source = crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}""#,
        r#"cert = "mx1""#,
        "OPP",
        r#""QUERY(_25._tcp.mx1.example.test TLSA)""#,
    )
    .replace(
        "origin = \"example.test.\"\n",
        "origin = \"example.test.\"\nsigned = false\n",
    );
    assert_eq!(violated(&source), vec!["QUERY(_25._tcp.mx1.example.test. TLSA)"]);
}

/// TCP fails when every query for it went over UDP (nothing truncated the answer).
#[test]
fn tcp_fails_when_the_query_stayed_on_udp() {
    let v = violated(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}""#,
        r#"cert = "mx1""#,
        "AUTH",
        r#""TCP(_25._tcp.mx1.example.test TLSA)""#,
    ));
    assert_eq!(v, vec!["TCP(_25._tcp.mx1.example.test. TLSA)"]);
}

/// ORDER fails when one side never happens: no vacuous order.
#[test]
fn order_fails_when_a_side_is_never_asked() {
    let v = violated(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10""#,
        r#"behaviour = "no-starttls""#,
        "OPP",
        r#""ORDER(mx1.example.test A < _25._tcp.mx1.example.test HINFO)""#,
    ));
    assert_eq!(v, vec!["ORDER(mx1.example.test. A < _25._tcp.mx1.example.test. HINFO)"]);
    // The failure names the side that is missing, and only that one; with neither asked it
    // names both.
    let v = violations(&crafted(
        r#""@ MX 10 mx1", "mx1 A 192.0.2.10""#,
        r#"behaviour = "no-starttls""#,
        "OPP",
        r#""ORDER(mx1.example.test A < _25._tcp.mx1.example.test HINFO)",
  "ORDER(mx1.example.test HINFO < mx1.example.test A)",
  "ORDER(mx1.example.test HINFO < mx1.example.test TXT)""#,
    ));
    let details: Vec<&str> = v.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(
        details,
        vec![
            "the authoritative server saw no query for _25._tcp.mx1.example.test. HINFO",
            "the authoritative server saw no query for mx1.example.test. HINFO",
            "the authoritative server saw no query for mx1.example.test. HINFO nor for mx1.example.test. TXT",
        ],
        "{v:?}"
    );
}

/// NOCONNECT with a port (issue 15): a sender that relays to `[mx1]:2525` connects there, so
/// `NOCONNECT(mx1.example.test:2525)` fails, while the port-25 trap beside it holds.
#[test]
fn noconnect_with_a_port_fails_when_that_port_is_dialled() {
    let src = crafted(
        r#""@ MX 10 mx2", "mx1 A 192.0.2.10", "mx2 A 192.0.2.20", "_2525._tcp.mx1 TLSA 3 1 1 {cert:mx1}""#,
        "cert = \"mx1\"\nport = 2525",
        "AUTH",
        r#""NOCONNECT(mx1.example.test:2525)", "NOCONNECT(mx2.example.test:25)", "NOCONNECT(192.0.2.20)""#,
    )
    .replace(
        "[expect]",
        "[[endpoint]]\naddress = \"192.0.2.20\"\nhost = \"mx2.example.test\"\nbehaviour = \"no-starttls\"\n\n\
         [route]\nrelay = \"[mx1.example.test]:2525\"\n\n[expect]",
    );
    let v = violated(&src);
    assert_eq!(v, vec!["NOCONNECT(mx1.example.test.:2525)"]);
}
