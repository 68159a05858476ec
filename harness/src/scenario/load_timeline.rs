//! Loading `[timeline]` and `[[step]]`: the same spanned errors as the rest of the file.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::error::ScenarioError;
use super::file::{RawStep, RawTimeline};
use super::load::{Loader, list};
use super::model::{EndpointDecl, ZoneDecl};
use super::timeline::{EditKind, Lint, Renew, Step, Timeline, When, ZoneEdit, normalize};
use crate::duration;
use crate::pki::CertSpec;
use crate::vocab::{ResultCode, fqdn};

/// The most attempts a timeline has: enough for a sender's whole retry window (Exchange
/// Online reaches its 24-hour non-delivery report at attempt 27 of its schedule: 15 and 15
/// minutes, then hourly), few enough that a timeline of real senders stays minutes long.
const MAX_ATTEMPTS: u32 = 64;

impl Loader<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn timeline(
        &self,
        raw: Option<&Spanned<RawTimeline>>,
        steps: &[Spanned<RawStep>],
        domain: &str,
        zones: &[ZoneDecl],
        endpoints: &[EndpointDecl],
        certs: &BTreeMap<String, &CertSpec>,
        chain_up: &dyn Fn(&String) -> Vec<String>,
    ) -> Result<Option<Timeline>, ScenarioError> {
        let Some(raw) = raw else {
            if let Some(s) = steps.first() {
                return Err(self.err(
                    s.span(),
                    "`[[step]]` needs a `[timeline]`",
                    "this step",
                    Some("add [timeline] with attempts = N and expect = [one result per attempt]".into()),
                ));
            }
            return Ok(None);
        };
        let t = raw.get_ref();
        let attempts = *t.attempts.get_ref();
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            return Err(self.err(
                t.attempts.span(),
                format!("{attempts} attempts: a timeline has 1 to {MAX_ATTEMPTS}"),
                "here",
                None,
            ));
        }
        if t.expect.len() != attempts as usize {
            return Err(self.err(
                raw.span(),
                format!("`expect` lists {} result(s) for {attempts} attempt(s)", t.expect.len()),
                "this timeline",
                Some("give one result (or a list of alternatives) per attempt".into()),
            ));
        }
        let mut expect = Vec::new();
        for e in &t.expect {
            let mut alternatives = Vec::new();
            for r in e.get_ref().items() {
                alternatives.push(ResultCode::parse(r).ok_or_else(|| {
                    self.err(
                        e.span(),
                        format!("unknown result `{r}`"),
                        "here",
                        Some(format!("results: {}", list(ResultCode::ALL.iter().map(|c| c.as_str())))),
                    )
                })?);
            }
            expect.push(alternatives);
        }
        let mut retry = Vec::new();
        if t.retry.is_empty() {
            // Postfix's default backoff: 5 minutes, doubling (minimal_backoff_time, then
            // maximal_backoff_time caps it at 4000 s).
            retry = [300, 600, 1200, 2400, 4000]
                .map(std::time::Duration::from_secs)
                .to_vec();
        }
        for r in &t.retry {
            // Simulated: nothing sleeps, the reference sender's clock moves.
            retry.push(self.duration(r, &duration::RETRY)?);
        }
        if !t.via.is_empty() && t.via.len() != attempts as usize {
            return Err(self.err(
                raw.span(),
                format!("`via` lists {} host(s) for {attempts} attempt(s)", t.via.len()),
                "this timeline",
                Some("give one host per attempt, \"\" where no delivery is expected".into()),
            ));
        }
        let via = t
            .via
            .iter()
            .map(|v| Some(v.get_ref().trim()).filter(|v| !v.is_empty()).map(fqdn))
            .collect();
        let mut lints = Vec::new();
        for l in &t.lint {
            match l.get_ref().as_str() {
                "exo-inbound" => lints.push(Lint::ExoInbound),
                other => {
                    return Err(self.err(
                        self.inner(l),
                        format!("unknown lint `{other}`"),
                        "here",
                        Some("lints: exo-inbound".into()),
                    ));
                }
            }
        }
        let names: BTreeSet<&str> = certs.keys().map(String::as_str).collect();
        let mut out = Vec::new();
        for s in steps {
            out.push(self.step(s, steps, attempts, domain, zones, endpoints, certs, &names, chain_up)?);
        }
        Ok(Some(Timeline {
            attempts,
            retry_given: !t.retry.is_empty(),
            retry,
            expect,
            via,
            // Filled once the whole scenario is known (`Loader::attempt_checks`).
            checks: Vec::new(),
            lints,
            steps: out,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        raw: &Spanned<RawStep>,
        all: &[Spanned<RawStep>],
        attempts: u32,
        domain: &str,
        zones: &[ZoneDecl],
        endpoints: &[EndpointDecl],
        certs: &BTreeMap<String, &CertSpec>,
        names: &BTreeSet<&str>,
        chain_up: &dyn Fn(&String) -> Vec<String>,
    ) -> Result<Step, ScenarioError> {
        let s = raw.get_ref();
        let when_text = s.when.get_ref().trim();
        let when = match when_text {
            "start" => When::Start,
            "after delivery" => When::AfterDelivery,
            other => match other
                .strip_prefix("after attempt ")
                .and_then(|n| n.trim().parse::<u32>().ok())
            {
                Some(n) if (1..attempts).contains(&n) => When::AfterAttempt(n),
                Some(n) => {
                    return Err(self.err(
                        self.inner(&s.when),
                        format!("attempt {n} has no next attempt to change the world for"),
                        "here",
                        Some(format!(
                            "this timeline has {attempts} attempt(s): after attempt 1 to {}",
                            attempts - 1
                        )),
                    ));
                }
                None => {
                    return Err(self.err(
                        self.inner(&s.when),
                        format!("unknown event `{other}`"),
                        "here",
                        Some("events: \"start\", \"after attempt N\", \"after delivery\"".into()),
                    ));
                }
            },
        };
        let renew = match &s.renew {
            None => None,
            Some(r) => {
                // Endpoints are kept normalised (`crate::address`): so is the name of one.
                let address = crate::address::normalise(self.ip(&r.endpoint)?);
                if !endpoints.iter().any(|e| e.address == address) {
                    return Err(self.err(
                        self.inner(&r.endpoint),
                        format!("no [[endpoint]] at {address}"),
                        "here",
                        Some(format!(
                            "endpoints: {}",
                            list(
                                endpoints
                                    .iter()
                                    .map(|e| e.address.to_string())
                                    .collect::<Vec<_>>()
                                    .iter()
                                    .map(String::as_str)
                            )
                        )),
                    ));
                }
                if !certs.contains_key(r.cert.get_ref()) {
                    return Err(self.unknown_cert(&r.cert, names));
                }
                Some(Renew {
                    address,
                    chain: chain_up(r.cert.get_ref()),
                })
            }
        };
        let zone = match &s.zone {
            Some(z) => {
                let origin = fqdn(z.get_ref());
                zones.iter().position(|d| d.origin == origin).ok_or_else(|| {
                    self.err(
                        self.inner(z),
                        format!("no [[zone]] `{origin}`"),
                        "here",
                        Some(format!("zones: {}", list(zones.iter().map(|d| d.origin.as_str())))),
                    )
                })?
            }
            None => {
                // The zone that holds the message domain: the longest origin it falls under.
                let d = fqdn(domain);
                zones
                    .iter()
                    .enumerate()
                    .filter(|(_, z)| d == z.origin || d.ends_with(&format!(".{}", z.origin)))
                    .max_by_key(|(_, z)| z.origin.len())
                    .map(|(i, _)| i)
                    .unwrap_or(0)
            }
        };
        let (origin, ttl) = (zones[zone].origin.clone(), zones[zone].ttl);
        let mut edits = Vec::new();
        for r in &s.remove {
            let text = r.get_ref();
            let tokens: Vec<&str> = text.split_whitespace().collect();
            let kind = if tokens.len() == 2 {
                EditKind::RemoveRrset {
                    owner: tokens[0].to_ascii_lowercase(),
                    rtype: tokens[1].to_ascii_uppercase(),
                }
            } else {
                // Check it is a record, so a typo is an error, not a silent no-op.
                self.record(&origin, ttl, r, certs)?;
                EditKind::RemoveRecord(normalize(text))
            };
            // A removal may name a record of the zone, or one a step adds (earlier in time, or
            // this very step); one that matches nothing at all is a typo.
            let declared = zones[zone].records.iter().map(|d| d.template.as_str());
            let added = all
                .iter()
                .flat_map(|o| o.get_ref().add.iter().chain(&o.get_ref().replace))
                .map(|a| a.get_ref().as_str());
            if !declared.chain(added).any(|t| kind.removes(t)) {
                return Err(self.err(
                    self.inner(r),
                    format!("nothing in zone {origin} matches `{text}`"),
                    "here",
                    Some("write \"owner TYPE\" for a whole RRset, or the record exactly as declared".into()),
                ));
            }
            edits.push(ZoneEdit { zone, kind });
        }
        for r in &s.replace {
            edits.push(ZoneEdit {
                zone,
                kind: EditKind::Replace(self.record(&origin, ttl, r, certs)?),
            });
        }
        for r in &s.add {
            edits.push(ZoneEdit {
                zone,
                kind: EditKind::Add(self.record(&origin, ttl, r, certs)?),
            });
        }
        let faults = self.faults(&s.fault, zones)?;
        Ok(Step {
            when,
            note: s.note.clone(),
            renew,
            edits,
            faults,
            clear_faults: s.clear_faults,
            flush: s.flush,
            expire: s.expire,
            span: raw.span(),
        })
    }
}
