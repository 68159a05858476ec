//! The sender report of an external sender, assembled from two sources: what the sender
//! logged (the attempt) and what the endpoints witnessed. Per host, the witness decides
//! how far the sender got (never connected, quit after EHLO, quit during or after TLS,
//! delivered); the log adds only what the wire cannot show: whether the sender
//! authenticated the peer, and its own reasons.

use super::observe::Observations;
use crate::scenario::Scenario;
use crate::sender::external::{Attempt, Terminal, TlsClaim};
use crate::sender::{HostReport, SenderReport, TraceStep};
use crate::smtp::{Transcript, body_sha256};
use crate::vocab::{HostCode, ResultCode, fqdn};
use crate::world::World;
use std::net::IpAddr;

/// One MX host as the world publishes it, with its addresses.
struct MxHost {
    name: String,
    preference: u16,
    addresses: Vec<IpAddr>,
}

/// A client began TLS with an intercepting attacker in front of one of these addresses: the
/// endpoint behind it saw no STARTTLS, but the sender did start a handshake.
fn intercepted_tls(obs: &Observations, addresses: &[IpAddr]) -> bool {
    obs.endpoints
        .iter()
        .filter(|e| addresses.iter().any(|a| e.address == a.to_string()))
        .any(|e| e.attacker_handshakes > 0)
}

