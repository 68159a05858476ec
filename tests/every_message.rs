//! Every message judged (DESIGN.md, "the receiving side is the impartial witness"): ONCE
//! and REPORT look at every message a session carried, not only its first. A world runs in
//! process and the reference sender's SMTP client sends several messages over one
//! connection (RFC 5321 §3.3: a session may hold several mail transactions), so the
//! endpoint really records them.

mod common;

use danesim::outcome::verdict::{judge, judge_retried};
use danesim::outcome::{Observations, Verdict};
use danesim::pki::KeyStore;
use danesim::scenario::{self, Scenario};
use danesim::sender::SenderReport;
use danesim::smtp::body_sha256;
use danesim::vocab::ResultCode;
use danesim::witness::observe;
use danesim::world::World;
use std::path::Path;

/// No TLSA and no STARTTLS: cleartext delivery is right (RFC 7672 §2.2), so nothing but
/// the checks under test can object.
const SCENARIO: &str = r#"
id = "two-messages"
title = "several messages in one session"
teaches = "ONCE and REPORT judge every message"

[[zone]]
origin = "example.test."
records = ["@ MX 10 mx1", "mx1 A 192.0.2.10"]

[[endpoint]]
address = "192.0.2.10"
host = "mx1.example.test"
behaviour = "no-starttls"

[expect]
result = "OPP"
via = "mx1.example.test"
invariants = ["ONCE"]
"#;

const OTHER: &[u8] = b"Subject: another message\r\n\r\nNot the one under test.\r\n";

fn scenario() -> Scenario {
    scenario::load_str(Path::new("two-messages.toml"), SCENARIO).unwrap_or_else(|e| panic!("{e}"))
}

/// What the witnesses saw during the sessions, in a fresh world.
async fn witnessed(s: &Scenario, sessions: &[&[&[u8]]]) -> (World, Observations) {
    let world = World::start(s, &KeyStore::embedded()).await.expect("the world starts");
    for bodies in sessions {
        common::cleartext_session(&world, &s.message.from, &s.message.to, "192.0.2.10", bodies).await;
    }
    let obs = observe(&world).await;
    (world, obs)
}

/// What a sender reports when it says it delivered (or not) via mx1.
fn report(result: ResultCode) -> SenderReport {
    common::claimed(result, "mx1.example.test.")
}

/// The violated checks of a verdict, with their details.
fn violations(v: &Verdict) -> Vec<(String, String)> {
    match v {
        Verdict::Pass => Vec::new(),
        Verdict::Violation(v) | Verdict::Deviation(v) => {
            v.iter().map(|v| (v.invariant.clone(), v.detail.clone())).collect()
        }
    }
}

#[tokio::test]
async fn once_catches_a_duplicate_within_one_session() {
    let s = scenario();
    let body = s.message.body.clone();
    let (world, obs) = witnessed(&s, &[&[&body, &body]]).await;
    let t = &obs.endpoints[0].connections;
    assert_eq!(t.len(), 1, "one session");
    assert_eq!(t[0].accepted_messages, vec![body_sha256(&body); 2]);
    let v = violations(&judge(&s, &world, "reference", &report(ResultCode::Opp), &obs));
    world.stop().await;
    assert_eq!(
        v,
        vec![(
            "ONCE".to_string(),
            "the message was accepted 2 time(s) (and 0 other message(s))".to_string()
        )]
    );
}

#[tokio::test]
async fn once_counts_copies_over_all_connections() {
    let s = scenario();
    let body = s.message.body.clone();
    let (world, obs) = witnessed(&s, &[&[&body], &[&body]]).await;
    assert_eq!(obs.endpoints[0].connections.len(), 2, "two sessions");
    let v = violations(&judge(&s, &world, "reference", &report(ResultCode::Opp), &obs));
    world.stop().await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "ONCE");
    assert!(v[0].1.contains("accepted 2 time(s)"), "{v:?}");
}

#[tokio::test]
async fn a_correct_message_after_another_on_the_same_connection_passes() {
    let s = scenario();
    let body = s.message.body.clone();
    let (world, obs) = witnessed(&s, &[&[OTHER, &body]]).await;
    let t = &obs.endpoints[0].connections[0];
    // The case the first-message-only checks got wrong: the session's first message is
    // another one.
    assert_eq!(t.body_sha256.as_deref(), Some(body_sha256(OTHER).as_str()));
    assert_eq!(t.accepted_messages, vec![body_sha256(OTHER), body_sha256(&body)]);
    let verdict = judge(&s, &world, "reference", &report(ResultCode::Opp), &obs);
    world.stop().await;
    assert_eq!(verdict, Verdict::Pass);
}

#[tokio::test]
async fn report_sees_a_delivery_that_is_the_second_message_of_a_session() {
    let s = scenario();
    let body = s.message.body.clone();
    // The sender says it deferred, but its second message of the session was the one under
    // test, and it was accepted: its word is wrong (RFC 5321 §6.1).
    let (world, obs) = witnessed(&s, &[&[OTHER, &body]]).await;
    let mut deferring = s.clone();
    deferring.expect.results = vec![ResultCode::Defer];
    deferring.expect.via = None;
    deferring.expect.invariants.clear();
    let v = violations(&judge(
        &deferring,
        &world,
        "reference",
        &report(ResultCode::Defer),
        &obs,
    ));
    world.stop().await;
    assert_eq!(
        v,
        vec![(
            "REPORT".to_string(),
            "the sender reported DEFER but endpoints accepted the message 1 time(s)".to_string()
        )]
    );

    // And a claimed delivery whose session carried only other messages is refuted.
    let (world, obs) = witnessed(&s, &[&[OTHER, b"Subject: a third\r\n\r\nAlso not it.\r\n"]]).await;
    let v = violations(&judge(&s, &world, "reference", &report(ResultCode::Opp), &obs));
    world.stop().await;
    let checks: Vec<&str> = v.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(checks, vec!["REPORT", "ONCE"], "{v:?}");
    assert!(v[0].1.contains("accepted the message 0 time(s)"), "{v:?}");
}

#[tokio::test]
async fn once_counts_the_copies_of_a_message_s_earlier_attempts() {
    // A timeline retries a deferred message as the same message: a copy accepted during
    // an earlier attempt makes a second delivery a duplicate.
    let s = scenario();
    let body = s.message.body.clone();
    let (world, first) = witnessed(&s, &[&[&body]]).await;
    world.stop().await;
    let (world, second) = witnessed(&s, &[&[&body]]).await;
    let v = violations(&judge_retried(
        &s,
        &world,
        "reference",
        &report(ResultCode::Opp),
        &second,
        &[&first],
    ));
    assert_eq!(
        v,
        vec![(
            "ONCE".to_string(),
            "the message was accepted 2 time(s) (and 0 other message(s)) over this and 1 earlier attempt(s) of it"
                .to_string()
        )]
    );
    // An earlier attempt that delivered nothing leaves one copy: ONCE holds.
    let (nothing_world, nothing) = witnessed(&s, &[]).await;
    nothing_world.stop().await;
    let verdict = judge_retried(&s, &world, "reference", &report(ResultCode::Opp), &second, &[&nothing]);
    world.stop().await;
    assert_eq!(verdict, Verdict::Pass);
}
