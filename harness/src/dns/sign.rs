use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::dnssec::crypto::Ed25519SigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, NSEC, NSEC3, NSEC3PARAM, RRSIG, SigInput};
use hickory_proto::dnssec::{Algorithm, DigestType, Nsec3HashAlgorithm, PublicKey, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType, SerialNumber};
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::canonical::CanonicalKey;
use super::zone::{Denial, Rrset, ZoneData};

/// RFC 9276 §3.1: NSEC3 with 0 extra iterations and an empty salt.
pub(crate) const NSEC3_ITERATIONS: u16 = 0;
pub(crate) const NSEC3_SALT: [u8; 0] = [];

/// DNSKEY flags of the single combined signing key: Zone Key + SEP (RFC 4034 §2.1.1).
pub(crate) const CSK_FLAGS: u16 = 257;

// RFC 8410 §7 / RFC 5958: Ed25519 PKCS#8, version 1 (seed only) and version 2 (with the public
// key). ring, behind hickory's signer, loads only v2, so a v1 key is re-wrapped.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_V2_PREFIX: [u8; 16] = [
    0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_V2_PUBLIC_KEY_TAG: [u8; 5] = [0xa1, 0x23, 0x03, 0x21, 0x00];

/// A zone's Ed25519 CSK with its DNSKEY and key tag.
pub(crate) struct ZoneKey {
    key: Box<dyn SigningKey>,
    pub dnskey: DNSKEY,
    pub key_tag: u16,
}

impl ZoneKey {
    /// Load an Ed25519 PKCS#8 key (v1 or v2 DER).
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let key = match Ed25519SigningKey::from_pkcs8(&PrivatePkcs8KeyDer::from(der)) {
            Ok(key) => key,
            Err(v2_error) => {
                let v2 = pkcs8_v1_to_v2(der)
                    .map_err(|v1_error| format!("not an Ed25519 PKCS#8 key ({v1_error}; as v2: {v2_error})"))?;
                Ed25519SigningKey::from_pkcs8(&PrivatePkcs8KeyDer::from(v2.as_slice()))
                    .map_err(|e| format!("Ed25519 PKCS#8 key rejected: {e}"))?
            }
        };
        let public = key.to_public_key().map_err(|e| e.to_string())?;
        let dnskey = DNSKEY::with_flags(CSK_FLAGS, public);
        let key_tag = dnskey.calculate_key_tag().map_err(|e| e.to_string())?;
        Ok(Self {
            key: Box::new(key),
            dnskey,
            key_tag,
        })
    }

    /// The raw Ed25519 public key (RFC 8080 §3).
    pub(crate) fn public_key(&self) -> &[u8] {
        self.dnskey.public_key().public_bytes()
    }

    /// A DS that names this key but an algorithm or digest type no validator implements
    /// (253 PRIVATEDNS, RFC 4034 §A.1; digest type 200, unassigned). RFC 4035 §5.2 and
    /// RFC 6840 §5.2: with no supported DS, validators treat the delegation as insecure.
    pub(crate) fn unsupported_ds(&self, owner: &Name, algorithm: bool) -> Result<DS, String> {
        let ds = self.ds(owner)?;
        Ok(if algorithm {
            DS::new(
                self.key_tag,
                Algorithm::Unknown(253),
                DigestType::SHA256,
                ds.digest().to_vec(),
            )
        } else {
            DS::new(
                self.key_tag,
                Algorithm::ED25519,
                DigestType::Unknown(200),
                ds.digest().to_vec(),
            )
        })
    }

    /// The SHA-256 DS for this key at `owner` (RFC 4509).
    pub(crate) fn ds(&self, owner: &Name) -> Result<DS, String> {
        let digest = self
            .dnskey
            .to_digest(owner, DigestType::SHA256)
            .map_err(|e| e.to_string())?;
        // RFC 4034 §5.1: the tag and digest are those of the DNSKEY we publish (flags 257).
        Ok(DS::new(
            self.key_tag,
            Algorithm::ED25519,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }
}

/// Re-wrap an Ed25519 PKCS#8 v1 (seed only) as v2 (seed + public key).
fn pkcs8_v1_to_v2(v1: &[u8]) -> Result<Vec<u8>, String> {
    if v1.len() != PKCS8_V1_PREFIX.len() + 32 || v1[..PKCS8_V1_PREFIX.len()] != PKCS8_V1_PREFIX {
        return Err("expected a 48-byte Ed25519 PKCS#8 v1 DER".into());
    }
    let seed = &v1[PKCS8_V1_PREFIX.len()..];
    // rcgen (on ring) accepts v1 and derives the public key from the seed.
    let pair = rcgen::KeyPair::try_from(v1).map_err(|e| format!("Ed25519 seed rejected: {e}"))?;
    let public = pair.public_key_raw();
    if public.len() != 32 {
        return Err("derived public key is not 32 bytes".into());
    }
    let mut v2 = Vec::with_capacity(85);
    v2.extend_from_slice(&PKCS8_V2_PREFIX);
    v2.extend_from_slice(seed);
    v2.extend_from_slice(&PKCS8_V2_PUBLIC_KEY_TAG);
    v2.extend_from_slice(public);
    Ok(v2)
}

/// RFC 4648 §7 base32hex, lowercase, unpadded: the NSEC3 owner label (RFC 5155 §3).
pub(crate) fn base32hex(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Turn an unsigned zone into hickory record sets, in canonical order, without DNSSEC.
pub(crate) fn unsigned(zone: ZoneData) -> Vec<RecordSet> {
    zone.rrsets.into_values().map(to_record_set).collect()
}

/// The records of a signed zone: DNSKEY and NSEC3PARAM at the apex and the NSEC3 chain
/// (RFC 5155 §7.1), or the NSEC chain, beside the zone's own RRsets; each with whether it
/// gets an RRSIG (RFC 4035 §2.2). The RRSIGs themselves are made on first use
/// (`rrsigs::ZoneRecords`): the same fixed key and times give the same bytes whenever they
/// are made (RFC 8032 §5.1.6), and a large zone then loads without ~100k signatures first.
pub(crate) fn secure(mut zone: ZoneData, key: &ZoneKey, denial: Denial) -> Result<(Vec<RecordSet>, Vec<bool>), String> {
    let origin = zone.origin.clone();
    let ttl = zone.default_ttl;
    zone.add(
        &origin,
        RecordType::DNSKEY,
        ttl,
        RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey.clone())),
    )?;
    if denial == Denial::Nsec {
        for record in nsec_chain(&zone) {
            zone.add(&record.name, RecordType::NSEC, record.ttl, record.data)?;
        }
        return Ok(with_signable(zone));
    }
    // RFC 5155 §4: NSEC3PARAM flags 0 (opt-out is never used here).
    zone.add(
        &origin,
        RecordType::NSEC3PARAM,
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC3PARAM(NSEC3PARAM::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            NSEC3_ITERATIONS,
            NSEC3_SALT.to_vec(),
        ))),
    )?;
    let chain = nsec3_chain(&zone)?;
    for record in chain {
        zone.add(&record.name, RecordType::NSEC3, record.ttl, record.data)?;
    }
    Ok(with_signable(zone))
}

