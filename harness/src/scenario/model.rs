//! The checked scenario model. Everything downstream (world, senders, verdicts)
//! takes this, never the raw file: once a `Scenario` exists, every name in it
//! refers to something declared and every value is in range.

use super::timeline::Timeline;
use crate::dns::{Denial, DsMode, FaultSpec};
use crate::outcome::status::StatusPattern;
use crate::pki::{CertSpec, Tlsa};
use crate::smtp::{Behaviour, InjectAt, Reply, Script, Sessions};
use crate::vocab::{HostCode, Invariant, ResultCode};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct Scenario {
    /// The path as given, for messages; never snapshotted.
    pub path: PathBuf,
    pub id: String,
    pub title: String,
    pub covers: Vec<String>,
    pub teaches: String,
    pub refs: Vec<String>,
    /// The world clock: certificate validity and the reference sender's "now".
    pub clock: OffsetDateTime,
    pub message: Message,
    pub certs: Vec<CertSpec>,
    /// `test.` first, then the declared zones in declaration order.
    pub zones: Vec<ZoneDecl>,
    pub endpoints: Vec<EndpointDecl>,
    /// DNS faults, in declaration order (the first matching one applies).
    pub faults: Vec<FaultSpec>,
    /// Several attempts with steps between them; `None` for a single attempt.
    pub timeline: Option<Timeline>,
    /// `[route] relay`: the sender relays to this host and port instead of looking up MX.
    pub relay: Option<Relay>,
    pub expect: Expectation,
}

/// A route that skips MX (RFC 7672 §2.2.2, "any administrator configured relay hostname,
/// not subject to MX resolution"): the host is the TLSA base domain candidate, and the TLSA
/// RRset is the one at `_<port>._tcp.<host>` (§2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// The relay host, as [`crate::vocab::fqdn`].
    pub host: String,
    pub port: u16,
}

impl Relay {
    /// The written form, as Postfix's `relayhost` takes it: `[mx1.example.test]:2525`.
    pub fn bracketed(&self) -> String {
        format!("[{}]:{}", self.host.trim_end_matches('.'), self.port)
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub from: String,
    pub to: String,
    /// The domain part of `to`: the next-hop domain of RFC 7672 §2.2.1.
    pub domain: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ZoneDecl {
    pub origin: String,
    pub signed: bool,
    /// The DS its parent publishes (signed zones below `test.`).
    pub ds: DsMode,
    /// NSEC3 (default) or NSEC denial of existence.
    pub denial: Denial,
    pub ttl: u32,
    pub records: Vec<RecordDecl>,
    /// RRSIG windows other than the fixed one (`[[zone.signatures]]`), resolved against the
    /// world clock.
    pub signatures: Vec<crate::dns::SignatureWindow>,
}

#[derive(Debug, Clone)]
pub struct RecordDecl {
    /// The record as written, possibly with one `{cert:NAME}` placeholder.
    pub template: String,
    /// Where the text sits in the scenario file (for errors found later).
    pub span: Range<usize>,
    pub cert_ref: Option<CertRef>,
    /// The line as the loader parsed it, when it is final (no placeholder): the zone checks
    /// and the build take it instead of parsing the line again.
    pub parsed: Option<crate::dns::ParsedLine>,
}

impl RecordDecl {
    /// The record line with `00` for the placeholder: right in every name and address, for
    /// reading the zone before certificates exist (the loader's routing).
    pub fn stand_in(&self) -> String {
        let mut line = self.template.clone();
        if let Some(r) = &self.cert_ref {
            line.replace_range(r.placeholder.clone(), "00");
        }
        line
    }
}

/// A TLSA record whose data the harness computes from a declared certificate.
#[derive(Debug, Clone)]
pub struct CertRef {
    pub cert: String,
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    /// Byte range of the `{cert:NAME}` placeholder inside `template`.
    pub placeholder: Range<usize>,
}

impl RecordDecl {
    /// The record line with the placeholder replaced by the computed TLSA data.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<Vec<u8>>) -> Result<String, String> {
        let Some(r) = &self.cert_ref else {
            return Ok(self.template.clone());
        };
        let der = lookup(&r.cert).ok_or_else(|| format!("certificate `{}` was not issued", r.cert))?;
        let tlsa = Tlsa::compute(r.usage, r.selector, r.matching, &der).map_err(|e| e.to_string())?;
        let hex = hex::encode_upper(&tlsa.data);
        let mut line = self.template.clone();
        line.replace_range(r.placeholder.clone(), &hex);
        Ok(line)
    }
}

/// An on-path attacker in front of an endpoint (RFC 7672 §1.3); the world turns the
/// certificate names into a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttackerDecl {
    /// Deletes STARTTLS from EHLO replies and refuses the command itself.
    StripStarttls,
    /// Forges the reply at one point of the cleartext dialogue.
    Inject { at: InjectAt, reply: Reply },
    /// Terminates TLS presenting this chain (leaf first) and relays to the endpoint.
    Intercept { chain: Vec<String> },
}

