//! `danesim check`: an offline review of a zone file's MX and TLSA records against the
//! certificate chains the MX hosts serve.
//!
//! What a DANE sender would decide is not re-implemented here: the authentication verdict
//! for each host comes from the reference sender's check
//! ([`crate::dane::verify_chain`], with its digest agility), and record
//! matching from [`Tlsa::matches_cert`]. This module adds what an operator needs around
//! that: where the records are (CNAMEs inside the file), which record matches which
//! certificate, and the operational risks RFC 7671 and RFC 7672 warn about.
//!
//! Only the file is read: DNSSEC validity (the DS at the parent, signatures) cannot be
//! proven offline, so the report says whether the file is a signed export and whether the
//! RRsets it relies on carry signatures that have not expired at `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hickory_proto::rr::Name;
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;

use super::InspectError;
use super::pem::{Chain, read_chain};
use super::report::{HostStatus, Mark, Report, Section};
use super::zone::{DNSSEC_TYPES, Lookup, Rdata, Zone, ZoneRecord};
use crate::dane::{DaneFailure, DaneOutcome, records_in_use, verify_chain};
use crate::pki::{Tlsa, Usability};

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub zone: PathBuf,
    /// Initial origin for relative names (`--origin`).
    pub origin: Option<String>,
    /// The mail domain; default: the zone's apex.
    pub domain: Option<String>,
    /// `--cert HOST=FILE.pem`: the chain each MX host serves, leaf first.
    pub certs: Vec<(String, PathBuf)>,
    /// The time for certificate and signature validity (`--now`).
    pub now: OffsetDateTime,
}

/// RFC 7671 §8.1 has a key change wait two TTLs after the next key is published; past a
/// day, that wait and the time a stale record stays cached grow uncomfortable.
const LONG_TTL: u32 = 86_400;
/// Signatures closer than this to expiry are reported (RFC 4034 §3.1.5).
const SIGNATURE_MARGIN: i64 = 7 * 86_400;
/// The TLSA port for SMTP (RFC 7672 §2.2.3).
const SMTP_PREFIX: &str = "_25._tcp";

/// One MX host as the MX RRset names it.
struct MxHost {
    /// `None` for the implicit MX (RFC 5321 §5.1: the domain's own address).
    preference: Option<u16>,
    name: Name,
}

