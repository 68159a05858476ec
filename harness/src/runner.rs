//! One scenario × one sender, start to finish.
//!
//! - [`run`]: the reference sender, in process; scenarios may run concurrently.
//! - [`run_external`]: a real sender in namespace mode: one lab and one sender instance for
//!   the whole list, worlds one after another (they share addresses and port 25).

use crate::outcome::{Outcome, observe::observe, redact::Redactions, verdict::judge};
use crate::pki::KeyStore;
use crate::scenario::Scenario;
use crate::sender::SenderKind;
use crate::sender::external::{self, Adapter};
use crate::sender::reference::lookup::ValidatorConfig;
use crate::sender::reference::{self, SenderContext};
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
    let world = World::start(s, keys).await?;
    let anchor = world.dns.trust_anchor();
    let ctx = SenderContext {
        validator: ValidatorConfig {
            server: world.dns_addr,
            anchor_zone: anchor.zone.clone(),
            anchor_flags: anchor.flags,
            anchor_algorithm: anchor.algorithm,
            anchor_public_key: anchor.public_key.clone(),
            timeout: limits.dns,
        },
        dialer: world.dialer.clone(),
        now: UnixTime::since_unix_epoch(Duration::from_secs(s.clock.unix_timestamp().max(0) as u64)),
        helo: "client.test".into(),
        timeout: limits.smtp,
    };
    let report = reference::deliver(&ctx, &s.message).await;
    let obs = observe(&world).await;
    let verdict = judge(s, &world, sender.name(), &report, &obs);
    let redactions = Redactions::new(world.ports(), Vec::new());
    world.stop().await;
    Ok(RunResult {
        outcome: Outcome::new(s, sender.name(), report, obs, verdict),
        redactions,
    })
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
    let mut adapter: Box<dyn Adapter> = match external::adapter(sender, workdir).await {
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
    let world = lab.start_world(s, keys).await?;
    let attempt = match adapter.attempt(s, lab).await {
        Ok(a) => a,
        Err(e) => {
            let _ = adapter.reset().await;
            world.stop().await;
            return Err(e);
        }
    };
    let obs = observe(&world).await;
    // Before the world goes: nothing of this scenario may be retried into the next one.
    let reset = adapter.reset().await;
    let report = external::report(s, &world, &obs, &attempt);
    let verdict = judge(s, &world, sender.name(), &report, &obs);
    let redactions = Redactions::new(world.ports(), vec![workdir.display().to_string()]);
    world.stop().await;
    reset?;
    Ok(RunResult {
        outcome: Outcome::new(s, sender.name(), report, obs, verdict),
        redactions,
    })
}
