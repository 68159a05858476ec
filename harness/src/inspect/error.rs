//! The one error type of the inspect boundary (`danesim tlsa`, `danesim check`).
//!
//! Everything here is caused by what a user handed us (a path, a PEM file, a zone file, a
//! command-line value), never by a harness bug, so none of it panics. Each message names the
//! file and says what to do; the CLI prints it and exits 2.

use std::path::PathBuf;

/// Why `tlsa` or `check` could not run. A host whose certificate does not match its TLSA
/// records is no error: that is the check's finding (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A certificate file holds no usable certificate, or a broken one.
    #[error("{}: {message}", path.display())]
    Certificate { path: PathBuf, message: String },

    /// A command-line value is out of range or malformed.
    #[error("{0}")]
    Argument(String),

    /// A zone file entry is malformed; line and column are 1-based.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Zone {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    /// The zone file parses but cannot answer the question (no MX, the domain is elsewhere).
    #[error("{}: {message}", path.display())]
    ZoneContent { path: PathBuf, message: String },
}
