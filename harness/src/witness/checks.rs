//! The witness's checks: what the receiving side saw, judged without the sender's word.
//!
//! Three run on every attempt whatever the scenario lists, because a conformant sender can
//! never break them (DESIGN.md, "the receiving side is the impartial witness"):
//! - NOCLEAR at every address whose routes are all committed to TLS by a secure TLSA RRset
//!   ([`super::route`], RFC 7672 §2.2, §2.2.3);
//! - DANE-MATCH: no message accepted over TLS there after a chain that no usable TLSA record
//!   of those routes matches (RFC 7672 §3.2; the match is [`crate::dane::chain_matches`]);
//! - REPORT: the sender claims delivery exactly when an endpoint accepted the message.
//!
//! Then the scenario's explicit invariants (NOMAIL, NOCONNECT, SNI, NOQUERY, ONCE,
//! NOAUTH-LOG, and NOCLEAR everywhere), hosts decided by route as the loader decided them.

use super::observe::{EndpointObservation, Observations};
use super::route::{Commitment, Route};
use crate::dane::chain_matches;
use crate::outcome::Violation;
use crate::scenario::{AttackerDecl, Scenario};
use crate::sender::SenderReport;
use crate::smtp::body_sha256;
use crate::vocab::{ConnectTarget, Invariant, ResultCode};
use crate::world::World;

/// Every failed witness check of one attempt; `earlier` holds what the witnesses saw during
/// the message's earlier attempts, so that ONCE counts every copy of it.
pub fn judge(
    s: &Scenario,
    world: &World,
    report: &SenderReport,
    obs: &Observations,
    earlier: &[&Observations],
) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut push = |inv: &str, rfc: &str, detail: String| v.push(Violation::new(inv, rfc, detail));

    let submitted = body_sha256(&s.message.body);
    // Every accepted message of every connection (a client may send several per session),
    // keyed by address: a sender names the MX host it chose, which may be an alias of the
    // name the endpoint greets with (RFC 7672 §2.2.2), but it dials an address.
    let accepted: Vec<(&str, bool)> = accepted_copies(obs)
        .map(|(address, hash)| (address, hash == submitted))
        .collect();
    let delivered_ok = accepted.iter().filter(|(_, same)| *same).count();
    if report.result.delivered() != (delivered_ok > 0) {
        push(
            "REPORT",
            "RFC 5321 §6.1",
            format!(
                "the sender reported {} but endpoints accepted the message {delivered_ok} time(s)",
                report.result
            ),
        );
    } else if let Some(via) = &report.via {
        let addr = report
            .hosts
            .iter()
            .find(|h| &h.host == via)
            .and_then(|h| h.address.as_deref());
        if !accepted.iter().any(|(a, same)| *same && Some(*a) == addr) {
            push(
                "REPORT",
                "RFC 5321 §6.1",
                format!(
                    "the sender reported delivery via {via} ({}), but nothing was accepted there",
                    addr.unwrap_or("no address")
                ),
            );
        }
    }

    let routes = &obs.routes;
    let explicit_noclear = s.expect.invariants.contains(&Invariant::NoClear);
    for e in &world.endpoints {
        let Some(obs_e) = obs.endpoints.iter().find(|o| o.address == e.decl.address.to_string()) else {
            continue;
        };
        let commitment = routes.commitment(e.decl.address, e.decl.port);
        let committed = match &commitment {
            Commitment::Committed(r) => Some(r.as_slice()),
            _ => None,
        };
        for t in &obs_e.connections {
            if let Some(m) = &t.mail_from
                && !m.over_tls
                && (committed.is_some() || explicit_noclear)
            {
                push(
                    "NOCLEAR",
                    "RFC 7672 §2.2",
                    format!(
                        "{} ({}) received MAIL FROM:<{}> in cleartext{}",
                        e.decl.host,
                        e.decl.address,
                        m.address,
                        committed
                            .map(|r| format!(", although every route there is committed to TLS: {}", route_list(r)))
                            .unwrap_or_default()
                    ),
                );
            }
            // DANE-MATCH: the witness checks the served chain against the usable records itself.
            // The chain really presented on this connection (SNI and timeline renewals
            // both change it), by the label the endpoint recorded.
            if t.accepted
                && let Some(tls) = &t.tls
                && let Some(r) = committed
                && !any_route_matches(r, &world.chain_der(&tls.chain_label))
            {
                push(
                    "DANE-MATCH",
                    "RFC 7672 §3.2",
                    format!(
                        "{} ({}) accepted the message over TLS with a chain that no usable TLSA record of its routes matches: {}",
                        e.decl.host,
                        e.decl.address,
                        route_list(r)
                    ),
                );
            }
        }
        // The same check for a man in the middle: the chain the sender accepted was the
        // interceptor's, whatever the endpoint behind it served.
        if let Some(a) = &e.attacker
            && a.intercepted_deliveries() > 0
            && let Some(AttackerDecl::Intercept { chain }) = &e.decl.attacker
            && let Some(r) = committed
            && !any_route_matches(r, &world.chain_der_of(chain))
        {
            push(
                "DANE-MATCH",
                "RFC 7672 §3.2",
                format!(
                    "{} ({}) accepted {} message(s) the sender handed to an interceptor whose chain no usable TLSA record of its routes matches: {}",
                    e.decl.host,
                    e.decl.address,
                    a.intercepted_deliveries(),
                    route_list(r)
                ),
            );
        }
    }

    for inv in &s.expect.invariants {
        if let Some(detail) = check(inv, world, report, obs, earlier, &submitted) {
            push(&inv.to_string(), inv.rfc(), detail);
        }
    }

    v
}

