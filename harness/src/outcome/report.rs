//! The CLI's report: one line per scenario, then a summary.

use super::record::Outcome;
use super::verdict::Verdict;

/// `PASS  id  RESULT` or `VIOLATION  id  INVARIANT (RFC ...): detail`; a timeline adds one
/// line per attempt (when, which message, the result and the sender's status) and one per
/// change the timeline made after it.
pub fn line(o: &Outcome) -> String {
    let mut s = head(o);
    for a in &o.attempts {
        for l in &a.lint {
            s.push_str(&format!("\n           lint {l}"));
        }
        let at = a.at.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let mark = if a.verdict.passed() { "" } else { "  <- not as expected" };
        s.push_str(&format!(
            "\n           attempt {}{at} (message {}): {:<5} {}{mark}",
            a.attempt,
            a.message,
            a.result.as_str(),
            a.status
        ));
        for t in &a.then {
            s.push_str(&format!("\n             then {t}"));
        }
    }
    s
}

fn head(o: &Outcome) -> String {
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
        Verdict::Violation(vs) | Verdict::Deviation(vs) => {
            let word = if o.verdict.acceptable() {
                "DEVIATION"
            } else {
                "VIOLATION"
            };
            let mut s = format!("{word:<10} {:<36} {}", o.scenario, o.result);
            for v in vs {
                s.push_str(&format!("\n           {} ({}): {}", v.invariant, v.rfc, v.detail));
                if let Some(d) = &v.deviation {
                    s.push_str(&format!("\n             known deviation: {d}"));
                }
            }
            s
        }
    }
}

pub fn summary(outcomes: &[Outcome], sender: &str) -> String {
    let passed = outcomes.iter().filter(|o| o.verdict.passed()).count();
    let deviations = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Deviation(_)))
        .count();
    let failed = outcomes.len() - passed - deviations;
    let dev = if deviations > 0 {
        format!(", {deviations} known deviation(s)")
    } else {
        String::new()
    };
    format!(
        "{} scenario(s) against {sender}: {passed} passed{dev}, {failed} with violations",
        outcomes.len()
    )
}

/// TAP version 14: one test point per scenario, violations as YAML diagnostics.
pub fn tap(outcomes: &[Outcome]) -> String {
    let mut s = format!("TAP version 14\n1..{}\n", outcomes.len());
    for (i, o) in outcomes.iter().enumerate() {
        let name = format!("{}@{} {}", o.scenario, o.sender, o.result);
        match &o.verdict {
            Verdict::Pass => s.push_str(&format!("ok {} - {name}\n", i + 1)),
            Verdict::Violation(vs) | Verdict::Deviation(vs) => {
                // A documented deviation is an expected failure: TAP's TODO directive (TAP 14 §Directives).
                let todo = if o.verdict.acceptable() {
                    " # TODO known deviation"
                } else {
                    ""
                };
                s.push_str(&format!("not ok {} - {name}{todo}\n  ---\n  violations:\n", i + 1));
                for v in vs {
                    s.push_str(&format!(
                        "    - invariant: {}\n      rfc: {}\n      detail: {}\n",
                        yaml_str(&v.invariant),
                        yaml_str(&v.rfc),
                        yaml_str(&v.detail)
                    ));
                }
                s.push_str("  ...\n");
            }
        }
    }
    s
}

/// JUnit XML, as CI systems ingest it: one testcase per scenario, a failure per violation.
pub fn junit(outcomes: &[Outcome], sender: &str) -> String {
    let failures = outcomes.iter().filter(|o| !o.verdict.acceptable()).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites><testsuite name=\"danesim {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n",
        xml(sender),
        outcomes.len()
    ));
    for o in outcomes {
        s.push_str(&format!(
            "  <testcase classname=\"danesim.{}\" name=\"{}\">",
            xml(&o.sender),
            xml(&o.scenario)
        ));
        if let Verdict::Deviation(vs) = &o.verdict {
            let why: Vec<String> = vs.iter().filter_map(|v| v.deviation.clone()).collect();
            s.push_str(&format!("\n    <skipped message=\"{}\"/>\n  ", xml(&why.join("; "))));
        }
        if let Verdict::Violation(vs) = &o.verdict {
            for v in vs {
                s.push_str(&format!(
                    "\n    <failure type=\"{}\" message=\"{} ({}): {}\"/>",
                    xml(&v.invariant),
                    xml(&v.invariant),
                    xml(&v.rfc),
                    xml(&v.detail)
                ));
            }
            s.push_str("\n  ");
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("</testsuite></testsuites>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A double-quoted YAML scalar (TAP diagnostics are YAML).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(xml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(yaml_str("x: \"y\""), "\"x: \\\"y\\\"\"");
    }
}
