//! The outcome of one scenario × one sender: what snapshots hold and `--format json` prints.
//! Field order is fixed and every collection is ordered, so the same run gives the same bytes.

use super::redact::Redactions;
use super::verdict::Verdict;
use crate::sender::{HostReport, Note, SenderReport, TraceStep};
use crate::vocab::ResultCode;
use crate::witness::{EndpointObservation, Observations};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub sender: String,
    pub covers: Vec<String>,
    pub verdict: Verdict,
    pub expected: Vec<ResultCode>,
    pub result: ResultCode,
    pub via: Option<String>,
    pub status: String,
    pub hosts: Vec<HostReport>,
    pub notes: Vec<Note>,
    /// Expectations this sender's report cannot answer (e.g. notes, for a real MTA).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
    /// A timeline's attempts in order (empty for a single attempt); the fields above are
    /// the last attempt's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    pub witness: Witness,
    pub trace: Vec<TraceStep>,
}

/// One delivery attempt of a timeline.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    /// Which message: a deferred one is retried, otherwise a new one is submitted.
    pub message: u32,
    /// Simulated time since the first attempt, from the retry schedule (in-process senders;
    /// real senders retry when the harness flushes their queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Wall time since the first attempt (redacted in snapshots).
    pub elapsed: u64,
    pub expected: Vec<ResultCode>,
    pub result: ResultCode,
    pub via: Option<String>,
    pub status: String,
    /// "host: CODE" per MX host, in the order tried.
    pub hosts: Vec<String>,
    pub verdict: Verdict,
    /// Advice on the world as this attempt found it (the timeline's `lint`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lint: Vec<String>,
    /// What the timeline changed after this attempt, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<String>,
    /// The sender's whole report and what the witnesses saw during this attempt, for
    /// `danesim explain` (not snapshotted: the fields above summarize them).
    #[serde(skip)]
    pub report: SenderReport,
    #[serde(skip)]
    pub observations: Observations,
}

#[derive(Debug, Clone, Serialize)]
pub struct Witness {
    pub endpoints: Vec<EndpointObservation>,
    /// Distinct queries the authoritative server was asked, sorted: "name TYPE", then `+do`
    /// and `+cd` when those bits were set (RFC 3225, RFC 4035 §3.2.2) and `fault=KIND` when a
    /// declared fault shaped the answer. Arrival order and repeat counts depend on the
    /// validator's key fetching and retries and are left out.
    pub dns_queries: Vec<String>,
    /// Where the routes to an address disagree about a TLS commitment (RFC 7672 §2.2.1):
    /// the witness cannot know which route a sender took there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route_disputes: Vec<String>,
}

impl Outcome {
    pub fn new(
        scenario: &crate::scenario::Scenario,
        sender: &str,
        report: SenderReport,
        obs: Observations,
        verdict: Verdict,
    ) -> Outcome {
        let unchecked = super::verdict::unchecked(scenario, &report);
        let dns_queries: BTreeSet<String> = obs
            .queries
            .iter()
            .map(|q| {
                format!(
                    "{} {}{}{}{}",
                    q.qname,
                    q.qtype,
                    if q.dnssec_ok { " +do" } else { "" },
                    if q.checking_disabled { " +cd" } else { "" },
                    q.fault.as_ref().map(|f| format!(" fault={f}")).unwrap_or_default()
                )
            })
            .collect();
        Outcome {
            scenario: scenario.id.clone(),
            sender: sender.to_string(),
            covers: scenario.covers.clone(),
            verdict,
            expected: scenario.expect.results.clone(),
            result: report.result,
            via: report.via,
            status: report.status,
            hosts: report.hosts,
            notes: report.notes,
            unchecked,
            attempts: Vec::new(),
            witness: Witness {
                endpoints: obs.endpoints,
                dns_queries: dns_queries.into_iter().collect(),
                route_disputes: obs.route_disputes,
            },
            trace: report.trace,
        }
    }

    /// The snapshot form: JSON value with the redaction table applied.
    pub fn redacted(&self, r: &Redactions) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("Outcome holds only strings, numbers, lists and maps");
        r.apply(&mut v);
        v
    }
}
