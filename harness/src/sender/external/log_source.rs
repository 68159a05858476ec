//! A profile's `[log]`: outcomes read from the sender's log file, as MTAs report them
//! (Postfix's maillog, Exim's mainlog), instead of from a command's output.
//!
//! ```toml
//! [log]
//! file = "${DANESIM_WORKDIR}/maillog"
//! # One line: `text` is what the trace shows; `source` (shown before it), `id` (the message
//! # the line is about) and `pid` are optional.
//! line = '^.*? (?P<source>[^\s\[]+)\[(?P<pid>\d+)\]: (?P<text>(?:(?P<id>[0-9A-F]{6,16}): )?.*)$'
//! # The line that names the submitted message; its `id` group (or the line's) is the message id.
//! message = '^postfix/pickup: (?P<id>[0-9A-F]+): uid=\d+ from=<${DANESIM_SENDER}>'
//! hide_id = "QUEUEID"           # optional: the id's stand-in in the trace (ids differ per run)
//! keep = '^postfix/(?:smtp|error|discard|lmtp): '   # optional: only these lines are the delivery's
//! foreground = false            # true: the submission returns when the attempt has ended
//! syslog = false                # true: danesim provides /dev/log and writes what it gets to `file`
//! also = ["${DANESIM_WORKDIR}/paniclog"]            # optional: more files, appended to the trace
//!
//! [[log.normalize]]             # in order, over each line's text: drop what differs per run
//! match = ', (?:delays?|conn_use)=[^,]*'
//! replace = ""
//!
//! [[log.rule]]                  # as `[[rule]]` (`rules`), plus says = "ignore"
//! match = 'to=<${DANESIM_RECIPIENT}>, .*dsn=(?P<dsn>[^, ]+), status=sent \((?P<text>.*?)\)*$'
//! says = "sent"
//! ```
//!
//! The attempt's lines are those after the log's length before the submission (or the
//! retry): the lines with the message's id, and, when `line` has a `pid`, the lines without
//! an id of a process that also logged the message's id (Postfix's "Verified TLS connection"
//! lines name no queue id). The attempt has ended at its last outcome line; until one is
//! there danesim polls the log (an event, not a guessed sleep), up to the profile's timeout.

use super::Attempt;
use super::rules::{self, RawRule, Reading, Rule, RuleSpec};
use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    file: toml::Spanned<String>,
    line: toml::Spanned<String>,
    message: toml::Spanned<String>,
    hide_id: Option<String>,
    keep: Option<toml::Spanned<String>>,
    #[serde(default)]
    foreground: bool,
    #[serde(default)]
    syslog: bool,
    #[serde(default)]
    also: Vec<String>,
    #[serde(default)]
    normalize: Vec<RawNormalize>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNormalize {
    #[serde(rename = "match")]
    pattern: toml::Spanned<String>,
    replace: String,
}

#[derive(Debug, Clone)]
pub struct LogSpec {
    /// The log file (a template: `${DANESIM_WORKDIR}/maillog`).
    pub file: String,
    pub line: Regex,
    /// The pattern of the line that names the message (a template).
    pub message: String,
    pub hide_id: Option<String>,
    pub keep: Option<Regex>,
    pub foreground: bool,
    /// danesim listens at `/dev/log` in the namespace and writes each message to `file`
    /// (`world::syslog`), for a sender that logs only through syslog(3).
    pub syslog: bool,
    pub also: Vec<String>,
    pub normalize: Vec<(Regex, String)>,
    pub rules: Vec<RuleSpec>,
}

