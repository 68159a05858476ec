//! Senders that are programs, not code of ours: Postfix, Exim and any other, each described
//! by a sender profile (`profile`; Postfix and Exim are `fixtures/senders/postfix.toml` and
//! `exim.toml`). They run in the namespace behind unbound (see `world::lab`), and the
//! profile's rules turn what the program logged into an [`Attempt`]. [`report`] then builds
//! the sender report from the attempt and from what the endpoints witnessed, because a
//! program's log alone proves nothing.

pub mod attempt;
pub mod command;
pub mod log_source;
pub mod profile;
pub mod rules;
pub mod submit;

pub use crate::witness::external::report;
pub use attempt::{Attempt, Terminal, TlsClaim};

use crate::scenario::Scenario;
use crate::world::LabError;
use crate::world::lab::Lab;
use async_trait::async_trait;

/// One real sender, set up once per run and reused for every scenario (starting an MTA
/// costs more than a delivery; notes/performance.md).
#[async_trait]
pub trait Adapter: Send {
    /// Submits the scenario's message and waits for the first terminal status of the first
    /// delivery attempt (an event in the sender's log, not a sleep).
    async fn attempt(&mut self, s: &Scenario, lab: &Lab) -> Result<Attempt, LabError>;
    /// Retries the message the previous attempt left queued, now (a forced queue run, not a
    /// wait for the sender's backoff), and waits for its next terminal status.
    async fn retry(&mut self, s: &Scenario, lab: &Lab) -> Result<Attempt, LabError> {
        let _ = (s, lab);
        Err(LabError::Config(
            "this sender keeps no queue danesim can retry; timelines with a deferral need a profile with `[lifecycle] retry`".into(),
        ))
    }
    /// After an attempt's outcome and before the witness looks: lets the sender end what it
    /// keeps open (an MTA that caches its SMTP sessions holds them past the outcome, and an
    /// endpoint's transcript is complete only when its session has ended).
    async fn settle(&mut self, attempt: &Attempt) -> Result<(), LabError> {
        let _ = attempt;
        Ok(())
    }
    /// A probe (posttls-finger) authenticates peers and sends no mail; it is judged on its
    /// claims alone (`witness::probe`).
    fn is_probe(&self) -> bool {
        false
    }
    /// Forgets the previous scenario: empties the queue and anything cached per destination.
    async fn reset(&mut self) -> Result<(), LabError>;
    /// Stops every process the adapter started and waits for them.
    async fn shutdown(&mut self);
}

/// Starts the sender instance for a run (inside the namespace), on the lab's world clock:
/// its processes judge certificates at the scenario's time, never the host's.
pub async fn adapter(
    kind: &crate::sender::SenderKind,
    workdir: &std::path::Path,
    lab: &Lab,
) -> Result<Box<dyn Adapter>, LabError> {
    use crate::sender::SenderKind;
    match kind {
        SenderKind::Command { name, profile } => Ok(Box::new(
            command::CommandSender::start(name, profile, workdir, lab).await?,
        )),
        other => Err(LabError::Config(format!(
            "sender `{other}` is not an external sender danesim can start"
        ))),
    }
}

/// Checks, before entering the namespace, that the sender's programs are installed and its
/// profile's preflight checks pass, so a missing package is named at once with how to get it.
pub fn preflight(kind: &crate::sender::SenderKind) -> Result<(), LabError> {
    use crate::sender::SenderKind;
    use crate::world::namespace::find_tool;
    let unbound = "apt-get install unbound";
    find_tool(
        "unshare",
        "it creates the private namespace",
        "apt-get install util-linux",
    )?;
    find_tool(
        "ip",
        "it configures the namespace's loopback",
        "apt-get install iproute2",
    )?;
    find_tool("unbound", "the validating resolver real senders use", unbound)?;
    find_tool("unbound-control", "it resets unbound between worlds", unbound)?;
    // unbound and the sender run on the world clock (world::clock).
    crate::world::clock::library()?;
    match kind {
        SenderKind::Command { profile, .. } => command::preflight(profile).map(|_| ()),
        SenderKind::Reference | SenderKind::ExchangeOnline => Ok(()),
    }
}
