//! Faults a scenario declares on the world's DNS, scoped by query name and type, and the
//! response stage that applies them after the catalog has answered.
//!
//! - transport: SERVFAIL, REFUSED, a dropped query (the client times out), truncation over
//!   UDP (the client must retry over TCP, RFC 7766 §5), a slow answer;
//! - signatures (bogus data, RFC 4035 §5.3): a corrupted RRSIG, an RRSIG whose validity
//!   window lies wholly before or after the world's fixed signing window, no RRSIG, or an
//!   RRSIG made by a key that is not in the zone's DNSKEY RRset.
//!
//! - denial proofs (`on = "denial"`): the same signature faults on the NSEC or NSEC3 records
//!   that prove a negative answer (RFC 4035 §3.1.3, RFC 5155 §7.2), or the proof left out
//!   (`no-denial`); either way the negative answer is bogus (RFC 4035 §5.4).
//!
//! A fault may apply to the first N matching queries only (a transient failure). A signature
//! fault on a DNAME RRset applies to every answer that carries it (RFC 6672 §3.1).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordSet, RecordType};

use super::handler::{Disposition, QueryView};
use super::sign::{self, ZoneKey};

/// Validity window of an "expired" RRSIG: 2023-01-01 to 2024-01-01, wholly before the
/// regular window (which starts 2025-01-01) and so before any world clock (RFC 4035 §5.3.1).
pub const EXPIRED_WINDOW: (u32, u32) = (1_672_531_200, 1_704_067_200);
/// Validity window of a "not yet valid" RRSIG: 2036-01-01 to 2037-01-01, wholly after the
/// regular window (which ends 2035-01-01).
pub const FUTURE_WINDOW: (u32, u32) = (2_082_758_400, 2_114_380_800);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    ServFail,
    Refused,
    /// No answer at all: the client's timeout is the failure.
    Drop,
    /// Over UDP: TC set and the sections emptied, forcing a retry over TCP.
    Truncate,
    /// The answer comes after this delay.
    Slow(Duration),
    /// One byte of each covering RRSIG's signature flipped.
    BadSignature,
    /// Validly signed, but the RRSIG expired before the world's clock.
    ExpiredSignature,
    /// Validly signed, but the RRSIG's inception is after the world's clock.
    FutureSignature,
    /// The covering RRSIGs removed.
    NoSignature,
    /// Signed by a key that is not in the zone's DNSKEY RRset.
    WrongKey,
    /// A negative answer without its NSEC/NSEC3 records and their RRSIGs.
    NoDenial,
}

impl FaultKind {
    pub const NAMES: [&'static str; 11] = [
        "servfail",
        "refused",
        "drop",
        "truncate",
        "slow",
        "bad-signature",
        "expired-signature",
        "future-signature",
        "no-signature",
        "wrong-key",
        "no-denial",
    ];

    /// `slow` takes its delay from the caller.
    pub fn parse(name: &str, delay: Duration) -> Option<FaultKind> {
        Some(match name {
            "servfail" => Self::ServFail,
            "refused" => Self::Refused,
            "drop" => Self::Drop,
            "truncate" => Self::Truncate,
            "slow" => Self::Slow(delay),
            "bad-signature" => Self::BadSignature,
            "expired-signature" => Self::ExpiredSignature,
            "future-signature" => Self::FutureSignature,
            "no-signature" => Self::NoSignature,
            "wrong-key" => Self::WrongKey,
            "no-denial" => Self::NoDenial,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ServFail => "servfail",
            Self::Refused => "refused",
            Self::Drop => "drop",
            Self::Truncate => "truncate",
            Self::Slow(_) => "slow",
            Self::BadSignature => "bad-signature",
            Self::ExpiredSignature => "expired-signature",
            Self::FutureSignature => "future-signature",
            Self::NoSignature => "no-signature",
            Self::WrongKey => "wrong-key",
            Self::NoDenial => "no-denial",
        }
    }

    /// Faults that change the RRSIGs over an RRset or a denial proof (they need a signed zone).
    pub fn is_signature(self) -> bool {
        matches!(
            self,
            Self::BadSignature
                | Self::ExpiredSignature
                | Self::FutureSignature
                | Self::NoSignature
                | Self::WrongKey
                | Self::NoDenial
        )
    }
}

/// One declared fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// Lowercase, with the trailing dot.
    pub qname: String,
    /// None: every type at `qname`.
    pub qtype: Option<RecordType>,
    pub kind: FaultKind,
    /// Some(n): only the first n matching queries.
    pub first: Option<u32>,
    /// A signature fault on the denial proof of a negative answer (`on = "denial"`) instead
    /// of the RRSIGs over the answer; always true for `no-denial`.
    pub on_denial: bool,
}

