//! The reference sender's validating stub resolver.
//!
//! A real client: it knows only a server address and a trust anchor, asks over UDP (TCP when
//! the answer is truncated), validates with hickory-resolver, and turns every outcome into
//! data the sender can reason about (RFC 7672 §2.1.1: secure, insecure, bogus and
//! indeterminate answers; §2.1.2: NODATA and NXDOMAIN versus failures such as SERVFAIL or a
//! timeout).

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::dnssec::{Algorithm, Proof, PublicKeyBuf, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{LowerName, Name, RData, Record, RecordType};
use rustls_pki_types::UnixTime;
use serde::{Serialize, Serializer};
use thiserror::Error;

use super::dname::{DnameCheck, Redirect};
use super::runtime::{self, WorldRuntime};

/// Where to ask and what to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    pub server: SocketAddr,
    /// "test."
    pub anchor_zone: String,
    /// DNSKEY flags of the anchor (must have the Zone Key bit, RFC 4034 §2.1.1).
    pub anchor_flags: u16,
    /// DNSSEC algorithm number (15 = Ed25519).
    pub anchor_algorithm: u8,
    pub anchor_public_key: Vec<u8>,
    /// Limit for one query/response exchange; each exchange is sent once (no retry).
    pub timeout: Duration,
    /// The world clock: RRSIG validity (RFC 4035 §5.3.1) is judged at this time, never at
    /// the host's (see `runtime`). [`Validator::set_now`] moves it.
    pub now: UnixTime,
}

/// Why a validator could not be set up (lookup failures are [`Answer`] data instead).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    #[error("invalid trust anchor: {0}")]
    Anchor(String),
    #[error("cannot build the resolver: {0}")]
    Resolver(String),
}

/// The record types the reference sender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RType {
    Mx,
    A,
    Aaaa,
    Tlsa,
}

impl RType {
    fn record_type(self) -> RecordType {
        match self {
            RType::Mx => RecordType::MX,
            RType::A => RecordType::A,
            RType::Aaaa => RecordType::AAAA,
            RType::Tlsa => RecordType::TLSA,
        }
    }
}

/// DNSSEC status of an answer (RFC 4033 §5, RFC 7672 §2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DnssecState {
    Secure,
    Insecure,
    Bogus,
    Indeterminate,
}

/// One lookup's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Lowercase FQDN with the trailing dot.
    pub qname: String,
    pub rtype: RType,
    pub kind: AnswerKind,
    /// `None` when there was no usable answer at all (timeout, SERVFAIL, REFUSED, error).
    pub state: Option<DnssecState>,
    /// One human line: why this state, for the decision trace.
    pub detail: String,
    /// CNAME links followed from `qname`, in order (RFC 7672 §2.2.1–2.2.3 decide with them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cnames: Vec<CnameLink>,
}

/// One CNAME record of a chain, with its own DNSSEC state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CnameLink {
    pub owner: String,
    pub target: String,
    pub state: DnssecState,
}

impl Answer {
    /// The fully CNAME-expanded name: the last target, or the query name.
    pub fn expanded_name(&self) -> &str {
        self.cnames.last().map_or(self.qname.as_str(), |c| c.target.as_str())
    }

    /// The state of the first CNAME response (RFC 7672 §2.2.2 "insecure CNAME").
    pub fn first_cname_state(&self) -> Option<DnssecState> {
        self.cnames.first().map(|c| c.state)
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AnswerKind {
    /// The records of the asked type, sorted.
    Records(Vec<Rdata>),
    /// The name exists but has no records of this type (RFC 2308 §2.2).
    NoData,
    /// The name does not exist (RFC 2308 §2.1).
    NxDomain,
    ServFail,
    Refused,
    Timeout,
    Error(String),
}

/// Record data of the asked types. Names are lowercase FQDNs with the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Rdata {
    Mx {
        preference: u16,
        exchange: String,
    },
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Tlsa {
        usage: u8,
        selector: u8,
        matching: u8,
        #[serde(serialize_with = "hex_upper")]
        data: Vec<u8>,
    },
}

fn hex_upper<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(data))
}

