//! The verdict: the expectation against the sender's report, and the invariants
//! against what the witnesses saw.
//!
//! Two invariants are checked on every run whatever the scenario lists, because a
//! conformant sender can never break them (DESIGN.md, "the receiving side is the
//! impartial witness"):
//! - NOCLEAR at every endpoint whose host has a secure TLSA RRset (RFC 7672 §2.2.3);
//! - DANE-MATCH: no message accepted over TLS at such a host after a chain that no usable
//!   TLSA record matches (RFC 7672 §3.2).
//!
//! A third, REPORT, holds the sender to its own word: it claims delivery exactly when an
//! endpoint accepted the submitted message.

use super::observe::Observations;
use crate::pki::Tlsa;
use crate::scenario::{AttackerDecl, Scenario};
use crate::sender::SenderReport;
use crate::smtp::body_sha256;
use crate::vocab::{Invariant, ResultCode};
use crate::world::World;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// Every failed check is a documented deviation of this real MTA (CONFORMANCE.md,
    /// "Known deviations"): the MTA's behaviour, not a fault of the harness or a new finding.
    Deviation(Vec<Violation>),
    Violation(Vec<Violation>),
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// Pass, or only documented deviations: nothing new to look at.
    pub fn acceptable(&self) -> bool {
        matches!(self, Verdict::Pass | Verdict::Deviation(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant or expectation that failed: NOCLEAR, DANE-MATCH, RESULT, VIA, HOST, NOTE, REPORT, ...
    pub invariant: String,
    pub rfc: String,
    pub detail: String,
    /// Set when this is a documented deviation of the sender (the table's words).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<String>,
}

pub fn judge(s: &Scenario, world: &World, sender: &str, report: &SenderReport, obs: &Observations) -> Verdict {
    let mut v = Vec::new();
    let scenario_rfc = s.refs.first().cloned().unwrap_or_else(|| "RFC 7672".into());
    let mut push = |inv: &str, rfc: &str, detail: String| {
        v.push(Violation {
            invariant: inv.into(),
            rfc: rfc.into(),
            detail,
            deviation: None,
        })
    };

    // The expectation.
    if !s.expect.results.contains(&report.result) {
        let want: Vec<&str> = s.expect.results.iter().map(|r| r.as_str()).collect();
        push(
            "RESULT",
            &scenario_rfc,
            format!(
                "expected {}, the sender reported {} ({})",
                want.join(" or "),
                report.result,
                report.status
            ),
        );
    }
    if let Some(via) = &s.expect.via
        && report.via.as_deref() != Some(via.as_str())
    {
        push(
            "VIA",
            &scenario_rfc,
            format!(
                "expected delivery via {via}, got {}",
                report.via.as_deref().unwrap_or("no delivery")
            ),
        );
    }
    for (host, code) in &s.expect.hosts {
        let got = report.hosts.iter().find(|h| &h.host == host);
        match got {
            Some(h) if h.code == *code => {}
            Some(h) => push(
                "HOST",
                &scenario_rfc,
                format!("{host}: expected {code}, got {} ({})", h.code, h.reason),
            ),
            None => push(
                "HOST",
                &scenario_rfc,
                format!("{host}: expected {code}, but the sender never considered it"),
            ),
        }
    }
    // A sender without a way to raise notes (a real MTA) cannot be held to them; they are
    // listed as unchecked in the outcome instead (see `unchecked`).
    for note in s.expect.notes.iter().filter(|_| report.reports_notes) {
        if !report.notes.iter().any(|n| &n.code == note) {
            push(
                "NOTE",
                "RFC 7672 §2.2.1",
                format!("expected the security note `{note}`, the sender raised none"),
            );
        }
    }

    // What the witnesses saw.
    let submitted = body_sha256(&s.message.body);
    let submitted_ref = submitted.as_str();
    // Keyed by address: a sender names the MX host it chose, which may be an alias of the
    // name the endpoint greets with (RFC 7672 §2.2.2), but it dials an address.
    let accepted: Vec<(&str, bool)> = obs
        .endpoints
        .iter()
        .flat_map(|e| {
            e.connections
                .iter()
                .filter(|t| t.accepted)
                .map(move |t| (e.address.as_str(), t.body_sha256.as_deref() == Some(submitted_ref)))
        })
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

    for e in &world.endpoints {
        let Some(obs_e) = obs.endpoints.iter().find(|o| o.address == e.decl.address.to_string()) else {
            continue;
        };
        let published = world.published_tlsa.get(&e.decl.host);
        let committed = published.is_some_and(|p| p.commits_to_tls());
        let explicit_noclear = s.expect.invariants.contains(&Invariant::NoClear);
        for t in &obs_e.connections {
            if let Some(m) = &t.mail_from
                && !m.over_tls
                && (committed || explicit_noclear)
            {
                push(
                    "NOCLEAR",
                    "RFC 7672 §2.2",
                    format!(
                        "{} ({}) received MAIL FROM:<{}> in cleartext{}",
                        e.decl.host,
                        e.decl.address,
                        m.address,
                        if committed {
                            " although a secure TLSA RRset commits it to TLS"
                        } else {
                            ""
                        }
                    ),
                );
            }
            // DANE-MATCH: the witness checks the served chain against the usable records itself.
            if t.accepted
                && let Some(tls) = &t.tls
                && let Some(p) = published
            {
                let usable = p.usable();
                // The chain really presented on this connection (SNI and timeline renewals
                // both change it), by the label the endpoint recorded.
                if !usable.is_empty() && !chain_matches(&usable, &world.chain_der(&tls.chain_label)) {
                    push(
                        "DANE-MATCH",
                        "RFC 7672 §3.2",
                        format!(
                            "{} accepted the message over TLS with a chain that no usable TLSA record matches",
                            e.decl.host
                        ),
                    );
                }
            }
        }
        // The same check for a man in the middle: the chain the sender accepted was the
        // interceptor's, whatever the endpoint behind it served.
        if let Some(a) = &e.attacker
            && a.intercepted_deliveries() > 0
            && let Some(AttackerDecl::Intercept { chain }) = &e.decl.attacker
            && let Some(p) = published
        {
            let usable = p.usable();
            if !usable.is_empty() && !chain_matches(&usable, &world.chain_der_of(chain)) {
                push(
                    "DANE-MATCH",
                    "RFC 7672 §3.2",
                    format!(
                        "{} accepted {} message(s) the sender handed to an interceptor whose chain no usable TLSA record matches",
                        e.decl.host,
                        a.intercepted_deliveries()
                    ),
                );
            }
        }
    }

    for inv in &s.expect.invariants {
        if let Some(detail) = check(inv, report, obs, &submitted) {
            push(&inv.to_string(), inv.rfc(), detail);
        }
    }

    if v.is_empty() {
        Verdict::Pass
    } else {
        use super::deviation::{Evidence, Run, classify};
        let run = Run {
            sender,
            scenario: &s.id,
            covers: &s.covers,
            result: report.result,
        };
        classify(&run, &Evidence::of(report, obs), v)
    }
}

/// Expectations of the scenario this sender's report cannot answer, so they were not checked.
pub fn unchecked(s: &Scenario, report: &SenderReport) -> Vec<String> {
    let mut out = Vec::new();
    if !report.reports_notes {
        for n in &s.expect.notes {
            out.push(format!("NOTE {n}: this sender has no way to raise security notes"));
        }
    }
    out
}

/// The witness's own DANE match (no name or date checks): a usable DANE-EE record
/// matching the leaf, or a DANE-TA record matching an issuer in the chain.
fn chain_matches(usable: &[&Tlsa], chain: &[Vec<u8>]) -> bool {
    usable.iter().any(|t| match t.usage {
        3 => chain.first().is_some_and(|leaf| t.matches_cert(leaf)),
        2 => chain.iter().skip(1).any(|c| t.matches_cert(c)),
        _ => false,
    })
}

/// Explicit invariants; None when it holds. NOCLEAR is handled above with the endpoints.
fn check(inv: &Invariant, report: &SenderReport, obs: &Observations, submitted: &str) -> Option<String> {
    match inv {
        Invariant::NoClear => None,
        Invariant::Once => {
            let n: usize = obs
                .endpoints
                .iter()
                .flat_map(|e| &e.connections)
                .filter(|t| t.accepted && t.body_sha256.as_deref() == Some(submitted))
                .count();
            let other = obs
                .endpoints
                .iter()
                .flat_map(|e| &e.connections)
                .filter(|t| t.accepted)
                .count()
                - n;
            (n != 1 || other != 0)
                .then(|| format!("the message was accepted {n} time(s) (and {other} other message(s))"))
        }
        Invariant::NoMail(h) => obs
            .endpoints
            .iter()
            .filter(|e| &e.host == h)
            .flat_map(|e| &e.connections)
            .find(|t| t.mail_from.is_some())
            .map(|t| format!("{h} received MAIL FROM on connection {}", t.connection)),
        Invariant::NoConnect(a) => obs
            .endpoints
            .iter()
            .filter(|e| &e.address == a || format!("{}:25", e.address) == *a)
            .find(|e| !e.connections.is_empty())
            .map(|e| format!("{a} received {} connection(s)", e.connections.len())),
        Invariant::Sni { host, name } => {
            let want = name.trim_end_matches('.');
            // Every ClientHello counts, including those of handshakes the client then aborted.
            obs.endpoints
                .iter()
                .filter(|e| &e.host == host)
                .flat_map(|e| &e.connections)
                .filter(|t| t.tls.is_some() || t.client_hello_sni.is_some())
                .find(|t| t.client_hello_sni.as_deref().map(|s| s.trim_end_matches('.')) != Some(want))
                .map(|t| {
                    format!(
                        "connection {} to {host}: ClientHello SNI {:?}, not {want}",
                        t.connection, t.client_hello_sni
                    )
                })
        }
        Invariant::NoQuery { name, rtype } => obs
            .queries
            .iter()
            .find(|q| crate::vocab::fqdn(&q.qname) == *name && q.qtype.eq_ignore_ascii_case(rtype))
            .map(|_| format!("the authoritative server saw a query for {name} {rtype}")),
        Invariant::NoAuthLog => (report.result == ResultCode::Auth)
            .then(|| "the sender's report claims DANE-authenticated delivery".to_string()),
    }
}
