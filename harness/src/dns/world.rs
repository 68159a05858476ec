use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_proto::serialize::binary::BinEncodable;
use hickory_server::dnssec::NxProofKind;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, ZoneType};

use super::anchor::TrustAnchor;
use super::error::DnsError;
use super::fault::{self, EXPIRED_WINDOW, FUTURE_WINDOW, FaultKind, FaultSpec, PreparedFault, Resign};
use super::rrsigs::ZoneRecords;
use super::sign::{self, NSEC3_ITERATIONS, NSEC3_SALT, ZoneKey};
use super::zone::{self, ANCHOR_ZONE, Denial, DsMode, WorldDnsSpec, normalise_origin};

/// Every zone of a world, assembled and signed, ready to be served.
///
/// Pure data: two builds of the same spec are equal, and [`SignedWorld::zone_text`] is
/// byte-identical (fixed keys, fixed signature times, deterministic Ed25519).
pub struct SignedWorld {
    zones: Vec<BuiltZone>,
    anchor: TrustAnchor,
    /// The declared faults, each with its replacement RRSIGs or what re-signs a denial.
    faults: Vec<PreparedFault>,
}

/// One finished zone.
pub(crate) struct BuiltZone {
    pub origin: Name,
    pub signed: bool,
    pub denial: Denial,
    pub parent: Option<Name>,
    /// RRsets in canonical order (RFC 4034 §6), their RRSIGs made on first use.
    pub records: Arc<ZoneRecords>,
}

impl SignedWorld {
    /// Assemble and sign every zone of `spec`.
    pub fn build(spec: &WorldDnsSpec) -> Result<SignedWorld, DnsError> {
        let mut zones = zone::assemble(spec)?;
        let anchor_origin = zone::constant_name(ANCHOR_ZONE);

        // The spec of an assembled zone (matched by normalised origin), and the position of
        // each zone: indexed once, so that a world of many zones is not quadratic to build.
        let specs: BTreeMap<Name, &zone::ZoneSpec> = spec
            .zones
            .iter()
            .filter_map(|s| Some((normalise_origin(&s.origin).ok()?, s)))
            .collect();
        let spec_of = |origin: &Name| {
            *specs
                .get(origin)
                .expect("assembled zones come from the spec's own zones")
        };
        let position: BTreeMap<Name, usize> = zones.iter().enumerate().map(|(i, z)| (z.origin.clone(), i)).collect();
        let mut keys: BTreeMap<Name, Arc<ZoneKey>> = BTreeMap::new();
        for z in &zones {
            if !z.signed {
                continue;
            }
            let zone_spec = spec_of(&z.origin);
            let key = ZoneKey::from_pkcs8(&zone_spec.key_pkcs8).map_err(|message| DnsError::Key {
                origin: z.origin.to_string(),
                message,
            })?;
            keys.insert(z.origin.clone(), Arc::new(key));
        }
        let Some(anchor_key) = keys.get(&anchor_origin) else {
            return Err(DnsError::Zone {
                origin: ANCHOR_ZONE.into(),
                message: "the trust-anchor zone must be signed".into(),
            });
        };
        // RFC 4034 §3.1.5: inception before expiration (serial arithmetic aside, keep it plain).
        if spec.expiration <= spec.inception {
            return Err(DnsError::Zone {
                origin: ANCHOR_ZONE.into(),
                message: format!(
                    "signature expiration {} is not after inception {}",
                    spec.expiration, spec.inception
                ),
            });
        }
        let anchor = TrustAnchor::from_key(ANCHOR_ZONE, anchor_key).map_err(|message| DnsError::Key {
            origin: ANCHOR_ZONE.into(),
            message,
        })?;

        // Only built when a fault or a DS mode needs it: a key no zone publishes.
        let rogue = || {
            ZoneKey::from_pkcs8(&spec.rogue_key_pkcs8).map_err(|message| DnsError::Key {
                origin: "(rogue key)".into(),
                message,
            })
        };

        // A signed child gets a SHA-256 DS in its parent (RFC 4035 §2.4); an unsigned one
        // none, which the parent's NSEC3 then proves (an insecure delegation). A zone's
        // `ds` mode may publish a faulty DS or none instead.
        for (origin, key) in &keys {
            let Some(parent) = position.get(origin).and_then(|&i| zones[i].parent.clone()) else {
                continue;
            };
            let ds = match spec_of(origin).ds {
                DsMode::None => continue,
                DsMode::Secure => key.ds(origin),
                DsMode::Mismatch => rogue()?.ds(origin),
                DsMode::UnknownAlgorithm => key.unsupported_ds(origin, true),
                DsMode::UnknownDigest => key.unsupported_ds(origin, false),
            }
            .map_err(|message| DnsError::Key {
                origin: origin.to_string(),
                message,
            })?;
            let parent_zone = &mut zones[*position
                .get(&parent)
                .expect("every parent was chosen from the world's own origins")];
            let ttl = parent_zone.default_ttl;
            parent_zone
                .add(origin, RecordType::DS, ttl, RData::DNSSEC(DNSSECRData::DS(ds)))
                .map_err(|message| DnsError::Zone {
                    origin: parent.to_string(),
                    message,
                })?;
        }

        let mut built = Vec::with_capacity(zones.len());
        for z in zones {
            let denial = spec_of(&z.origin).denial;
            let (origin, signed, parent) = (z.origin.clone(), z.signed, z.parent.clone());
            let signing = |message: String| DnsError::Signing {
                origin: origin.to_string(),
                message,
            };
            let records = match keys.get(&origin) {
                Some(key) => {
                    let (rrsets, signable) = sign::secure(z, key, denial).map_err(signing)?;
                    let (window, own) =
                        windows(spec_of(&origin), (spec.inception, spec.expiration)).map_err(signing)?;
                    let records = ZoneRecords::signed(origin.clone(), rrsets, signable, key.clone(), window, &own)
                        .map_err(signing)?;
                    // The DNAME index keeps its RRSIGs (`dname::DnameIndex`): made here.
                    for (i, set) in records.rrsets().iter().enumerate() {
                        if set.record_type() == RecordType::DNAME {
                            records.rrsig(i).map_err(signing)?;
                        }
                    }
                    records
                }
                None => ZoneRecords::unsigned(origin.clone(), sign::unsigned(z)),
            };
            built.push(BuiltZone {
                origin,
                signed,
                denial,
                parent,
                records: Arc::new(records),
            });
        }
        let mut faults = Vec::with_capacity(spec.faults.len());
        for f in &spec.faults {
            let (rrsigs, resign) = if f.on_denial {
                (Vec::new(), denial_resign(f, &built, spec, &rogue)?)
            } else if f.kind.is_signature() && f.kind != FaultKind::NoSignature {
                (fault_rrsigs(f, &built, spec, &rogue)?, None)
            } else {
                (Vec::new(), None)
            };
            faults.push(PreparedFault {
                spec: f.clone(),
                rrsigs,
                resign,
            });
        }
        Ok(SignedWorld {
            zones: built,
            anchor,
            faults,
        })
    }

