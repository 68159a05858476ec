//! Loading addresses: `allow_addresses`, endpoint addresses and the data of A/AAAA records
//! go through the one rule in [`crate::address`], with errors at file:line:col.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;

use super::error::ScenarioError;
use super::load::Loader;
use super::model::{RecordDecl, ZoneDecl};
use super::timeline::{EditKind, Timeline};
use crate::address::{self, AddressError};

impl Loader<'_> {
    /// The scenario's opt-ins, normalised. An entry that is never a world address, or a
    /// documentation address (which needs none), is an error: the list says what it allows.
    pub(super) fn allowed_addresses(&self, raw: &[Spanned<String>]) -> Result<BTreeSet<IpAddr>, ScenarioError> {
        let mut out = BTreeSet::new();
        for a in raw {
            let ip = self.ip(a)?;
            let span = self.inner(a);
            if let Some(what) = address::never(ip) {
                return Err(self.err(
                    span,
                    format!(
                        "{} is {what}: never a world address, even in `allow_addresses`",
                        address::normalise(ip)
                    ),
                    "here",
                    Some(never_help()),
                ));
            }
            if address::is_documentation(ip) {
                return Err(self.err(
                    span,
                    format!("{ip} is a documentation address: it needs no opt-in"),
                    "here",
                    Some("`allow_addresses` lists only addresses outside the documentation ranges".into()),
                ));
            }
            out.insert(address::normalise(ip));
        }
        Ok(out)
    }

    /// An IP address written in the file.
    pub(super) fn ip(&self, s: &Spanned<String>) -> Result<IpAddr, ScenarioError> {
        s.get_ref().parse().map_err(|_| {
            self.err(
                self.inner(s),
                format!("`{}` is not an IP address", s.get_ref()),
                "here",
                None,
            )
        })
    }

    /// `ip` as a world address at `span` (`what`: "endpoint address", ...); the normalised address.
    pub(super) fn world_address(
        &self,
        ip: IpAddr,
        span: Range<usize>,
        what: &str,
        allowed: &BTreeSet<IpAddr>,
    ) -> Result<IpAddr, ScenarioError> {
        address::check(ip, allowed).map_err(|e| {
            let help = match &e {
                AddressError::Never { .. } => never_help(),
                _ => format!(
                    "use a documentation address such as 192.0.2.10 or 2001:db8::10 (the harness maps them to \
                     loopback), or opt in with `allow_addresses = [\"{}\"]` at the top of the file",
                    address::normalise(ip)
                ),
            };
            let mapped = if address::normalise(ip) != ip {
                format!(" (written as its IPv4-mapped form {ip})")
            } else {
                String::new()
            };
            self.err(span, format!("{what} {e}{mapped}"), "here", Some(help))
        })
    }

    /// The data of every A and AAAA record of the zones and of the timeline's steps.
    pub(super) fn record_addresses(
        &self,
        zones: &[ZoneDecl],
        timeline: Option<&Timeline>,
        allowed: &BTreeSet<IpAddr>,
    ) -> Result<(), ScenarioError> {
        let declared = zones.iter().flat_map(|z| &z.records);
        let added = timeline
            .into_iter()
            .flat_map(|t| &t.steps)
            .flat_map(|s| &s.edits)
            .filter_map(|e| match &e.kind {
                EditKind::Add(r) | EditKind::Replace(r) => Some(r),
                _ => None,
            });
        for r in declared.chain(added) {
            self.record_address(r, allowed)?;
        }
        Ok(())
    }

    fn record_address(&self, r: &RecordDecl, allowed: &BTreeSet<IpAddr>) -> Result<(), ScenarioError> {
        let Some((ip, col)) = crate::dns::record_address(&r.template) else {
            return Ok(());
        };
        let len = r.template[col..]
            .find(char::is_whitespace)
            .unwrap_or(r.template.len() - col);
        let start = r.span.start + col;
        let span = start..start + len;
        let normalised = self.world_address(ip, span.clone(), "record data", allowed)?;
        // An IPv4 address in AAAA data is no IPv6 host: say it as an A record.
        if let (IpAddr::V6(_), IpAddr::V4(v4)) = (ip, normalised) {
            return Err(self.err(
                span,
                format!("{ip} is an IPv4-mapped address (RFC 4291 §2.5.5.2), not an IPv6 host address"),
                "here",
                Some(format!("publish the IPv4 address in an A record: `owner A {v4}`")),
            ));
        }
        Ok(())
    }
}

fn never_help() -> String {
    "loopback, unspecified, multicast, broadcast and link-local addresses are never world addresses \
     (the harness's own listeners live on loopback); use a documentation address such as 192.0.2.10"
        .into()
}
