//! What a sender says it did: the report every adapter produces, in the outcome vocabulary.

use crate::vocab::{HostCode, ResultCode};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderReport {
    pub result: ResultCode,
    /// The host that accepted the message.
    pub via: Option<String>,
    /// DSN-style status: "2.0.0 ...", "4.7.5 ...", "5.1.10 ...".
    pub status: String,
    /// Every MX host in the order tried, with what happened there.
    pub hosts: Vec<HostReport>,
    /// Security notes (e.g. "downgrade-path"), each with its reason.
    pub notes: Vec<Note>,
    /// Whether this sender has a way to raise notes at all (real MTAs log none); when it
    /// has not, expectations about notes are listed as unchecked, not failed.
    #[serde(skip)]
    pub reports_notes: bool,
    /// The step-by-step decision trace (reference sender) or log lines (external senders).
    pub trace: Vec<TraceStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    pub host: String,
    pub preference: u16,
    pub code: HostCode,
    /// The world address dialled, when one was.
    pub address: Option<String>,
    pub reason: String,
    /// The RFC 3463 status code the sender gives for this host (the reference sender's own,
    /// the server's for a refusal; for a real sender the code its log gives for the address).
    /// Not snapshotted: `reason` says it in words; HOST-STATUS checks it.
    #[serde(skip)]
    pub status: Option<String>,
    /// Why the host was not used, by category (reference sender only; not snapshotted:
    /// `reason` says it in words).
    #[serde(skip)]
    pub failure: Option<Failure>,
}

/// Categories of a failed secure delivery, named as RFC 8460 §4.3 (TLS-RPT) names its result
/// types, which is also how Exchange Online words its 4.7.321-4.7.325 deferrals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No STARTTLS, STARTTLS refused, or the handshake failed for another reason.
    StarttlsNotSupported,
    CertificateExpired,
    /// Authentic TLSA records, none matches.
    TlsaInvalid,
    /// A DNSSEC lookup failed (bogus or indeterminate).
    DnssecInvalid,
    /// DANE-TA: the certificate's names or constraints do not fit.
    CertificateHostMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub code: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    pub step: u32,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rfc: Option<String>,
    /// The data behind the step, for `danesim explain` (not snapshotted: `text` says it in
    /// words; the reference sender fills it, other senders leave it empty).
    #[serde(skip)]
    pub facts: Vec<crate::sender::reference::trace::Fact>,
}
