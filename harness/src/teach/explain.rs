//! `danesim explain SCENARIO`: run one scenario with the in-process sender and explain its
//! decisions for a learner: every step with its RFC section, what each DNS answer's DNSSEC
//! state means, the TLSA records and their usability, the presented certificate and what it
//! was compared with, what the receiving side saw, the result, and a fix hint. A timeline is
//! explained attempt by attempt, each in full, with the world's changes between them.
//!
//! The text is deterministic: it is made from the outcome (fixed keys, fixed clock, ordered
//! collections) and passed through the one redaction table.

use super::{TeachError, fix, lesson};
use crate::outcome::{EndpointObservation, Outcome, Verdict};
use crate::pki::{KeyStore, Pki};
use crate::runner::{self, Limits};
use crate::scenario::Scenario;
use crate::sender::reference::trace::{Fact, state_name};
use crate::sender::{SenderKind, SenderReport, TraceStep};
use crate::vocab::ResultCode;
use std::collections::{BTreeMap, BTreeSet};

/// The explanation and the run's verdict (a violation means the sender did not do what the
/// scenario expects, which for the reference sender is a harness bug worth reporting).
pub struct Explanation {
    pub text: String,
    pub verdict: Verdict,
}

/// Runs `s` with `sender` (the reference sender or its Exchange Online profile) and explains it.
pub async fn explain(
    s: &Scenario,
    sender: &SenderKind,
    keys: &KeyStore,
    limits: Limits,
) -> Result<Explanation, TeachError> {
    if sender.is_external() {
        return Err(TeachError::Sender(sender.to_string()));
    }
    // The certificates the world issues (fixed keys, the scenario's clock), to name what
    // servers present and what records point at.
    let pki = crate::world::prepare(s, keys)?.pki;
    let r = runner::run_with(s, sender, keys, limits).await?;
    let text: String = render(s, sender, &pki, &r.outcome)
        .iter()
        .map(|l| format!("{}\n", r.redactions.text(l).trim_end()))
        .collect();
    Ok(Explanation {
        text,
        verdict: r.outcome.verdict.clone(),
    })
}

fn sender_words(sender: &SenderKind) -> &'static str {
    match sender {
        SenderKind::ExchangeOnline => {
            "the reference sender's RFC 7672 decisions, reported the way Exchange Online documents its outbound DANE: \
             4.7.32x deferrals, its retry schedule, 5.7.32x after 24 hours"
        }
        _ => "danesim's built-in RFC 7672 sender",
    }
}