pub(super) fn load(raw: &RawLog, at: &dyn Fn(usize) -> String) -> Result<LogSpec, String> {
    use super::profile::{check_placeholders, expand_regex, sample};
    let regex = |p: &toml::Spanned<String>, key: &str| {
        rules::regex(p.get_ref()).map_err(|e| format!("{}: `log.{key}` is not a regex: {e}", at(p.span().start + 1)))
    };
    let line = regex(&raw.line, "line")?;
    if !line.capture_names().any(|n| n == Some("text")) {
        return Err(format!(
            "{}: `log.line` needs a (?P<text>...) group: the part of the line the rules read",
            at(raw.line.span().start + 1)
        ));
    }
    let m = &raw.message;
    check_placeholders(m.get_ref(), &at(m.span().start + 1), "`log.message`")?;
    let message = rules::regex(&expand_regex(m.get_ref(), &sample()))
        .map_err(|e| format!("{}: `log.message` is not a regex: {e}", at(m.span().start + 1)))?;
    let has_id = |r: &Regex| r.capture_names().any(|n| n == Some("id"));
    if !has_id(&message) && !has_id(&line) {
        return Err(format!(
            "{}: the message's id comes from an (?P<id>...) group, in `log.message` or in `log.line`",
            at(m.span().start + 1)
        ));
    }
    check_placeholders(raw.file.get_ref(), &at(raw.file.span().start + 1), "`log.file`")?;
    for a in &raw.also {
        check_placeholders(a, &at(raw.file.span().start + 1), "`log.also`")?;
    }
    let mut normalize = Vec::new();
    for n in &raw.normalize {
        normalize.push((regex(&n.pattern, "normalize.match")?, n.replace.clone()));
    }
    let rules = rules::load(&raw.rule, at, true)?;
    if !rules.iter().any(|r| matches!(r.says, rules::Says::Outcome(_))) {
        return Err(format!(
            "{}: the log needs at least one [[log.rule]] that says sent, deferred or bounced: without one no attempt ever ends",
            at(raw.file.span().start)
        ));
    }
    Ok(LogSpec {
        file: raw.file.get_ref().clone(),
        line,
        message: m.get_ref().clone(),
        hide_id: raw.hide_id.clone(),
        keep: raw.keep.as_ref().map(|k| regex(k, "keep")).transpose()?,
        foreground: raw.foreground,
        syslog: raw.syslog,
        also: raw.also.clone(),
        normalize,
        rules,
    })
}

/// One log line, taken apart by `log.line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub source: Option<String>,
    pub pid: Option<String>,
    pub id: Option<String>,
    pub text: String,
}

impl Line {
    /// What the rules match: `source: text`, or the text.
    pub fn shown(&self) -> String {
        match &self.source {
            Some(s) => format!("{s}: {}", self.text),
            None => self.text.clone(),
        }
    }
}

impl LogSpec {
    /// The lines of `text` that `log.line` reads (others, such as a wrapped line, are skipped).
    pub fn lines(&self, text: &str) -> Vec<Line> {
        text.lines()
            .filter_map(|l| {
                let c = self.line.captures(l)?;
                let group = |n: &str| c.name(n).map(|m| m.as_str().to_string());
                Some(Line {
                    source: group("source"),
                    pid: group("pid"),
                    id: group("id"),
                    text: group("text")?,
                })
            })
            .collect()
    }

    /// The id of the message the submission gave the sender: from the first line that
    /// `message` matches (its `id` group, or the line's).
    pub fn message_id(&self, message: &Regex, lines: &[Line]) -> Option<String> {
        lines.iter().find_map(|l| {
            let shown = l.shown();
            let c = message.captures(&shown)?;
            c.name("id").map(|m| m.as_str().to_string()).or_else(|| l.id.clone())
        })
    }

    /// A line's text without what differs between runs.
    pub fn normalized(&self, text: &str, id: &str) -> String {
        let mut t = match &self.hide_id {
            Some(word) if !id.is_empty() => text.replace(id, word),
            _ => text.to_string(),
        };
        for (re, with) in &self.normalize {
            t = re.replace_all(&t, with.as_str()).into_owned();
        }
        t.trim().to_string()
    }