/// A validating stub resolver with one trust anchor and its own, fresh cache.
#[derive(Debug)]
pub struct Validator {
    resolver: Resolver<WorldRuntime>,
    /// The world time of the next lookups, in seconds since the Unix epoch.
    now: AtomicU64,
    /// Explains the synthesized CNAMEs hickory-resolver judges bogus (RFC 7672 §2.1.3).
    dname: DnameCheck,
    /// Outer limit of one lookup, validation queries included; a safety net only.
    guard: Duration,
}

/// Validation of one answer takes a few exchanges in sequence (the answer, then DNSKEY and DS
/// up the chain); the outer guard allows for that many timeouts.
const GUARD_EXCHANGES: u32 = 8;

impl Validator {
    pub fn new(cfg: &ValidatorConfig) -> Result<Validator, LookupError> {
        // RFC 4034 §2.1.1: only a zone key can anchor a chain; RFC 5011 §3: not a revoked one.
        if cfg.anchor_flags & 0x0100 == 0 || cfg.anchor_flags & 0x0080 != 0 {
            return Err(LookupError::Anchor(format!(
                "DNSKEY flags {} are not those of a usable zone key",
                cfg.anchor_flags
            )));
        }
        let algorithm = Algorithm::from_u8(cfg.anchor_algorithm);
        if !algorithm.is_supported() {
            return Err(LookupError::Anchor(format!(
                "algorithm {} is not supported",
                cfg.anchor_algorithm
            )));
        }
        let zone = fqdn(&cfg.anchor_zone);
        let zone =
            Name::from_ascii(&zone).map_err(|e| LookupError::Anchor(format!("zone `{}`: {e}", cfg.anchor_zone)))?;
        let mut anchors = TrustAnchors::empty();
        anchors.insert_with_name(
            &PublicKeyBuf::new(cfg.anchor_public_key.clone(), algorithm),
            LowerName::new(&zone),
        );

        let mut server = NameServerConfig::udp_and_tcp(cfg.server.ip());
        for connection in &mut server.connections {
            connection.port = cfg.server.port();
        }
        let config = ResolverConfig::from_parts(None, Vec::new(), vec![server.clone()]);
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.timeout;
        // One send per exchange: loopback loses nothing, and a dropped query (a scenario
        // fault) should cost one timeout, not three.
        opts.attempts = 0;
        opts.validate = true;
        opts.edns0 = true;
        // The world's names only; never the machine's hosts file.
        opts.use_hosts_file = ResolveHosts::Never;
        opts.num_concurrent_reqs = 1;
        // A truncated UDP answer is retried over TCP by the pool; other UDP failures are not.
        opts.try_tcp_on_error = false;
        let anchors = Arc::new(anchors);
        let dname = DnameCheck::new(server, &opts, anchors.clone())?;
        let resolver = Resolver::builder_with_config(config, WorldRuntime::default())
            .with_options(opts)
            .with_trust_anchor(anchors)
            .build()
            .map_err(|e| LookupError::Resolver(e.to_string()))?;
        Ok(Validator {
            resolver,
            now: AtomicU64::new(cfg.now.as_secs()),
            dname,
            guard: cfg.timeout.saturating_mul(GUARD_EXCHANGES),
        })
    }

    /// Look up `name`/`rtype` and validate. Never errors: failures are [`Answer`] data.
    pub async fn lookup(&self, name: &str, rtype: RType) -> Answer {
        let now = self.now.load(Ordering::Relaxed);
        runtime::at(now, self.lookup_at(name, rtype, 0)).await
    }

    /// The world time the following lookups validate at (a timeline's later attempt).
    pub fn set_now(&self, now: UnixTime) {
        self.now.store(now.as_secs(), Ordering::Relaxed);
    }

