use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, RecordType};

use super::error::DnsError;
use super::record;

/// One zone of a world, as the scenario describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpec {
    /// "example.test." (a missing trailing dot is added).
    pub origin: String,
    /// false: no DNSKEY/RRSIG/NSEC3 and no DS in the parent, i.e. an insecure delegation.
    pub signed: bool,
    /// Ed25519 PKCS#8 DER (v1 seed-only, or v2) of the zone's single CSK (DNSKEY flags 257).
    pub key_pkcs8: Vec<u8>,
    pub default_ttl: u32,
    /// One RFC 1035 record per entry, names relative to `origin`
    /// ("@ MX 10 mx1", "mx1 300 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 ABCD...").
    pub records: Vec<String>,
    /// What the parent publishes as DS for a signed zone (ignored for `test.` and unsigned zones).
    pub ds: DsMode,
    /// How a signed zone proves non-existence.
    pub denial: Denial,
}

/// The authenticated denial of existence a signed zone uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Denial {
    /// NSEC3, SHA-1, 0 iterations, no salt (RFC 5155; RFC 9276 §3.1).
    #[default]
    Nsec3,
    /// NSEC (RFC 4034 §4, RFC 4035 §3.1.3): names in the clear, a simpler chain.
    Nsec,
}

/// The DS a parent publishes for a signed child: the chain of trust, or a fault in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DsMode {
    /// The SHA-256 DS of the child's key (RFC 4509): a secure delegation.
    #[default]
    Secure,
    /// No DS: a signed child under a proven-absent DS is insecure (RFC 4035 §5.2).
    None,
    /// A DS of some other key: the child's DNSKEY cannot be authenticated, so it is bogus
    /// (RFC 4035 §5.2).
    Mismatch,
    /// A DS whose algorithm no validator implements (253): insecure (RFC 4035 §5.2).
    UnknownAlgorithm,
    /// A DS whose digest type no validator implements (200): insecure (RFC 6840 §5.2).
    UnknownDigest,
}

impl DsMode {
    pub const NAMES: [&'static str; 5] = ["secure", "none", "mismatch", "unknown-algorithm", "unknown-digest"];

    pub fn parse(s: &str) -> Option<DsMode> {
        Some(match s {
            "secure" => Self::Secure,
            "none" => Self::None,
            "mismatch" => Self::Mismatch,
            "unknown-algorithm" => Self::UnknownAlgorithm,
            "unknown-digest" => Self::UnknownDigest,
            _ => return None,
        })
    }
}

/// All zones of a world plus the fixed signing window and the name server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldDnsSpec {
    /// Always contains "test." (the trust-anchor zone); every other zone is delegated from its
    /// closest enclosing zone in this list.
    pub zones: Vec<ZoneSpec>,
    /// Fixed RRSIG inception (unix seconds), so that signatures are byte-stable.
    pub inception: u32,
    /// Fixed RRSIG expiration (unix seconds).
    pub expiration: u32,
    /// Address of the one name server host `ns.test.` (its A record lives in `test.`).
    pub nameserver: Ipv4Addr,
    /// Faults the server applies to matching queries.
    pub faults: Vec<super::fault::FaultSpec>,
    /// Ed25519 PKCS#8 of a key no zone publishes: it signs `wrong-key` RRSIGs and `mismatch` DS.
    pub rogue_key_pkcs8: Vec<u8>,
}

/// The zone that holds the trust anchor; every other zone is below it.
pub(crate) const ANCHOR_ZONE: &str = "test.";
/// The single name server host that every zone's NS set names.
pub(crate) const NS_HOST: &str = "ns.test.";

// SOA timers. They matter to no validator here; RFC 1912 §2.2 style values keep linters quiet.
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 900;
const SOA_EXPIRE: i32 = 1_209_600;

/// Parse a zone origin: add a missing trailing dot and lowercase it.
pub(crate) fn normalise_origin(origin: &str) -> Result<Name, String> {
    let trimmed = origin.trim();
    if trimmed.is_empty() {
        return Err("the origin is empty".into());
    }
    let text = if trimmed.ends_with('.') {
        trimmed.to_string()
    } else {
        format!("{trimmed}.")
    };
    let name = Name::from_ascii(&text).map_err(|e| e.to_string())?;
    Ok(name.to_lowercase())
}

