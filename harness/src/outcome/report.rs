//! The CLI's report: one line per scenario, then a summary.

use super::record::Outcome;
use super::verdict::Verdict;

/// `PASS  id  RESULT` or `VIOLATION  id  INVARIANT (RFC ...): detail`.
pub fn line(o: &Outcome) -> String {
    match &o.verdict {
        Verdict::Pass => {
            let via = o.via.as_deref().map(|v| format!(" via {v}")).unwrap_or_default();
            let notes = if o.notes.is_empty() {
                String::new()
            } else {
                format!(
                    " [note: {}]",
                    o.notes.iter().map(|n| n.code.as_str()).collect::<Vec<_>>().join(", ")
                )
            };
            format!("PASS       {:<36} {}{via}{notes}", o.scenario, o.result)
        }
        Verdict::Violation(vs) => {
            let mut s = format!("VIOLATION  {:<36} {}", o.scenario, o.result);
            for v in vs {
                s.push_str(&format!("\n           {} ({}): {}", v.invariant, v.rfc, v.detail));
            }
            s
        }
    }
}

pub fn summary(outcomes: &[Outcome], sender: &str) -> String {
    let passed = outcomes.iter().filter(|o| o.verdict.passed()).count();
    let failed = outcomes.len() - passed;
    format!(
        "{} scenario(s) against {sender}: {passed} passed, {failed} with violations",
        outcomes.len()
    )
}