    /// `depth` counts the DNAMEs followed so far (each one is a further lookup).
    fn lookup_at<'a>(
        &'a self,
        name: &'a str,
        rtype: RType,
        depth: usize,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>> {
        Box::pin(async move {
            let qname = fqdn(name).to_ascii_lowercase();
            let answer = |kind: AnswerKind, state: Option<DnssecState>, detail: String| Answer {
                qname: qname.clone(),
                rtype,
                kind,
                state,
                detail,
                cnames: Vec::new(),
            };
            let parsed = match Name::from_ascii(&qname) {
                Ok(name) => name,
                Err(e) => {
                    return answer(
                        AnswerKind::Error(format!("invalid name: {e}")),
                        None,
                        format!("`{name}` is not a domain name"),
                    );
                }
            };
            let result =
                tokio::time::timeout(self.guard, self.resolver.lookup(parsed.clone(), rtype.record_type())).await;
            let (kind, state, detail, cnames) = match result {
                Err(_) => (
                    AnswerKind::Timeout,
                    None,
                    format!("no validated answer within {:?}", self.guard),
                    Vec::new(),
                ),
                Ok(Ok(lookup)) => {
                    let cnames = cname_chain(&qname, lookup.answers());
                    let (kind, mut state, detail) = from_records(lookup.answers(), rtype.record_type());
                    // RFC 7672 §2.2.3: the answer is only as secure as every link leading to it.
                    if let Some(s) = state {
                        let mut all: Vec<DnssecState> = cnames.iter().map(|c| c.state).collect();
                        all.push(s);
                        state = Some(weakest(&all));
                    }
                    (kind, state, detail, cnames)
                }
                Ok(Err(NetError::Dns(DnsError::DnssecBogus))) if depth < MAX_DNAMES => {
                    // Bogus as a whole may be a DNAME's unsigned CNAME (RFC 6672 §3.1).
                    let redirect = tokio::time::timeout(self.guard, self.dname.redirect(&parsed, rtype.record_type()))
                        .await
                        .ok()
                        .flatten();
                    if let Some(redirect) = redirect {
                        return self.through_dname(&qname, rtype, redirect, depth).await;
                    }
                    let (k, st, d) = from_error(NetError::Dns(DnsError::DnssecBogus));
                    (k, st, d, Vec::new())
                }
                Ok(Err(error)) => {
                    let (k, st, d) = from_error(error);
                    (k, st, d, Vec::new())
                }
            };
            let mut a = answer(kind, state, detail);
            a.cnames = cnames;
            a
        })
    }

    /// Continue a lookup at the DNAME's substituted name; the synthesized CNAME becomes the
    /// first link of the chain, with the DNAME's state (RFC 6672 §5.3.1).
    async fn through_dname(&self, qname: &str, rtype: RType, redirect: Redirect, depth: usize) -> Answer {
        let link = CnameLink {
            owner: qname.to_string(),
            target: redirect.substituted.to_string(),
            state: redirect.state,
        };
        let dname = format!("DNAME {} → {}", redirect.owner, redirect.target);
        if redirect.state == DnssecState::Bogus {
            return Answer {
                qname: qname.to_string(),
                rtype,
                kind: AnswerKind::Error("DNSSEC validation failed".into()),
                state: Some(DnssecState::Bogus),
                detail: format!("bogus: {dname}: {}", redirect.why),
                cnames: vec![link],
            };
        }
        let via = format!("via the {dname} ({}: {})", label(redirect.state), redirect.why);
        let rest = self.lookup_at(&link.target, rtype, depth + 1).await;
        let state = rest.state.map(|s| weakest(&[redirect.state, s]));
        let mut cnames = vec![link];
        cnames.extend(rest.cnames);
        let detail = format!("{}; {via}", rest.detail);
        Answer {
            qname: qname.to_string(),
            rtype,
            kind: rest.kind,
            state,
            detail,
            cnames,
        }
    }
}

