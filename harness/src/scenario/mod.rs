//! Scenario files: the TOML format (`file`), discovery and reading within the input limits
//! (`read`), loading with spanned errors (`load`, `load_timeline`, `load_attempts` for the checks
//! of earlier attempts, `load_address`, `load_script`
//! for endpoint scripts and per-connection sessions, `load_expect` for status codes and presented
//! certificates, `error`, whose
//! excerpts are bounded; `span` maps offsets in a string's value back to the file), the checked
//! model everything else consumes (`model`) and timelines of several attempts with steps between
//! them (`timeline`).
//!
//! The format is documented for authors in `scenarios/README.md`.

// A scenario error carries a window of the file's text for miette's rendering; it is built once per
// broken file on a cold path, so its size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod file;
pub mod load;
mod load_address;
mod load_attempts;
mod load_expect;
mod load_script;
mod load_signatures;
mod load_timeline;
pub mod model;
pub mod read;
pub mod span;
pub mod timeline;

pub use error::ScenarioError;
pub use load::{duplicate_ids, load, load_str};
pub use model::{AttackerDecl, CertRef, EndpointDecl, Expectation, Message, RecordDecl, Relay, Scenario, ZoneDecl};
pub use read::discover;
pub use timeline::{Timeline, When};
