//! Fix hints: for every MX host the message did not reach with DANE authentication, the
//! change on the receiving side that would make it so, in the words of RFC 7671 and RFC 7672.
//! Hints are built from the data behind the sender's trace (`Fact`), the host reports and
//! what the witnesses saw; TLSA records to publish are computed from the certificate the
//! server presents now.

use super::lesson;
use crate::outcome::EndpointObservation;
use crate::pki::{Pki, Tlsa};
use crate::sender::reference::dane::{DaneFailure, DaneOutcome};
use crate::sender::reference::lookup::{Answer, AnswerKind, DnssecState, RType};
use crate::sender::reference::trace::{Fact, rtype_name, state_name};
use crate::sender::{HostReport, SenderReport, TraceStep};
use crate::vocab::{HostCode, ResultCode};

/// What the trace says about one MX host.
#[derive(Default)]
struct HostFacts<'a> {
    answers: Vec<&'a Answer>,
    tlsa: Vec<&'a Tlsa>,
    presented: Vec<Vec<u8>>,
    records: Vec<Tlsa>,
    outcome: Option<DaneOutcome>,
}

/// The facts before the first host (the MX lookup) and per host, in the order tried.
fn by_host(trace: &[TraceStep]) -> (HostFacts<'_>, Vec<(String, HostFacts<'_>)>) {
    let mut domain = HostFacts::default();
    let mut hosts: Vec<(String, HostFacts<'_>)> = Vec::new();
    for f in trace.iter().flat_map(|s| &s.facts) {
        if let Fact::Host(h) = f {
            hosts.push((h.clone(), HostFacts::default()));
            continue;
        }
        let cur = match hosts.last_mut() {
            Some((_, h)) => h,
            None => &mut domain,
        };
        match f {
            Fact::Host(_) => {}
            Fact::Answer(a) => cur.answers.push(a),
            Fact::Tlsa(t) => cur.tlsa.push(t),
            Fact::Handshake {
                presented,
                records,
                outcome,
                ..
            } => {
                cur.presented = presented.clone();
                cur.records = records.clone();
                cur.outcome = outcome.clone();
            }
        }
    }
    (domain, hosts)
}

/// The hints for one attempt, one paragraph each (first line, then indented detail lines).
pub(super) fn hints(report: &SenderReport, pki: &Pki, witness: &[EndpointObservation]) -> Vec<Vec<String>> {
    let (domain, hosts) = by_host(&report.trace);
    let mut out = Vec::new();
    if let Some(mx) = domain.answers.iter().find(|a| a.rtype == RType::Mx) {
        if let Some(h) = mx_hint(mx) {
            out.push(h);
        }
    }
    for h in &report.hosts {
        let facts = hosts.iter().find(|(n, _)| *n == h.host).map(|(_, f)| f);
        let empty = HostFacts::default();
        if let Some(p) = host_hint(h, facts.unwrap_or(&empty), pki, witness) {
            out.push(p);
        }
    }
    if report.notes.iter().any(|n| n.code == "downgrade-path") {
        out.push(vec![
            "The domain leaves a downgrade path: a host with usable TLSA records failed and a host without DANE took \
             the message. An attacker who breaks the first host's connections forces mail to the second. Fix every \
             host above, so that each MX host is DANE-authenticated (RFC 7672 §2.2.1)."
                .into(),
        ]);
    }
    if out.is_empty() && report.result == ResultCode::Auth {
        out.push(vec![
            "Nothing to fix: the message was delivered over TLS to a DANE-authenticated server (RFC 7672 §3).".into(),
        ]);
    }
    out
}

fn owner(a: &Answer) -> String {
    format!("`{} {}`", a.qname, rtype_name(a))
}

/// A broken DNS answer: fix the signature, the keys, or the server.
fn dns_hint(a: &Answer, effect: &str) -> Vec<String> {
    let what = match (a.state, &a.kind) {
        (Some(DnssecState::Bogus), _) => format!(
            "Fix the DNSSEC signature of {}: validators judge it bogus ({}). Re-sign the zone with the key its \
             DS names, and keep the RRSIGs within their validity window (RFC 4035 §5.3).",
            owner(a),
            a.detail
        ),
        (Some(DnssecState::Indeterminate), _) => format!(
            "Make the DNSKEY and DS records that validate {} reachable ({}); until then it is indeterminate \
             (RFC 4033 §5).",
            owner(a),
            a.detail
        ),
        (_, kind) => format!(
            "Make the name servers answer {} ({}); when no such records exist they must say so with a signed \
             NODATA or NXDOMAIN, not an error (RFC 7672 §2.1.2).",
            owner(a),
            match kind {
                AnswerKind::ServFail => "they answered SERVFAIL".to_string(),
                AnswerKind::Refused => "they answered REFUSED".to_string(),
                AnswerKind::Timeout => "the query timed out".to_string(),
                AnswerKind::Error(e) => format!("error: {e}"),
                _ => state_name(a.state.as_ref()).to_string(),
            }
        ),
    };
    vec![what, format!("  {effect}")]
}

fn broken(a: &Answer) -> bool {
    matches!(a.state, Some(DnssecState::Bogus | DnssecState::Indeterminate))
        || matches!(
            a.kind,
            AnswerKind::ServFail | AnswerKind::Refused | AnswerKind::Timeout | AnswerKind::Error(_)
        )
}

fn mx_hint(mx: &Answer) -> Option<Vec<String>> {
    if broken(mx) {
        return Some(dns_hint(
            mx,
            "Without a trustworthy MX answer the sender cannot know where to deliver, so every message waits \
             (RFC 7672 §2.1.2).",
        ));
    }
    match (&mx.kind, mx.state) {
        (AnswerKind::NxDomain, _) => Some(vec![format!(
            "{} does not exist, so it receives no mail; nothing to fix if that is intended (RFC 5321 §5.1).",
            mx.qname
        )]),
        (AnswerKind::Records(_), Some(DnssecState::Insecure)) => Some(vec![format!(
            "Sign the zone of {} and publish its DS in the parent, so that its MX RRset is secure: only then is a \
             DANE delivery a verified delivery to the domain (RFC 7672 §2.2.1).",
            mx.qname
        )]),
        _ => None,
    }
}

/// `_25._tcp.HOST. IN TLSA 3 1 1 <HEX>` for the certificate at `der`.
fn record_line(base: &str, usage: u8, der: &[u8]) -> Option<String> {
    let t = Tlsa::compute(usage, Tlsa::SPKI, Tlsa::SHA2_256, der).ok()?;
    Some(format!("_25._tcp.{base} IN TLSA {}", t.presentation()))
}

/// The TLSA base domain the sender used for this host (the owner of its TLSA lookup).
fn base(h: &HostReport, f: &HostFacts<'_>) -> String {
    f.answers
        .iter()
        .rev()
        .find(|a| a.rtype == RType::Tlsa)
        .and_then(|a| a.qname.strip_prefix("_25._tcp."))
        .unwrap_or(&h.host)
        .to_string()
}

fn host_hint(h: &HostReport, f: &HostFacts<'_>, pki: &Pki, witness: &[EndpointObservation]) -> Option<Vec<String>> {
    let host = h.host.as_str();
    let base = base(h, f);
    let leaf = f.presented.first();
    let publish = |why: &str| -> Vec<String> {
        match leaf.and_then(|d| record_line(&base, Tlsa::DANE_EE, d)) {
            Some(line) => vec![
                format!("  {why}"),
                format!("    {line}"),
                format!(
                    "  (the key of {} that {host} presents now; `danesim tlsa --cert FILE.pem --host {}` prints the same for a real certificate)",
                    lesson::find(pki, leaf.map_or(&[][..], |d| d.as_slice()))
                        .map_or_else(|| "the certificate".to_string(), |c| format!("`{}`", c.name)),
                    base.trim_end_matches('.')
                ),
            ],
            None => vec![format!("  {why} (from the key of the certificate {host} serves: `danesim tlsa --cert FILE.pem`)")],
        }
    };
    let tlsa_answer = f.answers.iter().rev().find(|a| a.rtype == RType::Tlsa);
    match h.code {
        HostCode::Auth | HostCode::Unused => None,
        HostCode::SkipPre => {
            if let Some(a) = f.answers.iter().find(|a| broken(a)) {
                let effect = if a.rtype == RType::Tlsa {
                    format!("Until then {host} is unusable for every DANE sender (RFC 7672 §2.1.2).")
                } else {
                    format!("Until then senders skip {host} (RFC 7672 §2.1.2).")
                };
                return Some(dns_hint(a, &effect));
            }
            Some(vec![format!(
                "{host}: {}. Publish an address record (A or AAAA) for it (RFC 7672 §2.2.2).",
                h.reason
            )])
        }
        HostCode::SkipEhlo => {
            let seen = witness.iter().find(|e| same_host(&e.host, host));
            if seen.is_some_and(|e| !e.attacker.is_empty()) {
                return Some(vec![
                    format!(
                        "Nothing to change in DNS or on {host}: it offers STARTTLS, but something on the path removed \
                         it before the sender saw it. That is the downgrade attack DANE exists to stop (RFC 7672 §1.3)."
                    ),
                    "  The sender was right to refuse cleartext where a secure TLSA RRset promised TLS (RFC 7672 §2.2); \
                     the message waits until an untampered path exists. Find and remove the device that strips \
                     STARTTLS."
                        .into(),
                ]);
            }
            if seen.is_some_and(|e| e.connections.iter().any(|t| t.starttls_offered)) {
                return Some(vec![
                    format!("Make {host} accept STARTTLS: it offers it but refuses the command ({}).", h.reason),
                    "  Its secure TLSA records make TLS mandatory, so senders never fall back to cleartext (RFC 7672 §2.2). \
                     Check that the server has its certificate and key loaded."
                        .into(),
                ]);
            }
            Some(vec![
                format!("Enable STARTTLS on {host}, with the certificate its TLSA records name (RFC 7672 §2.2)."),
                "  Its secure TLSA records promise TLS, so senders refuse to send in cleartext. If TLS cannot be \
                 offered, withdraw the TLSA records first and wait out their TTL (RFC 7671 §8)."
                    .into(),
            ])
        }
        HostCode::SkipTls => Some(match &f.outcome {
            Some(DaneOutcome::Failed { reason }) => dane_hint(host, reason, f, pki, &base, publish),
            _ => vec![
                format!("Fix TLS on {host}: the handshake failed ({}).", h.reason),
                "  Its secure TLSA records make TLS mandatory, so senders may not retry in cleartext (RFC 7672 §2.2). \
                 Check the protocol versions and the certificate the server offers."
                    .into(),
            ],
        }),
        HostCode::TempFail | HostCode::Reject => Some(vec![format!(
            "{host} did not take the message ({}); this is not a DANE problem: look at the server's SMTP service \
             (RFC 5321 §4.2.1).",
            h.reason
        )]),
        HostCode::Tls => {
            let mut p = vec![format!(
                "Replace the TLSA records of {host}: every one is unusable for SMTP (PKIX usages 0 and 1, or unknown \
                 parameters), so TLS is mandatory but the server is not authenticated (RFC 7672 §3.1.3, §2.2)."
            )];
            p.extend(publish("Publish instead:"));
            Some(p)
        }
        HostCode::Opp => {
            let mut p = match tlsa_answer {
                None => vec![format!(
                    "Sign the zone that holds {host}'s address records and publish its DS: with insecure addresses \
                     senders do not look up TLSA at all (RFC 7672 §2.2.2). Then publish a TLSA record for it."
                )],
                Some(a) if a.state != Some(DnssecState::Secure) => vec![format!(
                    "Sign the zone of {}: unsigned TLSA records are ignored (RFC 7672 §2.2.3).",
                    a.qname
                )],
                Some(_) => vec![format!(
                    "{host} publishes no TLSA records, so DANE does not protect it: any attacker on the path can \
                     strip STARTTLS or present another certificate (RFC 7672 §1.3, §2.2)."
                )],
            };
            if leaf.is_some() {
                p.extend(publish("To protect it, publish:"));
            } else {
                p.push(format!(
                    "  {host} took the message in cleartext: first offer STARTTLS with a certificate, then publish its `3 1 1` record."
                ));
            }
            Some(p)
        }
    }
}

fn dane_hint(
    host: &str,
    reason: &DaneFailure,
    f: &HostFacts<'_>,
    pki: &Pki,
    base: &str,
    publish: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let name_of = |depth: usize| {
        f.presented
            .get(depth)
            .and_then(|d| lesson::find(pki, d))
            .map_or_else(|| format!("the certificate at depth {depth}"), |c| format!("`{}`", c.name))
    };
    match reason {
        DaneFailure::NoMatch { .. } => {
            let mut p = vec![format!(
                "{host} presents a key that none of its TLSA records names (RFC 7672 §3.2), so every DANE sender \
                 refuses it."
            )];
            let stale: Vec<String> = f
                .records
                .iter()
                .flat_map(|r| lesson::matching_certs(pki, r))
                .collect();
            if !stale.is_empty() {
                p.push(format!(
                    "  The published record(s) name {}, which {host} no longer presents: the certificate was replaced and the TLSA record was not.",
                    stale.join(", ")
                ));
            }
            p.extend(publish("Publish the record for the key it presents now:"));
            if f.records.iter().any(|r| r.usage == Tlsa::DANE_TA) && f.presented.len() > 1 {
                let top = f.presented.len() - 1;
                if let Some(line) = f.presented.last().and_then(|d| record_line(base, Tlsa::DANE_TA, d)) {
                    p.push(format!("  or, for DANE-TA, the issuer {} that the chain ends with (RFC 7672 §3.1.2):", name_of(top)));
                    p.push(format!("    {line}"));
                }
            }
            p.push(
                "  Next time, publish the next key's record beside the current one a few TTLs before the switch, and \
                 remove the old one after it (RFC 7671 §8.1)."
                    .into(),
            );
            p
        }
        DaneFailure::Expired { depth } | DaneFailure::NotYetValid { depth } => {
            let mut p = vec![format!(
                "Renew {} (depth {depth}) on {host}: under DANE-TA certificate dates are checked (RFC 7671 §5.2).",
                name_of(*depth)
            )];
            p.extend(publish("A DANE-EE record does not depend on dates (RFC 7672 §3.1.1); to use one, publish:"));
            p
        }
        DaneFailure::NameMismatch { presented, reference_ids } => {
            let mut p = vec![format!(
                "Issue {host}'s certificate for a name the sender looks for ({}); it names {} (RFC 7672 §3.2.2, §3.2.3).",
                reference_ids.join(", "),
                if presented.is_empty() { "nothing".to_string() } else { presented.join(", ") }
            )];
            p.extend(publish("Or publish a DANE-EE record, which does not check names (RFC 7672 §3.1.1):"));
            p
        }
        DaneFailure::ChainInvalid(_) | DaneFailure::ConstraintViolated(_) => {
            let mut p = vec![format!(
                "Serve a chain on {host} that leads from the leaf to the DANE-TA anchor and keeps its constraints: {reason} (RFC 7672 §3.1.2)."
            )];
            p.extend(publish("Or publish a DANE-EE record for the leaf (RFC 7672 §3.1.1):"));
            p
        }
        DaneFailure::NoCertificate | DaneFailure::NoUsableRecords => {
            vec![format!("Configure {host} with the certificate its TLSA records name: {reason}.")]
        }
    }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}
