//! `[[endpoint.session]]` and `drop_after_body_bytes`: what loads, and every misuse reported
//! at file:line:col (scenarios/README.md, "Scripts for single connections").

#![allow(clippy::result_large_err)]

use danesim::scenario::{self, ScenarioError};
use std::path::Path;

const HEAD: &str = r#"id = "sessions"
title = "t"
teaches = "t"

[message]
body = "Subject: t\r\n\r\n0123456789\r\n0123456789\r\n"

[[cert]]
name = "mx1"
key = "ed25519:mx1"
sans = ["mx1.example.test"]

[[zone]]
origin = "example.test."
records = ["@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}"]

[[endpoint]]
address = "192.0.2.10"
host = "mx1.example.test"
cert = "mx1"
"#;

const TAIL: &str = r#"
[expect]
result = "AUTH"
"#;

fn load(endpoint_tail: &str) -> Result<scenario::Scenario, ScenarioError> {
    scenario::load_str(Path::new("s.toml"), &format!("{HEAD}{endpoint_tail}{TAIL}"))
}

/// The error's location and message, for a file with this endpoint tail.
fn error(endpoint_tail: &str) -> (String, String, String) {
    match load(endpoint_tail) {
        Err(ScenarioError::At {
            location,
            message,
            help,
            ..
        }) => (location, message, help.unwrap_or_default()),
        Err(other) => panic!("unlocated error: {other}"),
        Ok(_) => panic!("loaded, but should not:\n{endpoint_tail}"),
    }
}

