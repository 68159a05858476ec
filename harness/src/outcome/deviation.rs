//! Classified deviations (docs/CONFORMANCE.md, "Known deviations"): behaviour of a named
//! component that the matrix expects and reports as that component's, not as a harness
//! failure and not as a new finding.
//!
//! An entry names the component at fault (the MTA, the validating resolver behind every real
//! sender, or the reference sender's own libraries), the RFC sentence it departs from, and its
//! evidence: patterns that must match what the sender or the resolver actually logged in this
//! run. A deviation applies only when all of its evidence is there; a failure whose cause was
//! not seen stays a violation. Only failed expectations can be excused: the witness
//! invariants (NOCLEAR, DANE-MATCH, REPORT) never are, whatever an entry lists.

use super::verdict::{Verdict, Violation};
use crate::sender::SenderReport;
use crate::vocab::ResultCode;
use crate::witness::Observations;
use regex::Regex;

/// Where deviation lines point; `docs/CONFORMANCE.md` has one `### id` heading per entry.
pub const CATALOGUE: &str = "docs/CONFORMANCE.md";
pub const SECTION: &str = "Known deviations";

/// What the receiving side and the harness's own resolver witness: a deviation entry may not
/// excuse these (DESIGN.md, "the receiving side is the impartial witness").
const NEVER_EXCUSED: [&str; 3] = ["NOCLEAR", "DANE-MATCH", "REPORT"];

/// The part of the system whose behaviour departs from the RFC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The MTA under test (postfix, exim).
    Mta(&'static str),
    /// The validating resolver in front of every real sender (unbound in namespace mode).
    Resolver(&'static str),
    /// A library the reference sender is built on.
    Reference(&'static str),
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Component::Mta(m) => write!(f, "MTA {m}"),
            Component::Resolver(r) => write!(f, "resolver {r}"),
            Component::Reference(r) => write!(f, "reference sender ({r})"),
        }
    }
}

/// Whose log a clue is looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The sender's log lines for the attempt (external senders) or its decision trace
    /// (reference sender), its status line and its per-host reasons.
    Sender,
    /// What unbound logged during the attempt (namespace mode only).
    Resolver,
}

/// One piece of evidence: a regular expression that must match one line of `source`. A
/// clue may capture `(?P<name>...)`; a later clue's `{name}` stands for that capture
/// (escaped), so that two logs are tied to the same DNS name.
#[derive(Debug, Clone, Copy)]
pub struct Clue {
    pub source: Source,
    pub pattern: &'static str,
}

