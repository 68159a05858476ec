//! The RFC 7672 decision procedure for one message.
//!
//! MX lookup (§2.2.1) → for each MX host in preference order: address lookup, then
//! TLSA only after secure address records (§2.2.2) → a per-host mode: DANE, mandatory
//! TLS or opportunistic (§2.2) → STARTTLS with SNI (§8.1) → DANE-EE/DANE-TA checks
//! (§3.1) → deliver, or skip to the next host; DEFER when no host took the message
//! (§2.1.2), BOUNCE only on a permanent SMTP rejection or a domain that cannot receive mail.

use super::lookup::{Answer, AnswerKind, DnssecState, RType, Rdata, Validator, ValidatorConfig};
use super::smtp_client::{Reply, SmtpClient, StartTls};
use super::trace::{Fact, Trace, rdata, state_name};
use crate::dane::{DaneFailure, DaneOutcome, DaneVerifier, danger::UncheckedVerifier};
use crate::pki::{Tlsa, Usability};
use crate::scenario::Message;
use crate::sender::Failure;
use crate::sender::{HostReport, Note, SenderReport};
use crate::vocab::{HostCode, ResultCode, fqdn};
use crate::world::Dialer;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Everything a real sending MTA would know, and nothing more.
#[derive(Debug, Clone)]
pub struct SenderContext {
    pub validator: ValidatorConfig,
    pub dialer: Dialer,
    /// The world clock, used for DANE-TA validity checks (RFC 7671 §5.2).
    pub now: UnixTime,
    /// The name this sender gives in EHLO.
    pub helo: String,
    /// Limit for each connect and each SMTP reply.
    pub timeout: Duration,
    /// Tests only: ask for the TLSA RRset before the address records, the order RFC 7672
    /// §2.2.2 rules out, so that a test can watch `ORDER` catch it.
    #[cfg(test)]
    pub tlsa_first: bool,
    /// The administrator's relay for all mail (Postfix `relayhost = [host]:port`): no MX
    /// lookup then. Configuration a real MTA has, not knowledge of the world.
    pub relay: Option<crate::scenario::Relay>,
    /// Only for the negative test of RELAY-02 (tests/relay_mistakes.rs): look TLSA up at
    /// `_25._tcp` whatever port is dialled, the mistake RFC 7672 §2.2.3 forbids. Always false
    /// outside that test.
    pub danger_tlsa_port_25: bool,
}

/// How a host must be treated once its TLSA lookup is done (RFC 7672 §2.2).
#[derive(Debug, Clone)]
enum Mode {
    /// A secure TLSA RRset with at least one usable record: authenticated TLS or nothing.
    Dane(Vec<Tlsa>),
    /// A secure non-empty TLSA RRset with no usable record: TLS required, not authenticated.
    MandatoryTls,
    /// Insecure or securely absent TLSA: pre-DANE opportunistic TLS, cleartext allowed.
    Opportunistic,
}

enum HostResult {
    Delivered {
        code: HostCode,
        address: SocketAddr,
        reply: Reply,
    },
    Failed {
        code: HostCode,
        address: Option<SocketAddr>,
        status: String,
        reason: String,
        dane: bool,
        failure: Option<Failure>,
    },
}

/// Deliver `msg` into the world reachable through `ctx`. Never fails: every DANE or
/// network failure is part of the report.
pub async fn deliver(ctx: &SenderContext, msg: &Message) -> SenderReport {
    match Validator::new(&ctx.validator) {
        Ok(v) => deliver_with(ctx, &v, msg).await,
        Err(e) => unusable_resolver(&e.to_string()),
    }
}

/// A DEFER report for a validating resolver that could not be set up.
pub fn unusable_resolver(e: &str) -> SenderReport {
    let mut trace = Trace::default();
    trace.step(format!("cannot set up the validating resolver: {e}"), None);
    finish(
        ResultCode::Defer,
        None,
        format!("4.3.5 resolver unusable: {e}"),
        Vec::new(),
        Vec::new(),
        trace,
    )
}

