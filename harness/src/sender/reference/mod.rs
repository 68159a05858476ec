//! The built-in RFC 7672 reference sender.
//!
//! It is a real client: it knows a resolver address, the trust anchor, the world
//! clock and a way to dial (`SenderContext`), and learns everything else over DNS
//! and SMTP/TLS. It never reads the scenario, its expectation, the zones or an
//! endpoint's state; otherwise its verdicts would prove nothing.
//!
//! - `lookup`: validating DNS lookups (hickory-resolver with the world's anchor).
//! - `runtime`: hickory's tokio runtime with the world clock, so RRSIGs are judged at the world's time.
//! - `dname`: the stub's DNAME check, which hickory-resolver lacks (RFC 7672 §2.1.3).
//! - `smtp_client`: the SMTP/STARTTLS client.
//! - `dane`: certificate checks against TLSA records (DANE-EE, DANE-TA).
//! - `deliver`: the decision procedure (MX → address → TLSA → per-host mode → STARTTLS → verify → fallback).
//! - `trace`: the numbered, RFC-cited decision trace.
//! - `exchange_online`: the `exchange-online` profile: 4.7.32x deferrals, 5.7.32x after 24 h.

pub mod dane;
pub mod deliver;
pub mod dname;
pub mod exchange_online;
pub mod lookup;
pub mod runtime;
pub mod smtp_client;
pub mod trace;

pub use deliver::{SenderContext, deliver, deliver_with, unusable_resolver};
