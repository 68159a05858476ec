//! Sender profiles: a TOML file that tells danesim how to run any program as the sender
//! under test (`fixtures/senders/*.toml`).
//!
//! ```toml
//! description = "what the program is"
//! command = ["swaks", "--to", "${DANESIM_RECIPIENT}", "--data", "@${DANESIM_MESSAGE_FILE}"]
//! timeout = "30s"                 # optional, default 30s; 1s to 1h (`crate::duration` syntax: "90s", "2m30s")
//! stdin = "message"               # optional: the message on standard input; default "null" (/dev/null)
//! exit = { sent = [0], deferred = [75], bounced = [69] }   # optional (default: 0 sent, else deferred)
//!
//! [[rule]]                        # optional, any number: a regex over each output line
//! match = 'DANE verified \[(?P<address>[^\]]+)\]'
//! says = "verified"               # verified, trusted, untrusted, sent, deferred, bounced, reason
//! ```
//!
//! The rules and the exit map decide the outcome (`rules`); without them the exit status 0
//! claims a delivery, any other a failure. A program killed by a signal (a
//! crash) or still running at `timeout` is an error of the sender, never a deferral, and the
//! error quotes the end of what it printed.
//!
//! `${NAME}` in the command is replaced by the value of one of the variables below, which
//! are also exported to the program; a `${...}` of another name (a shell script's own) is
//! passed on untouched, but an unknown `DANESIM_` name is an error. It runs inside the namespace, where `resolv.conf`
//! names the validating resolver.
//!
//! | variable | value |
//! |---|---|
//! | `DANESIM_RESOLVER` | the validating resolver's address (`127.0.0.1`) |
//! | `DANESIM_TRUST_ANCHOR_FILE` | the world's trust anchor, the DNSKEY of `test.` (unbound `trust-anchor-file` form) |
//! | `DANESIM_SENDER` | the envelope sender |
//! | `DANESIM_RECIPIENT` | the envelope recipient |
//! | `DANESIM_DOMAIN` | the recipient's domain (the next-hop domain, RFC 7672 §2.2.1) |
//! | `DANESIM_MESSAGE_FILE` | the message (header and body), with Unix line endings |
//! | `DANESIM_WORLD_ADDRESSES` | the endpoints' addresses, space-separated |
//! | `DANESIM_SCENARIO` | the scenario id |
//! | `DANESIM_RELAY_HOST` | the relay host of a scenario's `[route] relay` (no MX lookup, RFC 7672 §2.2.2), without the trailing dot; empty when the sender routes by MX |
//! | `DANESIM_RELAY_PORT` | the port to connect to: the relay's, or 25; its TLSA RRset is at `_<port>._tcp` (RFC 7672 §2.2.3) |

use super::rules::{ExitMap, Outcome, Rule, SAYS, Says};
use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const VARIABLES: [&str; 10] = [
    "DANESIM_RESOLVER",
    "DANESIM_TRUST_ANCHOR_FILE",
    "DANESIM_SENDER",
    "DANESIM_RECIPIENT",
    "DANESIM_DOMAIN",
    "DANESIM_MESSAGE_FILE",
    "DANESIM_WORLD_ADDRESSES",
    "DANESIM_SCENARIO",
    "DANESIM_RELAY_HOST",
    "DANESIM_RELAY_PORT",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    description: String,
    command: toml::Spanned<Vec<String>>,
    timeout: Option<toml::Spanned<String>>,
    /// Refused with a pointer to `[[rule]]`: one marker made every host "verified".
    verified_marker: Option<toml::Spanned<String>>,
    stdin: Option<toml::Spanned<String>>,
    #[serde(default)]
    exit: BTreeMap<String, toml::Spanned<Vec<i64>>>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    pattern: toml::Spanned<String>,
    says: toml::Spanned<String>,
}

/// What the program reads on its standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null` (the default).
    Null,
    /// The message (header and body, Unix line endings), as `sendmail -t` reads it.
    Message,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub path: PathBuf,
    pub description: String,
    pub command: Vec<String>,
    pub timeout: Duration,
    pub stdin: Stdin,
    /// How output lines become claims and outcomes (`rules`).
    pub rules: Vec<Rule>,
    pub exit: ExitMap,
}

