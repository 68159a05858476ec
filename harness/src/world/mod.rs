//! One running world: PKI issued, zones signed and served, endpoints listening,
//! and the address map that is the only way in.
//!
//! - `build`: turns a checked `Scenario` into a running `World` (in process, loopback only).
//! - `dialer`: the address map from world addresses to loopback listeners.
//! - `published`: the world's records as the harness knows them (the witness's view).
//! - `error`: `WorldError`, for harness faults while building or running a world.

pub mod build;
pub mod dialer;
pub mod error;
pub mod published;

pub use build::{Prepared, RunningEndpoint, SIGNATURE_EXPIRATION, SIGNATURE_INCEPTION, World, prepare};
pub use dialer::Dialer;
pub use error::WorldError;
pub use published::{Published, PublishedTlsa, Resolved};
