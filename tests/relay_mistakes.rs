//! The relay scenarios catch the two mistakes a sender can make with a route that skips MX
//! (issue 15): following the MX RRset instead of the configured relay (RFC 7672 §2.2.2), and
//! taking the TLSA RRset of port 25 for a connection to another port (§2.2.3, RFC 6698 §3).
//! The reference sender is run into each world with the mistake made for it; the verdict
//! must fail, and name what went wrong.

use danesim::outcome::Verdict;
use danesim::outcome::verdict::judge;
use danesim::pki::KeyStore;
use danesim::runner::{self, Limits};
use danesim::scenario::{self, Scenario};
use danesim::sender::reference;
use danesim::witness::observe;
use danesim::world::World;
use std::path::PathBuf;

fn load(rel: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(rel);
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The failed checks of a reference run whose context `mistake` changed.
async fn failed(rel: &str, mistake: impl Fn(&mut reference::SenderContext)) -> Vec<String> {
    let s = load(rel);
    let world = World::start(&s, &KeyStore::embedded()).await.expect("the world starts");
    let mut ctx = runner::context(&world, &s, Limits::default());
    mistake(&mut ctx);
    let report = reference::deliver(&ctx, &s.message).await;
    let obs = observe(&world).await;
    let verdict = judge(&s, &world, "mistaken", &report, &obs);
    world.stop().await;
    match verdict {
        Verdict::Pass => Vec::new(),
        Verdict::Violation(v) | Verdict::Deviation(v) => v.into_iter().map(|v| v.invariant).collect(),
    }
}

#[tokio::test]
async fn both_relay_scenarios_pass_without_a_mistake() {
    for rel in [
        "routes/relay-2525-matching-tlsa.toml",
        "routes/relay-2525-only-port-25-tlsa.toml",
    ] {
        assert_eq!(failed(rel, |_| {}).await, Vec::<String>::new(), "{rel}");
    }
}

#[tokio::test]
async fn a_sender_that_looks_up_mx_instead_of_the_relay_fails() {
    // Without its route the sender asks for MX and delivers to the trap on port 25.
    let v = failed("routes/relay-2525-matching-tlsa.toml", |c| c.relay = None).await;
    for want in ["RESULT", "NOCONNECT(mx2.example.test.:25)", "NOQUERY(example.test. MX)"] {
        assert!(v.iter().any(|i| i == want), "{want} in {v:?}");
    }
}

#[tokio::test]
async fn a_sender_that_takes_the_port_25_tlsa_for_2525_fails() {
    // The `_25._tcp` record does not match the relay's key: the mistaken sender defers, and
    // it asked a question a correct one never asks.
    let v = failed("routes/relay-2525-only-port-25-tlsa.toml", |c| {
        c.danger_tlsa_port_25 = true
    })
    .await;
    for want in ["RESULT", "NOQUERY(_25._tcp.mx1.example.test. TLSA)"] {
        assert!(v.iter().any(|i| i == want), "{want} in {v:?}");
    }
    // With a matching `_2525._tcp` RRset the same mistake finds no TLSA at `_25._tcp` and
    // delivers without authentication, where AUTH is required.
    let v = failed("routes/relay-2525-matching-tlsa.toml", |c| c.danger_tlsa_port_25 = true).await;
    assert!(v.iter().any(|i| i == "RESULT"), "{v:?}");
}