/// Every RRset of a zone with whether it is signed: all but NS at a zone cut (RFC 4035 §2.2:
/// the NS RRset at a delegation point, like glue, is not authoritative).
fn with_signable(zone: ZoneData) -> (Vec<RecordSet>, Vec<bool>) {
    let delegations = zone.delegations;
    zone.rrsets
        .into_values()
        .map(|rrset| {
            let cut_ns = rrset.rtype == RecordType::NS && delegations.contains(&rrset.name);
            (to_record_set(rrset), !cut_ns)
        })
        .unzip()
}

/// The NSEC records of a zone (RFC 4035 §2.3): one per owner name in canonical order
/// (RFC 4034 §6.1), each naming the next and listing the types at its owner, plus RRSIG and
/// NSEC; the last points back to the apex. At an unsigned delegation the NS RRset is not
/// signed, but the NSEC there is, so its bitmap still has RRSIG.
fn nsec_chain(zone: &ZoneData) -> Vec<Record> {
    // The RRsets of one owner are adjacent in canonical order.
    let mut types: Vec<(&Name, BTreeSet<RecordType>)> = Vec::new();
    let mut last = None;
    for ((key, _), rrset) in &zone.rrsets {
        match types.last_mut() {
            Some((_, set)) if last == Some(key) => {
                set.insert(rrset.rtype);
            }
            _ => types.push((&rrset.name, BTreeSet::from([rrset.rtype]))),
        }
        last = Some(key);
    }
    let ttl = zone.default_ttl;
    types
        .iter()
        .enumerate()
        .map(|(i, (name, set))| {
            let next = types[(i + 1) % types.len()].0.clone();
            let set = set.iter().copied().chain([RecordType::RRSIG, RecordType::NSEC]);
            Record::from_rdata(
                (*name).clone(),
                ttl,
                RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(next, set))),
            )
        })
        .collect()
}