/// DNAMEs followed in one lookup before giving up: a longer chain is a loop.
const MAX_DNAMES: usize = 8;

fn fqdn(name: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A positive answer: the records of the asked type and their proofs.
fn from_records(records: &[Record], rtype: RecordType) -> (AnswerKind, Option<DnssecState>, String) {
    let mut rdatas = Vec::new();
    let mut proofs = Vec::new();
    for record in records.iter().filter(|r| r.record_type() == rtype) {
        if let Some(rdata) = convert(&record.data) {
            rdatas.push(rdata);
            proofs.push(record.proof);
        }
    }
    if rdatas.is_empty() {
        // E.g. a CNAME whose target has no such records.
        let proofs: Vec<Proof> = records
            .iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .map(|r| r.proof)
            .collect();
        let state = state_of(&proofs);
        return (
            AnswerKind::NoData,
            Some(state),
            format!("{}: no {rtype} records in the answer", label(state)),
        );
    }
    rdatas.sort();
    let state = state_of(&proofs);
    let n = rdatas.len();
    let why = match state {
        DnssecState::Secure => "signatures validated up to the trust anchor",
        DnssecState::Insecure => "the zone is provably unsigned (no DS at its delegation)",
        DnssecState::Bogus => "a signature or the chain of trust failed validation",
        DnssecState::Indeterminate => "validation could not decide",
    };
    (
        AnswerKind::Records(rdatas),
        Some(state),
        format!("{}: {n} {rtype} record(s), {why}", label(state)),
    )
}

fn from_error(error: NetError) -> (AnswerKind, Option<DnssecState>, String) {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => from_no_records(&no_records),
        NetError::Dns(DnsError::Nsec { response, proof, .. }) => {
            let kind = negative_kind(response.metadata.response_code);
            let state = state_of(&[proof]);
            let detail = format!("{}: {} whose denial proof is {proof}", label(state), kind_name(&kind));
            (kind, Some(state), detail)
        }
        NetError::Dns(DnsError::DnssecBogus) => (
            AnswerKind::Error("DNSSEC validation failed".into()),
            Some(DnssecState::Bogus),
            "bogus: a signature or the chain of trust failed validation".into(),
        ),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            (AnswerKind::ServFail, None, "the server answered SERVFAIL".into())
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            (AnswerKind::Refused, None, "the server answered REFUSED".into())
        }
        NetError::Dns(DnsError::ResponseCode(code)) => (
            AnswerKind::Error(format!("server answered {code}")),
            None,
            format!("the server answered {code}"),
        ),
        NetError::Timeout => (AnswerKind::Timeout, None, "the server did not answer in time".into()),
        other => {
            let text = other.to_string();
            (AnswerKind::Error(text.clone()), None, format!("lookup failed: {text}"))
        }
    }
}

/// A validated NODATA/NXDOMAIN. It reached us only if the resolver proved it (secure denial)
/// or proved the zone unsigned (insecure); a Bogus proof would have been `DnssecBogus`.
fn from_no_records(no_records: &NoRecords) -> (AnswerKind, Option<DnssecState>, String) {
    let kind = negative_kind(no_records.response_code);
    let authorities: &[Record] = no_records.authorities.as_deref().unwrap_or(&[]);
    let denial: Vec<&Record> = authorities
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
        .collect();
    let (state, why) = if authorities.iter().any(|r| r.proof == Proof::Bogus) {
        (DnssecState::Bogus, "part of the denial failed validation")
    } else if !denial.is_empty() && denial.iter().all(|r| r.proof == Proof::Secure) {
        (DnssecState::Secure, "denial of existence validated")
    } else if denial.iter().any(|r| r.proof == Proof::Secure) {
        (DnssecState::Indeterminate, "the denial is only partly validated")
    } else {
        (DnssecState::Insecure, "the zone is provably unsigned")
    };
    let detail = format!("{}: {}, {why}", label(state), kind_name(&kind));
    (kind, Some(state), detail)
}

