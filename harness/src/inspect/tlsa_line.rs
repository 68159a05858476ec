//! `danesim tlsa`: the TLSA record line for a certificate file, as ldns-dane's `create`,
//! hash-slinger's `tlsa --create` or huque's gen_tlsa print it.
//!
//! The association data comes from [`Tlsa::compute`], the computation the simulated worlds
//! publish and the reference sender matches with, so the three cannot drift apart.
//!
//! Which certificate of the file: DANE-EE(3) and PKIX-EE(1) describe the server's own
//! certificate, the first one in the file (RFC 6698 §2.1.1). DANE-TA(2) and PKIX-TA(0) name
//! a trust anchor, which sits at the end of the served chain (RFC 7672 §3.1.2 requires the
//! server to send it); like `ldns-dane create`, the last certificate of the file is taken.
//! `--index N` (0 = the first certificate) picks another one, e.g. an intermediate CA.

use std::fmt;
use std::path::PathBuf;

use hickory_proto::rr::Name;

use super::InspectError;
use super::pem::{Chain, leaf_names, read_chain};
use crate::pki::Tlsa;

/// What to compute. Defaults in the CLI: `3 1 1`, port 25, tcp (RFC 7672 §3.1.1 and
/// RFC 7671 §5.1 recommend DANE-EE(3) SPKI(1) SHA2-256(1) for SMTP).
#[derive(Debug, Clone)]
pub struct TlsaRequest {
    pub cert: PathBuf,
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub port: u16,
    /// `tcp`, `udp` or `sctp` (RFC 6698 §3).
    pub proto: String,
    /// The TLSA base domain; `None` = the leaf's first DNS name.
    pub host: Option<String>,
    /// 0-based index of the certificate in the file; `None` = by usage (see the module doc).
    pub index: Option<usize>,
}

/// One TLSA record line and what the user should know about it.
#[derive(Debug, Clone)]
pub struct TlsaLine {
    /// `_25._tcp.mx.example.com.`
    pub owner: String,
    pub record: Tlsa,
    /// Index of the certificate the record was computed from.
    pub index: usize,
    /// Remarks for stderr (never part of the record line).
    pub notes: Vec<String>,
}

impl fmt::Display for TlsaLine {
    /// RFC 6698 §2.2 presentation, hex in uppercase like every TLSA record danesim prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} IN TLSA {}", self.owner, self.record.presentation())
    }
}

/// Computes the record line; every bad input is an [`InspectError`] that names the file or
/// the option.
pub fn tlsa_line(req: &TlsaRequest) -> Result<TlsaLine, InspectError> {
    check_parameters(req)?;
    let chain = read_chain(&req.cert)?;
    let index = pick_certificate(req, &chain)?;
    let owner = owner_name(req, &chain)?;
    let record = Tlsa::compute(req.usage, req.selector, req.matching, &chain.certs[index]).map_err(|e| {
        InspectError::Certificate {
            path: req.cert.clone(),
            message: format!("certificate {index}: {e}"),
        }
    })?;
    let notes = notes(req, &chain, index);
    Ok(TlsaLine {
        owner,
        record,
        index,
        notes,
    })
}

fn check_parameters(req: &TlsaRequest) -> Result<(), InspectError> {
    let bad = |m: String| Err(InspectError::Argument(m));
    if req.usage > 3 {
        return bad(format!(
            "--usage {}: not a defined certificate usage; use 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA or 3 DANE-EE \
             (RFC 6698 §2.1.1; SMTP uses 3 or 2, RFC 7672 §3.1)",
            req.usage
        ));
    }
    if req.selector > 1 {
        return bad(format!(
            "--selector {}: not a defined selector; use 0 (full certificate) or 1 (SubjectPublicKeyInfo) \
             (RFC 6698 §2.1.2)",
            req.selector
        ));
    }
    if req.matching > 2 {
        return bad(format!(
            "--mtype {}: not a defined matching type; use 0 (full data), 1 (SHA-256) or 2 (SHA-512) \
             (RFC 6698 §2.1.3)",
            req.matching
        ));
    }
    if !matches!(req.proto.as_str(), "tcp" | "udp" | "sctp") {
        return bad(format!("--proto {}: use tcp, udp or sctp (RFC 6698 §3)", req.proto));
    }
    Ok(())
}

