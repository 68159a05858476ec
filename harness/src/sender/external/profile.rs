//! Sender profiles: a TOML file that tells danesim how to run any program as the sender
//! under test (`fixtures/senders/*.toml`), from a one-shot command to a whole MTA with its
//! config, queue and log (Postfix and Exim are profiles: `postfix.toml`, `exim.toml`).
//!
//! ```toml
//! description = "what the program is"
//! command = ["swaks", "--to", "${DANESIM_RECIPIENT}", "--data", "@${DANESIM_MESSAGE_FILE}"]
//! # or, for an MTA that takes mail over SMTP only (needs a [log]):
//! # submit = "smtp://127.0.0.1:2525"   # its own listener, on the loopback inside the namespace
//! timeout = "30s"                 # optional, default 30s; 1s to 1h (`crate::duration` syntax: "90s", "2m30s")
//! stdin = "message"               # optional: the message on standard input; default "null" (/dev/null)
//! exit = { sent = [0], deferred = [75], bounced = [69] }   # optional (default: 0 sent, else deferred)
//! probe = false                   # true: it authenticates peers and sends no mail (`witness::probe`)
//!
//! [[rule]]                        # optional, any number: a regex over each output line (`rules`)
//! match = 'DANE verified \[(?P<address>[^\]]+)\]'
//! says = "verified"               # verified, trusted, untrusted, sent, deferred, bounced, reason
//!
//! [[template]]                    # a config file, rendered into the sender's work directory
//! from = "postfix/main.cf"        # relative to the profile
//! to = "config/main.cf"           # relative to ${DANESIM_WORKDIR}
//! mode = "0644"                   # optional, default 0644
//!
//! [lifecycle]                     # each a list of commands, run in order; all optional
//! setup = [["postconf", "-c", "${DANESIM_WORKDIR}/config", "-F", "*/*/chroot = n"]]
//! start = [["postfix", "-c", "${DANESIM_WORKDIR}/config", "start"]]
//! stop = [["postfix", "-c", "${DANESIM_WORKDIR}/config", "stop"]]
//! reset = [["postsuper", "-c", "${DANESIM_WORKDIR}/config", "-d", "ALL"]]
//! retry = [["postqueue", "-c", "${DANESIM_WORKDIR}/config", "-f"]]
//! settle = [["sh", "ctl.sh", "restart"]]  # after each outcome: end the sessions it keeps open
//!
//! [[preflight]]                   # before the namespace: is the program there, and able?
//! command = ["postconf", "-d", "mail_version"]
//! must_match = '^mail_version = 3\.'      # and/or must_not_match
//! why = "the profile is written for Postfix 3"
//! install = "apt-get install postfix"     # optional: what to do when it fails
//!
//! [[check]]                       # after setup and every config change: is DANE really on?
//! command = ["postconf", "-c", "${DANESIM_WORKDIR}/config", "-n"]
//! must_match = '(?m)^smtp_dns_support_level = dnssec$'
//! why = "without it Postfix falls back to opportunistic TLS after a TLSA mismatch"
//!
//! [queue]                         # without [log]: is the message still queued after the program ended?
//! command = ["mailq"]
//! queued = '<${DANESIM_RECIPIENT}>'      # matches the listing while the message is queued: deferred
//!
//! [log]                           # outcomes from a log file instead of the output (`log_source`)
//! file = "${DANESIM_WORKDIR}/maillog"
//! ...
//! ```
//!
//! The lifecycle: templates are rendered and `setup`, the `check`s and `start` run once per
//! run; before each scenario the templates are rendered again with its values, and when a
//! file changes (a scenario's `[route] relay`) danesim runs `stop`, writes them, runs the
//! checks and `start` again. `command` submits the scenario's message; `reset` runs between
//! worlds; `retry` runs when a timeline retries a deferred message (`${DANESIM_MESSAGE_ID}`
//! names it); `settle` after each attempt's outcome, before the endpoints' transcripts are
//! read (an MTA that keeps its SMTP session open after the outcome must close it); `stop`
//! at the end. Every command runs inside the namespace on the world clock,
//! in `${DANESIM_WORKDIR}`, with the variables exported; a failing one is an error that
//! quotes its output (and the log's last lines).
//!
//! Without `[log]` the rules and the exit map decide the outcome (`rules`): the exit status 0
//! claims a delivery, any other a failure. A program killed by a signal (a crash) or still
//! running at `timeout` is an error of the sender, never a deferral, and the error quotes the
//! end of what it printed.
//!
//! `${NAME}` in a command, a template or a pattern is replaced by the value of one of the
//! variables below (in a pattern, matched literally), and `${NAME:+text}` by `text` when the
//! value is not empty, else by nothing (as in sh(1)). A `${...}` of another name (a shell
//! script's, Postfix's, Exim's own) is passed on untouched, but an unknown `DANESIM_` name is
//! an error.
//!
//! | variable | value |
//! |---|---|
//! | `DANESIM_RESOLVER` | the validating resolver's address (`127.0.0.1`); the namespace's `resolv.conf` names it |
//! | `DANESIM_TRUST_ANCHOR_FILE` | the world's trust anchor, the DNSKEY of `test.` (unbound `trust-anchor-file` form) |
//! | `DANESIM_SENDER` | the envelope sender |
//! | `DANESIM_RECIPIENT` | the envelope recipient |
//! | `DANESIM_DOMAIN` | the recipient's domain (the next-hop domain, RFC 7672 §2.2.1) |
//! | `DANESIM_MESSAGE_FILE` | the message (header and body), with Unix line endings |
//! | `DANESIM_WORLD_ADDRESSES` | the endpoints' addresses, space-separated |
//! | `DANESIM_SCENARIO` | the scenario id |
//! | `DANESIM_RELAY_HOST` | the relay host of a scenario's `[route] relay` (no MX lookup, RFC 7672 §2.2.2), without the trailing dot; empty when the sender routes by MX |
//! | `DANESIM_RELAY_PORT` | the port to connect to: the relay's, or 25; its TLSA RRset is at `_<port>._tcp` (RFC 7672 §2.2.3) |
//! | `DANESIM_WORKDIR` | the sender's own work directory for the run (mode 0711), for configs, queues and logs |
//! | `DANESIM_PROFILE_DIR` | the directory of the profile file |
//! | `DANESIM_HOSTNAME` | the namespace's qualified host name (`client.test`), also in its private `/etc/hosts` |
//! | `DANESIM_CLOCK_VARIABLES` | the world clock's environment variables, space-separated: an MTA that cleans its environment must keep them |
//! | `DANESIM_MESSAGE_ID` | in `retry` and `settle`: the id the log gave the deferred message; else empty |
//! | `DANESIM_OUTCOME` | in `settle`: `sent`, `deferred` or `bounced`, what the attempt came to; else empty |

