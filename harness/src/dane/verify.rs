//! The DANE certificate check (RFC 7672 §3, RFC 7671 §5 and §9), used by the reference
//! sender, `danesim check` and `danesim explain`.
//!
//! [`verify_chain`] decides whether a presented chain is authenticated by a set of TLSA
//! records, and says why in a way the explain trace can show. [`DaneVerifier`] plugs that
//! decision into rustls, so a failed check aborts the handshake with an alert before any
//! `MAIL FROM`. [`danger::UncheckedVerifier`] is for the case where every TLSA record is
//! unusable (RFC 7672 §2.2): TLS is mandatory but the certificate is not checked.
//!
//! The time is injected: nothing here reads the system clock.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use crate::pki::{Tlsa, Usability};

/// What the certificate check decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum DaneOutcome {
    Authenticated {
        /// Presentation form of the TLSA record that matched.
        record: String,
        /// Chain depth of the matched element: 0 for DANE-EE; for DANE-TA the trust anchor's
        /// depth, or the chain length when the anchor came from the TLSA record itself.
        depth: usize,
        /// One line on how, citing the RFC.
        how: String,
    },
    Failed {
        reason: DaneFailure,
    },
}

impl DaneOutcome {
    pub fn is_authenticated(&self) -> bool {
        matches!(self, DaneOutcome::Authenticated { .. })
    }
}

/// Why authentication failed. Outcome data, not an error: a peer or a zone causes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum DaneFailure {
    /// The server sent an empty certificate list.
    NoCertificate,
    /// The caller passed no usable record (the sender should have chosen unauthenticated TLS,
    /// RFC 7672 §2.2).
    NoUsableRecords,
    /// No usable record (after digest agility) matches any chain element.
    NoMatch {
        presented_spki_sha256: Vec<String>,
    },
    /// A DANE-TA anchor matched but no valid path leads from the leaf to it.
    ChainInvalid(String),
    Expired {
        depth: usize,
    },
    NotYetValid {
        depth: usize,
    },
    /// DANE-TA: the leaf's names match no reference identifier.
    NameMismatch {
        presented: Vec<String>,
        reference_ids: Vec<String>,
    },
    /// DANE-TA: a path length, name or CA constraint is violated.
    ConstraintViolated(String),
}

impl fmt::Display for DaneOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaneOutcome::Authenticated { record, depth, how } => {
                write!(f, "authenticated by TLSA {record} at depth {depth}: {how}")
            }
            DaneOutcome::Failed { reason } => write!(f, "DANE authentication failed: {reason}"),
        }
    }
}

impl fmt::Display for DaneFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaneFailure::NoCertificate => {
                write!(f, "the server presented no certificate (RFC 7672 §3.2)")
            }
            DaneFailure::NoUsableRecords => {
                write!(f, "no usable TLSA record to authenticate with (RFC 7672 §2.2, §3.1.3)")
            }
            DaneFailure::NoMatch { presented_spki_sha256 } => {
                write!(
                    f,
                    "no usable TLSA record matches the presented chain (RFC 7672 §3.2; a DANE-TA \
                     anchor must be in the chain, §3.1.2); presented SPKI SHA-256 by depth:"
                )?;
                for (depth, h) in presented_spki_sha256.iter().enumerate() {
                    write!(f, " {depth}={h}")?;
                }
                Ok(())
            }
            DaneFailure::ChainInvalid(why) => {
                write!(f, "DANE-TA chain invalid: {why} (RFC 7672 §3.1.2)")
            }
            DaneFailure::Expired { depth } => write!(
                f,
                "the certificate at depth {depth} has expired; validity applies under DANE-TA \
                 (RFC 7671 §5.2)"
            ),
            DaneFailure::NotYetValid { depth } => write!(
                f,
                "the certificate at depth {depth} is not yet valid; validity applies under \
                 DANE-TA (RFC 7671 §5.2)"
            ),
            DaneFailure::NameMismatch {
                presented,
                reference_ids,
            } => write!(
                f,
                "the leaf's names {presented:?} match none of the reference identifiers \
                 {reference_ids:?} (RFC 7672 §3.2.2, §3.2.3)"
            ),
            DaneFailure::ConstraintViolated(why) => write!(f, "{why}"),
        }
    }
}

/// RFC 7671 §9 leaves the ordering of digest algorithms to the client; strongest first.
const DIGEST_PREFERENCE: [u8; 2] = [Tlsa::SHA2_512, Tlsa::SHA2_256];

/// The records the check actually uses: the usable ones (RFC 7672 §2.2, §3.1.3), then digest
/// agility (RFC 7671 §9): for each usage and selector, every Full(0) record and only the digest
/// records of the strongest digest present. In input order.
pub fn records_in_use(tlsa: &[Tlsa]) -> Vec<&Tlsa> {
    let usable: Vec<&Tlsa> = tlsa.iter().filter(|r| r.usability() == Usability::Usable).collect();
    let rank = |m: u8| DIGEST_PREFERENCE.iter().position(|&p| p == m);
    let mut strongest: BTreeMap<(u8, u8), usize> = BTreeMap::new();
    for r in &usable {
        if let Some(k) = rank(r.matching) {
            let e = strongest.entry((r.usage, r.selector)).or_insert(k);
            *e = (*e).min(k);
        }
    }
    usable
        .into_iter()
        .filter(|r| {
            // Full(0) records play no part in agility: never trumped, never ignored.
            r.matching == Tlsa::FULL || rank(r.matching) == strongest.get(&(r.usage, r.selector)).copied()
        })
        .collect()
}

/// Checks a presented chain (leaf first) against the TLSA records.
///
/// - DANE-EE(3): the leaf matches, and that is all (RFC 7672 §3.1.1, §3.2.1): no name checks,
///   no dates.
/// - DANE-TA(2): a chain element at depth >= 1 matches and becomes the trust anchor, or a
///   `2 0 0` / `2 1 0` record supplies the anchor itself (RFC 7671 §5.2.3); then full path
///   validation at `now` with the anchor certificate's own constraints (RFC 7672 §3.1.2,
///   RFC 7671 §5.2), and name checks of the leaf against `reference_ids` (RFC 7672 §3.2.2,
///   §3.2.3).
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    tlsa: &[Tlsa],
    reference_ids: &[String],
    now: UnixTime,
) -> DaneOutcome {
    verify_chain_with(chain, tlsa, reference_ids, now, &signature_algorithms())
}

