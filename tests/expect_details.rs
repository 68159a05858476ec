//! `[expect]` details (scenarios/README.md, "Status codes and presented certificates"):
//! STATUS, HOST-STATUS and PRESENTED each fail when the behaviour they state is wrong, and
//! every misuse of their syntax (and of a certificate's `serial`) is a load error at
//! file:line:col.

#![allow(clippy::result_large_err)]

use danesim::outcome::{Outcome, Verdict};
use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario::{self, ScenarioError};
use danesim::sender::SenderKind;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A catalogue scenario's text with each `(from, to)` edit made once.
fn edited(file: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(root().join(file)).expect("a catalogue scenario");
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` not in {file}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn load(file: &str, text: &str) -> Result<scenario::Scenario, ScenarioError> {
    scenario::load_str(Path::new(file).file_name().map(Path::new).expect("a file name"), text)
}

fn run(file: &str, edits: &[(&str, &str)]) -> Outcome {
    let s = load(file, &edited(file, edits)).expect("the edited scenario loads");
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    rt.block_on(runner::run(&s, &SenderKind::Reference, &KeyStore::embedded()))
        .expect("the run completes")
        .outcome
}

/// The details of the failed checks named `name`.
#[track_caller]
fn violated(o: &Outcome, name: &str) -> Vec<String> {
    let Verdict::Violation(v) = &o.verdict else {
        panic!("{name} must fail: {:?}", o.verdict);
    };
    let found: Vec<String> = v
        .iter()
        .filter(|v| v.invariant == name)
        .map(|v| v.detail.clone())
        .collect();
    assert!(!found.is_empty(), "{name} not among {v:?}");
    found
}

const S421: &str = "scenarios/smtp-replies/session-2-greeting-421.toml";
const BOUNCE: &str = "scenarios/smtp-replies/rcpt-550-bounce.toml";
const SWITCH: &str = "scenarios/rollover/roll-04-switch-to-a-new-key.toml";
const SAME: &str = "scenarios/rollover/roll-01-renewed-same-key.toml";

#[test]
fn the_catalogue_scenarios_pass_as_written() {
    for f in [S421, BOUNCE, SWITCH, SAME] {
        let o = run(f, &[]);
        assert!(o.verdict.passed(), "{f}: {:?}", o.verdict);
    }
}

#[test]
fn status_and_host_status_fail_when_the_server_gives_another_code() {
    // The server refuses with another subject: 4.7.0 instead of 4.3.2.
    let o = run(S421, &[("greeting = \"421 4.3.2", "greeting = \"421 4.7.0")]);
    assert!(violated(&o, "STATUS")[0].contains("expected status 4.3.2, the sender reported 4.7.0"));
    assert!(violated(&o, "HOST-STATUS")[0].contains("mx1.example.test.: expected status 4.3.x, got 4.7.0"));
    // A bounce for another reason: 5.7.1.
    let o = run(
        BOUNCE,
        &[("rcpt = \"550 5.1.1 User unknown", "rcpt = \"550 5.7.1 Relaying denied")],
    );
    assert!(violated(&o, "STATUS")[0].contains("expected status 5.1.1, the sender reported 5.7.1"));
    assert!(violated(&o, "HOST-STATUS")[0].contains("expected status 5.1.x, got 5.7.1"));
}

#[test]
fn presented_fails_when_the_server_never_switches_keys() {
    // Without the renewal step the server keeps presenting the current certificate: AUTH
    // still, which is why the leaf itself must be checked.
    let o = run(
        SWITCH,
        &[("renew = { endpoint = \"192.0.2.10\", cert = \"next\" }", "")],
    );
    assert_eq!(o.result.as_str(), "AUTH");
    let d = violated(&o, "PRESENTED");
    assert!(
        d[0].contains("the leaf `current` has serial 1001, expected 1002"),
        "{d:?}"
    );
    // Each relation on its own.
    let o = run(
        SWITCH,
        &[
            ("renew = { endpoint = \"192.0.2.10\", cert = \"next\" }", ""),
            ("serial = \"10:02\", same_key_as = \"next\", ", ""),
        ],
    );
    assert!(violated(&o, "PRESENTED")[0].contains("the leaf `current` has the same key as `current`"));
    let o = run(
        SWITCH,
        &[
            ("renew = { endpoint = \"192.0.2.10\", cert = \"next\" }", ""),
            ("serial = \"10:02\", ", ""),
            (", different_key_from = \"current\"", ""),
        ],
    );
    assert!(violated(&o, "PRESENTED")[0].contains("does not have the key of `next`"));
    // The renewal kept the key in roll-01; a renewal with a new key breaks same_key_as.
    let o = run(
        SAME,
        &[
            (
                "key = \"ed25519:mx1-longlived\"\nsans = [\"mx1.example.test\"]\nnot_before = \"-30d\"",
                "key = \"ed25519:mx1-new\"\nsans = [\"mx1.example.test\"]\nnot_before = \"-30d\"",
            ),
            // The record follows the new key, so the sender still authenticates and the
            // handshake completes: only the leaf's key tells.
            ("{cert:mx1-2025}", "{cert:mx1-2026}"),
        ],
    );
    assert!(violated(&o, "PRESENTED")[0].contains("does not have the key of `mx1-2025`"));
}

#[test]
fn a_leaf_the_client_refused_was_presented_too() {
    // renewed-cert: the sender refuses the new leaf with a certificate alert; the leaf it was
    // shown is still judged (the endpoint's chain for that ClientHello).
    const RENEWED: &str = "scenarios/dane-ee/renewed-cert.toml";
    assert!(run(RENEWED, &[]).verdict.passed());
    let o = run(
        RENEWED,
        &[("different_key_from = \"mx1-old\"", "different_key_from = \"mx1-new\"")],
    );
    let d = violated(&o, "PRESENTED");
    assert!(
        d[0].contains("connection 1: the leaf `mx1-new` (refused by the client) has the same key as `mx1-new`"),
        "{d:?}"
    );
}

#[test]
fn presented_fails_when_no_handshake_happened() {
    let o = run(
        SWITCH,
        &[
            (
                "cert = \"current\"\n",
                "cert = \"current\"\nbehaviour = \"starttls-454\"\n",
            ),
            ("expect = [\"AUTH\", \"AUTH\"]", "expect = [\"DEFER\", \"DEFER\"]"),
            (
                "result = \"AUTH\"\nvia = \"mx1.example.test\"\nhosts = { \"mx1.example.test\" = \"AUTH\" }",
                "result = \"DEFER\"",
            ),
            ("invariants = [\"NOCLEAR\", \"ONCE\"]", "invariants = [\"NOCLEAR\"]"),
        ],
    );
    assert!(violated(&o, "PRESENTED")[0].contains("no leaf was presented at mx1.example.test."));
}

/// The location and message of a load error.
fn error(file: &str, edits: &[(&str, &str)]) -> (String, String) {
    match load(file, &edited(file, edits)) {
        Err(ScenarioError::At {
            location,
            message,
            help,
            ..
        }) => (location, format!("{message} / {}", help.unwrap_or_default())),
        Err(other) => panic!("unlocated: {other}"),
        Ok(_) => panic!("{file} with {edits:?} loads, but must not"),
    }
}

#[track_caller]
fn refused(file: &str, edits: &[(&str, &str)], needle: &str, what: &str) {
    let text = edited(file, edits);
    let off = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the edited file"));
    let line = text[..off].matches('\n').count() + 1;
    let col = off - text[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
    let name = Path::new(file).file_name().unwrap().to_str().unwrap().to_string();
    let (location, message) = error(file, edits);
    assert_eq!(location, format!("{name}:{line}:{col}"), "{message}");
    assert!(message.contains(what), "expected `{what}` in `{message}`");
}

#[test]
fn every_misuse_is_located() {
    let st = |to: &'static str| [("status = \"4.3.2\"", to)];
    refused(
        S421,
        &st("status = \"4.3\""),
        "4.3\"",
        "`4.3` is no enhanced status code",
    );
    refused(S421, &st("status = \"4.3.2.1\""), "4.3.2.1", "RFC 3463 §2");
    refused(S421, &st("status = \"3.3.2\""), "3.3.2", "class 3 in `3.3.2`");
    refused(
        S421,
        &st("status = \"4.3.1000\""),
        "4.3.1000",
        "no enhanced status code",
    );
    refused(
        S421,
        &st("status = \"5.3.2\""),
        "5.3.2",
        "status class 5 fits no expected result (DEFER)",
    );
    refused(
        S421,
        &[("\"4.3.x\"", "\"2.x.x\"")],
        "2.x.x",
        "status class 2 contradicts `hosts`, which expects TEMPFAIL at mx1.example.test",
    );
    refused(
        S421,
        &[("\"4.3.x\"", "\"4.three.x\"")],
        "4.three.x",
        "no enhanced status code",
    );
    let pr = |to: &'static str| {
        [(
            "{ serial = \"10:02\", same_key_as = \"next\", different_key_from = \"current\" }",
            to,
        )]
    };
    refused(
        SWITCH,
        &pr("{ same_key_as = \"nxt\" }"),
        "nxt",
        "unknown certificate `nxt`",
    );
    refused(SWITCH, &pr("{ serial = \"zz\" }"), "zz", "`zz` is no serial number");
    refused(
        SWITCH,
        &pr("{ serial = \"00:00\" }"),
        "00:00",
        "a serial number of zero",
    );
    refused(
        SWITCH,
        &pr("{ serial = \"0102030405060708090a0b0c0d0e0f101112131415\" }"),
        "0102030405",
        "a serial number of 21 octets (as DER encodes it) is over 20",
    );
    refused(
        SWITCH,
        &pr("{ serial = \"8102030405060708090a0b0c0d0e0f1011121314\" }"),
        "8102030405",
        "a serial number of 21 octets (as DER encodes it) is over 20",
    );
    refused(
        SWITCH,
        &pr("{ }"),
        "{ }",
        "`presented` states nothing about this host's leaf",
    );
    refused(
        SWITCH,
        &pr("{ same_key_as = \"next\", different_key_from = \"next\" }"),
        "next\" }",
        "the leaf cannot have the same key as `next` and a different one",
    );
    refused(SWITCH, &pr("{ key = \"next\" }"), "key", "unknown field `key`");
    refused(
        SWITCH,
        &[(
            "presented = { \"mx1.example.test\"",
            "presented = { \"mx9.example.test\"",
        )],
        "{ serial",
        "presented at `mx9.example.test.`: it leads to no endpoint with a certificate",
    );
    refused(
        SWITCH,
        &[("serial = \"1001\"", "serial = \"-1\"")],
        "-1",
        "`-1` is no serial number",
    );
    refused(
        SWITCH,
        &[("serial = \"1001\"", "serial = \"g\"")],
        "g\"",
        "`g` is no serial number",
    );
}