/// Runs the check. Bad input (files, names, a zone file error) is an [`InspectError`]; what
/// the check finds, including failures, is in the [`Report`].
pub fn check(req: &CheckRequest) -> Result<Report, InspectError> {
    let zone = Zone::read(&req.zone, req.origin.as_deref())?;
    let content = |message: String| InspectError::ZoneContent {
        path: req.zone.clone(),
        message,
    };
    let domain = match &req.domain {
        Some(d) => absolute(d).map_err(|m| InspectError::Argument(format!("--domain {d}: {m}")))?,
        None => zone.apex.clone(),
    };
    if !zone.authoritative(&domain) {
        return Err(content(format!(
            "{domain} is not in this zone (apex {}), or is delegated from it; pass --domain with a name \
             inside the zone",
            zone.apex
        )));
    }

    // RFC 5321 §5.1: the MX RRset, or the domain itself when there is none.
    let mut signed_rrsets: BTreeSet<(Name, String)> = BTreeSet::new();
    let (mx_ttl, hosts, next_hop) = match zone.lookup(&domain, "MX") {
        Lookup::Found { chain, records } => {
            note_cnames(&chain, &mut signed_rrsets);
            let owner = chain
                .last()
                .expect("a lookup chain starts with the name looked up")
                .clone();
            signed_rrsets.insert((owner, "MX".into()));
            let mut hosts: Vec<MxHost> = records
                .iter()
                .filter_map(|r| match &r.data {
                    Rdata::Mx { preference, exchange } => Some(MxHost {
                        preference: Some(*preference),
                        name: exchange.clone(),
                    }),
                    _ => None,
                })
                .collect();
            hosts.sort_by(|a, b| a.preference.cmp(&b.preference).then_with(|| a.name.cmp(&b.name)));
            // A host listed twice counts once, at its best preference.
            let mut seen = BTreeSet::new();
            hosts.retain(|h| seen.insert(h.name.clone()));
            (records.iter().map(|r| r.ttl).min(), hosts, chain)
        }
        Lookup::NoData { chain } => {
            let has_address = ["A", "AAAA"]
                .iter()
                .any(|t| matches!(zone.lookup(&domain, t), Lookup::Found { .. }));
            if !has_address {
                return Err(content(format!(
                    "no MX RRset and no A/AAAA record at {domain}: there is no mail host to check (is \
                     --domain right?)"
                )));
            }
            let implicit = MxHost {
                preference: None,
                name: chain.last().cloned().unwrap_or_else(|| domain.clone()),
            };
            (None, vec![implicit], chain)
        }
        Lookup::Elsewhere { chain } => {
            return Err(content(format!(
                "the MX lookup for {domain} leaves this file ({}); check the zone that holds the MX RRset",
                show_chain(&chain)
            )));
        }
        Lookup::Loop { chain } => {
            return Err(content(format!(
                "the MX lookup for {domain} loops: {}",
                show_chain(&chain)
            )));
        }
    };

    let certs = read_certs(req, &hosts, &domain)?;
    let now = req.now.unix_timestamp();
    // RFC 7672 §3.2.2: the next-hop domain, and its CNAME expansion, are reference identifiers.
    let mut next_hop_ids: Vec<String> = Vec::new();
    for n in [&domain, next_hop.last().unwrap_or(&domain)] {
        let id = plain(n);
        if !next_hop_ids.contains(&id) {
            next_hop_ids.push(id);
        }
    }

    let mut host_reports: Vec<HostReport> = hosts
        .iter()
        .map(|h| {
            check_host(
                &zone,
                h,
                certs.get(&h.name),
                &next_hop_ids,
                now,
                mx_ttl,
                &mut signed_rrsets,
            )
        })
        .collect();
    // A host without TLSA beside hosts with TLSA is the way around them (RFC 7672 §2.2.1).
    let any_tlsa = host_reports.iter().any(|h| h.tlsa_found);
    for h in host_reports
        .iter_mut()
        .filter(|h| h.status == HostStatus::NoTlsa && any_tlsa)
    {
        h.section.mark(
            Mark::Warn,
            "other MX hosts publish TLSA, this one does not: senders that cannot reach them deliver here \
             without authentication (a downgrade path, RFC 7672 §2.2.1)",
        );
    }

    let mut report = Report {
        header: format!(
            "danesim check: {domain} (zone {} from {}, at {})",
            zone.apex,
            req.zone.display(),
            rfc3339(now)
        ),
        ..Report::default()
    };
    report.sections.push(dnssec_section(&zone, &signed_rrsets, now));
    report.sections.push(mx_section(&domain, mx_ttl, &hosts, &next_hop));
    let exchange = exchange_section(&zone, &hosts, &host_reports);
    for h in host_reports {
        report.hosts.push((h.name, h.status));
        report.sections.push(h.section);
    }
    report.sections.push(exchange);
    Ok(report)
}

/// Reads every `--cert HOST=FILE`; each HOST must be one of the MX hosts.
fn read_certs(req: &CheckRequest, hosts: &[MxHost], domain: &Name) -> Result<BTreeMap<Name, Chain>, InspectError> {
    let mut certs = BTreeMap::new();
    for (host, path) in &req.certs {
        let name = absolute(host).map_err(|m| InspectError::Argument(format!("--cert {host}=...: {m}")))?;
        if !hosts.iter().any(|h| h.name == name) {
            let known: Vec<String> = hosts.iter().map(|h| h.name.to_string()).collect();
            return Err(InspectError::Argument(format!(
                "--cert {host}={}: {name} is not an MX host of {domain} (MX hosts: {})",
                path.display(),
                known.join(", ")
            )));
        }
        if certs.contains_key(&name) {
            return Err(InspectError::Argument(format!("--cert {host}: given twice")));
        }
        certs.insert(name, read_chain(path)?);
    }
    Ok(certs)
}

/// What the check found for one host.
struct HostReport {
    name: String,
    status: HostStatus,
    section: Section,
    /// A TLSA RRset was found for it in this file.
    tlsa_found: bool,
}

fn check_host(
    zone: &Zone,
    host: &MxHost,
    chain: Option<&Chain>,
    next_hop_ids: &[String],
    now: i64,
    mx_ttl: Option<u32>,
    signed: &mut BTreeSet<(Name, String)>,
) -> HostReport {
    let title = match host.preference {
        Some(p) => format!("{} (MX {p})", host.name),
        None => format!("{} (no MX RRset: the domain itself, RFC 5321 §5.1)", host.name),
    };
    let mut section = Section::new(title);
    let (status, tlsa_found) = host_findings(&mut section, zone, host, chain, next_hop_ids, now, mx_ttl, signed);
    HostReport {
        name: host.name.to_string(),
        status,
        section,
        tlsa_found,
    }
}

