//! The one error type of the teach boundary (`danesim explain`, `danesim serve`).
//!
//! A DANE failure is never one of these: explaining it is the point. These are a sender the
//! command cannot run, a world that could not be built, or the machine refusing a socket,
//! a signal handler or a file; the CLI prints them and exits 2.

use crate::world::WorldError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeachError {
    /// `explain` runs the sender in process; real MTAs need namespace mode and keep no trace.
    #[error(
        "`--sender {0}` cannot be explained: explain runs the built-in sender in process and shows its decision trace; use `--sender reference` or `--sender exchange-online` (real MTAs: `danesim run --sender {0}` and their logs)"
    )]
    Sender(String),
    #[error(transparent)]
    World(#[from] WorldError),
    /// `serve --namespace`: the lab (namespace, unbound) could not be set up.
    #[error(transparent)]
    Lab(#[from] crate::world::LabError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch for {signal}: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}