impl FaultSpec {
    /// "servfail at _25._tcp.mx1.example.test. TLSA", for reports.
    pub fn describe(&self) -> String {
        let qtype = self.qtype.map(|t| format!(" {t}")).unwrap_or_default();
        let first = self.first.map(|n| format!(" (first {n})")).unwrap_or_default();
        let on = if self.on_denial && self.kind != FaultKind::NoDenial {
            " on the denial"
        } else {
            ""
        };
        format!("{}{on} at {}{qtype}{first}", self.kind.name(), self.qname)
    }

    fn matches(&self, q: &QueryView) -> bool {
        q.qname == self.qname && self.qtype.is_none_or(|t| q.qtype == Some(t))
    }
}

/// The response stage of the world's faults. The first matching fault that is still
/// active applies; its name goes into the query log.
pub(crate) struct FaultStage {
    faults: Vec<ActiveFault>,
}

struct ActiveFault {
    spec: FaultSpec,
    /// Replacement RRSIGs for signature faults (computed when the world was signed).
    rrsigs: Vec<Record>,
    /// What re-signs a denial proof (expired, future and wrong-key faults on the denial).
    resign: Option<Resign>,
    seen: AtomicU32,
}

/// How a fault on a denial proof re-signs it: the proof depends on the query, so its RRSIGs
/// are made when it is served.
#[derive(Clone)]
pub(crate) struct Resign {
    pub key: Arc<ZoneKey>,
    /// The zone whose proof it is (the RRSIG's signer name).
    pub signer: Name,
    pub window: (u32, u32),
}

/// What the world build prepared for one declared fault.
#[derive(Clone)]
pub(crate) struct PreparedFault {
    pub spec: FaultSpec,
    pub rrsigs: Vec<Record>,
    pub resign: Option<Resign>,
}

impl FaultStage {
    pub(crate) fn new(faults: Vec<PreparedFault>) -> Self {
        FaultStage {
            faults: faults
                .into_iter()
                .map(|f| ActiveFault {
                    spec: f.spec,
                    rrsigs: f.rrsigs,
                    resign: f.resign,
                    seen: AtomicU32::new(0),
                })
                .collect(),
        }
    }

    /// Applies the fault that matches this query, if any; returns what to do and its name.
    pub(crate) fn apply(&self, q: &QueryView, response: &mut Message) -> (Disposition, Option<&'static str>) {
        for f in &self.faults {
            if !f.spec.matches(q) && !f.rides_on_dname(response) {
                continue;
            }
            // A denial fault acts on negative answers only: with no proof there is nothing
            // to break, and the query log must not say that it applied.
            if f.spec.on_denial && !response.authorities.iter().any(is_proof) {
                continue;
            }
            let n = f.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if f.spec.first.is_some_and(|first| n > first) {
                continue;
            }
            let kind = f.spec.kind;
            let disposition = match kind {
                FaultKind::ServFail | FaultKind::Refused => {
                    response.metadata.response_code = if kind == FaultKind::ServFail {
                        ResponseCode::ServFail
                    } else {
                        ResponseCode::Refused
                    };
                    response.metadata.authoritative = false;
                    response.answers.clear();
                    response.authorities.clear();
                    response.additionals.clear();
                    Disposition::Send
                }
                FaultKind::Drop => Disposition::Drop,
                FaultKind::Truncate => {
                    // RFC 1035 §4.1.1 / RFC 7766 §5: TC over UDP; over TCP the full answer goes out.
                    if !q.tcp {
                        response.metadata.truncation = true;
                        response.answers.clear();
                        response.authorities.clear();
                        response.additionals.clear();
                    }
                    Disposition::Send
                }
                FaultKind::Slow(d) => Disposition::SendAfter(d),
                _ if f.spec.on_denial => f.break_denial(response),
                FaultKind::NoSignature => {
                    response.answers.retain(|r| !covers(r, &f.spec));
                    Disposition::Send
                }
                _ => {
                    let before = response.answers.len();
                    response.answers.retain(|r| !covers(r, &f.spec));
                    if response.answers.len() != before {
                        response.answers.extend(f.rrsigs.iter().cloned());
                    }
                    Disposition::Send
                }
            };
            return (disposition, Some(kind.name()));
        }
        (Disposition::Send, None)
    }
}

