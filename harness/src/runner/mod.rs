//! One scenario × one sender, start to finish.
//!
//! - [`run`]: the reference sender, in process; scenarios may run concurrently.
//! - [`run_external`]: a real sender in namespace mode: one lab and one sender instance for
//!   the whole list, worlds one after another (they share addresses and port 25).
//! - `timeline`: scenarios with several attempts and steps between them, for both.

mod timeline;

pub use timeline::offset;

use crate::outcome::{Outcome, redact::Redactions, verdict::judge};
use crate::pki::KeyStore;
use crate::scenario::{Scenario, Timeline};
use crate::sender::external::{self, Adapter};
use crate::sender::reference::lookup::{Validator, ValidatorConfig};
use crate::sender::reference::{self, SenderContext};
use crate::sender::{SenderKind, SenderReport};
use crate::witness::{Observations, observe};
use crate::world::lab::Lab;
use crate::world::{LabError, World, WorldError};
use rustls_pki_types::UnixTime;
use std::path::Path;
use std::time::{Duration, Instant};

/// Limits for the in-process sender: short, because every peer is on loopback (answers take
/// microseconds), so that a deliberately dropped query costs little wall time. Scenarios'
/// `slow` faults stay well below the DNS limit.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(1);
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The in-process sender's limits (`--dns-timeout` on the command line).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub dns: Duration,
    pub smtp: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dns: DNS_TIMEOUT,
            smtp: SMTP_TIMEOUT,
        }
    }
}

/// How much longer than a scenario's slowest scripted DNS answer the DNS timeout must be: a
/// slow answer must arrive, not race the timer (issue 14: `--dns-timeout 300` silently
/// turned `transport-slow-mx`'s 400 ms answers into timeouts and flipped its verdict).
pub const DNS_MARGIN: Duration = Duration::from_millis(100);

/// The longest delay of a `slow` fault the scenario declares, at the start or in any step,
/// and that fault.
pub fn longest_dns_delay(s: &Scenario) -> Option<(Duration, &crate::dns::FaultSpec)> {
    let steps = s.timeline.iter().flat_map(|t| &t.steps).flat_map(|st| &st.faults);
    s.faults
        .iter()
        .chain(steps)
        .filter_map(|f| match f.kind {
            crate::dns::FaultKind::Slow(d) => Some((d, f)),
            _ => None,
        })
        .max_by_key(|(d, _)| *d)
}

impl Limits {
    /// Refuses a DNS timeout that does not outlast `s`'s scripted DNS delays by
    /// [`DNS_MARGIN`]; the message names the scenario, the fault and a timeout that works.
    pub fn check(&self, s: &Scenario) -> Result<(), String> {
        let Some((delay, fault)) = longest_dns_delay(s) else {
            return Ok(());
        };
        if self.dns >= delay + DNS_MARGIN {
            return Ok(());
        }
        use crate::duration::format;
        Err(format!(
            "a DNS timeout of {} does not outlast the scripted DNS delay of scenario `{}` ({}, {}) by {}: \
             the reference sender would time out on an answer the scenario means to arrive; give \
             --dns-timeout {} or more, or leave that scenario out",
            format(self.dns),
            s.id,
            fault.describe(),
            format(delay),
            format(DNS_MARGIN),
            format(delay + DNS_MARGIN),
        ))
    }
}

pub struct RunResult {
    pub outcome: Outcome,
    pub redactions: Redactions,
}

pub async fn run(s: &Scenario, sender: &SenderKind, keys: &KeyStore) -> Result<RunResult, WorldError> {
    run_with(s, sender, keys, Limits::default()).await
}

