//! The one error type of the pki boundary.
//!
//! Everything here is caused by input (a scenario's certificate list, a key reference, a
//! TLSA text, bytes a peer sent), never by a harness bug, so none of it panics.

/// Why a key, certificate or TLSA record could not be produced or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A key reference is not `ed25519:<label>` or `p256:<n>`.
    #[error("bad key reference {input:?}: {reason}")]
    BadKeyRef { input: String, reason: String },

    /// A key reference is well-formed but names no usable key (e.g. `p256:9`).
    #[error("key {key}: {reason}")]
    BadKey { key: String, reason: String },

    /// Two certificate specs share a name.
    #[error("certificate name {0:?} is declared twice")]
    DuplicateName(String),

    /// A spec names an issuer that is not declared.
    #[error("certificate {cert:?} names issuer {issuer:?}, which is not declared")]
    UnknownIssuer { cert: String, issuer: String },

    /// A spec names an issuer that is declared without `ca = true`.
    #[error("certificate {cert:?} names issuer {issuer:?}, which is not a CA (set ca = true there)")]
    IssuerNotCa { cert: String, issuer: String },

    /// The issuer links loop (`a` issued by `b`, `b` issued by `a`, or a cert naming itself).
    #[error("issuer cycle: {}", .names.join(" -> "))]
    Cycle { names: Vec<String> },

    /// A spec is inconsistent on its own (e.g. a path length on a non-CA).
    #[error("certificate {cert:?}: {reason}")]
    InvalidSpec { cert: String, reason: String },

    /// A lookup by name found nothing.
    #[error("no certificate named {0:?}")]
    UnknownCert(String),

    /// Certificate bytes that do not parse as X.509 DER.
    #[error("certificate does not parse as X.509 DER: {0}")]
    BadCertificate(String),

    /// TLSA presentation text that does not parse.
    #[error("bad TLSA record {input:?}: {reason}")]
    BadTlsa { input: String, reason: String },

    /// A TLSA computation was asked for a selector or matching type that has no defined
    /// meaning (RFC 6698 §2.1.2, §2.1.3).
    #[error("cannot compute TLSA data for {what}")]
    UnsupportedTlsa { what: String },

    /// rcgen refused to build a certificate.
    #[error("certificate {cert:?}: rcgen: {source}")]
    Rcgen {
        cert: String,
        #[source]
        source: rcgen::Error,
    },
}
