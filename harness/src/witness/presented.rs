//! PRESENTED: the leaf certificate the endpoints a host leads to presented in every TLS
//! handshake of the attempt that got as far as the certificate, against `[expect] presented`
//! (its serial number, RFC 5280 §4.1.2.2; its key the same as or different from a named
//! certificate's, which is what a rollover turns on: RFC 7671 §8.1, RFC 7672 §3.1.1). A
//! completed handshake is judged by the chain label its transcript recorded, so a renewal
//! step or SNI choice is seen as the client saw it; one the client refused with a
//! certificate alert (a DANE sender rejecting the leaf) by the chain the endpoint serves
//! that ClientHello.

use super::checks::routed;
use super::observe::Observations;
use crate::outcome::Violation;
use crate::scenario::Scenario;
use crate::world::World;

pub fn judge(s: &Scenario, world: &World, obs: &Observations) -> Vec<Violation> {
    let mut v = Vec::new();
    for (host, want) in &s.expect.presented {
        if let Some(detail) = check(host, want, world, obs) {
            v.push(Violation::new("PRESENTED", "RFC 7671 §8.1", detail));
        }
    }
    v
}

/// Alerts a client sends about the certificate it received (RFC 8446 §6.2, RFC 5246 §7.2.2):
/// a handshake that failed with one of these did present the server's chain.
const CERTIFICATE_ALERTS: [&str; 7] = [
    "BadCertificate",
    "UnsupportedCertificate",
    "CertificateRevoked",
    "CertificateExpired",
    "CertificateUnknown",
    "UnknownCA",
    "AccessDenied",
];

/// One leaf a client was shown: the connection, the leaf's certificate name, its DER.
struct Shown {
    connection: u32,
    leaf: String,
    der: Option<Vec<u8>>,
    spki: String,
    /// The client refused it (the handshake failed with a certificate alert).
    refused: bool,
}

/// Every leaf presented at the endpoints `host` leads to: those of completed handshakes, by
/// the label the transcript recorded, and those a client refused with a certificate alert,
/// by the chain the endpoint served that ClientHello (its current chain, or its SNI chain).
fn shown(at: &[&super::observe::EndpointObservation], world: &World) -> Vec<Shown> {
    let mut out = Vec::new();
    for e in at {
        let decl = world
            .endpoints
            .iter()
            .find(|w| w.decl.address.to_string() == e.address)
            .map(|w| &w.decl);
        for t in &e.connections {
            let names: Vec<String> = if let Some(tls) = &t.tls {
                tls.chain_label.split(" > ").map(str::to_string).collect()
            } else if t
                .client_alert
                .as_deref()
                .is_some_and(|a| CERTIFICATE_ALERTS.contains(&a))
                && let Some(d) = decl
            {
                let sni = t.client_hello_sni.as_deref().map(|n| n.trim_end_matches('.'));
                d.sni_chains
                    .iter()
                    .find(|(n, _)| sni.is_some_and(|s| n.eq_ignore_ascii_case(s)))
                    .map(|(_, c)| c.clone())
                    .unwrap_or_else(|| d.chain.clone())
            } else {
                continue;
            };
            let Some(leaf) = names.first().cloned() else {
                continue;
            };
            let issued = world.pki.get(&leaf);
            let spki = match &t.tls {
                Some(tls) => tls.chain_spki_sha256.first().cloned().unwrap_or_default(),
                None => issued.map(|c| c.spki_sha256.clone()).unwrap_or_default(),
            };
            out.push(Shown {
                connection: t.connection,
                leaf,
                der: issued.map(|c| c.der.clone()),
                spki,
                refused: t.tls.is_none(),
            });
        }
    }
    out
}

/// The first way the presented leaves miss the expectation; None when every one fits.
fn check(host: &str, want: &crate::scenario::model::Presented, world: &World, obs: &Observations) -> Option<String> {
    let Some(at) = routed(host, world, obs) else {
        return Some(format!(
            "{host} leads to no endpoint in the world of this attempt, so nothing was checked"
        ));
    };
    let shown = shown(&at, world);
    if shown.is_empty() {
        return Some(format!(
            "no leaf was presented at {host} in this attempt (no TLS handshake got as far as the certificate), so nothing was checked"
        ));
    }
    let key_of = |name: &str| world.pki.get(name).map(|c| c.spki_sha256.clone());
    for s in shown {
        let at = format!(
            "{host}, connection {}: the leaf `{}`{}",
            s.connection,
            s.leaf,
            if s.refused { " (refused by the client)" } else { "" }
        );
        if let Some(serial) = &want.serial {
            let got = s
                .der
                .as_deref()
                .and_then(|d| x509_parser::parse_x509_certificate(d).ok())
                .map(|(_, c)| {
                    c.raw_serial()
                        .iter()
                        .copied()
                        .skip_while(|b| *b == 0)
                        .collect::<Vec<u8>>()
                });
            if got.as_ref() != Some(serial) {
                return Some(format!(
                    "{at} has serial {}, expected {}",
                    got.map_or("(unknown)".into(), hex::encode_upper),
                    hex::encode_upper(serial)
                ));
            }
        }
        if let Some(other) = &want.same_key_as
            && key_of(other).as_deref() != Some(s.spki.as_str())
        {
            return Some(format!(
                "{at} does not have the key of `{other}` (SPKI SHA-256 {})",
                s.spki
            ));
        }
        if let Some(other) = &want.different_key_from
            && key_of(other).as_deref() == Some(s.spki.as_str())
        {
            return Some(format!("{at} has the same key as `{other}` (SPKI SHA-256 {})", s.spki));
        }
    }
    None
}
