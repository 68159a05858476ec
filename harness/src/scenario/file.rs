//! The raw scenario file, exactly as TOML gives it.
//!
//! Nothing here is checked beyond its TOML type: `load` turns it into the checked
//! model (`model.rs`). Fields that later checks complain about keep their
//! `Spanned` wrapper so the complaint can point at file:line:col.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub id: Spanned<String>,
    pub title: String,
    /// Catalogue ids from docs/CONFORMANCE.md that this scenario encodes.
    #[serde(default)]
    pub covers: Vec<Spanned<String>>,
    /// The short "what this teaches" text.
    pub teaches: String,
    /// RFC references ("RFC 7672 §3.2").
    #[serde(default)]
    pub refs: Vec<String>,
    /// Addresses outside the documentation ranges that endpoints and A/AAAA records may use
    /// (`crate::address`): an explicit opt-in, never loopback, multicast and the like.
    #[serde(default)]
    pub allow_addresses: Vec<Spanned<String>>,
    /// The world clock (RFC 3339). Certificate validity is relative to it, and
    /// the reference sender judges dates with it.
    pub clock: Option<Spanned<String>>,
    #[serde(default)]
    pub message: RawMessage,
    #[serde(default)]
    pub cert: Vec<RawCert>,
    #[serde(default)]
    pub zone: Vec<RawZone>,
    #[serde(default)]
    pub endpoint: Vec<RawEndpoint>,
    #[serde(default)]
    pub fault: Vec<RawFault>,
    /// Several delivery attempts, with changes to the world between them.
    pub timeline: Option<Spanned<RawTimeline>>,
    #[serde(default)]
    pub step: Vec<Spanned<RawStep>>,
    /// `[route]`: how the sender reaches the next hop when not by MX.
    pub route: Option<RawRoute>,
    pub expect: RawExpect,
}

/// `[route]`: `relay = "[mx1.example.test]:2525"`, a route that skips MX resolution, as
/// Postfix `relayhost`/`transport_maps` and Exim `manualroute` give one (RFC 7672 §2.2.2).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub relay: Spanned<String>,
}

/// `[timeline]`: how many attempts, the simulated retry schedule, and what each attempt
/// must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeline {
    pub attempts: Spanned<u32>,
    /// Simulated waits before each retry ("15m", "1h"); the last repeats.
    #[serde(default)]
    pub retry: Vec<Spanned<String>>,
    /// One result (or list of alternatives) per attempt.
    pub expect: Vec<Spanned<OneOrMany>>,
    /// Optional: the host each attempt must deliver to ("" for none).
    #[serde(default)]
    pub via: Vec<Spanned<String>>,
    /// Optional lints run on the world before every attempt: "exo-inbound".
    #[serde(default)]
    pub lint: Vec<Spanned<String>>,
    /// `[[timeline.check]]`: what an earlier attempt must show besides its result and via.
    #[serde(default)]
    pub check: Vec<Spanned<RawAttemptCheck>>,
}

/// `[[timeline.check]]`: the keys of `[expect]` other than `result` and `via` (which the
/// timeline's `expect` and `via` give per attempt), for one attempt before the last.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttemptCheck {
    pub attempt: Spanned<u32>,
    #[serde(default)]
    pub hosts: std::collections::BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub invariants: Vec<Spanned<String>>,
    #[serde(default)]
    pub notes: Vec<Spanned<String>>,
    pub status: Option<Spanned<String>>,
    #[serde(default)]
    pub host_status: std::collections::BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub presented: std::collections::BTreeMap<String, Spanned<RawPresented>>,
}

/// `[[step]]`: changes applied when an event happens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// "start", "after attempt N" or "after delivery".
    pub when: Spanned<String>,
    /// Why, for the outcome and the explain trace.
    pub note: Option<String>,
    /// `{ endpoint = "192.0.2.10", cert = "NAME" }`: serve this leaf (and its issuers) from now on.
    pub renew: Option<RawRenew>,
    /// The zone `add`, `remove` and `replace` edit (default: the zone of the message domain).
    pub zone: Option<Spanned<String>>,
    #[serde(default)]
    pub add: Vec<Spanned<String>>,
    /// "owner TYPE" removes an RRset; a whole record line removes that record.
    #[serde(default)]
    pub remove: Vec<Spanned<String>>,
    /// Each line's RRset (owner and type) is replaced by the lines given for it.
    #[serde(default)]
    pub replace: Vec<Spanned<String>>,
    /// Faults added from now on.
    #[serde(default)]
    pub fault: Vec<RawFault>,
    /// Remove every fault in force.
    #[serde(default)]
    pub clear_faults: bool,
    /// Flush the sender's resolver cache.
    #[serde(default)]
    pub flush: bool,
    /// Let every TTL of the edited RRsets run out before the next attempt.
    #[serde(default)]
    pub expire: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRenew {
    pub endpoint: Spanned<String>,
    pub cert: Spanned<String>,
}

