//! Errors at the boundary of the SMTP layer (harness setup, not peer behaviour: what a peer does is recorded
//! in the transcript instead).

/// Something the harness (or a scenario's certificate material) got wrong when setting up an endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The certificate chain or key could not be turned into a TLS server configuration.
    #[error("TLS chain {label:?} is unusable: {reason}")]
    BadChain { label: String, reason: String },
    /// The chain has no certificate at all.
    #[error("TLS chain {label:?} has no certificates")]
    EmptyChain { label: String },
}
