//! One scenario × one sender: start the world, deliver, observe, judge, stop.

use crate::outcome::{Outcome, observe::observe, redact::Redactions, verdict::judge};
use crate::pki::KeyStore;
use crate::scenario::Scenario;
use crate::sender::SenderKind;
use crate::sender::reference::lookup::ValidatorConfig;
use crate::sender::reference::{self, SenderContext};
use crate::world::{World, WorldError};
use rustls_pki_types::UnixTime;
use std::time::Duration;

/// Limits for the in-process sender: short, because every peer is on loopback, and a
/// deliberate drop (later: faults) should cost little wall time.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RunResult {
    pub outcome: Outcome,
    pub redactions: Redactions,
}

pub async fn run(s: &Scenario, sender: &SenderKind, keys: &KeyStore) -> Result<RunResult, WorldError> {
    let world = World::start(s, keys).await?;
    let report = match sender {
        SenderKind::Reference => {
            let anchor = world.dns.trust_anchor();
            let ctx = SenderContext {
                validator: ValidatorConfig {
                    server: world.dns_addr,
                    anchor_zone: anchor.zone.clone(),
                    anchor_flags: anchor.flags,
                    anchor_algorithm: anchor.algorithm,
                    anchor_public_key: anchor.public_key.clone(),
                    timeout: DNS_TIMEOUT,
                },
                dialer: world.dialer.clone(),
                now: UnixTime::since_unix_epoch(Duration::from_secs(s.clock.unix_timestamp().max(0) as u64)),
                helo: "client.test".into(),
                timeout: SMTP_TIMEOUT,
            };
            reference::deliver(&ctx, &s.message).await
        }
    };
    let obs = observe(&world).await;
    let verdict = judge(s, &world, &report, &obs);
    let redactions = Redactions::new(world.ports(), Vec::new());
    world.stop().await;
    Ok(RunResult {
        outcome: Outcome::new(s, sender.name(), report, obs, verdict),
        redactions,
    })
}
