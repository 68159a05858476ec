//! Parse, don't validate: the raw file is resolved into the checked model once,
//! and every complaint points at file:line:col.

use super::error::ScenarioError;
use super::file::{RawAttacker, RawCert, RawEndpoint, RawExpect, RawFault, RawRoute, RawScenario, RawZone};
use super::model::*;
use crate::dns;
use crate::dns::{Denial, DsMode, FaultKind, FaultSpec};
use crate::duration;
use crate::pki::{CertSpec, KeyRef, SpecField, Tlsa, check_computable};
use crate::smtp::{Behaviour, InjectAt, Reply, Stage};
use crate::vocab::{ConnectTarget, HostCode, Invariant, ResultCode, fqdn};
use crate::world::Published;
use hickory_proto::rr::RecordType;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration as StdDuration;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use toml::Spanned;

/// The default world clock. Fixed, so certificates are byte-identical every run.
pub const DEFAULT_CLOCK: &str = "2026-06-01T00:00:00Z";
pub const DEFAULT_FROM: &str = "sender@client.test";
pub const DEFAULT_TO: &str = "user@example.test";
pub const DEFAULT_BODY: &str =
    "From: sender@client.test\r\nTo: user@example.test\r\nSubject: danesim\r\n\r\nHello from danesim.\r\n";
/// Short by default, so that timeline steps (later) can let caches expire quickly.
pub const DEFAULT_TTL: u32 = 300;

/// Load one scenario file: read within the input limits ([`super::read`]), then resolve.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_str(path, &super::read::read_source(path)?)
}

/// Scenarios that reuse an id already taken by an earlier one in `list` (ids name snapshots
/// and report lines, so they are unique across a run): an error at each later file's `id`,
/// naming the file that has it first.
pub fn duplicate_ids(list: &[Scenario]) -> Vec<ScenarioError> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Spanned<String>,
    }
    let mut first: BTreeMap<&str, &Path> = BTreeMap::new();
    let mut out = Vec::new();
    for s in list {
        let Some(prev) = first.get(s.id.as_str()).copied() else {
            first.insert(&s.id, &s.path);
            continue;
        };
        let message = format!("scenario id `{}` is already used by {}", s.id, prev.display());
        let help = Some("ids are unique across the scenarios a run loads: rename one of them".to_string());
        // The file loaded a moment ago; read it again for the position of its id.
        let source = super::read::read_source(&s.path).unwrap_or_default();
        let span = toml::from_str::<IdOnly>(&source).map_or(0..0, |r| r.id.span());
        out.push(ScenarioError::at(
            &s.path,
            &source,
            span,
            message,
            "second use of this id",
            help,
        ));
    }
    out
}

pub fn load_str(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().to_string();
        let help = if msg.contains("unknown field") {
            Some("see scenarios/README.md for the keys each table takes".to_string())
        } else {
            None
        };
        ScenarioError::at(path, source, span, msg.clone(), "here", help)
    })?;
    Loader { path, source }.resolve(raw)
}

/// Zones with fewer record lines than this are checked on the calling thread.
const PARALLEL_CHECK_FROM: usize = 2048;

pub(super) struct Loader<'a> {
    path: &'a Path,
    source: &'a str,
}

