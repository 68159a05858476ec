//! The lab of namespace mode: the namespace set up once per run, one unbound, and one
//! world at a time on the real addresses (worlds share addresses and port 25, so they run
//! one after another). Each new world gets a reloaded, empty resolver, and the lab's clock
//! (`clock`) is set to the world's before anything of it runs.

use super::clock::WorldClock;
use super::error::LabError;
use super::namespace;
use super::unbound::{RESOLVER, Unbound};
use super::{NAMESPACE_DNS, Placement, World};
use crate::pki::KeyStore;
use crate::scenario::Scenario;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Lab {
    pub workdir: PathBuf,
    /// The current world's trust anchor (unbound `trust-anchor-file` form).
    pub anchor: String,
    unbound: Option<Unbound>,
    /// The time every program of the lab reads: the current world's clock.
    pub clock: WorldClock,
    /// How long bringing the namespace and unbound up took (for the bench figures).
    pub setup_time: Duration,
}

impl Lab {
    /// Sets the namespace up for every address the scenarios use and starts unbound.
    pub async fn open(workdir: &Path, scenarios: &[Scenario], keys: &KeyStore) -> Result<Lab, LabError> {
        let started = Instant::now();
        std::fs::create_dir_all(workdir).map_err(|source| LabError::Write {
            path: workdir.to_path_buf(),
            source,
        })?;
        let addresses: BTreeSet<IpAddr> = scenarios
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| e.address))
            .collect();
        namespace::setup(&addresses, workdir, RESOLVER)?;
        // unbound starts with the anchor of the first world; every world reloads it anyway.
        let first = scenarios
            .first()
            .ok_or_else(|| LabError::Config("no scenarios to run".into()))?;
        let clock = WorldClock::create(workdir, first.clock)?;
        let prepared = super::prepare_for(first, keys, Placement::Namespace)?;
        let anchor = prepared.dns.trust_anchor().unbound_anchor();
        let unbound = Unbound::start(
            workdir,
            SocketAddr::new(RESOLVER, 53),
            SocketAddr::from((NAMESPACE_DNS, 53)),
            &prepared.dns.origins(),
            &anchor,
            &clock,
        )
        .await?;
        Ok(Lab {
            workdir: workdir.to_path_buf(),
            anchor,
            unbound: Some(unbound),
            clock,
            setup_time: started.elapsed(),
        })
    }

    /// Starts the scenario's world on the namespace addresses and points unbound at it.
    pub async fn start_world(&mut self, s: &Scenario, keys: &KeyStore) -> Result<World, LabError> {
        // Before the world answers anything: unbound judges its RRSIGs, and the sender its
        // certificates, at this world's time.
        self.clock.set(s.clock)?;
        let world = World::start_in(s, keys, Placement::Namespace).await?;
        let anchor = world.dns.trust_anchor().unbound_anchor();
        if let Some(u) = self.unbound.as_mut()
            && let Err(e) = u.new_world(&anchor, world.dns_addr, &world.dns.origins()).await
        {
            world.stop().await;
            return Err(e);
        }
        self.anchor = anchor;
        Ok(world)
    }

    /// Empties the resolver's caches (a timeline step with `flush`).
    pub async fn flush_resolver(&self) -> Result<(), LabError> {
        match &self.unbound {
            Some(u) => u.flush().await,
            None => Ok(()),
        }
    }

    /// Where unbound's log ends now: what it logs from here on belongs to the next attempt.
    pub fn resolver_log_mark(&self) -> u64 {
        self.unbound
            .as_ref()
            .and_then(|u| std::fs::metadata(&u.log).ok())
            .map_or(0, |m| m.len())
    }

    /// unbound's log lines since `mark`, each as `unbound: LEVEL: TEXT` (time stamp and
    /// pid dropped, so that deviation evidence quoted from them is the same every run).
    /// An unreadable log gives no lines: evidence that is not there excuses nothing.
    pub fn resolver_log_since(&self, mark: u64) -> Vec<String> {
        let Some(u) = &self.unbound else {
            return Vec::new();
        };
        let Ok(bytes) = std::fs::read(&u.log) else {
            return Vec::new();
        };
        let tail = bytes.get(mark as usize..).unwrap_or_default();
        String::from_utf8_lossy(tail)
            .lines()
            .map(
                |l| match l.find("unbound[").and_then(|i| l[i..].find("] ").map(|j| i + j + 2)) {
                    Some(rest) => format!("unbound: {}", &l[rest..]),
                    None => l.to_string(),
                },
            )
            .collect()
    }

    pub async fn close(mut self) {
        if let Some(u) = self.unbound.take() {
            u.stop().await;
        }
    }
}
