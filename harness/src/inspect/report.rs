//! The `check` report: sections of marked lines in the style of Viktor Dukhovni's danecheck
//! (one block per MX host, `[ok]`/`[fail]` markers, a summary), and its plain-text form.
//!
//! The text is deterministic for a given zone, certificate set and `--now`: hosts come in
//! MX order, records in file order, and nothing reads the clock here.

use std::fmt::Write as _;

/// How a line judges what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    Ok,
    /// Mail to the domain fails or is deferred because of this: the check exits 1.
    Fail,
    /// Works today, but is a risk or departs from the RFCs' advice.
    Warn,
    Info,
}

impl Mark {
    fn label(self) -> &'static str {
        match self {
            Mark::Ok => "[ok]",
            Mark::Fail => "[fail]",
            Mark::Warn => "[warn]",
            Mark::Info => "[info]",
        }
    }
}

/// One line of a section: nesting depth, an optional mark, the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub depth: usize,
    pub mark: Option<Mark>,
    pub text: String,
}

/// A titled block of lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub lines: Vec<Line>,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            lines: Vec::new(),
        }
    }

    /// A marked line at the top level of the section.
    pub fn mark(&mut self, mark: Mark, text: impl Into<String>) {
        self.at(0, Some(mark), text);
    }

    /// An unmarked line (a listing).
    pub fn plain(&mut self, depth: usize, text: impl Into<String>) {
        self.at(depth, None, text);
    }

    pub fn at(&mut self, depth: usize, mark: Option<Mark>, text: impl Into<String>) {
        self.lines.push(Line {
            depth,
            mark,
            text: text.into(),
        });
    }

    pub fn count(&self, mark: Mark) -> usize {
        self.lines.iter().filter(|l| l.mark == Some(mark)).count()
    }
}

/// What the check concluded about one MX host, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostStatus {
    /// A usable TLSA record authenticates the given certificate chain.
    Authenticated,
    /// TLSA records exist and the given chain fails them (or the lookup itself fails).
    Failed,
    /// TLSA records exist but no certificate was given, or they live outside this file.
    NotChecked,
    /// No TLSA RRset: DANE does not apply to this host.
    NoTlsa,
    /// Only unusable TLSA records (RFC 7672 §2.2, §3.1.3).
    NoUsableTlsa,
    /// The host is not in this zone file.
    Outside,
    /// A null MX (RFC 7505).
    NullMx,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub header: String,
    pub sections: Vec<Section>,
    /// Host name and status, in MX order.
    pub hosts: Vec<(String, HostStatus)>,
}

impl Report {
    /// Whether any line is `[fail]`: the check exits 1.
    pub fn failed(&self) -> bool {
        self.sections.iter().any(|s| s.count(Mark::Fail) > 0)
    }

    pub fn warnings(&self) -> usize {
        self.sections.iter().map(|s| s.count(Mark::Warn)).sum()
    }

    /// The plain-text report, ending in a summary and `Result: PASS` or `Result: FAIL`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.header);
        out.push('\n');
        for s in &self.sections {
            out.push('\n');
            out.push_str(&s.title);
            out.push('\n');
            for l in &s.lines {
                let indent = "  ".repeat(l.depth + 1);
                match l.mark {
                    Some(m) => writeln!(out, "{indent}{:<6} {}", m.label(), l.text),
                    None => writeln!(out, "{indent}{}", l.text),
                }
                .expect("writing to a String cannot fail");
            }
        }
        out.push('\n');
        out.push_str(&self.summary());
        out.push('\n');
        out.push_str(if self.failed() {
            "Result: FAIL\n"
        } else {
            "Result: PASS\n"
        });
        out
    }

    fn summary(&self) -> String {
        let n = |st: HostStatus| self.hosts.iter().filter(|(_, s)| *s == st).count();
        let mut parts = vec![
            format!("{} authenticated", n(HostStatus::Authenticated)),
            format!("{} failed", n(HostStatus::Failed)),
        ];
        for (st, what) in [
            (HostStatus::NotChecked, "not checked"),
            (HostStatus::Outside, "outside this zone"),
            (HostStatus::NoUsableTlsa, "without usable TLSA"),
            (HostStatus::NoTlsa, "without TLSA"),
            (HostStatus::NullMx, "null MX"),
        ] {
            if n(st) > 0 {
                parts.push(format!("{} {what}", n(st)));
            }
        }
        format!(
            "Summary: {} MX host(s): {}; {} warning(s)",
            self.hosts.len(),
            parts.join(", "),
            self.warnings()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_marks_depths_and_the_result() {
        let mut s = Section::new("mx.example.com. (MX 10)");
        s.plain(1, "3 1 1 AB");
        s.at(2, Some(Mark::Ok), "matches the leaf");
        s.mark(Mark::Fail, "stale");
        let r = Report {
            header: "danesim check".into(),
            sections: vec![s],
            hosts: vec![("mx.example.com.".into(), HostStatus::Failed)],
        };
        assert!(r.failed());
        assert_eq!(
            r.render(),
            "danesim check\n\nmx.example.com. (MX 10)\n    3 1 1 AB\n      [ok]   matches the leaf\n  [fail] stale\n\n\
             Summary: 1 MX host(s): 0 authenticated, 1 failed; 0 warning(s)\nResult: FAIL\n"
        );
    }
}
