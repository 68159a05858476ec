//! Teaching and operations commands that look at real data instead of a simulated world:
//! `danesim tlsa` (the TLSA record for a certificate file) and `danesim check` (a zone
//! file's MX and TLSA records against the certificates the MX hosts serve, offline).
//!
//! Nothing here is new DANE logic: TLSA data comes from [`crate::pki::Tlsa`], and whether a
//! chain is authenticated comes from the reference sender's
//! [`verify_chain`](crate::dane::verify_chain). This module reads the
//! user's files and explains.
//!
//! - `pem`: certificate chains from PEM files, leaf first.
//! - `tlsa_line`: `danesim tlsa`, one record line for a certificate.
//! - `zone`: RFC 1035 master files (signed exports included) with file:line:col errors.
//! - `exo_inbound`: Exchange Online's inbound-DANE prerequisites for an MX RRset (check, timelines).
//! - `check`: `danesim check`, the per-host review and its RFC 7671/7672 advice.
//! - `report`: the check's report (sections of `[ok]`/`[fail]`/`[warn]`/`[info]` lines).
//! - `error`: [`InspectError`], the one error type of this boundary (the CLI exits 2).

mod check;
mod error;
pub mod exo_inbound;
mod pem;
mod report;
mod tlsa_line;
mod zone;

pub use check::{CheckRequest, check, parse_now};
pub use error::InspectError;
pub use pem::{Chain, read_chain};
pub use report::{HostStatus, Line, Mark, Report, Section};
pub use tlsa_line::{TlsaLine, TlsaRequest, tlsa_line};
pub use zone::{Lookup, Rdata, Zone, ZoneRecord};
