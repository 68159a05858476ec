//! The witness decides commitment from the route, never from a greeting name (RFC 7672
//! §2.2.2, §2.2.3). A rogue client delivers in cleartext into the worlds of the route
//! scenarios; the automatic NOCLEAR must fire exactly where a route commits the address to
//! TLS, whatever name the endpoint greets with. The scenarios' own explicit NOCLEAR is
//! removed first, so only the witness's route judgment can raise it.

use danesim::outcome::Verdict;
use danesim::outcome::verdict::judge;
use danesim::pki::KeyStore;
use danesim::scenario::{self, Scenario};
use danesim::sender::reference::smtp_client::SmtpClient;
use danesim::sender::{HostReport, SenderReport};
use danesim::vocab::{HostCode, Invariant, ResultCode};
use danesim::witness::{Commitment, Routes, observe};
use danesim::world::World;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn load(rel: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(rel);
    let mut s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    s.expect.invariants.retain(|i| *i != Invariant::NoClear);
    s
}

/// A client that ignores DANE: one cleartext session to 192.0.2.10 carrying the message.
async fn cleartext_delivery(world: &World, s: &Scenario) {
    let addr: SocketAddr = "192.0.2.10:25".parse().expect("a socket address");
    let tcp = world
        .dialer
        .dial(addr, Duration::from_secs(5))
        .await
        .expect("the endpoint answers");
    let (mut c, greeting) = SmtpClient::start(tcp, Duration::from_secs(5)).await.expect("greeting");
    assert_eq!(greeting.code, 220);
    c.ehlo("rogue.test").await.expect("EHLO");
    assert_eq!(
        c.command(&format!("MAIL FROM:<{}>", s.message.from))
            .await
            .expect("MAIL")
            .code,
        250
    );
    assert_eq!(
        c.command(&format!("RCPT TO:<{}>", s.message.to))
            .await
            .expect("RCPT")
            .code,
        250
    );
    assert_eq!(c.data(&s.message.body).await.expect("DATA").code, 250);
    c.quit().await.expect("QUIT");
}

fn claims_opp(host: &str) -> SenderReport {
    SenderReport {
        result: ResultCode::Opp,
        via: Some(host.to_string()),
        status: "250 delivered".into(),
        hosts: vec![HostReport {
            host: host.into(),
            preference: 10,
            code: HostCode::Opp,
            address: Some("192.0.2.10".into()),
            reason: String::new(),
            failure: None,
        }],
        notes: Vec::new(),
        reports_notes: false,
        trace: Vec::new(),
    }
}

/// The NOCLEAR details the witness raised for a cleartext delivery into `rel`'s world.
async fn noclear(rel: &str, mx_host: &str) -> (Vec<String>, String) {
    let s = load(rel);
    let world = World::start(&s, &KeyStore::embedded()).await.expect("the world starts");
    let routes = Routes::of(&world.published, &s.message.domain);
    let commitment = format!("{:?}", routes.commitment("192.0.2.10".parse().expect("an address")));
    cleartext_delivery(&world, &s).await;
    let obs = observe(&world).await;
    let verdict = judge(&s, &world, "rogue", &claims_opp(mx_host), &obs);
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
