//! `[[zone.signatures]]`: RRSIG validity windows relative to the world clock (RFC 4034
//! §3.1.5), for a whole zone or one of its RRsets.
//!
//! The world's RRSIGs otherwise carry one fixed window (2025-01-01 .. 2035-01-01), so no
//! signature expires during a scenario. A window written as offsets from the clock ("-1d",
//! "+1h") is fixed too, since the clock is: the signed zone stays byte-identical from run
//! to run. With a timeline, the world clock then moves past such an expiration: the case of
//! an RRSIG that expires before the TTL of its RRset runs out (RFC 4035 §5.3.3).

use super::file::{RawSignatures, RawZone};
use super::load::{Loader, parse_time, world_has_rrset};
use super::model::ZoneDecl;
use crate::dns::SignatureWindow;
use crate::scenario::error::ScenarioError;
use crate::vocab::fqdn;
use crate::world::{SIGNATURE_EXPIRATION, SIGNATURE_INCEPTION};
use hickory_proto::rr::{Name, RecordType};
use std::str::FromStr;
use time::OffsetDateTime;
use toml::Spanned;

/// The example every misuse's help ends with.
const EXAMPLE: &str = "e.g. [[zone.signatures]] rrset = \"_25._tcp.mx1 TLSA\", from = \"-1d\", until = \"+1h\"";