/// The findings for one host, into `s`; returns its status and whether it has TLSA here.
#[allow(clippy::too_many_arguments)]
fn host_findings(
    s: &mut Section,
    zone: &Zone,
    host: &MxHost,
    chain: Option<&Chain>,
    next_hop_ids: &[String],
    now: i64,
    mx_ttl: Option<u32>,
    signed: &mut BTreeSet<(Name, String)>,
) -> (HostStatus, bool) {
    if host.name.is_root() {
        s.mark(
            Mark::Info,
            "null MX (RFC 7505): the domain accepts no mail; nothing to check",
        );
        return (HostStatus::NullMx, false);
    }
    if !zone.authoritative(&host.name) {
        s.mark(Mark::Warn, "not in this zone, cannot check");
        return (HostStatus::Outside, false);
    }

    // Addresses, and the CNAME-expanded name (RFC 7672 §2.2.3 tries it first for TLSA).
    let mut expanded = None;
    let mut reachable = false;
    let mut address_elsewhere = None;
    for t in ["A", "AAAA"] {
        match zone.lookup(&host.name, t) {
            Lookup::Found { chain, .. } => {
                reachable = true;
                note_cnames(&chain, signed);
                if chain.len() > 1 {
                    expanded = chain.last().cloned();
                }
            }
            Lookup::Elsewhere { chain } | Lookup::NoData { chain } | Lookup::Loop { chain } if chain.len() > 1 => {
                note_cnames(&chain, signed);
                if !zone.authoritative(chain.last().expect("chain is not empty")) {
                    address_elsewhere = chain.last().cloned();
                }
                expanded = chain.last().cloned();
            }
            _ => {}
        }
    }
    if let Some(target) = &expanded {
        s.mark(
            Mark::Warn,
            format!(
                "{} is a CNAME for {target}: an MX must name a host, not an alias (RFC 2181 §10.3); DANE \
                 senders look for TLSA at {target} first (RFC 7672 §2.2.3)",
                host.name
            ),
        );
    }
    if let Some(elsewhere) = &address_elsewhere {
        s.mark(
            Mark::Info,
            format!("its addresses are at {elsewhere}, outside this zone: not checked"),
        );
    } else if !reachable {
        s.mark(
            Mark::Warn,
            "no A or AAAA record in this zone: senders cannot connect to it",
        );
    }

    // RFC 7672 §2.2.3: the CNAME-expanded name, then the name as the MX RRset gives it.
    let mut candidates = Vec::new();
    match expanded {
        Some(e) if zone.authoritative(&e) => candidates.push(e),
        Some(e) => s.mark(
            Mark::Info,
            format!(
                "the first TLSA candidate, {}, is outside this zone: not checked",
                tlsa_owner(&e)
            ),
        ),
        None => {}
    }
    candidates.push(host.name.clone());
    let mut found = None;
    for base in candidates {
        let owner = tlsa_owner(&base);
        match zone.lookup(&owner, "TLSA") {
            Lookup::Found { chain, records } => {
                found = Some((base, chain, records));
                break;
            }
            Lookup::NoData { .. } => continue,
            Lookup::Elsewhere { chain } => {
                s.mark(
                    Mark::Warn,
                    format!(
                        "the TLSA lookup leaves this zone ({}): cannot check",
                        show_chain(&chain)
                    ),
                );
                return (HostStatus::NotChecked, true);
            }
            Lookup::Loop { chain } => {
                s.mark(
                    Mark::Fail,
                    format!(
                        "the TLSA lookup loops ({}): resolvers fail it, and DANE senders defer (RFC 7672 §2.1.1)",
                        show_chain(&chain)
                    ),
                );
                return (HostStatus::Failed, true);
            }
        }
    }
    let Some((base, tlsa_chain, records)) = found else {
        s.mark(
            Mark::Info,
            format!(
                "no TLSA RRset at {}: DANE does not apply; senders use opportunistic TLS (RFC 7672 §2.2)",
                tlsa_owner(&host.name)
            ),
        );
        return (HostStatus::NoTlsa, false);
    };
    note_cnames(&tlsa_chain, signed);
    let rrset_owner = tlsa_chain.last().expect("chain is not empty").clone();
    signed.insert((rrset_owner.clone(), "TLSA".into()));

    let tlsa: Vec<Tlsa> = records
        .iter()
        .filter_map(|r| match &r.data {
            Rdata::Tlsa(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
    let via = if tlsa_chain.len() > 1 {
        format!(", via CNAME {}", show_chain(&tlsa_chain))
    } else {
        String::new()
    };
    s.plain(
        0,
        format!("TLSA {rrset_owner} (TTL {ttl}, {} record(s){via})", tlsa.len()),
    );
    if records.iter().any(|r| r.ttl != ttl) {
        s.mark(
            Mark::Warn,
            "the TLSA records have different TTLs; an RRset has one TTL (RFC 2181 §5.2)",
        );
    }

    let in_use = records_in_use(&tlsa);
    for (r, rec) in tlsa.iter().zip(&records) {
        describe_record(s, r, rec, chain, &in_use, &tlsa);
    }

    // The host's verdict.
    let usable: Vec<&Tlsa> = tlsa.iter().filter(|r| r.usability() == Usability::Usable).collect();
    let status;
    if usable.is_empty() {
        let pkix_only = tlsa.iter().all(|r| matches!(r.usage, Tlsa::PKIX_TA | Tlsa::PKIX_EE));
        s.mark(
            Mark::Warn,
            format!(
                "no usable TLSA record{}: DANE senders must use STARTTLS but cannot authenticate this host \
                 (RFC 7672 §2.2, §3.1.3); publish 3 1 1",
                if pkix_only { " (all are PKIX usages 0/1)" } else { "" }
            ),
        );
        status = HostStatus::NoUsableTlsa;
    } else if let Some(chain) = chain {
        // RFC 7672 §3.2.2: the TLSA base domain first, then the next-hop domain.
        let mut refs = vec![plain(&base)];
        refs.extend(next_hop_ids.iter().filter(|id| **id != plain(&base)).cloned());
        let ders: Vec<CertificateDer<'_>> = chain.certs.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
        let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
        match verify_chain(&ders, &tlsa, &refs, unix) {
            DaneOutcome::Authenticated { record, how, .. } => {
                s.mark(Mark::Ok, format!("authenticated by {record}: {how}"));
                status = HostStatus::Authenticated;
                rollover_authenticated(s, &usable, chain, ttl, &record);
                leaf_expiry(s, chain, now, &record);
            }
            DaneOutcome::Failed { reason } => {
                s.mark(Mark::Fail, failure_text(&reason, &tlsa, &in_use, chain));
                s.plain(1, consequence(&reason));
                for fix in fixes(&reason, &in_use, chain, &rrset_owner, ttl) {
                    s.plain(1, fix);
                }
                status = HostStatus::Failed;
            }
        }
    } else {
        s.mark(
            Mark::Warn,
            format!(
                "not checked: no certificate given; pass --cert {}=FILE.pem",
                plain(&host.name)
            ),
        );
        status = HostStatus::NotChecked;
        let ee = usable.iter().filter(|r| r.usage == Tlsa::DANE_EE).count();
        if ee == 1 && usable.len() == 1 {
            s.mark(
                Mark::Warn,
                format!(
                    "a single DANE-EE record: no next key is published; add the next key's record at least \
                     2×TTL ({}) before switching certificates (RFC 7671 §8.1, RFC 7672 §4)",
                    human(2 * u64::from(ttl))
                ),
            );
        }
    }

    if ttl > LONG_TTL {
        s.mark(
            Mark::Warn,
            format!(
                "TLSA TTL {ttl} ({}) is over a day: a stale record stays cached that long after a fix, and a key \
                 change must wait 2×TTL ({}) after the next key is published (RFC 7671 §8.1)",
                human(u64::from(ttl)),
                human(2 * u64::from(ttl))
            ),
        );
    }
    if let Some(mx) = mx_ttl.filter(|&mx| ttl > mx) {
        s.mark(
            Mark::Info,
            format!(
                "TLSA TTL {ttl} is longer than the MX TTL {mx}: in an emergency, an MX change reaches senders \
                 before a TLSA fix does"
            ),
        );
    }
    (status, true)
}

/// One record's line and what is known about it.
fn describe_record(s: &mut Section, r: &Tlsa, rec: &ZoneRecord, chain: Option<&Chain>, in_use: &[&Tlsa], all: &[Tlsa]) {
    s.plain(1, format!("{} (line {})", short(r), rec.line));
    let note = |s: &mut Section, mark: Mark, text: String| s.at(2, Some(mark), text);
    if let Usability::Unusable(why) = r.usability() {
        note(s, Mark::Warn, format!("unusable: {why}"));
        return;
    }
    if let Some(chain) = chain {
        let depths: Vec<usize> = (0..chain.certs.len())
            .filter(|&d| r.matches_cert(&chain.certs[d]))
            .collect();
        let file = chain.path.display();
        match (r.usage, depths.as_slice()) {
            (Tlsa::DANE_EE, [0, ..]) => note(
                s,
                Mark::Ok,
                format!("matches the leaf certificate ({})", chain.describe(0)),
            ),
            (Tlsa::DANE_EE, [d, ..]) => note(
                s,
                Mark::Warn,
                format!(
                    "matches the certificate at depth {d} ({}), not the leaf: DANE-EE(3) is matched against the \
                     leaf only (RFC 7672 §3.1.1)",
                    chain.describe(*d)
                ),
            ),
            (Tlsa::DANE_TA, [0]) => note(
                s,
                Mark::Warn,
                "matches the leaf itself: a DANE-TA(2) record names an issuer in the chain; use 3 1 1 for the \
                 leaf (RFC 7672 §3.1.2)"
                    .into(),
            ),
            (Tlsa::DANE_TA, ds) if !ds.is_empty() => {
                let d = ds.iter().copied().find(|&d| d > 0).expect("ds is not just [0]");
                note(
                    s,
                    Mark::Ok,
                    format!(
                        "matches the certificate at depth {d} ({}): the trust anchor, served in the chain \
                         (RFC 7672 §3.1.2)",
                        chain.describe(d)
                    ),
                );
            }
            (Tlsa::DANE_TA, _) => note(
                s,
                Mark::Info,
                format!(
                    "matches no certificate in {file}: the server must send the trust anchor in its chain \
                     (RFC 7672 §3.1.2); a next trust anchor published ahead, or a stale one"
                ),
            ),
            _ => note(
                s,
                Mark::Info,
                format!(
                    "matches no certificate in {file}: a next key published ahead, or a stale record to remove \
                     (RFC 7671 §8.1)"
                ),
            ),
        }
    }
    if !in_use.contains(&r) {
        let stronger = all
            .iter()
            .filter(|o| o.usage == r.usage && o.selector == r.selector && in_use.contains(o))
            .map(|o| format!("{} {} {}", o.usage, o.selector, o.matching))
            .next()
            .unwrap_or_default();
        note(
            s,
            Mark::Info,
            format!(
                "ignored by senders with digest agility, which use only the strongest digest: {stronger} is \
                 also published (RFC 7671 §9)"
            ),
        );
    }
    if r.usage == Tlsa::DANE_EE && r.selector == Tlsa::CERT {
        note(
            s,
            Mark::Warn,
            "3 0 x pins the whole certificate, which changes at every renewal even with the same key; prefer \
             3 1 1 (RFC 7671 §5.1, RFC 7672 §3.1.1)"
                .into(),
        );
    }
    if r.usage == Tlsa::DANE_TA && r.selector == Tlsa::SPKI {
        note(
            s,
            Mark::Info,
            "DANE-TA records SHOULD use selector 0, so the anchor certificate's constraints apply (RFC 7672 §3.1.2)"
                .into(),
        );
    }
    if r.matching == Tlsa::FULL {
        note(
            s,
            Mark::Info,
            "matching type 0 puts the whole certificate or key in DNS: large answers; a SHA-256 digest (1) is \
             preferred (RFC 7672 §3.1.2, RFC 7671 §10.1)"
                .into(),
        );
    }
}

/// Rollover readiness once the served chain authenticates (RFC 7671 §8, RFC 7672 §4).
fn rollover_authenticated(s: &mut Section, usable: &[&Tlsa], chain: &Chain, ttl: u32, by: &str) {
    let matches_current = |r: &Tlsa| match r.usage {
        Tlsa::DANE_EE => r.matches_cert(chain.leaf()),
        _ => chain.certs.iter().skip(1).any(|c| r.matches_cert(c)),
    };
    if by.starts_with("2 ") {
        s.mark(
            Mark::Info,
            "leaf certificates issued under this trust anchor can be renewed without a TLSA change (RFC 7672 §4)",
        );
    } else {
        let next = usable
            .iter()
            .filter(|r| r.usage == Tlsa::DANE_EE && !matches_current(r))
            .count();
        if next > 0 {
            s.mark(
                Mark::Ok,
                format!(
                    "rollover: {next} DANE-EE record(s) for a key not served now: the next key, published ahead \
                     (RFC 7671 §8.1, RFC 7672 §4)"
                ),
            );
        } else {
            s.mark(
                Mark::Warn,
                format!(
                    "no next key: every DANE-EE record matches the current certificate; publish the next key's \
                     record at least 2×TTL ({}) before switching certificates (RFC 7671 §8.1, RFC 7672 §4)",
                    human(2 * u64::from(ttl))
                ),
            );
        }
    }
    // RFC 7671 §8.4: every parameter combination must match the current chain on its own.
    let combos: BTreeSet<(u8, u8, u8)> = usable.iter().map(|r| (r.usage, r.selector, r.matching)).collect();
    for (u, sel, m) in combos {
        let any = usable
            .iter()
            .filter(|r| (r.usage, r.selector, r.matching) == (u, sel, m))
            .any(|r| matches_current(r));
        if !any {
            s.mark(
                Mark::Warn,
                format!(
                    "no {u} {sel} {m} record matches the served chain: each parameter combination must match the \
                     current chain, or senders that prefer it fail (RFC 7671 §8.4)"
                ),
            );
        }
    }
}

/// DANE-EE ignores the leaf's dates, Exchange Online documents otherwise (docs/CONFORMANCE.md).
fn leaf_expiry(s: &mut Section, chain: &Chain, now: i64, by: &str) {
    if !by.starts_with("3 ") {
        return;
    }
    let Ok((_, leaf)) = x509_parser::parse_x509_certificate(chain.leaf()) else {
        return;
    };
    let v = leaf.validity();
    let (before, after) = (v.not_before.timestamp(), v.not_after.timestamp());
    let state = if now > after {
        format!("expired on {}", date(after))
    } else if now < before {
        format!("is not valid before {}", date(before))
    } else {
        return;
    };
    s.mark(
        Mark::Warn,
        format!(
            "the leaf certificate {state}: DANE-EE ignores its dates (RFC 7672 §3.1.1), but Exchange Online documents \
             4.7.322 certificate-expired for any usage (docs/CONFORMANCE.md)"
        ),
    );
}

/// The failure line: the reference sender's reason, and the digest-agility trap if that is
/// what happened.
fn failure_text(reason: &DaneFailure, all: &[Tlsa], in_use: &[&Tlsa], chain: &Chain) -> String {
    let ignored_match = all.iter().filter(|r| !in_use.contains(r)).find(|r| match r.usage {
        Tlsa::DANE_EE => r.matches_cert(chain.leaf()),
        Tlsa::DANE_TA => chain.certs.iter().skip(1).any(|c| r.matches_cert(c)),
        _ => false,
    });
    match ignored_match {
        Some(r) => format!(
            "{reason}; {} matches, but senders with digest agility use only the strongest digest published, which \
             matches nothing (RFC 7671 §9; Postfix with tls_dane_digests = sha512 sha256, docs/CONFORMANCE.md)",
            short_params(r)
        ),
        None => reason.to_string(),
    }
}

/// What senders do, with the Exchange Online code (docs/CONFORMANCE.md) an admin will see in a
/// non-delivery report.
fn consequence(reason: &DaneFailure) -> String {
    let code = match reason {
        DaneFailure::Expired { .. } | DaneFailure::NotYetValid { .. } => "4.7.322 certificate-expired",
        DaneFailure::NameMismatch { .. } => "4.7.325 certificate-host-mismatch",
        _ => "4.7.323 tlsa-invalid",
    };
    format!("DANE senders defer mail for this host (RFC 7672 §3.2); Exchange Online reports 450 {code}")
}

/// How to repair a failing host.
fn fixes(reason: &DaneFailure, in_use: &[&Tlsa], chain: &Chain, owner: &Name, ttl: u32) -> Vec<String> {
    let file = chain.path.display();
    match reason {
        DaneFailure::NoMatch { .. } => {
            // The DANE-EE parameter combinations senders use now, recomputed for the served leaf.
            let combos: BTreeSet<(u8, u8)> = in_use
                .iter()
                .filter(|r| r.usage == Tlsa::DANE_EE)
                .map(|r| (r.selector, r.matching))
                .collect();
            if combos.is_empty() {
                return vec![format!(
                    "fix: serve the trust anchor the DANE-TA records name in the chain, or publish a record for the \
                     served key (`danesim tlsa --cert {file}`)"
                )];
            }
            let mut out: Vec<String> = combos
                .into_iter()
                .filter_map(|(sel, m)| Tlsa::compute(Tlsa::DANE_EE, sel, m, chain.leaf()).ok())
                .map(|t| {
                    format!(
                        "fix: publish `{owner} IN TLSA {t}` for the served key (`danesim tlsa --cert {file} \
                         --selector {} --mtype {}`)",
                        t.selector, t.matching
                    )
                })
                .collect();
            out.push(format!(
                "then remove the records that match nothing; senders see the change within the TLSA TTL ({})",
                human(u64::from(ttl))
            ));
            out
        }
        DaneFailure::NameMismatch { .. } => vec![
            "fix: re-issue the leaf with the MX host name as a DNS SAN, or publish 3 1 1 for it, which needs no \
             name (RFC 7672 §3.2.2, §3.1.1)"
                .into(),
        ],
        DaneFailure::Expired { .. } | DaneFailure::NotYetValid { .. } => {
            vec!["fix: renew the certificate; under DANE-TA its dates count (RFC 7671 §5.2)".into()]
        }
        _ => Vec::new(),
    }
}

fn dnssec_section(zone: &Zone, signed: &BTreeSet<(Name, String)>, now: i64) -> Section {
    let mut s = Section::new("DNSSEC");
    let dnskey = zone.count("DNSKEY");
    let rrsig = zone.count("RRSIG");
    if dnskey == 0 && rrsig == 0 {
        s.mark(
            Mark::Warn,
            "unsigned file (no DNSKEY or RRSIG records): DNSSEC cannot be checked here; TLSA records only count \
             if the zone is signed and its DS is in the parent (RFC 7672 §2.2)",
        );
        return s;
    }
    let denial: Vec<String> = DNSSEC_TYPES[2..]
        .iter()
        .filter(|t| zone.count(t) > 0)
        .map(|t| format!("{} {t}", zone.count(t)))
        .collect();
    let summary = format!(
        "{dnskey} DNSKEY, {rrsig} RRSIG{}",
        if denial.is_empty() {
            String::new()
        } else {
            format!(", {}", denial.join(", "))
        }
    );
    if dnskey > 0 && rrsig > 0 {
        s.mark(Mark::Ok, format!("signed export: {summary}"));
    } else {
        s.mark(Mark::Warn, format!("partly signed export: {summary}"));
    }
    s.mark(
        Mark::Info,
        "the chain of trust (the DS in the parent zone) and the signatures themselves cannot be verified offline; \
         check them with delv or dnsviz",
    );
    let mut problems = 0;
    for (owner, rtype) in signed {
        let expirations: Vec<i64> = zone
            .rrset(owner, "RRSIG")
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::Rrsig { covered, expiration } if covered == rtype => Some(*expiration),
                _ => None,
            })
            .collect();
        let Some(&latest) = expirations.iter().max() else {
            problems += 1;
            s.mark(
                Mark::Warn,
                format!(
                    "{owner} {rtype}: no RRSIG in this file; in a signed zone validators treat an unsigned RRset as \
                     bogus (RFC 4035 §5.3)"
                ),
            );
            continue;
        };
        if latest < now {
            problems += 1;
            s.mark(
                Mark::Fail,
                format!(
                    "{owner} {rtype}: every RRSIG expired (latest {}); validators treat it as bogus and DANE senders \
                     defer (RFC 4035 §5.3.1, RFC 7672 §2.1.1)",
                    date(latest)
                ),
            );
        } else if latest - now < SIGNATURE_MARGIN {
            problems += 1;
            s.mark(
                Mark::Warn,
                format!(
                    "{owner} {rtype}: the RRSIG expires on {}, within a week; re-sign",
                    date(latest)
                ),
            );
        }
    }
    if problems == 0 && !signed.is_empty() {
        let list: Vec<String> = signed.iter().map(|(o, t)| format!("{o} {t}")).collect();
        s.mark(
            Mark::Ok,
            format!(
                "RRSIGs valid at least a week beyond the check time for: {}",
                list.join(", ")
            ),
        );
    }
    s
}

fn mx_section(domain: &Name, ttl: Option<u32>, hosts: &[MxHost], chain: &[Name]) -> Section {
    let via = if chain.len() > 1 {
        format!(", via CNAME {}", show_chain(chain))
    } else {
        String::new()
    };
    let mut s = Section::new(match ttl {
        Some(t) => format!("MX {domain} (TTL {t}{via})"),
        None => format!("MX {domain}"),
    });
    if ttl.is_none() {
        s.mark(
            Mark::Info,
            "no MX RRset: mail goes to the domain's own address (RFC 5321 §5.1); its TLSA base domain is the \
             domain itself (RFC 7672 §2.2.2)",
        );
    }
    for h in hosts.iter().filter(|h| h.preference.is_some()) {
        s.plain(0, format!("{} {}", h.preference.unwrap_or_default(), h.name));
    }
    s
}

/// The documented prerequisites for enabling inbound SMTP DANE in Exchange Online
/// (Enable-SmtpDaneInbound): one MX with preference 0 or 10, no fallback or secondary MX,
/// DNSSEC at the DNS host, TLSA for the MX. Informational: never `[fail]`.
fn exchange_section(zone: &Zone, hosts: &[MxHost], reports: &[HostReport]) -> Section {
    let mut s = Section::new(
        "Exchange Online inbound DANE prerequisites (Enable-SmtpDaneInbound; informational, not part of the result)",
    );
    let mx: Vec<&MxHost> = hosts.iter().filter(|h| h.preference.is_some()).collect();
    let pairs: Vec<(u16, String)> = mx
        .iter()
        .map(|h| (h.preference.unwrap_or_default(), h.name.to_string()))
        .collect();
    for f in super::exo_inbound::mx_prerequisites(&pairs) {
        s.mark(if f.ok { Mark::Ok } else { Mark::Warn }, f.text);
    }
    if zone.count("DNSKEY") > 0 && zone.count("RRSIG") > 0 {
        s.mark(Mark::Ok, "the zone file is signed (DNSKEY and RRSIG present)");
    } else {
        s.mark(
            Mark::Warn,
            "the zone file is unsigned: DNSSEC must be enabled at the DNS host first",
        );
    }
    if let (Some(first), Some(r)) = (mx.first(), reports.first()) {
        match r.status {
            HostStatus::Outside => s.mark(
                Mark::Info,
                format!(
                    "TLSA for {}: outside this zone, cannot check (an Exchange Online MX under mx.microsoft carries \
                     Microsoft's own DNSSEC and TLSA)",
                    first.name
                ),
            ),
            _ if r.tlsa_found => s.mark(Mark::Ok, format!("TLSA published for {}", first.name)),
            _ => s.mark(Mark::Warn, format!("no TLSA for {}", first.name)),
        }
    }
    s
}

/// CNAME records that a lookup followed must be signed too.
fn note_cnames(chain: &[Name], signed: &mut BTreeSet<(Name, String)>) {
    for n in &chain[..chain.len().saturating_sub(1)] {
        signed.insert((n.clone(), "CNAME".into()));
    }
}

fn tlsa_owner(base: &Name) -> Name {
    Name::parse(SMTP_PREFIX, Some(base)).unwrap_or_else(|_| base.clone())
}

fn absolute(s: &str) -> Result<Name, String> {
    Name::parse(s.trim_end_matches('.'), Some(&Name::root()))
        .map(|n| n.to_lowercase())
        .map_err(|e| format!("not a domain name: {e}"))
}

/// A name as certificates write it: no trailing dot.
fn plain(n: &Name) -> String {
    n.to_string().trim_end_matches('.').to_string()
}

fn show_chain(chain: &[Name]) -> String {
    chain.iter().map(Name::to_string).collect::<Vec<_>>().join(" -> ")
}

/// `3 1 1 <hex>`; long data (full certificates, SHA-512) abbreviated.
fn short(r: &Tlsa) -> String {
    let hex = hex::encode_upper(&r.data);
    if r.data.len() <= 32 {
        format!("{} {hex}", short_params(r))
    } else {
        format!(
            "{} {}...{} ({} bytes)",
            short_params(r),
            &hex[..16],
            &hex[hex.len() - 8..],
            r.data.len()
        )
    }
}

fn short_params(r: &Tlsa) -> String {
    format!("{} {} {}", r.usage, r.selector, r.matching)
}

fn human(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn date(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(|d| d.date().to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Parses `--now`: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
pub fn parse_now(s: &str) -> Result<OffsetDateTime, InspectError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| InspectError::Argument(format!("--now {s}: use YYYY-MM-DD or an RFC 3339 time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(human(3600), "1 h");
        assert_eq!(human(172_800), "2 d");
        assert_eq!(human(90), "90 s");
        assert_eq!(human(300), "5 min");
        assert_eq!(
            rfc3339(parse_now("2026-01-01").unwrap().unix_timestamp()),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(parse_now("2026-01-01T12:00:00Z").unwrap().hour(), 12);
        assert!(parse_now("soon").is_err());
        let r = Tlsa {
            usage: 3,
            selector: 0,
            matching: 2,
            data: vec![0xab; 64],
        };
        assert_eq!(short(&r), "3 0 2 ABABABABABABABAB...ABABABAB (64 bytes)");
    }
}
