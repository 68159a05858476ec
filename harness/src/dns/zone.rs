use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::ops::Bound;

use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, RecordType};
use rayon::prelude::*;

use super::canonical::CanonicalKey;
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
    /// `records` already parsed by [`super::parse_record_line`] with this origin and default
    /// TTL, by position; a line without one (or past the end) is parsed here.
    pub parsed: Vec<Option<super::ParsedLine>>,
    /// What the parent publishes as DS for a signed zone (ignored for `test.` and unsigned zones).
    pub ds: DsMode,
    /// How a signed zone proves non-existence.
    pub denial: Denial,
    /// RRSIG validity windows other than the world's ([`WorldDnsSpec::inception`] ..
    /// [`WorldDnsSpec::expiration`]): at most one for the whole zone, one per RRset.
    pub windows: Vec<SignatureWindow>,
}

/// An RRSIG validity window (RFC 4034 §3.1.5) for a zone's RRSIGs or one RRset's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureWindow {
    /// `None`: every RRSIG the zone makes (DNSKEY, NSEC/NSEC3 and DS included) unless an
    /// RRset has its own.
    pub rrset: Option<(Name, RecordType)>,
    /// Unix seconds.
    pub inception: u32,
    pub expiration: u32,
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
    /// Hashes of `rdatas`, so that absorbing a duplicate costs one lookup, not a scan of the
    /// RRset (a scan made a large RRset quadratic to assemble).
    hashes: HashSet<u64>,
}

/// The unsigned contents of one zone: the author's records plus the generated apex and
/// delegation records. DS records and everything DNSSEC are added later (`world`, `sign`).
#[derive(Debug, Clone)]
pub(crate) struct ZoneData {
    pub origin: Name,
    pub signed: bool,
    pub default_ttl: u32,
    pub parent: Option<Name>,
    /// Keyed by (owner, type code), in the canonical order of RFC 4034 §6.1.
    pub rrsets: BTreeMap<(CanonicalKey, u16), Rrset>,
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
        let key = (CanonicalKey::of(name), u16::from(rtype));
        let rrset = self.rrsets.entry(key).or_insert_with(|| Rrset {
            name: name.clone(),
            rtype,
            ttl,
            rdatas: Vec::new(),
            hashes: HashSet::new(),
        });
        // RFC 2181 §5.2: all RRs of an RRset have the same TTL.
        if rrset.ttl != ttl {
            return Err(format!(
                "TTL {ttl} differs from TTL {} of the other `{name} {rtype}` records (RFC 2181 §5.2)",
                rrset.ttl
            ));
        }
        // A hash seen before is compared in full: equal hashes need not be equal data.
        if rrset.hashes.insert(rdata_hash(&rdata)) || !rrset.rdatas.contains(&rdata) {
            rrset.rdatas.push(rdata);
        }
        Ok(())
    }

    /// The RRset `name`/`rtype`, if the zone has it.
    pub(crate) fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        self.rrsets.get(&(CanonicalKey::of(name), u16::from(rtype)))
    }

    /// The types at each owner name, in canonical order: the RRsets of one owner are
    /// adjacent in the map, so this is one pass (a scan of every RRset per name made
    /// assembly quadratic).
    fn types_by_name(&self) -> Vec<(&Name, Vec<RecordType>)> {
        let mut out: Vec<(&Name, Vec<RecordType>)> = Vec::new();
        let mut last: Option<&CanonicalKey> = None;
        for ((key, _), r) in &self.rrsets {
            match out.last_mut() {
                Some((_, types)) if last == Some(key) => types.push(r.rtype),
                _ => out.push((&r.name, vec![r.rtype])),
            }
            last = Some(key);
        }
        out
    }
}

/// A fixed-key hash of one RDATA (std's `DefaultHasher::new` is SipHash with zero keys): only
/// ever used to skip a full comparison, so its value never reaches any output.
fn rdata_hash(rdata: &RData) -> u64 {
    let mut h = DefaultHasher::new();
    rdata.hash(&mut h);
    h.finish()
}

