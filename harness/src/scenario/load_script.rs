//! Loading an endpoint's SMTP script (`replies`, `delays`, `drop`, `drop_after_body_bytes`) and the
//! scripts of single connections (`[[endpoint.session]]`), with the same spanned errors as the
//! rest of the file.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::error::ScenarioError;
use super::file::{RawEndpoint, RawSession};
use super::load::Loader;
use crate::duration;
use crate::smtp::{Limits, Reply, Script, Sessions, body_len};

/// The highest connection ordinal a session may name: far beyond any timeline's connections,
/// low enough that a typo (an extra digit) is caught.
const MAX_CONNECTION: i64 = 1000;

/// The script keys of an endpoint or a session, borrowed from either raw table.
struct ScriptKeys<'a> {
    replies: Option<&'a BTreeMap<String, Spanned<String>>>,
    delays: Option<&'a BTreeMap<String, Spanned<String>>>,
    drop: Option<&'a Spanned<String>>,
    drop_after_body_bytes: Option<&'a Spanned<i64>>,
}

impl<'a> ScriptKeys<'a> {
    fn of_endpoint(e: &'a RawEndpoint) -> Self {
        ScriptKeys {
            replies: e.replies.as_ref(),
            delays: e.delays.as_ref(),
            drop: e.drop.as_ref(),
            drop_after_body_bytes: e.drop_after_body_bytes.as_ref(),
        }
    }

    fn of_session(s: &'a RawSession) -> Self {
        ScriptKeys {
            replies: s.replies.as_ref(),
            delays: s.delays.as_ref(),
            drop: s.drop.as_ref(),
            drop_after_body_bytes: s.drop_after_body_bytes.as_ref(),
        }
    }

    /// Where the first script key is, if any is set.
    fn first_span(&self) -> Option<Range<usize>> {
        let map_span = |m: Option<&BTreeMap<String, Spanned<String>>>| {
            m.and_then(|m| m.values().map(|v| v.span()).min_by_key(|s| s.start))
        };
        [
            map_span(self.replies),
            map_span(self.delays),
            self.drop.map(|d| d.span()),
            self.drop_after_body_bytes.map(|d| d.span()),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|s| s.start)
    }
}

/// Which connection a session names.
enum Ordinal {
    Nth(u32),
    /// Every connection no other session names (the endpoint's own script).
    Rest,
}

