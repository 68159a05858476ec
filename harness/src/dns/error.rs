use thiserror::Error;

/// Why a world's DNS could not be built or served.
///
/// Everything a scenario author can get wrong is one of these (never a panic); the
/// variants carry the zone origin so the scenario loader can point at the right table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A zone origin is not a valid domain name.
    #[error("zone origin `{origin}` is not a valid domain name: {message}")]
    InvalidOrigin { origin: String, message: String },
    /// Two zones share an origin.
    #[error("zone `{origin}` is declared twice")]
    DuplicateZone { origin: String },
    /// The world has no `test.` zone, so there is nothing to anchor trust in.
    #[error("the world has no `test.` zone (it holds the trust anchor)")]
    MissingAnchorZone,
    /// A zone is not `test.` and no other zone of the world encloses it.
    #[error("zone `{origin}` has no enclosing zone in this world to delegate it (every zone must be below `test.`)")]
    NoParent { origin: String },
    /// One record line is malformed or not allowed.
    #[error("zone `{origin}`, record {index} `{line}`, column {column}: {message}")]
    Record {
        origin: String,
        /// 0-based index into `ZoneSpec::records`.
        index: usize,
        line: String,
        /// 0-based byte offset into the line (best effort).
        column: usize,
        message: String,
    },
    /// The records of a zone conflict with each other or with the generated records.
    #[error("zone `{origin}`: {message}")]
    Zone { origin: String, message: String },
    /// The zone key could not be loaded.
    #[error("zone `{origin}`: signing key: {message}")]
    Key { origin: String, message: String },
    /// Signing failed (an encoding problem inside hickory).
    #[error("zone `{origin}`: signing: {message}")]
    Signing { origin: String, message: String },
    /// The server could not be started or failed while running.
    #[error("dns server: {0}")]
    Server(String),
}

/// Why one record line was rejected, with the 0-based byte column of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("column {column}: {message}")]
pub struct RecordLineError {
    /// 0-based byte offset of the offending token in the line (best effort).
    pub column: usize,
    pub message: String,
}

impl RecordLineError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
        }
    }
}