/// The highest of `name` and its ancestors up to `origin` (canonical order puts an ancestor
/// first, RFC 4034 §6.1) that satisfies `hit`. Walking at most 127 labels per name replaces
/// a scan of every cut or child per record.
fn topmost_ancestor(name: &Name, origin: &Name, mut hit: impl FnMut(&Name) -> bool) -> Option<Name> {
    let mut found = None;
    let mut at = name.clone();
    while origin.zone_of(&at) {
        if hit(&at) {
            found = Some(at.clone());
        }
        if at == *origin || at.is_root() {
            break;
        }
        at = at.base_name();
    }
    found
}

/// Zones with fewer record lines than this are parsed on the calling thread.
const PARALLEL_PARSING_FROM: usize = 2048;

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
            // The closest enclosing zone of the world delegates this one: the first ancestor
            // that is a zone (a walk up the labels, not a scan of every zone per zone).
            let mut up = origin.base_name();
            loop {
                if by_origin.contains_key(&up) {
                    break Some(up);
                }
                if up.is_root() {
                    return Err(DnsError::NoParent {
                        origin: origin.to_string(),
                    });
                }
                up = up.base_name();
            }
        };
        // Canonical order (RFC 4034 §6.1) keeps a name's descendants right after it.
        let children: Vec<&Name> = by_origin
            .range::<Name, _>((Bound::Excluded(origin), Bound::Unbounded))
            .map(|(o, _)| o)
            .take_while(|o| origin.zone_of(o))
            .collect();
        zones.push(author_zone(origin, z, parent, &children)?);
    }
    let index: BTreeMap<Name, usize> = zones.iter().enumerate().map(|(i, z)| (z.origin.clone(), i)).collect();

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
        let zone = &mut zones[index[&parent]];
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
    // Parsing is most of assembly and each line stands alone: a large zone parses on every
    // core, and the lines are then taken in order (the first bad one is the one reported).
    let parse = |(i, line): (usize, &String)| match z.parsed.get(i).and_then(Option::as_ref) {
        Some(done) => Ok(done.record().clone()),
        None => record::parse_line(origin, z.default_ttl, line).map(|p| p.record),
    };
    let parsed: Vec<_> = if z.records.len() < PARALLEL_PARSING_FROM {
        z.records.iter().enumerate().map(parse).collect()
    } else {
        z.records.par_iter().enumerate().map(parse).collect()
    };
    for (index, (line, parsed)) in z.records.iter().zip(parsed).enumerate() {
        let record_error = |column: usize, message: String| DnsError::Record {
            origin: origin.to_string(),
            index,
            line: line.clone(),
            column,
            message,
        };
        let rec = parsed.map_err(|e| record_error(e.column, e.message))?;
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
    let children: BTreeSet<&Name> = children.iter().copied().collect();
    for p in &provenance {
        let fail = |message: String| p.error(origin, message);
        if let Some(child) = topmost_ancestor(&p.name, origin, |a| children.contains(a)) {
            // RFC 1034 §4.2.1: data at or below a cut belongs to the child zone.
            return Err(fail(format!(
                "`{}` is at or below the delegated zone `{child}`; declare it in that zone",
                p.name
            )));
        }
        if let Some(cut) = topmost_ancestor(&p.name, origin, |a| {
            author_cuts.contains(a) && !(p.name == *a && p.rtype == RecordType::NS)
        }) {
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
    let types_by_name = data.types_by_name();
    for (name, types) in &types_by_name {
        if types.contains(&RecordType::CNAME) && (types.len() > 1 || *name == origin) {
            let p = provenance
                .iter()
                .find(|p| p.name == **name && p.rtype == RecordType::CNAME)
                .expect("a CNAME RRset exists only because a record line declared it");
            return Err(p.error(origin, format!("`{name}` has a CNAME and other data (RFC 2181 §10.1)")));
        }
        let cname = data.rrset(name, RecordType::CNAME).map_or(0, |r| r.rdatas.len());
        if cname > 1 {
            return Err(zone_error(origin, format!("`{name}` has more than one CNAME")));
        }
    }

    // RFC 6672 §2.4: DNAME is a singleton beside anything but CNAME, and no data may exist
    // below its owner (a server would never answer it: every name there is redirected).
    let dnames: Vec<&Provenance> = provenance.iter().filter(|p| p.rtype == RecordType::DNAME).collect();
    // The first record (in line order) strictly below each DNAME owner, found by walking each
    // record's ancestors once rather than scanning every record per DNAME.
    let owners: BTreeSet<&Name> = dnames.iter().map(|d| &d.name).collect();
    let mut first_below: BTreeMap<Name, usize> = BTreeMap::new();
    if !owners.is_empty() {
        for (i, p) in provenance.iter().enumerate() {
            let mut at = p.name.clone();
            while at != *origin && !at.is_root() && origin.zone_of(&at) {
                at = at.base_name();
                if owners.contains(&at) {
                    first_below.entry(at.clone()).or_insert(i);
                }
            }
        }
    }
    for d in &dnames {
        let at = |message: String| d.error(origin, message);
        let count = data.rrset(&d.name, RecordType::DNAME).map_or(0, |r| r.rdatas.len());
        if count > 1 {
            return Err(at(format!("`{}` has more than one DNAME (RFC 6672 §2.4)", d.name)));
        }
        if data.rrset(&d.name, RecordType::CNAME).is_some() {
            return Err(at(format!("`{}` has a DNAME and a CNAME (RFC 6672 §2.4)", d.name)));
        }
        if let Some(below) = first_below.get(&d.name).map(|&i| &provenance[i]) {
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
            parsed: Vec::new(),
            ds: DsMode::Secure,
            denial: Denial::Nsec3,
            windows: Vec::new(),
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

    /// Issue 14: assembly looked up each name's types by scanning every RRset, so 50k records
    /// did not finish in 150 s. The figures are in `ci/bench`; this checks that a large zone
    /// assembles completely and that the indexed checks still find the offending line.
    #[test]
    fn a_large_zone_assembles_and_its_checks_still_point_at_the_line() {
        let mut records: Vec<String> = (0..5_000).map(|i| format!("h{i} A 192.0.2.{}", i % 250 + 1)).collect();
        // One big RRset: duplicates are absorbed, distinct data kept in order.
        records.extend((0..2_000).map(|i| format!("big TXT \"{}\"", i % 1_000)));
        records.push("sub NS ns1.elsewhere.test.".into());
        records.push("mail DNAME mail.provider.test.".into());
        let refs: Vec<&str> = records.iter().map(String::as_str).collect();
        let zones = assemble(&world(vec![zone("test", &[]), zone("example.test", &refs)])).unwrap();
        let example = &zones[1];
        assert_eq!(
            example.types_by_name().len(),
            5_000 + 3 + 1,
            "every owner, plus the apex"
        );
        let big = example
            .rrset(&Name::from_ascii("big.example.test.").unwrap(), RecordType::TXT)
            .unwrap();
        assert_eq!(big.rdatas.len(), 1_000);
        assert_eq!(big.rdatas[0].to_string(), "0");

        let failing = |extra: &str| {
            let mut r = refs.clone();
            r.push(extra);
            assemble(&world(vec![zone("test", &[]), zone("example.test", &r)])).unwrap_err()
        };
        let last = refs.len();
        for bad in ["h4999 CNAME elsewhere.test.", "x.sub A 192.0.2.1", "x.mail A 192.0.2.1"] {
            let err = failing(bad);
            assert!(
                matches!(err, DnsError::Record { index, .. } if index == last),
                "{bad}: {err}"
            );
        }
        // Below a delegated child zone of the world.
        let mut r = refs.clone();
        r.push("a.b.child A 192.0.2.1");
        let err = assemble(&world(vec![
            zone("test", &[]),
            zone("example.test", &r),
            zone("child.example.test", &[]),
            zone("b.child.example.test", &[]),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("delegated zone `child.example.test.`"),
            "the topmost child is named, as before: {err}"
        );
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