/// Line and column (1-based) of the last `needle` in the whole file.
fn at(endpoint_tail: &str, needle: &str) -> String {
    let text = format!("{HEAD}{endpoint_tail}{TAIL}");
    let off = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the file"));
    let line = text[..off].matches('\n').count() + 1;
    let col = off - text[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("s.toml:{line}:{col}")
}

#[track_caller]
fn refused(tail: &str, needle: &str, what: &str) {
    let (location, message, help) = error(tail);
    assert_eq!(location, at(tail, needle), "{message}");
    assert!(
        message.contains(what) || help.contains(what),
        "expected `{what}` in `{message}` / `{help}`"
    );
}

#[test]
fn sessions_load_by_ordinal_with_the_rest_as_the_endpoints_script() {
    let s = load(
        r#"
[[endpoint.session]]
connection = 1
drop = "data"
drop_after_body_bytes = 12

[[endpoint.session]]
connection = 2
replies = { greeting = "421 4.3.2 Busy" }

[[endpoint.session]]
connection = "rest"
delays = { greeting = "10ms" }
"#,
    )
    .expect("loads");
    let e = &s.endpoints[0];
    let first = &e.sessions.0[&1];
    assert!(first.drop_in_data);
    assert_eq!(first.drop_after_body_bytes, Some(12));
    assert_eq!(e.sessions.0[&2].replies.len(), 1);
    assert!(!e.sessions.0[&2].drop_in_data);
    // "rest" is the endpoint's own script.
    assert_eq!(e.script.delays.len(), 1);
    assert!(!e.script.drop_in_data);
    // The same in inline form, beside endpoint-level keys.
    let s = load("drop = \"data\"\nsession = [{ connection = 3 }]\n").expect("loads");
    assert!(s.endpoints[0].script.drop_in_data);
    assert_eq!(s.endpoints[0].sessions.0[&3], danesim::smtp::Script::default());
}

#[test]
fn an_endpoint_level_drop_point_loads_and_is_bounded_by_the_body() {
    let s = load("drop = \"data\"\ndrop_after_body_bytes = 24\n").expect("the body has 24 octets");
    assert_eq!(s.endpoints[0].script.drop_after_body_bytes, Some(24));
    refused(
        "drop = \"data\"\ndrop_after_body_bytes = 25\n",
        "25",
        "the message body has 24 octets, so a drop after 25 never happens",
    );
    refused(
        "\n[[endpoint.session]]\nconnection = 1\ndrop = \"data\"\ndrop_after_body_bytes = 99\n",
        "99",
        "never happens",
    );
}

#[test]
fn every_misuse_is_located() {
    let s = |body: &str| format!("\n[[endpoint.session]]\n{body}\n");
    refused(
        &s("connection = 0\ndrop = \"data\""),
        "0\n",
        "connection 0: connections count from 1",
    );
    refused(&s("connection = -1"), "-1", "connection -1 is out of range");
    refused(
        &s("connection = 1001"),
        "1001",
        "connection 1001 is out of range (1 to 1000)",
    );
    refused(&s("connection = \"first\""), "\"first\"", "unknown connection `first`");
    refused(
        &s("connection = 1.5"),
        "1.5",
        "a connection is a number or \"rest\", not a float",
    );
    let dup = "\n[[endpoint.session]]\nconnection = 2\n\n[[endpoint.session]]\nconnection = 2\ndrop = \"data\"\n";
    let (location, message, help) = error(dup);
    let second = format!("{HEAD}{dup}").rfind("connection = 2").expect("there") + "connection = ".len();
    let text = format!("{HEAD}{dup}");
    let line = text[..second].matches('\n').count() + 1;
    assert_eq!(location, format!("s.toml:{line}:14"), "{message}");
    assert!(
        message.contains("connection 2 has a second session script"),
        "{message}"
    );
    assert!(help.contains(&format!("its first is at line {}", line - 3)), "{help}");
    refused(
        "\n[[endpoint.session]]\nconnection = \"rest\"\n\n[[endpoint.session]]\nconnection = \"rest\"\n",
        "\"rest\"",
        "connection rest has a second session script",
    );
    refused(
        "replies = { rcpt = \"550 5.1.1 No\" }\n\n[[endpoint.session]]\nconnection = \"rest\"\n",
        "\"550",
        "the endpoint scripts every connection here and has a `connection = \"rest\"` session",
    );
    refused(
        &s("connection = 1\nlong_lines = true"),
        "long_lines",
        "unknown field `long_lines`",
    );
    refused(
        &s("drop = \"data\""),
        "[[endpoint.session]]",
        "missing field `connection`",
    );
    refused(
        &s("connection = 1\ndrop = \"rcpt\""),
        "rcpt\"",
        "unknown drop point `rcpt`",
    );
    refused(
        &s("connection = 1\nreplies = { rcp = \"550 x\" }"),
        "\"550 x\"",
        "unknown stage `rcp`",
    );
    refused(
        &s("connection = 1\nreplies = { rcpt = \"55 x\" }"),
        "55 x",
        "`55` is not a reply code",
    );
    refused(
        &s("connection = 1\ndelays = { greeting = \"soon\" }"),
        "soon",
        "`soon` is not a duration",
    );
    refused(
        &s("connection = 1\ndrop_after_body_bytes = 4"),
        "4\n",
        "`drop_after_body_bytes` without `drop = \"data\"`",
    );
    refused(
        &s("connection = 1\ndrop = \"data\"\ndrop_after_body_bytes = 0"),
        "0\n",
        "0 bytes: `drop_after_body_bytes` is 1 to",
    );
    refused("drop_after_body_bytes = 4\n", "4\n", "without `drop = \"data\"`");
}

/// A script for a connection that never comes tested nothing: the run fails SESSION even
/// though every other expectation holds (one attempt, one connection, a script for the
/// second). The same file with the script on connection 1 fails on the script's own
/// effect instead, and without any script it passes: the check is about reach, not luck.
#[test]
fn a_script_for_a_connection_that_never_comes_fails_the_run() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = danesim::pki::KeyStore::embedded();
    let run = |tail: &str| {
        let s = load(tail).expect("it loads");
        rt.block_on(danesim::runner::run(&s, &danesim::sender::SenderKind::Reference, &keys))
            .expect("it runs")
            .outcome
            .verdict
    };
    let script =
        |n: u32| format!("\n[[endpoint.session]]\nconnection = {n}\nreplies = {{ rcpt = \"450 4.2.0 later\" }}\n");
    match run(&script(2)) {
        danesim::outcome::verdict::Verdict::Violation(v) => {
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].invariant, "SESSION(mx1.example.test. connection 2)");
            assert!(v[0].detail.contains("the endpoint saw 1 connection(s)"), "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    match run(&script(1)) {
        danesim::outcome::verdict::Verdict::Violation(v) => {
            assert!(v.iter().all(|v| !v.invariant.starts_with("SESSION")), "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(run("").passed());
}
