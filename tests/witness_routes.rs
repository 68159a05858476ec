//! The witness decides commitment from the route, never from a greeting name (RFC 7672
//! §2.2.2, §2.2.3). A rogue client delivers in cleartext into the worlds of the route
//! scenarios; the automatic NOCLEAR must fire exactly where a route commits the address to
//! TLS, whatever name the endpoint greets with. The scenarios' own explicit NOCLEAR is
//! removed first, so only the witness's route judgment can raise it.

mod common;

use danesim::outcome::Verdict;
use danesim::outcome::verdict::judge;
use danesim::pki::KeyStore;
use danesim::scenario::{self, Scenario};
use danesim::vocab::{Invariant, ResultCode};
use danesim::witness::{Commitment, Routes, observe};
use danesim::world::World;
use std::path::PathBuf;

fn load(rel: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(rel);
    let mut s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    s.expect.invariants.retain(|i| *i != Invariant::NoClear);
    s
}

/// The NOCLEAR details the witness raised for a cleartext delivery into `rel`'s world.
async fn noclear(rel: &str, mx_host: &str) -> (Vec<String>, String) {
    noclear_at(rel, mx_host, 25).await
}

/// As [`noclear`], with the rogue client at the endpoint on `port`.
async fn noclear_at(rel: &str, mx_host: &str, port: u16) -> (Vec<String>, String) {
    let s = load(rel);
    let world = World::start(&s, &KeyStore::embedded()).await.expect("the world starts");
    let routes = Routes::of_world(&world);
    let commitment = format!(
        "{:?}",
        routes.commitment("192.0.2.10".parse().expect("an address"), port)
    );
    let body = s.message.body.clone();
    let at = format!("192.0.2.10:{port}");
    common::cleartext_session(&world, &s.message.from, &s.message.to, &at, &[&body]).await;
    let obs = observe(&world).await;
    let verdict = judge(&s, &world, "rogue", &common::claimed(ResultCode::Opp, mx_host), &obs);
    world.stop().await;
    let found = match verdict {
        Verdict::Pass => Vec::new(),
        Verdict::Violation(v) | Verdict::Deviation(v) => v
            .into_iter()
            .filter(|v| v.invariant == "NOCLEAR")
            .map(|v| v.detail)
            .collect(),
    };
    (found, commitment)
}

#[tokio::test]
async fn a_host_committed_through_its_mx_name_is_held_to_tls_whatever_it_greets_as() {
    // The endpoint greets as smtp.example.test, which has no TLSA; the route commits it
    // through the original MX name (§2.2.3's fallback).
    let (v, c) = noclear("dns-names/tlsa-base-fallback-original-name.toml", "mx1.example.test.").await;
    assert_eq!(v.len(), 1, "{c}: {v:?}");
    assert!(v[0].contains("secure TLSA at _25._tcp.mx1.example.test."), "{v:?}");
    // Secure CNAME into an unsigned zone: committed by the original name only (§2.2.2).
    let (v, c) = noclear("dns-names/cname-mx-host-into-unsigned-zone.toml", "mx1.example.test.").await;
    assert_eq!(v.len(), 1, "{c}: {v:?}");
    // The plain case, for contrast: the greeting name and the route agree.
    let (v, _) = noclear("dane-ee/positive-control.toml", "mx1.example.test.").await;
    assert_eq!(v.len(), 1, "{v:?}");
}

#[tokio::test]
async fn a_greeting_name_with_a_secure_tlsa_commits_nothing_off_route() {
    // The provider's server greets with a name whose TLSA is secure, but the route reaches it
    // through an insecure CNAME: DANE does not apply and cleartext is allowed (§2.2.2).
    let (v, c) = noclear(
        "dns-names/cname-mx-host-insecure-into-signed-zone.toml",
        "mx1.alias.example.test.",
    )
    .await;
    assert_eq!(c, format!("{:?}", Commitment::Free));
    assert!(v.is_empty(), "{v:?}");
    // A secure TLSA with an insecure MX RRset: a sender MAY deliver opportunistically (MX-02).
    let (v, _) = noclear("dns-security/mx-02-insecure-mx-signed-host.toml", "mx1.signed.test.").await;
    assert!(v.is_empty(), "{v:?}");
}

/// A relay route commits by `_<port>._tcp.<relay host>` (RFC 7672 §2.2.2, §2.2.3): cleartext
/// at the relay is a violation when `_2525._tcp` is secure, and allowed when only a
/// `_25._tcp` RRset exists, which says nothing of port 2525 (RFC 6698 §3).
#[tokio::test]
async fn a_relay_is_committed_by_the_tlsa_of_its_own_port_only() {
    let (v, c) = noclear_at("routes/relay-2525-matching-tlsa.toml", "mx1.example.test.", 2525).await;
    assert_eq!(v.len(), 1, "{c}: {v:?}");
    assert!(v[0].contains("secure TLSA at _2525._tcp.mx1.example.test."), "{v:?}");
    let (v, c) = noclear_at("routes/relay-2525-only-port-25-tlsa.toml", "mx1.example.test.", 2525).await;
    assert_eq!(c, format!("{:?}", Commitment::Free));
    assert!(v.is_empty(), "{v:?}");
}
