//! Senders under test. Each adapter delivers one message into a running world and
//! reports in the outcome vocabulary; the verdict never trusts the report alone.
//!
//! - `reference`: the built-in RFC 7672 sender (needs nothing).
//! - Postfix, Exim and command adapters come with the real-senders issue.

pub mod reference;
pub mod report;

pub use report::{HostReport, Note, SenderReport, TraceStep};

use std::fmt;

/// Which sender runs a scenario. Chosen at run time; the scenario body is the same for all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderKind {
    Reference,
}

impl SenderKind {
    pub fn parse(s: &str) -> Result<SenderKind, String> {
        match s {
            "reference" => Ok(SenderKind::Reference),
            "postfix" | "exim" => Err(format!(
                "sender `{s}` is not built yet (it needs the namespace mode of the real-senders issue); \
                 use `--sender reference`"
            )),
            other => Err(format!("unknown sender `{other}`; known: reference")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            SenderKind::Reference => "reference",
        }
    }
}

impl fmt::Display for SenderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