fn pick_certificate(req: &TlsaRequest, chain: &Chain) -> Result<usize, InspectError> {
    let n = chain.certs.len();
    match req.index {
        Some(i) if i < n => Ok(i),
        Some(i) => Err(InspectError::Argument(format!(
            "--index {i}: {} holds {n} certificate(s), numbered 0 (the leaf) to {}",
            req.cert.display(),
            n - 1
        ))),
        None if matches!(req.usage, Tlsa::DANE_TA | Tlsa::PKIX_TA) => Ok(n - 1),
        None => Ok(0),
    }
}

/// `_<port>._<proto>.<host>.` (RFC 6698 §3, RFC 7672 §2.2.3).
fn owner_name(req: &TlsaRequest, chain: &Chain) -> Result<String, InspectError> {
    let host = match &req.host {
        Some(h) => h.clone(),
        None => {
            let names = leaf_names(chain);
            match names.first() {
                Some(n) if !n.contains('*') => n.clone(),
                Some(n) => {
                    return Err(InspectError::Argument(format!(
                        "the leaf certificate of {} is for `{n}`, a wildcard, which is no host name; \
                         pass the MX host name with --host mx.example.com",
                        req.cert.display()
                    )));
                }
                None => {
                    return Err(InspectError::Argument(format!(
                        "the leaf certificate of {} carries no DNS name (no DNS SAN and no CN); pass the MX \
                         host name with --host mx.example.com",
                        req.cert.display()
                    )));
                }
            }
        }
    };
    let name = Name::parse(host.trim_end_matches('.'), Some(&Name::root()))
        .map_err(|e| InspectError::Argument(format!("--host {host}: not a domain name: {e}")))?;
    let owner = Name::parse(&format!("_{}._{}", req.port, req.proto), Some(&name))
        .map_err(|e| InspectError::Argument(format!("--host {host}: the TLSA owner name is too long: {e}")))?;
    Ok(owner.to_lowercase().to_string())
}

fn notes(req: &TlsaRequest, chain: &Chain, index: usize) -> Vec<String> {
    let mut notes = Vec::new();
    let path = req.cert.display();
    if req.host.is_none() {
        notes.push(
            "owner name from the leaf certificate's first DNS name; use --host to name the MX host instead".into(),
        );
    }
    if req.port == 25 && matches!(req.usage, Tlsa::PKIX_TA | Tlsa::PKIX_EE) {
        notes.push(format!(
            "usage {} is unusable for SMTP (RFC 7672 §3.1.3); SMTP senders use 3 (DANE-EE) or 2 (DANE-TA)",
            req.usage
        ));
    }
    if req.usage == Tlsa::DANE_EE && req.selector == Tlsa::CERT {
        notes.push(
            "selector 0 pins the whole certificate, so the record changes at every renewal; 3 1 1 survives \
             renewals with the same key (RFC 7671 §5.1)"
                .into(),
        );
    }
    let is_ta = matches!(req.usage, Tlsa::DANE_TA | Tlsa::PKIX_TA);
    if !is_ta && index > 0 {
        notes.push(format!(
            "usage {} describes the server's own certificate, but certificate {index} of {path} is not the leaf",
            req.usage
        ));
    }
    if is_ta {
        let ca = x509_parser::parse_x509_certificate(&chain.certs[index])
            .ok()
            .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
            .unwrap_or(false);
        notes.push(format!(
            "trust anchor: certificate {index} of {path} ({}); the server must send it in its chain \
             (RFC 7672 §3.1.2)",
            chain.describe(index)
        ));
        if !ca {
            notes.push(format!(
                "certificate {index} is not a CA certificate; a DANE-TA record names an issuer: give the chain \
                 (leaf first, then its issuers) or --index"
            ));
        }
    }
    notes
}