use super::log_source::{self, LogSpec, RawLog};
use super::rules::{self, ExitMap, Outcome, RawRule, RuleSpec};
use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const VARIABLES: [&str; 16] = [
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
    "DANESIM_WORKDIR",
    "DANESIM_PROFILE_DIR",
    "DANESIM_HOSTNAME",
    "DANESIM_CLOCK_VARIABLES",
    "DANESIM_MESSAGE_ID",
    "DANESIM_OUTCOME",
];

/// A value for every variable, to check that patterns compile at load time.
pub fn sample() -> Vec<(&'static str, String)> {
    VARIABLES.iter().map(|v| (*v, "x".to_string())).collect()
}

type Commands = Vec<Vec<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    description: String,
    command: Option<toml::Spanned<Vec<String>>>,
    /// `smtp://127.0.0.1:PORT`: submit over SMTP to the MTA's own listener instead.
    submit: Option<toml::Spanned<String>>,
    timeout: Option<toml::Spanned<String>>,
    /// Refused with a pointer to `[[rule]]`: one marker made every host "verified".
    verified_marker: Option<toml::Spanned<String>>,
    stdin: Option<toml::Spanned<String>>,
    #[serde(default)]
    probe: bool,
    #[serde(default)]
    exit: BTreeMap<String, toml::Spanned<Vec<i64>>>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
    #[serde(default)]
    template: Vec<RawTemplate>,
    #[serde(default)]
    lifecycle: RawLifecycle,
    #[serde(default)]
    preflight: Vec<RawCheck>,
    #[serde(default)]
    check: Vec<RawCheck>,
    log: Option<RawLog>,
    queue: Option<RawQueue>,
    #[serde(default)]
    deviation: Vec<toml::Spanned<RawDeviation>>,
}

