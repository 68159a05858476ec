//! The decision trace: numbered steps, each with the RFC section that demands it.
//! It is what `danesim explain` prints and what snapshots keep, so it is plain text
//! with no ports, paths or timings.

use super::lookup::{Answer, AnswerKind, DnssecState, Rdata};
use crate::dane::DaneOutcome;
use crate::pki::Tlsa;
use crate::sender::TraceStep;

/// What a step was about, as data: `danesim explain` builds its explanations and fix hints
/// from these instead of re-parsing the step's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The sender turns to this MX host (FQDN); the steps up to the next `Host` are about it.
    Host(String),
    /// A DNS answer as the validating stub saw it (RFC 7672 §2.1.1).
    Answer(Answer),
    /// One record of a secure TLSA RRset, judged for usability (RFC 7672 §3.1.3).
    Tlsa(Tlsa),
    /// A TLS handshake: what the server presented and what it was checked against.
    Handshake {
        /// The presented chain in DER, leaf first (empty when none arrived).
        presented: Vec<Vec<u8>>,
        /// The usable TLSA records of a DANE host (empty without DANE).
        records: Vec<Tlsa>,
        /// RFC 7672 §3.2.2 reference identifiers (DANE only).
        reference_ids: Vec<String>,
        /// The DANE verdict; `None` when the certificate was not checked.
        outcome: Option<DaneOutcome>,
    },
}

#[derive(Debug, Default)]
pub struct Trace {
    steps: Vec<TraceStep>,
}

impl Trace {
    pub fn step(&mut self, text: impl Into<String>, rfc: Option<&str>) {
        let step = self.steps.len() as u32 + 1;
        self.steps.push(TraceStep {
            step,
            text: text.into(),
            rfc: rfc.map(str::to_string),
            facts: Vec::new(),
        });
    }

    /// Attaches `fact` to the latest step (steps stay as they were: the text is snapshotted).
    pub fn fact(&mut self, fact: Fact) {
        if let Some(s) = self.steps.last_mut() {
            s.facts.push(fact);
        }
    }

    /// One line per DNS answer: what was asked, what came back, and its DNSSEC state.
    pub fn answer(&mut self, a: &Answer, rfc: &str) {
        self.step(format!("{} {} → {}", a.qname, rtype_name(a), describe(a)), Some(rfc));
        self.fact(Fact::Answer(a.clone()));
    }

    /// One line per CNAME link the answer followed, each with its own DNSSEC state.
    pub fn cnames(&mut self, a: &Answer, rfc: &str) {
        for c in &a.cnames {
            let text = format!(
                "{} is an alias (CNAME) for {} ({})",
                c.owner,
                c.target,
                state_name(Some(&c.state))
            );
            self.step(text, Some(rfc));
        }
    }

    pub fn into_steps(self) -> Vec<TraceStep> {
        self.steps
    }
}

pub fn rtype_name(a: &Answer) -> &'static str {
    use super::lookup::RType;
    match a.rtype {
        RType::Mx => "MX",
        RType::A => "A",
        RType::Aaaa => "AAAA",
        RType::Tlsa => "TLSA",
    }
}

pub fn state_name(s: Option<&DnssecState>) -> &'static str {
    match s {
        Some(DnssecState::Secure) => "secure",
        Some(DnssecState::Insecure) => "insecure",
        Some(DnssecState::Bogus) => "bogus",
        Some(DnssecState::Indeterminate) => "indeterminate",
        None => "no answer",
    }
}

pub fn describe(a: &Answer) -> String {
    let state = state_name(a.state.as_ref());
    let what = match &a.kind {
        AnswerKind::Records(rs) => rs.iter().map(rdata).collect::<Vec<_>>().join(", "),
        AnswerKind::NoData => "no records of this type (NODATA)".into(),
        AnswerKind::NxDomain => "name does not exist (NXDOMAIN)".into(),
        AnswerKind::ServFail => "SERVFAIL".into(),
        AnswerKind::Refused => "REFUSED".into(),
        AnswerKind::Timeout => "timed out".into(),
        AnswerKind::Error(e) => format!("error: {e}"),
    };
    if a.detail.is_empty() {
        format!("{state}: {what}")
    } else {
        format!("{state}: {what} ({})", a.detail)
    }
}

pub fn rdata(r: &Rdata) -> String {
    match r {
        Rdata::Mx { preference, exchange } => format!("MX {preference} {exchange}"),
        Rdata::A(ip) => format!("A {ip}"),
        Rdata::Aaaa(ip) => format!("AAAA {ip}"),
        Rdata::Tlsa {
            usage,
            selector,
            matching,
            data,
        } => {
            format!("TLSA {usage} {selector} {matching} {}", hex::encode_upper(data))
        }
    }
}
