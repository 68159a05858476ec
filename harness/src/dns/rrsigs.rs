//! A zone's RRsets and their RRSIGs, each RRSIG made the first time it is needed.
//!
//! Why on first use: a 50k-record zone needs about 90k Ed25519 signatures (some 2 s of CPU
//! before the first answer), while a sender asks for a handful of RRsets. The key and the
//! signature times are fixed and Ed25519 is deterministic (RFC 8032 §5.1.6), so an RRSIG made
//! late is byte-identical to one made at load; [`ZoneRecords::sign_all`] makes every one for
//! a zone dump. Whether an RRset can be signed is checked when the zone is built, so that
//! making a signature while serving does not fail on bad input.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use rayon::prelude::*;

use super::sign::{self, ZoneKey};

/// RRsets a thread signs at least at a time: fewer cost more to hand over than to sign.
const PARALLEL_SIGNING_CHUNK: usize = 256;

/// The RRsets of one built zone (canonical order, RFC 4034 §6.1), indexed by owner and type.
pub(crate) struct ZoneRecords {
    origin: Name,
    /// Shared with the hickory zone handler that serves them (no copy of a large zone).
    rrsets: Vec<Arc<RecordSet>>,
    index: HashMap<RrKey, usize>,
    /// `None` for an unsigned zone.
    signer: Option<Signer>,
}

struct Signer {
    key: Arc<ZoneKey>,
    /// The zone's validity window (RFC 4034 §3.1.5).
    inception: u32,
    expiration: u32,
    /// RRsets (by position) with a window of their own.
    windows: HashMap<usize, (u32, u32)>,
    /// Per RRset: whether it is signed at all (not NS at a zone cut, RFC 4035 §2.2).
    signable: Vec<bool>,
    /// Per RRset: its RRSIG once made.
    made: Vec<OnceLock<Result<Box<Record>, String>>>,
}

impl ZoneRecords {
    /// The RRsets of an unsigned zone.
    pub(crate) fn unsigned(origin: Name, rrsets: Vec<RecordSet>) -> Self {
        let rrsets: Vec<Arc<RecordSet>> = rrsets.into_iter().map(Arc::new).collect();
        let index = index(&rrsets);
        Self {
            origin,
            rrsets,
            index,
            signer: None,
        }
    }

    /// The RRsets of a signed zone (without RRSIGs), with which of them are signed, signed
    /// within `window` unless `own` gives an RRset (owner, type) a window of its own. Fails
    /// if one of them could not be signed, naming it, or if `own` names an RRset the zone
    /// does not sign.
    pub(crate) fn signed(
        origin: Name,
        rrsets: Vec<RecordSet>,
        signable: Vec<bool>,
        key: Arc<ZoneKey>,
        (inception, expiration): (u32, u32),
        own: &[(Name, RecordType, (u32, u32))],
    ) -> Result<Self, String> {
        for (set, _) in rrsets.iter().zip(&signable).filter(|(_, s)| **s) {
            if !surely_signable(set) {
                sign::check_signable(set, &key, &origin)?;
            }
        }
        let made = rrsets.iter().map(|_| OnceLock::new()).collect();
        let rrsets: Vec<Arc<RecordSet>> = rrsets.into_iter().map(Arc::new).collect();
        let index = index(&rrsets);
        let mut windows = HashMap::new();
        for (name, rtype, window) in own {
            match index.get(&RrKey::new(LowerName::new(name), *rtype)) {
                Some(&i) if signable[i] => {
                    windows.insert(i, *window);
                }
                _ => return Err(format!("{name} {rtype} is no RRset this zone signs: no window for it")),
            }
        }
        Ok(Self {
            index,
            origin,
            rrsets,
            signer: Some(Signer {
                key,
                inception,
                expiration,
                windows,
                signable,
                made,
            }),
        })
    }

    /// Every RRset, without RRSIGs, in canonical order.
    pub(crate) fn rrsets(&self) -> &[Arc<RecordSet>] {
        &self.rrsets
    }

    /// The zone's key, if it is signed.
    pub(crate) fn key(&self) -> Option<&ZoneKey> {
        self.signer.as_ref().map(|s| &*s.key)
    }

    /// The zone's key, shared, if it is signed.
    pub(crate) fn shared_key(&self) -> Option<Arc<ZoneKey>> {
        self.signer.as_ref().map(|s| s.key.clone())
    }

    /// The position of the RRset `name`/`rtype` in [`Self::rrsets`].
    pub(crate) fn find(&self, name: &Name, rtype: RecordType) -> Option<usize> {
        self.index.get(&RrKey::new(LowerName::new(name), rtype)).copied()
    }