/// `[queue]`: a command that lists the sender's queue, and the pattern that says the
/// scenario's message is still in it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    command: toml::Spanned<Vec<String>>,
    queued: toml::Spanned<String>,
}

/// A queue source: after a submission or a retry ends, a message the queue still lists was
/// not delivered, whatever the program's exit status claimed (an MTA that queues and exits 0).
#[derive(Debug, Clone)]
pub struct Queue {
    pub command: Vec<String>,
    /// A pattern over the command's output (with `${DANESIM_...}` matched literally).
    pub queued: String,
}

/// A documented limitation of the sender (`[[deviation]]`): shown as DEVIATION, with its
/// evidence, where it strikes (`outcome::deviation`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviation {
    id: String,
    covers: Option<String>,
    scenario: Option<String>,
    result: toml::Spanned<String>,
    checks: Vec<String>,
    evidence: toml::Spanned<Vec<String>>,
    #[serde(default)]
    resolver_evidence: Vec<String>,
    behaviour: String,
    rfc: String,
    sentence: String,
    documented: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    from: toml::Spanned<String>,
    to: toml::Spanned<String>,
    mode: Option<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    setup: Option<toml::Spanned<Commands>>,
    start: Option<toml::Spanned<Commands>>,
    stop: Option<toml::Spanned<Commands>>,
    reset: Option<toml::Spanned<Commands>>,
    retry: Option<toml::Spanned<Commands>>,
    settle: Option<toml::Spanned<Commands>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    command: toml::Spanned<Vec<String>>,
    must_match: Option<toml::Spanned<String>>,
    must_not_match: Option<toml::Spanned<String>>,
    why: toml::Spanned<String>,
    install: Option<String>,
}

/// What the program reads on its standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null` (the default).
    Null,
    /// The message (header and body, Unix line endings), as `sendmail -t` reads it.
    Message,
}

/// A config file the profile renders into the sender's work directory.
#[derive(Debug, Clone)]
pub struct Template {
    /// Where it was read from (for messages).
    pub from: PathBuf,
    pub text: String,
    /// Relative to `${DANESIM_WORKDIR}`.
    pub to: PathBuf,
    pub mode: u32,
}

/// The profile's lifecycle commands (`[lifecycle]`); empty lists do nothing.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub setup: Commands,
    pub start: Commands,
    pub stop: Commands,
    pub reset: Commands,
    pub retry: Commands,
    /// After each attempt's outcome, before the witness looks: end the sessions the sender
    /// keeps open (OpenSMTPD caches them).
    pub settle: Commands,
}

/// A command whose output must (or must not) match: `[[preflight]]` and `[[check]]`.
#[derive(Debug, Clone)]
pub struct Check {
    pub command: Vec<String>,
    pub must_match: Option<regex::Regex>,
    pub must_not_match: Option<regex::Regex>,
    pub why: String,
    pub install: Option<String>,
}

impl Check {
    /// Judges the command's exit status and output; the error says what is wrong and why it
    /// matters.
    pub fn judge(&self, status: Option<i32>, output: &str) -> Result<(), String> {
        self.judge_run(&self.command, status, output)
    }