fn signature_algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn verify_chain_with(
    chain: &[CertificateDer<'_>],
    tlsa: &[Tlsa],
    reference_ids: &[String],
    now: UnixTime,
    algs: &WebPkiSupportedAlgorithms,
) -> DaneOutcome {
    let failed = |reason| DaneOutcome::Failed { reason };
    let Some(leaf) = chain.first() else {
        return failed(DaneFailure::NoCertificate);
    };
    let records = records_in_use(tlsa);
    if records.is_empty() {
        return failed(DaneFailure::NoUsableRecords);
    }

    for r in records.iter().filter(|r| r.usage == Tlsa::DANE_EE) {
        if r.matches_cert(leaf) {
            let what = if r.selector == Tlsa::SPKI {
                "leaf SPKI"
            } else {
                "leaf certificate"
            };
            return DaneOutcome::Authenticated {
                record: r.presentation(),
                depth: 0,
                how: format!("DANE-EE: {what} matches; names and dates not checked (RFC 7672 §3.1.1)"),
            };
        }
    }

    // The first DANE-TA failure is reported if no record authenticates: a matched anchor whose
    // chain then fails says more than "no match".
    let mut first_failure = None;
    for r in records.iter().filter(|r| r.usage == Tlsa::DANE_TA) {
        for source in anchor_sources(r, chain) {
            match try_anchor(r, source, chain, reference_ids, now, algs) {
                Ok((depth, how)) => {
                    return DaneOutcome::Authenticated {
                        record: r.presentation(),
                        depth,
                        how,
                    };
                }
                Err(f) => {
                    first_failure.get_or_insert(f);
                }
            }
        }
    }
    failed(first_failure.unwrap_or_else(|| {
        DaneFailure::NoMatch {
            presented_spki_sha256: chain
                .iter()
                .map(|c| crate::pki::spki_sha256(c).unwrap_or_else(|_| "(unparseable certificate)".into()))
                .collect(),
        }
    }))
}

/// Where a DANE-TA trust anchor comes from.
#[derive(Debug, Clone, Copy)]
enum AnchorSource<'r> {
    /// A chain element at this depth (>= 1) matches the record (RFC 7672 §3.1.2).
    InChain(usize),
    /// A `2 0 0` record: the whole anchor certificate is in DNS (RFC 7671 §5.2.1).
    DnsCert(&'r [u8]),
    /// A `2 1 0` record: a bare anchor public key; the topmost chain certificate must be
    /// signed by it (RFC 7671 §5.2.3).
    DnsKey(&'r [u8]),
}

fn anchor_sources<'r>(r: &'r Tlsa, chain: &[CertificateDer<'_>]) -> Vec<AnchorSource<'r>> {
    // Depth 0 is the leaf: a TA record there is no trust anchor (RFC 7672 §3.1.2).
    let in_chain: Vec<AnchorSource<'r>> = (1..chain.len())
        .filter(|&d| r.matches_cert(&chain[d]))
        .map(AnchorSource::InChain)
        .collect();
    if !in_chain.is_empty() {
        return in_chain;
    }
    // RFC 7672 §3.1.2 requires servers to send the anchor, so a digest that matches nothing
    // fails. Only a Full(0) record carries enough to anchor validation without it.
    match (r.selector, r.matching) {
        (Tlsa::CERT, Tlsa::FULL) if !chain.iter().any(|c| c.as_ref() == r.data.as_slice()) => {
            vec![AnchorSource::DnsCert(&r.data)]
        }
        (Tlsa::SPKI, Tlsa::FULL) => vec![AnchorSource::DnsKey(&r.data)],
        _ => Vec::new(),
    }
}

/// The anchor as validation sees it.
#[derive(Debug, Clone, Copy)]
enum AnchorMaterial<'a> {
    /// A certificate (from the chain or a `2 0 0` record): its key, name and constraints.
    Cert(&'a [u8]),
    /// A bare SubjectPublicKeyInfo (`2 1 0`).
    Key(&'a [u8]),
}

/// What the anchor certificate itself imposes (RFC 7672 §3.1.2: the client SHOULD apply the
/// trust anchor certificate's constraints).
struct AnchorCert {
    is_ca: bool,
    path_len: Option<u32>,
    not_before: i64,
    not_after: i64,
}

fn anchor_cert_info(der: &[u8]) -> Option<AnchorCert> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let bc = c.basic_constraints().ok()?.map(|e| e.value.clone());
    Some(AnchorCert {
        is_ca: bc.as_ref().is_some_and(|b| b.ca),
        path_len: bc.and_then(|b| b.path_len_constraint),
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
    })
}

/// Validates the chain from one candidate anchor; on success, the anchor depth and the `how`.
fn try_anchor(
    record: &Tlsa,
    source: AnchorSource<'_>,
    chain: &[CertificateDer<'_>],
    reference_ids: &[String],
    now: UnixTime,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<(usize, String), DaneFailure> {
    let invalid = |s: String| DaneFailure::ChainInvalid(s);
    let leaf = &chain[0];
    let (material, depth, what) = match source {
        AnchorSource::InChain(d) => {
            let what = if record.selector == Tlsa::SPKI {
                format!("the public key of the certificate at depth {d}")
            } else {
                format!("the certificate at depth {d}")
            };
            (AnchorMaterial::Cert(chain[d].as_ref()), d, what)
        }
        AnchorSource::DnsCert(der) => (
            AnchorMaterial::Cert(der),
            chain.len(),
            "the certificate published in the TLSA record".to_string(),
        ),
        AnchorSource::DnsKey(spki) => (
            AnchorMaterial::Key(spki),
            chain.len(),
            "the public key published in the TLSA record".to_string(),
        ),
    };

    let (anchors, anchor_info): (Vec<TrustAnchor<'static>>, Option<AnchorCert>) = match material {
        AnchorMaterial::Key(spki) => {
            let spki = der_sequence_contents(spki)
                .ok_or_else(|| invalid("the 2 1 0 record is not a DER SubjectPublicKeyInfo".into()))?;
            // The key has no name of its own: offer it under each issuer name in the chain,
            // so that whichever certificate it signed can chain to it.
            let mut subjects: Vec<Vec<u8>> = chain
                .iter()
                .filter_map(|c| {
                    let (_, x) = x509_parser::parse_x509_certificate(c).ok()?;
                    der_sequence_contents(x.tbs_certificate.issuer.as_raw()).map(<[u8]>::to_vec)
                })
                .collect();
            subjects.sort();
            subjects.dedup();
            let anchors = subjects
                .into_iter()
                .map(|subject| TrustAnchor {
                    subject: subject.into(),
                    subject_public_key_info: spki.to_vec().into(),
                    name_constraints: None,
                })
                .collect();
            (anchors, None)
        }
        AnchorMaterial::Cert(der) => {
            let cert = CertificateDer::from(der);
            let ta = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| invalid(format!("the trust anchor certificate does not parse: {e:?}")))?;
            let info =
                anchor_cert_info(der).ok_or_else(|| invalid("the trust anchor certificate does not parse".into()))?;
            (vec![ta.to_owned()], Some(info))
        }
    };
    let anchor_path_len = anchor_info.as_ref().and_then(|a| a.path_len).map(|n| n as usize);

    let in_chain_depth = match source {
        AnchorSource::InChain(d) => Some(d),
        _ => None,
    };
    let intermediates: Vec<CertificateDer<'_>> = chain
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, _)| Some(*i) != in_chain_depth)
        .map(|(_, c)| c.clone())
        .collect();
    let ee = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| invalid(format!("the leaf certificate does not parse: {e:?}")))?;

    // webpki does not look at a trust anchor's basicConstraints, so the anchor's
    // pathLenConstraint is enforced here on each candidate path (RFC 5280 §4.2.1.9: counts
    // non-self-issued intermediates below it).
    let anchor_limit_hit = Cell::new(false);
    let check_anchor_path_len = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        if let Some(limit) = anchor_path_len {
            let below = path
                .intermediate_certificates()
                .filter(|c| c.subject() != c.issuer())
                .count();
            if below > limit {
                anchor_limit_hit.set(true);
                return Err(webpki::Error::PathLenConstraintViolated);
            }
        }
        Ok(())
    };
    let verified = ee.verify_for_usage(
        algs.all,
        &anchors,
        &intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        Some(&check_anchor_path_len),
    );
    if let Err(e) = verified {
        return Err(map_webpki_error(
            e,
            chain,
            depth,
            now,
            anchor_limit_hit.get().then_some(anchor_path_len).flatten(),
        ));
    }

    if let Some(a) = &anchor_info {
        // A certificate that merely carries the matching key is not thereby a CA.
        if !a.is_ca {
            return Err(DaneFailure::ConstraintViolated(format!(
                "the trust anchor at depth {depth} is not a CA certificate (basicConstraints), \
                 so it cannot issue (RFC 7672 §3.1.2, RFC 5280 §4.2.1.9)"
            )));
        }
        // The anchor's own validity, as OpenSSL-based senders check it too (RFC 7671 §5.2).
        let t = unix_secs(now);
        if t < a.not_before {
            return Err(DaneFailure::NotYetValid { depth });
        }
        if t > a.not_after {
            return Err(DaneFailure::Expired { depth });
        }
    }

    let presented = presented_identifiers(leaf);
    let refs: Vec<String> = reference_ids.iter().map(|r| normalize(r)).collect();
    let hit = presented
        .iter()
        .find_map(|p| refs.iter().find(|r| name_matches(p, r)).map(|r| (p, r)));
    let Some((p, r)) = hit else {
        return Err(DaneFailure::NameMismatch {
            presented,
            reference_ids: reference_ids.to_vec(),
        });
    };
    Ok((
        depth,
        format!(
            "DANE-TA: {what} is the trust anchor; path, dates and constraints valid; leaf name \
             {p:?} matches reference identifier {r:?} (RFC 7672 §3.1.2, §3.2.2)"
        ),
    ))
}

