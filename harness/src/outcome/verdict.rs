//! The verdict: the expectation (RESULT, VIA, HOST, NOTE, STATUS, HOST-STATUS) against the sender's report,
//! plus the witness's checks ([`crate::witness::checks`]: NOCLEAR, DANE-MATCH, REPORT and
//! the explicit invariants; PRESENTED, [`crate::witness::presented`]), then the deviation catalogue's classification.

use crate::scenario::Scenario;
use crate::sender::SenderReport;
use crate::witness::Observations;

use crate::world::World;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// Every failed check is a documented deviation of this real MTA (docs/CONFORMANCE.md,
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

impl Violation {
    /// A failed check, not (yet) excused by a deviation.
    pub fn new(invariant: &str, rfc: &str, detail: String) -> Violation {
        Violation {
            invariant: invariant.into(),
            rfc: rfc.into(),
            detail,
            deviation: None,
        }
    }
}

pub fn judge(s: &Scenario, world: &World, sender: &str, report: &SenderReport, obs: &Observations) -> Verdict {
    judge_retried(s, world, sender, report, obs, &[])
}

/// [`judge`] for an attempt that retries a message: `earlier` holds what the witnesses saw
/// during the message's earlier attempts, so that ONCE counts every copy of it.
pub fn judge_retried(
    s: &Scenario,
    world: &World,
    sender: &str,
    report: &SenderReport,
    obs: &Observations,
    earlier: &[&Observations],
) -> Verdict {
    let mut v = Vec::new();
    let scenario_rfc = s.refs.first().cloned().unwrap_or_else(|| "RFC 7672".into());
    let mut push = |inv: &str, rfc: &str, detail: String| v.push(Violation::new(inv, rfc, detail));

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

    // RFC 3463 codes, as the sender reported them (STATUS, HOST-STATUS).
    v.extend(super::status::judge(s, report));

    // What the witnesses saw: never excused by what the sender said.
    v.extend(crate::witness::checks::judge(s, world, report, obs, earlier));
    v.extend(crate::witness::presented::judge(s, world, obs));

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