/// As [`deliver`], with a validating resolver the caller keeps: its cache persists from
/// one attempt to the next, as a real MTA's resolver does (RFC 4035 §5.3.3: cached data is
/// used until its TTL runs out).
pub async fn deliver_with(ctx: &SenderContext, validator: &Validator, msg: &Message) -> SenderReport {
    // One clock for the whole attempt: certificates and RRSIGs are judged at the same time.
    validator.set_clock(ctx.now.as_secs());
    let mut trace = Trace::default();
    let domain = fqdn(&msg.domain);

    let (candidates, mx_secure, next_hop_ids, port) = match &ctx.relay {
        // RFC 7672 §2.2.2: an administrator-configured relay is not subject to MX resolution;
        // its name is the TLSA base domain candidate and the reference identifier (§3.2.2).
        Some(relay) => {
            trace.step(
                format!(
                    "relay {}: configured route, no MX lookup for {domain}; the relay host is the TLSA base domain",
                    relay.bracketed()
                ),
                Some("RFC 7672 §2.2.2"),
            );
            (vec![(0, relay.host.clone())], true, Vec::new(), relay.port)
        }
        None => {
            // RFC 7672 §2.2.1: DANE can authenticate delivery to the next-hop domain only if the MX RRset is secure.
            let mx = validator.lookup(&domain, RType::Mx).await;
            trace.answer(&mx, "RFC 7672 §2.2.1");
            let (candidates, mx_secure) = match mx_candidates(&mx, &domain, &mut trace) {
                Ok(c) => c,
                Err((code, status)) => return finish(code, None, status, Vec::new(), Vec::new(), trace),
            };
            // RFC 7672 §3.2.2: with a secure MX lookup (or none), the original next-hop domain and its
            // CNAME expansion are reference identifiers beside the TLSA base domain; after an insecure
            // MX lookup the MX host name is the only one.
            let mut next_hop_ids = Vec::new();
            if mx_secure {
                for d in [domain.as_str(), mx.expanded_name()] {
                    let d = d.trim_end_matches('.').to_string();
                    if !next_hop_ids.contains(&d) {
                        next_hop_ids.push(d);
                    }
                }
            }
            (candidates, mx_secure, next_hop_ids, 25)
        }
    };

    let mut hosts: Vec<HostReport> = Vec::new();
    let mut notes = Vec::new();
    let mut skipped_dane: Vec<String> = Vec::new();
    let mut last_status = String::from("4.4.1 no MX host could be reached");
    let mut rejected: Option<String> = None;
    let mut delivered: Option<(String, HostCode, Reply)> = None;

    for (i, (preference, host)) in candidates.iter().enumerate() {
        if delivered.is_some() || rejected.is_some() {
            hosts.push(HostReport {
                host: host.clone(),
                preference: *preference,
                code: HostCode::Unused,
                address: None,
                reason: "not tried: an earlier host already settled the message".into(),
                status: None,
                failure: None,
            });
            continue;
        }
        match &ctx.relay {
            Some(r) => trace.step(format!("relay host {host}, port {}", r.port), Some("RFC 7672 §2.2.2")),
            None => trace.step(
                format!(
                    "MX host {} of {}: {host} (preference {preference})",
                    i + 1,
                    candidates.len()
                ),
                Some("RFC 7672 §2.2.1"),
            ),
        }
        trace.fact(Fact::Host(host.clone()));
        match try_host(ctx, validator, msg, host, port, &next_hop_ids, &mut trace).await {
            HostResult::Delivered { code, address, reply } => {
                hosts.push(HostReport {
                    host: host.clone(),
                    preference: *preference,
                    code,
                    address: Some(address.ip().to_string()),
                    reason: format!("accepted: {}", reply_text(&reply)),
                    status: Some(reply.enhanced().unwrap_or_else(|| "2.0.0".into())),
                    failure: None,
                });
                delivered = Some((host.clone(), code, reply));
            }
            HostResult::Failed {
                code,
                address,
                status,
                reason,
                dane,
                failure,
            } => {
                trace.step(format!("{host}: {code}: {reason}"), None);
                if dane {
                    skipped_dane.push(host.clone());
                }
                if code == HostCode::Reject {
                    rejected = Some(status.clone());
                }
                last_status = format!("{status} {host}: {reason}");
                hosts.push(HostReport {
                    host: host.clone(),
                    preference: *preference,
                    code,
                    address: address.map(|a| a.ip().to_string()),
                    reason,
                    status: Some(status),
                    failure,
                });
            }
        }
    }

    if let Some((host, code, reply)) = delivered {
        let result = match code {
            HostCode::Auth => ResultCode::Auth,
            HostCode::Tls => ResultCode::Tls,
            _ => ResultCode::Opp,
        };
        if result != ResultCode::Auth && !skipped_dane.is_empty() {
            // RFC 7672 §2.2.1: preference order beats channel security, so this delivery is
            // correct; but the domain published DANE for a host that failed and left a path
            // without it, which an attacker can force.
            let text = format!(
                "{} had usable TLSA records but could not be used; the message went to {host} without DANE \
                 authentication. The domain leaves a downgrade path (RFC 7672 §2.2.1).",
                skipped_dane.join(", ")
            );
            trace.step(format!("security note: {text}"), Some("RFC 7672 §2.2.1"));
            notes.push(Note {
                code: "downgrade-path".into(),
                text,
            });
        }
        if result == ResultCode::Auth && !mx_secure {
            let text = format!(
                "{host} was authenticated, but the MX RRset of {domain} is not secure: this is not a verified delivery \
                 to the next-hop domain (RFC 7672 §2.2.1)."
            );
            trace.step(format!("security note: {text}"), Some("RFC 7672 §2.2.1"));
            notes.push(Note {
                code: "insecure-mx".into(),
                text,
            });
        }
        let status = format!("{} (delivered via {host})", reply_text(&reply));
        trace.step(format!("result: {result}: delivered via {host}"), None);
        return finish(result, Some(host), status, hosts, notes, trace);
    }
    if let Some(status) = rejected {
        let status = format!(
            "{status} {}",
            hosts
                .iter()
                .rev()
                .find(|h| h.code == HostCode::Reject)
                .map_or(String::new(), |h| format!("{}: {}", h.host, h.reason))
        );
        trace.step(format!("result: BOUNCE: {status}"), Some("RFC 5321 §4.2.1"));
        return finish(ResultCode::Bounce, None, status, hosts, notes, trace);
    }
    trace.step(
        "result: DEFER: no MX host took the message; it stays queued",
        Some("RFC 7672 §2.1.2"),
    );
    finish(ResultCode::Defer, None, last_status, hosts, notes, trace)
}