/// The NSEC3 records of a zone (RFC 5155 §7.1): one per authoritative name and empty
/// non-terminal, hashed with SHA-1, 0 iterations, no salt; ordered by hash, linked in a ring.
fn nsec3_chain(zone: &ZoneData) -> Result<Vec<Record>, String> {
    let origin = &zone.origin;
    let mut types: BTreeMap<CanonicalKey, (Name, BTreeSet<RecordType>)> = BTreeMap::new();
    for ((key, _), rrset) in &zone.rrsets {
        let (_, entry) = types
            .entry(key.clone())
            .or_insert_with(|| (rrset.name.clone(), BTreeSet::new()));
        entry.insert(rrset.rtype);
        // Every RRset is signed except NS at a cut (RFC 4035 §2.2); an unsigned delegation
        // therefore shows NS alone, which is what proves it insecure (RFC 5155 §8.6).
        let cut_ns = rrset.rtype == RecordType::NS && zone.delegations.contains(&rrset.name);
        if !cut_ns {
            entry.insert(RecordType::RRSIG);
        }
    }
    // Empty non-terminals get NSEC3 records with empty type maps (RFC 5155 §7.1).
    let apex_labels = origin.num_labels();
    // Only a name two or more labels below the apex can have an empty non-terminal above it
    // (counting a leading `*`, which `num_labels` leaves out: RFC 4034 §3.1.3).
    let names: Vec<Name> = types
        .values()
        .filter(|(name, _)| name.iter().count() > usize::from(apex_labels) + 1)
        .map(|(name, _)| name.clone())
        .collect();
    for name in names {
        let mut up = name.base_name();
        // Every owner is in the zone, so its ancestors down to the apex are too.
        while up.num_labels() > apex_labels {
            types
                .entry(CanonicalKey::of(&up))
                .or_insert_with(|| (up.clone(), BTreeSet::new()));
            up = up.base_name();
        }
    }

    let mut hashed: Vec<(Vec<u8>, BTreeSet<RecordType>)> = Vec::with_capacity(types.len());
    for (_, (name, set)) in types {
        let digest = Nsec3HashAlgorithm::SHA1
            .hash(&NSEC3_SALT, &name, NSEC3_ITERATIONS)
            .map_err(|e| format!("NSEC3 hash of {name}: {e}"))?;
        hashed.push((digest.as_ref().to_vec(), set));
    }
    hashed.sort_by(|a, b| a.0.cmp(&b.0));
    if hashed.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err("NSEC3 hash collision".into());
    }

    // RFC 9077 §3.2: NSEC3 TTL is min(SOA TTL, SOA MINIMUM); both are the zone default here.
    let ttl = zone.default_ttl;
    let mut records = Vec::with_capacity(hashed.len());
    for (i, (hash, set)) in hashed.iter().enumerate() {
        let next = &hashed[(i + 1) % hashed.len()].0;
        let owner = origin
            .prepend_label(base32hex(hash))
            .map_err(|e| format!("NSEC3 owner: {e}"))?;
        let nsec3 = NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            NSEC3_ITERATIONS,
            NSEC3_SALT.to_vec(),
            next.clone(),
            set.iter().copied(),
        );
        records.push(Record::from_rdata(owner, ttl, RData::DNSSEC(DNSSECRData::NSEC3(nsec3))));
    }
    Ok(records)
}

/// What an RRSIG over `set` signs (RFC 4034 §3.1.8.1), and its RDATA fields.
fn signed_data(
    set: &RecordSet,
    key: &ZoneKey,
    signer: &Name,
    inception: u32,
    expiration: u32,
) -> Result<(SigInput, TBS), String> {
    let input = SigInput {
        type_covered: set.record_type(),
        algorithm: Algorithm::ED25519,
        // RFC 4034 §3.1.3: labels exclude the root and a leading wildcard (hickory counts so).
        num_labels: set.name().num_labels(),
        original_ttl: set.ttl(),
        sig_expiration: SerialNumber::new(expiration),
        sig_inception: SerialNumber::new(inception),
        key_tag: key.key_tag,
        signer_name: signer.clone(),
    };
    let tbs = TBS::from_input(set.name(), DNSClass::IN, &input, set.records_without_rrsigs())
        .map_err(|e| format!("RRSIG input for {} {}: {e}", set.name(), set.record_type()))?;
    Ok((input, tbs))
}

