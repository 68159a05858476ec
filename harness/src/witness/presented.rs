//! PRESENTED: the leaf certificate the endpoints a host leads to presented in every TLS
//! handshake of the attempt, against `[expect] presented` (its serial number, RFC 5280
//! §4.1.2.2; its key the same as or different from a named certificate's, which is what a
//! rollover turns on: RFC 7671 §8.1, RFC 7672 §3.1.1). Judged from the chain label each
//! transcript recorded, so a renewal step or SNI choice is seen as the client saw it.

use super::checks::routed;
use super::observe::Observations;
use crate::outcome::Violation;
use crate::scenario::Scenario;
use crate::world::World;

pub fn judge(s: &Scenario, world: &World, obs: &Observations) -> Vec<Violation> {
    let mut v = Vec::new();
    for (host, want) in &s.expect.presented {
        if let Some(detail) = check(host, want, world, obs) {
            v.push(Violation {
                invariant: "PRESENTED".into(),
                rfc: "RFC 7671 §8.1".into(),
                detail,
                deviation: None,
            });
        }
    }
    v
}

/// The first way the presented leaves miss the expectation; None when every one fits.
fn check(host: &str, want: &crate::scenario::model::Presented, world: &World, obs: &Observations) -> Option<String> {
    let Some(at) = routed(host, world, obs) else {
        return Some(format!(
            "{host} leads to no endpoint in the world of this attempt, so nothing was checked"
        ));
    };
    let handshakes: Vec<_> = at
        .iter()
        .flat_map(|e| e.connections.iter())
        .filter_map(|t| t.tls.as_ref().map(|tls| (t.connection, tls)))
        .collect();
    if handshakes.is_empty() {
        return Some(format!(
            "no TLS handshake completed at {host} in this attempt, so no leaf was presented to check"
        ));
    }
    let key_of = |name: &str| world.pki.get(name).map(|c| c.spki_sha256.clone());
    for (connection, tls) in handshakes {
        let leaf = tls.chain_label.split(" > ").next().unwrap_or_default();
        let spki = tls.chain_spki_sha256.first().cloned().unwrap_or_default();
        let at = format!("{host}, connection {connection}: the leaf `{leaf}`");
        if let Some(serial) = &want.serial {
            let der = world.chain_der(&tls.chain_label);
            let got = der
                .first()
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
            && key_of(other).as_deref() != Some(spki.as_str())
        {
            return Some(format!("{at} does not have the key of `{other}` (SPKI SHA-256 {spki})"));
        }
        if let Some(other) = &want.different_key_from
            && key_of(other).as_deref() == Some(spki.as_str())
        {
            return Some(format!("{at} has the same key as `{other}` (SPKI SHA-256 {spki})"));
        }
    }
    None
}