    /// The attempt of message `id` in `lines`, once its outcome is logged; `extra` are the
    /// new lines of the `also` files, by file name, appended to the trace.
    pub fn attempt(&self, rules: &[Rule], lines: &[Line], id: &str, extra: &[(String, Vec<Line>)]) -> Option<Attempt> {
        let kept = |l: &Line| self.keep.as_ref().is_none_or(|k| k.is_match(&l.shown()));
        let outcome_rules: Vec<&Rule> = rules
            .iter()
            .filter(|r| matches!(r.spec.says, rules::Says::Outcome(_)))
            .collect();
        let ignored = |l: &Line| {
            rules
                .iter()
                .any(|r| r.spec.says == rules::Says::Ignore && r.pattern.is_match(&l.shown()))
        };
        // The attempt ends at the message's last outcome line.
        let end = lines.iter().rposition(|l| {
            l.id.as_deref() == Some(id)
                && kept(l)
                && !ignored(l)
                && outcome_rules.iter().any(|r| r.pattern.is_match(&l.shown()))
        })?;
        let pids: std::collections::BTreeSet<&str> = lines[..=end]
            .iter()
            .filter(|l| l.id.as_deref() == Some(id))
            .filter_map(|l| l.pid.as_deref())
            .collect();
        let ours = |l: &Line| match (&l.id, &l.pid) {
            (Some(i), _) => i == id,
            (None, Some(p)) => pids.contains(p.as_str()),
            (None, None) => false,
        };
        let mut reading = Reading::default();
        let mut log = Vec::new();
        let norm = |t: &str| self.normalized(t, id);
        for l in lines[..=end].iter().filter(|l| ours(l) && kept(l)) {
            let text = norm(&l.text);
            let shown = match &l.source {
                Some(s) => format!("{s}: {text}"),
                None => text.clone(),
            };
            if reading.read(rules, &l.shown(), &text, &norm) {
                log.push(shown);
            }
        }
        for (name, extra) in extra {
            for l in extra.iter().filter(|l| !ignored(l)) {
                log.push(format!("{name}: {}", norm(&l.text)));
            }
        }
        reading.attempt(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id of another message on a line of a process that also handled ours is not ours;
    /// a line without an id belongs to the processes that logged our id.
    #[test]
    fn lines_belong_by_id_and_by_process() {
        let raw: RawLog = toml::from_str(
            r#"
file = "x"
line = '^.*? (?P<source>[^\s\[]+)\[(?P<pid>\d+)\]: (?P<text>(?:(?P<id>[0-9A-F]{4,16}): )?.*)$'
message = '^p/pickup: (?P<id>[0-9A-F]+): from=<${DANESIM_SENDER}>'
hide_id = "QID"
keep = '^p/smtp: '
[[log.normalize]]
match = ', delay=[^,]*'
replace = ""
[[log.rule]]
match = 'status=sent \((?P<text>.*?)\)*$'
says = "sent"
[[log.rule]]
match = '^p/smtp: Verified TLS to \S+\[(?P<address>[^\]]+)\]'
says = "verified"
[[log.rule]]
match = '\[(?P<address>[0-9a-fA-F.:]+)\]'
says = "reason"
"#
            .replace("[[log.", "[[")
            .as_str(),
        )
        .unwrap();
        let spec = load(&raw, &|o| format!("t:{o}")).unwrap();
        let text = "Dec  4 10:00:00 client p/pickup[1]: AB12: from=<s@client.test>\n\
                    Dec  4 10:00:00 client p/smtp[2]: Verified TLS to mx1[192.0.2.10]:25\n\
                    Dec  4 10:00:00 client p/smtp[3]: Verified TLS to mx9[192.0.2.99]:25\n\
                    Dec  4 10:00:00 client p/smtp[2]: CD34: to=<s@client.test>, status=sent (other)\n\
                    Dec  4 10:00:00 client p/smtp[2]: AB12: to=<u@x>, delay=0.1, status=sent (250 ok))\n\
                    Dec  4 10:00:00 client p/qmgr[4]: AB12: removed\n";
        let lines = spec.lines(text);
        let vars = [("DANESIM_SENDER", "s@client.test".to_string())];
        let message = rules::regex(&super::super::profile::expand_regex(&spec.message, &vars)).unwrap();
        let id = spec.message_id(&message, &lines).unwrap();
        assert_eq!(id, "AB12");
        let rules = rules::compile(&spec.rules, &vars).unwrap();
        let a = spec.attempt(&rules, &lines, &id, &[]).unwrap();
        assert_eq!(a.text, "250 ok");
        let mx1: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(a.tls.keys().collect::<Vec<_>>(), vec![&mx1], "pid 3 never logged AB12");
        assert_eq!(
            a.log,
            vec![
                "p/smtp: Verified TLS to mx1[192.0.2.10]:25",
                "p/smtp: QID: to=<u@x>, status=sent (250 ok))"
            ]
        );
        // Before the outcome line, no attempt.
        assert!(spec.attempt(&rules, &lines[..3], &id, &[]).is_none());
    }

    /// The shipped profile's `[log]`, its rules compiled for user@example.test from
    /// sender@client.test, and the attempt it reads in `text`.
    fn shipped(name: &str, text: &str) -> Option<Attempt> {
        let p = super::super::profile::load(&std::path::Path::new(crate::sender::SHIPPED).join(format!("{name}.toml")))
            .unwrap();
        let spec = p.log.unwrap();
        let vars = [
            ("DANESIM_SENDER", "sender@client.test".to_string()),
            ("DANESIM_RECIPIENT", "user@example.test".to_string()),
        ];
        let message = rules::regex(&super::super::profile::expand_regex(&spec.message, &vars)).unwrap();
        let lines = spec.lines(text);
        let id = spec.message_id(&message, &lines)?;
        let rules = rules::compile(&spec.rules, &vars).unwrap();
        spec.attempt(&rules, &lines, &id, &[])
    }

    const POSTFIX_SENT: &str = "\
Nov 23 12:00:00 client postfix/pickup[7]: 4B1C2C1: uid=0 from=<sender@client.test>
Nov 23 12:00:00 client postfix/cleanup[8]: 4B1C2C1: message-id=<1@client.test>
Nov 23 12:00:00 client postfix/qmgr[9]: 4B1C2C1: from=<sender@client.test>, size=300, nrcpt=1 (queue active)
Nov 23 12:00:00 client postfix/discard[11]: 77AA: to=<sender@client.test>, relay=none, status=sent (client.test)
Nov 23 12:00:00 client postfix/smtp[10]: Verified TLS connection established to mx1.example.test[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 23 12:00:00 client postfix/smtp[10]: 4B1C2C1: to=<user@example.test>, relay=mx1.example.test[192.0.2.10]:25, delay=0.1, delays=0.01/0/0.05/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 23 12:00:00 client postfix/qmgr[9]: 4B1C2C1: removed
";

    /// Postfix through its profile: the verified peer, the relay, the status; the discard
    /// of an earlier bounce and the queueing lines are not the delivery's.
    #[test]
    fn the_postfix_profile_reads_a_verified_delivery() {
        let a = shipped("postfix", POSTFIX_SENT).unwrap();
        let addr: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(a.terminal, super::super::Terminal::Sent);
        assert_eq!(a.status_line(), "2.0.0 250 2.0.0 Ok");
        assert_eq!(a.relay, Some(("mx1.example.test".into(), addr)));
        assert_eq!(a.tls.get(&addr), Some(&super::super::TlsClaim::Verified));
        assert_eq!(a.log.len(), 2, "{:?}", a.log);
        assert_eq!(
            a.log[1],
            "postfix/smtp: QUEUEID: to=<user@example.test>, relay=mx1.example.test[192.0.2.10]:25, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
        );
        // Before the status line there is no attempt yet; a bounce strips every closing parenthesis.
        let early: String = POSTFIX_SENT.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert!(shipped("postfix", &early).is_none());
        let bounced = "Nov 23 12:00:00 client postfix/pickup[7]: AB1234: uid=0 from=<sender@client.test>\n\
            Nov 23 12:00:00 client postfix/smtp[10]: AB1234: to=<user@example.test>, relay=mx1.example.test[192.0.2.10]:25, delay=0.1, dsn=5.1.1, status=bounced (host mx1.example.test[192.0.2.10] said: 550 5.1.1 User unknown (in reply to RCPT TO command))\n";
        let a = shipped("postfix", bounced).unwrap();
        assert_eq!(a.terminal, super::super::Terminal::Bounced);
        assert!(
            a.status_line().ends_with("(in reply to RCPT TO command"),
            "{}",
            a.status_line()
        );
        assert!(a.relay.is_none(), "only a delivery names the peer that took it");
    }

    /// Exim through its profile: a deferral past the retry cutoff is bounced in the same
    /// run, and the bounce is the outcome; times and sizes are gone from the trace.
    #[test]
    fn the_exim_profile_reads_a_deferral_then_a_bounce() {
        let log = "2026-06-05 01:15:04.000 [420] 1wTq4W-00006d-00 <= sender@client.test U=root P=local S=302 for user@example.test\n\
            2026-06-05 01:15:04.071 [424] 1wTq4W-00006d-00 DANE attempt failed; TLS connection to mail.example.test [192.0.2.10]: (certificate verification failed): Verification failed. The certificate differs.\n\
            2026-06-05 01:15:04.075 [423] 1wTq4W-00006d-00 == user@example.test R=dnslookup T=remote_smtp defer (-37) H=mail.example.test DS [192.0.2.10]:25 DT=0.040s: TLS session: (certificate verification failed): Verification failed. The certificate differs.\n\
            2026-06-05 01:15:04.079 [423] 1wTq4W-00006d-00 ** user@example.test: retry timeout exceeded\n";
        let a = shipped("exim", log).unwrap();
        assert_eq!(a.terminal, super::super::Terminal::Bounced);
        assert_eq!(a.text, "retry timeout exceeded");
        let addr: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        assert!(a.reasons[&addr].contains("The certificate differs"), "{:?}", a.reasons);
        assert_eq!(a.log.len(), 3, "the arrival line is not the delivery's: {:?}", a.log);
        assert!(!a.log[1].contains("DT="), "{}", a.log[1]);
        let deferred: String = log.lines().take(3).map(|l| format!("{l}\n")).collect();
        let a = shipped("exim", &deferred).unwrap();
        assert_eq!(a.terminal, super::super::Terminal::Deferred);
        assert_eq!(
            a.text,
            "TLS session (certificate verification failed) Verification failed. The certificate differs."
        );
        let sent = "2026-11-23 12:56:02.240 [1] 1xVTaU-0004Mx-0l <= sender@client.test U=root P=local S=302 for user@example.test\n\
            2026-11-23 12:56:02.389 [2] 1xVTaU-0004Mx-0l => user@example.test P=<sender@client.test> R=dnslookup T=remote_smtp S=316 H=mx1.example.test DS [192.0.2.10]:25 X=TLS1.3:AES_256_GCM:256 CV=dane DN=\"CN=mx1\" C=\"250 2.0.0 Ok: queued as 1\" QT=0.149s DT=0.095s\n";
        let a = shipped("exim", sent).unwrap();
        assert_eq!(a.status_line(), "2.0.0 250 2.0.0 Ok: queued as 1");
        assert_eq!(a.tls.get(&addr), Some(&super::super::TlsClaim::Verified));
        assert_eq!(a.relay, Some(("mx1.example.test".into(), addr)));
    }
}
