//! One trial per scenario file × sender, compared with its committed insta snapshot
//! (`tests/snapshots/<id>@<sender>.snap`).
//!
//! - `reference`: run in process; the verdict must be PASS, or a deviation the catalogue
//!   lists for the reference sender with its evidence (docs/CONFORMANCE.md, "Known
//!   deviations": webpki's refusal of a CA:TRUE leaf, TA-14).
//! - `exchange-online`: the reference sender's Exchange Online profile, for the timeline
//!   scenarios (the hybrid story it reports on); the verdict must be PASS.
//! - `postfix`, `exim`: the real MTAs in namespace mode. The catalogue runs once per sender
//!   through the `danesim` binary (one Postfix, one unbound for all scenarios), then each
//!   trial checks its outcome. Their verdicts are what the MTA did (a violation there is a
//!   finding about the MTA, recorded in the snapshot), and the seed scenarios must show
//!   the behaviour the real-senders issue names. They need root and the packages
//!   (`ci/install-deps`); without them the trials are ignored with the reason printed,
//!   except under CI (`CI` set), where they fail: CI must never skip them.

mod common;

use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario;
use danesim::sender::SenderKind;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

fn main() {
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = scenario::discover(&[root.join("scenarios")]).expect("the scenarios directory is readable");
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime starts"),
    );
    let keys = Arc::new(KeyStore::embedded());
    let mut trials = Vec::new();
    for f in &files {
        let timeline = scenario::load(f).is_ok_and(|s| s.timeline.is_some());
        if timeline {
            let (rt, keys, f) = (rt.clone(), keys.clone(), f.clone());
            let name = format!("{}@exchange-online", f.strip_prefix(&root).unwrap_or(&f).display());
            trials.push(Trial::test(name, move || {
                run_reference(&rt, &keys, &f, SenderKind::ExchangeOnline)
            }));
        }
        let (rt, keys, f) = (rt.clone(), keys.clone(), f.clone());
        let name = format!("{}@reference", f.strip_prefix(&root).unwrap_or(&f).display());
        trials.push(Trial::test(name, move || {
            run_reference(&rt, &keys, &f, SenderKind::Reference)
        }));
    }
    let ci = std::env::var_os("CI").is_some();
    for sender in ["postfix", "exim"] {
        let missing = unavailable(sender);
        if let Some(why) = &missing
            && !ci
        {
            eprintln!("note: the {sender} trials are ignored: {why}");
        }
        let catalogue: Arc<OnceLock<Result<BTreeMap<String, Value>, String>>> = Arc::new(OnceLock::new());
        for f in &files {
            let name = format!("{}@{sender}", f.strip_prefix(&root).unwrap_or(f).display());
            let (f, catalogue, root, missing) = (f.clone(), catalogue.clone(), root.clone(), missing.clone());
            let ignored = missing.is_some() && !ci;
            trials.push(
                Trial::test(name, move || {
                    if let Some(why) = missing {
                        return Err(format!("CI must run the real-MTA trials, but {why}").into());
                    }
                    let all = catalogue.get_or_init(|| run_catalogue(&root, sender));
                    check_external(all, &f, sender)
                })
                .with_ignored_flag(ignored),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run_reference(rt: &tokio::runtime::Runtime, keys: &KeyStore, file: &Path, sender: SenderKind) -> Result<(), Failed> {
    let s = scenario::load(file).map_err(|e| format!("{e}"))?;
    let r = rt
        .block_on(runner::run(&s, &sender, keys))
        .map_err(|e| format!("{e}"))?;
    let snap = r.outcome.redacted(&r.redactions);
    let name = format!("{}@{}", s.id, sender.name());
    // Compare the snapshot first, so a changed outcome is shown in full even when it also fails the verdict.
    let snap_result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::snapshot_settings(file).bind(|| insta::assert_yaml_snapshot!(name.as_str(), snap));
    }));
    if !r.outcome.verdict.acceptable() {
        return Err(danesim::outcome::report::line(&r.outcome).into());
    }
    snap_result.map_err(|_| Failed::from(format!("snapshot {name} differs (cargo insta review)")))
}

/// Why a real sender cannot run here, if it cannot.
fn unavailable(sender: &str) -> Option<String> {
    if danesim::world::namespace::effective_uid() != Some(0) {
        return Some("they need root (run `ci/test` as root)".into());
    }
    danesim::sender::external::preflight(&SenderKind::parse(sender).ok()?)
        .err()
        .map(|e| e.to_string())
}

/// The whole catalogue against one real sender, through the binary (it enters its own namespace).
fn run_catalogue(root: &Path, sender: &str) -> Result<BTreeMap<String, Value>, String> {
    // A new private directory (tempfile: random name, 0700); danesim creates `workdir` in it.
    let scratch = tempfile::Builder::new()
        .prefix("danesim-test-")
        .tempdir()
        .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    // Search-only for others: Postfix and Exim drop to their own users and must reach the
    // work directory inside (which danesim makes 0700 or 0711 itself).
    let search_only = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o711);
    std::fs::set_permissions(scratch.path(), search_only)
        .map_err(|e| format!("cannot chmod the scratch directory: {e}"))?;
    let workdir = scratch.path().join(sender);
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--sender", sender, "--format", "json", "--workdir"])
        .arg(&workdir)
        .arg(root.join("scenarios"))
        .output()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    // 0: all pass; 1: some outcome is a violation (a finding about the MTA, checked per trial).
    if !matches!(out.status.code(), Some(0 | 1)) {
        // Kept for its logs.
        let kept = scratch.keep();
        return Err(format!(
            "danesim --sender {sender} failed ({}; its files are in {}): {}",
            out.status,
            kept.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    common::outcomes_by_id(&out.stdout)
}

fn check_external(all: &Result<BTreeMap<String, Value>, String>, file: &Path, sender: &str) -> Result<(), Failed> {
    let all = all.as_ref().map_err(|e| Failed::from(e.clone()))?;
    let s = scenario::load(file).map_err(|e| format!("{e}"))?;
    let o = all
        .get(&s.id)
        .ok_or_else(|| format!("no outcome for {} (see the run's errors)", s.id))?;
    let name = format!("{}@{sender}", s.id);
    let snap_result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::snapshot_settings(file).bind(|| insta::assert_yaml_snapshot!(name.as_str(), o));
    }));
    // The behaviour the real-senders issue requires of both MTAs on the seed scenarios.
    let result = o["result"].as_str().unwrap_or("");
    let via = o["via"].as_str().unwrap_or("");
    let must = match s.id.as_str() {
        "renewed-cert" | "downgrade-attempt" => Some((result == "DEFER", "defers")),
        "missing-tlsa" => Some((result == "OPP", "delivers opportunistically (OPP)")),
        "secondary-mx" => Some((via == "mx2.example.test.", "delivers via MX 20 (mx2.example.test.)")),
        _ => None,
    };
    if let Some((ok, what)) = must
        && !ok
    {
        return Err(format!(
            "{sender} must show that it {what} on {}, got {result} via {via:?}",
            s.id
        )
        .into());
    }
    // A verdict the harness could not reach would be a harness fault, never the MTA's.
    if o["verdict"].is_null() {
        return Err(format!("{name}: no verdict").into());
    }
    snap_result.map_err(|_| Failed::from(format!("snapshot {name} differs (cargo insta review)")))
}