fn finish(
    result: ResultCode,
    via: Option<String>,
    status: String,
    hosts: Vec<HostReport>,
    notes: Vec<Note>,
    trace: Trace,
) -> SenderReport {
    SenderReport {
        result,
        via,
        status,
        hosts,
        notes,
        reports_notes: true,
        trace: trace.into_steps(),
    }
}

/// The MX hosts to try, in order, and whether the MX RRset was secure.
/// The message is settled before any host is tried: its result and DSN-style status.
type Settled = (ResultCode, String);

/// The verifier handed to rustls, plus typed handles to read back what it saw.
type Verifiers = (
    Arc<dyn ServerCertVerifier>,
    Option<Arc<DaneVerifier>>,
    Option<Arc<UncheckedVerifier>>,
);

fn mx_candidates(mx: &Answer, domain: &str, trace: &mut Trace) -> Result<(Vec<(u16, String)>, bool), Settled> {
    if matches!(mx.state, Some(DnssecState::Bogus) | Some(DnssecState::Indeterminate)) {
        trace.step(
            format!(
                "the MX lookup is {}: the servers for {domain} cannot be determined, so delivery is delayed",
                state_name(mx.state.as_ref())
            ),
            Some("RFC 7672 §2.1.2 MUST"),
        );
        return Err((
            ResultCode::Defer,
            format!("4.7.5 MX lookup for {domain} is {}", state_name(mx.state.as_ref())),
        ));
    }
    let secure = mx.state == Some(DnssecState::Secure);
    // RFC 7672 §2.2.1: the initial name is replaced by the CNAME target, repeatedly.
    trace.cnames(mx, "RFC 7672 §2.2.1");
    let domain = mx.expanded_name();
    match &mx.kind {
        AnswerKind::Records(rs) => {
            let mut list: Vec<(u16, String)> = rs
                .iter()
                .filter_map(|r| match r {
                    Rdata::Mx { preference, exchange } => Some((*preference, fqdn(exchange))),
                    _ => None,
                })
                .collect();
            if list.len() == 1 && list[0].1 == "." {
                trace.step(
                    format!("{domain} publishes a null MX: it accepts no mail"),
                    Some("RFC 7505 §3"),
                );
                return Err((
                    ResultCode::Bounce,
                    format!("5.1.10 {domain} does not accept mail (null MX)"),
                ));
            }
            list.retain(|(_, h)| h != ".");
            // RFC 7672 §2.2.1: MX preference order comes before channel security. Equal
            // preferences are ordered by name (RFC 5321 §5.1 suggests random order; a fixed
            // order keeps runs reproducible).
            list.sort();
            if !secure {
                trace.step(
                    "the MX RRset is insecure: DANE may still be used per host, but the next-hop domain is not a \
                     reference identifier and no delivery counts as verified for it",
                    Some("RFC 7672 §2.2.1"),
                );
            }
            Ok((list, secure))
        }
        AnswerKind::NoData => {
            // RFC 5321 §5.1: no MX records, so the domain itself is the implicit MX (preference 0).
            trace.step(
                format!("no MX records: {domain} is its own mail host (implicit MX)"),
                Some("RFC 5321 §5.1, RFC 7672 §2.2.2"),
            );
            Ok((vec![(0, domain.to_string())], secure))
        }
        AnswerKind::NxDomain => {
            trace.step(
                format!("{domain} does not exist: the message cannot be delivered"),
                Some("RFC 5321 §5.1"),
            );
            Err((
                ResultCode::Bounce,
                format!("5.1.2 {domain}: host or domain name not found"),
            ))
        }
        AnswerKind::ServFail | AnswerKind::Refused | AnswerKind::Timeout | AnswerKind::Error(_) => {
            trace.step(
                "the MX lookup failed: delivery is delayed",
                Some("RFC 7672 §2.1.2 MUST"),
            );
            Err((
                ResultCode::Defer,
                format!("4.4.3 MX lookup for {domain} failed, try again"),
            ))
        }
    }
}

