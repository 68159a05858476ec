//! The DNS layer of a world: zone assembly from RFC 1035 record lines, DNSSEC signing
//! (Ed25519 CSK, NSEC3 with 0 iterations and no salt per RFC 9276, fixed signature times),
//! the trust anchor for `test.`, and the in-process authoritative server that serves every
//! zone of a world from one hickory `Catalog`, behind one request-handler wrapper that fixes
//! hickory's known defects and records every query.
//!
//! Owns: [`ZoneSpec`], [`WorldDnsSpec`], [`SignedWorld`], [`TrustAnchor`], [`QueryLog`],
//! [`serve`] and [`parse_record_line`]. Knows nothing of SMTP or certificates: TLSA data
//! arrives as record text.
//!
//! Map:
//! - `record`: one record line → one hickory `Record`, with best-effort error columns.
//! - `canonical`: canonical name order (RFC 4034 §6.1) as byte keys.
//! - `zone`: the specs and the assembly rules (apex SOA/NS, delegations, DS, checks).
//! - `sign`: key loading, the NSEC3 chain and RRSIGs with fixed inception/expiration.
//! - `rrsigs`: a zone's RRsets, indexed, with each RRSIG made on first use (answers, dumps).
//! - `world`: [`SignedWorld`]: the built zones, zone text, and zone handlers for serving.
//! - `anchor`: [`TrustAnchor`] in the formats delv, unbound and hickory want.
//! - `fault`: declared faults ([`FaultSpec`]) and the response stage that applies them.
//! - `dname`: DNAME redirection (RFC 6672), synthesized in front of the catalog.
//! - `handler`: the request-handler wrapper (routing, DNAME, hickory workarounds, fault hook, log).
//! - `server`: [`serve`], [`serve_switch`].
//! - `switch`: [`ZoneSwitch`]: the served zones, replaceable while serving (timeline steps).
//! - `log`: [`QueryLog`].

mod anchor;
mod canonical;
mod dname;
mod error;
mod fault;
mod handler;
mod log;
mod record;
mod rrsigs;
mod server;
mod sign;
mod switch;
mod wire;
mod world;
mod zone;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod interop_tests;

pub use anchor::TrustAnchor;
pub use error::{DnsError, RecordLineError};
pub use fault::{EXPIRED_WINDOW, FUTURE_WINDOW, FaultKind, FaultSpec};
pub use handler::{Disposition, QueryView, ResponseStage};
pub use log::{QueriesSince, QueryEntry, QueryLog};
pub use record::{ParsedLine, parse_record_line, record_address};
pub(crate) use record::{dname_substitute, dname_target};
pub use server::{serve, serve_switch};
pub use switch::ZoneSwitch;
pub use world::SignedWorld;
pub use zone::{Denial, DsMode, SignatureWindow, WorldDnsSpec, ZoneSpec, check_zones};