impl Loader<'_> {
    /// Resolves every zone's `[[zone.signatures]]` against the world clock. `zones` are the
    /// loaded zones (`test.` first, then the file's zones in order).
    pub(super) fn signature_windows(
        &self,
        raw: &[RawZone],
        zones: &mut [ZoneDecl],
        clock: OffsetDateTime,
    ) -> Result<(), ScenarioError> {
        for z in raw {
            let origin = fqdn(z.origin.get_ref());
            let mut windows = Vec::new();
            for w in &z.signatures {
                let window = self.window(w, &origin, zones, clock)?;
                if windows.iter().any(|o: &SignatureWindow| o.rrset == window.rrset) {
                    let what = match &window.rrset {
                        Some((name, rtype)) => format!("the RRset {name} {rtype}"),
                        None => format!("the whole zone {origin}"),
                    };
                    return Err(self.err(
                        w.span(),
                        format!("a second signature window for {what}"),
                        "this table",
                        Some("one window per RRset, and one for the rest of the zone".into()),
                    ));
                }
                windows.push(window);
            }
            let zone = zones
                .iter_mut()
                .find(|d| d.origin == origin)
                .expect("every raw zone was loaded");
            if let Some(w) = z.signatures.first()
                && !zone.signed
            {
                return Err(self.err(
                    w.span(),
                    format!("zone {origin} is unsigned: it has no RRSIGs to give a window"),
                    "this table",
                    Some("remove `signed = false`, or the signature windows".into()),
                ));
            }
            zone.signatures = windows;
        }
        Ok(())
    }

    fn window(
        &self,
        w: &Spanned<RawSignatures>,
        origin: &str,
        zones: &[ZoneDecl],
        clock: OffsetDateTime,
    ) -> Result<SignatureWindow, ScenarioError> {
        let raw = w.get_ref();
        if raw.from.is_none() && raw.until.is_none() {
            return Err(self.err(
                w.span(),
                "a signature window with neither `from` nor `until` changes nothing",
                "this table",
                Some(format!(
                    "give the inception, the expiration or both, relative to the world clock; {EXAMPLE}"
                )),
            ));
        }
        let rrset = match &raw.rrset {
            None => None,
            Some(r) => Some(self.window_rrset(r, origin, zones)?),
        };
        let inception = self.window_time(&raw.from, clock, SIGNATURE_INCEPTION)?;
        let expiration = self.window_time(&raw.until, clock, SIGNATURE_EXPIRATION)?;
        if expiration <= inception {
            let at = raw.until.as_ref().or(raw.from.as_ref()).expect("one of them is given");
            return Err(self.err(
                self.inner(at),
                format!(
                    "the window ends at {} but begins at {}: an RRSIG's expiration must come after its \
                     inception (RFC 4034 §3.1.5)",
                    unix_text(expiration),
                    unix_text(inception)
                ),
                "here",
                Some(format!(
                    "an unset end is the fixed {} .. {}; {EXAMPLE}",
                    unix_text(SIGNATURE_INCEPTION),
                    unix_text(SIGNATURE_EXPIRATION)
                )),
            ));
        }
        Ok(SignatureWindow {
            rrset,
            inception,
            expiration,
        })
    }

    /// "owner TYPE": an RRset this zone signs (its own data, or the DNSKEY, SOA and NS at its
    /// apex, or a child's DS).
    fn window_rrset(
        &self,
        r: &Spanned<String>,
        origin: &str,
        zones: &[ZoneDecl],
    ) -> Result<(Name, RecordType), ScenarioError> {
        let text = r.get_ref();
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let help = || {
            Some(format!(
                "write \"owner TYPE\", the owner relative to {origin} (\"@\" for the apex); {EXAMPLE}"
            ))
        };
        let [owner, rtype] = tokens[..] else {
            return Err(self.err(self.inner(r), format!("`{text}` is not \"owner TYPE\""), "here", help()));
        };
        let rtype = match RecordType::from_str(&rtype.to_ascii_uppercase()) {
            Ok(t) if !matches!(t, RecordType::RRSIG | RecordType::Unknown(_)) => t,
            _ => {
                return Err(self.err(
                    self.inner(r),
                    format!("`{rtype}` is no record type an RRSIG covers here"),
                    "here",
                    help(),
                ));
            }
        };
        let qname = match owner {
            "@" => origin.to_string(),
            o if o.ends_with('.') => o.to_ascii_lowercase(),
            o => format!("{}.{origin}", o.to_ascii_lowercase()),
        };
        // The zone that signs the RRset: the closest enclosing zone, except for a DS, which
        // its parent signs (RFC 4035 §2.4), and NS at a cut, which nobody does (§2.2).
        let enclosing = |name: &str| {
            zones
                .iter()
                .filter(|z| name == z.origin || name.ends_with(&format!(".{}", z.origin)))
                .max_by_key(|z| z.origin.len())
                .map(|z| z.origin.clone())
        };
        let signer = match rtype {
            RecordType::DS if zones.iter().any(|z| z.origin == qname) => {
                qname.split_once('.').and_then(|(_, parent)| enclosing(parent))
            }
            _ => enclosing(&qname),
        };
        if signer.as_deref() != Some(origin) || !world_has_rrset(zones, &qname, rtype) {
            let why = match signer {
                Some(other) if other != origin && world_has_rrset(zones, &qname, rtype) => {
                    format!("zone {other} signs it, not {origin}")
                }
                _ => format!("zone {origin} has no such RRset"),
            };
            return Err(self.err(
                self.inner(r),
                format!("no signature window for {qname} {rtype}: {why}"),
                "here",
                help(),
            ));
        }
        let name = Name::from_ascii(&qname).map_err(|e| {
            self.err(
                self.inner(r),
                format!("`{owner}` is not a domain name: {e}"),
                "here",
                help(),
            )
        })?;
        Ok((name, rtype))
    }

    /// An RRSIG time (RFC 4034 §3.1.5: unsigned 32-bit seconds): an offset from the clock
    /// or an RFC 3339 time between 1970 and 2106.
    fn window_time(
        &self,
        v: &Option<Spanned<String>>,
        clock: OffsetDateTime,
        default: u32,
    ) -> Result<u32, ScenarioError> {
        let Some(s) = v else {
            return Ok(default);
        };
        let help = || {
            Some(format!(
                "write an offset from the world clock (\"-1d\", \"+1h30m\") or an RFC 3339 time; {EXAMPLE}"
            ))
        };
        let t = parse_time(s.get_ref(), clock).map_err(|m| self.err(self.inner(s), m, "here", help()))?;
        u32::try_from(t.unix_timestamp()).map_err(|_| {
            self.err(
                self.inner(s),
                format!(
                    "{} is outside the times an RRSIG can carry ({} .. {}, RFC 4034 §3.1.5)",
                    t.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_else(|_| t.to_string()),
                    unix_text(0),
                    unix_text(u32::MAX)
                ),
                "here",
                help(),
            )
        })
    }
}

