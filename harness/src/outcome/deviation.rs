//! Documented deviations of real MTAs (CONFORMANCE.md, "Known deviations of real MTAs"):
//! behaviour the matrix expects from them and reports as theirs, not as a harness failure
//! and not as a new finding. Only failed expectations can be excused here; a witness
//! invariant (NOCLEAR, DANE-MATCH, REPORT) never is.

use super::verdict::{Verdict, Violation};

struct Known {
    sender: &'static str,
    /// The catalogue id the scenario covers.
    covers: &'static str,
    /// The checks the deviation explains.
    checks: &'static [&'static str],
    text: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        sender: "exim",
        covers: "TLSA-U-01",
        checks: &["RESULT", "HOST", "VIA"],
        text: "Exim defers (\"No usable TLSA records\") where RFC 7672 §3.1.3 wants unauthenticated TLS",
    },
    Known {
        sender: "exim",
        covers: "TA-03",
        checks: &["RESULT", "HOST", "VIA", "ONCE"],
        text: "Exim checks only the MX host name under DANE-TA, not the next-hop domain (RFC 7672 §3.2.2)",
    },
];

/// `Deviation` when every violation is documented for this sender and scenario, else
/// `Violation` (with the documented ones still marked).
pub fn classify(sender: &str, covers: &[String], mut v: Vec<Violation>) -> Verdict {
    for x in v.iter_mut() {
        x.deviation = KNOWN
            .iter()
            .find(|k| {
                k.sender == sender && covers.iter().any(|c| c == k.covers) && k.checks.contains(&x.invariant.as_str())
            })
            .map(|k| format!("{}: {} (CONFORMANCE.md, known deviations)", k.sender, k.text));
    }
    if v.iter().all(|x| x.deviation.is_some()) {
        Verdict::Deviation(v)
    } else {
        Verdict::Violation(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(inv: &str) -> Violation {
        Violation {
            invariant: inv.into(),
            rfc: "RFC 7672".into(),
            detail: "d".into(),
            deviation: None,
        }
    }

    #[test]
    fn only_documented_checks_of_that_sender_are_excused() {
        let covers = vec!["TLSA-U-01".to_string()];
        assert!(matches!(
            classify("exim", &covers, vec![violation("RESULT")]),
            Verdict::Deviation(_)
        ));
        assert!(matches!(
            classify("postfix", &covers, vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
        // A witness invariant is never excused, even beside a documented one.
        assert!(matches!(
            classify("exim", &covers, vec![violation("RESULT"), violation("NOCLEAR")]),
            Verdict::Violation(_)
        ));
        assert!(matches!(
            classify("exim", &["EE-06".to_string()], vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
    }
}
