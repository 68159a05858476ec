//! Loading the details of `[expect]` beyond result and hosts: `status` and `host_status`
//! (RFC 3463 codes and patterns) and `presented` (the leaf's serial number and its key's
//! relation to named certificates), with a certificate's declared `serial`.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::ScenarioError;
use super::file::{RawCert, RawExpect, RawPresented};
use super::load::{Loader, list};
use super::model::{Presented, Scenario};
use crate::outcome::status::StatusPattern;
use crate::vocab::{HostCode, ResultCode, fqdn};
use crate::world::Published;

type Details = (
    Option<StatusPattern>,
    BTreeMap<String, StatusPattern>,
    BTreeMap<String, Presented>,
);

/// RFC 5280 §4.1.2.2: "Certificate users MUST be able to handle serialNumber values up to 20 octets."
const MAX_SERIAL_OCTETS: usize = 20;

impl Loader<'_> {
    /// `serial = "1001"` on a `[[cert]]`, or in `presented`: hex octets, colons allowed.
    pub(super) fn serial(&self, s: &Spanned<String>) -> Result<Vec<u8>, ScenarioError> {
        let text = s.get_ref();
        let digits: String = text.trim_start_matches("0x").chars().filter(|c| *c != ':').collect();
        let help = || {
            Some(format!(
                "a serial number in hex, as `openssl x509 -serial` prints it (\"1001\", \"0A:F3\"), 1 to {MAX_SERIAL_OCTETS} octets, not zero (RFC 5280 §4.1.2.2)"
            ))
        };
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let octets = hex::decode(&padded)
            .ok()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| self.err(self.inner(s), format!("`{text}` is no serial number"), "here", help()))?;
        let start = octets.iter().position(|&b| b != 0);
        let Some(start) = start else {
            return Err(self.err(self.inner(s), "a serial number of zero", "here", help()));
        };
        let octets = octets[start..].to_vec();
        // A first octet with its top bit set takes a 00 in front in DER (X.690 §8.3.2), and
        // that octet counts towards the 20.
        let encoded = octets.len() + usize::from(octets[0] & 0x80 != 0);
        if encoded > MAX_SERIAL_OCTETS {
            return Err(self.err(
                self.inner(s),
                format!("a serial number of {encoded} octets (as DER encodes it) is over {MAX_SERIAL_OCTETS}"),
                "here",
                help(),
            ));
        }
        Ok(octets)
    }

    fn status_pattern(&self, s: &Spanned<String>) -> Result<StatusPattern, ScenarioError> {
        StatusPattern::parse(s.get_ref()).map_err(|m| {
            self.err(
                self.inner(s),
                m,
                "here",
                Some(
                    "class 2 (delivered), 4 (DEFER) or 5 (BOUNCE), then subject and detail: \"4.7.5\", \"5.7.x\""
                        .into(),
                ),
            )
        })
    }

    pub(super) fn expect_details(
        &self,
        e: &RawExpect,
        results: &[ResultCode],
        certs: &[RawCert],
    ) -> Result<Details, ScenarioError> {
        let status = match &e.status {
            None => None,
            Some(s) => {
                let p = self.status_pattern(s)?;
                // RFC 3463 §3.1: the class says success, transient or permanent failure; a
                // pattern of another class than every expected result could never match.
                if let Some(class) = p.class()
                    && !results.iter().any(|r| StatusPattern::class_of(*r) == class)
                {
                    return Err(self.err(
                        self.inner(s),
                        format!(
                            "status class {class} fits no expected result ({}): a delivery reports 2, DEFER 4, BOUNCE 5 (RFC 3463 §3.1)",
                            list(results.iter().map(|r| r.as_str()))
                        ),
                        "here",
                        None,
                    ));
                }
                Some(p)
            }
        };
        let mut host_status = BTreeMap::new();
        for (host, s) in &e.host_status {
            let p = self.status_pattern(s)?;
            let host_class = e
                .hosts
                .get(host)
                .and_then(|c| HostCode::parse(c.get_ref()))
                .and_then(|c| match c {
                    HostCode::Auth | HostCode::Tls | HostCode::Opp => Some(2),
                    HostCode::TempFail => Some(4),
                    HostCode::Reject => Some(5),
                    _ => None,
                });
            if let (Some(want), Some(class)) = (host_class, p.class())
                && want != class
            {
                return Err(self.err(
                    self.inner(s),
                    format!(
                        "status class {class} contradicts `hosts`, which expects {} at {host} (class {want}, RFC 3463 §3.1)",
                        e.hosts[host].get_ref()
                    ),
                    "here",
                    None,
                ));
            }
            host_status.insert(fqdn(host), p);
        }
        let names: Vec<&str> = certs.iter().map(|c| c.name.get_ref().as_str()).collect();
        let mut presented = BTreeMap::new();
        for (host, raw) in &e.presented {
            presented.insert(fqdn(host), self.presented(raw, &names)?);
        }
        Ok((status, host_status, presented))
    }

    fn presented(&self, raw: &Spanned<RawPresented>, names: &[&str]) -> Result<Presented, ScenarioError> {
        let p = raw.get_ref();
        let cert = |c: &Option<Spanned<String>>| -> Result<Option<String>, ScenarioError> {
            match c {
                Some(n) if !names.contains(&n.get_ref().as_str()) => Err(self.err(
                    self.inner(n),
                    format!("unknown certificate `{}`", n.get_ref()),
                    "here",
                    Some(format!("certificates: {}", list(names.iter().copied()))),
                )),
                Some(n) => Ok(Some(n.get_ref().clone())),
                None => Ok(None),
            }
        };
        let out = Presented {
            serial: p.serial.as_ref().map(|s| self.serial(s)).transpose()?,
            same_key_as: cert(&p.same_key_as)?,
            different_key_from: cert(&p.different_key_from)?,
        };
        if out == Presented::default() {
            return Err(self.err(
                raw.span(),
                "`presented` states nothing about this host's leaf",
                "here",
                Some("give `serial`, `same_key_as` or `different_key_from`".into()),
            ));
        }
        if let (Some(a), Some(b)) = (&out.same_key_as, &out.different_key_from)
            && a == b
            && let Some(d) = &p.different_key_from
        {
            return Err(self.err(
                self.inner(d),
                format!("the leaf cannot have the same key as `{a}` and a different one"),
                "here",
                None,
            ));
        }
        Ok(out)
    }

    /// No vacuous `presented` (as for invariants): the host must lead to an endpoint with a
    /// certificate, before the first attempt or after a timeline step.
    pub(super) fn presented_targets(&self, raw: &RawExpect, s: &Scenario) -> Result<(), ScenarioError> {
        let mut states = vec![(Published::from_templates(&s.zones), s.endpoints.clone())];
        if let Some(t) = &s.timeline {
            let mut current = s.clone();
            for step in &t.steps {
                step.apply(&mut current);
                states.push((Published::from_templates(&current.zones), current.endpoints.clone()));
            }
        }
        for (host, p) in &raw.presented {
            let h = fqdn(host);
            let served = states.iter().any(|(published, endpoints)| {
                let at = published.route(&h, endpoints);
                endpoints.iter().any(|e| at.contains(&e.address) && !e.chain.is_empty())
            });
            if !served {
                return Err(self.err(
                    p.span(),
                    format!(
                        "presented at `{h}`: it leads to no endpoint with a certificate, so the check could never fail"
                    ),
                    "names nothing in this world",
                    Some(self.declared(s, &states[0].0)),
                ));
            }
        }
        Ok(())
    }
}