fn render(s: &Scenario, sender: &SenderKind, pki: &Pki, o: &Outcome) -> Vec<String> {
    let mut w = vec![
        format!("danesim explain: {} ({})", s.id, s.title),
        format!("sender: {} ({})", sender.name(), sender_words(sender)),
        format!(
            "message: from <{}> to <{}>; the next-hop domain is {} (RFC 7672 §2.2.1)",
            s.message.from, s.message.to, s.message.domain
        ),
    ];
    if let Some(r) = &s.relay {
        w.push(format!(
            "route: the sender relays all mail to {}: no MX lookup, the relay host is the TLSA base domain, and \
             its TLSA RRset is at _{}._tcp (RFC 7672 §2.2.2, §2.2.3)",
            r.bracketed(),
            r.port
        ));
    }
    if !s.refs.is_empty() {
        w.push(format!("sections: {}", s.refs.join(", ")));
    }
    if !s.teaches.trim().is_empty() {
        w.push(String::new());
        w.push("What this scenario teaches".into());
        w.extend(s.teaches.trim().lines().map(|l| format!("  {l}")));
    }
    w.push(String::new());
    w.push("The world".into());
    w.push(format!(
        "  certificates (fixed keys, dated from the world clock {}):",
        s.clock.date()
    ));
    for name in pki.names() {
        if let Some(c) = pki.get(name) {
            w.push(format!("    {}", lesson::cert_label(pki, &c.der)));
        }
    }
    w.push("  SMTP servers:".into());
    for e in &s.endpoints {
        let chain = if e.chain.is_empty() {
            "no certificate".to_string()
        } else {
            format!("presents {}", e.chain.join(" > "))
        };
        w.push(format!(
            "    {} at {}: {chain}; behaviour {}",
            e.host,
            e.shown_address(),
            e.label()
        ));
        // Per-connection scripts decide what each attempt meets, so a learner sees them all.
        if !e.sessions.is_empty() {
            for (n, script) in &e.sessions.0 {
                w.push(format!("      connection {n}: {}", script.describe()));
            }
            w.push(format!("      every other connection: {}", e.script.describe()));
        }
    }

    // Each server's own leaf, for hints where the sender saw none (or an interceptor's).
    let servers: BTreeMap<String, Vec<u8>> = s
        .endpoints
        .iter()
        .filter_map(|e| Some((fix::host_key(&e.host), pki.get(e.chain.first()?)?.der.clone())))
        .collect();

    if o.attempts.is_empty() {
        let faults: Vec<String> = o
            .witness
            .dns_queries
            .iter()
            .filter(|q| q.contains(" fault="))
            .cloned()
            .collect();
        let seen = Seen {
            endpoints: &o.witness.endpoints,
            faults,
        };
        let report = SenderReport {
            result: o.result,
            via: o.via.clone(),
            status: o.status.clone(),
            hosts: o.hosts.clone(),
            notes: o.notes.clone(),
            reports_notes: true,
            trace: o.trace.clone(),
        };
        attempt(
            &mut w,
            pki,
            &servers,
            &report,
            &seen,
            &o.expected,
            &o.verdict,
            s.relay.is_some(),
        );
        return w;
    }

    w.push(String::new());
    w.push(format!(
        "This scenario is a timeline of {} delivery attempts; the world changes between them. Each attempt is \
         explained in full: its own decision trace, witness, result and fix.",
        o.attempts.len()
    ));
    let mut previous = None;
    for a in &o.attempts {
        w.push(String::new());
        let which = if previous == Some(a.message) {
            format!("retry of message {}", a.message)
        } else {
            format!("message {}, newly submitted", a.message)
        };
        w.push(format!(
            "=== Attempt {} of {}{}: {which}",
            a.attempt,
            o.attempts.len(),
            a.at.as_deref().map(|t| format!(" at {t}")).unwrap_or_default()
        ));
        let faults: BTreeSet<String> = a
            .observations
            .queries
            .iter()
            .filter_map(|q| Some(format!("{} {} fault={}", q.qname, q.qtype, q.fault.as_ref()?)))
            .collect();
        let seen = Seen {
            endpoints: &a.observations.endpoints,
            faults: faults.into_iter().collect(),
        };
        attempt(
            &mut w,
            pki,
            &servers,
            &a.report,
            &seen,
            &a.expected,
            &a.verdict,
            s.relay.is_some(),
        );
        if !a.then.is_empty() {
            w.push(String::new());
            w.push("Then the world changes".into());
            w.extend(a.then.iter().map(|t| format!("  {t}")));
        }
        previous = Some(a.message);
    }
    w.push(String::new());
    w.push(format!(
        "Overall: {} after {} attempts: {}",
        o.result,
        o.attempts.len(),
        verdict_words(&o.verdict)
    ));
    violations(&mut w, &o.verdict);
    w
}

/// What the witnesses saw during one attempt.
struct Seen<'a> {
    endpoints: &'a [EndpointObservation],
    /// Queries the DNS server answered with a declared fault ("name TYPE ... fault=KIND").
    faults: Vec<String>,
}

