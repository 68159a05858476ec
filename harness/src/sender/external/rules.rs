//! A profile's outcome rules: how the lines a sender writes (its output, or its log:
//! `log_source`) become an attempt (issue 16). Each rule is a regex over one line and what a
//! match says:
//!
//! - `verified`, `trusted`, `untrusted`: the sender's TLS claim for the peer the line's
//!   `(?P<address>...)` group names (DANE-authenticated, PKIX-authenticated, encrypted only).
//!   Per address, so a sender that authenticated mx1 and then delivered to mx2 without it is
//!   judged per host;
//! - `sent`, `deferred`, `bounced`: the outcome (the last such line wins; on one line the
//!   first such rule), with an optional `(?P<dsn>...)` status code, `(?P<text>...)` words
//!   and `(?P<host>...)`/`(?P<address>...)` of the peer that took it;
//! - `reason`: the sender's words about the peer at `address` (the `(?P<reason>...)` group,
//!   or the whole line);
//! - `ignore` (log rules only): the line is not part of the attempt's story at all.
//!
//! A rule may give `dsn` and `text` literally, for a sender that logs no status code (Exim
//! logs none for a delivery), and `normalize = true` to pass its captured text through the
//! log's normalizations. `${DANESIM_...}` in a pattern is the variable's value, matched
//! literally (regex-escaped).
//!
//! `exit` maps exit statuses to outcomes for what no rule decided (sysexits(3): 75 is
//! EX_TEMPFAIL); without it, 0 claims a delivery and anything else a failure.

use super::{Attempt, Terminal, TlsClaim};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What a matching line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Says {
    Claim(TlsClaim),
    Outcome(Outcome),
    Reason,
    Ignore,
}

/// An outcome a line or an exit status can state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Deferred,
    Bounced,
}

impl Outcome {
    fn terminal(self) -> Terminal {
        match self {
            Outcome::Sent => Terminal::Sent,
            Outcome::Deferred => Terminal::Deferred,
            Outcome::Bounced => Terminal::Bounced,
        }
    }
}

pub const SAYS: [&str; 8] = [
    "verified",
    "trusted",
    "untrusted",
    "sent",
    "deferred",
    "bounced",
    "reason",
    "ignore",
];

impl Says {
    pub fn parse(word: &str) -> Option<Says> {
        Some(match word {
            "verified" => Says::Claim(TlsClaim::Verified),
            "trusted" => Says::Claim(TlsClaim::Trusted),
            "untrusted" => Says::Claim(TlsClaim::Untrusted),
            "sent" => Says::Outcome(Outcome::Sent),
            "deferred" => Says::Outcome(Outcome::Deferred),
            "bounced" => Says::Outcome(Outcome::Bounced),
            "reason" => Says::Reason,
            "ignore" => Says::Ignore,
            _ => return None,
        })
    }

    /// Whether the rule needs an `address` group to mean anything.
    pub fn needs_address(self) -> bool {
        matches!(self, Says::Claim(_) | Says::Reason)
    }
}

/// A rule as the profile states it; its pattern is compiled per attempt, with the
/// attempt's variables.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub pattern: String,
    pub says: Says,
    pub dsn: Option<String>,
    pub text: Option<String>,
    pub normalize: bool,
}

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Regex,
    pub spec: RuleSpec,
}

/// The TOML form of one rule (`[[rule]]`, `[[log.rule]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pattern: toml::Spanned<String>,
    says: toml::Spanned<String>,
    dsn: Option<String>,
    text: Option<String>,
    #[serde(default)]
    normalize: bool,
}

/// A regex no profile can make huge.
pub fn regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern).size_limit(1 << 20).build()
}

/// Checks a profile's rules (their patterns compile with every variable set); `at` names a
/// place in the profile, `ignore` whether the `ignore` word is allowed here.
pub(super) fn load(
    raw: &[toml::Spanned<RawRule>],
    at: &dyn Fn(usize) -> String,
    ignore: bool,
) -> Result<Vec<RuleSpec>, String> {
    let mut out = Vec::new();
    for r in raw {
        let r = r.get_ref();
        let words: Vec<&str> = SAYS.iter().copied().filter(|w| ignore || *w != "ignore").collect();
        let says = Says::parse(r.says.get_ref())
            .filter(|s| ignore || *s != Says::Ignore)
            .ok_or_else(|| {
                format!(
                    "{}: `says = \"{}\"`: one of {}",
                    at(r.says.span().start + 1),
                    r.says.get_ref(),
                    words.join(", ")
                )
            })?;
        let place = at(r.pattern.span().start + 1);
        super::profile::check_placeholders(r.pattern.get_ref(), &place, "`match`")?;
        let pattern = regex(&super::profile::expand_regex(
            r.pattern.get_ref(),
            &super::profile::sample(),
        ))
        .map_err(|e| format!("{place}: `match` is not a regex: {e}"))?;
        if says.needs_address() && !pattern.capture_names().any(|n| n == Some("address")) {
            return Err(format!(
                "{place}: a rule that says `{}` names the peer: give the regex an (?P<address>...) group",
                r.says.get_ref()
            ));
        }
        out.push(RuleSpec {
            pattern: r.pattern.get_ref().clone(),
            says,
            dsn: r.dsn.clone(),
            text: r.text.clone(),
            normalize: r.normalize,
        });
    }
    Ok(out)
}