    /// As [`Self::judge`], naming the command as it ran (variables filled in).
    pub fn judge_run(&self, argv: &[String], status: Option<i32>, output: &str) -> Result<(), String> {
        let shown = argv.join(" ");
        if status != Some(0) {
            let code = status.map_or("no exit status".to_string(), |c| format!("exit status {c}"));
            return Err(format!("`{shown}` failed ({code}): {}; {}", output.trim(), self.why));
        }
        if let Some(re) = &self.must_match
            && !re.is_match(output)
        {
            return Err(format!("the output of `{shown}` does not match /{re}/: {}", self.why));
        }
        if let Some(re) = &self.must_not_match
            && let Some(m) = re.find(output)
        {
            return Err(format!(
                "the output of `{shown}` matches /{re}/ (\"{}\"): {}",
                m.as_str().trim(),
                self.why
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub path: PathBuf,
    pub description: String,
    /// The submission command; empty when `submit` names an SMTP listener.
    pub command: Vec<String>,
    /// The MTA's own SMTP listener danesim submits to (`submit = "smtp://..."`).
    pub submit: Option<std::net::SocketAddr>,
    pub timeout: Duration,
    pub stdin: Stdin,
    /// How output lines become claims and outcomes (`rules`).
    pub rules: Vec<RuleSpec>,
    pub exit: ExitMap,
    pub templates: Vec<Template>,
    pub lifecycle: Lifecycle,
    pub preflight: Vec<Check>,
    pub checks: Vec<Check>,
    /// Outcomes from a log file (`log_source`) instead of the output.
    pub log: Option<LogSpec>,
    /// The sender's declared deviations (`[[deviation]]`).
    pub deviations: Vec<crate::outcome::deviation::Known>,
    /// It authenticates peers and sends no mail (`witness::probe`).
    pub probe: bool,
    /// Where a profile without `[log]` learns that its message is still queued.
    pub queue: Option<Queue>,
}

impl Profile {
    /// The directory the profile is in (`${DANESIM_PROFILE_DIR}`).
    pub fn dir(&self) -> PathBuf {
        std::path::absolute(&self.path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// file:line:col of a byte offset in `text`.
fn place(path: &Path, text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    format!("{}:{line}:{col}", path.display())
}

/// An unknown `${DANESIM_...}` in `text` is an error at `place`.
pub fn check_placeholders(text: &str, place: &str, what: &str) -> Result<(), String> {
    for name in placeholders(text).into_iter().filter(|n| n.starts_with("DANESIM_")) {
        if !VARIABLES.contains(&name.as_str()) {
            return Err(format!(
                "{place}: unknown variable ${{{name}}} in {what}; known: {}",
                VARIABLES.join(", ")
            ));
        }
    }
    Ok(())
}

/// Loads and checks a profile; errors name the file, line and column and what to fix.
pub fn load(path: &Path) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let at = |offset: usize| place(path, &text, offset);
    let raw: RawProfile = toml::from_str(&text).map_err(|e| {
        let place = e
            .span()
            .map(|s| at(s.start))
            .unwrap_or_else(|| path.display().to_string());
        format!("{place}: {}", e.message())
    })?;
    let (command, span, submit) = match (raw.command, &raw.submit) {
        (Some(c), None) => {
            let span = c.span();
            let command = c.into_inner();
            if command.is_empty() || command[0].trim().is_empty() {
                return Err(format!(
                    "{}: `command` must name a program, e.g. command = [\"swaks\", ...]",
                    at(span.start)
                ));
            }
            (command, span, None)
        }
        (None, Some(url)) => {
            let addr = super::submit::parse(url.get_ref()).map_err(|e| format!("{}: {e}", at(url.span().start)))?;
            if raw.log.is_none() {
                return Err(format!(
                    "{}: a submission over SMTP has no output to judge: give the profile a [log]",
                    at(url.span().start)
                ));
            }
            (Vec::new(), url.span(), Some(addr))
        }
        (Some(_), Some(url)) => {
            return Err(format!(
                "{}: give `command` (a program that submits) or `submit` (an SMTP listener), not both",
                at(url.span().start)
            ));
        }
        (None, None) => {
            return Err(format!(
                "{}: the profile needs a `command` (the program that submits, e.g. command = [\"swaks\", ...]) or \
                 `submit = \"smtp://127.0.0.1:PORT\"`",
                path.display()
            ));
        }
    };
    for arg in &command {
        // Only DANESIM_ names are danesim's: a shell script's own `${HOME}` is the shell's.
        check_placeholders(arg, &at(span.start), "`command`")?;
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
    let rules = rules::load(&raw.rule, &at, false)?;
    let log = match &raw.log {
        None => None,
        Some(l) => {
            if let Some(r) = raw.rule.first() {
                return Err(format!(
                    "{}: with a `[log]`, outcomes come from the log: write this rule as a [[log.rule]]",
                    at(r.span().start)
                ));
            }
            if let Some((_, codes)) = raw.exit.iter().next() {
                return Err(format!(
                    "{}: with a `[log]`, outcomes come from the log, and the submission must exit 0; drop `exit`",
                    at(codes.span().start)
                ));
            }
            Some(log_source::load(l, &at)?)
        }
    };
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut templates = Vec::new();
    for t in &raw.template {
        let from = base.join(t.from.get_ref());
        let body = std::fs::read_to_string(&from).map_err(|e| {
            format!(
                "{}: template `from = \"{}\"`: cannot read {}: {e}",
                at(t.from.span().start + 1),
                t.from.get_ref(),
                from.display()
            )
        })?;
        // An unknown variable in the template is named at its own line and column.
        for (n, line) in body.lines().enumerate() {
            if let Some(col) = line.find("${DANESIM_") {
                check_placeholders(
                    line,
                    &format!("{}:{}:{}", from.display(), n + 1, col + 1),
                    "the template",
                )?;
            }
        }
        let to = PathBuf::from(t.to.get_ref());
        if to.is_absolute()
            || to.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
            || t.to.get_ref().is_empty()
        {
            return Err(format!(
                "{}: template `to = \"{}\"`: a relative path inside the work directory, without `..`",
                at(t.to.span().start + 1),
                t.to.get_ref()
            ));
        }
        let mode = match &t.mode {
            None => 0o644,
            Some(m) => u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| {
                    format!(
                        "{}: template `mode = \"{}\"`: an octal file mode such as \"0644\"",
                        at(m.span().start + 1),
                        m.get_ref()
                    )
                })?,
        };
        templates.push(Template {
            from,
            text: body,
            to,
            mode,
        });
    }
    let commands = |c: &Option<toml::Spanned<Commands>>, name: &str| -> Result<Commands, String> {
        let Some(c) = c else { return Ok(Vec::new()) };
        for argv in c.get_ref() {
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(format!(
                    "{}: `lifecycle.{name}`: each command is a list that names a program, e.g. [[\"postfix\", \"start\"]]",
                    at(c.span().start)
                ));
            }
            for arg in argv {
                check_placeholders(arg, &at(c.span().start), &format!("`lifecycle.{name}`"))?;
            }
        }
        Ok(c.get_ref().clone())
    };
    let lifecycle = Lifecycle {
        setup: commands(&raw.lifecycle.setup, "setup")?,
        start: commands(&raw.lifecycle.start, "start")?,
        stop: commands(&raw.lifecycle.stop, "stop")?,
        reset: commands(&raw.lifecycle.reset, "reset")?,
        retry: commands(&raw.lifecycle.retry, "retry")?,
        settle: commands(&raw.lifecycle.settle, "settle")?,
    };
    let checks = |raw: &[RawCheck], name: &str| -> Result<Vec<Check>, String> {
        let mut out = Vec::new();
        for c in raw {
            let sp = c.command.span();
            if c.command.get_ref().first().is_none_or(|p| p.trim().is_empty()) {
                return Err(format!("{}: `{name}.command` must name a program", at(sp.start)));
            }
            for arg in c.command.get_ref() {
                check_placeholders(arg, &at(sp.start), &format!("`{name}.command`"))?;
            }
            let re = |p: &Option<toml::Spanned<String>>, key: &str| -> Result<Option<regex::Regex>, String> {
                p.as_ref()
                    .map(|p| {
                        rules::regex(p.get_ref())
                            .map_err(|e| format!("{}: `{key}` is not a regex: {e}", at(p.span().start + 1)))
                    })
                    .transpose()
            };
            if c.why.get_ref().trim().is_empty() {
                return Err(format!(
                    "{}: `why` says what fails without it, for the error message",
                    at(c.why.span().start)
                ));
            }
            out.push(Check {
                command: c.command.get_ref().clone(),
                must_match: re(&c.must_match, "must_match")?,
                must_not_match: re(&c.must_not_match, "must_not_match")?,
                why: c.why.get_ref().clone(),
                install: c.install.clone(),
            });
        }
        Ok(out)
    };
    let deviations = deviations(path, &raw.deviation, &at)?;
    let queue = match &raw.queue {
        None => None,
        Some(q) => {
            if raw.log.is_some() {
                return Err(format!(
                    "{}: with a `[log]`, its outcome lines decide; a [queue] is for a profile that reads the program's output",
                    at(q.command.span().start)
                ));
            }
            let cmd = q.command.get_ref();
            if cmd.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(format!(
                    "{}: `queue.command` must name a program",
                    at(q.command.span().start)
                ));
            }
            for arg in cmd {
                check_placeholders(arg, &at(q.command.span().start), "`queue.command`")?;
            }
            let place = at(q.queued.span().start + 1);
            check_placeholders(q.queued.get_ref(), &place, "`queue.queued`")?;
            rules::regex(&expand_regex(q.queued.get_ref(), &sample()))
                .map_err(|e| format!("{place}: `queue.queued` is not a regex: {e}"))?;
            Some(Queue {
                command: cmd.clone(),
                queued: q.queued.get_ref().clone(),
            })
        }
    };
    Ok(Profile {
        path: path.to_path_buf(),
        queue,
        probe: raw.probe,
        submit,
        deviations,
        rules,
        exit,
        stdin,
        description: raw.description,
        command,
        timeout,
        templates,
        lifecycle,
        preflight: checks(&raw.preflight, "preflight")?,
        checks: checks(&raw.check, "check")?,
        log,
    })
}

/// The profile's `[[deviation]]`s as catalogue entries. They live for the whole process
/// (leaked, once per load): the verdict's table holds `'static` entries like the catalogue's.
fn deviations(
    path: &Path,
    raw: &[toml::Spanned<RawDeviation>],
    at: &dyn Fn(usize) -> String,
) -> Result<Vec<crate::outcome::deviation::Known>, String> {
    use crate::outcome::deviation::{CATALOGUE, Clue, Component, Known, Scope, Source};
    fn leak(s: &str) -> &'static str {
        Box::leak(s.to_string().into_boxed_str())
    }
    let name: &'static str = leak(
        &path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let mut out = Vec::new();
    for d in raw {
        let place = at(d.span().start);
        let d = d.get_ref();
        if d.id.trim().is_empty() || out.iter().any(|k: &Known| k.id == d.id) {
            return Err(format!("{place}: a deviation needs an `id` of its own"));
        }
        let result = crate::vocab::ResultCode::parse(d.result.get_ref()).ok_or_else(|| {
            format!(
                "{}: `result = \"{}\"`: one of AUTH, TLS, OPP, DEFER, BOUNCE",
                at(d.result.span().start + 1),
                d.result.get_ref()
            )
        })?;
        let scope = match (&d.covers, &d.scenario) {
            (Some(c), None) => Scope::Covers(leak(c)),
            (None, Some(id)) => Scope::Scenario(leak(id)),
            (None, None) => Scope::Any,
            (Some(_), Some(_)) => {
                return Err(format!("{place}: give `covers` or `scenario`, not both"));
            }
        };
        if d.evidence.get_ref().is_empty() {
            return Err(format!(
                "{}: a deviation applies only where its evidence is seen: give at least one `evidence` pattern",
                at(d.evidence.span().start)
            ));
        }
        let mut evidence = Vec::new();
        for (source, patterns) in [
            (Source::Sender, d.evidence.get_ref()),
            (Source::Resolver, &d.resolver_evidence),
        ] {
            for p in patterns {
                rules::regex(&p.replace("{name}", "x"))
                    .map_err(|e| format!("{}: evidence `{p}` is not a regex: {e}", at(d.evidence.span().start)))?;
                evidence.push(Clue {
                    source,
                    pattern: leak(p),
                });
            }
        }
        if d.checks.is_empty() {
            return Err(format!(
                "{place}: `checks` names the failed checks the deviation explains"
            ));
        }
        let checks: Vec<&'static str> = d.checks.iter().map(|c| leak(c)).collect();
        let documented = match d.documented.as_deref() {
            Some(CATALOGUE) => CATALOGUE,
            Some(other) => leak(other),
            None => leak(&path.display().to_string()),
        };
        out.push(Known {
            id: leak(&d.id),
            component: Component::Mta(name),
            senders: Box::leak(vec![name].into_boxed_slice()),
            scope,
            result,
            checks: Box::leak(checks.into_boxed_slice()),
            evidence: Box::leak(evidence.into_boxed_slice()),
            behaviour: leak(&d.behaviour),
            rfc: leak(&d.rfc),
            sentence: leak(&d.sentence),
            documented,
        });
    }
    Ok(out)
}

/// The `${NAME}` and `${NAME:+...}` placeholders in one text.
fn placeholders(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &rest[name.len()..];
        if !name.is_empty() && (after.starts_with('}') || after.starts_with(":+")) {
            out.push(name);
        }
    }
    out
}

/// Replaces every `${NAME}` and `${NAME:+text}` of danesim's with its value (others are
/// left to the program).
pub fn expand(arg: &str, vars: &[(&str, String)]) -> String {
    expand_with(arg, vars, &|v| v.to_string())
}

/// As [`expand`], with each value regex-escaped: a pattern matches the value literally.
pub fn expand_regex(arg: &str, vars: &[(&str, String)]) -> String {
    expand_with(arg, vars, &|v| regex::escape(v))
}

fn expand_with(arg: &str, vars: &[(&str, String)], escape: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let body = &rest[i + 2..];
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &body[name.len()..];
        let value = vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
        match value {
            Some(v) if after.starts_with('}') => {
                out.push_str(&escape(v));
                rest = &after[1..];
            }
            Some(v) if after.starts_with(":+") => {
                // The word runs to the brace that closes this one.
                let word = &after[2..];
                let mut depth = 1usize;
                let mut end = None;
                for (j, c) in word.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                match end {
                    Some(j) => {
                        if !v.is_empty() {
                            out.push_str(&expand_with(&word[..j], vars, escape));
                        }
                        rest = &word[j + 1..];
                    }
                    None => {
                        out.push_str("${");
                        rest = body;
                    }
                }
            }
            _ => {
                out.push_str("${");
                rest = body;
            }
        }
    }
    out.push_str(rest);
    out
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
        let rules = rules::compile(&p.rules, &sample()).unwrap();
        let a = attempt(
            &rules,
            &p.exit,
            24,
            " ~> RCPT TO:<u@example.test>\n<~* 550 5.1.1 User unknown\n",
            "swaks",
        );
        assert_eq!((a.terminal, a.dsn.as_deref()), (Terminal::Bounced, Some("5.1.1")));
        let a = attempt(&rules, &p.exit, 21, "<** 421 4.3.2 Service not available\n", "swaks");
        assert_eq!((a.terminal, a.dsn.as_deref()), (Terminal::Deferred, Some("4.3.2")));
        let a = attempt(&rules, &p.exit, 0, "<~  250 2.0.0 Ok: queued as 1\n", "swaks");
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

    fn shipped(name: &str) -> Profile {
        load(&Path::new(crate::sender::SHIPPED).join(format!("{name}.toml"))).unwrap()
    }

    /// Each of the Postfix profile's checks refuses the config it is there for: a check
    /// that cannot fail would be no check.
    #[test]
    fn the_postfix_checks_refuse_a_config_in_which_dane_would_degrade() {
        let p = shipped("postfix");
        let vars: Vec<(&str, String)> = sample()
            .into_iter()
            .map(|(k, v)| match k {
                "DANESIM_CLOCK_VARIABLES" => (k, crate::world::clock::VARIABLES.join(" ")),
                "DANESIM_RELAY_HOST" => (k, String::new()),
                _ => (k, v),
            })
            .collect();
        let good = expand(&p.templates[0].text, &vars);
        let judge = |cf: &str| -> Vec<String> { p.checks.iter().filter_map(|c| c.judge(Some(0), cf).err()).collect() };
        assert_eq!(judge(&good), Vec::<String>::new(), "the shipped main.cf passes");
        for (from, to, why) in [
            (
                "smtp_dns_support_level = dnssec",
                "smtp_dns_support_level = enabled",
                "falls back to opportunistic TLS",
            ),
            (
                "smtp_tls_security_level = dane",
                "smtp_tls_security_level = may",
                "does not look for TLSA",
            ),
            (
                "smtp_tls_loglevel = 1",
                "smtp_tls_loglevel = 1\nsmtp_host_lookup = native",
                "smtp_host_lookup must include dns",
            ),
            (
                "POSTLOG_HOSTNAME LD_PRELOAD",
                "POSTLOG_HOSTNAME",
                "import_environment must keep",
            ),
        ] {
            let bad = good.replace(from, &to.replace("\\n", "\n"));
            assert_ne!(bad, good, "{from}");
            let errors = judge(&bad);
            assert!(errors.len() == 1 && errors[0].contains(why), "{from}: {errors:?}");
        }
        assert!(
            judge(
                &good
                    .replace("smtp_host_lookup", "x")
                    .replace("smtp_tls_loglevel = 1", "smtp_host_lookup = native, dns")
            )
            .is_empty()
        );
        // A relay scenario: brackets, so no MX lookup (RFC 7672 §2.2.2); none without.
        assert!(good.contains("\nrelayhost = \n"), "no relay by default");
        let relay: Vec<(&str, String)> = vars
            .iter()
            .map(|(k, v)| match *k {
                "DANESIM_RELAY_HOST" => (*k, "mx1.example.test".to_string()),
                "DANESIM_RELAY_PORT" => (*k, "2525".to_string()),
                _ => (*k, v.clone()),
            })
            .collect();
        assert!(expand(&p.templates[0].text, &relay).contains("\nrelayhost = [mx1.example.test]:2525\n"));
    }

    /// The Exim profile's relay router runs only for a relay scenario, before `dnslookup`.
    #[test]
    fn the_exim_relay_router_is_conditional() {
        let p = shipped("exim");
        let vars = |host: &str| -> Vec<(&'static str, String)> {
            sample()
                .into_iter()
                .map(|(k, v)| match k {
                    "DANESIM_RELAY_HOST" => (k, host.to_string()),
                    "DANESIM_RELAY_PORT" => (k, "2525".to_string()),
                    _ => (k, v),
                })
                .collect()
        };
        let with = expand(&p.templates[0].text, &vars("mx1.example.test"));
        let live: Vec<&str> = with.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        let route = live
            .iter()
            .position(|l| l.trim() == "route_list = * mx1.example.test::2525 bydns")
            .expect("the relay's route_list");
        let dnslookup = live.iter().position(|l| *l == "dnslookup:").expect("the MX router");
        assert!(route < dnslookup, "the relay router comes first");
        assert!(live.iter().any(|l| l.trim() == "condition = true"));
        let without = expand(&p.templates[0].text, &vars(""));
        assert!(
            without.lines().any(|l| l.trim() == "condition ="),
            "an empty condition: Exim skips the router"
        );
        assert!(
            without
                .lines()
                .all(|l| l.trim_start().starts_with('#') || !l.contains("${DANESIM_")),
            "every variable is filled"
        );
    }

    #[test]
    fn conditional_expansion() {
        let vars = [
            ("DANESIM_RELAY_HOST", "h".to_string()),
            ("DANESIM_RELAY_PORT", "25".to_string()),
        ];
        assert_eq!(
            expand(
                "r = ${DANESIM_RELAY_HOST:+[${DANESIM_RELAY_HOST}]:${DANESIM_RELAY_PORT}}!",
                &vars
            ),
            "r = [h]:25!"
        );
        let empty = [("DANESIM_RELAY_HOST", String::new())];
        assert_eq!(expand("r = ${DANESIM_RELAY_HOST:+[x]}!", &empty), "r = !");
        // Another program's own syntax is left alone, even when unbalanced.
        assert_eq!(
            expand("${if eq{$h}{}} ${DANESIM_RELAY_HOST:+a", &vars),
            "${if eq{$h}{}} ${DANESIM_RELAY_HOST:+a"
        );
        assert_eq!(
            expand_regex("<${DANESIM_RELAY_HOST}>", &[("DANESIM_RELAY_HOST", "a.b".into())]),
            "<a\\.b>"
        );
        assert_eq!(placeholders("${A:+${B}} ${c}"), vec!["A", "B", "c"]);
    }

    #[test]
    fn expansion() {
        let vars = [("DANESIM_RECIPIENT", "u@example.test".to_string())];
        assert_eq!(expand("--to=${DANESIM_RECIPIENT}", &vars), "--to=u@example.test");
        assert_eq!(placeholders("a${B}c${D}"), vec!["B", "D"]);
    }
}