fn negative_kind(code: ResponseCode) -> AnswerKind {
    if code == ResponseCode::NXDomain {
        AnswerKind::NxDomain
    } else {
        AnswerKind::NoData
    }
}

fn kind_name(kind: &AnswerKind) -> &'static str {
    match kind {
        AnswerKind::NxDomain => "NXDOMAIN",
        AnswerKind::NoData => "NODATA",
        _ => "answer",
    }
}

/// The CNAME links from `qname` onwards, in chain order, each with the state of its proof.
fn cname_chain(qname: &str, records: &[Record]) -> Vec<CnameLink> {
    let mut out: Vec<CnameLink> = Vec::new();
    let mut owner = qname.to_string();
    // A chain longer than the records it could use is a loop; stop there.
    for _ in 0..records.len() {
        let next = records.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if r.name.to_lowercase().to_string() == owner => {
                Some((c.0.to_lowercase().to_string(), r.proof))
            }
            _ => None,
        });
        let Some((target, proof)) = next else { break };
        out.push(CnameLink {
            owner: owner.clone(),
            target: target.clone(),
            state: state_of(&[proof]),
        });
        owner = target;
    }
    out
}

/// The weakest of several states: Bogus, then Indeterminate, then Insecure, then Secure.
fn weakest(states: &[DnssecState]) -> DnssecState {
    let rank = |s: &DnssecState| match s {
        DnssecState::Bogus => 0,
        DnssecState::Indeterminate => 1,
        DnssecState::Insecure => 2,
        DnssecState::Secure => 3,
    };
    states
        .iter()
        .min_by_key(|s| rank(s))
        .copied()
        .unwrap_or(DnssecState::Indeterminate)
}

/// Combine per-record proofs: any Bogus wins, then all-Secure, then all-Insecure.
fn state_of(proofs: &[Proof]) -> DnssecState {
    if proofs.contains(&Proof::Bogus) {
        DnssecState::Bogus
    } else if !proofs.is_empty() && proofs.iter().all(|p| *p == Proof::Secure) {
        DnssecState::Secure
    } else if !proofs.is_empty() && proofs.iter().all(|p| *p == Proof::Insecure) {
        DnssecState::Insecure
    } else {
        DnssecState::Indeterminate
    }
}

fn label(state: DnssecState) -> &'static str {
    match state {
        DnssecState::Secure => "secure",
        DnssecState::Insecure => "insecure",
        DnssecState::Bogus => "bogus",
        DnssecState::Indeterminate => "indeterminate",
    }
}