fn failed(code: HostCode, address: Option<SocketAddr>, status: &str, reason: String, dane: bool) -> HostResult {
    // The category follows from where the host was given up; a failed DANE check refines it
    // (`dane_failure`).
    let failure = match (code, status) {
        (HostCode::SkipPre, "4.7.5") => Some(Failure::DnssecInvalid),
        (HostCode::SkipEhlo, _) | (HostCode::SkipTls, _) => Some(Failure::StarttlsNotSupported),
        _ => None,
    };
    HostResult::Failed {
        code,
        address,
        status: status.to_string(),
        reason,
        dane,
        failure,
    }
}

/// The category of a failed DANE certificate check (RFC 8460 §4.3.1 result types).
fn dane_failure(reason: &DaneFailure) -> Failure {
    match reason {
        DaneFailure::Expired { .. } | DaneFailure::NotYetValid { .. } => Failure::CertificateExpired,
        DaneFailure::NameMismatch { .. } | DaneFailure::ConstraintViolated(_) => Failure::CertificateHostMismatch,
        DaneFailure::NoCertificate
        | DaneFailure::NoUsableRecords
        | DaneFailure::NoMatch { .. }
        | DaneFailure::ChainInvalid(_) => Failure::TlsaInvalid,
    }
}

fn is_failure(a: &Answer) -> bool {
    matches!(a.state, Some(DnssecState::Bogus) | Some(DnssecState::Indeterminate))
        || matches!(
            a.kind,
            AnswerKind::ServFail | AnswerKind::Refused | AnswerKind::Timeout | AnswerKind::Error(_)
        )
}

