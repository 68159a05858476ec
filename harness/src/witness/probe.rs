//! The verdict on a probe: a sender profile with `probe = true` (posttls-finger) connects,
//! negotiates TLS, says whether it authenticated each peer, and sends no mail. Delivery
//! expectations (RESULT, VIA, NOMAIL, ...) say nothing about it; what it can get right or
//! wrong is the authentication decision of RFC 7672 §3, per host. So a probe is judged on
//! its claims alone, against what the endpoints saw:
//!
//! - PROBE-CLAIM (RFC 7672 §3.2): a `verified` claim for an address is true only when the
//!   witness saw a TLS handshake there whose chain a usable TLSA record of a committed route
//!   matches ([`crate::dane::chain_matches`]); a claim without one is false authentication;
//! - PROBE-HOST (RFC 7672 §2.2, §3): where the scenario expects AUTH at a host the probe
//!   reached, it must claim `verified` there; where it expects SKIP-tls, TLS, OPP, SKIP-ehlo
//!   or SKIP-pre, it must not. A host the probe never connected to is not judged (a probe
//!   stops at the first host that answers), nor TEMPFAIL, REJECT or UNUSED (the dialogue
//!   after TLS is not a probe's);
//! - PROBE-MAIL (RFC 5321 §3.3): a probe sends no MAIL FROM.

use super::observe::Observations;
use super::route::Commitment;
use crate::dane::chain_matches;
use crate::outcome::{Verdict, Violation};
use crate::scenario::Scenario;
use crate::sender::external::TlsClaim;
use crate::vocab::HostCode;
use crate::world::World;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub fn judge(s: &Scenario, world: &World, obs: &Observations, claims: &BTreeMap<IpAddr, TlsClaim>) -> Verdict {
    let mut v = Vec::new();
    let mut push = |inv: &str, rfc: &str, detail: String| v.push(Violation::new(inv, rfc, detail));
    let verified = |a: IpAddr| claims.get(&a) == Some(&TlsClaim::Verified);
    for e in &world.endpoints {
        let address = e.decl.address;
        let Some(seen) = obs.endpoints.iter().find(|o| o.address == address.to_string()) else {
            continue;
        };
        if let Some(m) = seen.connections.iter().find_map(|c| c.mail_from.as_ref()) {
            push(
                "PROBE-MAIL",
                "RFC 5321 §3.3",
                format!(
                    "{} ({address}) received MAIL FROM:<{}>: a probe sends no mail",
                    e.decl.host, m.address
                ),
            );
        }
        if verified(address) {
            let routes = match obs.routes.commitment(address, e.decl.port) {
                Commitment::Committed(r) => r,
                Commitment::Disputed { committed, .. } => committed,
                Commitment::Free => Vec::new(),
            };
            let matched = seen.connections.iter().filter_map(|c| c.tls.as_ref()).any(|tls| {
                let chain = world.chain_der(&tls.chain_label);
                routes.iter().any(|r| {
                    r.tlsa.as_ref().is_some_and(|t| {
                        let usable = t.usable();
                        !usable.is_empty() && chain_matches(&usable, &chain)
                    })
                })
            });
            if !matched {
                push(
                    "PROBE-CLAIM",
                    "RFC 7672 §3.2",
                    format!(
                        "the probe claims it authenticated {} ({address}), but no chain it was shown there matches a usable TLSA record of a route committed to it",
                        e.decl.host
                    ),
                );
            }
        }
        let Some(code) = s.expect.hosts.get(&e.decl.host) else {
            continue;
        };
        let reached = !seen.connections.is_empty();
        match code {
            HostCode::Auth if reached && !verified(address) => push(
                "PROBE-HOST",
                "RFC 7672 §3",
                format!(
                    "{} ({address}): expected AUTH, and the probe reached it, but it did not claim to authenticate it",
                    e.decl.host
                ),
            ),
            HostCode::SkipTls | HostCode::Tls | HostCode::Opp | HostCode::SkipEhlo | HostCode::SkipPre
                if verified(address) =>
            {
                push(
                    "PROBE-HOST",
                    "RFC 7672 §2.2",
                    format!(
                        "{} ({address}): expected {}, where no DANE client authenticates, but the probe claims it authenticated it",
                        e.decl.host,
                        code.as_str()
                    ),
                )
            }
            _ => {}
        }
    }
    match v.is_empty() {
        true => Verdict::Pass,
        false => Verdict::Violation(v),
    }
}