fn convert(data: &RData) -> Option<Rdata> {
    Some(match data {
        RData::MX(mx) => Rdata::Mx {
            preference: mx.preference,
            exchange: mx.exchange.to_lowercase().to_string(),
        },
        RData::A(a) => Rdata::A(a.0),
        RData::AAAA(aaaa) => Rdata::Aaaa(aaaa.0),
        RData::TLSA(tlsa) => Rdata::Tlsa {
            usage: tlsa.cert_usage.into(),
            selector: tlsa.selector.into(),
            matching: tlsa.matching.into(),
            data: tlsa.cert_data.clone(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fixture::{self, Served, TLSA_HEX};
    use tokio::net::UdpSocket;

    /// Inside the sample's signing window (2023-11-14 .. 2030-03-17), whatever the host's date.
    fn sample_now() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000))
    }

    fn config(served: &Served) -> ValidatorConfig {
        let anchor = served.world.trust_anchor();
        ValidatorConfig {
            server: served.addr,
            anchor_zone: anchor.zone,
            anchor_flags: anchor.flags,
            anchor_algorithm: anchor.algorithm,
            anchor_public_key: anchor.public_key,
            timeout: Duration::from_secs(2),
            now: sample_now(),
        }
    }

    #[tokio::test]
    async fn secure_insecure_and_negative_answers() {
        let served = fixture::serve_sample().await;
        let v = Validator::new(&config(&served)).unwrap();

        let mx = v.lookup("Example.TEST", RType::Mx).await;
        assert_eq!(mx.qname, "example.test.");
        assert_eq!(mx.state, Some(DnssecState::Secure), "{mx:?}");
        assert_eq!(
            mx.kind,
            AnswerKind::Records(vec![
                Rdata::Mx {
                    preference: 10,
                    exchange: "mx1.example.test.".into()
                },
                Rdata::Mx {
                    preference: 20,
                    exchange: "mx2.example.test.".into()
                },
            ])
        );

        let a = v.lookup("mx1.example.test.", RType::A).await;
        assert_eq!(a.state, Some(DnssecState::Secure), "{a:?}");
        assert_eq!(
            a.kind,
            AnswerKind::Records(vec![Rdata::A(Ipv4Addr::new(192, 0, 2, 10))])
        );

        let tlsa = v.lookup("_25._tcp.mx1.example.test.", RType::Tlsa).await;
        assert_eq!(tlsa.state, Some(DnssecState::Secure), "{tlsa:?}");
        assert_eq!(
            tlsa.kind,
            AnswerKind::Records(vec![Rdata::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: hex::decode(TLSA_HEX).unwrap(),
            }])
        );

        // mx2 has no TLSA: `_tcp.mx2` does not exist, so this is a secure NXDOMAIN.
        let none = v.lookup("_25._tcp.mx2.example.test.", RType::Tlsa).await;
        assert_eq!(
            (none.kind.clone(), none.state),
            (AnswerKind::NxDomain, Some(DnssecState::Secure)),
            "{none:?}"
        );
        // mx1 exists but has no AAAA: secure NODATA.
        let nodata = v.lookup("mx1.example.test.", RType::Aaaa).await;
        assert_eq!(
            (nodata.kind.clone(), nodata.state),
            (AnswerKind::NoData, Some(DnssecState::Secure)),
            "{nodata:?}"
        );
        let nx = v.lookup("nope.example.test.", RType::A).await;
        assert_eq!(
            (nx.kind.clone(), nx.state),
            (AnswerKind::NxDomain, Some(DnssecState::Secure)),
            "{nx:?}"
        );

        // A wildcard expansion: its NSEC3 proof must survive the server's defect-2 stage.
        let wild = v.lookup("host.wild.example.test.", RType::A).await;
        assert_eq!(wild.state, Some(DnssecState::Secure), "{wild:?}");
        assert_eq!(
            wild.kind,
            AnswerKind::Records(vec![Rdata::A(Ipv4Addr::new(192, 0, 2, 99))])
        );

        let insecure = v.lookup("insecure.test.", RType::Mx).await;
        assert_eq!(insecure.state, Some(DnssecState::Insecure), "{insecure:?}");
        assert_eq!(
            insecure.kind,
            AnswerKind::Records(vec![Rdata::Mx {
                preference: 10,
                exchange: "mx.insecure.test.".into()
            }])
        );
        let insecure_nx = v.lookup("nope.insecure.test.", RType::A).await;
        assert_eq!(
            (insecure_nx.kind.clone(), insecure_nx.state),
            (AnswerKind::NxDomain, Some(DnssecState::Insecure)),
            "{insecure_nx:?}"
        );

        // Outside the world: the server refuses.
        let refused = v.lookup("example.org.", RType::Mx).await;
        assert_eq!(refused.state, None, "{refused:?}");
        assert!(
            matches!(refused.kind, AnswerKind::Refused | AnswerKind::Error(_)),
            "{refused:?}"
        );

        // The validator asked with DO=1 and the server saw the TLSA query.
        let log = served.log.entries();
        assert!(log.iter().all(|e| e.dnssec_ok), "{log:?}");
        assert!(
            log.iter()
                .any(|e| e.qname == "_25._tcp.mx1.example.test." && e.qtype == "TLSA"),
            "{log:?}"
        );
        served.stop().await.unwrap();
    }

    #[tokio::test]
    async fn truncated_answers_are_retried_over_tcp() {
        // ~100 A records and their RRSIG exceed the 1232-byte EDNS buffer (RFC 6891 §6.2.5).
        let mut spec = fixture::sample_spec();
        let example = spec.zones.iter_mut().find(|z| z.origin == "example.test").unwrap();
        for i in 1..=100 {
            example.records.push(format!("big A 198.51.100.{i}"));
        }
        let served = fixture::serve_spec(&spec).await;
        let v = Validator::new(&config(&served)).unwrap();
        let big = v.lookup("big.example.test", RType::A).await;
        assert_eq!(big.state, Some(DnssecState::Secure), "{big:?}");
        let AnswerKind::Records(records) = &big.kind else {
            panic!("{big:?}");
        };
        assert_eq!(records.len(), 100);
        let seen: Vec<bool> = served
            .log
            .entries()
            .iter()
            .filter(|e| e.qname == "big.example.test." && e.qtype == "A")
            .map(|e| e.tcp)
            .collect();
        assert_eq!(seen, [false, true], "UDP (truncated), then TCP");
        served.stop().await.unwrap();
    }

    #[tokio::test]
    async fn wrong_anchor_is_bogus() {
        let served = fixture::serve_sample().await;
        let mut cfg = config(&served);
        cfg.anchor_public_key[0] ^= 0x01;
        let v = Validator::new(&cfg).unwrap();
        let a = v.lookup("mx1.example.test.", RType::A).await;
        assert_eq!(a.state, Some(DnssecState::Bogus), "{a:?}");
        assert!(matches!(a.kind, AnswerKind::Error(_)), "{a:?}");
        served.stop().await.unwrap();
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        // A socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let cfg = ValidatorConfig {
            server: silent.local_addr().unwrap(),
            anchor_zone: "test".into(),
            anchor_flags: 257,
            anchor_algorithm: 15,
            anchor_public_key: vec![0; 32],
            timeout: Duration::from_millis(200),
            now: sample_now(),
        };
        let v = Validator::new(&cfg).unwrap();
        let a = v.lookup("mx1.example.test", RType::A).await;
        assert_eq!((a.kind.clone(), a.state), (AnswerKind::Timeout, None), "{a:?}");
    }

    #[test]
    fn anchor_is_checked() {
        let mut cfg = ValidatorConfig {
            server: "127.0.0.1:53".parse().unwrap(),
            anchor_zone: "test.".into(),
            anchor_flags: 256,
            anchor_algorithm: 15,
            anchor_public_key: vec![0; 32],
            timeout: Duration::from_secs(1),
            now: sample_now(),
        };
        assert!(Validator::new(&cfg).is_ok());
        cfg.anchor_flags = 1;
        assert!(matches!(Validator::new(&cfg), Err(LookupError::Anchor(_))));
        cfg.anchor_flags = 257;
        cfg.anchor_algorithm = 200;
        assert!(matches!(Validator::new(&cfg), Err(LookupError::Anchor(_))));
    }

    #[test]
    fn states_combine() {
        assert_eq!(state_of(&[Proof::Secure, Proof::Secure]), DnssecState::Secure);
        assert_eq!(state_of(&[Proof::Secure, Proof::Bogus]), DnssecState::Bogus);
        assert_eq!(state_of(&[Proof::Insecure]), DnssecState::Insecure);
        assert_eq!(state_of(&[Proof::Secure, Proof::Insecure]), DnssecState::Indeterminate);
        assert_eq!(state_of(&[]), DnssecState::Indeterminate);
    }
}