/// Loads and checks a profile; errors name the file, line and column and what to fix.
pub fn load(path: &Path) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let at = |offset: usize| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
        format!("{}:{line}:{col}", path.display())
    };
    let raw: RawProfile = toml::from_str(&text).map_err(|e| {
        let place = e
            .span()
            .map(|s| at(s.start))
            .unwrap_or_else(|| path.display().to_string());
        format!("{place}: {}", e.message())
    })?;
    let span = raw.command.span();
    let command = raw.command.into_inner();
    if command.is_empty() || command[0].trim().is_empty() {
        return Err(format!(
            "{}: `command` must name a program, e.g. command = [\"swaks\", ...]",
            at(span.start)
        ));
    }
    for arg in &command {
        // Only DANESIM_ names are danesim's: a shell script's own `${HOME}` is the shell's.
        for name in placeholders(arg).into_iter().filter(|n| n.starts_with("DANESIM_")) {
            if !VARIABLES.contains(&name.as_str()) {
                return Err(format!(
                    "{}: unknown variable ${{{name}}} in `command`; known: {}",
                    at(span.start),
                    VARIABLES.join(", ")
                ));
            }
        }
    }
    let timeout = match &raw.timeout {
        None => Duration::from_secs(30),
        Some(t) => duration::parse(t.get_ref(), &duration::PROFILE_TIMEOUT)
            .map_err(|e| format!("{}: `timeout`: {e}", at(t.span().start + 1)))?,
    };
    let stdin = match raw.stdin.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("null") => Stdin::Null,
        Some("message") => Stdin::Message,
        Some(other) => {
            let sp = raw.stdin.as_ref().expect("given").span();
            return Err(format!(
                "{}: `stdin = \"{other}\"`: write \"message\" (the message on standard input) or \"null\" (the default)",
                at(sp.start + 1)
            ));
        }
    };
    if let Some(m) = &raw.verified_marker {
        return Err(format!(
            "{}: `verified_marker` is gone: it marked every host verified. Write a rule that names the peer, e.g. \
             [[rule]] match = 'DANE verified \\[(?P<address>[^\\]]+)\\]' says = \"verified\"",
            at(m.span().start)
        ));
    }
    let mut exit = ExitMap::default();
    for (word, codes) in &raw.exit {
        let outcome = match word.as_str() {
            "sent" => Outcome::Sent,
            "deferred" => Outcome::Deferred,
            "bounced" => Outcome::Bounced,
            other => {
                return Err(format!(
                    "{}: `exit.{other}`: the outcomes are sent, deferred and bounced",
                    at(codes.span().start)
                ));
            }
        };
        for &code in codes.get_ref() {
            let Ok(c) = i32::try_from(code).ok().filter(|c| (0..=255).contains(c)).ok_or(()) else {
                return Err(format!(
                    "{}: exit status {code} is not 0 to 255",
                    at(codes.span().start)
                ));
            };
            if let Some(prev) = exit.0.insert(c, outcome)
                && prev != outcome
            {
                return Err(format!(
                    "{}: exit status {c} is given two outcomes",
                    at(codes.span().start)
                ));
            }
        }
    }
    let mut rules = Vec::new();
    for r in &raw.rule {
        let raw_rule = r.get_ref();
        let says = Says::parse(raw_rule.says.get_ref()).ok_or_else(|| {
            format!(
                "{}: `says = \"{}\"`: one of {}",
                at(raw_rule.says.span().start + 1),
                raw_rule.says.get_ref(),
                SAYS.join(", ")
            )
        })?;
        let pattern = regex::RegexBuilder::new(raw_rule.pattern.get_ref())
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("{}: `match` is not a regex: {e}", at(raw_rule.pattern.span().start + 1)))?;
        if says.needs_address() && !pattern.capture_names().any(|n| n == Some("address")) {
            return Err(format!(
                "{}: a rule that says `{}` names the peer: give the regex an (?P<address>...) group",
                at(raw_rule.pattern.span().start + 1),
                raw_rule.says.get_ref()
            ));
        }
        rules.push(Rule { pattern, says });
    }
    Ok(Profile {
        path: path.to_path_buf(),
        rules,
        exit,
        stdin,
        description: raw.description,
        command,
        timeout,
    })
}

/// The `${NAME}` placeholders in one argument.
fn placeholders(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(i) = rest.find("${") {
        match rest[i + 2..].find('}') {
            Some(j) => {
                out.push(rest[i + 2..i + 2 + j].to_string());
                rest = &rest[i + 3 + j..];
            }
            None => break,
        }
    }
    out
}

