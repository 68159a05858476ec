//! Faults while building or running a world. A DANE failure is never one of these:
//! it is outcome data.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WorldError {
    #[error("{scenario}: certificates: {source}")]
    Pki {
        scenario: String,
        #[source]
        source: crate::pki::PkiError,
    },
    #[error("{scenario}: zone {origin}: record `{record}`: {message}")]
    Record {
        scenario: String,
        origin: String,
        record: String,
        message: String,
    },
    #[error("{scenario}: zones: {source}")]
    Dns {
        scenario: String,
        #[source]
        source: crate::dns::DnsError,
    },
    #[error("cannot bind a loopback socket: {0}")]
    Bind(#[source] std::io::Error),
    #[error("{scenario}: endpoint {address}: {message}")]
    Endpoint {
        scenario: String,
        address: String,
        message: String,
    },
}