/// `[[fault]]`: a DNS fault scoped by query name and type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub qname: Spanned<String>,
    pub qtype: Option<Spanned<String>>,
    pub kind: Spanned<String>,
    pub first: Option<Spanned<u32>>,
    pub delay: Option<Spanned<String>>,
    /// "answer" (default) or "denial": what a signature fault breaks.
    pub on: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    pub name: Spanned<String>,
    /// "ed25519:<any label>" or "p256:<fixture number>".
    pub key: Spanned<String>,
    /// Name of the issuing certificate; absent means self-signed.
    pub issuer: Option<Spanned<String>>,
    #[serde(default)]
    pub ca: bool,
    pub path_len: Option<Spanned<u8>>,
    pub cn: Option<String>,
    #[serde(default)]
    pub sans: Vec<Spanned<String>>,
    /// RFC 3339 time, or an offset from the world clock such as "-30d" or "+365d".
    pub not_before: Option<Spanned<String>>,
    pub not_after: Option<Spanned<String>>,
    /// Name constraints (permitted DNS subtrees), CA certificates only.
    #[serde(default)]
    pub permitted_dns: Vec<Spanned<String>>,
    /// The serial number in hex (`"1001"`, `"0a:f3"`); absent: derived from the name.
    pub serial: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub origin: Spanned<String>,
    /// Unsigned zones are insecure delegations (no DS in the parent).
    #[serde(default = "yes")]
    pub signed: bool,
    pub ttl: Option<u32>,
    /// The DS the parent publishes: "secure" (default), "none", "mismatch",
    /// "unknown-algorithm", "unknown-digest".
    pub ds: Option<Spanned<String>>,
    /// Denial of existence of a signed zone: "nsec3" (default) or "nsec".
    pub denial: Option<Spanned<String>>,
    /// One RFC 1035 record per string. TLSA data may be `{cert:NAME}`.
    #[serde(default)]
    pub records: Vec<Spanned<String>>,
    /// `[[zone.signatures]]`: RRSIG validity windows other than the fixed one, for the whole
    /// zone or one RRset, relative to the world clock.
    #[serde(default)]
    pub signatures: Vec<Spanned<RawSignatures>>,
}

/// One RRSIG validity window (RFC 4034 §3.1.5).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignatures {
    /// "owner TYPE" of one RRset of the zone; absent: every RRSIG of the zone.
    pub rrset: Option<Spanned<String>>,
    /// The inception: an offset from the world clock ("-1d") or an RFC 3339 time.
    pub from: Option<Spanned<String>>,
    /// The expiration, written the same way.
    pub until: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// The address the zones publish for this host (e.g. 192.0.2.10).
    pub address: Spanned<String>,
    /// The host name it greets with.
    pub host: String,
    /// The TCP port it listens on (default 25).
    pub port: Option<Spanned<i64>>,
    /// Leaf certificate name; the served chain is the leaf and its issuers.
    pub cert: Option<Spanned<String>>,
    /// Explicit served chain (leaf first), overriding the default.
    pub chain: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub behaviour: Option<Spanned<String>>,
    /// Scripted replies by stage: greeting, ehlo, mail, rcpt, data, end-of-data.
    pub replies: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    /// `drop = "data"`: close the connection in the middle of the message.
    pub drop: Option<Spanned<String>>,
    /// With `drop = "data"`: close once this many octets of the message have arrived.
    pub drop_after_body_bytes: Option<Spanned<i64>>,
    /// `long_lines = true`: accept DATA lines over RFC 5321's 1000 octets instead of refusing the message.
    #[serde(default)]
    pub long_lines: bool,
    /// Waits before the reply, by stage: `delays = { greeting = "3s" }`.
    pub delays: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    /// `sni = { "mx1.example.test" = "mx1" }`: the leaf (and its issuers) served when the
    /// ClientHello names that server; `cert` stays the default.
    pub sni: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    /// An on-path attacker in front of the endpoint.
    pub attacker: Option<Spanned<RawAttacker>>,
    /// `[[endpoint.session]]`: the script of single connections, by ordinal.
    #[serde(default)]
    pub session: Vec<Spanned<RawSession>>,
}

/// One connection's script: `{ connection = 1, drop = "data", drop_after_body_bytes = 4096 }`.
/// The connection is an integer or "rest", so it is read as a value and checked by the loader.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub connection: Spanned<toml::Value>,
    pub replies: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    pub drop: Option<Spanned<String>>,
    pub drop_after_body_bytes: Option<Spanned<i64>>,
    pub delays: Option<std::collections::BTreeMap<String, Spanned<String>>>,
}

/// `attacker = { mode = "strip-starttls" }`, `{ mode = "inject", stage = "rcpt", reply = "550 ..." }`
/// or `{ mode = "intercept", cert = "NAME" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttacker {
    pub mode: Spanned<String>,
    /// inject: where the forged reply goes.
    pub stage: Option<Spanned<String>>,
    /// inject: the forged reply.
    pub reply: Option<Spanned<String>>,
    /// intercept: the leaf the interceptor presents (with its issuers).
    pub cert: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// One outcome code, or a list of alternatives where the RFC says MAY.
    pub result: Spanned<OneOrMany>,
    /// The host expected to accept the message.
    pub via: Option<Spanned<String>>,
    /// Per-host outcome codes (SKIP-pre, SKIP-ehlo, SKIP-tls, AUTH, TLS, OPP, UNUSED).
    #[serde(default)]
    pub hosts: std::collections::BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub invariants: Vec<Spanned<String>>,
    /// Security notes the sender must raise (e.g. "downgrade-path").
    #[serde(default)]
    pub notes: Vec<Spanned<String>>,
    /// The RFC 3463 status code of the sender's report: "4.7.5", "5.7.x".
    pub status: Option<Spanned<String>>,
    /// The status code the sender gives per host.
    #[serde(default)]
    pub host_status: std::collections::BTreeMap<String, Spanned<String>>,
    /// What the leaf presented at a host must be, per host.
    #[serde(default)]
    pub presented: std::collections::BTreeMap<String, Spanned<RawPresented>>,
}

/// `presented = { "mx1.example.test" = { serial = "1001", different_key_from = "old" } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPresented {
    pub serial: Option<Spanned<String>>,
    pub same_key_as: Option<Spanned<String>>,
    pub different_key_from: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}
