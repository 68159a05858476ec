//! Fix hints: for every MX host the message did not reach with DANE authentication, the
//! change on the receiving side that would make it so, in the words of RFC 7671 and RFC 7672.
//! Hints are built from the data behind the sender's trace (`Fact`), the host reports and
//! what the witnesses saw; TLSA records to publish are computed from the certificate the
//! server presents now.

use super::lesson;
use crate::dane::{DaneFailure, DaneOutcome};
use crate::outcome::EndpointObservation;
use crate::pki::{Pki, Tlsa};
use crate::sender::reference::lookup::{Answer, AnswerKind, DnssecState, RType};
use crate::sender::reference::trace::{Fact, rtype_name, state_name};
use crate::sender::{HostReport, SenderReport, TraceStep};
use crate::vocab::{HostCode, ResultCode};
use std::collections::BTreeMap;

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
/// `servers` holds each endpoint's own leaf certificate (DER) by host name, for when the
/// sender saw none (no TLS, or an interceptor's).
pub(super) fn hints(
    report: &SenderReport,
    pki: &Pki,
    witness: &[EndpointObservation],
    servers: &BTreeMap<String, Vec<u8>>,
) -> Vec<Vec<String>> {
    let (domain, hosts) = by_host(&report.trace);
    let mut out = Vec::new();
    if let Some(h) = domain
        .answers
        .iter()
        .find(|a| a.rtype == RType::Mx)
        .and_then(|mx| mx_hint(mx))
    {
        out.push(h);
    }
    for h in &report.hosts {
        let facts = hosts.iter().find(|(n, _)| *n == h.host).map(|(_, f)| f);
        let empty = HostFacts::default();
        let ctx = Host::new(h, facts.unwrap_or(&empty), pki, witness, servers);
        if let Some(p) = ctx.hint() {
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

/// The key for lookups in `servers`: lowercase, no trailing dot.
pub(super) fn host_key(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
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

/// `_<port>._tcp.HOST. IN TLSA 3 1 1 <HEX>` for the certificate at `der`.
fn record_line(base: &str, port: u16, usage: u8, der: &[u8]) -> Option<String> {
    let t = Tlsa::compute(usage, Tlsa::SPKI, Tlsa::SHA2_256, der).ok()?;
    Some(format!("_{port}._tcp.{base} IN TLSA {}", t.presentation()))
}

/// `_2525._tcp.mx1.example.test.` → (2525, `mx1.example.test.`): the port a TLSA owner names
/// (RFC 6698 §3).
fn split_tlsa_owner(qname: &str) -> Option<(u16, &str)> {
    let rest = qname.strip_prefix('_')?;
    let (port, base) = rest.split_once("._tcp.")?;
    Some((port.parse().ok()?, base))
}

/// One host's report, the facts behind it and what its witness saw.
struct Host<'a> {
    report: &'a HostReport,
    facts: &'a HostFacts<'a>,
    pki: &'a Pki,
    seen: Option<&'a EndpointObservation>,
    /// An attacker relay terminated TLS in front of the server (RFC 7672 §1.3).
    intercepted: bool,
    /// The server's own leaf: what the sender was shown, unless an interceptor showed it.
    leaf: Option<Vec<u8>>,
    /// The TLSA base domain the sender used (the owner of its TLSA lookup, RFC 7672 §2.2.3).
    base: String,
    /// The port of that lookup: 25, or a relay's.
    port: u16,
}

impl<'a> Host<'a> {
    fn new(
        report: &'a HostReport,
        facts: &'a HostFacts<'a>,
        pki: &'a Pki,
        witness: &'a [EndpointObservation],
        servers: &BTreeMap<String, Vec<u8>>,
    ) -> Host<'a> {
        let seen = witness.iter().find(|e| host_key(&e.host) == host_key(&report.host));
        let intercepted = seen.is_some_and(|e| e.behaviour.contains("intercept") && !e.attacker.is_empty());
        // What the endpoint itself presented, when something reached it over TLS.
        let endpoint_leaf = seen
            .and_then(|e| e.connections.iter().rev().find_map(|t| t.tls.as_ref()))
            .and_then(|tls| tls.chain_label.split(" > ").next())
            .and_then(|n| pki.get(n))
            .map(|c| c.der.clone());
        let presented = facts.presented.first().filter(|_| !intercepted).cloned();
        let leaf = presented
            .or(endpoint_leaf)
            .or_else(|| servers.get(&host_key(&report.host)).cloned());
        let (port, base) = facts
            .answers
            .iter()
            .rev()
            .find(|a| a.rtype == RType::Tlsa)
            .and_then(|a| split_tlsa_owner(&a.qname))
            .unwrap_or((25, &report.host));
        let base = base.to_string();
        Host {
            report,
            facts,
            pki,
            seen,
            intercepted,
            leaf,
            base,
            port,
        }
    }

    fn name_of(&self, der: &[u8]) -> String {
        lesson::find(self.pki, der).map_or_else(|| "the certificate".to_string(), |c| format!("`{}`", c.name))
    }

    /// "  WHY" and the `3 1 1` record of the server's own key, ready to paste.
    fn publish(&self, why: &str) -> Vec<String> {
        let host = self.report.host.as_str();
        match self
            .leaf
            .as_deref()
            .and_then(|d| record_line(&self.base, self.port, Tlsa::DANE_EE, d).map(|l| (d, l)))
        {
            Some((der, line)) => vec![
                format!("  {why}"),
                format!("    {line}"),
                format!(
                    "  (the key of {}, {host}'s own certificate; `danesim tlsa --cert FILE.pem --host {}{}` computes it for a real one)",
                    self.name_of(der),
                    self.base.trim_end_matches('.'),
                    if self.port == 25 {
                        String::new()
                    } else {
                        format!(" --port {}", self.port)
                    }
                ),
            ],
            None => vec![format!(
                "  {why} the `3 1 1` record of the key {host} serves (`danesim tlsa --cert FILE.pem` computes it)"
            )],
        }
    }

    fn hint(&self) -> Option<Vec<String>> {
        let h = self.report;
        let host = h.host.as_str();
        let f = self.facts;
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
            HostCode::SkipEhlo => Some(self.starttls_hint()),
            HostCode::SkipTls => Some(match &f.outcome {
                Some(DaneOutcome::Failed { .. }) if self.intercepted => vec![
                    format!(
                        "Nothing to change in DNS or on {host}: an interceptor on the path presented {} instead of the \
                         server's certificate, no TLSA record names it, and the sender refused it before MAIL FROM \
                         (RFC 7672 §3.2). That is DANE doing its job against an active attacker (RFC 7672 §1.3).",
                        f.presented.first().map_or_else(|| "a certificate".into(), |d| self.name_of(d))
                    ),
                    "  The message waits until an untampered path exists; find and remove the interceptor.".into(),
                ],
                Some(DaneOutcome::Failed { reason }) => self.dane_hint(reason),
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
                    "Replace the TLSA records of {host}: every one is unusable for SMTP (PKIX usages 0 and 1, or \
                     unknown parameters), so TLS is mandatory but the server is not authenticated (RFC 7672 §3.1.3, §2.2)."
                )];
                p.extend(self.publish("Publish instead:"));
                Some(p)
            }
            HostCode::Opp => Some(self.unprotected_hint()),
        }
    }

    /// TLS was required (usable TLSA) but never began.
    fn starttls_hint(&self) -> Vec<String> {
        let host = self.report.host.as_str();
        if self.seen.is_some_and(|e| !e.attacker.is_empty()) {
            return vec![
                format!(
                    "Nothing to change in DNS or on {host}: it offers STARTTLS, but something on the path tampered with \
                     the exchange (removed the offer or forged a refusal). That is the downgrade attack DANE exists to \
                     stop (RFC 7672 §1.3)."
                ),
                "  The sender was right to refuse cleartext where a secure TLSA RRset promised TLS (RFC 7672 §2.2); \
                 the message waits until an untampered path exists. Find and remove the device that tampers with \
                 STARTTLS."
                    .into(),
            ];
        }
        if self
            .seen
            .is_some_and(|e| e.connections.iter().any(|t| t.starttls_offered))
        {
            return vec![
                format!(
                    "Make {host} accept STARTTLS: it offers it but refuses the command ({}).",
                    self.report.reason
                ),
                "  Its secure TLSA records make TLS mandatory, so senders never fall back to cleartext (RFC 7672 §2.2). \
                 Check that the server has its certificate and key loaded."
                    .into(),
            ];
        }
        vec![
            format!("Enable STARTTLS on {host}, with the certificate its TLSA records name (RFC 7672 §2.2)."),
            "  Its secure TLSA records promise TLS, so senders refuse to send in cleartext. If TLS cannot be \
             offered, withdraw the TLSA records first and wait out their TTL (RFC 7671 §8)."
                .into(),
        ]
    }

    /// Delivered without DANE: say why the host is unprotected and what to publish.
    fn unprotected_hint(&self) -> Vec<String> {
        let host = self.report.host.as_str();
        let f = self.facts;
        let tlsa = f.answers.iter().rev().find(|a| a.rtype == RType::Tlsa);
        let mut p = match tlsa {
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
        if self.intercepted {
            p.push(format!(
                "  It happened here: an interceptor presented {} and read the message; opportunistic TLS checks no \
                 certificate (RFC 7672 §1.3).",
                f.presented
                    .first()
                    .map_or_else(|| "its own certificate".into(), |d| self.name_of(d))
            ));
        }
        let offered = self
            .seen
            .is_some_and(|e| e.connections.iter().any(|t| t.starttls_offered));
        if f.presented.is_empty() && !self.intercepted {
            p.push(if offered {
                format!(
                    "  {host} offers STARTTLS but the handshake failed, so the message went in cleartext (allowed only \
                     without DANE, RFC 7672 §2.2): fix its TLS first."
                )
            } else {
                format!("  {host} took the message in cleartext: first offer STARTTLS with a certificate.")
            });
        }
        p.extend(self.publish("To protect it, publish:"));
        p
    }

    fn dane_hint(&self, reason: &DaneFailure) -> Vec<String> {
        let host = self.report.host.as_str();
        let f = self.facts;
        let name_at = |depth: usize| {
            f.presented
                .get(depth)
                .map_or_else(|| format!("the certificate at depth {depth}"), |d| self.name_of(d))
        };
        match reason {
            DaneFailure::NoMatch { .. } => {
                let mut p = vec![format!(
                    "{host} presents a chain that none of its TLSA records names (RFC 7672 §3.2), so every DANE sender \
                     refuses it."
                )];
                for r in &f.records {
                    let named = lesson::matching_certs(self.pki, r);
                    if named.is_empty() {
                        continue;
                    }
                    p.push(if r.usage == Tlsa::DANE_TA {
                        format!(
                            "  `{} {} {} …` names {}, which is not in the chain {host} serves: a DANE-TA anchor must be \
                             in the chain (RFC 7672 §3.1.2). Serve it, or publish the record of an issuer the chain has.",
                            r.usage,
                            r.selector,
                            r.matching,
                            named.join(", ")
                        )
                    } else {
                        format!(
                            "  `{} {} {} …` names {}, which {host} no longer presents: the certificate was replaced and \
                             the TLSA record was not.",
                            r.usage,
                            r.selector,
                            r.matching,
                            named.join(", ")
                        )
                    });
                }
                p.extend(self.publish("Publish the record of the key it presents now:"));
                if f.records.iter().any(|r| r.usage == Tlsa::DANE_TA) && f.presented.len() > 1 {
                    let top = f.presented.len() - 1;
                    if let Some(line) = f
                        .presented
                        .last()
                        .and_then(|d| record_line(&self.base, self.port, Tlsa::DANE_TA, d))
                    {
                        p.push(format!(
                            "  or, for DANE-TA, the record of {}, the issuer the chain ends with (RFC 7672 §3.1.2):",
                            name_at(top)
                        ));
                        p.push(format!("    {line}"));
                    }
                }
                p.push(
                    "  Only if that is really your server's certificate: one nobody on your side installed means an \
                     interceptor, and then the sender was right. For the next change, publish the next key's record \
                     beside the current one a few TTLs before the switch, and remove the old one after it (RFC 7671 §8.1)."
                        .into(),
                );
                p
            }
            DaneFailure::Expired { depth } | DaneFailure::NotYetValid { depth } => {
                let mut p = vec![format!(
                    "Renew {} (depth {depth}) on {host}: under DANE-TA certificate dates are checked (RFC 7671 §5.2).",
                    name_at(*depth)
                )];
                p.extend(
                    self.publish("A DANE-EE record does not depend on dates (RFC 7672 §3.1.1); to use one, publish:"),
                );
                p
            }
            DaneFailure::NameMismatch {
                presented,
                reference_ids,
            } => {
                let mut p = vec![format!(
                    "Issue {host}'s certificate for a name the sender looks for ({}); it names {} (RFC 7672 §3.2.2, §3.2.3).",
                    reference_ids.join(", "),
                    if presented.is_empty() {
                        "nothing".to_string()
                    } else {
                        presented.join(", ")
                    }
                )];
                p.extend(self.publish("Or publish a DANE-EE record, which does not check names (RFC 7672 §3.1.1):"));
                p
            }
            DaneFailure::ChainInvalid(_) | DaneFailure::ConstraintViolated(_) => {
                let mut p = vec![format!(
                    "Serve a chain on {host} that leads from the leaf to the DANE-TA anchor and keeps its constraints: \
                     {reason} (RFC 7672 §3.1.2)."
                )];
                p.extend(self.publish("Or publish a DANE-EE record for the leaf (RFC 7672 §3.1.1):"));
                p
            }
            DaneFailure::NoCertificate | DaneFailure::NoUsableRecords => {
                vec![format!(
                    "Configure {host} with the certificate its TLSA records name: {reason}."
                )]
            }
        }
    }
}