fn map_webpki_error(
    e: webpki::Error,
    chain: &[CertificateDer<'_>],
    anchor_depth: usize,
    now: UnixTime,
    anchor_limit: Option<usize>,
) -> DaneFailure {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => {
            // webpki does not say which certificate; the first one below the anchor (in
            // served order) whose dates exclude `now` is the one.
            date_failure(&chain[..anchor_depth.min(chain.len())], now)
                .unwrap_or_else(|| DaneFailure::ChainInvalid(format!("{e:?}")))
        }
        E::PathLenConstraintViolated => DaneFailure::ConstraintViolated(match anchor_limit {
            Some(n) => format!(
                "the trust anchor at depth {anchor_depth} allows {n} intermediate CA(s) below it \
                 (pathLenConstraint) and the chain has more (RFC 7672 §3.1.2, RFC 5280 §4.2.1.9)"
            ),
            None => "an intermediate's pathLenConstraint is exceeded (RFC 5280 §4.2.1.9)".into(),
        }),
        E::NameConstraintViolation => DaneFailure::ConstraintViolated(
            "a name in the chain lies outside the name constraints of the trust anchor or an \
             intermediate (RFC 7672 §3.1.2, RFC 5280 §4.2.1.10)"
                .into(),
        ),
        E::EndEntityUsedAsCa => DaneFailure::ConstraintViolated(
            "a certificate between the leaf and the trust anchor is not a CA (RFC 5280 §4.2.1.9)".into(),
        ),
        // webpki's own rule (mozilla::pkix's), not an RFC's: RFC 5280 §6.1.4 (k) asks cA=TRUE
        // only of issuing certificates, and OpenSSL accepts such a leaf (TA-14). Kept, and
        // catalogued, because webpki offers no way to validate the path without it.
        E::CaUsedAsEndEntity => DaneFailure::ChainInvalid(
            "the leaf has basicConstraints cA=TRUE, which webpki refuses for an end entity; no RFC forbids it \
             (docs/CONFORMANCE.md, \"Known deviations\", reference-webpki-ca-leaf)"
                .into(),
        ),
        E::UnknownIssuer => DaneFailure::ChainInvalid(format!(
            "no path from the leaf leads to the trust anchor at depth {anchor_depth}"
        )),
        E::InvalidSignatureForPublicKey => DaneFailure::ChainInvalid("a certificate signature does not verify".into()),
        E::RequiredEkuNotFoundContext(_) => {
            DaneFailure::ChainInvalid("the leaf's extendedKeyUsage excludes serverAuth (RFC 5280 §4.2.1.12)".into())
        }
        other => DaneFailure::ChainInvalid(format!("path validation failed: {other:?}")),
    }
}