async fn try_host(
    ctx: &SenderContext,
    validator: &Validator,
    msg: &Message,
    host: &str,
    port: u16,
    next_hop_ids: &[String],
    trace: &mut Trace,
) -> HostResult {
    #[cfg(test)]
    if ctx.tlsa_first {
        let _ = validator.lookup(&format!("_25._tcp.{host}"), RType::Tlsa).await;
    }
    // RFC 7672 §2.2.2: address records first; TLSA only when they are secure.
    let a = validator.lookup(host, RType::A).await;
    trace.answer(&a, "RFC 7672 §2.2.2");
    let aaaa = validator.lookup(host, RType::Aaaa).await;
    trace.answer(&aaaa, "RFC 7672 §2.2.2");
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut all_secure = true;
    for ans in [&a, &aaaa] {
        if let AnswerKind::Records(rs) = &ans.kind {
            if is_failure(ans) {
                continue;
            }
            all_secure &= ans.state == Some(DnssecState::Secure);
            addrs.extend(rs.iter().filter_map(|r| match r {
                Rdata::A(ip) => Some(IpAddr::V4(*ip)),
                Rdata::Aaaa(ip) => Some(IpAddr::V6(*ip)),
                _ => None,
            }));
        }
    }
    if addrs.is_empty() {
        let why = if is_failure(&a) || is_failure(&aaaa) {
            "address lookup failed; RFC 7672 §2.1.2 lets delivery proceed via the remaining MX hosts"
        } else {
            "no address records: the host is unreachable (RFC 7672 §2.2.2)"
        };
        return failed(HostCode::SkipPre, None, "4.4.3", why.into(), false);
    }

    // RFC 7672 §2.2.2: which names may serve as the TLSA base domain. With a secure chain
    // to secure addresses: the CNAME-expanded name, then the original. With a secure first
    // CNAME but an insecure target: the original only. Otherwise DANE does not apply.
    let addr_answer = if matches!(a.kind, AnswerKind::Records(_)) {
        &a
    } else {
        &aaaa
    };
    let expanded = addr_answer.expanded_name().to_string();
    trace.cnames(addr_answer, "RFC 7672 §2.2.2");
    let bases: Vec<String> = if all_secure {
        if expanded != host {
            vec![expanded.clone(), host.to_string()]
        } else {
            vec![host.to_string()]
        }
    } else if addr_answer.first_cname_state() == Some(DnssecState::Secure) {
        vec![host.to_string()]
    } else {
        Vec::new()
    };
    if bases.is_empty() {
        trace.step(
            format!("{host}: address records are insecure, so no TLSA lookup: pre-DANE opportunistic TLS"),
            Some("RFC 7672 §2.2.2 SHOULD NOT"),
        );
    }
    let mut mode = Mode::Opportunistic;
    let mut tlsa_base = host.to_string();
    for base in &bases {
        // RFC 7672 §2.2.3, RFC 6698 §3: the port dialled is in the TLSA name.
        let tlsa_port = if ctx.danger_tlsa_port_25 { 25 } else { port };
        let qname = format!("_{tlsa_port}._tcp.{base}");
        let t = validator.lookup(&qname, RType::Tlsa).await;
        trace.answer(&t, "RFC 7672 §2.2.3");
        if is_failure(&t) {
            // RFC 7672 §2.1.2: a failed TLSA lookup could be an attacker hiding the records.
            return failed(
                HostCode::SkipPre,
                None,
                "4.7.5",
                format!(
                    "TLSA lookup for {qname} failed ({}): the host MUST be treated as unreachable (RFC 7672 §2.1.2)",
                    state_or_kind(&t)
                ),
                true,
            );
        }
        match (&t.kind, t.state) {
            (AnswerKind::Records(rs), Some(DnssecState::Secure)) => {
                let mut usable = Vec::new();
                for r in rs {
                    if let Rdata::Tlsa {
                        usage,
                        selector,
                        matching,
                        data,
                    } = r
                    {
                        let tlsa = Tlsa {
                            usage: *usage,
                            selector: *selector,
                            matching: *matching,
                            data: data.clone(),
                        };
                        match tlsa.usability() {
                            Usability::Usable => {
                                trace.step(format!("{}: usable", rdata(r)), Some("RFC 7672 §3.1"));
                                trace.fact(Fact::Tlsa(tlsa.clone()));
                                usable.push(tlsa);
                            }
                            Usability::Unusable(why) => {
                                trace.step(format!("{}: unusable: {why}", rdata(r)), Some("RFC 7672 §3.1.3"));
                                trace.fact(Fact::Tlsa(tlsa));
                            }
                        }
                    }
                }
                tlsa_base = base.clone();
                if usable.is_empty() {
                    trace.step(
                        format!("{base}: secure TLSA RRset with no usable record: TLS is mandatory, the certificate is not checked"),
                        Some("RFC 7672 §2.2.3"),
                    );
                    mode = Mode::MandatoryTls;
                } else {
                    trace.step(
                        format!(
                            "{base}: {} usable TLSA record(s): authenticated TLS or no delivery to this host",
                            usable.len()
                        ),
                        Some("RFC 7672 §2.2"),
                    );
                    mode = Mode::Dane(usable);
                }
                break;
            }
            (AnswerKind::Records(_), _) => {
                trace.step(
                    format!("{base}: the TLSA RRset is insecure and is ignored"),
                    Some("RFC 7672 §2.2.3"),
                );
            }
            _ => {
                trace.step(
                    format!("{base}: no TLSA records ({})", state_name(t.state.as_ref())),
                    Some("RFC 7672 §2.2.3"),
                );
            }
        }
    }
    if !bases.is_empty() && matches!(mode, Mode::Opportunistic) {
        trace.step(
            format!("{host}: no secure TLSA records: pre-DANE opportunistic TLS"),
            Some("RFC 7672 §2.2"),
        );
    }
    let dane = matches!(mode, Mode::Dane(_));

    // Connect to the first address that answers.
    let mut conn = None;
    for ip in &addrs {
        let sa = SocketAddr::new(*ip, port);
        match ctx.dialer.dial(sa, ctx.timeout).await {
            Ok(s) => {
                trace.step(format!("connected to {host} at {ip} port {port}"), None);
                conn = Some((s, sa));
                break;
            }
            Err(e) => trace.step(format!("cannot connect to {ip} port {port}: {e}"), None),
        }
    }
    let Some((stream, addr)) = conn else {
        return failed(
            HostCode::TempFail,
            None,
            "4.4.1",
            "no address of this host accepted a connection".into(),
            dane,
        );
    };
    session(ctx, msg, host, &tlsa_base, next_hop_ids, mode, stream, addr, trace).await
}