/// Whether some committed route accepts this chain: one without usable records (TLS
/// mandatory, certificate unchecked, RFC 7672 §2.2) or one whose usable records match it.
fn any_route_matches(routes: &[&Route], chain: &[Vec<u8>]) -> bool {
    routes.iter().any(|r| {
        r.tlsa.as_ref().is_some_and(|t| {
            let usable = t.usable();
            usable.is_empty() || chain_matches(&usable, chain)
        })
    })
}

fn route_list(routes: &[&Route]) -> String {
    let mut v: Vec<String> = routes
        .iter()
        .map(|r| format!("MX {} {} ({})", r.preference, r.mx_host, r.why))
        .collect();
    v.dedup();
    v.join("; ")
}

/// Every message accepted at any endpoint, as (address, body hash): all of each
/// connection's messages, not only its first.
fn accepted_copies(obs: &Observations) -> impl Iterator<Item = (&str, &str)> {
    obs.endpoints.iter().flat_map(|e| {
        e.connections.iter().flat_map(move |t| {
            t.accepted_messages
                .iter()
                .map(move |h| (e.address.as_str(), h.as_str()))
        })
    })
}

/// The witnesses' records at the endpoints `host` leads to in the world as it stood
/// ([`crate::world::Published::route`], the loader's rule); `None` when it leads to none
/// (a timeline step took its route away), so that the check says so instead of passing.
pub(super) fn routed<'a>(
    host: &str,
    world: &World,
    obs: &'a Observations,
) -> Option<Vec<&'a super::observe::EndpointObservation>> {
    let addresses = world.published.route(host, world.endpoints.iter().map(|e| &e.decl));
    (!addresses.is_empty()).then(|| {
        obs.endpoints
            .iter()
            .filter(|e| addresses.iter().any(|a| a.to_string() == e.address))
            .collect()
    })
}

/// Where a routed host really was, when the endpoint greets with another name.
fn aka(host: &str, e: &super::observe::EndpointObservation) -> String {
    if e.host == host {
        String::new()
    } else {
        format!(" (the endpoint at {}, {})", e.address, e.host)
    }
}