/// Compiles the rules with this attempt's variables (values matched literally).
pub fn compile(specs: &[RuleSpec], vars: &[(&str, String)]) -> Result<Vec<Rule>, String> {
    specs
        .iter()
        .map(|s| {
            let source = super::profile::expand_regex(&s.pattern, vars);
            regex(&source)
                .map(|pattern| Rule {
                    pattern,
                    spec: s.clone(),
                })
                .map_err(|e| format!("rule `{}`: {e}", s.pattern))
        })
        .collect()
}

/// Exit statuses by outcome; empty: the default (0 sent, anything else deferred).
#[derive(Debug, Clone, Default)]
pub struct ExitMap(pub BTreeMap<i32, Outcome>);

impl ExitMap {
    fn outcome(&self, code: i32) -> Outcome {
        match (self.0.is_empty(), self.0.get(&code)) {
            (_, Some(o)) => *o,
            (true, None) if code == 0 => Outcome::Sent,
            // A status the profile does not list is no claim of delivery.
            _ => Outcome::Deferred,
        }
    }
}

/// An outcome line: the outcome, the sender's words, its status code, the peer that took it.
pub type Decided = (Outcome, String, Option<String>, Option<(String, IpAddr)>);

/// What the rules have read so far, line by line.
#[derive(Debug, Default)]
pub struct Reading {
    pub tls: BTreeMap<IpAddr, TlsClaim>,
    pub reasons: BTreeMap<IpAddr, String>,
    /// The last outcome line: outcome, text, dsn, the peer that took it.
    pub decided: Option<Decided>,
}

impl Reading {
    /// Applies every rule to one line. `line` is what the rules match; `shown` the line as
    /// the trace shows it (a reason or outcome without its own words takes it);
    /// `normalize` what the log does to a captured text. False when an `ignore` rule matches.
    pub fn read(&mut self, rules: &[Rule], line: &str, shown: &str, normalize: &dyn Fn(&str) -> String) -> bool {
        if rules
            .iter()
            .any(|r| r.spec.says == Says::Ignore && r.pattern.is_match(line))
        {
            return false;
        }
        let mut outcome_seen = false;
        for rule in rules {
            let Some(caps) = rule.pattern.captures(line) else {
                continue;
            };
            let address = caps
                .name("address")
                .and_then(|m| m.as_str().trim_matches(['[', ']']).parse::<IpAddr>().ok());
            let words = |group: &str, literal: &Option<String>| -> Option<String> {
                caps.name(group)
                    .map(|m| match rule.spec.normalize {
                        true => normalize(m.as_str()),
                        false => m.as_str().trim().to_string(),
                    })
                    .or_else(|| literal.clone())
            };
            match rule.spec.says {
                Says::Ignore => {}
                Says::Claim(claim) => {
                    if let Some(a) = address {
                        // The strongest claim per peer (Verified < Trusted < Untrusted).
                        let e = self.tls.entry(a).or_insert(claim);
                        *e = (*e).min(claim);
                    }
                }
                Says::Reason => {
                    if let Some(a) = address {
                        let reason = words("reason", &None).unwrap_or_else(|| shown.trim().to_string());
                        self.reasons.insert(a, reason);
                    }
                }
                Says::Outcome(o) if !outcome_seen => {
                    outcome_seen = true;
                    let dsn = words("dsn", &rule.spec.dsn);
                    let text = words("text", &rule.spec.text).unwrap_or_else(|| shown.trim().to_string());
                    let relay = match (caps.name("host"), address) {
                        (Some(h), Some(a)) => Some((h.as_str().to_string(), a)),
                        (None, Some(a)) => Some((a.to_string(), a)),
                        _ => None,
                    };
                    self.decided = Some((o, text, dsn, relay));
                }
                Says::Outcome(_) => {}
            }
        }
        true
    }

    /// The attempt the lines told; `None` when no outcome line was read.
    pub fn attempt(self, log: Vec<String>) -> Option<Attempt> {
        let (outcome, text, dsn, relay) = self.decided?;
        Some(Attempt {
            terminal: outcome.terminal(),
            dsn,
            text,
            relay: relay.filter(|_| outcome == Outcome::Sent),
            tls: self.tls,
            reasons: self.reasons,
            log,
        })
    }
}