fn state_or_kind(a: &Answer) -> String {
    match (&a.kind, &a.state) {
        (_, Some(s @ (DnssecState::Bogus | DnssecState::Indeterminate))) => state_name(Some(s)).to_string(),
        (AnswerKind::ServFail, _) => "SERVFAIL".into(),
        (AnswerKind::Refused, _) => "REFUSED".into(),
        (AnswerKind::Timeout, _) => "timeout".into(),
        (AnswerKind::Error(e), _) => e.clone(),
        _ => "error".into(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    ctx: &SenderContext,
    msg: &Message,
    host: &str,
    tlsa_base: &str,
    next_hop_ids: &[String],
    mode: Mode,
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    trace: &mut Trace,
) -> HostResult {
    let dane = matches!(mode, Mode::Dane(_));
    let tls_required = !matches!(mode, Mode::Opportunistic);
    let smtp_fail = |e: String| failed(HostCode::TempFail, Some(addr), "4.4.2", e, dane);

    let (mut client, greeting) = match SmtpClient::start(stream, ctx.timeout).await {
        Ok(x) => x,
        Err(e) => return smtp_fail(format!("no SMTP greeting: {e}")),
    };
    if greeting.code != 220 {
        let _ = client.quit().await;
        // RFC 3463 §2: the server's own enhanced code says more than ours ("4.3.2 system not
        // accepting network messages"); only a transient one, since this host is only skipped.
        let status = greeting
            .enhanced()
            .filter(|c| c.starts_with("4."))
            .unwrap_or_else(|| "4.4.2".into());
        return failed(
            HostCode::TempFail,
            Some(addr),
            &status,
            format!("greeting was {}", reply_text(&greeting)),
            dane,
        );
    }
    let ehlo = match client.ehlo(&ctx.helo).await {
        Ok(e) => e,
        Err(e) => return smtp_fail(format!("EHLO failed: {e}")),
    };
    // RFC 6152 §2: what the last EHLO (after STARTTLS, the one inside TLS) advertised decides.
    let mut eight_bit_mime = ehlo.offers("8BITMIME");
    trace.step(
        format!(
            "EHLO: STARTTLS {}",
            if ehlo.starttls { "offered" } else { "not offered" }
        ),
        None,
    );

    let mut code = HostCode::Opp;
    if !ehlo.starttls {
        if tls_required {
            let _ = client.quit().await;
            return failed(
                HostCode::SkipEhlo,
                Some(addr),
                "4.7.4",
                "TLS is required (secure TLSA records exist) but STARTTLS was not offered; cleartext delivery is \
                 forbidden (RFC 7672 §2.2)"
                    .into(),
                dane,
            );
        }
        trace.step(
            "no STARTTLS and no DANE: cleartext delivery is allowed",
            Some("RFC 7672 §2.2"),
        );
    } else {
        let sni_name = tlsa_base.trim_end_matches('.').to_string();
        // RFC 7672 §3.2.2: the TLSA base domain, then the next-hop identifiers found above.
        let mut reference_ids = vec![sni_name.clone()];
        for id in next_hop_ids {
            if !reference_ids.contains(id) {
                reference_ids.push(id.clone());
            }
        }
        let (verifier, dane_verifier, unchecked): Verifiers = match &mode {
            Mode::Dane(records) => {
                let v = Arc::new(DaneVerifier::new(records.clone(), reference_ids.clone(), ctx.now));
                (v.clone(), Some(v), None)
            }
            _ => {
                let v = Arc::new(UncheckedVerifier::new());
                (v.clone(), None, Some(v))
            }
        };
        let config = match client_config(verifier, dane) {
            Ok(c) => c,
            Err(e) => return smtp_fail(format!("TLS client configuration: {e}")),
        };
        // RFC 7672 §8.1: with usable TLSA records the client MUST send SNI naming the TLSA base domain.
        let server_name = match ServerName::try_from(sni_name.clone()) {
            Ok(n) => n,
            Err(e) => return smtp_fail(format!("{sni_name} is not a valid server name: {e}")),
        };
        if dane {
            trace.step(
                format!(
                    "STARTTLS with SNI {sni_name}; reference identifiers: {}",
                    reference_ids.join(", ")
                ),
                Some("RFC 7672 §8.1, §3.2.2"),
            );
        } else {
            trace.step("STARTTLS without certificate checks", Some("RFC 7672 §2.2"));
        }
        // What the server presented and what it was checked against, for `danesim explain`.
        let handshake = |dane_verifier: &Option<Arc<DaneVerifier>>, unchecked: &Option<Arc<UncheckedVerifier>>| {
            let presented = match (dane_verifier, unchecked) {
                (Some(v), _) => v.presented_chain(),
                (_, Some(u)) => u.presented_chain(),
                _ => None,
            };
            Fact::Handshake {
                presented: presented.unwrap_or_default().iter().map(|c| c.to_vec()).collect(),
                records: match &mode {
                    Mode::Dane(records) => records.clone(),
                    _ => Vec::new(),
                },
                reference_ids: if dane { reference_ids.clone() } else { Vec::new() },
                outcome: dane_verifier.as_ref().and_then(|v| v.outcome()),
            }
        };
        match client.starttls(config, server_name).await {
            StartTls::Upgraded(c, session) => {
                client = c;
                let how = match (&mode, dane_verifier.as_ref().and_then(|v| v.outcome())) {
                    (Mode::Dane(_), Some(DaneOutcome::Authenticated { record, how, .. })) => {
                        code = HostCode::Auth;
                        format!("authenticated by {record}: {how}")
                    }
                    (Mode::Dane(_), other) => {
                        // The verifier must have accepted for the handshake to finish.
                        let _ = client.quit().await;
                        return failed(
                            HostCode::SkipTls,
                            Some(addr),
                            "4.7.5",
                            format!("handshake finished without a DANE verdict ({other:?})"),
                            dane,
                        );
                    }
                    (Mode::MandatoryTls, _) => {
                        code = HostCode::Tls;
                        "encrypted, not authenticated (every TLSA record unusable)".to_string()
                    }
                    (Mode::Opportunistic, _) => "encrypted, not authenticated (opportunistic)".to_string(),
                };
                let fact = handshake(&dane_verifier, &unchecked);
                let seen = unchecked
                    .and_then(|u| u.presented_chain())
                    .map_or(session.peer_chain.len(), |c| c.len());
                trace.step(
                    format!("{}: {how}; server presented {seen} certificate(s)", session.version),
                    Some("RFC 7672 §3.1"),
                );
                trace.fact(fact);
                match client.ehlo(&ctx.helo).await {
                    Ok(e) => eight_bit_mime = e.offers("8BITMIME"),
                    Err(e) => return smtp_fail(format!("EHLO after STARTTLS failed: {e}")),
                }
            }
            StartTls::Refused(c, reply) => {
                if tls_required {
                    let _ = c.quit().await;
                    // No TLS byte was exchanged: for the witness this is a host that never
                    // began TLS (SKIP-ehlo), like one that did not offer STARTTLS at all.
                    return failed(
                        HostCode::SkipEhlo,
                        Some(addr),
                        "4.7.4",
                        format!(
                            "STARTTLS refused ({}) but TLS is required (RFC 7672 §2.2)",
                            reply_text(&reply)
                        ),
                        dane,
                    );
                }
                trace.step(
                    format!("STARTTLS refused ({}); continuing in cleartext", reply_text(&reply)),
                    Some("RFC 3207 §4"),
                );
                client = c;
            }
            StartTls::HandshakeFailed(err) => {
                let dane_outcome = dane_verifier.as_ref().and_then(|v| v.outcome());
                let why = match &dane_outcome {
                    Some(DaneOutcome::Failed { reason }) => format!("DANE authentication failed: {reason}"),
                    _ => format!("TLS handshake failed: {err}"),
                };
                if tls_required {
                    trace.fact(handshake(&dane_verifier, &unchecked));
                    let mut result = failed(
                        HostCode::SkipTls,
                        Some(addr),
                        "4.7.5",
                        format!("{why}; not delivering to this host (RFC 7672 §2.2)"),
                        dane,
                    );
                    if let (HostResult::Failed { failure, .. }, Some(DaneOutcome::Failed { reason })) =
                        (&mut result, &dane_outcome)
                    {
                        *failure = Some(dane_failure(reason));
                    }
                    return result;
                }
                // RFC 7672 §2.2: without DANE the client MAY retry in cleartext after a failed handshake.
                trace.step(format!("{why}; retrying in cleartext"), Some("RFC 7672 §2.2 MAY"));
                trace.fact(handshake(&dane_verifier, &unchecked));
                let stream = match ctx.dialer.dial(addr, ctx.timeout).await {
                    Ok(s) => s,
                    Err(e) => return smtp_fail(format!("reconnect for cleartext retry failed: {e}")),
                };
                let (c, g) = match SmtpClient::start(stream, ctx.timeout).await {
                    Ok(x) => x,
                    Err(e) => return smtp_fail(format!("no SMTP greeting on retry: {e}")),
                };
                if g.code != 220 {
                    return smtp_fail(format!("greeting on retry was {}", reply_text(&g)));
                }
                client = c;
                match client.ehlo(&ctx.helo).await {
                    Ok(e) => eight_bit_mime = e.offers("8BITMIME"),
                    Err(e) => return smtp_fail(format!("EHLO on retry failed: {e}")),
                }
            }
        }
    }

    // The mail transaction (RFC 5321 §3.3). RFC 6152 §3: a message with octets above 127 is
    // declared BODY=8BITMIME, and is never sent to a server that does not offer it (the reference
    // sender does not downgrade content, so it returns the message as undeliverable).
    let eight_bit = msg.body.iter().any(|&b| b >= 0x80);
    if eight_bit && !eight_bit_mime {
        let _ = client.quit().await;
        return failed(
            HostCode::Reject,
            Some(addr),
            "5.6.3",
            format!("{host} does not offer 8BITMIME and the message has 8-bit octets (RFC 6152 §3)"),
            dane,
        );
    }
    let mail = if eight_bit {
        format!("MAIL FROM:<{}> BODY=8BITMIME", msg.from)
    } else {
        format!("MAIL FROM:<{}>", msg.from)
    };
    for cmd in [mail, format!("RCPT TO:<{}>", msg.to)] {
        match client.command(&cmd).await {
            Ok(r) if (200..300).contains(&r.code) => {}
            Ok(r) => return reply_failure(client, r, addr, &cmd, dane).await,
            Err(e) => return smtp_fail(format!("{cmd}: {e}")),
        }
    }
    match client.data(&msg.body).await {
        Ok(r) if (200..300).contains(&r.code) => {
            trace.step(format!("message accepted by {host}: {}", reply_text(&r)), None);
            let _ = client.quit().await;
            HostResult::Delivered {
                code,
                address: addr,
                reply: r,
            }
        }
        Ok(r) => reply_failure(client, r, addr, "DATA", dane).await,
        Err(e) => smtp_fail(format!("DATA: {e}")),
    }
}

async fn reply_failure(client: SmtpClient, r: Reply, addr: SocketAddr, what: &str, dane: bool) -> HostResult {
    let _ = client.quit().await;
    let permanent = (500..600).contains(&r.code);
    let status = r
        .enhanced()
        .unwrap_or_else(|| if permanent { "5.0.0".into() } else { "4.0.0".into() });
    let code = if permanent {
        HostCode::Reject
    } else {
        HostCode::TempFail
    };
    failed(
        code,
        Some(addr),
        &status,
        format!("{what} answered {}", reply_text(&r)),
        dane,
    )
}

fn reply_text(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.join(" / "))
}

fn client_config(verifier: Arc<dyn ServerCertVerifier>, sni: bool) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // RFC 7672 §8.1 requires SNI with usable TLSA; without DANE we do not reveal the name.
    cfg.enable_sni = sni;
    Ok(Arc::new(cfg))
}