/// A constant name of this module; the constants are valid names.
pub(crate) fn constant_name(text: &'static str) -> Name {
    Name::from_ascii(text).expect("module constants are valid absolute domain names")
}

/// One RRset of a zone under assembly (unsigned).
#[derive(Debug, Clone)]
pub(crate) struct Rrset {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// The unsigned contents of one zone: the author's records plus the generated apex and
/// delegation records. DS records and everything DNSSEC are added later (`world`, `sign`).
#[derive(Debug, Clone)]
pub(crate) struct ZoneData {
    pub origin: Name,
    pub signed: bool,
    pub default_ttl: u32,
    pub parent: Option<Name>,
    /// Keyed by (owner, type code); `Name`'s order is the canonical order of RFC 4034 §6.1.
    pub rrsets: BTreeMap<(Name, u16), Rrset>,
    /// Non-apex owners with NS records (zone cuts); their NS sets are not authoritative.
    pub delegations: BTreeSet<Name>,
}

impl ZoneData {
    fn new(origin: Name, signed: bool, default_ttl: u32, parent: Option<Name>) -> Self {
        Self {
            origin,
            signed,
            default_ttl,
            parent,
            rrsets: BTreeMap::new(),
            delegations: BTreeSet::new(),
        }
    }

    /// Add one record; an identical record is absorbed (an RRset is a set, RFC 2181 §5).
    pub(crate) fn add(&mut self, name: &Name, rtype: RecordType, ttl: u32, rdata: RData) -> Result<(), String> {
        let key = (name.clone(), u16::from(rtype));
        let rrset = self.rrsets.entry(key).or_insert_with(|| Rrset {
            name: name.clone(),
            rtype,
            ttl,
            rdatas: Vec::new(),
        });
        // RFC 2181 §5.2: all RRs of an RRset have the same TTL.
        if rrset.ttl != ttl {
            return Err(format!(
                "TTL {ttl} differs from TTL {} of the other `{name} {rtype}` records (RFC 2181 §5.2)",
                rrset.ttl
            ));
        }
        if !rrset.rdatas.contains(&rdata) {
            rrset.rdatas.push(rdata);
        }
        Ok(())
    }

    /// Owner names of this zone in canonical order.
    pub(crate) fn names(&self) -> BTreeSet<Name> {
        self.rrsets.values().map(|r| r.name.clone()).collect()
    }