impl Loader<'_> {
    /// The endpoint's script and its sessions' scripts. `long_lines` is the endpoint's and
    /// holds for every connection.
    pub(super) fn scripts(&self, e: &RawEndpoint) -> Result<(Script, Sessions), ScenarioError> {
        let mut every = self.script_of(&ScriptKeys::of_endpoint(e))?;
        every.long_lines = e.long_lines;
        let mut sessions = BTreeMap::new();
        let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for raw in &e.session {
            let s = raw.get_ref();
            let ordinal = self.ordinal(&s.connection)?;
            let key = match ordinal {
                Ordinal::Nth(n) => n.to_string(),
                Ordinal::Rest => "rest".to_string(),
            };
            if let Some(first) = seen.get(&key) {
                let (line, _) = self.line_col(first.start);
                return Err(self.err(
                    s.connection.span(),
                    format!("connection {key} has a second session script"),
                    "here",
                    Some(format!(
                        "its first is at line {line}; merge the two into one `[[endpoint.session]]`"
                    )),
                ));
            }
            seen.insert(key, s.connection.span());
            let mut script = self.script_of(&ScriptKeys::of_session(s))?;
            script.long_lines = e.long_lines;
            match ordinal {
                Ordinal::Nth(n) => {
                    sessions.insert(n, script);
                }
                Ordinal::Rest => {
                    // "rest" and the endpoint's own keys would be two scripts for the same connections.
                    if let Some(span) = ScriptKeys::of_endpoint(e).first_span() {
                        return Err(self.err(
                            span,
                            "the endpoint scripts every connection here and has a `connection = \"rest\"` session",
                            "endpoint-level script",
                            Some(
                                "keep one: move these keys into the \"rest\" session, or drop the \"rest\" session"
                                    .into(),
                            ),
                        ));
                    }
                    every = script;
                }
            }
        }
        Ok((every, Sessions(sessions)))
    }

    /// A drop point past the end of the scenario's message body would never drop: the
    /// scenario would silently test a clean delivery. Every sender carries the body
    /// unchanged (only headers differ), so its length is known here.
    pub(super) fn drop_points_fit(&self, endpoints: &[RawEndpoint], body: &[u8]) -> Result<(), ScenarioError> {
        let len = body_len(body);
        let points = endpoints.iter().flat_map(|e| {
            e.drop_after_body_bytes.iter().chain(
                e.session
                    .iter()
                    .filter_map(|s| s.get_ref().drop_after_body_bytes.as_ref()),
            )
        });
        for n in points {
            if usize::try_from(*n.get_ref()).is_ok_and(|n| n > len) {
                return Err(self.err(
                    n.span(),
                    format!(
                        "the message body has {len} octets, so a drop after {} never happens",
                        n.get_ref()
                    ),
                    "here",
                    Some(
                        "give a smaller number, or a longer `[message] body` (the part after the first empty line; \
                         lines count with their CRLF)"
                            .into(),
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `connection = 1` (the endpoint's first accepted connection), `2`, ..., or `"rest"`.
    fn ordinal(&self, v: &Spanned<toml::Value>) -> Result<Ordinal, ScenarioError> {
        let help = || {
            Some(format!(
                "`connection = 1` is the endpoint's first accepted connection, 2 the next (counted over the whole run, \
                 every attempt of a timeline); `connection = \"rest\"` every other one; at most {MAX_CONNECTION}"
            ))
        };
        match v.get_ref() {
            toml::Value::Integer(n) if (1..=MAX_CONNECTION).contains(n) => {
                Ok(Ordinal::Nth(u32::try_from(*n).expect("bounded above")))
            }
            toml::Value::Integer(0) => {
                Err(self.err(v.span(), "connection 0: connections count from 1", "here", help()))
            }
            toml::Value::Integer(n) => Err(self.err(
                v.span(),
                format!("connection {n} is out of range (1 to {MAX_CONNECTION})"),
                "here",
                help(),
            )),
            toml::Value::String(s) if s == "rest" => Ok(Ordinal::Rest),
            toml::Value::String(s) => Err(self.err(v.span(), format!("unknown connection `{s}`"), "here", help())),
            other => Err(self.err(
                v.span(),
                format!("a connection is a number or \"rest\", not a {}", other.type_str()),
                "here",
                help(),
            )),
        }
    }

    /// `replies = { mail = "451 4.3.0 Try later" }`, `delays`, `drop = "data"` and
    /// `drop_after_body_bytes`.
    fn script_of(&self, k: &ScriptKeys<'_>) -> Result<Script, ScenarioError> {
        let mut script = Script::default();
        for (stage, reply) in k.replies.into_iter().flatten() {
            let st = self.stage(stage, reply, "replies")?;
            let r = Reply::parse(reply.get_ref()).map_err(|m| {
                self.err(
                    self.inner(reply),
                    m,
                    "here",
                    Some("e.g. \"451 4.3.0 Try again later\"".into()),
                )
            })?;
            script.replies.insert(st, r);
        }
        for (stage, delay) in k.delays.into_iter().flatten() {
            let st = self.stage(stage, delay, "delays")?;
            let d = self.duration(delay, &duration::REAL_WAIT)?;
            script.delays.insert(st, d);
        }
        if let Some(d) = k.drop {
            if d.get_ref() != "data" {
                return Err(self.err(
                    self.inner(d),
                    format!("unknown drop point `{}`", d.get_ref()),
                    "here",
                    Some("the one drop point is `drop = \"data\"` (in the middle of the message)".into()),
                ));
            }
            script.drop_in_data = true;
        }
        if let Some(n) = k.drop_after_body_bytes {
            let max = Limits::default().max_message;
            if k.drop.is_none() {
                return Err(self.err(
                    n.span(),
                    "`drop_after_body_bytes` without `drop = \"data\"`",
                    "here",
                    Some("add `drop = \"data\"` beside it: it says where the connection drops".into()),
                ));
            }
            let bytes = usize::try_from(*n.get_ref())
                .ok()
                .filter(|b| (1..=max).contains(b))
                .ok_or_else(|| {
                    self.err(
                        n.span(),
                        format!("{} bytes: `drop_after_body_bytes` is 1 to {max}", n.get_ref()),
                        "here",
                        Some("octets of the message body received before the drop (the endpoint's message limit is the most)".into()),
                    )
                })?;
            script.drop_after_body_bytes = Some(bytes);
        }
        Ok(script)
    }
}