    /// The RRSIG over RRset `i`, made now if it was not yet; `None` if the zone is unsigned or
    /// the RRset is not signed.
    pub(crate) fn rrsig(&self, i: usize) -> Result<Option<&Record>, String> {
        let Some(s) = &self.signer else {
            return Ok(None);
        };
        if !s.signable.get(i).copied().unwrap_or(false) {
            return Ok(None);
        }
        s.made[i]
            .get_or_init(|| {
                let (inception, expiration) = s.windows.get(&i).copied().unwrap_or((s.inception, s.expiration));
                sign::rrsig(&self.rrsets[i], &s.key, &self.origin, inception, expiration).map(Box::new)
            })
            .as_ref()
            .map(|r| Some(&**r))
            .map_err(Clone::clone)
    }

    /// Make every RRSIG of the zone (for a dump of it), on every core; each RRSIG is the
    /// same whoever makes it.
    pub(crate) fn sign_all(&self) -> Result<(), String> {
        (0..self.rrsets.len())
            .into_par_iter()
            .with_min_len(PARALLEL_SIGNING_CHUNK)
            .try_for_each(|i| self.rrsig(i).map(drop))
    }

    /// Give every RRset in `records` (one section of a response from this zone) its RRSIG,
    /// right after the RRset's last record, unless the section already carries one.
    ///
    /// A record this zone does not hold under its owner name came from a wildcard (RFC 4592
    /// §3.3.1): it carries the wildcard's RRSIG with the owner rewritten, whose Labels field
    /// then tells a validator that it was expanded (RFC 4035 §5.3.4).
    pub(crate) fn add_rrsigs(&self, records: &mut Vec<Record>) -> Result<(), String> {
        if self.signer.is_none() || records.is_empty() {
            return Ok(());
        }
        let key = |r: &Record| (LowerName::new(&r.name), r.record_type());
        let covered: HashSet<(LowerName, RecordType)> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some((LowerName::new(&r.name), sig.input().type_covered)),
                _ => None,
            })
            .collect();
        let mut last: HashMap<(LowerName, RecordType), usize> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if r.record_type() != RecordType::RRSIG {
                last.insert(key(r), i);
            }
        }
        let mut out = Vec::with_capacity(records.len() + last.len());
        for (i, record) in std::mem::take(records).into_iter().enumerate() {
            let k = key(&record);
            let owner = record.name.clone();
            out.push(record);
            if last.get(&k) == Some(&i) && !covered.contains(&k) {
                out.extend(self.rrsig_for(&owner, k.1)?);
            }
        }
        *records = out;
        Ok(())
    }

    /// The RRSIG for `name`/`rtype` as served: its own, or that of the wildcard it was
    /// expanded from (the first `*.<ancestor>` holding the type, as the server looks).
    fn rrsig_for(&self, name: &Name, rtype: RecordType) -> Result<Option<Record>, String> {
        if let Some(i) = self.find(name, rtype) {
            return Ok(self.rrsig(i)?.cloned());
        }
        let mut at = name.base_name();
        while self.origin.zone_of(&at) {
            let Ok(wildcard) = at.prepend_label("*") else {
                break;
            };
            if let Some(i) = self.find(&wildcard, rtype) {
                return Ok(self.rrsig(i)?.map(|sig| {
                    let mut sig = sig.clone();
                    sig.name = name.clone();
                    sig
                }));
            }
            if at == self.origin {
                break;
            }
            at = at.base_name();
        }
        Ok(None)
    }
}

fn index(rrsets: &[Arc<RecordSet>]) -> HashMap<RrKey, usize> {
    rrsets
        .iter()
        .enumerate()
        .map(|(i, s)| (RrKey::new(LowerName::new(s.name()), s.record_type()), i))
        .collect()
}

/// Whether the wire format alone bounds the RRset's signed data below hickory's 65535-octet
/// encoder: every RDATA of the type has a maximum size (RFC 1035 §3.3, RFC 4034 §4.1,
/// RFC 5155 §3.2), so only sets of other types (TXT, TLSA, ...) are test-encoded at build.
fn surely_signable(set: &RecordSet) -> bool {
    const NAME: usize = 255;
    const BITMAP: usize = 256 * 34;
    let rdata = match set.record_type() {
        RecordType::A => 4,
        RecordType::AAAA => 16,
        RecordType::NS | RecordType::CNAME | RecordType::DNAME | RecordType::PTR => NAME,
        RecordType::MX => 2 + NAME,
        RecordType::SOA => 2 * NAME + 20,
        RecordType::NSEC => NAME + BITMAP,
        RecordType::NSEC3 => 5 + 1 + 255 + 1 + 255 + BITMAP,
        RecordType::NSEC3PARAM => 5 + 255,
        _ => return false,
    };
    // Per record: owner, type, class, TTL, RDLENGTH, RDATA; before them the RRSIG fields.
    let per_record = NAME + 10 + rdata;
    let count = set.records_without_rrsigs().count();
    18 + NAME + count.saturating_mul(per_record) <= usize::from(u16::MAX)
}
