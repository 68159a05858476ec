//! The reference sender's validating stub resolver.
//!
//! A real client: it knows only a server address and a trust anchor, asks over UDP (TCP when
//! the answer is truncated), validates with hickory-resolver, and turns every outcome into
//! data the sender can reason about (RFC 7672 §2.1.1: secure, insecure, bogus and
//! indeterminate answers; §2.1.2: NODATA and NXDOMAIN versus failures such as SERVFAIL or a
//! timeout).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::xfer::FirstAnswer;
use hickory_resolver::net::{DnsError, DnsHandle, NetError};
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::dnssec::{Algorithm, Proof, PublicKeyBuf, TrustAnchors};
use hickory_resolver::proto::op::{DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_resolver::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use serde::{Serialize, Serializer};
use thiserror::Error;

use super::dname::explain;
use super::world_time::{WorldRuntime, with_clock};

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
    /// The world clock (Unix seconds): RRSIG validity is judged by it, never by the host's.
    pub now: u64,
    /// Tests only: ask over UDP alone, so a truncated answer is never retried over TCP
    /// (the retry RFC 7766 §5 requires), so that a test can watch `TCP` catch it.
    #[cfg(test)]
    pub udp_only: bool,
    /// Tests only: cache an answer for its TTL even past its signatures' expiration (the
    /// cap RFC 4035 §5.3.3 requires), so that a test can watch a timeline catch it.
    #[cfg(test)]
    pub ignore_signature_expiry: bool,
    /// Tests only: trust hickory's DNSKEY verdict alone (`key_rrsets` skipped), so that a
    /// test can watch an expired key-set signature pass as secure.
    #[cfg(test)]
    pub skip_key_rrsets: bool,
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
///
/// It follows CNAME chains itself, query by query, over hickory's DNSSEC handle (which
/// validates each response and keeps a proof per record) instead of hickory-resolver's
/// caching client: that client gives up on long chains with an empty answer that carries
/// no proof, which the old code read as "provably insecure" (RFC 7672 §2.1.3 says such a
/// lookup MUST be treated as failed), and how far it got varied from run to run. Here the
/// chain limit is ours, counted in links, and the same world gives the same answer.
pub struct Validator {
    handle: DnssecDnsHandle<NameServerPool<WorldRuntime>>,
    /// The same server without validation: for the DNSKEY self-signature check hickory
    /// skips (`key_rrsets`).
    raw: NameServerPool<WorldRuntime>,
    /// The trust anchor's zone.
    anchor: Name,
    options: DnsRequestOptions,
    /// Outer limit of one query/response exchange, validation queries included; a safety net only.
    guard: Duration,
    /// The world clock (Unix seconds) that RRSIG validity windows are judged by.
    now: AtomicU64,
    /// Validated answers until the world second their TTL runs out (RFC 2308 §5, RFC 4035
    /// §4.5): what a timeline's later attempt may still find (TTL-01). Failures are not kept.
    /// Expiry is judged by the world clock, as unbound's is (it runs on the world clock too),
    /// so a timeline moves every sender's caches the same way and nothing sleeps.
    cache: Mutex<BTreeMap<(String, RType), (u64, Answer)>>,
    #[cfg(test)]
    ignore_signature_expiry: bool,
    #[cfg(test)]
    skip_key_rrsets: bool,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

/// Validation of one answer takes a few exchanges in sequence (the answer, then DNSKEY and DS
/// up the chain); the outer guard allows for that many timeouts.
const GUARD_EXCHANGES: u32 = 8;

/// CNAME links (DNAME substitutions included) one lookup follows before it fails. RFC 7672
/// §2.1.3 leaves the number to the resolver; a longer chain is treated as a failed lookup,
/// never as "no records". 6 stays below where unbound 1.17 (the real senders' resolver here)
/// starts to give up, so the limit + 1 scenario tells the reference's limit apart from unbound's.
pub const MAX_CHAIN_LINKS: usize = 6;

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

        #[cfg(not(test))]
        let mut server = NameServerConfig::udp_and_tcp(cfg.server.ip());
        #[cfg(test)]
        let mut server = match cfg.udp_only {
            true => NameServerConfig::udp(cfg.server.ip()),
            false => NameServerConfig::udp_and_tcp(cfg.server.ip()),
        };
        for connection in &mut server.connections {
            connection.port = cfg.server.port();
        }
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.timeout;
        // One send per exchange: loopback loses nothing, and a dropped query (a scenario
        // fault) should cost one timeout, not three.
        opts.attempts = 0;
        opts.edns0 = true;
        opts.num_concurrent_reqs = 1;
        // A truncated UDP answer is retried over TCP by the pool; other UDP failures are not.
        opts.try_tcp_on_error = false;
        let tls = TlsConfig::new().map_err(|e| LookupError::Resolver(e.to_string()))?;
        let context = Arc::new(PoolContext::new(opts.clone(), tls));
        let pool = NameServerPool::from_config([server], context, WorldRuntime::default());
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_set_dnssec_ok = true;
        options.recursion_desired = opts.recursion_desired;
        Ok(Validator {
            // hickory's own validation cache keeps a proof for the RRset's TTL by `Instant`:
            // past the RRSIG's expiration by the world clock (a timeline's retry hours on
            // would reuse it), and RFC 4035 §5.3.3 forbids that. Capacity 0 turns it off;
            // `cache` below, on the world clock, is the one cache.
            handle: DnssecDnsHandle::with_trust_anchor(pool.clone(), Arc::new(anchors)).validation_cache_size(0),
            raw: pool,
            anchor: zone.to_lowercase(),
            options,
            guard: cfg.timeout.saturating_mul(GUARD_EXCHANGES),
            now: AtomicU64::new(cfg.now),
            cache: Mutex::new(BTreeMap::new()),
            #[cfg(test)]
            ignore_signature_expiry: cfg.ignore_signature_expiry,
            #[cfg(test)]
            skip_key_rrsets: cfg.skip_key_rrsets,
        })
    }

    /// Moves the world clock (a timeline's later attempt).
    pub fn set_clock(&self, now: u64) {
        self.now.store(now, Ordering::Relaxed);
    }

    /// Look up `name`/`rtype` and validate. Never errors: failures are [`Answer`] data.
    pub async fn lookup(&self, name: &str, rtype: RType) -> Answer {
        let qname = fqdn(name).to_ascii_lowercase();
        let key = (qname.clone(), rtype);
        if let Some(answer) = self.cached(&key) {
            return answer;
        }
        let now = self.now.load(Ordering::Relaxed);
        let (answer, ttl) = with_clock(now, self.chase(&qname, rtype, now)).await;
        if let Some(ttl) = ttl {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(key, (now.saturating_add(ttl.as_secs()), answer.clone()));
        }
        answer
    }

    fn cached(&self, key: &(String, RType)) -> Option<Answer> {
        let now = self.now.load(Ordering::Relaxed);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(key) {
            // An entry is gone in the second its TTL runs out (as in unbound).
            Some((until, a)) if now < *until => Some(a.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    /// RFC 4035 §5.2: the DNSKEY RRsets behind a response hickory calls secure must carry a
    /// valid self-signature at the world clock, which hickory does not check
    /// (`key_rrsets`). A failure is a bogus answer; a pass caps the cache at the earliest
    /// such signature's expiration (RFC 4035 §5.3.3).
    async fn check_key_rrsets(
        &self,
        response: &DnsResponse,
        chain: &mut Chain,
        now: u64,
    ) -> Result<(), (Answer, Option<Duration>)> {
        let secure = response
            .answers
            .iter()
            .chain(&response.authorities)
            .any(|r| r.proof == Proof::Secure);
        #[cfg(test)]
        let secure = secure && !self.skip_key_rrsets;
        if !secure {
            return Ok(());
        }
        let signers = super::key_rrsets::signers(response);
        match super::key_rrsets::check(&self.raw, self.options, self.guard, signers, &self.anchor, now).await {
            Ok(Some(expiration)) => {
                let left = u64::from(expiration).saturating_sub(now);
                chain.keep_ttl(u32::try_from(left).unwrap_or(u32::MAX));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(why) => Err(chain.fail(
                AnswerKind::Error("DNSSEC validation failed".into()),
                Some(DnssecState::Bogus),
                format!("bogus: {why}"),
            )),
        }
    }

    /// One exchange through the DNSSEC handle, with the outer guard.
    async fn exchange(&self, name: &Name, rtype: RType) -> Option<Result<DnsResponse, NetError>> {
        let query = Query::query(name.clone(), rtype.record_type());
        tokio::time::timeout(self.guard, self.handle.lookup(query, self.options).first_answer())
            .await
            .ok()
    }

    /// Follows `qname` to its records or to a validated denial, link by link. Returns the
    /// answer and, for a validated one, how long it may be cached.
    async fn chase(&self, qname: &str, rtype: RType, now: u64) -> (Answer, Option<Duration>) {
        let mut chain = Chain::new(qname, rtype);
        #[cfg(test)]
        {
            chain.ignore_signature_expiry = self.ignore_signature_expiry;
        }
        let mut current = match Name::from_ascii(qname) {
            Ok(name) => name,
            Err(e) => {
                return chain.fail(
                    AnswerKind::Error(format!("invalid name: {e}")),
                    None,
                    format!("`{qname}` is not a domain name"),
                );
            }
        };
        loop {
            let response = match self.exchange(&current, rtype).await {
                None => {
                    return chain.fail(
                        AnswerKind::Timeout,
                        None,
                        format!("no validated answer within {:?}", self.guard),
                    );
                }
                Some(Ok(response)) => {
                    chain.keep_signature_lifetimes(&response, now);
                    if let Err(bogus) = self.check_key_rrsets(&response, &mut chain, now).await {
                        return bogus;
                    }
                    response
                }
                // A denial that does not prove the query name may still carry a chain whose
                // end is denied elsewhere: follow the links and ask the end itself.
                Some(Err(NetError::Dns(DnsError::Nsec { response, proof, .. }))) => {
                    chain.keep_signature_lifetimes(&response, now);
                    match chain.follow(&current, &response.answers, rtype) {
                        Step::Next(next) => {
                            current = next;
                            continue;
                        }
                        Step::Done(done) => return done,
                        Step::Stuck => {
                            let (kind, state, detail) = unproven_denial(&response, proof);
                            return chain.fail(kind, state, detail);
                        }
                    }
                }
                Some(Err(error)) => {
                    let (kind, state, detail) = from_error(error);
                    return chain.fail(kind, state, detail);
                }
            };
            match chain.follow(&current, &response.answers, rtype) {
                Step::Next(next) => current = next,
                Step::Done(done) => return done,
                Step::Stuck => return chain.denial(&response),
            }
        }
    }
}

/// What one response did for the chain.
enum Step {
    /// The response ends at this new name without its records: ask it next.
    Next(Name),
    /// The lookup is decided (records, or a failure on the way).
    Done((Answer, Option<Duration>)),
    /// Nothing at the asked name: the response is a denial for it.
    Stuck,
}

/// The links of one lookup so far.
struct Chain {
    qname: String,
    rtype: RType,
    links: Vec<CnameLink>,
    /// Every name the chain has reached: a repeat is a loop.
    seen: BTreeSet<String>,
    /// For the detail line: the DNAMEs that synthesized links.
    dnames: Vec<String>,
    /// Smallest TTL of every record used (RFC 2181 §5.2: a chain lives as long as its shortest link).
    ttl: u32,
    /// Smallest original TTL of the RRSIGs seen: the TTL as published, before any cap.
    signed_ttl: u32,
    /// Tests only: cache for `signed_ttl`, as a resolver that ignores RFC 4035 §5.3.3 would.
    #[cfg(test)]
    ignore_signature_expiry: bool,
}

impl Chain {
    fn new(qname: &str, rtype: RType) -> Chain {
        Chain {
            qname: qname.to_string(),
            rtype,
            links: Vec::new(),
            seen: BTreeSet::from([qname.to_string()]),
            dnames: Vec::new(),
            ttl: u32::MAX,
            signed_ttl: u32::MAX,
            #[cfg(test)]
            ignore_signature_expiry: false,
        }
    }

    fn answer(&self, kind: AnswerKind, state: Option<DnssecState>, detail: String) -> Answer {
        Answer {
            qname: self.qname.clone(),
            rtype: self.rtype,
            kind,
            state,
            detail,
            cnames: self.links.clone(),
        }
    }

    /// A failed lookup: never cached (a transient failure is asked again, TTL-03).
    fn fail(&self, kind: AnswerKind, state: Option<DnssecState>, detail: String) -> (Answer, Option<Duration>) {
        let detail = self.with_route(detail);
        (self.answer(kind, state, detail), None)
    }

    /// A validated answer, cacheable for the chain's smallest TTL.
    fn done(&self, kind: AnswerKind, state: DnssecState, detail: String) -> (Answer, Option<Duration>) {
        // RFC 7672 §2.2.3: an answer is only as secure as every link leading to it.
        let mut all: Vec<DnssecState> = self.links.iter().map(|c| c.state).collect();
        all.push(state);
        let state = weakest(&all);
        let detail = self.with_route(detail);
        let ttl = self.ttl;
        #[cfg(test)]
        let ttl = match self.ignore_signature_expiry && self.signed_ttl != u32::MAX {
            true => self.signed_ttl,
            false => ttl,
        };
        let ttl = (ttl != u32::MAX).then(|| Duration::from_secs(ttl.into()));
        (self.answer(kind, Some(state), detail), ttl)
    }

    fn with_route(&self, detail: String) -> String {
        let mut detail = detail;
        if !self.links.is_empty() {
            let weakest_link = weakest(&self.links.iter().map(|c| c.state).collect::<Vec<_>>());
            detail = format!(
                "{detail}; reached through {} CNAME link(s), the weakest {}",
                self.links.len(),
                label(weakest_link)
            );
        }
        for d in &self.dnames {
            detail = format!("{detail}; via the {d}");
        }
        detail
    }

    fn keep_ttl(&mut self, ttl: u32) {
        self.ttl = self.ttl.min(ttl);
    }

    /// RFC 4035 §5.3.3: a validated RRset may be cached no longer than its RRSIG's original
    /// TTL, nor past the RRSIG's expiration. Every RRSIG of the response counts (those over
    /// the answer, the CNAME links and the denial proof): an entry that goes early is asked
    /// again, one kept too long would outlive its proof. `now` is the world clock. (hickory
    /// lowers the TTL of the records it validates the same way; this holds whatever it does.)
    fn keep_signature_lifetimes(&mut self, response: &DnsResponse, now: u64) {
        for r in response.answers.iter().chain(&response.authorities) {
            if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data {
                let sig = sig.input();
                let left = u64::from(sig.sig_expiration.get()).saturating_sub(now);
                self.signed_ttl = self.signed_ttl.min(sig.original_ttl);
                self.keep_ttl(sig.original_ttl.min(u32::try_from(left).unwrap_or(u32::MAX)));
            }
        }
    }

    /// Walks the response's answer section from `from`: records of the asked type end the
    /// lookup, CNAMEs (or a DNAME's synthesized CNAME) extend the chain.
    fn follow(&mut self, from: &Name, answers: &[Record], rtype: RType) -> Step {
        let mut name = from.to_lowercase();
        loop {
            let here: Vec<&Record> = answers
                .iter()
                .filter(|r| r.name.to_lowercase() == name && r.record_type() == rtype.record_type())
                .collect();
            if !here.is_empty() {
                return Step::Done(self.records(&here));
            }
            let Some(cname) = answers
                .iter()
                .find(|r| r.name.to_lowercase() == name && r.record_type() == RecordType::CNAME)
            else {
                break;
            };
            let RData::CNAME(target) = &cname.data else { break };
            let target = target.0.to_lowercase();
            // RFC 6672 §5.3.1: a synthesized CNAME is unsigned; it is as secure as the DNAME
            // that explains it (and a forgery when it does not match the DNAME).
            let (state, dname) = match (cname.proof, explain(&name, answers)) {
                (Proof::Secure, _) => (DnssecState::Secure, None),
                (_, Some(redirect)) if redirect.substituted == target => (redirect.state, Some(redirect)),
                (_, Some(redirect)) => (DnssecState::Bogus, Some(redirect)),
                (proof, None) => (state_of(&[proof]), None),
            };
            self.keep_ttl(cname.ttl);
            self.links.push(CnameLink {
                owner: name.to_string(),
                target: target.to_string(),
                state,
            });
            if let Some(r) = &dname {
                self.dnames.push(format!(
                    "DNAME {} → {} ({}: {})",
                    r.owner,
                    r.target,
                    label(r.state),
                    if r.substituted == target {
                        r.why
                    } else {
                        "the CNAME in the answer is not the one the DNAME synthesizes"
                    }
                ));
            }
            if matches!(state, DnssecState::Bogus | DnssecState::Indeterminate) {
                let why = dname.map_or("its signature failed validation", |_| "the DNAME does not validate it");
                return Step::Done(self.fail(
                    AnswerKind::Error("DNSSEC validation failed".into()),
                    Some(state),
                    format!("{}: the CNAME {name} → {target}: {why}", label(state)),
                ));
            }
            if self.links.len() > MAX_CHAIN_LINKS {
                return Step::Done(self.fail(
                    AnswerKind::Error(format!("CNAME chain longer than {MAX_CHAIN_LINKS} links")),
                    None,
                    format!(
                        "the alias chain goes on past {MAX_CHAIN_LINKS} links, the limit of this sender: a failed \
                         lookup, not a missing record (RFC 7672 §2.1.3)"
                    ),
                ));
            }
            if !self.seen.insert(target.to_string()) {
                return Step::Done(self.fail(
                    AnswerKind::Error("CNAME loop".into()),
                    None,
                    format!("the alias chain loops back to {target}: a failed lookup (RFC 7672 §2.1.3)"),
                ));
            }
            name = target;
        }
        if name == from.to_lowercase() {
            Step::Stuck
        } else {
            Step::Next(name)
        }
    }

    /// A positive answer: the records of the asked type and their proofs.
    fn records(&mut self, here: &[&Record]) -> (Answer, Option<Duration>) {
        let rtype = self.rtype.record_type();
        let mut rdatas = Vec::new();
        let mut proofs = Vec::new();
        for record in here {
            self.keep_ttl(record.ttl);
            if let Some(rdata) = convert(&record.data) {
                rdatas.push(rdata);
                proofs.push(record.proof);
            }
        }
        rdatas.sort();
        rdatas.dedup();
        let state = state_of(&proofs);
        let n = rdatas.len();
        let why = match state {
            DnssecState::Secure => "signatures validated up to the trust anchor",
            DnssecState::Insecure => "the zone is provably unsigned (no DS at its delegation)",
            DnssecState::Bogus => "a signature or the chain of trust failed validation",
            DnssecState::Indeterminate => "validation could not decide",
        };
        let detail = format!("{}: {n} {rtype} record(s), {why}", label(state));
        if matches!(state, DnssecState::Bogus | DnssecState::Indeterminate) {
            // RFC 7672 §2.1.1: records that do not validate are no answer at all.
            return self.fail(
                AnswerKind::Error("DNSSEC validation failed".into()),
                Some(state),
                format!("{}: a signature or the chain of trust failed validation", label(state)),
            );
        }
        self.done(AnswerKind::Records(rdatas), state, detail)
    }

    /// A response with nothing at the asked name: NODATA or NXDOMAIN, secure only with a
    /// validated NSEC/NSEC3 proof, insecure only with a proof that the zone is unsigned.
    /// Anything else is neither, and RFC 7672 §2.1.3 makes it a failed lookup.
    fn denial(&mut self, response: &DnsResponse) -> (Answer, Option<Duration>) {
        let code = response.metadata.response_code;
        if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
            let (kind, state, detail) = from_error(NetError::Dns(DnsError::ResponseCode(code)));
            return self.fail(kind, state, detail);
        }
        let kind = negative_kind(code);
        let authorities = &response.authorities;
        let denial: Vec<&Record> = authorities
            .iter()
            .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
            .collect();
        let proofs: Vec<Proof> = authorities
            .iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .map(|r| r.proof)
            .collect();
        for r in authorities.iter().filter(|r| r.record_type() == RecordType::SOA) {
            // RFC 2308 §5: a negative answer lives as long as the SOA's TTL and minimum allow.
            let minimum = match &r.data {
                RData::SOA(soa) => soa.minimum,
                _ => r.ttl,
            };
            self.keep_ttl(r.ttl.min(minimum));
        }
        let (state, why) = if proofs.contains(&Proof::Bogus) {
            (Some(DnssecState::Bogus), "part of the denial failed validation")
        } else if !denial.is_empty() && denial.iter().all(|r| r.proof == Proof::Secure) {
            (Some(DnssecState::Secure), "denial of existence validated")
        } else if !proofs.is_empty() && proofs.iter().all(|p| *p == Proof::Insecure) {
            (Some(DnssecState::Insecure), "the zone is provably unsigned")
        } else {
            (None, "")
        };
        match state {
            Some(s @ (DnssecState::Secure | DnssecState::Insecure)) => {
                let detail = format!("{}: {}, {why}", label(s), kind_name(&kind));
                self.done(kind, s, detail)
            }
            Some(s) => {
                let detail = format!("{}: {}, {why}", label(s), kind_name(&kind));
                self.fail(AnswerKind::Error("DNSSEC validation failed".into()), Some(s), detail)
            }
            None => self.fail(
                AnswerKind::Error("no validated answer and no validated denial".into()),
                Some(DnssecState::Indeterminate),
                format!(
                    "indeterminate: {} without a validated denial or a proof that the zone is unsigned: a failed \
                     lookup (RFC 7672 §2.1.3)",
                    kind_name(&kind)
                ),
            ),
        }
    }
}

fn fqdn(name: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A NODATA/NXDOMAIN whose NSEC/NSEC3 proof did not validate (the DNSSEC handle's verdict).
fn unproven_denial(response: &DnsResponse, proof: Proof) -> (AnswerKind, Option<DnssecState>, String) {
    let kind = negative_kind(response.metadata.response_code);
    let state = state_of(&[proof]);
    let detail = format!("{}: {} whose denial proof is {proof}", label(state), kind_name(&kind));
    (kind, Some(state), detail)
}

fn from_error(error: NetError) -> (AnswerKind, Option<DnssecState>, String) {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => {
            // The DNSSEC handle turns these into responses; one that still arrives carries no
            // proof the harness can check, so it is no answer (RFC 7672 §2.1.3).
            let kind = negative_kind(no_records.response_code);
            (
                AnswerKind::Error("no validated answer and no validated denial".into()),
                Some(DnssecState::Indeterminate),
                format!("indeterminate: {} without a checked proof", kind_name(&kind)),
            )
        }
        NetError::Dns(DnsError::Nsec { response, proof, .. }) => unproven_denial(&response, proof),
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

    /// 2026-06-01, inside the fixture's signature window.
    const WORLD_NOW: u64 = 1_780_272_000;

    fn config(served: &Served) -> ValidatorConfig {
        let anchor = served.world.trust_anchor();
        ValidatorConfig {
            server: served.addr,
            anchor_zone: anchor.zone,
            anchor_flags: anchor.flags,
            anchor_algorithm: anchor.algorithm,
            anchor_public_key: anchor.public_key,
            timeout: Duration::from_secs(2),
            now: WORLD_NOW,
            udp_only: false,
            #[cfg(test)]
            ignore_signature_expiry: false,
            #[cfg(test)]
            skip_key_rrsets: false,
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
            now: WORLD_NOW,
            udp_only: false,
            #[cfg(test)]
            ignore_signature_expiry: false,
            #[cfg(test)]
            skip_key_rrsets: false,
        };
        let v = Validator::new(&cfg).unwrap();
        let a = v.lookup("mx1.example.test", RType::A).await;
        assert_eq!((a.kind.clone(), a.state), (AnswerKind::Timeout, None), "{a:?}");
    }

    #[tokio::test]
    async fn chains_are_followed_up_to_the_limit_and_fail_closed_beyond() {
        let mut spec = fixture::sample_spec();
        let example = spec.zones.iter_mut().find(|z| z.origin == "example.test").unwrap();
        // c0 → c1 → … → c{MAX}: exactly MAX_CHAIN_LINKS links to an address.
        for i in 0..MAX_CHAIN_LINKS {
            example.records.push(format!("c{i} CNAME c{}", i + 1));
        }
        example.records.push(format!("c{MAX_CHAIN_LINKS} A 192.0.2.77"));
        // d0 → … → d16: past the limit.
        for i in 0..16 {
            example.records.push(format!("d{i} CNAME d{}", i + 1));
        }
        example.records.push("d16 A 192.0.2.78".into());
        example
            .records
            .extend(["loop1 CNAME loop2".to_string(), "loop2 CNAME loop1".to_string()]);
        // A secure alias into the unsigned zone: the answer is as weak as its weakest link.
        example.records.push("alias CNAME mx.insecure.test.".into());
        let served = fixture::serve_spec(&spec).await;
        let v = Validator::new(&config(&served)).unwrap();

        let at_limit = v.lookup("c0.example.test", RType::A).await;
        assert_eq!(at_limit.state, Some(DnssecState::Secure), "{at_limit:?}");
        assert_eq!(
            at_limit.kind,
            AnswerKind::Records(vec![Rdata::A(Ipv4Addr::new(192, 0, 2, 77))])
        );
        assert_eq!(at_limit.cnames.len(), MAX_CHAIN_LINKS);
        assert_eq!(at_limit.expanded_name(), format!("c{MAX_CHAIN_LINKS}.example.test."));

        // The same outcome every time: a failure, never "no records".
        for _ in 0..5 {
            let v = Validator::new(&config(&served)).unwrap();
            let long = v.lookup("d0.example.test", RType::A).await;
            assert!(
                matches!(&long.kind, AnswerKind::Error(e) if e.contains("longer than 6 links")),
                "{long:?}"
            );
            assert_eq!(long.cnames.len(), MAX_CHAIN_LINKS + 1, "{long:?}");
        }
        let looped = v.lookup("loop1.example.test", RType::Tlsa).await;
        assert!(
            matches!(&looped.kind, AnswerKind::Error(e) if e == "CNAME loop"),
            "{looped:?}"
        );

        let weak = v.lookup("alias.example.test", RType::A).await;
        assert_eq!(
            weak.kind,
            AnswerKind::Records(vec![Rdata::A(Ipv4Addr::new(192, 0, 2, 30))])
        );
        assert_eq!(weak.first_cname_state(), Some(DnssecState::Secure));
        assert_eq!(weak.state, Some(DnssecState::Insecure), "{weak:?}");
        served.stop().await.unwrap();
    }

    #[tokio::test]
    async fn signatures_are_judged_by_the_world_clock() {
        let served = fixture::serve_sample().await;
        let mut cfg = config(&served);
        // 2040: past the fixture's signature expiration, whatever the host's date.
        cfg.now = 2_208_988_800;
        let v = Validator::new(&cfg).unwrap();
        let a = v.lookup("mx1.example.test.", RType::A).await;
        assert_eq!(a.state, Some(DnssecState::Bogus), "{a:?}");
        // The same validator back at the world's time validates again.
        v.set_clock(WORLD_NOW);
        let v2 = Validator::new(&config(&served)).unwrap();
        assert_eq!(
            v2.lookup("mx1.example.test.", RType::A).await.state,
            Some(DnssecState::Secure)
        );
        served.stop().await.unwrap();
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
            now: WORLD_NOW,
            udp_only: false,
            #[cfg(test)]
            ignore_signature_expiry: false,
            #[cfg(test)]
            skip_key_rrsets: false,
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