/// Replaces every `${NAME}` of danesim's with its value (others are left to the program).
pub fn expand(arg: &str, vars: &[(&str, String)]) -> String {
    let mut s = arg.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("${{{k}}}"), v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("danesim-profile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per call: tests run in parallel.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = dir.join(format!("p{n}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_shipped_swaks_profile_loads() {
        let p = load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/senders/swaks.toml"
        )))
        .unwrap();
        assert_eq!(p.command[0], "swaks");
        // Its rules read swaks's error marks: a 5xx inside TLS bounces, with its code; a 4xx
        // defers; nothing marked leaves it to the exit status.
        use super::super::Terminal;
        use super::super::rules::attempt;
        let a = attempt(
            &p.rules,
            &p.exit,
            24,
            " ~> RCPT TO:<u@example.test>\n<~* 550 5.1.1 User unknown\n",
            "swaks",
        );
        assert_eq!((a.terminal, a.dsn.as_deref()), (Terminal::Bounced, Some("5.1.1")));
        let a = attempt(&p.rules, &p.exit, 21, "<** 421 4.3.2 Service not available\n", "swaks");
        assert_eq!((a.terminal, a.dsn.as_deref()), (Terminal::Deferred, Some("4.3.2")));
        let a = attempt(&p.rules, &p.exit, 0, "<~  250 2.0.0 Ok: queued as 1\n", "swaks");
        assert_eq!(a.terminal, Terminal::Sent);
        // The relay variant takes its server and port from the relay variables (issue 15).
        let r = load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/senders/swaks-relay.toml"
        )))
        .unwrap();
        for v in ["${DANESIM_RELAY_HOST}", "${DANESIM_RELAY_PORT}"] {
            assert!(r.command.iter().any(|a| a == v), "{v} in {:?}", r.command);
        }
    }

    #[test]
    fn bad_profiles_are_refused_with_a_place() {
        let e = load(&write("command = [\"x\", \"${DANESIM_NOPE}\"]\n")).unwrap_err();
        assert!(e.contains(":1:11: unknown variable ${DANESIM_NOPE}"), "{e}");
        // A shell's own variables are the shell's.
        let p = load(&write("command = [\"sh\", \"-c\", \"echo ${HOME} $1\"]\n")).unwrap();
        assert_eq!(p.command[2], "echo ${HOME} $1");
        assert_eq!(p.stdin, Stdin::Null);
        let p = load(&write("command = [\"x\"]\nstdin = \"message\"\n")).unwrap();
        assert_eq!(p.stdin, Stdin::Message);
        // Rules: a bad regex, an unknown word, a claim without its peer, the old marker.
        let e = load(&write("command = [\"x\"]\n[[rule]]\nmatch = \"(\"\nsays = \"sent\"\n")).unwrap_err();
        assert!(e.contains(":3:10: `match` is not a regex"), "{e}");
        let e = load(&write("command = [\"x\"]\n[[rule]]\nmatch = \"ok\"\nsays = \"fine\"\n")).unwrap_err();
        assert!(e.contains(":4:9: `says = \"fine\"`"), "{e}");
        let e = load(&write(
            "command = [\"x\"]\n[[rule]]\nmatch = \"DANE ok\"\nsays = \"verified\"\n",
        ))
        .unwrap_err();
        assert!(e.contains(":3:10:") && e.contains("(?P<address>...)"), "{e}");
        let e = load(&write("command = [\"x\"]\nverified_marker = \"DANE\"\n")).unwrap_err();
        assert!(e.contains(":2:19: `verified_marker` is gone"), "{e}");
        let e = load(&write("command = [\"x\"]\nexit = { sent = [0], deferred = [0] }\n")).unwrap_err();
        assert!(e.contains("exit status 0 is given two outcomes"), "{e}");
        let e = load(&write("command = [\"x\"]\nexit = { queued = [0] }\n")).unwrap_err();
        assert!(e.contains("`exit.queued`"), "{e}");
        let p = load(&write(
            "command = [\"x\"]\nexit = { sent = [0], bounced = [69] }\n[[rule]]\nmatch = '(?P<address>\\S+) ok'\nsays = \"verified\"\n",
        ))
        .unwrap();
        assert_eq!((p.rules.len(), p.exit.0.len()), (1, 2));
        let e = load(&write("command = [\"x\"]\nstdin = \"file\"\n")).unwrap_err();
        assert!(e.contains(":2:10: `stdin = \"file\"`"), "{e}");
        let e = load(&write("command = []\n")).unwrap_err();
        assert!(e.contains("must name a program"), "{e}");
        let e = load(&write("command = [\"x\"]\ncolour = 1\n")).unwrap_err();
        assert!(e.contains(":2:1"), "{e}");
        let e = load(&write("command = [\"x\"]\ntimeout = \"soon\"\n")).unwrap_err();
        assert!(e.contains(":2:12: `timeout`"), "{e}");
        // The bounds are checked: at least 1s, at most 1h, and huge numbers are no panic.
        for t in ["500ms", "2h", "999999999999999999d"] {
            let e = load(&write(&format!("command = [\"x\"]\ntimeout = \"{t}\"\n"))).unwrap_err();
            assert!(e.contains(":2:12: `timeout`") && e.contains("1s to 1h"), "{e}");
        }
        let p = load(&write("command = [\"x\"]\ntimeout = \"2m30s\"\n")).unwrap();
        assert_eq!(p.timeout, Duration::from_secs(150));
    }

    #[test]
    fn expansion() {
        let vars = [("DANESIM_RECIPIENT", "u@example.test".to_string())];
        assert_eq!(expand("--to=${DANESIM_RECIPIENT}", &vars), "--to=u@example.test");
        assert_eq!(placeholders("a${B}c${D}"), vec!["B", "D"]);
    }
}
