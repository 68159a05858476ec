//! Enhanced status codes (RFC 3463): the patterns an expectation states (`status = "4.7.5"`,
//! `"5.7.x"`), where a report carries its code, and the STATUS and HOST-STATUS checks.
//!
//! RFC 3463 §2: `class "." subject "." detail`, class 2 (success), 4 (persistent transient
//! failure) or 5 (permanent failure), subject and detail 1 to 3 digits.

use crate::outcome::Violation;
use crate::scenario::Scenario;
use crate::sender::SenderReport;
use crate::vocab::ResultCode;

/// An expected code: each part a number, or `x` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPattern {
    parts: [Option<u16>; 3],
}

impl StatusPattern {
    /// `4.7.5`, `5.7.x`, `4.x.x`; the class is 2, 4 or 5 (or x), subject and detail 1 to 3 digits.
    pub fn parse(s: &str) -> Result<StatusPattern, String> {
        let bad = || {
            format!(
                "`{s}` is no enhanced status code: class.subject.detail, e.g. \"4.7.5\", or with x for any part, \"5.7.x\" (RFC 3463 §2)"
            )
        };
        let fields: Vec<&str> = s.split('.').collect();
        if fields.len() != 3 {
            return Err(bad());
        }
        let mut parts = [None; 3];
        for (i, f) in fields.iter().enumerate() {
            parts[i] = match *f {
                "x" | "X" => None,
                f if (1..=3).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(f.parse().map_err(|_| bad())?)
                }
                _ => return Err(bad()),
            };
        }
        if let Some(c) = parts[0]
            && ![2, 4, 5].contains(&c)
        {
            return Err(format!(
                "class {c} in `{s}`: the class is 2 (success), 4 (transient) or 5 (permanent), RFC 3463 §3.1"
            ));
        }
        Ok(StatusPattern { parts })
    }

    /// The class the pattern demands, if it names one.
    pub fn class(&self) -> Option<u16> {
        self.parts[0]
    }

    pub fn matches(&self, code: &str) -> bool {
        parse_code(code).is_some_and(|c| self.parts.iter().zip(c).all(|(p, c)| p.is_none_or(|p| p == c)))
    }

    /// The class a result's status has: 2 for a delivery, 4 for DEFER, 5 for BOUNCE.
    pub fn class_of(result: ResultCode) -> u16 {
        match result {
            ResultCode::Defer => 4,
            ResultCode::Bounce => 5,
            _ => 2,
        }
    }
}

impl std::fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p: Vec<String> = self
            .parts
            .iter()
            .map(|p| p.map_or("x".to_string(), |n| n.to_string()))
            .collect();
        write!(f, "{}", p.join("."))
    }
}

/// A whole code (no `x`), as numbers.
fn parse_code(s: &str) -> Option<[u16; 3]> {
    let mut out = [0; 3];
    let mut it = s.split('.');
    for slot in &mut out {
        let f = it.next()?;
        if !(1..=3).contains(&f.len()) || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = f.parse().ok()?;
    }
    (it.next().is_none() && [2, 4, 5].contains(&out[0])).then_some(out)
}

/// The code a sender's words carry: `dsn=X` (Postfix's field) first, else the first word that
/// is a whole code (the reference sender's status starts with one; Exim quotes the server's
/// reply, `... 421 4.3.2 Service not available`). Addresses and numbers are not codes.
pub fn code_in(text: &str) -> Option<String> {
    let words = || {
        text.split(|c: char| c.is_whitespace() || "(),;<>[]".contains(c))
            .map(|w| w.trim_end_matches([':', '.']))
    };
    words()
        .filter_map(|w| w.strip_prefix("dsn="))
        .chain(words())
        .find(|w| parse_code(w).is_some())
        .map(str::to_string)
}

/// STATUS and HOST-STATUS: the codes the scenario expects against those the sender reported.
pub fn judge(s: &Scenario, report: &SenderReport) -> Vec<Violation> {
    let rfc = "RFC 3463 §2";
    let mut v = Vec::new();
    let mut push = |inv: &str, detail: String| v.push(Violation::new(inv, rfc, detail));
    if let Some(want) = &s.expect.status {
        match code_in(&report.status) {
            Some(got) if want.matches(&got) => {}
            Some(got) => push(
                "STATUS",
                format!("expected status {want}, the sender reported {got} ({})", report.status),
            ),
            None => push(
                "STATUS",
                format!(
                    "expected status {want}, the sender's report carries no status code ({})",
                    report.status
                ),
            ),
        }
    }
    for (host, want) in &s.expect.host_status {
        let Some(h) = report.hosts.iter().find(|h| &h.host == host) else {
            push(
                "HOST-STATUS",
                format!("{host}: expected status {want}, but the sender never considered it"),
            );
            continue;
        };
        match &h.status {
            Some(got) if want.matches(got) => {}
            Some(got) => push(
                "HOST-STATUS",
                format!("{host}: expected status {want}, got {got} ({})", h.reason),
            ),
            None => push(
                "HOST-STATUS",
                format!(
                    "{host}: expected status {want}, the sender gave no status code for it ({})",
                    h.reason
                ),
            ),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_match_and_bad_ones_say_why() {
        let p = StatusPattern::parse("5.7.x").unwrap();
        assert!(p.matches("5.7.1") && p.matches("5.7.325") && !p.matches("5.1.1") && !p.matches("4.7.1"));
        assert!(StatusPattern::parse("4.7.5").unwrap().matches("4.7.5"));
        assert!(!StatusPattern::parse("4.7.5").unwrap().matches("4.7.50"));
        assert!(StatusPattern::parse("x.x.x").unwrap().matches("2.0.0"));
        assert_eq!(StatusPattern::parse("4.X.x").unwrap().to_string(), "4.x.x");
        for bad in ["4.7", "4.7.5.1", "4..5", "4.7.1000", "4.7.y", "", "4.7.-1"] {
            assert!(StatusPattern::parse(bad).unwrap_err().contains("RFC 3463 §2"), "{bad}");
        }
        assert!(StatusPattern::parse("3.0.0").unwrap_err().contains("class 3"));
    }

    #[test]
    fn codes_are_found_in_each_senders_words() {
        assert_eq!(
            code_in("4.7.5 mx1.example.test.: TLSA lookup failed").as_deref(),
            Some("4.7.5")
        );
        assert_eq!(
            code_in("to=<u@example.test>, relay=mx1.example.test[192.0.2.10]:25, dsn=4.3.2, status=deferred (host said: 421 4.3.2 Busy)")
                .as_deref(),
            Some("4.3.2")
        );
        assert_eq!(
            code_in("H=mx1.example.test [192.0.2.10]: SMTP error from remote mail server after RCPT TO:<u@example.test>: 550 5.1.1 User unknown")
                .as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            code_in("defer (-37) H=mx1 [192.0.2.10]:25 TLS session (certificate verification failed)"),
            None
        );
        assert_eq!(code_in("4.3.2.1 is an address"), None);
        assert_eq!(code_in("see RFC 7672 §2.2."), None);
    }
}
