//! The checked scenario model. Everything downstream (world, senders, verdicts)
//! takes this, never the raw file: once a `Scenario` exists, every name in it
//! refers to something declared and every value is in range.

use crate::dns::{Denial, DsMode, FaultSpec};
use crate::pki::{CertSpec, Tlsa};
use crate::smtp::{Behaviour, Script};
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
    pub expect: Expectation,
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
}

#[derive(Debug, Clone)]
pub struct RecordDecl {
    /// The record as written, possibly with one `{cert:NAME}` placeholder.
    pub template: String,
    /// Where the text sits in the scenario file (for errors found later).
    pub span: Range<usize>,
    pub cert_ref: Option<CertRef>,
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

/// How an endpoint behaves (DESIGN.md "Endpoints"): the endpoint's own scripted behaviour,
/// or a well-behaved endpoint behind an on-path attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointBehaviour {
    /// The endpoint itself: `normal`, `no-starttls`, `starttls-454`, `starttls-abort`,
    /// `tls-alert`, `tls1.2-only`, `tls1.3-only`.
    Endpoint(Behaviour),
    /// An on-path attacker in front of a normal endpoint deletes STARTTLS (RFC 7672 §1.3).
    StripStarttls,
}

impl EndpointBehaviour {
    pub const NORMAL: EndpointBehaviour = EndpointBehaviour::Endpoint(Behaviour::Normal);

    /// Every accepted name, for error messages.
    pub fn names() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
        v.push("strip-starttls");
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Endpoint(b) => b.name(),
            Self::StripStarttls => "strip-starttls",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "strip-starttls" => Some(Self::StripStarttls),
            other => Behaviour::parse(other).map(Self::Endpoint),
        }
    }

    /// What the endpoint task itself does (an attacker sits in front of a normal one).
    pub fn endpoint(self) -> Behaviour {
        match self {
            Self::Endpoint(b) => b,
            Self::StripStarttls => Behaviour::Normal,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointDecl {
    pub address: IpAddr,
    /// Host name (FQDN) the endpoint greets with.
    pub host: String,
    /// Served chain, leaf first; empty when the endpoint has no certificate.
    pub chain: Vec<String>,
    pub behaviour: EndpointBehaviour,
    /// Scripted SMTP replies and drops.
    pub script: Script,
    /// Chains served instead of `chain` when the ClientHello names this server (SNI), in
    /// order; lowercase FQDNs without the trailing dot.
    pub sni_chains: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Expectation {
    /// Any of these results passes (alternatives where the RFC says MAY).
    pub results: Vec<ResultCode>,
    pub via: Option<String>,
    pub hosts: BTreeMap<String, HostCode>,
    pub invariants: Vec<Invariant>,
    pub notes: Vec<String>,
}