pub async fn run_with(
    s: &Scenario,
    sender: &SenderKind,
    keys: &KeyStore,
    limits: Limits,
) -> Result<RunResult, WorldError> {
    if sender.is_external() {
        return Err(WorldError::NeedsNamespace {
            sender: sender.to_string(),
        });
    }
    let mut world = World::start(s, keys).await?;
    let ctx = context(&world, s, limits);
    if let Some(t) = &s.timeline {
        let mut driver = InProcess::new(ctx, *sender == SenderKind::ExchangeOnline);
        let played = timeline::play(s, t, sender.name(), keys, &mut world, &mut driver).await;
        let redactions = Redactions::new(world.ports(), Vec::new());
        world.stop().await;
        // In process, the only lab errors are world errors (a step the world refused).
        let outcome = played.map_err(|e| match e {
            LabError::World(w) => w,
            other => WorldError::Endpoint {
                scenario: s.id.clone(),
                address: "timeline".into(),
                message: other.to_string(),
            },
        })?;
        return Ok(RunResult { outcome, redactions });
    }
    let mut report = reference::deliver(&ctx, &s.message).await;
    if *sender == SenderKind::ExchangeOnline {
        reference::exchange_online::rewrite(&mut report, Duration::ZERO);
    }
    let obs = observe(&world).await;
    let verdict = crate::witness::sessions::with_unreached(judge(s, &world, sender.name(), &report, &obs), s, &obs);
    let redactions = Redactions::new(world.ports(), Vec::new());
    world.stop().await;
    Ok(RunResult {
        outcome: Outcome::new(s, sender.name(), report, obs, verdict),
        redactions,
    })
}

/// What the reference sender knows of a world: its resolver, its trust anchor, its dialer,
/// and its administrator's route. Public for tests that run the sender with one changed.
pub fn context(world: &World, s: &Scenario, limits: Limits) -> SenderContext {
    let anchor = world.dns.trust_anchor();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(s.clock.unix_timestamp().max(0) as u64));
    SenderContext {
        validator: ValidatorConfig {
            server: world.dns_addr,
            anchor_zone: anchor.zone.clone(),
            anchor_flags: anchor.flags,
            anchor_algorithm: anchor.algorithm,
            anchor_public_key: anchor.public_key.clone(),
            timeout: limits.dns,
            now: now.as_secs(),
            #[cfg(test)]
            udp_only: false,
            #[cfg(test)]
            ignore_signature_expiry: false,
            #[cfg(test)]
            skip_key_rrsets: false,
        },
        dialer: world.dialer.clone(),
        now,
        helo: "client.test".into(),
        timeout: limits.smtp,
        #[cfg(test)]
        tlsa_first: false,
        relay: s.relay.clone(),
        danger_tlsa_port_25: false,
    }
}

/// The reference sender over a timeline: one validating resolver whose cache lives from
/// attempt to attempt (a flush replaces it), and a simulated clock that the retry schedule
/// advances, so certificate dates are judged at the time of each attempt.
struct InProcess {
    ctx: SenderContext,
    start: UnixTime,
    validator: Result<Validator, String>,
    exchange_online: bool,
}

impl InProcess {
    fn new(ctx: SenderContext, exchange_online: bool) -> InProcess {
        let validator = Validator::new(&ctx.validator).map_err(|e| e.to_string());
        InProcess {
            start: ctx.now,
            ctx,
            validator,
            exchange_online,
        }
    }
}

#[async_trait::async_trait]
impl timeline::Driver for InProcess {
    async fn attempt(
        &mut self,
        a: &Scenario,
        world: &World,
        _retry: bool,
        at: Duration,
        queued_for: Duration,
    ) -> Result<(SenderReport, Observations), LabError> {
        let marks = timeline::Marks::of(world).await;
        // `deliver_with` moves the validator's clock to `ctx.now` as well.
        self.ctx.now = UnixTime::since_unix_epoch(Duration::from_secs(self.start.as_secs()) + at);
        let mut report = match &self.validator {
            Ok(v) => reference::deliver_with(&self.ctx, v, &a.message).await,
            Err(e) => reference::unusable_resolver(e),
        };
        if self.exchange_online {
            reference::exchange_online::rewrite(&mut report, queued_for);
        }
        let obs = marks.since(observe(world).await);
        Ok((report, obs))
    }

    async fn flush(&mut self, _world: &World) -> Result<(), LabError> {
        self.validator = Validator::new(&self.ctx.validator).map_err(|e| e.to_string());
        Ok(())
    }

    fn scheduled(&self, t: &Timeline, n: u32) -> Duration {
        if self.exchange_online && !t.retry_given {
            // Exchange Online's own schedule (docs/CONFORMANCE.md), unless the scenario
            // states the times its expectations depend on.
            crate::scenario::timeline::offset_on(&reference::exchange_online::RETRY, n)
        } else {
            t.offset(n)
        }
    }
}