    /// The declared faults with their replacement RRSIGs, for the server's fault stage.
    pub(crate) fn faults(&self) -> &[PreparedFault] {
        &self.faults
    }

    /// The trust anchor: the key of `test.`.
    pub fn trust_anchor(&self) -> TrustAnchor {
        self.anchor.clone()
    }

    /// Zone origins in canonical order ("test.", "example.test.", ...).
    pub fn origins(&self) -> Vec<String> {
        self.zones.iter().map(|z| z.origin.to_string()).collect()
    }

    /// Whether the zone `origin` is signed; `None` if the world has no such zone.
    pub fn is_signed(&self, origin: &str) -> Option<bool> {
        self.zone(origin).map(|z| z.signed)
    }

    /// The whole zone in master-file format, one record per line, in canonical order
    /// (RFC 4034 §6: names, then type code, then RDATA; each RRset followed by its RRSIG).
    pub fn zone_text(&self, origin: &str) -> Result<Option<String>, DnsError> {
        let Some(zone) = self.zone(origin) else {
            return Ok(None);
        };
        let signing = |message: String| DnsError::Signing {
            origin: zone.origin.to_string(),
            message,
        };
        zone.records.sign_all().map_err(signing)?;
        let mut out = String::new();
        for (i, set) in zone.records.rrsets().iter().enumerate() {
            let mut records: Vec<(Vec<u8>, String)> = set
                .records_without_rrsigs()
                .map(|r| (canonical_rdata(&r.data), r.to_string()))
                .collect();
            records.sort();
            for (_, line) in records {
                out.push_str(&line);
                out.push('\n');
            }
            if let Some(rrsig) = zone.records.rrsig(i).map_err(signing)? {
                out.push_str(&rrsig.to_string());
                out.push('\n');
            }
        }
        Ok(Some(out))
    }

    pub(crate) fn zones(&self) -> &[BuiltZone] {
        &self.zones
    }