pub fn report(s: &Scenario, world: &World, obs: &Observations, attempt: &Attempt) -> SenderReport {
    let submitted = body_sha256(&s.message.body);
    let mx = mx_hosts(world, &s.message.domain);

    let transcripts_at = |a: &IpAddr| -> Vec<&Transcript> {
        obs.endpoints
            .iter()
            .filter(|e| e.address == a.to_string())
            .flat_map(|e| &e.connections)
            .collect()
    };
    // Where the submitted message was accepted, by the witness's account.
    let accepted_at: Option<IpAddr> = mx.iter().flat_map(|h| &h.addresses).copied().find(|a| {
        transcripts_at(a)
            .iter()
            .any(|t| t.accepted_messages.contains(&submitted))
    });
    let via_pref = accepted_at.and_then(|a| mx.iter().find(|h| h.addresses.contains(&a)).map(|h| h.preference));

    // RFC 7672 §2.2: DANE applies on a route when its MX RRset, its address records and a
    // TLSA RRset at one of its base domains are secure (`route`); a delivery over
    // unauthenticated TLS there is "TLS", elsewhere "OPP". The host and the address the
    // message was accepted at name the route: no greeting name is consulted.
    let routes = &obs.routes;
    let committed = |h: &MxHost, a: &IpAddr| routes.via(&h.name, *a).is_some_and(|r| r.tlsa.is_some());
    let delivered_code = |h: &MxHost, a: &IpAddr, over_tls: bool| -> (HostCode, String) {
        let claim = attempt.tls.get(a);
        match (over_tls, claim) {
            (true, Some(TlsClaim::Verified)) => (
                HostCode::Auth,
                "delivered over TLS; the sender logged the peer as DANE-verified".into(),
            ),
            (true, c) if committed(h, a) => (
                HostCode::Tls,
                format!("delivered over TLS; the sender logged the peer as {}", claim_word(c)),
            ),
            (true, c) => (
                HostCode::Opp,
                format!(
                    "delivered over TLS where DANE did not apply; the sender logged the peer as {}",
                    claim_word(c)
                ),
            ),
            (false, _) => (HostCode::Opp, "delivered in cleartext".into()),
        }
    };

    let mut hosts = Vec::new();
    let mut result_from_witness = None;
    for h in &mx {
        let ts: Vec<&Transcript> = h.addresses.iter().flat_map(&transcripts_at).collect();
        let sender_words = h.addresses.iter().find_map(|a| attempt.reasons.get(a)).cloned();
        let (code, mut reason, address) = if let Some(a) = accepted_at.filter(|a| h.addresses.contains(a)) {
            let over_tls = transcripts_at(&a)
                .iter()
                .find(|t| t.accepted_messages.contains(&submitted))
                .is_some_and(|t| t.mail_from.as_ref().is_some_and(|m| m.over_tls));
            let (code, why) = delivered_code(h, &a, over_tls);
            result_from_witness = Some(code);
            (code, why, Some(a))
        } else if ts.is_empty() {
            let later = via_pref.is_some_and(|p| h.preference >= p);
            // With no endpoint at an address there is no witness; a connection attempt the
            // sender logged there (e.g. "Connection refused") is a temporary failure.
            let unserved = h
                .addresses
                .iter()
                .find(|a| !obs.endpoints.iter().any(|e| e.address == a.to_string()) && attempt.reasons.contains_key(a));
            if later {
                (
                    HostCode::Unused,
                    "not contacted: a more preferred host took the message".into(),
                    None,
                )
            } else if let Some(a) = unserved {
                (
                    HostCode::TempFail,
                    "no endpoint at this address; the sender logged a failed connection".into(),
                    Some(*a),
                )
            } else {
                (HostCode::SkipPre, "never connected".into(), None)
            }
        } else {
            let address = h.addresses.iter().copied().find(|a| !transcripts_at(a).is_empty());
            let last = ts.last().expect("ts is not empty in this branch");
            // RFC 5321 §4.2.1: the endpoint itself refused (as scripted): 4yz transient, 5yz permanent.
            if let Some(code) = ts.iter().find_map(|t| t.scripted_refusal) {
                (
                    if code >= 500 {
                        HostCode::Reject
                    } else {
                        HostCode::TempFail
                    },
                    format!("the endpoint replied {code} (scripted; connection ended: {})", last.end),
                    address,
                )
            } else if ts.iter().any(|t| t.mail_from.is_some()) {
                (
                    HostCode::TempFail,
                    format!("sent MAIL FROM, no message accepted (connection ended: {})", last.end),
                    address,
                )
            } else if ts
                .iter()
                .any(|t| t.starttls_used || t.client_hello_sni.is_some() || t.tls.is_some())
                || intercepted_tls(obs, &h.addresses)
            {
                let alert = ts.iter().find_map(|t| t.client_alert.clone());
                (
                    HostCode::SkipTls,
                    format!(
                        "began TLS, quit before MAIL FROM{}",
                        alert.map(|a| format!(" (client alert: {a})")).unwrap_or_default()
                    ),
                    address,
                )
            } else {
                (
                    HostCode::SkipEhlo,
                    format!("connected, quit without TLS or MAIL FROM (ended: {})", last.end),
                    address,
                )
            }
        };
        // RFC 3463: the code the sender's words about this address carry, or, for the peer its
        // terminal line names, that line's code (Postfix's dsn=).
        let status = sender_words
            .as_deref()
            .and_then(crate::outcome::status::code_in)
            .or_else(|| {
                attempt
                    .relay
                    .as_ref()
                    .filter(|(_, a)| Some(*a) == address)
                    .and_then(|_| attempt.dsn.clone())
            });
        if let Some(w) = sender_words {
            reason = format!("{reason}; sender: {w}");
        }
        hosts.push(HostReport {
            host: h.name.clone(),
            preference: h.preference,
            code,
            address: address.map(|a| a.to_string()),
            reason,
            status,
            failure: None,
        });
    }

    let via = accepted_at.and_then(|a| mx.iter().find(|h| h.addresses.contains(&a)).map(|h| h.name.clone()));
    // A command sender's exit status is already an outcome here (`sender::external::rules`).
    let terminal = attempt.terminal.clone();
    let result = match &terminal {
        Terminal::Sent => match (result_from_witness, &attempt.relay) {
            (Some(HostCode::Auth), _) => ResultCode::Auth,
            (Some(HostCode::Tls), _) => ResultCode::Tls,
            (Some(_), _) => ResultCode::Opp,
            // The sender claims a delivery no endpoint saw; the REPORT invariant flags it.
            (None, _) if attempt.tls.values().any(|c| *c == TlsClaim::Verified) => ResultCode::Auth,
            (None, _) => ResultCode::Opp,
        },
        Terminal::Deferred => ResultCode::Defer,
        Terminal::Bounced => ResultCode::Bounce,
    };
    let via = match (&terminal, via) {
        (Terminal::Sent, None) => attempt.relay.as_ref().map(|(h, _)| fqdn(h)),
        (_, v) => v,
    };
    let trace = attempt
        .log
        .iter()
        .enumerate()
        .map(|(i, l)| TraceStep {
            step: i as u32 + 1,
            text: l.clone(),
            rfc: None,
            facts: Vec::new(),
        })
        .collect();
    SenderReport {
        result,
        via,
        status: attempt.status_line(),
        hosts,
        notes: Vec::new(),
        reports_notes: false,
        trace,
    }
}

fn claim_word(c: Option<&TlsClaim>) -> &'static str {
    match c {
        Some(TlsClaim::Verified) => "verified",
        Some(TlsClaim::Trusted) => "trusted (PKIX, not DANE)",
        Some(TlsClaim::Untrusted) => "untrusted",
        None => "nothing (it reports no TLS details)",
    }
}

/// The MX hosts of the next-hop domain as the world publishes them, by preference then
/// name; the domain itself with preference 0 when it has no MX RRset (RFC 5321 §5.1).
fn mx_hosts(world: &World, domain: &str) -> Vec<MxHost> {
    // A relay route skips MX (RFC 7672 §2.2.2): its host is the only one the sender uses.
    let hosts = match &world.relay {
        Some(r) => vec![(0, r.host.clone())],
        None => world.published.mx(domain).unwrap_or_else(|| vec![(0, fqdn(domain))]),
    };
    hosts
        .into_iter()
        .map(|(preference, name)| {
            let mut addresses: Vec<IpAddr> = ["A", "AAAA"]
                .iter()
                .flat_map(|t| world.published.resolve(&name, t).data)
                .filter_map(|d| d.trim().parse().ok())
                .collect();
            addresses.sort();
            MxHost {
                name,
                preference,
                addresses,
            }
        })
        .collect()
}
