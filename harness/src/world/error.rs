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
    #[error("cannot bind {0}: {1} (in namespace mode the address must be on `lo`; is another world still running?)")]
    BindAt(std::net::SocketAddr, #[source] std::io::Error),
    #[error("sender `{sender}` is a real program and runs only in namespace mode (`runner::run_external`)")]
    NeedsNamespace { sender: String },
    #[error("{scenario}: endpoint {address}: {message}")]
    Endpoint {
        scenario: String,
        address: String,
        message: String,
    },
}

/// Faults of namespace mode: the namespace, the resolver and the real sender's processes.
/// Every message says what is missing and what to do next.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LabError {
    #[error(
        "{what} needs root (it creates a private network namespace and binds port 25 there); run it as root, e.g. `sudo danesim run --sender ...`. The reference sender needs no privileges"
    )]
    NotRoot { what: String },
    #[error(
        "`{tool}` was not found ({why}); install it with `{install}` (or run `ci/install-deps` as root, which installs everything the real senders need)"
    )]
    MissingTool { tool: String, why: String, install: String },
    #[error("cannot enter a private namespace with `unshare`: {0}")]
    Unshare(#[source] std::io::Error),
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "work directory {path} {why}; name a new directory with `--workdir`, or leave it out and danesim makes a fresh one"
    )]
    Workdir { path: std::path::PathBuf, why: String },
    #[error("{what} did not become ready within {seconds} s; see {log}")]
    NotReady { what: String, seconds: u64, log: String },
    #[error("{0}")]
    Config(String),
    #[error("{what} did not report a final status within {seconds} s; its log is {log}")]
    Timeout { what: String, seconds: u64, log: String },
    #[error(transparent)]
    World(#[from] WorldError),
}