/// Seconds since the epoch as x509-parser counts them; far-future times saturate.
fn unix_secs(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

fn date_failure(certs: &[CertificateDer<'_>], now: UnixTime) -> Option<DaneFailure> {
    let t = unix_secs(now);
    certs.iter().enumerate().find_map(|(depth, c)| {
        let (_, x) = x509_parser::parse_x509_certificate(c).ok()?;
        let v = x.validity();
        if t < v.not_before.timestamp() {
            Some(DaneFailure::NotYetValid { depth })
        } else if t > v.not_after.timestamp() {
            Some(DaneFailure::Expired { depth })
        } else {
            None
        }
    })
}

/// The leaf's presented identifiers (RFC 7672 §3.2.3): its DNS-IDs if the SAN has any,
/// otherwise its CN-IDs. Normalized (lowercase, no trailing dot).
pub fn presented_identifiers(leaf: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, c)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let dns_ids: Vec<String> = match c.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(n) => Some(normalize(n)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if !dns_ids.is_empty() {
        return dns_ids;
    }
    c.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(normalize))
        .collect()
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// RFC 7672 §3.2.3: exact match, or a wildcard that is the entire first label and matches
/// exactly one label of the reference identifier. Like OpenSSL (which real senders use), a
/// wildcard needs at least two labels after it, so `*.test` matches nothing.
fn name_matches(presented: &str, reference: &str) -> bool {
    if presented.is_empty() || reference.is_empty() {
        return false;
    }
    if presented == reference {
        return !presented.contains('*');
    }
    let Some(rest) = presented.strip_prefix("*.") else {
        return false;
    };
    if rest.contains('*') || !rest.contains('.') {
        return false;
    }
    match reference.split_once('.') {
        Some((first, ref_rest)) => !first.is_empty() && ref_rest == rest,
        None => false,
    }
}

/// The contents of a DER SEQUENCE that spans all of `der` (definite length only).
fn der_sequence_contents(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, body) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    (body.len() == len).then_some(body)
}

/// A rustls verifier that applies [`verify_chain`] and remembers what it decided.
///
/// Clones share the recorded outcome, so a sender can keep one clone and hand another to
/// rustls.
#[derive(Clone)]
pub struct DaneVerifier {
    tlsa: Vec<Tlsa>,
    reference_ids: Vec<String>,
    now: UnixTime,
    algs: WebPkiSupportedAlgorithms,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    outcome: Option<DaneOutcome>,
    chain: Option<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for DaneVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaneVerifier")
            .field("tlsa", &self.tlsa)
            .field("reference_ids", &self.reference_ids)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl DaneVerifier {
    /// `now` is the injected time used for DANE-TA date checks (rustls's clock is ignored).
    pub fn new(tlsa: Vec<Tlsa>, reference_ids: Vec<String>, now: UnixTime) -> Self {
        DaneVerifier {
            tlsa,
            reference_ids,
            now,
            algs: signature_algorithms(),
            seen: Arc::default(),
        }
    }

    /// What the last `verify_server_cert` decided; `None` before the server's certificate
    /// arrived.
    pub fn outcome(&self) -> Option<DaneOutcome> {
        lock(&self.seen).outcome.clone()
    }

    /// The chain the server presented in the last handshake (leaf first).
    pub fn presented_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        lock(&self.seen).chain.clone()
    }
}

/// A poisoned lock only means another handshake task panicked; the data is still whole.
fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn owned_chain(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Vec<CertificateDer<'static>> {
    std::iter::once(end_entity)
        .chain(intermediates)
        .map(|c| c.clone().into_owned())
        .collect()
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = owned_chain(end_entity, intermediates);
        let outcome = verify_chain_with(&chain, &self.tlsa, &self.reference_ids, self.now, &self.algs);
        let ok = outcome.is_authenticated();
        {
            let mut seen = lock(&self.seen);
            seen.outcome = Some(outcome);
            seen.chain = Some(chain);
        }
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            // rustls answers this with an access_denied alert, so the server's transcript
            // shows that the client refused the certificate (RFC 7672 §3.2: no delivery).
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Verifiers that weaken checks on purpose.
pub mod danger {
    pub use crate::pki::UncheckedVerifier;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls_pki_types::PrivateKeyDer;
    use time::OffsetDateTime;

    use super::danger::UncheckedVerifier;
    use super::*;
    use crate::pki::{CertSpec, KeyRef, KeyStore, Pki};

    fn ymd(y: i32, m: u8, d: u8) -> OffsetDateTime {
        rcgen::date_time_ymd(y, m, d)
    }

    fn at(y: i32, m: u8, d: u8) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(ymd(y, m, d).unix_timestamp() as u64))
    }

    /// The injected "now" of these tests.
    fn now() -> UnixTime {
        at(2026, 6, 1)
    }

    fn base(name: &str, key: &str) -> CertSpec {
        CertSpec::new(name, KeyRef::parse(key).unwrap(), ymd(2025, 1, 1), ymd(2030, 1, 1))
    }

    fn ca(name: &str, key: &str, issuer: Option<&str>) -> CertSpec {
        CertSpec {
            ca: true,
            issuer: issuer.map(str::to_string),
            common_name: Some(format!("{name} CA")),
            ..base(name, key)
        }
    }

    fn leaf(name: &str, key: &str, issuer: Option<&str>, sans: &[&str]) -> CertSpec {
        CertSpec {
            issuer: issuer.map(str::to_string),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            ..base(name, key)
        }
    }

    fn world() -> Pki {
        let mx = ["mx1.example.test"];
        let specs = vec![
            ca("root", "ed25519:t-root", None),
            ca("inter", "ed25519:t-inter", Some("root")),
            leaf("mx", "ed25519:t-mx", Some("inter"), &mx),
            leaf("domain", "ed25519:t-domain", Some("inter"), &["example.test"]),
            leaf("other", "ed25519:t-other", Some("inter"), &["www.other.test"]),
            leaf("wild", "ed25519:t-wild", Some("inter"), &["*.example.test"]),
            CertSpec {
                not_after: ymd(2026, 1, 1),
                ..leaf("expired", "ed25519:t-mx", Some("inter"), &mx)
            },
            CertSpec {
                not_before: ymd(2027, 1, 1),
                ..leaf("future", "ed25519:t-mx", Some("inter"), &mx)
            },
            CertSpec {
                common_name: Some("mx1.example.test".into()),
                ..leaf("cn-only", "ed25519:t-cn", Some("inter"), &[])
            },
            CertSpec {
                common_name: Some("mx1.example.test".into()),
                ..leaf("san-wins", "ed25519:t-cn", Some("inter"), &["www.other.test"])
            },
            // Self-signed DANE-EE leaves: unrelated name, long expired.
            CertSpec {
                not_before: ymd(2019, 1, 1),
                not_after: ymd(2020, 1, 1),
                ..leaf("ee", "ed25519:t-ee", None, &["unrelated.invalid"])
            },
            leaf("ee-new", "ed25519:t-ee-new", None, &mx),
            // An expired intermediate under the good root.
            CertSpec {
                not_after: ymd(2026, 1, 1),
                ..ca("old-inter", "ed25519:t-old-inter", Some("root"))
            },
            leaf("old-leaf", "ed25519:t-old-leaf", Some("old-inter"), &mx),
            // The root allows no intermediate below it.
            CertSpec {
                path_len: Some(0),
                ..ca("pl-root", "ed25519:t-pl-root", None)
            },
            ca("pl-inter", "ed25519:t-pl-inter", Some("pl-root")),
            leaf("pl-leaf", "ed25519:t-pl-leaf", Some("pl-inter"), &mx),
            // An intermediate that allows no sub-CA, and a sub-CA anyway.
            ca("pl2-root", "ed25519:t-pl2-root", None),
            CertSpec {
                path_len: Some(0),
                ..ca("pl2-inter", "ed25519:t-pl2-inter", Some("pl2-root"))
            },
            ca("pl2-sub", "ed25519:t-pl2-sub", Some("pl2-inter")),
            leaf("pl2-leaf", "ed25519:t-pl2-leaf", Some("pl2-sub"), &mx),
            // A root constrained to example.test.
            CertSpec {
                permitted_dns: vec!["example.test".into()],
                ..ca("nc-root", "ed25519:t-nc-root", None)
            },
            ca("nc-inter", "ed25519:t-nc-inter", Some("nc-root")),
            leaf("nc-good", "ed25519:t-nc-good", Some("nc-inter"), &mx),
            leaf("nc-bad", "ed25519:t-nc-bad", Some("nc-inter"), &["mx1.other.test"]),
            // P-256 chain.
            ca("p-root", "p256:1", None),
            ca("p-inter", "p256:2", Some("p-root")),
            leaf("p-leaf", "p256:3", Some("p-inter"), &mx),
        ];
        Pki::issue(&specs, &KeyStore::embedded()).unwrap()
    }

    /// The full chain as served: leaf, intermediates, root.
    fn chain(pki: &Pki, leaf: &str) -> Vec<CertificateDer<'static>> {
        pki.chain(leaf)
            .unwrap()
            .into_iter()
            .map(|c| CertificateDer::from(c.der.clone()))
            .collect()
    }

    /// The served chain without its last (root) certificate.
    fn chain_without_root(pki: &Pki, leaf: &str) -> Vec<CertificateDer<'static>> {
        let mut c = chain(pki, leaf);
        c.pop();
        c
    }

    fn rec(pki: &Pki, u: u8, s: u8, m: u8, name: &str) -> Tlsa {
        Tlsa::compute(u, s, m, &pki.get(name).unwrap().der).unwrap()
    }

    fn refs() -> Vec<String> {
        vec!["mx1.example.test".into(), "example.test".into()]
    }

    fn check(chain: &[CertificateDer<'_>], tlsa: &[Tlsa]) -> DaneOutcome {
        verify_chain(chain, tlsa, &refs(), now())
    }

    #[track_caller]
    fn assert_auth(o: &DaneOutcome, want_record: &Tlsa, want_depth: usize, how_has: &str) {
        match o {
            DaneOutcome::Authenticated { record, depth, how } => {
                assert_eq!(record, &want_record.presentation());
                assert_eq!(*depth, want_depth);
                assert!(how.contains(how_has), "{how}");
            }
            DaneOutcome::Failed { reason } => panic!("expected authentication, got: {reason}"),
        }
    }

    #[track_caller]
    fn failure(o: DaneOutcome) -> DaneFailure {
        match o {
            DaneOutcome::Failed { reason } => reason,
            other => panic!("expected a failure, got: {other}"),
        }
    }

    #[test]
    fn ee_match_ignores_names_and_dates() {
        let pki = world();
        let r = rec(&pki, 3, 1, 1, "ee");
        assert_auth(
            &check(&chain(&pki, "ee"), std::slice::from_ref(&r)),
            &r,
            0,
            "RFC 7672 §3.1.1",
        );
        let o = check(&chain(&pki, "ee"), std::slice::from_ref(&r));
        assert_auth(&o, &r, 0, "leaf SPKI matches; names and dates not checked");
        let r = rec(&pki, 3, 0, 1, "ee");
        assert_auth(
            &check(&chain(&pki, "ee"), std::slice::from_ref(&r)),
            &r,
            0,
            "leaf certificate matches",
        );
        // An expired CA-issued leaf is fine under DANE-EE too, whatever the rest of the chain.
        let r = rec(&pki, 3, 1, 1, "expired");
        assert_auth(
            &check(&chain(&pki, "expired"), std::slice::from_ref(&r)),
            &r,
            0,
            "§3.1.1",
        );
    }

    #[test]
    fn ee_mismatch_lists_what_was_presented() {
        let pki = world();
        let stale = rec(&pki, 3, 1, 1, "ee-new");
        let f = failure(check(&chain(&pki, "ee"), &[stale]));
        assert_eq!(
            f,
            DaneFailure::NoMatch {
                presented_spki_sha256: vec![pki.get("ee").unwrap().spki_sha256.clone()]
            }
        );
        assert!(f.to_string().contains("RFC 7672 §3.2"), "{f}");
        // Several records, one matches (EE-07).
        let good = rec(&pki, 3, 1, 1, "ee");
        let o = check(&chain(&pki, "ee"), &[rec(&pki, 3, 1, 1, "ee-new"), good.clone()]);
        assert_auth(&o, &good, 0, "DANE-EE");
    }

    #[test]
    fn ta_on_intermediate_with_mx_host_name() {
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "inter");
        assert_auth(
            &check(&chain(&pki, "mx"), std::slice::from_ref(&r)),
            &r,
            1,
            "\"mx1.example.test\"",
        );
        // The root need not be served when the anchor is the intermediate.
        assert_auth(
            &check(&chain_without_root(&pki, "mx"), std::slice::from_ref(&r)),
            &r,
            1,
            "depth 1",
        );
        // 2 1 1 on the issuer key (TA-02).
        let r = rec(&pki, 2, 1, 1, "inter");
        assert_auth(
            &check(&chain(&pki, "mx"), std::slice::from_ref(&r)),
            &r,
            1,
            "public key of",
        );
        // Anchored at the served root.
        let r = rec(&pki, 2, 0, 1, "root");
        assert_auth(&check(&chain(&pki, "mx"), std::slice::from_ref(&r)), &r, 2, "§3.1.2");
    }

    #[test]
    fn ta_leaf_named_for_next_hop_domain() {
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "inter");
        assert_auth(
            &check(&chain(&pki, "domain"), std::slice::from_ref(&r)),
            &r,
            1,
            "\"example.test\"",
        );
    }

    #[test]
    fn ta_unrelated_name_fails() {
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "inter");
        let f = failure(check(&chain(&pki, "other"), std::slice::from_ref(&r)));
        assert_eq!(
            f,
            DaneFailure::NameMismatch {
                presented: vec!["www.other.test".into()],
                reference_ids: refs()
            }
        );
        assert!(f.to_string().contains("§3.2.3"), "{f}");
        // CN is ignored when DNS-IDs exist, used when they do not (RFC 7672 §3.2.3).
        let f = failure(check(&chain(&pki, "san-wins"), std::slice::from_ref(&r)));
        assert!(matches!(f, DaneFailure::NameMismatch { .. }), "{f}");
        assert_auth(
            &check(&chain(&pki, "cn-only"), std::slice::from_ref(&r)),
            &r,
            1,
            "mx1.example.test",
        );
    }

    #[test]
    fn ta_wildcard_covers_one_label() {
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "inter");
        assert_auth(
            &check(&chain(&pki, "wild"), std::slice::from_ref(&r)),
            &r,
            1,
            "\"*.example.test\"",
        );
        let only = |names: &[&str]| -> Vec<String> { names.iter().map(|s| s.to_string()).collect() };
        for refs in [only(&["mx1.sub.example.test"]), only(&["example.test"])] {
            let o = verify_chain(&chain(&pki, "wild"), std::slice::from_ref(&r), &refs, now());
            assert!(matches!(failure(o), DaneFailure::NameMismatch { .. }));
        }
    }

    #[test]
    fn name_matching_rules() {
        assert!(name_matches("mx1.example.test", "mx1.example.test"));
        assert!(name_matches("*.example.test", "mx1.example.test"));
        assert!(!name_matches("*.example.test", "example.test"));
        assert!(!name_matches("*.example.test", "a.b.example.test"));
        assert!(!name_matches("*.example.test", ".example.test"));
        assert!(!name_matches("smtp*.example.test", "smtp1.example.test"));
        assert!(!name_matches("*smtp.example.test", "xsmtp.example.test"));
        assert!(!name_matches("*.test", "example.test"));
        assert!(!name_matches("*.*.test", "a.b.test"));
        assert!(!name_matches("*.example.test", "*.example.test"));
        assert!(!name_matches("", ""));
        assert_eq!(normalize("MX1.Example.TEST."), "mx1.example.test");
        // Reference identifiers are normalized as well.
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "inter");
        let o = verify_chain(&chain(&pki, "mx"), &[r], &["MX1.EXAMPLE.TEST.".into()], now());
        assert!(o.is_authenticated(), "{o}");
    }

    #[test]
    fn ta_anchor_missing_from_chain_fails() {
        let pki = world();
        let f = failure(check(&chain_without_root(&pki, "mx"), &[rec(&pki, 2, 0, 1, "root")]));
        assert_eq!(
            f,
            DaneFailure::NoMatch {
                presented_spki_sha256: vec![
                    pki.get("mx").unwrap().spki_sha256.clone(),
                    pki.get("inter").unwrap().spki_sha256.clone(),
                ]
            }
        );
        // A TA record that matches only the leaf anchors nothing.
        let f = failure(check(&chain(&pki, "mx"), &[rec(&pki, 2, 0, 1, "mx")]));
        assert!(matches!(f, DaneFailure::NoMatch { .. }), "{f}");
    }

    #[test]
    fn ta_full_records_anchor_without_the_served_root() {
        let pki = world();
        // 2 1 0: a bare key that signed the topmost served certificate (RFC 7671 §5.2.3).
        let r = rec(&pki, 2, 1, 0, "root");
        let o = check(&chain_without_root(&pki, "mx"), std::slice::from_ref(&r));
        assert_auth(&o, &r, 2, "public key published in the TLSA record");
        // 2 0 0: the whole anchor certificate is in DNS.
        let r = rec(&pki, 2, 0, 0, "root");
        let o = check(&chain_without_root(&pki, "mx"), std::slice::from_ref(&r));
        assert_auth(&o, &r, 2, "certificate published in the TLSA record");
        // A bare key that signed nothing in the chain.
        let f = failure(check(&chain_without_root(&pki, "mx"), &[rec(&pki, 2, 1, 0, "pl-root")]));
        assert!(matches!(f, DaneFailure::ChainInvalid(_)), "{f}");
        // A 2 1 0 record whose data is not an SPKI is unusable (RFC 6698 §4.1, TLSA-U-11): it
        // never reaches path validation.
        let junk = Tlsa::parse("2 1 0 0102").unwrap();
        let f = failure(check(&chain_without_root(&pki, "mx"), &[junk]));
        assert!(matches!(f, DaneFailure::NoUsableRecords), "{f}");
    }

    #[test]
    fn ta_dates_apply() {
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "inter");
        assert_eq!(
            failure(check(&chain(&pki, "expired"), std::slice::from_ref(&r))),
            DaneFailure::Expired { depth: 0 }
        );
        assert_eq!(
            failure(check(&chain(&pki, "future"), std::slice::from_ref(&r))),
            DaneFailure::NotYetValid { depth: 0 }
        );
        // An expired intermediate below the anchor...
        let f = failure(check(&chain(&pki, "old-leaf"), &[rec(&pki, 2, 0, 1, "root")]));
        assert_eq!(f, DaneFailure::Expired { depth: 1 });
        assert!(f.to_string().contains("RFC 7671 §5.2"), "{f}");
        // ...and an expired anchor.
        let f = failure(check(&chain(&pki, "old-leaf"), &[rec(&pki, 2, 0, 1, "old-inter")]));
        assert_eq!(f, DaneFailure::Expired { depth: 1 });
        // The same chain is fine at a time inside every validity period.
        let o = verify_chain(
            &chain(&pki, "old-leaf"),
            &[rec(&pki, 2, 0, 1, "root")],
            &refs(),
            at(2025, 6, 1),
        );
        assert!(o.is_authenticated(), "{o}");
    }

    #[test]
    fn ta_path_length_constraints() {
        let pki = world();
        // The anchor's own pathLenConstraint (webpki ignores it on anchors).
        let f = failure(check(&chain(&pki, "pl-leaf"), &[rec(&pki, 2, 0, 1, "pl-root")]));
        assert!(
            matches!(f, DaneFailure::ConstraintViolated(ref s) if s.contains("trust anchor at depth 2 allows 0")),
            "{f}"
        );
        // Anchored below the constrained root, the constraint is not in the path.
        let r = rec(&pki, 2, 0, 1, "pl-inter");
        assert_auth(
            &check(&chain(&pki, "pl-leaf"), std::slice::from_ref(&r)),
            &r,
            1,
            "DANE-TA",
        );
        // An intermediate's pathLenConstraint.
        let f = failure(check(&chain(&pki, "pl2-leaf"), &[rec(&pki, 2, 0, 1, "pl2-root")]));
        assert!(
            matches!(f, DaneFailure::ConstraintViolated(ref s) if s.contains("intermediate's pathLenConstraint")),
            "{f}"
        );
    }

    /// TA-14: a leaf with cA=TRUE whose path validates, issued by a served root (`2 0 1`) or
    /// self-signed (`2 1 0`). OpenSSL accepts both; webpki refuses the leaf, a documented
    /// deviation. This test fails when webpki starts accepting it: then drop the deviation.
    #[test]
    fn ta_ca_leaf_is_refused_by_webpki() {
        let mx = vec!["mx1.example.test".to_string()];
        let specs = vec![
            ca("root", "ed25519:t-root", None),
            CertSpec {
                sans: mx.clone(),
                ..ca("ca-leaf", "ed25519:t-ca-leaf", Some("root"))
            },
            CertSpec {
                sans: mx,
                ..ca("ca-self", "ed25519:t-ca-self", None)
            },
        ];
        let pki = Pki::issue(&specs, &KeyStore::embedded()).unwrap();
        for (leaf, r) in [
            ("ca-leaf", rec(&pki, 2, 0, 1, "root")),
            ("ca-self", rec(&pki, 2, 1, 0, "ca-self")),
        ] {
            let f = failure(check(&chain(&pki, leaf), &[r]));
            assert!(
                matches!(f, DaneFailure::ChainInvalid(ref s)
                    if s.contains("the leaf has basicConstraints cA=TRUE") && s.contains("reference-webpki-ca-leaf")),
                "{leaf}: {f}"
            );
        }
    }

    #[test]
    fn ta_anchor_must_be_a_ca() {
        // Pki refuses to issue from a non-CA, so build the bad chain with rcgen directly.
        let ks = KeyStore::embedded();
        let fake_key = ks.key_pair(&KeyRef::parse("ed25519:t-fake-ca").unwrap()).unwrap();
        let leaf_key = ks.key_pair(&KeyRef::parse("ed25519:t-fake-leaf").unwrap()).unwrap();
        let mut fake = rcgen::CertificateParams::default();
        fake.is_ca = rcgen::IsCa::ExplicitNoCa;
        fake.distinguished_name.push(rcgen::DnType::CommonName, "not a CA");
        let fake_der = fake.self_signed(&fake_key).unwrap().der().clone();
        let leaf_params = rcgen::CertificateParams::new(vec!["mx1.example.test".to_string()]).unwrap();
        let leaf_der = leaf_params
            .signed_by(&leaf_key, &rcgen::Issuer::from_params(&fake, &fake_key))
            .unwrap()
            .der()
            .clone();
        let r = Tlsa::compute(2, 0, 1, &fake_der).unwrap();
        let f = failure(check(&[leaf_der, fake_der], &[r]));
        assert!(
            matches!(f, DaneFailure::ConstraintViolated(ref s) if s.contains("not a CA")),
            "{f}"
        );
    }

    #[test]
    fn ta_name_constraints() {
        let pki = world();
        let r = rec(&pki, 2, 0, 1, "nc-root");
        assert_auth(
            &check(&chain(&pki, "nc-good"), std::slice::from_ref(&r)),
            &r,
            2,
            "DANE-TA",
        );
        // The leaf's name is a reference identifier, but the anchor does not permit it.
        let o = verify_chain(&chain(&pki, "nc-bad"), &[r], &["mx1.other.test".into()], now());
        let f = failure(o);
        assert!(
            matches!(f, DaneFailure::ConstraintViolated(ref s) if s.contains("name constraints")),
            "{f}"
        );
    }

    #[test]
    fn digest_agility() {
        let pki = world();
        let ch = chain(&pki, "ee");
        let right_256 = rec(&pki, 3, 1, 1, "ee");
        let right_512 = rec(&pki, 3, 1, 2, "ee");
        let wrong_256 = rec(&pki, 3, 1, 1, "ee-new");
        let wrong_512 = rec(&pki, 3, 1, 2, "ee-new");
        // RFC 7671 §9: a SHA2-512 record of the same usage and selector makes the SHA2-256
        // ones irrelevant, right or wrong.
        let f = failure(check(&ch, &[right_256.clone(), wrong_512.clone()]));
        assert!(matches!(f, DaneFailure::NoMatch { .. }), "{f}");
        assert_auth(
            &check(&ch, &[wrong_256.clone(), right_512.clone()]),
            &right_512,
            0,
            "DANE-EE",
        );
        assert_auth(
            &check(&ch, &[right_256.clone(), right_512.clone()]),
            &right_512,
            0,
            "DANE-EE",
        );
        // Malformed records are discarded before agility applies.
        let malformed_512 = Tlsa {
            data: vec![0; 10],
            ..wrong_512.clone()
        };
        assert_auth(
            &check(&ch, &[right_256.clone(), malformed_512]),
            &right_256,
            0,
            "DANE-EE",
        );
        // Full(0) records are neither trumped nor ignored.
        let full = rec(&pki, 3, 1, 0, "ee");
        assert_auth(&check(&ch, &[full.clone(), wrong_512.clone()]), &full, 0, "DANE-EE");
        // Agility is per usage and selector.
        let other_selector = rec(&pki, 3, 0, 2, "ee-new");
        assert_auth(
            &check(&ch, &[right_256.clone(), other_selector]),
            &right_256,
            0,
            "DANE-EE",
        );
        let other_usage = rec(&pki, 2, 1, 2, "ee-new");
        assert_auth(&check(&ch, &[right_256.clone(), other_usage]), &right_256, 0, "DANE-EE");
        let in_use = [
            right_256.clone(),
            wrong_512.clone(),
            full.clone(),
            rec(&pki, 1, 1, 1, "ee"),
        ];
        assert_eq!(records_in_use(&in_use), vec![&wrong_512, &full]);
    }

    #[test]
    fn degenerate_inputs() {
        let pki = world();
        let r = rec(&pki, 3, 1, 1, "ee");
        assert_eq!(
            failure(check(&[], std::slice::from_ref(&r))),
            DaneFailure::NoCertificate
        );
        // Only unusable records (PKIX usages, RFC 7672 §3.1.3).
        let pkix = rec(&pki, 1, 1, 1, "ee");
        assert_eq!(
            failure(check(&chain(&pki, "ee"), &[pkix])),
            DaneFailure::NoUsableRecords
        );
        // Garbage from the peer is a failure, not a panic.
        let junk = [CertificateDer::from(b"junk".to_vec())];
        assert_eq!(
            failure(check(&junk, &[r])),
            DaneFailure::NoMatch {
                presented_spki_sha256: vec!["(unparseable certificate)".into()]
            }
        );
        let mut ch = chain(&pki, "mx");
        ch[0] = CertificateDer::from(b"junk".to_vec());
        let f = failure(check(&ch, &[rec(&pki, 2, 0, 1, "inter")]));
        assert!(
            matches!(f, DaneFailure::ChainInvalid(ref s) if s.contains("leaf")),
            "{f}"
        );
    }

    #[test]
    fn p256_chain() {
        let pki = world();
        let r = rec(&pki, 2, 1, 1, "p-inter");
        assert_auth(
            &check(&chain(&pki, "p-leaf"), std::slice::from_ref(&r)),
            &r,
            1,
            "DANE-TA",
        );
        let r = rec(&pki, 3, 1, 1, "p-leaf");
        assert_auth(
            &check(&chain(&pki, "p-leaf"), std::slice::from_ref(&r)),
            &r,
            0,
            "DANE-EE",
        );
    }

    #[test]
    fn der_sequence_contents_rejects_bad_lengths() {
        assert_eq!(der_sequence_contents(&[0x30, 0x02, 1, 2]), Some(&[1u8, 2][..]));
        assert_eq!(der_sequence_contents(&[0x30, 0x81, 0x02, 1, 2]), Some(&[1u8, 2][..]));
        assert_eq!(der_sequence_contents(&[0x30, 0x03, 1, 2]), None);
        assert_eq!(der_sequence_contents(&[0x31, 0x02, 1, 2]), None);
        assert_eq!(der_sequence_contents(&[0x30, 0x80]), None);
        assert_eq!(der_sequence_contents(&[]), None);
    }

    // --- A real handshake through rustls -------------------------------------------------

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Serves `leaf`'s chain on 127.0.0.1:0 for one connection; the task yields the server's
    /// handshake result.
    async fn serve_once(
        pki: &Pki,
        leaf: &str,
    ) -> (
        std::net::SocketAddr,
        tokio::task::JoinHandle<Result<(), std::io::Error>>,
    ) {
        let key = PrivateKeyDer::Pkcs8(pki.get(leaf).unwrap().key_pkcs8.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain(pki, leaf), key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            tls.write_all(b"220 ready\r\n").await?;
            tls.shutdown().await
        });
        (addr, task)
    }

    async fn connect(
        addr: std::net::SocketAddr,
        verifier: Arc<dyn ServerCertVerifier>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<String, std::io::Error> {
        use tokio::io::AsyncReadExt;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("mx1.example.test").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let mut got = String::new();
        tls.read_to_string(&mut got).await?;
        Ok(got)
    }

    fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
    }

    #[tokio::test]
    async fn handshake_accepts_one_chain_and_rejects_another() {
        let pki = world();
        // DANE-TA on the intermediate; the reference identifiers are the MX host and domain.
        let tlsa = vec![rec(&pki, 2, 0, 1, "inter")];
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            // Accepted: the leaf is named for the MX host.
            let verifier = DaneVerifier::new(tlsa.clone(), refs(), now());
            assert_eq!(verifier.outcome(), None);
            let (addr, server) = serve_once(&pki, "mx").await;
            let got = connect(addr, Arc::new(verifier.clone()), versions).await.unwrap();
            assert_eq!(got, "220 ready\r\n");
            server.await.unwrap().unwrap();
            assert!(verifier.outcome().unwrap().is_authenticated());
            assert_eq!(verifier.presented_chain().unwrap(), chain(&pki, "mx"));

            // Rejected: same CA, unrelated name. The client aborts with access_denied.
            let verifier = DaneVerifier::new(tlsa.clone(), refs(), now());
            let (addr, server) = serve_once(&pki, "other").await;
            let err = connect(addr, Arc::new(verifier.clone()), versions).await.unwrap_err();
            assert_eq!(
                rustls_error(&err),
                Some(&rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure
                ))
            );
            let server_err = server.await.unwrap().unwrap_err();
            assert_eq!(
                rustls_error(&server_err),
                Some(&rustls::Error::AlertReceived(rustls::AlertDescription::AccessDenied))
            );
            assert!(matches!(
                verifier.outcome(),
                Some(DaneOutcome::Failed {
                    reason: DaneFailure::NameMismatch { .. }
                })
            ));
        }
    }

    #[tokio::test]
    async fn handshake_p256_and_unchecked_mode() {
        let pki = world();
        // DANE-EE over a P-256 chain, TLS 1.2 and 1.3.
        let tlsa = vec![rec(&pki, 3, 1, 1, "p-leaf")];
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let verifier = DaneVerifier::new(tlsa.clone(), vec![], now());
            let (addr, server) = serve_once(&pki, "p-leaf").await;
            connect(addr, Arc::new(verifier.clone()), versions).await.unwrap();
            server.await.unwrap().unwrap();
            assert!(verifier.outcome().unwrap().is_authenticated());
        }
        // All records unusable: TLS without authentication, but the chain is recorded.
        let unchecked = UncheckedVerifier::new();
        let (addr, server) = serve_once(&pki, "other").await;
        connect(addr, Arc::new(unchecked.clone()), &[&rustls::version::TLS13])
            .await
            .unwrap();
        server.await.unwrap().unwrap();
        assert_eq!(unchecked.presented_chain().unwrap(), chain(&pki, "other"));
    }
}
