//! The decision trace: numbered steps, each with the RFC section that demands it.
//! It is what `danesim explain` prints and what snapshots keep, so it is plain text
//! with no ports, paths or timings.

use super::lookup::{Answer, AnswerKind, DnssecState, Rdata};
use crate::sender::TraceStep;

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
        });
    }

    /// One line per DNS answer: what was asked, what came back, and its DNSSEC state.
    pub fn answer(&mut self, a: &Answer, rfc: &str) {
        self.step(format!("{} {} → {}", a.qname, rtype_name(a), describe(a)), Some(rfc));
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

fn rtype_name(a: &Answer) -> &'static str {
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
