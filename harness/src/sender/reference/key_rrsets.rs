//! The self-signatures of the DNSKEY RRsets on an answer's chain of trust, checked at the
//! world clock (RFC 4035 §5.2, §5.3.1).
//!
//! Why here: hickory 0.26's DNSSEC handle accepts a DNSKEY RRset outright when every key in
//! it matches a DS (or the trust anchor), without verifying the RRSIG over the RRset or its
//! validity window (`verify_dnskey_rrset`: "we'll accept the entire set"). Every zone of a
//! world has one key that its DS names, so an expired, corrupted or missing DNSKEY RRSIG
//! would pass as secure. RFC 4035 §5.2 authenticates a DNSKEY RRset by the DS-matched key
//! *and* its RRSIG over the RRset; this check adds the second half: for each zone from the
//! answer's signer up to the trust anchor (following the signer of each zone's DS RRset),
//! one RRSIG over the zone's DNSKEY RRset must be made by one of its keys, verify, and be
//! within its window at the world clock. The queries are the ones the handle itself makes
//! (`Z DNSKEY`, `Z DS`), asked without validation.

use std::collections::BTreeSet;
use std::time::Duration;

use hickory_resolver::net::DnsHandle;
use hickory_resolver::net::xfer::FirstAnswer;
use hickory_resolver::proto::dnssec::Verifier;
use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG};
use hickory_resolver::proto::op::{DnsRequestOptions, DnsResponse, Query};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// How many zones a chain may climb before the check gives up (a loop of DS signers).
const MAX_ZONES: usize = 16;

/// The zones whose RRSIGs a validated response carries (their signer names).
pub fn signers(response: &DnsResponse) -> BTreeSet<Name> {
    response
        .answers
        .iter()
        .chain(&response.authorities)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().signer_name.to_lowercase()),
            _ => None,
        })
        .collect()
}

/// Checks every DNSKEY RRset from `signers` up to `anchor` at `now` (Unix seconds). `Ok`:
/// the earliest expiration among the RRSIGs that passed (a cache must not outlive it, RFC
/// 4035 §5.3.3); `Err`: why the chain is bogus.
pub async fn check<H: DnsHandle>(
    raw: &H,
    options: DnsRequestOptions,
    guard: Duration,
    signers: BTreeSet<Name>,
    anchor: &Name,
    now: u64,
) -> Result<Option<u32>, String> {
    let mut done = BTreeSet::new();
    let mut earliest: Option<u32> = None;
    for signer in signers {
        let mut zone = signer;
        for _ in 0..MAX_ZONES {
            if !done.insert(zone.clone()) {
                break;
            }
            let keys = ask(raw, options, guard, &zone, RecordType::DNSKEY).await?;
            let expiration = self_signed(&zone, &keys.answers, now)?;
            earliest = Some(earliest.map_or(expiration, |e| e.min(expiration)));
            if &zone == anchor || zone.is_root() {
                break;
            }
            // The DS RRset of the zone is signed by its parent: that is the next zone up.
            let ds = ask(raw, options, guard, &zone, RecordType::DS).await?;
            let Some(parent) = ds.answers.iter().find_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == RecordType::DS => {
                    Some(sig.input().signer_name.to_lowercase())
                }
                _ => None,
            }) else {
                // No signed DS: the handle proved the zone secure some other way (it is the
                // anchor's own name, say); nothing more to climb.
                break;
            };
            zone = parent;
        }
    }
    Ok(earliest)
}

async fn ask<H: DnsHandle>(
    raw: &H,
    options: DnsRequestOptions,
    guard: Duration,
    zone: &Name,
    rtype: RecordType,
) -> Result<DnsResponse, String> {
    let query = Query::query(zone.clone(), rtype);
    match tokio::time::timeout(guard, raw.lookup(query, options).first_answer()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(format!(
            "{zone} {rtype} could not be fetched again to check its signature: {e}"
        )),
        Err(_) => Err(format!("{zone} {rtype} could not be fetched again within {guard:?}")),
    }
}

/// The expiration of an RRSIG over `zone`'s DNSKEY RRset that one of its keys made, that
/// verifies and that holds at `now`; or why there is none.
fn self_signed(zone: &Name, answers: &[Record], now: u64) -> Result<u32, String> {
    let keys: Vec<(&Record, &DNSKEY)> = answers
        .iter()
        .filter(|r| r.name.to_lowercase() == *zone)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some((r, k)),
            _ => None,
        })
        .collect();
    let sigs: Vec<&RRSIG> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == RecordType::DNSKEY => Some(s),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Err(format!("the DNSKEY RRset of {zone} is empty"));
    }
    let mut why = format!("the DNSKEY RRset of {zone} carries no RRSIG (RFC 4035 §5.2)");
    for sig in sigs {
        let input = sig.input();
        let Some(key) = keys
            .iter()
            .map(|(_, k)| *k)
            .find(|k| k.calculate_key_tag().ok() == Some(input.key_tag) && k.algorithm() == input.algorithm)
        else {
            why = format!("no key of {zone} made the RRSIG over its DNSKEY RRset (RFC 4035 §5.2)");
            continue;
        };
        if key
            .verify_rrsig(zone, DNSClass::IN, sig, keys.iter().map(|(r, _)| *r))
            .is_err()
        {
            why = format!("the RRSIG over the DNSKEY RRset of {zone} does not verify (RFC 4035 §5.3.3)");
            continue;
        }
        // RFC 4035 §5.3.1: the validator's current time within the window, inclusive.
        let (inception, expiration) = (
            u64::from(input.sig_inception.get()),
            u64::from(input.sig_expiration.get()),
        );
        if now < inception || now > expiration {
            why = format!(
                "the RRSIG over the DNSKEY RRset of {zone} is valid from {inception} to {expiration} (Unix time), \
                 not at the world clock {now} (RFC 4035 §5.3.1)"
            );
            continue;
        }
        return Ok(input.sig_expiration.get());
    }
    Err(why)
}
