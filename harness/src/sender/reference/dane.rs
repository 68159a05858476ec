//! The reference sender's DANE certificate check (RFC 7672 §3, RFC 7671 §5 and §9).
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
    NoMatch { presented_spki_sha256: Vec<String> },
    /// A DANE-TA anchor matched but no valid path leads from the leaf to it.
    ChainInvalid(String),
    Expired { depth: usize },
    NotYetValid { depth: usize },
    /// DANE-TA: the leaf's names match no reference identifier.
    NameMismatch { presented: Vec<String>, reference_ids: Vec<String> },
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
            DaneFailure::NoUsableRecords => write!(
                f,
                "no usable TLSA record to authenticate with (RFC 7672 §2.2, §3.1.3)"
            ),
            DaneFailure::NoMatch {
                presented_spki_sha256,
            } => {
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
    let usable: Vec<&Tlsa> = tlsa
        .iter()
        .filter(|r| r.usability() == Usability::Usable)
        .collect();
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
                how: format!(
                    "DANE-EE: {what} matches; names and dates not checked (RFC 7672 §3.1.1)"
                ),
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
    failed(first_failure.unwrap_or_else(|| DaneFailure::NoMatch {
        presented_spki_sha256: chain
            .iter()
            .map(|c| {
                crate::pki::spki_sha256(c).unwrap_or_else(|_| "(unparseable certificate)".into())
            })
            .collect(),
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
            let spki = der_sequence_contents(spki).ok_or_else(|| {
                invalid("the 2 1 0 record is not a DER SubjectPublicKeyInfo".into())
            })?;
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
            let ta = webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
                invalid(format!("the trust anchor certificate does not parse: {e:?}"))
            })?;
            let info = anchor_cert_info(der)
                .ok_or_else(|| invalid("the trust anchor certificate does not parse".into()))?;
            (vec![ta.to_owned()], Some(info))
        }
    };
    let anchor_path_len = anchor_info
        .as_ref()
        .and_then(|a| a.path_len)
        .map(|n| n as usize);

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
        let t = now.as_secs() as i64;
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
            "a certificate between the leaf and the trust anchor is not a CA (RFC 5280 §4.2.1.9)"
                .into(),
        ),
        E::CaUsedAsEndEntity => {
            DaneFailure::ChainInvalid("the leaf is a CA certificate (RFC 5280 §4.2.1.9)".into())
        }
        E::UnknownIssuer => DaneFailure::ChainInvalid(format!(
            "no path from the leaf leads to the trust anchor at depth {anchor_depth}"
        )),
        E::InvalidSignatureForPublicKey => {
            DaneFailure::ChainInvalid("a certificate signature does not verify".into())
        }
        E::RequiredEkuNotFoundContext(_) => DaneFailure::ChainInvalid(
            "the leaf's extendedKeyUsage excludes serverAuth (RFC 5280 §4.2.1.12)".into(),
        ),
        other => DaneFailure::ChainInvalid(format!("path validation failed: {other:?}")),
    }
}

fn date_failure(certs: &[CertificateDer<'_>], now: UnixTime) -> Option<DaneFailure> {
    let t = now.as_secs() as i64;
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
fn presented_identifiers(leaf: &[u8]) -> Vec<String> {
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

fn owned_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Vec<CertificateDer<'static>> {
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
        let outcome =
            verify_chain_with(&chain, &self.tlsa, &self.reference_ids, self.now, &self.algs);
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
    use super::*;

    /// For "TLS" mode, when every TLSA record is unusable (RFC 7672 §2.2): encryption is
    /// mandatory but the certificate is not authenticated. Accepts any chain, still checks
    /// that the server holds the leaf's key (handshake signatures), and records the chain so
    /// reports can show what was seen.
    #[derive(Clone)]
    pub struct UncheckedVerifier {
        algs: WebPkiSupportedAlgorithms,
        seen: Arc<Mutex<Seen>>,
    }

    impl fmt::Debug for UncheckedVerifier {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("UncheckedVerifier").finish_non_exhaustive()
        }
    }

    impl Default for UncheckedVerifier {
        fn default() -> Self {
            Self::new()
        }
    }

    impl UncheckedVerifier {
        pub fn new() -> Self {
            UncheckedVerifier {
                algs: signature_algorithms(),
                seen: Arc::default(),
            }
        }

        /// The chain the server presented in the last handshake (leaf first).
        pub fn presented_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
            lock(&self.seen).chain.clone()
        }
    }

    impl ServerCertVerifier for UncheckedVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            lock(&self.seen).chain = Some(owned_chain(end_entity, intermediates));
            Ok(ServerCertVerified::assertion())
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
}