/// Which scenarios an entry is about.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Scenarios that cover this catalogue id.
    Covers(&'static str),
    /// This one scenario.
    Scenario(&'static str),
    /// Any scenario, where the evidence is seen.
    Any,
}

#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// The `### id` heading in docs/CONFORMANCE.md.
    pub id: &'static str,
    pub component: Component,
    /// The sender runs this applies to; empty: any sender (a resolver's deviation reaches every
    /// sender behind it, and the resolver-log evidence exists only there).
    pub senders: &'static [&'static str],
    pub scope: Scope,
    /// What the sender reports when the deviation strikes.
    pub result: ResultCode,
    /// The checks it explains.
    pub checks: &'static [&'static str],
    pub evidence: &'static [Clue],
    /// What the component does, in a few words.
    pub behaviour: &'static str,
    /// The RFC section it departs from, and what that section says.
    pub rfc: &'static str,
    pub sentence: &'static str,
    /// Where the entry is written down: [`CATALOGUE`] (its `### id` heading), or the sender
    /// profile that declares it (`[[deviation]]`).
    pub documented: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known {
        id: "unbound-dname-ds",
        component: Component::Resolver("unbound 1.17"),
        senders: &[],
        scope: Scope::Any,
        result: ResultCode::Defer,
        checks: &["RESULT", "HOST", "VIA", "ONCE"],
        evidence: &[
            Clue {
                source: Source::Resolver,
                pattern: r"validation failure <(?P<name>[^ >]+)\. CNAME IN>: DS got DNAME answer",
            },
            Clue {
                source: Source::Sender,
                pattern: r"(?i)(lookup error|try again|servfail).*\b{name}\b|\b{name}\b.*(lookup error|try again|servfail)",
            },
        ],
        behaviour: "unbound fails a CNAME query below a secure DNAME into an unsigned zone, so the sender's lookup \
                    fails and it defers",
        rfc: "RFC 7672 §2.1.3",
        sentence: "\"DNAME records only require special processing in the validating \
                       stub-resolver library that checks the integrity of the combined DNAME + CNAME reply\" (the \
                       synthesized CNAME is as secure as its DNAME, RFC 6672 §5.3)",
        documented: CATALOGUE,
    },
    Known {
        id: "reference-webpki-ca-leaf",
        component: Component::Reference("rustls-webpki 0.103"),
        senders: &["reference", "exchange-online"],
        scope: Scope::Covers("TA-14"),
        result: ResultCode::Defer,
        checks: &["RESULT", "HOST", "VIA", "ONCE"],
        evidence: &[Clue {
            source: Source::Sender,
            pattern: r"the leaf has basicConstraints cA=TRUE",
        }],
        behaviour: "webpki refuses any leaf with basicConstraints cA=TRUE (CaUsedAsEndEntity), so the reference \
                    sender cannot authenticate such a server",
        rfc: "RFC 5280 §6.1.4",
        sentence: "step (k) asks cA=TRUE only of the certificates that issue the next one in the path, \
                   not of the leaf, and RFC 7671/7672 add no such rule: a DANE-TA path that otherwise validates \
                   authenticates the server (RFC 7672 §3.1.2)",
        documented: CATALOGUE,
    },
];

/// The lines each source offers as evidence for one attempt.
pub struct Evidence<'a> {
    pub sender: Vec<&'a str>,
    pub resolver: Vec<&'a str>,
}

impl<'a> Evidence<'a> {
    pub fn of(report: &'a SenderReport, obs: &'a Observations) -> Evidence<'a> {
        let mut sender: Vec<&str> = report.trace.iter().map(|t| t.text.as_str()).collect();
        sender.push(&report.status);
        sender.extend(report.hosts.iter().map(|h| h.reason.as_str()));
        Evidence {
            sender,
            resolver: obs.resolver_log.iter().map(String::as_str).collect(),
        }
    }

    fn lines(&self, source: Source) -> &[&'a str] {
        match source {
            Source::Sender => &self.sender,
            Source::Resolver => &self.resolver,
        }
    }
}

/// The run being classified.
pub struct Run<'a> {
    pub sender: &'a str,
    pub scenario: &'a str,
    pub covers: &'a [String],
    pub result: ResultCode,
}

impl Known {
    fn in_scope(&self, run: &Run<'_>) -> bool {
        (self.senders.is_empty() || self.senders.contains(&run.sender))
            && self.result == run.result
            && match self.scope {
                Scope::Covers(c) => run.covers.iter().any(|x| x == c),
                Scope::Scenario(id) => id == run.scenario,
                Scope::Any => true,
            }
    }

    /// The matched lines, one per clue, when every clue matches; None otherwise.
    pub fn evidence_in(&self, ev: &Evidence<'_>) -> Option<Vec<(Source, String)>> {
        let mut name: Option<String> = None;
        let mut found = Vec::new();
        for clue in self.evidence {
            let pattern = match &name {
                Some(n) => clue.pattern.replace("{name}", &regex::escape(n)),
                // A clue that needs a capture no earlier clue made cannot match.
                None if clue.pattern.contains("{name}") => return None,
                None => clue.pattern.to_string(),
            };
            let re = Regex::new(&pattern).expect("deviation patterns are fixed and tested (every_pattern_compiles)");
            let (line, caps) = ev
                .lines(clue.source)
                .iter()
                .find_map(|l| re.captures(l).map(|c| (*l, c)))?;
            if let Some(m) = caps.name("name") {
                name = Some(m.as_str().to_string());
            }
            let matched = caps.get(0).map_or(line, |m| m.as_str());
            found.push((clue.source, quote(matched)));
        }
        Some(found)
    }