impl Loader<'_> {
    /// The 1-based line of a byte offset in the file (for "first at line N" in messages).
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let end = super::error::floor_char_boundary(self.source, offset.min(self.source.len()));
        self.source[..end].matches('\n').count() + 1
    }

    pub(super) fn err(
        &self,
        span: Range<usize>,
        msg: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) -> ScenarioError {
        ScenarioError::at(self.path, self.source, span, msg, label, help)
    }

    /// The 1-based line and column of a byte offset of the file.
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        super::error::line_col(self.source, offset)
    }

    /// The span of a string's content, without its opening quote, so columns land on the text.
    pub(super) fn inner(&self, s: &Spanned<String>) -> Range<usize> {
        let sp = s.span();
        let quote = match self.source.get(sp.start..sp.start + 3) {
            Some("\"\"\"") | Some("'''") => 3,
            _ => 1,
        };
        let start = (sp.start + quote).min(sp.end);
        start..sp.end.saturating_sub(quote).max(start)
    }

    /// A duration of the file (the one syntax, [`duration`]), within the bounds of its use.
    pub(super) fn duration(
        &self,
        s: &Spanned<String>,
        bounds: &duration::Bounds,
    ) -> Result<StdDuration, ScenarioError> {
        duration::parse(s.get_ref(), bounds).map_err(|e| {
            self.err(
                self.inner(s),
                e.to_string(),
                "here",
                Some("durations are a number and a unit, repeated: \"400ms\", \"90s\", \"1h30m\", \"2d\"".into()),
            )
        })
    }

    /// The span in the file of bytes `decoded` of a string's value: escapes before them take
    /// other lengths in the file ([`super::span`]). Falls back to the start of the string's
    /// content should the file's text not decode to the value.
    pub(super) fn in_string(&self, s: &Spanned<String>, decoded: Range<usize>) -> Range<usize> {
        let sp = s.span();
        let raw = self.source.get(sp.clone()).unwrap_or("");
        let map = |d| super::span::source_offset(raw, s.get_ref(), d).map(|o| sp.start + o);
        match (map(decoded.start), map(decoded.end)) {
            (Some(a), Some(b)) => a..b.max(a),
            _ => {
                let start = self.inner(s).start;
                start..start
            }
        }
    }

    fn resolve(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let id = raw.id.get_ref().clone();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(self.err(
                raw.id.span(),
                "scenario id must be lowercase letters, digits and '-'",
                "bad id",
                None,
            ));
        }
        let mut covers = Vec::new();
        for c in &raw.covers {
            if !is_catalogue_id(c.get_ref()) {
                return Err(self.err(
                    c.span(),
                    format!("`{}` is not a catalogue id", c.get_ref()),
                    "expected an id like EE-06 or TLSA-L-02",
                    Some("ids come from docs/CONFORMANCE.md".into()),
                ));
            }
            covers.push(c.get_ref().clone());
        }
        let clock = match &raw.clock {
            None => OffsetDateTime::parse(DEFAULT_CLOCK, &Rfc3339).expect("DEFAULT_CLOCK is valid RFC 3339"),
            Some(c) => OffsetDateTime::parse(c.get_ref(), &Rfc3339).map_err(|e| {
                self.err(
                    c.span(),
                    format!("clock is not an RFC 3339 time: {e}"),
                    "here",
                    Some("e.g. clock = \"2026-06-01T00:00:00Z\"".into()),
                )
            })?,
        };
        if let Some(c) = &raw.clock
            && !(clock_range().contains(&clock))
        {
            return Err(self.err(
                c.span(),
                format!("clock {} is outside the world's calendar", c.get_ref()),
                "here",
                Some(format!(
                    "certificate dates are encoded as UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5), years 1950 \
                     to 9999, and default to the clock -30d and +365d: write a clock between {} and {}",
                    clock_range().start().date(),
                    clock_range().end().date()
                )),
            ));
        }
        let message = self.message(&raw)?;
        let certs = self.certs(&raw.cert, clock)?;
        let cert_names: BTreeMap<String, &CertSpec> = certs.iter().map(|c| (c.name.clone(), c)).collect();
        let mut zones = self.zones(&raw.zone, &cert_names)?;
        self.signature_windows(&raw.zone, &mut zones, clock)?;
        let allowed = self.allowed_addresses(&raw.allow_addresses)?;
        self.zone_rules(&raw.zone, &zones)?;
        let endpoints = self.endpoints(&raw.endpoint, &cert_names, &allowed)?;
        self.drop_points_fit(&raw.endpoint, &message.body)?;
        let faults = self.faults(&raw.fault, &zones)?;
        let timeline = self.timeline(
            raw.timeline.as_ref(),
            &raw.step,
            &message.domain,
            &zones,
            &endpoints,
            &cert_names,
            &|leaf| chain_up(&cert_names, leaf),
        )?;
        self.record_addresses(&zones, timeline.as_ref(), &allowed)?;
        let expect = self.expect(&raw)?;
        let mut scenario = Scenario {
            path: self.path.to_path_buf(),
            id,
            title: raw.title,
            covers,
            teaches: raw.teaches.trim().to_string(),
            refs: raw.refs,
            clock,
            message,
            certs,
            zones,
            endpoints,
            faults,
            timeline,
            relay: None,
            expect,
        };
        scenario.relay = self.relay(raw.route.as_ref(), &scenario)?;
        self.step_zone_rules(&raw.step, &scenario)?;
        self.invariant_targets(&raw.expect.invariants, &scenario)?;
        self.presented_targets(&raw.expect, &scenario)?;
        self.attempt_checks(raw.timeline.as_ref(), &raw.cert, &mut scenario)?;
        Ok(scenario)
    }

    /// No vacuous invariant (DESIGN.md, "Rules that keep it honest"): a host, address or
    /// name an invariant names must be in the world, or the check could never fail. Hosts
    /// are decided by route ([`Published::route`], the verdict's rule too), never by a
    /// greeting name alone.
    pub(super) fn invariant_targets(&self, raw: &[Spanned<String>], s: &Scenario) -> Result<(), ScenarioError> {
        // The world before the first attempt and after each timeline step: a host that a
        // step routes to an endpoint is in the world as well.
        let mut states = vec![Published::from_templates(&s.zones)];
        if let Some(t) = &s.timeline {
            let mut current = s.clone();
            for step in &t.steps {
                step.apply(&mut current);
                states.push(Published::from_templates(&current.zones));
            }
        }
        for (inv, text) in s.expect.invariants.iter().zip(raw) {
            let (problem, help) = match inv {
                Invariant::NoMail(h) | Invariant::Sni { host: h, .. }
                    if states.iter().all(|p| p.route(h, &s.endpoints).is_empty()) =>
                {
                    (
                        format!("`{h}` leads to no endpoint of this world"),
                        self.declared(s, &states[0]),
                    )
                }
                Invariant::NoConnect { at, port } => {
                    let reached: Vec<&crate::scenario::EndpointDecl> = match at {
                        ConnectTarget::Address(a) => s.endpoints.iter().filter(|e| e.address == *a).collect(),
                        ConnectTarget::Host(h) => s
                            .endpoints
                            .iter()
                            .filter(|e| states.iter().any(|p| p.route(h, [*e]).contains(&e.address)))
                            .collect(),
                    };
                    if reached.is_empty() {
                        let problem = match at {
                            ConnectTarget::Address(a) => format!("no endpoint is declared at {a}"),
                            ConnectTarget::Host(h) => format!("`{h}` leads to no endpoint of this world"),
                        };
                        (problem, self.declared(s, &states[0]))
                    } else if let Some(p) = port
                        && !reached.iter().any(|e| e.port == *p)
                    {
                        (
                            format!("no endpoint that {at} leads to listens on port {p}"),
                            format!(
                                "the endpoints it leads to listen on: {}; name one of these ports, or give the \
                                 [[endpoint]] `port = {p}`",
                                reached
                                    .iter()
                                    .map(|e| format!("{}:{}", e.address, e.port))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    } else {
                        continue;
                    }
                }
                Invariant::Query { name, rtype } | Invariant::Tcp { name, rtype }
                    if !states.iter().any(|p| queryable(p, name, rtype)) =>
                {
                    (
                        format!("`{name}` is no name of this world's data (nor `_port._proto.` under one)"),
                        format!(
                            "a sender only queries names the world leads it to; the world's zones: {}",
                            list(s.zones.iter().map(|z| z.origin.as_str()))
                        ),
                    )
                }
                Invariant::Order { before, after }
                    if [before, after]
                        .iter()
                        .any(|(n, t)| !states.iter().any(|p| queryable(p, n, t))) =>
                {
                    let (n, _) = [before, after]
                        .into_iter()
                        .find(|(n, t)| !states.iter().any(|p| queryable(p, n, t)))
                        .expect("the guard found one");
                    (
                        format!("`{n}` is no name of this world's data (nor `_port._proto.` under one)"),
                        format!(
                            "a sender only queries names the world leads it to; the world's zones: {}",
                            list(s.zones.iter().map(|z| z.origin.as_str()))
                        ),
                    )
                }
                Invariant::NoQuery { name, rtype } if !states.iter().any(|p| queryable(p, name, rtype)) => (
                    format!("`{name}` is no name of this world's data (nor `_port._proto.` under one)"),
                    format!(
                        "a sender only queries names the world leads it to; the world's zones: {}",
                        list(s.zones.iter().map(|z| z.origin.as_str()))
                    ),
                ),
                _ => continue,
            };
            return Err(self.err(
                self.inner(text),
                format!(
                    "{inv}: {problem}, so the check could never {}",
                    // A check that a lookup happens fails for ever instead.
                    if matches!(
                        inv,
                        Invariant::Query { .. } | Invariant::Tcp { .. } | Invariant::Order { .. }
                    ) {
                        "pass"
                    } else {
                        "fail"
                    }
                ),
                "names nothing in this world",
                Some(help),
            ));
        }
        Ok(())
    }

    /// An endpoint's `port`: 1 to 65535 (RFC 6698 §3: the TLSA name carries it).
    fn port(&self, p: &Spanned<i64>) -> Result<u16, ScenarioError> {
        match u16::try_from(*p.get_ref()) {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(self.err(
                p.span(),
                format!("port {} is no TCP port a sender can connect to", p.get_ref()),
                "here",
                Some("write 1 to 65535; leave `port` out for SMTP's 25".into()),
            )),
        }
    }

    /// `[route] relay = "[host]:port"`: a relay host of the world, with an endpoint on that
    /// port, so that the route can carry the message (no vacuous route).
    fn relay(&self, raw: Option<&RawRoute>, s: &Scenario) -> Result<Option<Relay>, ScenarioError> {
        let Some(raw) = raw else { return Ok(None) };
        let r = &raw.relay;
        let text = r.get_ref().trim();
        let example = "e.g. relay = \"[mx1.example.test]:2525\" or relay = \"[mx1.example.test]\" (port 25)";
        let Some(rest) = text.strip_prefix('[') else {
            return Err(self.err(
                self.inner(r),
                format!("relay `{text}` has no brackets"),
                "here",
                Some(format!(
                    "a route that skips MX names its host in brackets, as Postfix's relayhost does (RFC 7672 \
                     §2.2.2); without them Postfix would look up MX, which the [route] does not model; {example}"
                )),
            ));
        };
        let Some((host, after)) = rest.split_once(']') else {
            return Err(self.err(
                self.inner(r),
                format!("relay `{text}` has no closing `]`"),
                "here",
                Some(example.into()),
            ));
        };
        let port = match after {
            "" => 25,
            p => match p.strip_prefix(':') {
                Some(p) => crate::vocab::port_arg(text, p)
                    .map_err(|m| self.err(self.inner(r), format!("relay {m}"), "here", Some(example.into())))?,
                None => {
                    return Err(self.err(
                        self.inner(r),
                        format!("relay `{text}`: `{after}` after the host is not `:port`"),
                        "here",
                        Some(example.into()),
                    ));
                }
            },
        };
        let host = host.trim();
        if host.is_empty() || host.contains(char::is_whitespace) || host.parse::<IpAddr>().is_ok() {
            return Err(self.err(
                self.inner(r),
                format!("relay `{text}` needs one host name in the brackets"),
                "here",
                Some(format!(
                    "the host name is the TLSA base domain (RFC 7672 §2.2.2, §2.2.3), so an address cannot \
                     stand for it; {example}"
                )),
            ));
        }
        let host = fqdn(host);
        let p = Published::from_templates(&s.zones);
        let reached: Vec<&EndpointDecl> = s
            .endpoints
            .iter()
            .filter(|e| p.addresses(&host).contains(&e.address))
            .collect();
        if reached.is_empty() {
            return Err(self.err(
                self.inner(r),
                format!("relay host `{host}` has no address record that leads to an endpoint of this world"),
                "names nothing in this world",
                Some(format!(
                    "a sender resolves the relay's A/AAAA records and connects there; {}",
                    self.declared(s, &p)
                )),
            ));
        }
        if !reached.iter().any(|e| e.port == port) {
            return Err(self.err(
                self.inner(r),
                format!("no endpoint of relay host `{host}` listens on port {port}"),
                "here",
                Some(format!(
                    "its endpoints listen on: {}; give that [[endpoint]] `port = {port}`, or relay to its port",
                    reached
                        .iter()
                        .map(|e| format!("{}:{}", e.address, e.port))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
        Ok(Some(Relay { host, port }))
    }

    /// The endpoints a scenario declares, with the names that route to each, for errors.
    pub(super) fn declared(&self, s: &Scenario, p: &Published) -> String {
        let routed = p.routed_names(&[s.message.domain.as_str()]);
        let each: Vec<String> = s
            .endpoints
            .iter()
            .map(|e| {
                let names = routed.get(&e.address);
                let via = match names {
                    Some(n) if !n.is_empty() => {
                        format!("names routed to it: {}", list(n.iter().map(String::as_str)))
                    }
                    _ => "no name routes to it".to_string(),
                };
                format!("{} (host {}; {via})", e.address, e.host)
            })
            .collect();
        format!(
            "declared endpoints: {}; name one of these hosts or addresses, or declare the [[endpoint]] and the records that lead to it",
            if each.is_empty() {
                "(none)".to_string()
            } else {
                each.join("; ")
            }
        )
    }

    pub(super) fn faults(&self, raw: &[RawFault], zones: &[ZoneDecl]) -> Result<Vec<FaultSpec>, ScenarioError> {
        let mut out = Vec::new();
        for f in raw {
            let qname = fqdn(f.qname.get_ref());
            if !zones
                .iter()
                .any(|z| qname == z.origin || qname.ends_with(&format!(".{}", z.origin)))
            {
                return Err(self.err(
                    self.inner(&f.qname),
                    format!("`{qname}` is in none of the world's zones"),
                    "here",
                    Some("a fault applies to queries the world's server answers: names under `test.`".into()),
                ));
            }
            let qtype = match &f.qtype {
                None => None,
                Some(t) => Some(RecordType::from_str(&t.get_ref().to_ascii_uppercase()).map_err(|_| {
                    self.err(
                        self.inner(t),
                        format!("`{}` is not a record type", t.get_ref()),
                        "here",
                        Some("e.g. qtype = \"TLSA\"".into()),
                    )
                })?),
            };
            let delay = match &f.delay {
                // Slow, yet inside the default 1 s DNS timeout with room to spare: a slow answer
                // that arrives (a later one is `drop`, or an explicit delay with --dns-timeout).
                None => StdDuration::from_millis(400),
                Some(d) => self.duration(d, &duration::REAL_WAIT)?,
            };
            if let Some(d) = f.delay.as_ref()
                && f.kind.get_ref() != "slow"
            {
                return Err(self.err(d.span(), "`delay` applies only to kind = \"slow\"", "here", None));
            }
            let kind = FaultKind::parse(f.kind.get_ref(), delay).ok_or_else(|| {
                self.err(
                    self.inner(&f.kind),
                    format!("unknown fault kind `{}`", f.kind.get_ref()),
                    "here",
                    Some(format!("known: {}", FaultKind::NAMES.join(", "))),
                )
            })?;
            if kind.is_signature() {
                let signed = zones
                    .iter()
                    .filter(|z| qname == z.origin || qname.ends_with(&format!(".{}", z.origin)))
                    .max_by_key(|z| z.origin.len())
                    .is_some_and(|z| z.signed || qtype == Some(RecordType::DS));
                if !signed {
                    return Err(self.err(
                        self.inner(&f.kind),
                        format!("`{}` changes RRSIGs, but `{qname}` is in an unsigned zone", kind.name()),
                        "here",
                        None,
                    ));
                }
            }
            let first = match &f.first {
                Some(n) if *n.get_ref() == 0 => {
                    return Err(self.err(
                        n.span(),
                        "`first` must be at least 1",
                        "here",
                        Some("omit it for a fault on every query".into()),
                    ));
                }
                n => n.as_ref().map(|n| *n.get_ref()),
            };
            let on_denial = self.fault_target(f, kind, &qname, qtype, zones)?;
            out.push(FaultSpec {
                qname,
                qtype,
                kind,
                first,
                on_denial,
            });
        }
        Ok(out)
    }

    /// Whether a fault breaks the denial proof of a negative answer (`on = "denial"`, and
    /// always for `no-denial`), checked so that it can act: a signature fault, one type, and
    /// an RRset the world does not have (RFC 4035 §3.1.3: only a negative answer has a proof).
    fn fault_target(
        &self,
        f: &RawFault,
        kind: FaultKind,
        qname: &str,
        qtype: Option<RecordType>,
        zones: &[ZoneDecl],
    ) -> Result<bool, ScenarioError> {
        let on_denial = match &f.on {
            None => kind == FaultKind::NoDenial,
            Some(on) => match on.get_ref().as_str() {
                "answer" if kind == FaultKind::NoDenial => {
                    return Err(self.err(
                        self.inner(on),
                        "`no-denial` removes a denial proof: it cannot act on the answer",
                        "here",
                        Some("omit `on`, or use kind = \"no-signature\" for the answer's RRSIGs".into()),
                    ));
                }
                "answer" => false,
                "denial" if !kind.is_signature() => {
                    return Err(self.err(
                        self.inner(on),
                        format!("`on = \"denial\"` applies to signature faults, not `{}`", kind.name()),
                        "here",
                        Some(
                            "bad-signature, expired-signature, future-signature, no-signature, wrong-key or \
                             no-denial"
                                .into(),
                        ),
                    ));
                }
                "denial" => true,
                other => {
                    return Err(self.err(
                        self.inner(on),
                        format!("unknown fault target `{other}`"),
                        "here",
                        Some("on = \"answer\" (the default) or on = \"denial\" (the NSEC/NSEC3 proof)".into()),
                    ));
                }
            },
        };
        if !on_denial {
            return Ok(false);
        }
        let at = f.on.as_ref().map_or_else(|| self.inner(&f.kind), |on| self.inner(on));
        let Some(qtype) = qtype else {
            return Err(self.err(
                at,
                "a fault on a denial proof needs `qtype`: the proof is for one name and type",
                "here",
                Some("e.g. qtype = \"TLSA\" for the NXDOMAIN or NODATA answer to that TLSA lookup".into()),
            ));
        };
        if world_has_rrset(zones, qname, qtype) {
            let span = f.qtype.as_ref().map_or_else(|| self.inner(&f.qname), |t| self.inner(t));
            return Err(self.err(
                span,
                format!("`{qname} {qtype}` exists in the world: its answer is positive and has no denial proof"),
                "here",
                Some("name an RRset the world does not publish, so that the answer is NXDOMAIN or NODATA".into()),
            ));
        }
        Ok(true)
    }

    /// RFC 5321 §4.1.2: a path's address has no controls, spaces or angle brackets (the
    /// sender adds the brackets); a CR LF would smuggle another SMTP command in after it.
    fn mailbox(&self, s: &Spanned<String>) -> Result<(), ScenarioError> {
        let Some((at, c)) = s
            .get_ref()
            .char_indices()
            .find(|&(_, c)| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
        else {
            return Ok(());
        };
        Err(self.err(
            self.in_string(s, at..at + c.len_utf8()),
            format!("{c:?} has no place in a mail address (RFC 5321 §4.1.2)"),
            "here",
            Some("write the bare address, e.g. \"user@example.test\"; danesim adds the angle brackets".into()),
        ))
    }

    fn message(&self, raw: &RawScenario) -> Result<Message, ScenarioError> {
        for s in [&raw.message.from, &raw.message.to].into_iter().flatten() {
            self.mailbox(s)?;
        }
        let from = raw
            .message
            .from
            .as_ref()
            .map_or(DEFAULT_FROM.to_string(), |s| s.get_ref().clone());
        let (to, to_span) = match &raw.message.to {
            Some(s) => (s.get_ref().clone(), s.span()),
            None => (DEFAULT_TO.to_string(), 0..0),
        };
        let Some((_, domain)) = to.rsplit_once('@').filter(|(l, d)| !l.is_empty() && !d.is_empty()) else {
            return Err(self.err(
                to_span,
                format!("`{to}` is not an address (local@domain)"),
                "here",
                None,
            ));
        };
        let body = raw.message.body.clone().unwrap_or_else(|| DEFAULT_BODY.to_string());
        Ok(Message {
            from,
            domain: fqdn(domain),
            to,
            body: body.into_bytes(),
        })
    }

    fn time(
        &self,
        v: &Option<Spanned<String>>,
        clock: OffsetDateTime,
        default: Duration,
    ) -> Result<OffsetDateTime, ScenarioError> {
        let Some(s) = v else {
            return Ok(clock + default);
        };
        parse_time(s.get_ref(), clock).map_err(|m| {
            self.err(
                self.inner(s),
                m,
                "here",
                Some("write an RFC 3339 time or an offset from the clock: \"-30d\", \"+365d\", \"+12h\"".into()),
            )
        })
    }

    fn certs(&self, raw: &[RawCert], clock: OffsetDateTime) -> Result<Vec<CertSpec>, ScenarioError> {
        let mut seen = BTreeSet::new();
        let names: BTreeSet<&str> = raw.iter().map(|c| c.name.get_ref().as_str()).collect();
        let mut out = Vec::new();
        for c in raw {
            let name = c.name.get_ref();
            if !seen.insert(name.as_str()) {
                return Err(self.err(
                    c.name.span(),
                    format!("certificate `{name}` is declared twice"),
                    "second declaration",
                    None,
                ));
            }
            let key = KeyRef::parse(c.key.get_ref()).map_err(|e| {
                self.err(
                    self.inner(&c.key),
                    format!("bad key `{}`: {e}", c.key.get_ref()),
                    "here",
                    Some("keys are \"ed25519:<any label>\" (derived from fixtures/keys/ed25519-master.seed) or \"p256:1\"..\"p256:4\"".into()),
                )
            })?;
            if let Some(iss) = &c.issuer {
                if !names.contains(iss.get_ref().as_str()) {
                    return Err(self.unknown_cert(iss, &names));
                }
                if iss.get_ref() == name {
                    return Err(self.err(
                        iss.span(),
                        "a certificate cannot name itself as issuer; omit `issuer` for self-signed",
                        "here",
                        None,
                    ));
                }
                let issuer_is_ca = raw.iter().any(|o| o.name.get_ref() == iss.get_ref() && o.ca);
                if !issuer_is_ca {
                    return Err(self.err(
                        iss.span(),
                        format!("issuer `{}` is not a CA", iss.get_ref()),
                        "here",
                        Some("set `ca = true` on the issuing certificate".into()),
                    ));
                }
            }
            let not_before = self.time(&c.not_before, clock, Duration::days(-30))?;
            let not_after = self.time(&c.not_after, clock, Duration::days(365))?;
            let spec = CertSpec {
                name: name.clone(),
                key,
                issuer: c.issuer.as_ref().map(|i| i.get_ref().clone()),
                ca: c.ca,
                path_len: c.path_len.as_ref().map(|n| *n.get_ref()),
                common_name: c.cn.clone(),
                sans: c.sans.iter().map(|n| n.get_ref().clone()).collect(),
                not_before,
                not_after,
                permitted_dns: c.permitted_dns.iter().map(|n| n.get_ref().clone()).collect(),
                serial: c.serial.as_ref().map(|s| self.serial(s)).transpose()?,
            };
            // The spec's own rules live in pki; here they point at the field.
            spec.check().map_err(|(field, reason)| {
                let (span, help) = match field {
                    SpecField::Name => (c.name.span(), "give the certificate a name"),
                    SpecField::San(i) => (
                        c.sans[i].span(),
                        "write DNS names such as \"mx1.example.test\" (an IDN as its xn-- A-label), or omit `sans`",
                    ),
                    SpecField::PermittedDns(i) if !c.ca => (
                        c.permitted_dns[i].span(),
                        "name constraints belong on a CA: set `ca = true`, or remove `permitted_dns`",
                    ),
                    SpecField::PermittedDns(i) => {
                        (c.permitted_dns[i].span(), "write DNS subtrees such as \"example.test\"")
                    }
                    SpecField::PathLen => (
                        c.path_len.as_ref().map_or(c.name.span(), |n| n.span()),
                        "a path length constrains a CA: set `ca = true`, or remove `path_len`",
                    ),
                };
                self.err(
                    span,
                    format!("certificate `{name}`: {reason}"),
                    "here",
                    Some(help.into()),
                )
            })?;
            out.push(spec);
        }
        // Issuer chains must end in a self-signed root (RFC 5280 §6.1); a cycle never does.
        for c in raw {
            let mut cur = c;
            let mut steps = 0;
            while let Some(iss) = &cur.issuer {
                steps += 1;
                if steps > raw.len() {
                    return Err(self.err(
                        c.name.span(),
                        format!("issuer chain of `{}` is a cycle", c.name.get_ref()),
                        "here",
                        None,
                    ));
                }
                cur = raw
                    .iter()
                    .find(|o| o.name.get_ref() == iss.get_ref())
                    .expect("issuer names were checked above");
            }
        }
        Ok(out)
    }

    pub(super) fn unknown_cert(&self, s: &Spanned<String>, names: &BTreeSet<&str>) -> ScenarioError {
        self.err(
            self.inner(s),
            format!("unknown certificate `{}`", s.get_ref()),
            "not declared in any [[cert]]",
            Some(format!("declared certificates: {}", list(names.iter().copied()))),
        )
    }

    fn zones(&self, raw: &[RawZone], certs: &BTreeMap<String, &CertSpec>) -> Result<Vec<ZoneDecl>, ScenarioError> {
        let mut out: Vec<ZoneDecl> = Vec::new();
        for z in raw {
            let origin = fqdn(z.origin.get_ref());
            if origin != "test." && !origin.ends_with(".test.") {
                return Err(self.err(
                    self.inner(&z.origin),
                    format!("zone `{origin}` is outside `test.`"),
                    "here",
                    Some("every world is rooted at the signed zone `test.` (RFC 6761 reserves .test)".into()),
                ));
            }
            if out.iter().any(|o| o.origin == origin) {
                return Err(self.err(
                    z.origin.span(),
                    format!("zone `{origin}` is declared twice"),
                    "here",
                    None,
                ));
            }
            let ttl = z.ttl.unwrap_or(DEFAULT_TTL);
            // Each line is checked alone, so a large zone is checked on every core; the results
            // are taken in order, so the first bad line is still the one reported.
            let check = |r: &Spanned<String>| self.record(&origin, ttl, r, certs);
            let checked: Vec<Result<RecordDecl, ScenarioError>> = if z.records.len() < PARALLEL_CHECK_FROM {
                z.records.iter().map(check).collect()
            } else {
                z.records.par_iter().map(check).collect()
            };
            let records = checked.into_iter().collect::<Result<Vec<_>, _>>()?;
            let ds = match &z.ds {
                None => DsMode::Secure,
                Some(d) => {
                    let mode = DsMode::parse(d.get_ref()).ok_or_else(|| {
                        self.err(
                            self.inner(d),
                            format!("unknown DS mode `{}`", d.get_ref()),
                            "here",
                            Some(format!("known: {}", DsMode::NAMES.join(", "))),
                        )
                    })?;
                    if !z.signed && mode != DsMode::Secure || origin == "test." {
                        return Err(self.err(
                            self.inner(d),
                            "`ds` applies to a signed zone below `test.`",
                            "here",
                            Some("an unsigned zone never has a DS; `test.` is the trust anchor".into()),
                        ));
                    }
                    mode
                }
            };
            let denial = match &z.denial {
                None => Denial::Nsec3,
                Some(d) => match d.get_ref().as_str() {
                    "nsec3" => Denial::Nsec3,
                    "nsec" if z.signed => Denial::Nsec,
                    "nsec" => {
                        return Err(self.err(
                            self.inner(d),
                            "`denial` applies to a signed zone",
                            "here",
                            Some("an unsigned zone proves nothing".into()),
                        ));
                    }
                    other => {
                        return Err(self.err(
                            self.inner(d),
                            format!("unknown denial `{other}`"),
                            "here",
                            Some("known: nsec3 (the default), nsec".into()),
                        ));
                    }
                },
            };
            out.push(ZoneDecl {
                origin,
                signed: z.signed,
                ds,
                denial,
                ttl,
                records,
                // Filled once the clock is known (`Loader::signature_windows`).
                signatures: Vec::new(),
            });
        }
        if !out.iter().any(|z| z.origin == "test.") {
            out.insert(
                0,
                ZoneDecl {
                    origin: "test.".into(),
                    signed: true,
                    ds: DsMode::Secure,
                    denial: Denial::Nsec3,
                    ttl: DEFAULT_TTL,
                    records: Vec::new(),
                    signatures: Vec::new(),
                },
            );
        } else if let Some(i) = out.iter().position(|z| z.origin == "test.") {
            let t = out.remove(i);
            if !t.signed {
                let z = raw
                    .iter()
                    .find(|z| fqdn(z.origin.get_ref()) == "test.")
                    .expect("test. was declared");
                return Err(self.err(
                    z.origin.span(),
                    "`test.` holds the trust anchor and must be signed",
                    "here",
                    None,
                ));
            }
            out.insert(0, t);
        }
        Ok(out)
    }

    /// The zone assembly rules (a CNAME beside other data, data at or below a cut, a DNAME
    /// with data below it: `dns::check_zones`), applied at load time so that a conflict is
    /// reported at the record that makes it. TLSA placeholders are checked with stand-in data.
    fn zone_rules(&self, raw: &[RawZone], zones: &[ZoneDecl]) -> Result<(), ScenarioError> {
        let Err(e) = dns::check_zones(&assembly_spec(zones)) else {
            return Ok(());
        };
        let raw_zone = |origin: &str| {
            raw.iter()
                .find(|z| fqdn(z.origin.get_ref()).eq_ignore_ascii_case(&fqdn(origin)))
        };
        let help = Some(ZONE_RULES_HELP.to_string());
        Err(match &e {
            dns::DnsError::Record {
                origin,
                index,
                column,
                message,
                ..
            } => match raw_zone(origin).and_then(|z| z.records.get(*index)) {
                Some(r) if *column == 0 => {
                    self.err(self.inner(r), format!("zone {origin}: {message}"), "this record", help)
                }
                Some(r) => {
                    let col = super::error::floor_char_boundary(r.get_ref(), *column);
                    self.err(
                        self.in_string(r, col..col),
                        format!("zone {origin}: {message}"),
                        "here",
                        help,
                    )
                }
                None => self.err(0..0, e.to_string(), "here", help),
            },
            dns::DnsError::Zone { origin, .. } | dns::DnsError::InvalidOrigin { origin, .. } => {
                let span = raw_zone(origin).map_or(0..0, |z| z.origin.span());
                self.err(span, e.to_string(), "this zone", help)
            }
            _ => self.err(0..0, e.to_string(), "here", help),
        })
    }

    /// The zone assembly rules after each timeline step, which can add a conflict (a CNAME
    /// beside data it adds); reported at the step, since the conflict may involve several.
    fn step_zone_rules(&self, raw: &[Spanned<super::file::RawStep>], s: &Scenario) -> Result<(), ScenarioError> {
        let Some(t) = &s.timeline else {
            return Ok(());
        };
        let mut current = s.clone();
        for (n, (step, raw)) in t.steps.iter().zip(raw).enumerate() {
            step.apply(&mut current);
            if let Err(e) = dns::check_zones(&assembly_spec(&current.zones)) {
                let what = match &e {
                    dns::DnsError::Record {
                        origin, line, message, ..
                    } => format!("zone {origin}: record `{line}`: {message}"),
                    other => other.to_string(),
                };
                return Err(self.err(
                    raw.span().start..raw.span().start,
                    format!("after step {}: {what}", n + 1),
                    "this step",
                    Some(ZONE_RULES_HELP.to_string()),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn record(
        &self,
        origin: &str,
        ttl: u32,
        r: &Spanned<String>,
        certs: &BTreeMap<String, &CertSpec>,
    ) -> Result<RecordDecl, ScenarioError> {
        let text = r.get_ref();
        let mut cert_ref = None;
        let mut check_line = text.clone();
        if let Some(open) = text.find("{cert:") {
            let Some(close_rel) = text[open..].find('}') else {
                return Err(self.err(
                    self.in_string(r, open..text.len()),
                    "unterminated `{cert:NAME}`",
                    "here",
                    None,
                ));
            };
            let close = open + close_rel;
            let name = text[open + 6..close].trim().to_string();
            let ph = open..close + 1;
            if !certs.contains_key(&name) {
                let names: BTreeSet<&str> = certs.keys().map(String::as_str).collect();
                return Err(self.err(
                    self.in_string(r, open..close + 1),
                    format!("unknown certificate `{name}`"),
                    "not declared in any [[cert]]",
                    Some(format!("declared certificates: {}", list(names.into_iter()))),
                ));
            }
            // The placeholder stands for the data of a TLSA record: read its parameters
            // (with their offsets, to point at one the data cannot be computed for).
            let before = &text[..open];
            let tokens: Vec<(usize, &str)> = before
                .split_whitespace()
                .map(|t| (t.as_ptr() as usize - before.as_ptr() as usize, t))
                .collect();
            let n = tokens.len();
            let params = (n >= 4 && tokens[n - 4].1.eq_ignore_ascii_case("TLSA")).then(|| {
                (
                    tokens[n - 3].1.parse::<u8>(),
                    tokens[n - 2].1.parse::<u8>(),
                    tokens[n - 1].1.parse::<u8>(),
                )
            });
            let Some((Ok(usage), Ok(selector), Ok(matching))) = params else {
                return Err(self.err(
                    self.in_string(r, open..close + 1),
                    "`{cert:NAME}` must be the data of a TLSA record",
                    "here",
                    Some("write e.g. \"_25._tcp.mx1 TLSA 3 1 1 {cert:mx1}\"".into()),
                ));
            };
            if let Err(e) = check_computable(selector, matching) {
                // The selector if it is the one at fault, else the matching type.
                let bad = if check_computable(selector, Tlsa::FULL).is_err() {
                    n - 2
                } else {
                    n - 1
                };
                let (at, what) = tokens[bad];
                return Err(self.err(
                    self.in_string(r, at..at + what.len()),
                    format!("{e}: `{{cert:{name}}}` needs a selector 0 or 1 and a matching type 0, 1 or 2"),
                    "here",
                    Some(
                        "RFC 6698 §2.1.2 and §2.1.3 define no other way to select or hash; write the data in hex \
                         instead of the placeholder to publish such a record"
                            .into(),
                    ),
                ));
            }
            // Check the syntax with stand-in data; the real hash is computed once the certificate exists.
            check_line.replace_range(ph.clone(), "00");
            cert_ref = Some(CertRef {
                cert: name,
                usage,
                selector,
                matching,
                placeholder: ph,
            });
        }
        let parsed = dns::parse_record_line(origin, ttl, &check_line).map_err(|e| {
            // The column is into `check_line`: past the stand-in data, it is that much further
            // into the text.
            let col = match &cert_ref {
                Some(c) if e.column >= c.placeholder.start + 2 => e.column - 2 + c.placeholder.len(),
                Some(c) if e.column >= c.placeholder.start => c.placeholder.start,
                _ => e.column,
            };
            let col = super::error::floor_char_boundary(text, col);
            let end = text[col..]
                .find(char::is_whitespace)
                .map_or(text.len(), |i| col + i)
                .max(col + 1)
                .min(text.len());
            self.err(
                self.in_string(r, col..end),
                format!("bad record in zone {origin}: {}", e.message),
                "here",
                Some("one RFC 1035 record per string: \"owner [ttl] TYPE rdata\", names relative to the zone".into()),
            )
        })?;
        Ok(RecordDecl {
            template: text.clone(),
            span: self.inner(r),
            // With a placeholder, what was parsed is the stand-in line, not the record.
            parsed: cert_ref.is_none().then_some(parsed),
            cert_ref,
        })
    }

    fn endpoints(
        &self,
        raw: &[RawEndpoint],
        certs: &BTreeMap<String, &CertSpec>,
        allowed: &BTreeSet<IpAddr>,
    ) -> Result<Vec<EndpointDecl>, ScenarioError> {
        let names: BTreeSet<&str> = certs.keys().map(String::as_str).collect();
        let mut out: Vec<EndpointDecl> = Vec::new();
        for e in raw {
            // A world address (`crate::address`), IPv4-mapped ones read as IPv4.
            let address = self.ip(&e.address)?;
            let address = self.world_address(address, self.inner(&e.address), "endpoint address", allowed)?;
            if out.iter().any(|o| o.address == address) {
                return Err(self.err(e.address.span(), format!("two endpoints at {address}"), "here", None));
            }
            let chain_up = |leaf: &String| chain_up(certs, leaf);
            let chain = match (&e.chain, &e.cert) {
                (Some(_), Some(c)) => {
                    return Err(self.err(c.span(), "give either `cert` or `chain`, not both", "here", None));
                }
                (Some(chain), None) => {
                    let mut v = Vec::new();
                    for c in chain {
                        if !certs.contains_key(c.get_ref()) {
                            return Err(self.unknown_cert(c, &names));
                        }
                        v.push(c.get_ref().clone());
                    }
                    v
                }
                (None, Some(c)) => {
                    if !certs.contains_key(c.get_ref()) {
                        return Err(self.unknown_cert(c, &names));
                    }
                    chain_up(c.get_ref())
                }
                (None, None) => Vec::new(),
            };
            // `behaviour = "strip-starttls"` predates `attacker` and stays as its short form.
            let (behaviour, mut attacker) = match &e.behaviour {
                None => (Behaviour::Normal, None),
                Some(b) if b.get_ref() == "strip-starttls" => (Behaviour::Normal, Some(AttackerDecl::StripStarttls)),
                Some(b) => (
                    Behaviour::parse(b.get_ref()).ok_or_else(|| {
                        self.err(
                            self.inner(b),
                            format!("unknown behaviour `{}`", b.get_ref()),
                            "here",
                            Some(format!(
                                "known behaviours: {}, strip-starttls (an attacker; see also `attacker`)",
                                list(Behaviour::ALL.iter().map(|b| b.name()))
                            )),
                        )
                    })?,
                    None,
                ),
            };
            if let Some(a) = &e.attacker {
                if attacker.is_some() {
                    return Err(self.err(
                        a.span(),
                        "`behaviour = \"strip-starttls\"` already puts an attacker here",
                        "second attacker",
                        Some("keep one: `attacker = { mode = \"strip-starttls\" }` or the behaviour".into()),
                    ));
                }
                attacker = Some(self.attacker(a, certs, &names, &chain_up)?);
            }
            if chain.is_empty() && behaviour != Behaviour::NoStarttls {
                return Err(self.err(
                    e.address.span(),
                    format!("endpoint {address} offers STARTTLS but has no certificate"),
                    "here",
                    Some("add `cert = \"NAME\"`, or `behaviour = \"no-starttls\"`".into()),
                ));
            }
            let (script, sessions) = self.scripts(e)?;
            let mut sni_chains = Vec::new();
            for (name, leaf) in e.sni.iter().flatten() {
                if !certs.contains_key(leaf.get_ref()) {
                    return Err(self.unknown_cert(leaf, &names));
                }
                sni_chains.push((fqdn(name).trim_end_matches('.').to_string(), chain_up(leaf.get_ref())));
            }
            if !sni_chains.is_empty() && chain.is_empty() {
                return Err(self.err(
                    e.address.span(),
                    "`sni` chains need a default chain for clients that send no or another name",
                    "here",
                    Some("add `cert = \"NAME\"`".into()),
                ));
            }
            let port = match &e.port {
                None => 25,
                Some(p) => self.port(p)?,
            };
            out.push(EndpointDecl {
                address,
                port,
                host: fqdn(&e.host),
                chain,
                behaviour,
                attacker,
                script,
                sessions,
                sni_chains,
            });
        }
        Ok(out)
    }

    /// `attacker = { mode = ..., stage, reply, cert }`: each mode takes exactly its own keys.
    fn attacker(
        &self,
        raw: &Spanned<RawAttacker>,
        certs: &BTreeMap<String, &CertSpec>,
        names: &BTreeSet<&str>,
        chain_up: &dyn Fn(&String) -> Vec<String>,
    ) -> Result<AttackerDecl, ScenarioError> {
        let a = raw.get_ref();
        let mode = a.mode.get_ref().as_str();
        let needs = |what: &str, example: &str| {
            self.err(
                raw.span(),
                format!("attacker mode `{mode}` needs `{what}`"),
                "this attacker",
                Some(format!("e.g. {example}")),
            )
        };
        let stray = |key: &str, span: Range<usize>| {
            self.err(
                span,
                format!("`{key}` does not apply to attacker mode `{mode}`"),
                "here",
                Some(
                    "strip-starttls takes no other key; inject takes `stage` and `reply`; intercept takes `cert`"
                        .into(),
                ),
            )
        };
        let decl = match mode {
            "strip-starttls" => AttackerDecl::StripStarttls,
            "inject" => {
                let stage = a
                    .stage
                    .as_ref()
                    .ok_or_else(|| needs("stage", "attacker = { mode = \"inject\", stage = \"starttls\", reply = \"454 4.7.0 TLS not available\" }"))?;
                let at = InjectAt::parse(stage.get_ref()).ok_or_else(|| {
                    self.err(
                        self.inner(stage),
                        format!("unknown stage `{}`", stage.get_ref()),
                        "here",
                        Some(format!("stages: {}", list(InjectAt::names().into_iter()))),
                    )
                })?;
                let reply = a
                    .reply
                    .as_ref()
                    .ok_or_else(|| needs("reply", "reply = \"550 5.7.1 Rejected\""))?;
                let reply = Reply::parse(reply.get_ref()).map_err(|m| {
                    self.err(
                        self.inner(reply),
                        m,
                        "here",
                        Some("e.g. \"454 4.7.0 TLS not available\"".into()),
                    )
                })?;
                AttackerDecl::Inject { at, reply }
            }
            "intercept" => {
                let cert = a
                    .cert
                    .as_ref()
                    .ok_or_else(|| needs("cert", "attacker = { mode = \"intercept\", cert = \"interceptor\" }"))?;
                if !certs.contains_key(cert.get_ref()) {
                    return Err(self.unknown_cert(cert, names));
                }
                AttackerDecl::Intercept {
                    chain: chain_up(cert.get_ref()),
                }
            }
            other => {
                return Err(self.err(
                    self.inner(&a.mode),
                    format!("unknown attacker mode `{other}`"),
                    "here",
                    Some(format!("modes: {}", list(AttackerDecl::MODES.into_iter()))),
                ));
            }
        };
        let takes = |key: &str| match mode {
            "inject" => key == "stage" || key == "reply",
            "intercept" => key == "cert",
            _ => false,
        };
        for (key, span) in [
            ("stage", a.stage.as_ref().map(|v| v.span())),
            ("reply", a.reply.as_ref().map(|v| v.span())),
            ("cert", a.cert.as_ref().map(|v| v.span())),
        ] {
            if let Some(span) = span
                && !takes(key)
            {
                return Err(stray(key, span));
            }
        }
        Ok(decl)
    }

    /// The stage a `replies` or `delays` key names; an unknown one is reported at its value
    /// (TOML keys carry no position).
    pub(super) fn stage(&self, key: &str, value: &Spanned<String>, table: &str) -> Result<Stage, ScenarioError> {
        Stage::parse(key).ok_or_else(|| {
            self.err(
                value.span(),
                format!("unknown stage `{key}` in `{table}`"),
                "for this stage",
                Some(format!("stages: {}", list(Stage::ALL.iter().map(|s| s.name())))),
            )
        })
    }

    fn expect(&self, raw: &RawScenario) -> Result<Expectation, ScenarioError> {
        self.expectation(&raw.expect, &raw.cert)
    }

    /// One expectation: `[expect]`, or an attempt's `[[timeline.check]]` with its result.
    pub(super) fn expectation(&self, e: &RawExpect, certs: &[RawCert]) -> Result<Expectation, ScenarioError> {
        let mut results = Vec::new();
        for r in e.result.get_ref().items() {
            let code = ResultCode::parse(r).ok_or_else(|| {
                self.err(
                    e.result.span(),
                    format!("unknown result `{r}`"),
                    "here",
                    Some(format!("results: {}", list(ResultCode::ALL.iter().map(|c| c.as_str())))),
                )
            })?;
            results.push(code);
        }
        if results.is_empty() {
            return Err(self.err(e.result.span(), "expect.result lists no outcome", "here", None));
        }
        let mut hosts = BTreeMap::new();
        for (h, code) in &e.hosts {
            let c = HostCode::parse(code.get_ref()).ok_or_else(|| {
                self.err(
                    self.inner(code),
                    format!("unknown host outcome `{}`", code.get_ref()),
                    "here",
                    Some(format!(
                        "host outcomes: {}",
                        list(HostCode::ALL.iter().map(|c| c.as_str()))
                    )),
                )
            })?;
            hosts.insert(fqdn(h), c);
        }
        let mut invariants = Vec::new();
        for i in &e.invariants {
            invariants.push(Invariant::parse(i.get_ref()).map_err(|m| self.err(self.inner(i), m, "here", None))?);
        }
        let (status, host_status, presented) = self.expect_details(e, &results, certs)?;
        Ok(Expectation {
            results,
            via: e.via.as_ref().map(|v| fqdn(v.get_ref())),
            hosts,
            invariants,
            notes: e.notes.iter().map(|n| n.get_ref().clone()).collect(),
            status,
            host_status,
            presented,
        })
    }
}

/// The zones as the assembly rules see them (no keys; TLSA placeholders as stand-in data).
fn assembly_spec(zones: &[ZoneDecl]) -> dns::WorldDnsSpec {
    dns::WorldDnsSpec {
        zones: zones
            .iter()
            .map(|z| dns::ZoneSpec {
                origin: z.origin.clone(),
                signed: z.signed,
                key_pkcs8: Vec::new(),
                default_ttl: z.ttl,
                records: z
                    .records
                    .iter()
                    .map(|r| {
                        let mut line = r.template.clone();
                        if let Some(c) = &r.cert_ref {
                            line.replace_range(c.placeholder.clone(), "00");
                        }
                        line
                    })
                    .collect(),
                parsed: z.records.iter().map(|r| r.parsed.clone()).collect(),
                ds: z.ds,
                denial: z.denial,
                windows: Vec::new(),
            })
            .collect(),
        inception: 0,
        expiration: 0,
        nameserver: std::net::Ipv4Addr::LOCALHOST,
        faults: Vec::new(),
        rogue_key_pkcs8: Vec::new(),
    }
}

/// Whether the world publishes the RRset `qname`/`qtype`: a record line of its zone, or one
/// the assembly generates (SOA, NS, DNSKEY, NSEC3PARAM at an apex, NS and DS of a child,
/// `ns.test. A`).
pub(super) fn world_has_rrset(zones: &[ZoneDecl], qname: &str, qtype: RecordType) -> bool {
    let in_zone = |z: &ZoneDecl| qname == z.origin || qname.ends_with(&format!(".{}", z.origin));
    if zones.iter().any(|z| z.origin == qname) {
        let apex = zones.iter().find(|z| z.origin == qname);
        let generated = match qtype {
            RecordType::SOA | RecordType::NS => true,
            RecordType::DNSKEY | RecordType::NSEC3PARAM => apex.is_some_and(|z| z.signed),
            RecordType::DS => apex.is_some_and(|z| z.signed && z.ds != DsMode::None) && qname != "test.",
            _ => false,
        };
        if generated {
            return true;
        }
    }
    if qname == "ns.test." && qtype == RecordType::A {
        return true;
    }
    let Some(zone) = zones.iter().filter(|z| in_zone(z)).max_by_key(|z| z.origin.len()) else {
        return false;
    };
    zone.records.iter().any(|r| {
        let parsed = match &r.parsed {
            Some(p) => Some(p.clone()),
            None => dns::parse_record_line(&zone.origin, zone.ttl, &r.stand_in()).ok(),
        };
        parsed.is_some_and(|p| {
            let record = p.record();
            record.record_type() == qtype && record.name.to_string().eq_ignore_ascii_case(qname)
        })
    })
}

const ZONE_RULES_HELP: &str = "each record is checked against the others of its zone (RFC 1034 §3.6.2, §4.2.1; RFC 2181 \
                               §10.1; RFC 6672 §2.4)";

/// Whether a sender could query `name` in this world: it is a name of the data (an owner, an
/// apex, a name with records below it, CNAMEs and DNAMEs followed), or a `_port._proto.`
/// name under one (a TLSA owner may be absent, RFC 7672 §2.2).
fn queryable(p: &Published, name: &str, rtype: &str) -> bool {
    let mut base = name;
    while let Some(rest) = base.strip_prefix('_').and_then(|b| b.split_once('.')).map(|(_, r)| r) {
        base = rest;
    }
    p.resolve(name, rtype).exists || (!base.is_empty() && p.resolve(base, "A").exists)
}

/// The dates a certificate can carry: RFC 5280 §4.1.2.5 encodes years 1950 to 2049 as
/// UTCTime and later ones as GeneralizedTime, whose four-digit year ends at 9999.
const EARLIEST: OffsetDateTime = time::macros::datetime!(1950-01-01 0:00 UTC);
const LATEST: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// Clocks whose default certificate dates (-30d, +365d) stay within [`EARLIEST`, `LATEST`].
fn clock_range() -> std::ops::RangeInclusive<OffsetDateTime> {
    (EARLIEST + Duration::days(30))..=(LATEST - Duration::days(365))
}

/// An RFC 3339 time, or an offset such as "-30d", "+12h", "+1h30m" from the world clock. The
/// arithmetic is checked: an offset that leaves the certificate calendar is an error, never
/// an overflow.
pub fn parse_time(s: &str, clock: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    let out_of_range = || {
        format!(
            "`{s}` is outside the certificate calendar ({} to {}, RFC 5280 §4.1.2.5)",
            EARLIEST.date(),
            LATEST.date()
        )
    };
    let t = if let Some(sign) = s.chars().next().filter(|c| *c == '+' || *c == '-') {
        // The one duration syntax (`+365d`, `-1h30m`); its bounds keep the arithmetic in
        // range, and the calendar check below decides.
        let d = match duration::parse(&s[1..], &duration::CERT_OFFSET) {
            Ok(d) => Duration::try_from(d).map_err(|_| out_of_range())?,
            Err(duration::DurationError::Malformed { reason, .. }) => {
                return Err(format!("`{s}` is not an offset from the clock ({reason})"));
            }
            Err(_) => return Err(out_of_range()),
        };
        let t = if sign == '+' {
            clock.checked_add(d)
        } else {
            clock.checked_sub(d)
        };
        t.ok_or_else(out_of_range)?
    } else {
        OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))?
    };
    if (EARLIEST..=LATEST).contains(&t) {
        Ok(t)
    } else {
        Err(out_of_range())
    }
}

/// Catalogue ids look like `EE-06`, `TLSA-L-02` or `MX-10`.
fn is_catalogue_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 2
        && parts
            .last()
            .is_some_and(|n| n.len() == 2 && n.chars().all(|c| c.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase()))
}

/// A leaf and its issuers up to the self-signed root: RFC 7672 §3.1.2 wants a DANE-TA
/// server to include its trust anchor, so by default the whole chain is served.
fn chain_up(certs: &BTreeMap<String, &CertSpec>, leaf: &String) -> Vec<String> {
    let mut v = vec![leaf.clone()];
    let mut cur = certs[leaf];
    while let Some(iss) = &cur.issuer {
        v.push(iss.clone());
        cur = certs[iss];
    }
    v
}

pub(super) fn list<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() { "(none)".into() } else { v.join(", ") }
}