/// Explicit invariants; None when it holds. NOCLEAR is handled above with the endpoints.
fn check(
    inv: &Invariant,
    world: &World,
    report: &SenderReport,
    obs: &Observations,
    earlier: &[&Observations],
    submitted: &str,
) -> Option<String> {
    let unrouted = |h: &str| format!("{h} leads to no endpoint in the world of this attempt, so nothing was checked");
    match inv {
        Invariant::NoClear => None,
        Invariant::Once => {
            // Every copy in every session, and in the message's earlier attempts: a retry
            // after an accepted copy is a duplicate too (RFC 5321 §6.1: deliver once). Another
            // message in the same session is not a copy (RFC 5321 §3.3 allows several mail
            // transactions per session); it is counted for the detail only.
            let (mut n, mut other) = (0, 0);
            for (_, hash) in std::iter::once(obs)
                .chain(earlier.iter().copied())
                .flat_map(accepted_copies)
            {
                if hash == submitted {
                    n += 1;
                } else {
                    other += 1;
                }
            }
            (n != 1).then(|| {
                format!(
                    "the message was accepted {n} time(s) (and {other} other message(s)){}",
                    if earlier.is_empty() {
                        String::new()
                    } else {
                        format!(" over this and {} earlier attempt(s) of it", earlier.len())
                    }
                )
            })
        }
        Invariant::NoMail(h) => match routed(h, world, obs) {
            None => Some(unrouted(h)),
            Some(at) => at
                .iter()
                .flat_map(|e| e.connections.iter().map(move |t| (e, t)))
                .find(|(_, t)| t.mail_from.is_some())
                .map(|(e, t)| format!("{h}{} received MAIL FROM on connection {}", aka(h, e), t.connection)),
        },
        Invariant::NoConnect { at, port } => {
            let at_target: Vec<&EndpointObservation> = match at {
                ConnectTarget::Address(a) => obs.endpoints.iter().filter(|e| e.address == a.to_string()).collect(),
                ConnectTarget::Host(h) => match routed(h, world, obs) {
                    None => return Some(unrouted(h)),
                    Some(at) => at,
                },
            };
            at_target
                .into_iter()
                .filter(|e| port.is_none_or(|p| e.port == p))
                .find(|e| !e.connections.is_empty())
                .map(|e| {
                    format!(
                        "{at}{} received {} connection(s) on port {}",
                        match at {
                            ConnectTarget::Host(_) => format!(" (the endpoint at {})", e.address),
                            ConnectTarget::Address(_) => String::new(),
                        },
                        e.connections.len(),
                        e.port
                    )
                })
        }
        Invariant::Sni { host, name } => {
            let want = name.trim_end_matches('.');
            let Some(at) = routed(host, world, obs) else {
                return Some(unrouted(host));
            };
            // Every ClientHello counts, including those of handshakes the client then aborted.
            at.iter()
                .flat_map(|e| e.connections.iter().map(move |t| (e, t)))
                .filter(|(_, t)| t.tls.is_some() || t.client_hello_sni.is_some())
                .find(|(_, t)| t.client_hello_sni.as_deref().map(|s| s.trim_end_matches('.')) != Some(want))
                .map(|(e, t)| {
                    format!(
                        "connection {} to {host}{}: {}, not {want}",
                        t.connection,
                        aka(host, e),
                        t.client_hello_sni
                            .as_deref()
                            .map_or("the ClientHello carried no SNI".to_string(), |s| format!(
                                "ClientHello SNI {s}"
                            ))
                    )
                })
        }
        Invariant::NoQuery { name, rtype } => obs.queries.iter().find_map(|q| {
            if asks(q, name, rtype) {
                return Some(format!("the authoritative server saw a query for {name} {rtype}"));
            }
            heads_for(q, name).then(|| {
                format!(
                    "the authoritative server saw a query for {} {}: a lookup heading for {name} {rtype} \
                     (qname minimisation, RFC 9156 §2.3)",
                    q.qname, q.qtype
                )
            })
        }),
        // The lookup counts when the server saw it or a step heading for it: a minimising
        // resolver that learns an NXDOMAIN at `_tcp.mx1...` never asks the full name
        // (RFC 8020 §2), and NOQUERY counts the same steps, so QUERY is its exact negation.
        Invariant::Query { name, rtype } => (!obs.queries.iter().any(|q| looks_up(q, name, rtype)))
            .then(|| format!("the authoritative server saw no query for {name} {rtype}")),
        Invariant::Tcp { name, rtype } => {
            let asked: Vec<_> = obs.queries.iter().filter(|q| asks(q, name, rtype)).collect();
            match asked.iter().any(|q| q.tcp) {
                true => None,
                false if asked.is_empty() => Some(format!("the authoritative server saw no query for {name} {rtype}")),
                false => Some(format!(
                    "{} quer{} for {name} {rtype}, none over TCP",
                    asked.len(),
                    if asked.len() == 1 { "y" } else { "ies" }
                )),
            }
        }
        Invariant::Order { before, after } => {
            let first = |(n, t): &(String, String)| obs.queries.iter().position(|q| looks_up(q, n, t));
            match (first(before), first(after)) {
                (Some(b), Some(a)) if b < a => None,
                (Some(b), Some(a)) => Some(format!(
                    "{} {} was first asked as query {} of the attempt, after {} {} (query {})",
                    before.0,
                    before.1,
                    b + 1,
                    after.0,
                    after.1,
                    a + 1
                )),
                // No vacuous order: both lookups must have happened.
                (b, a) => Some(format!(
                    "the authoritative server saw no query for {}",
                    [(b, before), (a, after)]
                        .iter()
                        .filter(|(i, _)| i.is_none())
                        .map(|(_, (n, t))| format!("{n} {t}"))
                        .collect::<Vec<_>>()
                        .join(" nor for ")
                )),
            }
        }
        Invariant::NoAuthLog => (report.result == ResultCode::Auth)
            .then(|| "the sender's report claims DANE-authenticated delivery".to_string()),
    }
}

