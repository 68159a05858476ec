//! Senders under test. Each adapter delivers one message into a running world and
//! reports in the outcome vocabulary; the verdict never trusts the report alone.
//!
//! - `reference`: the built-in RFC 7672 sender (needs nothing).
//! - `external`: real programs in namespace mode: Postfix, Exim, and any command given by a
//!   sender profile (`fixtures/senders/*.toml`).

pub mod external;
pub mod reference;
pub mod report;

pub use report::{Failure, HostReport, Note, SenderReport, TraceStep};

use std::fmt;
use std::path::{Path, PathBuf};

/// The shipped sender profiles (Postfix, Exim, swaks, ...), in the source tree.
pub const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/senders");

/// Which sender runs a scenario. Chosen at run time; the scenario body is the same for all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderKind {
    Reference,
    /// The reference sender reporting as Exchange Online documents its outbound DANE
    /// (codes 4.7.321-4.7.325, its retry schedule, message-trace style lines).
    ExchangeOnline,
    /// A program described by a sender profile; `postfix` and `exim` are the shipped
    /// profiles `fixtures/senders/postfix.toml` and `exim.toml`.
    Command {
        name: String,
        profile: PathBuf,
    },
}

impl SenderKind {
    /// `reference`, `postfix`, `exim`, a profile file, or the name of a profile in `fixtures/senders/`.
    pub fn parse(s: &str) -> Result<SenderKind, String> {
        match s {
            "reference" => return Ok(SenderKind::Reference),
            "exchange-online" => return Ok(SenderKind::ExchangeOnline),
            _ => {}
        }
        let as_path = Path::new(s);
        // A file, a profile of the project's `fixtures/senders/` seen from here, or the one
        // of the source tree this danesim was built from (so `postfix` and `exim` work from
        // any directory).
        let candidates = [
            as_path.to_path_buf(),
            Path::new("fixtures/senders").join(format!("{s}.toml")),
            Path::new(SHIPPED).join(format!("{s}.toml")),
        ];
        for c in candidates {
            if c.is_file() && c.extension().is_some_and(|e| e == "toml") {
                let name = c
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "command".into());
                return Ok(SenderKind::Command { name, profile: c });
            }
        }
        Err(format!(
            "unknown sender `{s}`; known: reference, exchange-online, postfix, exim, or a sender profile (a .toml file such as fixtures/senders/swaks.toml)"
        ))
    }

    pub fn name(&self) -> &str {
        match self {
            SenderKind::Reference => "reference",
            SenderKind::ExchangeOnline => "exchange-online",
            SenderKind::Command { name, .. } => name,
        }
    }

    /// Real programs run in namespace mode (root, one world at a time).
    pub fn is_external(&self) -> bool {
        !matches!(self, SenderKind::Reference | SenderKind::ExchangeOnline)
    }
}

impl fmt::Display for SenderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
