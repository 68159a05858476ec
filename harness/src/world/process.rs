//! Short-lived helper commands of namespace mode (`ip`, `mount`, `postconf`, `unbound-control`,
//! ...): run to completion, and a failure carries the command and its own words.

use super::error::LabError;
use std::process::{Command, Output};

/// Runs a command to completion; returns its stdout, or an error with its stderr.
pub fn run(c: &mut Command) -> Result<String, LabError> {
    let shown = format!("{c:?}").replace('"', "");
    checked(shown, c.output())
}

/// Turns a finished command into its stdout or an error that names it and quotes its output.
pub fn checked(shown: String, out: std::io::Result<Output>) -> Result<String, LabError> {
    let out = out.map_err(|e| LabError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let said = format!(
            "{} {}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Err(LabError::Command {
            command: shown,
            detail: format!("{}: {}", out.status, said.trim()),
        })
    }
}