/// Whether the logged query `q` asks for `name` `rtype`.
fn asks(q: &crate::dns::QueryEntry, name: &str, rtype: &str) -> bool {
    crate::vocab::fqdn(&q.qname) == name && q.qtype.eq_ignore_ascii_case(rtype)
}

/// Whether `q` asks for `name` `rtype` or is a step of a lookup heading for it.
fn looks_up(q: &crate::dns::QueryEntry, name: &str, rtype: &str) -> bool {
    asks(q, name, rtype) || heads_for(q, name)
}

/// Whether `q` is a step of a lookup heading for the underscored name `name`: a query of any
/// type for a proper ancestor that is still underscored (`_tcp.mx1...` on the way to
/// `_25._tcp.mx1...`). Underscored names are service names, never host names (RFC 8552 §1),
/// so only such a lookup asks for them; a plain ancestor (`mx1...`) proves nothing.
fn heads_for(q: &crate::dns::QueryEntry, name: &str) -> bool {
    let asked = crate::vocab::fqdn(&q.qname);
    // Proper ancestors only: the last step asks the name itself with the original type
    // (RFC 9156 §2.3), which `asks` matches; any other type there is another lookup.
    let mut at = name;
    while let Some((_, rest)) = at.split_once('.') {
        if !rest.starts_with('_') {
            break;
        }
        if asked == rest {
            return true;
        }
        at = rest;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::QueryEntry;

    fn query(qname: &str, qtype: &str) -> QueryEntry {
        QueryEntry {
            qname: qname.into(),
            qtype: qtype.into(),
            dnssec_ok: true,
            checking_disabled: false,
            tcp: false,
            rcode: "NOERROR".into(),
            answers: 0,
            fault: None,
        }
    }

    /// NOQUERY of an underscored name also catches the qname-minimised steps towards it
    /// (RFC 9156 §2.3), never a plain host name on the way.
    #[test]
    fn a_minimised_step_heads_for_the_underscored_name_a_host_name_does_not() {
        let tlsa = "_25._tcp.mx1.example.test.";
        assert!(heads_for(&query("_tcp.mx1.example.test.", "A"), tlsa));
        assert!(
            !heads_for(&query("_25._tcp.mx1.example.test.", "NS"), tlsa),
            "the name itself: its type counts"
        );
        assert!(!heads_for(&query("mx1.example.test.", "A"), tlsa));
        assert!(!heads_for(&query("example.test.", "NS"), tlsa));
        assert!(!heads_for(&query("_tcp.mx2.example.test.", "A"), tlsa));
        assert!(!heads_for(
            &query("_25._tcp.mx1.example.test.", "A"),
            "mx1.example.test."
        ));
        assert!(asks(&query("_25._tcp.mx1.example.test.", "TLSA"), tlsa, "TLSA"));
        assert!(!asks(&query("_25._tcp.mx1.example.test.", "A"), tlsa, "TLSA"));
    }
}
