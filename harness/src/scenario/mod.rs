//! Scenario files: the TOML format (`file`), loading with spanned errors
//! (`load`, `error`) and the checked model everything else consumes (`model`).
//!
//! The format is documented for authors in `scenarios/README.md`.

// A scenario error carries the file's text for miette's rendering; it is built once per
// broken file on a cold path, so its size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod file;
pub mod load;
pub mod model;

pub use error::ScenarioError;
pub use load::{discover, load, load_str};
pub use model::{AttackerDecl, CertRef, EndpointDecl, Expectation, Message, RecordDecl, Scenario, ZoneDecl};