    fn types_at(&self, name: &Name) -> Vec<RecordType> {
        self.rrsets
            .values()
            .filter(|r| &r.name == name)
            .map(|r| r.rtype)
            .collect()
    }
}

/// Where an author record came from, so that semantic errors can point at its line.
struct Provenance {
    name: Name,
    rtype: RecordType,
    index: usize,
    line: String,
}

impl Provenance {
    /// An error about this record as a whole (column 0: the scenario points at its line).
    fn error(&self, origin: &Name, message: String) -> DnsError {
        DnsError::Record {
            origin: origin.to_string(),
            index: self.index,
            line: self.line.clone(),
            column: 0,
            message,
        }
    }
}

/// The assembly rules alone (no keys, no signing), for the scenario loader: a conflict
/// between records is then reported at load time, at the record (`DnsError::Record::index`).
pub fn check_zones(spec: &WorldDnsSpec) -> Result<(), DnsError> {
    assemble(spec).map(|_| ())
}

/// Assemble every zone of the world (unsigned), in canonical origin order.
///
/// Applies the assembly rules: SOA and NS (`ns.test.`) at every apex, `ns.test. A` in `test.`,
/// NS for each child zone in its parent; rejects records that duplicate generated ones,
/// records at or below a zone cut, and CNAMEs beside other data.
pub(crate) fn assemble(spec: &WorldDnsSpec) -> Result<Vec<ZoneData>, DnsError> {
    let mut by_origin: BTreeMap<Name, &ZoneSpec> = BTreeMap::new();
    for z in &spec.zones {
        let origin = normalise_origin(&z.origin).map_err(|message| DnsError::InvalidOrigin {
            origin: z.origin.clone(),
            message,
        })?;
        if by_origin.insert(origin.clone(), z).is_some() {
            return Err(DnsError::DuplicateZone {
                origin: origin.to_string(),
            });
        }
    }
    let anchor = constant_name(ANCHOR_ZONE);
    if !by_origin.contains_key(&anchor) {
        return Err(DnsError::MissingAnchorZone);
    }
    let origins: Vec<Name> = by_origin.keys().cloned().collect();
    let ns_host = constant_name(NS_HOST);
    if let Some(clash) = origins.iter().find(|o| o.zone_of(&ns_host) && **o != anchor) {
        // A zone at or above `ns.test.` (other than `test.`) would occlude the server's address.
        return Err(zone_error(
            clash,
            format!("the zone would contain or cut off the name server host `{NS_HOST}`"),
        ));
    }

    let mut zones = Vec::with_capacity(by_origin.len());
    for (origin, z) in &by_origin {
        let parent = if *origin == anchor {
            None
        } else {
            // The closest enclosing zone of the world delegates this one.
            let parent = origins
                .iter()
                .filter(|o| *o != origin && o.zone_of(origin))
                .max_by_key(|o| o.num_labels())
                .cloned();
            match parent {
                Some(p) => Some(p),
                None => {
                    return Err(DnsError::NoParent {
                        origin: origin.to_string(),
                    });
                }
            }
        };
        let children: Vec<&Name> = origins.iter().filter(|o| *o != origin && origin.zone_of(o)).collect();
        zones.push(author_zone(origin, z, parent, &children)?);
    }

    for zone in &mut zones {
        // The serial is the fixed inception: stable across builds, never the wall clock.
        add_apex(zone, spec.nameserver, spec.inception)?;
    }

    // Each child gets NS in its parent (RFC 1034 §4.2.1); DS is added once keys are loaded.
    let cuts: Vec<(Name, Name)> = zones
        .iter()
        .filter_map(|z| z.parent.clone().map(|p| (p, z.origin.clone())))
        .collect();
    for (parent, child) in cuts {
        let zone = zones
            .iter_mut()
            .find(|z| z.origin == parent)
            .expect("every parent was chosen from the world's own origins");
        let ttl = zone.default_ttl;
        zone.add(&child, RecordType::NS, ttl, RData::NS(NS(ns_host.clone())))
            .map_err(|message| zone_error(&parent, message))?;
        zone.delegations.insert(child);
    }
    Ok(zones)
}

fn zone_error(origin: &Name, message: String) -> DnsError {
    DnsError::Zone {
        origin: origin.to_string(),
        message,
    }
}

/// Parse the author's records of one zone and check them against the zone's cuts.
fn author_zone(origin: &Name, z: &ZoneSpec, parent: Option<Name>, children: &[&Name]) -> Result<ZoneData, DnsError> {
    let mut data = ZoneData::new(origin.clone(), z.signed, z.default_ttl, parent);
    let mut provenance = Vec::with_capacity(z.records.len());
    for (index, line) in z.records.iter().enumerate() {
        let record_error = |column: usize, message: String| DnsError::Record {
            origin: origin.to_string(),
            index,
            line: line.clone(),
            column,
            message,
        };
        let parsed = record::parse_line(origin, z.default_ttl, line).map_err(|e| record_error(e.column, e.message))?;
        let rec = parsed.record;
        let rtype = rec.record_type();
        data.add(&rec.name, rtype, rec.ttl, rec.data)
            .map_err(|m| record_error(0, m))?;
        provenance.push(Provenance {
            name: rec.name,
            rtype,
            index,
            line: line.clone(),
        });
    }

    // Author-declared cuts (NS below the apex) delegate to servers outside this world.
    let author_cuts: BTreeSet<Name> = provenance
        .iter()
        .filter(|p| p.rtype == RecordType::NS && p.name != *origin)
        .map(|p| p.name.clone())
        .collect();
    let ns_host = constant_name(NS_HOST);
    for p in &provenance {
        let fail = |message: String| p.error(origin, message);
        if let Some(child) = children.iter().find(|c| c.zone_of(&p.name)) {
            // RFC 1034 §4.2.1: data at or below a cut belongs to the child zone.
            return Err(fail(format!(
                "`{}` is at or below the delegated zone `{child}`; declare it in that zone",
                p.name
            )));
        }
        if let Some(cut) = author_cuts
            .iter()
            .find(|c| c.zone_of(&p.name) && !(p.name == **c && p.rtype == RecordType::NS))
        {
            return Err(fail(format!(
                "`{} {}` is at or below the zone cut `{cut}` (only NS may be there)",
                p.name, p.rtype
            )));
        }
        if p.name == ns_host {
            return Err(fail(format!(
                "`{ns_host}` is generated (the name server host); do not declare records for it"
            )));
        }
    }
    data.delegations = author_cuts;

    // RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME owner has no other data.
    for name in data.names() {
        let types = data.types_at(&name);
        if types.contains(&RecordType::CNAME) && (types.len() > 1 || name == *origin) {
            let p = provenance
                .iter()
                .find(|p| p.name == name && p.rtype == RecordType::CNAME)
                .expect("a CNAME RRset exists only because a record line declared it");
            return Err(p.error(origin, format!("`{name}` has a CNAME and other data (RFC 2181 §10.1)")));
        }
        let cname = data
            .rrsets
            .get(&(name.clone(), u16::from(RecordType::CNAME)))
            .map_or(0, |r| r.rdatas.len());
        if cname > 1 {
            return Err(zone_error(origin, format!("`{name}` has more than one CNAME")));
        }
    }

    // RFC 6672 §2.4: DNAME is a singleton beside anything but CNAME, and no data may exist
    // below its owner (a server would never answer it: every name there is redirected).
    let dnames: Vec<&Provenance> = provenance.iter().filter(|p| p.rtype == RecordType::DNAME).collect();
    for d in &dnames {
        let at = |message: String| d.error(origin, message);
        let count = data
            .rrsets
            .get(&(d.name.clone(), u16::from(RecordType::DNAME)))
            .map_or(0, |r| r.rdatas.len());
        if count > 1 {
            return Err(at(format!("`{}` has more than one DNAME (RFC 6672 §2.4)", d.name)));
        }
        if data.types_at(&d.name).contains(&RecordType::CNAME) {
            return Err(at(format!("`{}` has a DNAME and a CNAME (RFC 6672 §2.4)", d.name)));
        }
        if let Some(below) = provenance.iter().find(|p| p.name != d.name && d.name.zone_of(&p.name)) {
            return Err(below.error(
                origin,
                format!(
                    "`{}` is below the DNAME at `{}`, where no data may exist (RFC 6672 §2.4)",
                    below.name, d.name
                ),
            ));
        }
        if let Some(child) = children.iter().find(|c| **c != &d.name && d.name.zone_of(c)) {
            return Err(at(format!(
                "the zone `{child}` is below the DNAME at `{}`, where no data may exist (RFC 6672 §2.4)",
                d.name
            )));
        }
    }
    Ok(data)
}

/// SOA and NS at the apex; `ns.test. A` in the anchor zone.
fn add_apex(zone: &mut ZoneData, nameserver: Ipv4Addr, serial: u32) -> Result<(), DnsError> {
    let origin = zone.origin.clone();
    let ttl = zone.default_ttl;
    let ns_host = constant_name(NS_HOST);
    let rname = Name::from_ascii("hostmaster")
        .and_then(|h| h.append_domain(&origin))
        .map_err(|e| zone_error(&origin, format!("SOA RNAME: {e}")))?;
    let soa = SOA::new(ns_host.clone(), rname, serial, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, ttl);
    zone.add(&origin, RecordType::SOA, ttl, RData::SOA(soa))
        .map_err(|m| zone_error(&origin, m))?;
    zone.add(&origin, RecordType::NS, ttl, RData::NS(NS(ns_host.clone())))
        .map_err(|m| zone_error(&origin, m))?;
    if origin == constant_name(ANCHOR_ZONE) {
        zone.add(&ns_host, RecordType::A, ttl, RData::A(A(nameserver)))
            .map_err(|m| zone_error(&origin, m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(origin: &str, records: &[&str]) -> ZoneSpec {
        ZoneSpec {
            origin: origin.into(),
            signed: false,
            key_pkcs8: Vec::new(),
            default_ttl: 300,
            records: records.iter().map(|s| s.to_string()).collect(),
            ds: DsMode::Secure,
            denial: Denial::Nsec3,
        }
    }

    fn world(zones: Vec<ZoneSpec>) -> WorldDnsSpec {
        WorldDnsSpec {
            zones,
            inception: 1_700_000_000,
            expiration: 1_900_000_000,
            nameserver: Ipv4Addr::LOCALHOST,
            faults: Vec::new(),
            rogue_key_pkcs8: Vec::new(),
        }
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(normalise_origin("Example.TEST").unwrap().to_string(), "example.test.");
        assert!(normalise_origin("  ").is_err());
        assert!(normalise_origin("a..b").is_err());
    }

    #[test]
    fn apex_and_delegation_records_are_generated() {
        let zones = assemble(&world(vec![
            zone("test", &[]),
            zone("example.test.", &["@ MX 10 mx1", "mx1 A 192.0.2.10"]),
        ]))
        .unwrap();
        let test = &zones[0];
        assert_eq!(test.origin.to_string(), "test.");
        let types: Vec<String> = test
            .rrsets
            .values()
            .map(|r| format!("{} {}", r.name, r.rtype))
            .collect();
        assert_eq!(types, ["test. NS", "test. SOA", "example.test. NS", "ns.test. A"]);
        assert!(test.delegations.contains(&normalise_origin("example.test").unwrap()));
        assert_eq!(
            zones[1].parent.as_ref().map(|p| p.to_string()).as_deref(),
            Some("test.")
        );
    }

    #[test]
    fn dname_rules_are_enforced() {
        let err = |records: &[&str], extra: Vec<ZoneSpec>| {
            let mut zones = vec![zone("test", &[]), zone("example.test", records)];
            zones.extend(extra);
            assemble(&world(zones)).unwrap_err().to_string()
        };
        let ok = assemble(&world(vec![
            zone("test", &[]),
            zone("example.test", &["mail DNAME mail.provider.test.", "mail A 192.0.2.1"]),
        ]));
        assert!(ok.is_ok(), "data beside a DNAME is fine: {:?}", ok.err());
        let e = err(&["mail DNAME a.test.", "mail CNAME b.test."], vec![]);
        assert!(
            e.contains("DNAME and a CNAME") || e.contains("CNAME and other data"),
            "{e}"
        );
        let e = err(&["mail DNAME a.test.", "mail DNAME b.test."], vec![]);
        assert!(e.contains("more than one DNAME"), "{e}");
        let e = err(&["mail DNAME a.test.", "mx1.mail A 192.0.2.1"], vec![]);
        assert!(e.contains("below the DNAME"), "{e}");
        let e = err(&["mail DNAME a.test."], vec![zone("sub.mail.example.test", &[])]);
        assert!(e.contains("below the DNAME"), "{e}");
    }

    #[test]
    fn structural_errors_are_reported() {
        assert!(matches!(
            assemble(&world(vec![zone("example.test", &[])])),
            Err(DnsError::MissingAnchorZone)
        ));
        assert!(matches!(
            assemble(&world(vec![zone("test", &[]), zone("example.org", &[])])),
            Err(DnsError::NoParent { .. })
        ));
        assert!(matches!(
            assemble(&world(vec![zone("test", &[]), zone("TEST.", &[])])),
            Err(DnsError::DuplicateZone { .. })
        ));
        // Data below a delegated child belongs to the child.
        let err = assemble(&world(vec![
            zone("test", &["www.example A 192.0.2.1"]),
            zone("example.test", &[]),
        ]))
        .unwrap_err();
        assert!(matches!(err, DnsError::Record { index: 0, .. }), "{err}");
        // TTL mismatch inside one RRset.
        let err = assemble(&world(vec![zone("test", &["mx A 192.0.2.1", "mx 60 A 192.0.2.2"])])).unwrap_err();
        assert!(matches!(err, DnsError::Record { index: 1, .. }), "{err}");
        // CNAME beside other data.
        let err = assemble(&world(vec![zone("test", &["mx A 192.0.2.1", "mx CNAME other"])])).unwrap_err();
        assert!(err.to_string().contains("CNAME"), "{err}");
        // The name server host is generated, and no zone may cut it off.
        let err = assemble(&world(vec![zone("test", &["ns A 192.0.2.1"])])).unwrap_err();
        assert!(err.to_string().contains("generated"), "{err}");
        let err = assemble(&world(vec![zone("test", &[]), zone("ns.test", &[])])).unwrap_err();
        assert!(err.to_string().contains("name server host"), "{err}");
    }
}
