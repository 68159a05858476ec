//! Scripted SMTP replies: a scenario replaces the endpoint's usual reply at a stage of the
//! dialogue (RFC 5321 §4.3.2 lists which codes each command may get), delays it, or drops
//! the connection in the middle of DATA. [`Sessions`] gives single connections of an endpoint
//! their own script, by the connection's ordinal.

use std::collections::BTreeMap;
use std::time::Duration;

/// A point in the dialogue whose reply a scenario can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The 220 greeting (RFC 5321 §4.3.1: 554 or 421 instead).
    Greeting,
    Ehlo,
    Mail,
    Rcpt,
    /// The reply to the DATA command itself (354 normally).
    Data,
    /// The reply after the final `.` (RFC 5321 §4.1.1.4).
    EndOfData,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Greeting,
        Stage::Ehlo,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::EndOfData,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::EndOfData => "end-of-data",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.name() == s)
    }
}

/// One reply line: a three-digit code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    /// Parses `451 4.3.0 Try again later` (RFC 5321 §4.2: code 200-599, then text).
    pub fn parse(s: &str) -> Result<Reply, String> {
        let s = s.trim();
        let (code, text) = s.split_once(' ').unwrap_or((s, ""));
        let code: u16 = code
            .parse()
            .ok()
            .filter(|c| (200..600).contains(c) && code.len() == 3)
            .ok_or_else(|| format!("`{code}` is not a reply code (200-599)"))?;
        if text.bytes().any(|b| b.is_ascii_control()) {
            return Err("the reply text must be one line of printable text".into());
        }
        Ok(Reply {
            code,
            text: text.to_string(),
        })
    }

    /// RFC 5321 §3.8: 421 means the server is closing the channel.
    pub(crate) fn closes(&self) -> bool {
        self.code == 421
    }

    pub(crate) fn is_positive(&self) -> bool {
        self.code < 400
    }
}

/// The scripted parts of one endpoint's dialogue; the default scripts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub replies: BTreeMap<Stage, Reply>,
    /// Close the connection in the middle of the message, without a reply (RFC 5321 §6.1:
    /// the client cannot know whether the message was taken).
    pub drop_in_data: bool,
    /// With `drop_in_data`: close once this many octets of the message *body* have arrived
    /// (after the header section, which each sender writes differently; counted as
    /// [`super::body_len`] counts), at the end of the line that reaches it; `None` closes
    /// after the first line. A shorter body is not dropped.
    pub drop_after_body_bytes: Option<usize>,
    /// Accept DATA lines longer than RFC 5321 §4.5.3.1.6's 1000 octets (a lenient server, as Postfix is with
    /// `smtpd` splitting long lines); by default such a message is refused with 500.
    pub long_lines: bool,
    /// Wait this long before the reply at a stage (a slow server; RFC 5321 §4.5.3.2 gives
    /// clients minutes, simulations use seconds).
    pub delays: BTreeMap<Stage, Duration>,
}

impl Script {
    pub(crate) fn reply(&self, stage: Stage) -> Option<&Reply> {
        self.replies.get(&stage)
    }

    pub(crate) fn delay(&self, stage: Stage) -> Option<Duration> {
        self.delays.get(&stage).copied()
    }

    /// What the script does, in words for `danesim explain` ("unscripted" when nothing).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (stage, r) in &self.replies {
            parts.push(format!("{} answered `{} {}`", stage.name(), r.code, r.text));
        }
        for (stage, d) in &self.delays {
            parts.push(format!("waits {} before {}", crate::duration::format(*d), stage.name()));
        }
        if self.drop_in_data {
            parts.push(match self.drop_after_body_bytes {
                Some(n) => format!("drops the connection after {n} octets of the body"),
                None => "drops the connection after the message's first line".into(),
            });
        }
        if parts.is_empty() {
            "unscripted".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Scripts for single connections of an endpoint, by ordinal: the endpoint's 1st, 2nd, ...
/// accepted connection over the whole run (a timeline's attempts share the count). A
/// connection not named here runs the endpoint's own script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sessions(pub BTreeMap<u32, Script>);

impl Sessions {
    /// The script of connection `connection`, and whether it is one of its own.
    pub(crate) fn pick<'a>(&'a self, every: &'a Script, connection: u32) -> (&'a Script, bool) {
        match self.0.get(&connection) {
            Some(s) => (s, true),
            None => (every, false),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_and_bad_ones_say_why() {
        let r = Reply::parse("451 4.3.0 Try again later").unwrap();
        assert_eq!((r.code, r.text.as_str()), (451, "4.3.0 Try again later"));
        assert_eq!(Reply::parse("554").unwrap().text, "");
        assert!(Reply::parse("42 x").unwrap_err().contains("reply code"));
        assert!(Reply::parse("700 x").is_err());
        assert!(Reply::parse("0451 x").is_err());
        assert!(Reply::parse("451 a\r\nb").is_err());
        assert!(Reply::parse("421 bye").unwrap().closes());
        for st in Stage::ALL {
            assert_eq!(Stage::parse(st.name()), Some(st));
        }
    }

    #[test]
    fn a_connection_without_its_own_script_runs_the_endpoints() {
        let every = Script {
            drop_in_data: true,
            ..Script::default()
        };
        let second = Script::default();
        let sessions = Sessions([(2, second.clone())].into_iter().collect());
        assert_eq!(sessions.pick(&every, 1), (&every, false));
        assert_eq!(sessions.pick(&every, 2), (&second, true));
        assert_eq!(sessions.pick(&every, 3), (&every, false));
        assert_eq!(second.describe(), "unscripted");
        assert_eq!(every.describe(), "drops the connection after the message's first line");
    }
}