/// A real sender over a timeline: a new message is submitted, a deferred one is retried by
/// forcing a queue run; flushing empties unbound's caches. Before each attempt the lab's
/// clock moves on by the time since the last one, so the sender and unbound judge
/// certificates, signatures and cached TTLs at the attempt's world time.
struct External<'a> {
    adapter: &'a mut dyn Adapter,
    lab: &'a Lab,
    /// The timeline time of the last attempt.
    last: Duration,
}

#[async_trait::async_trait]
impl timeline::Driver for External<'_> {
    async fn attempt(
        &mut self,
        a: &Scenario,
        world: &World,
        retry: bool,
        at: Duration,
        _queued_for: Duration,
    ) -> Result<(SenderReport, Observations), LabError> {
        let marks = timeline::Marks::of(world).await;
        let logged = self.lab.resolver_log_mark();
        // After the marks: whatever a process does when its clock jumps (Postfix's queue
        // manager runs its timers) belongs to this attempt. The margin puts a TTL equal to
        // the gap surely past for unbound, which counts whole seconds and keeps an entry
        // through the second it runs out in, in processes whose faked count restarts to the
        // second: gone, as the reference sender has it (its entry is gone the second its
        // TTL runs out). Without it, such a scenario's queries came and went from run to run.
        let gap = at.saturating_sub(self.last);
        if !gap.is_zero() {
            self.lab.clock.advance(gap + crate::scenario::timeline::EXPIRE_MARGIN)?;
        }
        self.last = at;
        let attempt = if retry {
            self.adapter.retry(a, self.lab).await?
        } else {
            self.adapter.attempt(a, self.lab).await?
        };
        self.adapter.settle(&attempt).await?;
        let mut obs = marks.since(observe(world).await);
        obs.resolver_log = self.lab.resolver_log_since(logged);
        let report = external::report(a, world, &obs, &attempt);
        Ok((report, obs))
    }

    async fn flush(&mut self, _world: &World) -> Result<(), LabError> {
        self.lab.flush_resolver().await
    }

    fn scheduled(&self, t: &Timeline, n: u32) -> Duration {
        t.offset(n)
    }
}

/// Figures of a namespace run, for the bench and the notes.
#[derive(Debug, Clone, Default)]
pub struct ExternalTimings {
    /// Namespace + unbound up.
    pub lab_setup: Duration,
    /// The sender instance up (e.g. `postfix start`).
    pub sender_setup: Duration,
    /// Per scenario, world up to world down.
    pub scenarios: Vec<(String, Duration)>,
}

/// Runs every scenario against a real sender. Must be called inside the namespace
/// (`world::namespace::inside()`). Each scenario's result is returned in order; a fault in
/// one scenario does not stop the others, a fault of the lab or the sender does.
pub async fn run_external(
    list: &[Scenario],
    sender: &SenderKind,
    keys: &KeyStore,
    workdir: &Path,
) -> Result<(Vec<Result<RunResult, LabError>>, ExternalTimings), LabError> {
    let mut timings = ExternalTimings::default();
    let mut lab = Lab::open(workdir, list, keys).await?;
    timings.lab_setup = lab.setup_time;
    let t = Instant::now();
    let mut adapter: Box<dyn Adapter> = match external::adapter(sender, workdir, &lab).await {
        Ok(a) => a,
        Err(e) => {
            lab.close().await;
            return Err(e);
        }
    };
    timings.sender_setup = t.elapsed();
    let mut results = Vec::new();
    for s in list {
        let t = Instant::now();
        let r = one(s, sender, keys, &mut lab, adapter.as_mut(), workdir).await;
        timings.scenarios.push((s.id.clone(), t.elapsed()));
        results.push(r);
    }
    adapter.shutdown().await;
    lab.close().await;
    Ok((results, timings))
}