/// "2026-06-01T01:00:00Z".
fn unix_text(t: u32) -> String {
    OffsetDateTime::from_unix_timestamp(t.into())
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use crate::scenario::load_str;
    use std::path::Path;

    /// A parent with a signed child, and `windows` appended after the parent's zone table.
    fn world(windows: &str) -> String {
        format!(
            "id = \"w\"\ntitle = \"w\"\nteaches = \"w\"\n\n[[zone]]\norigin = \"example.test.\"\n\
             records = [\"@ MX 10 mx1\", \"mx1 A 192.0.2.10\"]\n{windows}\n\n\
             [[zone]]\norigin = \"sub.example.test.\"\nrecords = [\"www A 192.0.2.20\"]\n\n\
             [[endpoint]]\naddress = \"192.0.2.10\"\nhost = \"mx1.example.test\"\nbehaviour = \"no-starttls\"\n\n\
             [expect]\nresult = \"OPP\"\n"
        )
    }

    fn table(rrset: &str) -> String {
        format!("\n[[zone.signatures]]\nrrset = \"{rrset}\"\nuntil = \"+1h\"\n")
    }

    /// The RRsets the zone signs itself: its data, the apex's generated DNSKEY, SOA and NS,
    /// and its child's DS; the window is the clock plus an hour, the inception the fixed one.
    #[test]
    fn a_window_may_name_every_rrset_the_zone_signs() {
        for rrset in [
            "mx1 A",
            "@ MX",
            "@ DNSKEY",
            "@ SOA",
            "@ NS",
            "sub DS",
            "mx1.example.test. A",
        ] {
            let s = load_str(Path::new("w.toml"), &world(&table(rrset))).unwrap_or_else(|e| panic!("{rrset}: {e}"));
            let zone = s.zones.iter().find(|z| z.origin == "example.test.").unwrap();
            let [w] = &zone.signatures[..] else {
                panic!("{rrset}: {:?}", zone.signatures)
            };
            assert_eq!(
                w.expiration as i64,
                (s.clock + time::Duration::hours(1)).unix_timestamp()
            );
            assert_eq!(w.inception, crate::world::SIGNATURE_INCEPTION);
        }
        // A whole-zone window and an RRset's own may stand together.
        let both = format!("{}\n[[zone.signatures]]\nfrom = \"-1d\"\n", table("mx1 A"));
        let s = load_str(Path::new("w.toml"), &world(&both)).unwrap();
        assert_eq!(
            s.zones
                .iter()
                .find(|z| z.origin == "example.test.")
                .unwrap()
                .signatures
                .len(),
            2
        );
    }

    /// NS at the cut is signed by nobody (RFC 4035 §2.2), and the child's own RRsets by the
    /// child: a window in the parent for either is refused, saying who signs it.
    #[test]
    fn a_window_for_an_rrset_another_zone_signs_is_refused() {
        for (rrset, says) in [
            ("sub NS", "zone sub.example.test. signs it, not example.test."),
            ("www.sub A", "zone sub.example.test. signs it"),
            ("mx2 A", "zone example.test. has no such RRset"),
        ] {
            let e = load_str(Path::new("w.toml"), &world(&table(rrset)))
                .unwrap_err()
                .to_string();
            assert!(e.contains("w.toml:10:10") && e.contains(says), "{rrset}: {e}");
        }
    }
}