    fn zone(&self, origin: &str) -> Option<&BuiltZone> {
        let origin = normalise_origin(origin).ok()?;
        self.zones.iter().find(|z| z.origin == origin)
    }
}

impl BuiltZone {
    /// A fresh hickory zone handler holding this zone's records. It holds no RRSIGs: the
    /// request handler adds them to each answer (`ZoneRecords::add_rrsigs`).
    pub(crate) fn handler(&self) -> Arc<InMemoryZoneHandler> {
        let nx_proof = self.signed.then(|| match self.denial {
            Denial::Nsec => NxProofKind::Nsec,
            Denial::Nsec3 => NxProofKind::Nsec3 {
                algorithm: Nsec3HashAlgorithm::SHA1,
                salt: Arc::from(NSEC3_SALT.as_slice()),
                iterations: NSEC3_ITERATIONS,
                opt_out: false,
            },
        });
        let mut handler: InMemoryZoneHandler =
            InMemoryZoneHandler::empty(self.origin.clone(), ZoneType::Primary, AxfrPolicy::Deny, nx_proof);
        // The records are inserted as built: `secure_zone_mut` would sign with the wall clock.
        // Built in one go from RRsets already in canonical order: the sort finds one run and
        // the map is filled without a search per insert (half a second for a 50k zone).
        *handler.records_get_mut() = self
            .records
            .rrsets()
            .iter()
            .map(|set| (RrKey::new(LowerName::new(set.name()), set.record_type()), set.clone()))
            .collect();
        Arc::new(handler)
    }
}

/// A zone's RRSIG window (its own, else the world's `default`) and the RRsets with one of
/// their own (RFC 4034 §3.1.5: inception before expiration, serial arithmetic aside).
fn windows(
    z: &zone::ZoneSpec,
    default: (u32, u32),
) -> Result<((u32, u32), Vec<(Name, RecordType, (u32, u32))>), String> {
    let mut window = default;
    let mut own = Vec::new();
    for w in &z.windows {
        if w.expiration <= w.inception {
            return Err(format!(
                "signature expiration {} is not after inception {}",
                w.expiration, w.inception
            ));
        }
        match &w.rrset {
            None => window = (w.inception, w.expiration),
            Some((name, rtype)) => own.push((name.clone(), *rtype, (w.inception, w.expiration))),
        }
    }
    Ok((window, own))
}

/// RDATA in wire form, for the canonical RR ordering within an RRset (RFC 4034 §6.3).
fn canonical_rdata(rdata: &RData) -> Vec<u8> {
    rdata.to_bytes().unwrap_or_default()
}

/// What re-signs the denial proof for a fault on it, after checking that the fault can act:
/// the name's zone is signed and the queried RRset does not exist there, so that the answer
/// is negative and carries a proof (a fault that never applies would pass vacuously).
fn denial_resign(
    f: &FaultSpec,
    zones: &[BuiltZone],
    spec: &WorldDnsSpec,
    rogue: &dyn Fn() -> Result<ZoneKey, DnsError>,
) -> Result<Option<Resign>, DnsError> {
    let fault_err = |message: String| DnsError::Zone {
        origin: f.qname.clone(),
        message,
    };
    let qname = Name::from_ascii(&f.qname).map_err(|e| fault_err(e.to_string()))?;
    // The zone that answers: the closest enclosing one, or the parent for DS at a child apex
    // (RFC 4035 §3.1.4.1).
    let zone = zones
        .iter()
        .filter(|z| z.origin.zone_of(&qname))
        .filter(|z| !(f.qtype == Some(RecordType::DS) && z.origin == qname && z.parent.is_some()))
        .max_by_key(|z| z.origin.num_labels());
    let Some(zone) = zone else {
        return Err(fault_err(format!("fault `{}` names a name in no zone", f.describe())));
    };
    let Some(key) = zone.records.shared_key() else {
        return Err(fault_err(format!(
            "fault `{}` breaks a denial proof, but `{}` is unsigned",
            f.describe(),
            zone.origin
        )));
    };
    if let Some(t) = f.qtype
        && zone.records.find(&qname, t).is_some()
    {
        return Err(fault_err(format!(
            "fault `{}` needs a negative answer, but `{qname} {t}` exists in `{}`",
            f.describe(),
            zone.origin
        )));
    }
    let resign = |key: Arc<ZoneKey>, window| {
        Some(Resign {
            key,
            signer: zone.origin.clone(),
            window,
        })
    };
    Ok(match f.kind {
        FaultKind::ExpiredSignature => resign(key, EXPIRED_WINDOW),
        FaultKind::FutureSignature => resign(key, FUTURE_WINDOW),
        FaultKind::WrongKey => resign(Arc::new(rogue()?), (spec.inception, spec.expiration)),
        _ => None,
    })
}