async fn one(
    s: &Scenario,
    sender: &SenderKind,
    keys: &KeyStore,
    lab: &mut Lab,
    adapter: &mut dyn Adapter,
    workdir: &Path,
) -> Result<RunResult, LabError> {
    if adapter.is_probe() && s.timeline.is_some() {
        return Err(LabError::Config(format!(
            "sender {sender} is a probe: it sends no mail, so there is no queued message for a timeline to retry"
        )));
    }
    let mut world = lab.start_world(s, keys).await?;
    if let Some(t) = &s.timeline {
        let played = {
            let mut driver = External {
                adapter,
                lab,
                last: Duration::ZERO,
            };
            timeline::play(s, t, sender.name(), keys, &mut world, &mut driver).await
        };
        let reset = adapter.reset().await;
        let redactions = Redactions::new(world.ports(), vec![workdir.display().to_string()]);
        world.stop().await;
        let outcome = played?;
        reset?;
        return Ok(RunResult { outcome, redactions });
    }
    let logged = lab.resolver_log_mark();
    let attempt = match adapter.attempt(s, lab).await {
        Ok(a) => match adapter.settle(&a).await {
            Ok(()) => a,
            Err(e) => {
                let _ = adapter.reset().await;
                world.stop().await;
                return Err(e);
            }
        },
        Err(e) => {
            let _ = adapter.reset().await;
            world.stop().await;
            return Err(e);
        }
    };
    let mut obs = observe(&world).await;
    obs.resolver_log = lab.resolver_log_since(logged);
    // Before the world goes: nothing of this scenario may be retried into the next one.
    let reset = adapter.reset().await;
    let report = external::report(s, &world, &obs, &attempt);
    let verdict = match adapter.is_probe() {
        true => crate::witness::probe::judge(s, &world, &obs, &attempt.tls),
        false => crate::witness::sessions::with_unreached(judge(s, &world, sender.name(), &report, &obs), s, &obs),
    };
    let redactions = Redactions::new(world.ports(), vec![workdir.display().to_string()]);
    world.stop().await;
    reset?;
    Ok(RunResult {
        outcome: Outcome::new(s, sender.name(), report, obs, verdict),
        redactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    /// Issue 15: `ORDER` must catch a sender that asks for the TLSA RRset before the address
    /// records (RFC 7672 §2.2.2). The reference sender has a switch for this that exists only
    /// in tests; the catalogue scenario passes without it and fails ORDER with it.
    #[tokio::test]
    async fn order_fails_when_the_tlsa_is_asked_before_the_addresses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/dns-security/lookup-order-addresses-before-tlsa.toml");
        let text = std::fs::read_to_string(&path).expect("the catalogue scenario");
        let s = crate::scenario::load_str(&path, &text).expect("it loads");
        let keys = KeyStore::embedded();
        for tlsa_first in [false, true] {
            let world = World::start(&s, &keys).await.expect("the world starts");
            let mut ctx = context(&world, &s, Limits::default());
            ctx.tlsa_first = tlsa_first;
            let report = reference::deliver(&ctx, &s.message).await;
            let obs = observe(&world).await;
            let verdict = judge(&s, &world, "reference", &report, &obs);
            world.stop().await;
            match (tlsa_first, &verdict) {
                (false, Verdict::Pass) => {}
                (true, Verdict::Violation(v)) => {
                    let order: Vec<_> = v.iter().filter(|v| v.invariant.starts_with("ORDER(")).collect();
                    assert_eq!(order.len(), 1, "{v:?}");
                    assert!(
                        order[0].detail.contains("after _25._tcp.mx1.example.test. TLSA"),
                        "{v:?}"
                    );
                }
                _ => panic!("tlsa_first = {tlsa_first}: {verdict:?}"),
            }
        }
    }

    /// A validator that trusts a DS-matched key without checking the RRSIG over the DNSKEY
    /// RRset (hickory 0.26 alone) calls mx-03-dnskey-rrsig-expired's zone secure. With the
    /// test-only switch that skips the reference's own check, the sender delivers and the
    /// verdict fails; without it, the MX lookup is bogus and the sender defers.
    #[tokio::test]
    async fn an_expired_key_set_signature_is_bogus_only_with_the_key_check() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dns-security/mx-03-dnskey-rrsig-expired.toml");
        let text = std::fs::read_to_string(&path).expect("the catalogue scenario");
        let s = crate::scenario::load_str(&path, &text).expect("it loads");
        let keys = KeyStore::embedded();
        for skip in [false, true] {
            let world = World::start(&s, &keys).await.expect("the world starts");
            let mut ctx = context(&world, &s, Limits::default());
            ctx.validator.skip_key_rrsets = skip;
            let report = reference::deliver(&ctx, &s.message).await;
            let obs = observe(&world).await;
            let verdict = judge(&s, &world, "reference", &report, &obs);
            world.stop().await;
            match (skip, &verdict) {
                (false, Verdict::Pass) => {
                    let mx = &report.trace[0].text;
                    assert!(
                        mx.contains("DNSKEY RRset of example.test.") && mx.contains("RFC 4035 §5.3.1"),
                        "{mx}"
                    );
                }
                (true, Verdict::Violation(v)) => {
                    assert_eq!(report.result, crate::vocab::ResultCode::Auth, "{v:?}");
                    assert!(v.iter().any(|v| v.invariant == "NOCONNECT(192.0.2.10)"), "{v:?}");
                }
                _ => panic!("skip_key_rrsets = {skip}: {verdict:?}"),
            }
        }
    }

    /// Issue 15: a timeline must catch a resolver that keeps a validated RRset for its TTL
    /// past its RRSIG's expiration (RFC 4035 §5.3.3). With the test-only switch that drops
    /// the cap, ttl-04's next message three hours on finds the TLSA RRset (TTL a day, RRSIG gone
    /// after an hour, the retry three hours on) in the cache and delivers: attempt 2 fails RESULT, HOST and NOMAIL.
    #[tokio::test]
    async fn a_timeline_fails_a_cache_that_outlives_the_signature() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/timeline/ttl-04-rrsig-expires-before-ttl.toml");
        let text = std::fs::read_to_string(&path).expect("the catalogue scenario");
        let s = crate::scenario::load_str(&path, &text).expect("it loads");
        let t = s.timeline.as_ref().expect("a timeline");
        let keys = KeyStore::embedded();
        for ignore in [false, true] {
            let mut world = World::start(&s, &keys).await.expect("the world starts");
            let mut ctx = context(&world, &s, Limits::default());
            ctx.validator.ignore_signature_expiry = ignore;
            let mut driver = InProcess::new(ctx, false);
            let outcome = timeline::play(&s, t, "reference", &keys, &mut world, &mut driver)
                .await
                .expect("the timeline plays");
            world.stop().await;
            let attempt2 = &outcome.attempts[1];
            assert_eq!(attempt2.at.as_deref(), Some("T+3h"));
            match (ignore, &outcome.verdict) {
                (false, Verdict::Pass) => assert_eq!(attempt2.result, crate::vocab::ResultCode::Defer),
                (true, Verdict::Violation(v)) => {
                    assert_eq!(attempt2.result, crate::vocab::ResultCode::Auth);
                    let names: Vec<&str> = v.iter().map(|v| v.invariant.as_str()).collect();
                    assert!(names.contains(&"RESULT") && names.contains(&"HOST"), "{v:?}");
                    assert!(
                        v.iter().all(|v| v.detail.starts_with("attempt 2: ")),
                        "only the retry goes wrong: {v:?}"
                    );
                }
                _ => panic!(
                    "ignore_signature_expiry = {ignore}: {:?} {:#?}",
                    outcome.verdict, outcome.attempts[1].report.trace
                ),
            }
        }
    }

    /// Issue 15: `TCP` must catch a sender whose resolver never retries a truncated answer
    /// over TCP (RFC 7766 §5). With the test-only UDP-alone switch, the catalogue scenario's
    /// TC=1 TLSA answer is never fetched whole: it passes without the switch and fails TCP
    /// with it, saying the query stayed on UDP.
    #[tokio::test]
    async fn tcp_fails_when_the_truncated_answer_is_not_retried_over_tcp() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dns-security/transport-truncated-tlsa.toml");
        let text = std::fs::read_to_string(&path).expect("the catalogue scenario");
        let s = crate::scenario::load_str(&path, &text).expect("it loads");
        let keys = KeyStore::embedded();
        for udp_only in [false, true] {
            let world = World::start(&s, &keys).await.expect("the world starts");
            let mut ctx = context(&world, &s, Limits::default());
            ctx.validator.udp_only = udp_only;
            let report = reference::deliver(&ctx, &s.message).await;
            let obs = observe(&world).await;
            let verdict = judge(&s, &world, "reference", &report, &obs);
            world.stop().await;
            match (udp_only, &verdict) {
                (false, Verdict::Pass) => {}
                (true, Verdict::Violation(v)) => {
                    let tcp: Vec<_> = v.iter().filter(|v| v.invariant.starts_with("TCP(")).collect();
                    assert_eq!(tcp.len(), 1, "{v:?}");
                    assert!(tcp[0].detail.contains("none over TCP"), "{v:?}");
                }
                _ => panic!("udp_only = {udp_only}: {verdict:?}"),
            }
        }
    }
}
