//! One running world: PKI issued, zones signed and served, endpoints listening,
//! and the address map that is the only way in.
//!
//! - `build`: turns a checked `Scenario` into a running `World` (in process, loopback only).
//! - `dialer`: the address map from world addresses to loopback listeners.
//! - `published`: the world's records as the harness knows them (the witness's view).
//! - `error`: `WorldError`, for harness faults while building or running a world, and
//!   `LabError`, for faults of namespace mode.
//! - `namespace`: the private network/mount/PID namespace real senders run in.
//! - `process`: short helper commands run to completion, with their words on failure.
//! - `unbound`: the real validating resolver in front of the world for real senders.
//! - `clock`: the world clock for the programs of namespace mode (libfaketime), so real
//!   senders and unbound judge certificates and RRSIGs at the scenario's time.
//! - `lab`: namespace + unbound + one world at a time (and its clock), for a whole run.
//! - `syslog`: a `/dev/log` socket of the namespace's own, for senders that log only to syslog.
//! - `workdir`: work directories that are new, private (0700) and never reused; `--workdir`
//!   made absolute and checked.

pub mod build;
pub mod clock;
pub mod dialer;
pub mod error;
pub mod lab;
pub mod namespace;
pub mod process;
pub mod published;
pub mod syslog;
pub mod unbound;
pub mod workdir;

pub use build::{
    NAMESPACE_DNS, Placement, Prepared, RunningEndpoint, SIGNATURE_EXPIRATION, SIGNATURE_INCEPTION, World, prepare,
    prepare_for,
};
pub use dialer::Dialer;
pub use error::{LabError, WorldError};
pub use published::{Link, Published, Resolved};
