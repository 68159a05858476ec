//! The impartial witness (DESIGN.md, "the receiving side is the impartial witness"): what the
//! endpoints, the attacker relays and the DNS server recorded, and what it proves, the same
//! for in-process and namespace runs.
//!
//! - `observe`: collects the records of one attempt (transcripts, attacker events, queries).
//! - `route`: which addresses a secure TLSA RRset committed to TLS, decided from the route
//!   (MX RRset, CNAME expansion, TLSA base-domain candidates; RFC 7672 §2.2.1–§2.2.3), never
//!   from a greeting name; where routes disagree it says so.
//! - `checks`: NOCLEAR, DANE-MATCH and REPORT on every run, and the scenario's explicit
//!   invariants; every accepted message of every connection (and of a retried message's
//!   earlier attempts) is judged.
//! - `presented`: the leaf each TLS handshake at a host presented, against `[expect]
//!   presented` (serial number, same or different key as a named certificate).
//! - `sessions`: a `[[endpoint.session]]` whose connection never came fails the run (over all
//!   of a timeline's attempts): a script that never ran tested nothing.
//! - `external`: a real sender's report built from what the endpoints saw, the sender's log
//!   adding only what the wire cannot show (DANE verification claims, its own reasons).

pub mod checks;
pub mod external;
pub mod observe;
pub mod presented;
pub mod probe;
pub mod route;
pub mod sessions;

pub use observe::{EndpointObservation, Observations, observe};
pub use route::{Commitment, Route, Routes};