/// Applies the rules to a program's output and exit status (a profile without `[log]`).
pub fn attempt(rules: &[Rule], exit: &ExitMap, code: i32, output: &str, program: &str) -> Attempt {
    let mut reading = Reading::default();
    for line in output.lines() {
        reading.read(rules, line, line, &|t| t.trim().to_string());
    }
    let mut log = vec![format!("{program} exited with status {code}")];
    log.extend(output.lines().take(super::command::MAX_LINES).map(str::to_string));
    if reading.decided.is_none() {
        reading.decided = Some((
            exit.outcome(code),
            format!("{program} exited with status {code}"),
            None,
            None,
        ));
    }
    reading.attempt(log).expect("an outcome was set")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rule(pattern: &str, says: &str) -> Rule {
        Rule {
            pattern: Regex::new(pattern).unwrap(),
            spec: RuleSpec {
                pattern: pattern.into(),
                says: Says::parse(says).unwrap(),
                dsn: None,
                text: None,
                normalize: false,
            },
        }
    }

    /// A claim names one peer: authenticating mx1 says nothing about mx2.
    #[test]
    fn claims_are_per_address_and_the_last_outcome_wins() {
        let rules = [
            rule(r"DANE verified \[(?P<address>[^\]]+)\]", "verified"),
            rule(r"TLS without authentication \[(?P<address>[^\]]+)\]", "untrusted"),
            rule(r"^deferred: (?P<reason>.*) \[(?P<address>[^\]]+)\]", "reason"),
            rule(r"^deferred", "deferred"),
            rule(
                r"^delivered to (?P<host>\S+) \[(?P<address>[^\]]+)\] (?P<dsn>\d\.\d\.\d)",
                "sent",
            ),
        ];
        let out = "DANE verified [192.0.2.10]\ndeferred: 421 try later [192.0.2.10]\n\
                   TLS without authentication [192.0.2.20]\ndelivered to mx2.example.test [192.0.2.20] 2.0.0\n";
        let a = attempt(&rules, &ExitMap::default(), 0, out, "mta");
        let (mx1, mx2): (IpAddr, IpAddr) = ("192.0.2.10".parse().unwrap(), "192.0.2.20".parse().unwrap());
        assert_eq!(a.tls.get(&mx1), Some(&TlsClaim::Verified));
        assert_eq!(a.tls.get(&mx2), Some(&TlsClaim::Untrusted));
        assert_eq!(a.reasons.get(&mx1).map(String::as_str), Some("421 try later"));
        assert_eq!(a.terminal, Terminal::Sent);
        assert_eq!(a.dsn.as_deref(), Some("2.0.0"));
        assert_eq!(a.relay, Some(("mx2.example.test".into(), mx2)));
    }

    /// The exit map decides what no line did; an unlisted status is never a delivery.
    #[test]
    fn exit_statuses_map_to_outcomes() {
        let map = ExitMap([(0, Outcome::Sent), (75, Outcome::Deferred), (69, Outcome::Bounced)].into());
        assert_eq!(attempt(&[], &map, 69, "", "mta").terminal, Terminal::Bounced);
        assert_eq!(attempt(&[], &map, 75, "", "mta").terminal, Terminal::Deferred);
        assert_eq!(attempt(&[], &map, 3, "", "mta").terminal, Terminal::Deferred);
        assert_eq!(attempt(&[], &ExitMap::default(), 0, "", "mta").terminal, Terminal::Sent);
        assert_eq!(
            attempt(&[], &ExitMap::default(), 1, "", "mta").terminal,
            Terminal::Deferred
        );
        // A line that says "bounced" outranks the exit status.
        let bounced = [rule(r"^550 ", "bounced")];
        assert_eq!(
            attempt(&bounced, &map, 0, "550 5.1.1 no such user\n", "mta").terminal,
            Terminal::Bounced
        );
    }

    /// On one line the first outcome rule decides; literal dsn and text fill what the line
    /// lacks; an ignored line says nothing.
    #[test]
    fn the_first_outcome_rule_of_a_line_and_literals() {
        let mut sent = rule(r#"^=> \S+ .*C="(?P<text>[^"]*)""#, "sent");
        sent.spec.dsn = Some("2.0.0".into());
        let mut fallback = rule(r"^=> ", "sent");
        fallback.spec.text = Some("delivered".into());
        let rules = [rule("lost privilege", "ignore"), sent, fallback];
        let a = attempt(&rules, &ExitMap::default(), 1, "=> u@x C=\"250 ok\"\n", "mta");
        assert_eq!(
            (a.terminal, a.dsn.as_deref(), a.text.as_str()),
            (Terminal::Sent, Some("2.0.0"), "250 ok")
        );
        let a = attempt(&rules, &ExitMap::default(), 1, "=> u@x\n", "mta");
        assert_eq!((a.dsn, a.text.as_str()), (None, "delivered"));
        let a = attempt(&rules, &ExitMap::default(), 1, "=> lost privilege\n", "mta");
        assert_eq!(a.terminal, Terminal::Deferred, "an ignored line decides nothing");
    }
}