    /// One line for the outcome: component, behaviour, the evidence seen, the RFC and the citation.
    fn describe(&self, found: &[(Source, String)]) -> String {
        let seen: Vec<String> = found
            .iter()
            .map(|(s, l)| {
                let who = match s {
                    Source::Sender => "the sender logged",
                    Source::Resolver => "the resolver logged",
                };
                format!("{who} {l:?}")
            })
            .collect();
        let cited = match self.documented {
            CATALOGUE => format!("{CATALOGUE}, \"{SECTION}\", {}", self.id),
            profile => format!("{profile}, [[deviation]] {}", self.id),
        };
        format!(
            "{}: {}; evidence: {}; departs from {}: {} ({cited})",
            self.component,
            self.behaviour,
            seen.join("; "),
            self.rfc,
            self.sentence,
        )
    }
}

/// What a clue matched, short enough to quote on a report line: long matches keep their ends.
fn quote(matched: &str) -> String {
    const KEEP: usize = 48;
    let chars: Vec<char> = matched.chars().collect();
    if chars.len() <= 2 * KEEP + 5 {
        return matched.to_string();
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head} ... {tail}")
}

/// The deviations sender profiles declared (`[[deviation]]`), for this process: a profile is
/// loaded where its run is judged.
static DECLARED: std::sync::Mutex<Vec<Known>> = std::sync::Mutex::new(Vec::new());

/// Adds a profile's declared deviations (an id already declared is kept once).
pub fn declare(entries: &[Known]) {
    let mut d = DECLARED.lock().unwrap_or_else(|e| e.into_inner());
    for k in entries {
        if !d.iter().any(|x| x.id == k.id) {
            d.push(*k);
        }
    }
}

/// `Deviation` when every violation is excused by an entry whose evidence this run shows,
/// else `Violation` (with the excused ones still marked). The entries are the catalogue's
/// and those the sender's profile declared.
pub fn classify(run: &Run<'_>, ev: &Evidence<'_>, v: Vec<Violation>) -> Verdict {
    let mut table: Vec<Known> = KNOWN.to_vec();
    table.extend(DECLARED.lock().unwrap_or_else(|e| e.into_inner()).iter().copied());
    classify_with(&table, run, ev, v)
}

