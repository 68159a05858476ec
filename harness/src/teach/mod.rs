//! Teaching commands that run a simulated world for a learner: `danesim explain` (one
//! scenario, the reference sender's decisions step by step, with the RFC section of each and
//! a fix hint when delivery was not DANE-authenticated) and `danesim serve` (a scenario's
//! world kept up for `dig`, `delv`, `posttls-finger` and `swaks`).
//!
//! Nothing here makes a DANE decision: the reference sender decides and records its trace
//! with the data behind each step (`sender::reference::trace::Fact`), and this module turns
//! that into prose.
//!
//! - `explain`: runs the scenario and lays out the explanation (per attempt for a timeline).
//! - `lesson`: what a DNSSEC state, a TLSA record, a certificate or a handshake means.
//! - `fix`: the change on the receiving side that would make delivery authenticated.
//! - `serve`: the world on loopback until Ctrl-C, with a line per query and per connection.
//! - `serve_namespace`: the same on the world's own addresses in a private namespace, behind
//!   a validating unbound, for tools entered with `nsenter` (root).
//! - `error`: [`TeachError`], the one error type of this boundary (the CLI exits 2).

mod error;
mod explain;
mod fix;
mod lesson;
mod serve;
mod serve_namespace;

pub use error::TeachError;
pub use explain::{Explanation, explain};
pub use serve::{Served, serve, shutdown_signals};
pub use serve_namespace::serve_namespace;