/// The RRSIGs a signature fault serves instead of the real ones over its RRset. The RRset
/// must exist and be signed, or the fault could not do what the scenario says.
fn fault_rrsigs(
    f: &FaultSpec,
    zones: &[BuiltZone],
    spec: &WorldDnsSpec,
    rogue: &dyn Fn() -> Result<ZoneKey, DnsError>,
) -> Result<Vec<Record>, DnsError> {
    let fault_err = |message: String| DnsError::Zone {
        origin: f.qname.clone(),
        message,
    };
    let mut out = Vec::new();
    for z in zones {
        let Some(key) = z.records.key() else {
            continue;
        };
        for (i, set) in z.records.rrsets().iter().enumerate() {
            let owner = set.name().to_string().to_ascii_lowercase();
            if owner != f.qname || f.qtype.is_some_and(|t| t != set.record_type()) {
                continue;
            }
            let Some(real) = z.records.rrsig(i).map_err(fault_err)? else {
                continue;
            };
            let signed = |key: &ZoneKey, (inception, expiration): (u32, u32)| {
                sign::rrsig(set, key, &z.origin, inception, expiration).map_err(fault_err)
            };
            match f.kind {
                FaultKind::BadSignature => out.push(fault::corrupted(real)),
                FaultKind::ExpiredSignature => out.push(signed(key, EXPIRED_WINDOW)?),
                FaultKind::FutureSignature => out.push(signed(key, FUTURE_WINDOW)?),
                FaultKind::WrongKey => out.push(signed(&rogue()?, (spec.inception, spec.expiration))?),
                _ => {}
            }
        }
    }
    if out.is_empty() {
        return Err(fault_err(format!(
            "fault `{}` needs a signed RRset at {} {}, and the world has none",
            f.kind.name(),
            f.qname,
            f.qtype.map(|t| t.to_string()).unwrap_or_else(|| "(any type)".into())
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fixture;

    #[test]
    fn an_nsec_zone_has_a_closed_nsec_chain_and_no_nsec3() {
        let mut spec = fixture::sample_spec();
        spec.zones[1].denial = Denial::Nsec;
        let w = SignedWorld::build(&spec).unwrap();
        let text = w.zone_text("example.test.").unwrap().unwrap();
        assert!(!text.contains("NSEC3"), "{text}");
        let nsec: Vec<&str> = text
            .lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("NSEC"))
            .collect();
        // One NSEC per owner name (RFC 4035 §2.3), the last pointing back to the apex.
        let owners: std::collections::BTreeSet<&str> =
            text.lines().filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(nsec.len(), owners.len(), "{text}");
        assert!(
            nsec.iter()
                .any(|l| l.split_whitespace().nth(4) == Some("example.test.")),
            "{text}"
        );
        // The NSEC3 zones of the same world are untouched.
        assert!(w.zone_text("test.").unwrap().unwrap().contains("NSEC3"));
    }

    #[test]
    fn two_builds_are_byte_identical() {
        let spec = fixture::sample_spec();
        let a = SignedWorld::build(&spec).unwrap();
        let b = SignedWorld::build(&spec).unwrap();
        assert_eq!(a.origins(), ["test.", "example.test.", "insecure.test."]);
        for origin in a.origins() {
            assert_eq!(a.zone_text(&origin).ok(), b.zone_text(&origin).ok(), "{origin}");
        }
        assert_eq!(a.trust_anchor(), b.trust_anchor());
        // Input order does not matter either.
        let mut reversed = spec.clone();
        reversed.zones.reverse();
        let c = SignedWorld::build(&reversed).unwrap();
        assert_eq!(a.zone_text("example.test").ok(), c.zone_text("example.test.").ok());
    }

    #[test]
    fn zone_contents_follow_the_assembly_rules() {
        let world = SignedWorld::build(&fixture::sample_spec()).unwrap();
        let test = world.zone_text("test.").unwrap().unwrap();
        let example = world.zone_text("example.test.").unwrap().unwrap();
        let insecure = world.zone_text("insecure.test.").unwrap().unwrap();
        // Signed child: NS + DS (+ RRSIG over DS only) in the parent.
        assert!(test.contains("example.test. 300 IN NS ns.test."), "{test}");
        assert!(test.contains("example.test. 300 IN DS "), "{test}");
        assert!(test.contains("RRSIG DS ED25519 2 "), "{test}");
        assert!(
            !test.contains("RRSIG NS ED25519 2 "),
            "cut NS must not be signed:\n{test}"
        );
        // Unsigned child: NS only, no DS.
        assert!(test.contains("insecure.test. 300 IN NS ns.test."), "{test}");
        assert!(!test.contains("insecure.test. 300 IN DS"), "{test}");
        assert!(test.contains("ns.test. 300 IN A 127.0.0.1"), "{test}");
        // Signed zone apex.
        assert!(example.contains("example.test. 300 IN DNSKEY 257 3 15 "), "{example}");
        assert!(example.contains("IN NSEC3PARAM 1 0 0 -"), "{example}");
        assert!(example.contains("IN NSEC3 1 0 0 - "), "{example}");
        assert!(
            example.contains("IN SOA ns.test. hostmaster.example.test. 1700000000 "),
            "{example}"
        );
        // Unsigned zone: nothing DNSSEC.
        for t in ["RRSIG", "DNSKEY", "NSEC3"] {
            assert!(!insecure.contains(t), "{t} in\n{insecure}");
        }
        assert_eq!(world.is_signed("insecure.test"), Some(false));
        assert_eq!(world.is_signed("nope.test"), None);
        assert!(matches!(world.zone_text("nope.test"), Ok(None)));
    }

    /// RRSIGs are made on first use (`rrsigs::ZoneRecords`), and a zone dump makes them all
    /// in chunks on several threads: the RRsets stay in canonical order, each signed RRset
    /// gets one RRSIG, and an RRSIG is the same whether made alone, in a dump, or in a small
    /// world holding the same RRset.
    #[test]
    fn rrsigs_made_on_first_use_equal_those_of_a_full_signing() {
        let mut spec = fixture::sample_spec();
        spec.zones[1]
            .records
            .extend((0..3_000).map(|i| format!("h{i} A 192.0.2.{}", i % 250 + 1)));
        let mx = |w: &SignedWorld| {
            let records = &w.zones()[1].records;
            let i = records
                .rrsets()
                .iter()
                .position(|s| s.record_type() == RecordType::MX)
                .unwrap();
            records.rrsig(i).unwrap().cloned()
        };
        let small = SignedWorld::build(&fixture::sample_spec()).unwrap();
        let alone = SignedWorld::build(&spec).unwrap();
        let first_use = mx(&alone);
        assert!(first_use.is_some());
        assert_eq!(first_use, mx(&small));

        let big = SignedWorld::build(&spec).unwrap();
        let records = &big.zones()[1].records;
        assert!(records.rrsets().len() > 6_000, "{}", records.rrsets().len());
        let keys: Vec<(Name, u16)> = records
            .rrsets()
            .iter()
            .map(|s| (s.name().clone(), u16::from(s.record_type())))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "canonical order, no duplicates");
        records.sign_all().unwrap();
        assert!(
            (0..records.rrsets().len()).all(|i| records.rrsig(i).unwrap().is_some()),
            "every RRset of a zone without cuts is signed"
        );
        assert_eq!(mx(&big), first_use);
        assert_eq!(big.zone_text("example.test").ok(), alone.zone_text("example.test").ok());
    }

    /// Signing on first use must not turn bad input into a failure while serving: an RRset
    /// whose signed data cannot be encoded (over 65535 octets) fails the build, naming it.
    #[test]
    fn an_rrset_too_large_to_sign_fails_the_build() {
        let mut spec = fixture::sample_spec();
        let chunk = "x".repeat(250);
        spec.zones[1]
            .records
            .extend((0..300).map(|i| format!("big TXT \"{i:03}{chunk}\"")));
        let err = SignedWorld::build(&spec)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("big.example.test."), "{err}");
        // The same RRset in an unsigned zone needs no signature.
        spec.zones[1].signed = false;
        assert!(SignedWorld::build(&spec).is_ok());
    }

    #[test]
    fn build_errors() {
        let mut spec = fixture::sample_spec();
        spec.expiration = spec.inception;
        assert!(matches!(SignedWorld::build(&spec), Err(DnsError::Zone { .. })));

        let mut spec = fixture::sample_spec();
        spec.zones[0].signed = false;
        assert!(matches!(SignedWorld::build(&spec), Err(DnsError::Zone { .. })));

        let mut spec = fixture::sample_spec();
        spec.zones[1].key_pkcs8 = vec![1, 2, 3];
        assert!(matches!(SignedWorld::build(&spec), Err(DnsError::Key { .. })));
    }
}