impl AttackerDecl {
    /// The modes scenarios can name, for error messages.
    pub const MODES: [&'static str; 3] = ["strip-starttls", "inject", "intercept"];

    pub fn name(&self) -> &'static str {
        match self {
            AttackerDecl::StripStarttls => "strip-starttls",
            AttackerDecl::Inject { .. } => "inject",
            AttackerDecl::Intercept { .. } => "intercept",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointDecl {
    pub address: IpAddr,
    /// The TCP port it listens on: 25 unless the scenario says otherwise.
    pub port: u16,
    /// Host name (FQDN) the endpoint greets with.
    pub host: String,
    /// Served chain, leaf first; empty when the endpoint has no certificate.
    pub chain: Vec<String>,
    /// What the endpoint itself does (DESIGN.md "Endpoints").
    pub behaviour: Behaviour,
    /// An attacker between the senders and this endpoint.
    pub attacker: Option<AttackerDecl>,
    /// Scripted SMTP replies and drops, for every connection `sessions` does not name.
    pub script: Script,
    /// `[[endpoint.session]]`: scripts of single connections, by ordinal.
    pub sessions: Sessions,
    /// Chains served instead of `chain` when the ClientHello names this server (SNI), in
    /// order; lowercase FQDNs without the trailing dot.
    pub sni_chains: Vec<(String, Vec<String>)>,
}

impl EndpointDecl {
    /// Where it listens, as people write it: the address alone on port 25, else
    /// `192.0.2.10:2525` (`[2001:db8::10]:2525`).
    pub fn shown_address(&self) -> String {
        if self.port == 25 {
            self.address.to_string()
        } else {
            std::net::SocketAddr::new(self.address, self.port).to_string()
        }
    }

    /// How the endpoint and anything in front of it behave, as observations show it:
    /// `normal`, `starttls-454`, `strip-starttls`, `intercept`, `rcpt-scripted behind inject`...
    pub fn label(&self) -> String {
        match (&self.attacker, self.behaviour) {
            (None, b) => b.name().to_string(),
            (Some(a), Behaviour::Normal) => a.name().to_string(),
            (Some(a), b) => format!("{} behind {}", b.name(), a.name()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Expectation {
    /// Any of these results passes (alternatives where the RFC says MAY).
    pub results: Vec<ResultCode>,
    pub via: Option<String>,
    pub hosts: BTreeMap<String, HostCode>,
    pub invariants: Vec<Invariant>,
    pub notes: Vec<String>,
    /// The RFC 3463 code of the sender's report (STATUS).
    pub status: Option<StatusPattern>,
    /// The code the sender gives per host (HOST-STATUS).
    pub host_status: BTreeMap<String, StatusPattern>,
    /// What the leaf presented at a host must be (PRESENTED).
    pub presented: BTreeMap<String, Presented>,
}

/// Facts about the leaf certificate the endpoints a host leads to presented in every TLS
/// handshake of the attempt: a serial number, and its key's relation to named certificates
/// (rollover cases: RFC 7671 §8.1, RFC 7672 §3.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// The serial's octets without leading zeros (RFC 5280 §4.1.2.2).
    pub serial: Option<Vec<u8>>,
    /// The leaf's SubjectPublicKeyInfo is this certificate's.
    pub same_key_as: Option<String>,
    /// The leaf's SubjectPublicKeyInfo is not this certificate's.
    pub different_key_from: Option<String>,
}
