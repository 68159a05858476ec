//! Judging a run: the verdict against the expectation, with the witness's checks
//! ([`crate::witness`]) added (`verdict`), the classified deviations that excuse a failed
//! expectation when their evidence is in the run (`deviation`, catalogued in
//! docs/CONFORMANCE.md), the snapshot form of a run (`record`), the one redaction table
//! (`redact`), the CLI's report lines (`report`) and RFC 3463 status codes: the patterns an
//! expectation states and the STATUS and HOST-STATUS checks (`status`).

pub mod deviation;
pub mod record;
pub mod redact;
pub mod report;
pub mod status;
pub mod verdict;

pub use crate::witness::{EndpointObservation, Observations};
pub use record::{AttemptRecord, Outcome};
pub use verdict::{Verdict, Violation};
