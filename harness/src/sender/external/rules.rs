//! A profile's outcome rules: how a program's output and exit status become an attempt
//! (issue 16). Each `[[rule]]` is a regex over one output line and what a match says:
//!
//! - `verified`, `trusted`, `untrusted`: the program's TLS claim for the peer the line's
//!   `(?P<address>...)` group names (DANE-authenticated, PKIX-authenticated, encrypted only).
//!   Per address, so a sender that authenticated mx1 and then delivered to mx2 without it is
//!   judged per host;
//! - `sent`, `deferred`, `bounced`: the outcome (the last such line wins), with an optional
//!   `(?P<dsn>...)` status code and `(?P<host>...)`/`(?P<address>...)` of the peer that took it;
//! - `reason`: the program's words about the peer at `address` (the `(?P<reason>...)` group,
//!   or the whole line).
//!
//! `exit` maps exit statuses to outcomes for what no rule decided (sysexits(3): 75 is
//! EX_TEMPFAIL); without it, 0 claims a delivery and anything else a failure.

use super::{Attempt, Terminal, TlsClaim};
use regex::Regex;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What a matching line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Says {
    Claim(TlsClaim),
    Outcome(Outcome),
    Reason,
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

pub const SAYS: [&str; 7] = [
    "verified",
    "trusted",
    "untrusted",
    "sent",
    "deferred",
    "bounced",
    "reason",
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
            _ => return None,
        })
    }

    /// Whether the rule needs an `address` group to mean anything.
    pub fn needs_address(self) -> bool {
        matches!(self, Says::Claim(_) | Says::Reason)
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Regex,
    pub says: Says,
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

/// Applies the rules to the program's output and exit status.
pub fn attempt(rules: &[Rule], exit: &ExitMap, code: i32, output: &str, program: &str) -> Attempt {
    let mut tls: BTreeMap<IpAddr, TlsClaim> = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    let mut decided: Option<(Outcome, String, Option<String>, Option<(String, IpAddr)>)> = None;
    for line in output.lines() {
        for rule in rules {
            let Some(caps) = rule.pattern.captures(line) else {
                continue;
            };
            let address = caps
                .name("address")
                .and_then(|m| m.as_str().trim_matches(['[', ']']).parse::<IpAddr>().ok());
            match rule.says {
                Says::Claim(claim) => {
                    if let Some(a) = address {
                        // The strongest claim per peer (Verified < Trusted < Untrusted).
                        let e = tls.entry(a).or_insert(claim);
                        *e = (*e).min(claim);
                    }
                }
                Says::Reason => {
                    if let Some(a) = address {
                        let words = caps.name("reason").map_or(line, |m| m.as_str());
                        reasons.insert(a, words.trim().to_string());
                    }
                }
                Says::Outcome(o) => {
                    let dsn = caps.name("dsn").map(|m| m.as_str().to_string());
                    let relay = match (caps.name("host"), address) {
                        (Some(h), Some(a)) => Some((h.as_str().to_string(), a)),
                        (None, Some(a)) => Some((a.to_string(), a)),
                        _ => None,
                    };
                    decided = Some((o, line.trim().to_string(), dsn, relay));
                }
            }
        }
    }
    let (outcome, text, dsn, relay) = match decided {
        Some(d) => d,
        None => (
            exit.outcome(code),
            format!("{program} exited with status {code}"),
            None,
            None,
        ),
    };
    let mut log = vec![format!("{program} exited with status {code}")];
    log.extend(output.lines().take(super::command::MAX_LINES).map(str::to_string));
    Attempt {
        terminal: outcome.terminal(),
        dsn,
        text,
        relay: relay.filter(|_| outcome == Outcome::Sent),
        tls,
        reasons,
        log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, says: &str) -> Rule {
        Rule {
            pattern: Regex::new(pattern).unwrap(),
            says: Says::parse(says).unwrap(),
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
}
