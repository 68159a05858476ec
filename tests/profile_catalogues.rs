//! The whole catalogue through the profiles of senders without DANE (issue 16): swaks, a
//! one-shot SMTP client, and OpenSMTPD, a queueing MTA from Debian; and through
//! posttls-finger, a DANE probe that sends no mail (judged on its claims, witness/probe.rs). Their results are
//! classified: one line per scenario (the verdict, the result, the failed checks, or the
//! error), compared with a committed snapshot, so a change in what danesim reports for a
//! non-DANE sender is seen. Postfix and Exim, the DANE senders, have full per-scenario
//! snapshots (tests/scenarios.rs).
//!
//! These need root and the packages (`ci/install-deps`). Without them each trial is
//! ignored with the reason printed, except under CI (`CI` set), where it fails.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let args = Arguments::from_args();
    let ci = std::env::var_os("CI").is_some();
    let mut trials = Vec::new();
    for sender in ["swaks", "opensmtpd", "posttls-finger"] {
        let missing = unavailable(sender);
        if let Some(why) = &missing
            && !ci
        {
            eprintln!("note: the {sender} catalogue is ignored: {why}");
        }
        let ignored = missing.is_some() && !ci;
        trials.push(
            Trial::test(format!("the_{sender}_catalogue_is_classified"), move || match missing {
                Some(why) => Err(format!("CI must run this test, but {why}").into()),
                None => classify(sender),
            })
            .with_ignored_flag(ignored),
        );
    }
    libtest_mimic::run(&args, trials).exit();
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unavailable(sender: &str) -> Option<String> {
    if danesim::world::namespace::effective_uid() != Some(0) {
        return Some("it needs root (run `ci/test` as root)".into());
    }
    match danesim::sender::SenderKind::parse(
        &root()
            .join(format!("fixtures/senders/{sender}.toml"))
            .display()
            .to_string(),
    ) {
        Ok(k) => danesim::sender::external::preflight(&k).err().map(|e| e.to_string()),
        Err(e) => Some(e),
    }
}

/// Runs the catalogue and writes one line per scenario: `id  VERDICT  RESULT  checks`, or
/// `id  ERROR  what` for a run that ended in an error (the sender's fault or a limit of it).
fn classify(sender: &str) -> Result<(), Failed> {
    let scratch = tempfile::Builder::new()
        .prefix("danesim-catalogue-")
        .tempdir()
        .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let workdir = scratch.path().join(sender);
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--format", "json", "--sender"])
        .arg(root().join(format!("fixtures/senders/{sender}.toml")))
        .arg("--workdir")
        .arg(&workdir)
        .arg(root().join("scenarios"))
        .output()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    // 0 all pass, 1 some violation, 2 some error: each is part of the classification.
    if !matches!(out.status.code(), Some(0..=2)) {
        return Err(format!(
            "danesim failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let outcomes = common::outcomes_by_id(&out.stdout)?;
    let mut lines: Vec<String> = outcomes
        .iter()
        .map(|(id, o)| {
            let result = o["result"].as_str().unwrap_or("?");
            let (word, checks) = match o["verdict"].as_object().and_then(|v| v.iter().next()) {
                Some((kind, list)) => {
                    let names: BTreeSet<String> = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v["invariant"].as_str().map(str::to_string))
                        .collect();
                    (kind.to_uppercase(), names.into_iter().collect::<Vec<_>>().join(" "))
                }
                None => (o["verdict"].as_str().unwrap_or("?").to_uppercase(), String::new()),
            };
            format!("{id:<44} {word:<9} {result:<6} {checks}")
                .trim_end()
                .to_string()
        })
        .collect();
    // Errors go to stderr, one `error: scenarios/...toml: what` each.
    let workdir = workdir.display().to_string();
    for l in String::from_utf8_lossy(&out.stderr).lines() {
        let Some(rest) = l.strip_prefix("error: ") else {
            continue;
        };
        let Some((file, what)) = rest.split_once(".toml: ") else {
            continue;
        };
        let id = file.rsplit('/').next().unwrap_or(file);
        // The command line is long and says nothing the scenario does not: keep why it failed.
        let what = match what.strip_prefix('`').and_then(|w| w.split_once("` failed: ")) {
            Some((_, why)) => why,
            None => what,
        };
        let what = what.replace(&workdir, "WORKDIR");
        let what: String = what.chars().take(110).collect();
        lines.push(format!("{id:<44} ERROR     {what}"));
    }
    lines.sort();
    let table = lines.join("\n");
    let name = format!("catalogue@{sender}");
    let settings = {
        let mut s = insta::Settings::clone_current();
        s.set_snapshot_path(root().join("tests/snapshots"));
        s.set_prepend_module_to_snapshot(false);
        s.set_omit_expression(true);
        s
    };
    settings.bind(|| insta::assert_snapshot!(name.as_str(), table));
    Ok(())
}
