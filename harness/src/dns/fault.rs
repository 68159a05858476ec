//! Faults a scenario declares on the world's DNS, scoped by query name and type, and the
//! response stage that applies them after the catalog has answered.
//!
//! - transport: SERVFAIL, REFUSED, a dropped query (the client times out), truncation over
//!   UDP (the client must retry over TCP, RFC 7766 §5), a slow answer;
//! - signatures (bogus data, RFC 4035 §5.3): a corrupted RRSIG, an RRSIG whose validity
//!   window lies wholly before or after the world's fixed signing window, no RRSIG, or an
//!   RRSIG made by a key that is not in the zone's DNSKEY RRset.
//!
//! A fault may apply to the first N matching queries only (a transient failure). A signature
//! fault on a DNAME RRset applies to every answer that carries it (RFC 6672 §3.1).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use super::handler::{Disposition, QueryView};

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
}

impl FaultKind {
    pub const NAMES: [&'static str; 10] = [
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
        }
    }

    /// Faults that change the RRSIGs over an RRset (they need a signed RRset to act on).
    pub fn is_signature(self) -> bool {
        matches!(
            self,
            Self::BadSignature | Self::ExpiredSignature | Self::FutureSignature | Self::NoSignature | Self::WrongKey
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
}

impl FaultSpec {
    /// "servfail at _25._tcp.mx1.example.test. TLSA", for reports.
    pub fn describe(&self) -> String {
        let qtype = self.qtype.map(|t| format!(" {t}")).unwrap_or_default();
        let first = self.first.map(|n| format!(" (first {n})")).unwrap_or_default();
        format!("{} at {}{qtype}{first}", self.kind.name(), self.qname)
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
    seen: AtomicU32,
}

impl FaultStage {
    pub(crate) fn new(faults: Vec<(FaultSpec, Vec<Record>)>) -> Self {
        FaultStage {
            faults: faults
                .into_iter()
                .map(|(spec, rrsigs)| ActiveFault {
                    spec,
                    rrsigs,
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
    /// A DNAME RRset travels in the answer to every name below its owner (RFC 6672 §3.1), so
    /// a signature fault on it applies wherever it is sent, not only to `DNAME` queries.
    fn rides_on_dname(&self, response: &Message) -> bool {
        self.spec.kind.is_signature()
            && self.spec.qtype == Some(RecordType::DNAME)
            && response.answers.iter().any(|r| covers(r, &self.spec))
    }
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