fn classify_with(table: &[Known], run: &Run<'_>, ev: &Evidence<'_>, mut v: Vec<Violation>) -> Verdict {
    let applying: Vec<(&Known, String)> = table
        .iter()
        .filter(|k| k.in_scope(run))
        .filter_map(|k| k.evidence_in(ev).map(|found| (k, k.describe(&found))))
        .collect();
    for x in v.iter_mut() {
        if NEVER_EXCUSED.contains(&x.invariant.as_str()) {
            continue;
        }
        x.deviation = applying
            .iter()
            .find(|(k, _)| k.checks.contains(&x.invariant.as_str()))
            .map(|(_, text)| text.clone());
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

    /// The catalogue's entries and those the shipped sender profiles declare (Exim's).
    fn table() -> Vec<Known> {
        let mut t = KNOWN.to_vec();
        for entry in std::fs::read_dir(crate::sender::SHIPPED).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                t.extend(crate::sender::external::profile::load(&path).unwrap().deviations);
            }
        }
        t
    }

    fn classify(run: &Run<'_>, ev: &Evidence<'_>, v: Vec<Violation>) -> Verdict {
        classify_with(&table(), run, ev, v)
    }

    fn violation(inv: &str) -> Violation {
        Violation {
            invariant: inv.into(),
            rfc: "RFC 7672".into(),
            detail: "d".into(),
            deviation: None,
        }
    }

    fn run<'a>(sender: &'a str, scenario: &'a str, covers: &'a [String], result: ResultCode) -> Run<'a> {
        Run {
            sender,
            scenario,
            covers,
            result,
        }
    }

    fn ev<'a>(sender: &[&'a str], resolver: &[&'a str]) -> Evidence<'a> {
        Evidence {
            sender: sender.to_vec(),
            resolver: resolver.to_vec(),
        }
    }

    const EXIM_TA03: &str = "== user@example.test R=dnslookup T=remote_smtp defer (-37) H=mx1.example.test DS \
                             [192.0.2.10]:25 TLS session (certificate verification failed) certificate invalid";
    const POSTFIX_CNAME: &str = "postfix/smtp: warning: DNSSEC status lookup error for mx1.mail.example.test: Host \
                                 or domain name not found. Name service error for name=mx1.mail.example.test \
                                 type=CNAME: Host not found, try again";
    const UNBOUND_DNAME: &str = "unbound: info: validation failure <mx1.mail.example.test. CNAME IN>: DS got DNAME \
                                 answer from 127.0.0.2 and 127.0.0.2 for DS mx1.mail.example.test. while building \
                                 chain of trust";
    const EXIM_CV_DANE: &str = "=> user@example.test P=<sender@client.test> R=dnslookup T=remote_smtp \
                                H=mx1.example.test DS [192.0.2.10]:25 X=TLS1.3:ECDHE_SECP256R1__EdDSA_Ed25519__AES_256_GCM:256 \
                                CV=dane DN=\"O=danesim test PKI,OU=mx1\" C=\"250 2.0.0 Ok queued as 1\"";

    #[test]
    fn every_pattern_compiles() {
        for k in table() {
            for c in k.evidence {
                let p = c.pattern.replace("{name}", "x");
                assert!(Regex::new(&p).is_ok(), "{}: {}", k.id, c.pattern);
            }
        }
    }

    /// The citation exists: every entry has its own heading in docs/CONFORMANCE.md, and the
    /// catalogue lists its component and the section it departs from.
    #[test]
    fn every_entry_is_in_the_catalogue() {
        let doc = include_str!("../../../docs/CONFORMANCE.md");
        assert!(doc.contains(&format!("## {SECTION}")), "no section {SECTION:?}");
        let section = doc.split(&format!("## {SECTION}")).nth(1).expect("checked above");
        for k in table().into_iter().filter(|k| k.documented == CATALOGUE) {
            let heading = format!("### {}\n", k.id);
            let body = section
                .split(&heading)
                .nth(1)
                .unwrap_or_else(|| panic!("docs/CONFORMANCE.md has no `### {}` under {SECTION:?}", k.id));
            let body = body.split("\n### ").next().unwrap_or(body);
            assert!(
                body.contains(k.rfc),
                "{}: the catalogue entry does not cite {}",
                k.id,
                k.rfc
            );
            let component = match k.component {
                Component::Mta(m) | Component::Resolver(m) | Component::Reference(m) => m,
            };
            assert!(
                body.to_lowercase().contains(&component.to_lowercase()),
                "{}: the catalogue entry does not name {component}",
                k.id
            );
            for c in k.evidence {
                assert!(
                    body.contains(c.pattern),
                    "{}: the catalogue entry does not show the pattern {}",
                    k.id,
                    c.pattern
                );
            }
        }
        // Ids are unique, so a citation names one entry.
        let all = table();
        assert!(all.len() > KNOWN.len(), "the Exim profile declares its deviations");
        let mut ids: Vec<&str> = all.iter().map(|k| k.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
    }

    #[test]
    fn a_deviation_applies_with_its_evidence_and_cites_the_catalogue() {
        let covers = vec!["TA-03".to_string()];
        let r = run("exim", "ta-03-name-is-next-hop-domain", &covers, ResultCode::Defer);
        let Verdict::Deviation(vs) = classify(&r, &ev(&[EXIM_TA03], &[]), vec![violation("RESULT")]) else {
            panic!("expected a deviation");
        };
        let d = vs[0].deviation.as_deref().expect("marked");
        assert!(d.starts_with("MTA exim: "), "{d}");
        assert!(d.contains("certificate verification failed"), "{d}");
        assert!(d.contains("RFC 7672 §3.2.2"), "{d}");
        assert!(
            d.ends_with("(docs/CONFORMANCE.md, \"Known deviations\", exim-ta-mx-host-name-only)"),
            "{d}"
        );
    }

    #[test]
    fn without_its_evidence_a_deviation_does_not_apply() {
        let covers = vec!["TA-03".to_string()];
        let r = run("exim", "ta-03-name-is-next-hop-domain", &covers, ResultCode::Defer);
        // Exim deferred for another reason: a failure whose cause was not seen is not excused.
        let other = "== user@example.test R=dnslookup T=remote_smtp defer (-53): retry time not reached";
        assert!(matches!(
            classify(&r, &ev(&[other], &[]), vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
        // The resolver's deviation needs the resolver's own line ...
        let r = run("postfix", "dname-into-unsigned-zone", &[], ResultCode::Defer);
        assert!(matches!(
            classify(&r, &ev(&[POSTFIX_CNAME], &[]), vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
        // ... and the sender's failed lookup of that very name.
        let elsewhere = POSTFIX_CNAME.replace("mx1.mail.example.test", "mx2.example.test");
        assert!(matches!(
            classify(&r, &ev(&[&elsewhere], &[UNBOUND_DNAME]), vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
        assert!(matches!(
            classify(
                &r,
                &ev(&[POSTFIX_CNAME], &[UNBOUND_DNAME]),
                vec![violation("RESULT"), violation("ONCE")]
            ),
            Verdict::Deviation(_)
        ));
        // The Exim path-length entry needs Exim's CV=dane line.
        let covers = vec!["TA-13".to_string()];
        let r = run("exim", "ta-13-path-length", &covers, ResultCode::Auth);
        assert!(matches!(
            classify(
                &r,
                &ev(&[&EXIM_CV_DANE.replace("CV=dane", "CV=no")], &[]),
                vec![violation("RESULT")]
            ),
            Verdict::Violation(_)
        ));
        assert!(matches!(
            classify(
                &r,
                &ev(&[EXIM_CV_DANE], &[]),
                vec![violation("RESULT"), violation("NOAUTH-LOG")]
            ),
            Verdict::Deviation(_)
        ));
    }

    #[test]
    fn only_that_sender_scenario_and_result_are_excused() {
        let covers = vec!["TA-03".to_string()];
        let e = ev(&[EXIM_TA03], &[]);
        for r in [
            run("postfix", "x", &covers, ResultCode::Defer),
            run("exim", "x", &["EE-06".to_string()], ResultCode::Defer),
            // Exim delivering where it should not is not this deviation.
            run("exim", "x", &covers, ResultCode::Opp),
        ] {
            assert!(matches!(
                classify(&r, &e, vec![violation("RESULT")]),
                Verdict::Violation(_)
            ));
        }
        // The path-length entry is about its one scenario, not every TA-13 case.
        let covers = vec!["TA-13".to_string()];
        let r = run("exim", "ta-13-name-constraints", &covers, ResultCode::Auth);
        assert!(matches!(
            classify(&r, &ev(&[EXIM_CV_DANE], &[]), vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
    }

    #[test]
    fn witness_invariants_are_never_excused() {
        let covers = vec!["TA-03".to_string()];
        let r = run("exim", "x", &covers, ResultCode::Defer);
        let e = ev(&[EXIM_TA03], &[]);
        assert!(matches!(
            classify(&r, &e, vec![violation("RESULT"), violation("NOCLEAR")]),
            Verdict::Violation(_)
        ));
        // Not even by an entry that lists them.
        let exim = table()
            .into_iter()
            .find(|k| k.id == "exim-ta-mx-host-name-only")
            .unwrap();
        let greedy = [Known {
            checks: &["NOCLEAR", "DANE-MATCH", "REPORT", "RESULT"],
            ..exim
        }];
        // It would excuse RESULT: the entry applies here, so what follows is no vacuous pass.
        assert!(matches!(
            classify_with(&greedy, &r, &e, vec![violation("RESULT")]),
            Verdict::Deviation(_)
        ));
        for inv in NEVER_EXCUSED {
            let Verdict::Violation(vs) = classify_with(&greedy, &r, &e, vec![violation(inv)]) else {
                panic!("{inv} was excused");
            };
            assert!(vs[0].deviation.is_none());
        }
    }

    /// A profile's own entry cites the profile, and joins the table once declared.
    #[test]
    fn a_profile_declares_a_deviation_of_its_own() {
        let dir = std::env::temp_dir().join(format!("danesim-deviation-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("only-3-1-1.toml");
        std::fs::write(
            &path,
            "command = [\"x\"]\n[[deviation]]\nid = \"only-3-1-1\"\ncovers = \"TLSA-U-06\"\nresult = \"DEFER\"\n\
             checks = [\"RESULT\"]\nevidence = ['no usable TLSA']\nbehaviour = \"only TLSA 3 1 1\"\n\
             rfc = \"RFC 7672 §3.1\"\nsentence = \"\\\"SHOULD support\\\"\"\n",
        )
        .unwrap();
        let p = crate::sender::external::profile::load(&path).unwrap();
        let covers = vec!["TLSA-U-06".to_string()];
        let r = run("only-3-1-1", "tlsa-u-06-full-cert", &covers, ResultCode::Defer);
        let e = ev(&["deferred: no usable TLSA"], &[]);
        assert!(
            matches!(
                super::classify(&r, &e, vec![violation("RESULT")]),
                Verdict::Violation(_)
            ),
            "not declared yet"
        );
        declare(&p.deviations);
        let Verdict::Deviation(vs) = super::classify(&r, &e, vec![violation("RESULT")]) else {
            panic!("declared, with its evidence");
        };
        let d = vs[0].deviation.as_deref().unwrap();
        assert!(d.starts_with("MTA only-3-1-1: only TLSA 3 1 1"), "{d}");
        assert!(
            d.ends_with(&format!("({}, [[deviation]] only-3-1-1)", path.display())),
            "{d}"
        );
        // Without its evidence it is a violation still.
        assert!(matches!(
            super::classify(&r, &ev(&["other"], &[]), vec![violation("RESULT")]),
            Verdict::Violation(_)
        ));
        // Bad entries are refused with a place.
        std::fs::write(&path, "command = [\"x\"]\n[[deviation]]\nid = \"a\"\nresult = \"MAYBE\"\nchecks = [\"RESULT\"]\nevidence = ['x']\nbehaviour = \"b\"\nrfc = \"r\"\nsentence = \"s\"\n").unwrap();
        let err = crate::sender::external::profile::load(&path).unwrap_err();
        assert!(err.contains(":4:11: `result = \"MAYBE\"`"), "{err}");
        std::fs::write(&path, "command = [\"x\"]\n[[deviation]]\nid = \"a\"\nresult = \"DEFER\"\nchecks = [\"RESULT\"]\nevidence = []\nbehaviour = \"b\"\nrfc = \"r\"\nsentence = \"s\"\n").unwrap();
        let err = crate::sender::external::profile::load(&path).unwrap_err();
        assert!(err.contains("at least one `evidence`"), "{err}");
    }
}
