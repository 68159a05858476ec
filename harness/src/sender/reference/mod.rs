//! The built-in RFC 7672 reference sender.
//!
//! It is a real client: it knows a resolver address, the trust anchor, the world
//! clock and a way to dial (`SenderContext`), and learns everything else over DNS
//! and SMTP/TLS. It never reads the scenario, its expectation, the zones or an
//! endpoint's state; otherwise its verdicts would prove nothing.
//!
//! - `lookup`: validating DNS lookups (hickory's DNSSEC handle with the world's anchor), CNAME chains followed
//!   link by link with a fixed limit; anything neither validated nor a validated denial is a failed lookup.
//! - `key_rrsets`: the DNSKEY RRsets' self-signatures on an answer's chain, at the world clock (hickory skips them).
//! - `world_time`: hickory's runtime with the world clock, so RRSIG windows are judged by the scenario's time.
//! - `dname`: the stub's DNAME check, which hickory-resolver lacks (RFC 7672 §2.1.3).
//! - `smtp_client`: the SMTP/STARTTLS client.
//! - DANE certificate checks themselves live in [`crate::dane`], shared with `check`, `explain` and the witness.
//! - `deliver`: the decision procedure (MX → address → TLSA → per-host mode → STARTTLS → verify → fallback).
//! - `trace`: the numbered, RFC-cited decision trace.
//! - `exchange_online`: the `exchange-online` profile: 4.7.32x deferrals, 5.7.32x after 24 h.

pub mod deliver;
pub mod dname;
pub mod exchange_online;
pub mod key_rrsets;
pub mod lookup;
pub mod smtp_client;
pub mod trace;
pub mod world_time;

pub use deliver::{SenderContext, deliver, deliver_with, unusable_resolver};
