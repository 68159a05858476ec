//! The files an adapter hands to a sender (the message) and reads back from it (its log).

use crate::world::LabError;
use std::path::Path;

/// Writes the message and opens it for the sender's standard input.
pub fn message(path: &Path, content: &[u8]) -> Result<std::fs::File, LabError> {
    let err = |source| LabError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, content).map_err(err)?;
    std::fs::File::open(path).map_err(err)
}

/// The log's length now: where this attempt's lines will start.
pub fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Everything the log gained since `offset` (empty when it does not exist yet).
pub fn log_since(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let from = (offset as usize).min(bytes.len());
    String::from_utf8_lossy(&bytes[from..]).into_owned()
}