/// Whether `set` can be signed: its signed data must encode (at most 65535 octets in
/// hickory's encoder), which a large RRset near the RDATA limit does not. Checked when the
/// zone is built, so that a signature made on first use cannot fail while serving.
pub(crate) fn check_signable(set: &RecordSet, key: &ZoneKey, signer: &Name) -> Result<(), String> {
    signed_data(set, key, signer, 0, 0).map(|_| ())
}

/// One RRSIG over `set` with the given times (RFC 4034 §3).
pub(crate) fn rrsig(
    set: &RecordSet,
    key: &ZoneKey,
    signer: &Name,
    inception: u32,
    expiration: u32,
) -> Result<Record, String> {
    let (input, tbs) = signed_data(set, key, signer, inception, expiration)?;
    let signature = key
        .key
        .sign(&tbs)
        .map_err(|e| format!("signing {} {}: {e}", set.name(), set.record_type()))?;
    Ok(Record::from_rdata(
        set.name().clone(),
        set.ttl(),
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
    ))
}

fn to_record_set(rrset: Rrset) -> RecordSet {
    let mut set = RecordSet::with_ttl(rrset.name.clone(), rrset.rtype, rrset.ttl);
    let (name, ttl) = (rrset.name, rrset.ttl);
    let records = rrset
        .rdatas
        .into_iter()
        .map(|rdata| Record::from_rdata(name.clone(), ttl, rdata));
    match rrset.rtype {
        // hickory's insert replaces a SOA or CNAME instead of adding one (RFC 2136 §1.1.5);
        // keep that rule for these singletons.
        RecordType::SOA | RecordType::CNAME | RecordType::ANAME => {
            for record in records {
                set.insert(record, 0);
            }
        }
        // The RRset is already a set (`ZoneData::add` absorbs duplicates), so the records go in
        // as they are: `insert` compares each with every record before it, which is quadratic.
        _ => set.set_records(records.collect()),
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fixture;
    use hickory_proto::dnssec::PublicKeyBuf;

    #[test]
    fn base32hex_matches_rfc4648_vectors() {
        // RFC 4648 §10, base32hex, lowercased and unpadded.
        assert_eq!(base32hex(b""), "");
        assert_eq!(base32hex(b"f"), "co");
        assert_eq!(base32hex(b"fo"), "cpng");
        assert_eq!(base32hex(b"foo"), "cpnmu");
        assert_eq!(base32hex(b"foob"), "cpnmuog");
        assert_eq!(base32hex(b"fooba"), "cpnmuoj1");
        assert_eq!(base32hex(b"foobar"), "cpnmuoj1e8");
    }

    #[test]
    fn nsec3_hash_matches_rfc5155_appendix_a() {
        // RFC 5155 Appendix A: salt aabbccdd, 12 iterations, H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.
        let name = Name::from_ascii("example.").unwrap();
        let digest = Nsec3HashAlgorithm::SHA1
            .hash(&[0xaa, 0xbb, 0xcc, 0xdd], &name, 12)
            .unwrap();
        assert_eq!(base32hex(digest.as_ref()), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
    }

    #[test]
    fn v1_and_v2_keys_give_the_same_dnskey() {
        let v1 = fixture::ed25519_pkcs8_v1(7);
        let k1 = ZoneKey::from_pkcs8(&v1).unwrap();
        let v2 = pkcs8_v1_to_v2(&v1).unwrap();
        let k2 = ZoneKey::from_pkcs8(&v2).unwrap();
        assert_eq!(k1.dnskey, k2.dnskey);
        assert_eq!(k1.dnskey.flags(), 257);
        assert_eq!(k1.public_key().len(), 32);
        assert!(ZoneKey::from_pkcs8(b"not a key").is_err());
        assert!(ZoneKey::from_pkcs8(&v1[..40]).is_err());
    }

    #[test]
    fn ds_matches_hickory_from_key() {
        let key = ZoneKey::from_pkcs8(&fixture::ed25519_pkcs8_v1(9)).unwrap();
        let owner = Name::from_ascii("example.test.").unwrap();
        let ours = key.ds(&owner).unwrap();
        let buf = PublicKeyBuf::new(key.public_key().to_vec(), Algorithm::ED25519);
        let theirs = DS::from_key(&buf, &owner, DigestType::SHA256).unwrap();
        assert_eq!(ours, theirs);
        assert!(ours.covers(&owner, &key.dnskey).unwrap());
    }
}