/// One attempt: the trace with explanations, the witness, the result, the fix.
// The attempt's parts and whether the scenario relays (the host's role in the result lines).
#[allow(clippy::too_many_arguments)]
fn attempt(
    w: &mut Vec<String>,
    pki: &Pki,
    servers: &BTreeMap<String, Vec<u8>>,
    report: &SenderReport,
    seen: &Seen<'_>,
    expected: &[ResultCode],
    verdict: &Verdict,
    relay: bool,
) {
    w.push(String::new());
    w.push("Decision trace (each step with the RFC section behind it)".into());
    let mut explained = BTreeMap::new();
    for step in &report.trace {
        step_lines(w, pki, step, &mut explained);
    }

    w.push(String::new());
    w.push("What the receiving side saw (the impartial witness)".into());
    for e in seen.endpoints {
        w.extend(lesson::witness(e).into_iter().map(|l| format!("  {l}")));
    }
    if !seen.faults.is_empty() {
        w.push("  the DNS server, on purpose (the scenario's faults), answered these queries wrongly:".into());
        w.extend(seen.faults.iter().map(|q| format!("    {q}")));
    }

    w.push(String::new());
    let expected: Vec<&str> = expected.iter().map(|r| r.as_str()).collect();
    w.push(format!(
        "Result: {} (the scenario expects {}): {}",
        report.result,
        expected.join(" or "),
        verdict_words(verdict)
    ));
    w.push(format!("  status: {}", report.status));
    for h in &report.hosts {
        let role = if relay {
            "relay".to_string()
        } else {
            format!("MX {}", h.preference)
        };
        w.push(format!("  {} ({role}): {}: {}", h.host, h.code, h.reason));
    }
    for n in &report.notes {
        w.push(format!("  security note `{}`: {}", n.code, n.text));
    }
    violations(w, verdict);

    w.push(String::new());
    w.push("How to fix it".into());
    for p in fix::hints(report, pki, seen.endpoints, servers) {
        let mut lines = p.into_iter();
        if let Some(first) = lines.next() {
            w.push(format!("  - {first}"));
        }
        w.extend(lines.map(|l| format!("    {l}")));
    }
}

/// A step, its section, and what its facts mean. A DNSSEC state is explained in full the
/// first time it appears in an attempt (`explained`: state → step), then referred to.
fn step_lines(w: &mut Vec<String>, pki: &Pki, step: &TraceStep, explained: &mut BTreeMap<&'static str, u32>) {
    let cite = lesson::cite(step).map(|c| format!(" [{c}]")).unwrap_or_default();
    w.push(format!("  {:>2}. {}{cite}", step.step, step.text));
    let more = "      ";
    for f in &step.facts {
        match f {
            Fact::Host(_) => {}
            Fact::Answer(a) => {
                let state = state_name(a.state.as_ref());
                match explained.get(state) {
                    Some(first) => w.push(format!("{more}DNSSEC {state} (see step {first})")),
                    None => {
                        explained.insert(state, step.step);
                        w.push(format!("{more}DNSSEC {}", lesson::state_meaning(a.state)));
                    }
                }
                w.push(format!("{more}so: {}", lesson::consequence(a)));
            }
            Fact::Tlsa(t) => {
                w.push(format!("{more}fields: {}", lesson::tlsa_fields(t)));
                let certs = lesson::matching_certs(pki, t);
                if certs.is_empty() {
                    w.push(format!("{more}it matches no certificate of this world"));
                } else {
                    w.push(format!("{more}it matches {} of this world", certs.join(", ")));
                }
            }
            Fact::Handshake {
                presented,
                records,
                reference_ids,
                outcome,
            } => {
                for l in lesson::handshake(pki, presented, records, reference_ids, outcome.as_ref()) {
                    w.push(format!("{more}{l}"));
                }
            }
        }
    }
}

fn verdict_words(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "as the scenario expects",
        Verdict::Deviation(_) => "a documented deviation (docs/CONFORMANCE.md, \"Known deviations\")",
        Verdict::Violation(_) => "NOT what the scenario expects",
    }
}

fn violations(w: &mut Vec<String>, v: &Verdict) {
    if let Verdict::Violation(vs) | Verdict::Deviation(vs) = v {
        for x in vs {
            w.push(format!("  {} ({}): {}", x.invariant, x.rfc, x.detail));
        }
    }
}