impl ActiveFault {
    /// Break the NSEC/NSEC3 proof in the authority section (RFC 4035 §3.1.3, RFC 5155 §7.2).
    fn break_denial(&self, response: &mut Message) -> Disposition {
        let authorities = &mut response.authorities;
        match self.spec.kind {
            FaultKind::NoDenial => authorities.retain(|r| !is_proof(r) && !covers_proof(r)),
            FaultKind::NoSignature => authorities.retain(|r| !covers_proof(r)),
            FaultKind::BadSignature => {
                for r in authorities.iter_mut().filter(|r| covers_proof(r)) {
                    *r = corrupted(r);
                }
            }
            _ => {
                let Some(resign) = &self.resign else {
                    return Disposition::Send;
                };
                let (inception, expiration) = resign.window;
                let mut made = Vec::new();
                for r in authorities.iter().filter(|r| is_proof(r)) {
                    // Each NSEC or NSEC3 owner holds one record: its RRset (RFC 4034 §4, RFC 5155 §3).
                    let mut set = RecordSet::with_ttl(r.name.clone(), r.record_type(), r.ttl);
                    set.set_records(vec![r.clone()]);
                    match sign::rrsig(&set, &resign.key, &resign.signer, inception, expiration) {
                        Ok(sig) => made.push(sig),
                        // Never for the proofs of a zone that signed: say so rather than lie.
                        Err(_) => {
                            response.metadata.response_code = ResponseCode::ServFail;
                            return Disposition::Send;
                        }
                    }
                }
                authorities.retain(|r| !covers_proof(r));
                authorities.extend(made);
            }
        }
        Disposition::Send
    }

    /// A DNAME RRset travels in the answer to every name below its owner (RFC 6672 §3.1), so
    /// a signature fault on it applies wherever it is sent, not only to `DNAME` queries.
    fn rides_on_dname(&self, response: &Message) -> bool {
        self.spec.kind.is_signature()
            && !self.spec.on_denial
            && self.spec.qtype == Some(RecordType::DNAME)
            && response.answers.iter().any(|r| covers(r, &self.spec))
    }
}

/// An NSEC or NSEC3 record: part of a denial proof.
fn is_proof(r: &Record) -> bool {
    matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3)
}

/// An RRSIG over an NSEC or NSEC3 record.
fn covers_proof(r: &Record) -> bool {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            matches!(sig.input().type_covered, RecordType::NSEC | RecordType::NSEC3)
        }
        _ => false,
    }
}

/// The RRSIG `r` with one bit in the middle of its signature flipped: still well-formed, no
/// longer valid (RFC 4035 §5.3.3). Any other record comes back as it is.
pub(crate) fn corrupted(r: &Record) -> Record {
    let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data else {
        return r.clone();
    };
    let mut bytes = sig.sig().to_vec();
    let middle = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(middle) {
        *b ^= 0x01;
    }
    let bad = RRSIG::from_sig(sig.input().clone(), bytes);
    Record::from_rdata(r.name.clone(), r.ttl, RData::DNSSEC(DNSSECRData::RRSIG(bad)))
}

/// An RRSIG in the answer over the faulted RRset.
fn covers(r: &Record, spec: &FaultSpec) -> bool {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            r.name.to_string().to_ascii_lowercase() == spec.qname
                && spec.qtype.is_none_or(|t| sig.input().type_covered == t)
        }
        _ => false,
    }
}
