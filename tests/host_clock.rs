//! One world clock (DESIGN.md): no outcome depends on the host's date.
//!
//! The date-sensitive scenarios (DANE-TA chains whose certificates live a year around the
//! scenario clock, expired and not-yet-valid leaves, RRSIG windows, a deferral retried from
//! the queue) run through the `danesim` binary under `faketime`, so the harness and
//! everything it starts see a host clock in 2031 and in 2024 unless the world clock
//! overrides it. Each outcome must equal its committed snapshot
//! (`tests/snapshots/<id>@<sender>.snap`, the same the `scenarios` trials check), for the
//! reference sender, Postfix and Exim. Without the override, 2031 is past every leaf's
//! expiry and 2024 before every RRSIG's inception (2025-01-01), so both differ.
//!
//! One danesim run per sender and host clock serves all its trials. Postfix and Exim need
//! root and the packages (`ci/install-deps`), all three need `faketime`; without them the
//! trials are ignored with the reason printed, except under CI (`CI` set), where they fail.

use danesim::scenario;
use danesim::sender::SenderKind;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Host clocks: past every leaf's `not_after` (the scenario clock is 2026-06-01, leaves
/// live a year), and before the fixed RRSIG inception.
const HOST_CLOCKS: [&str; 2] = ["2031-06-01 00:00:00", "2024-06-01 00:00:00"];
const SENDERS: [&str; 3] = ["reference", "postfix", "exim"];
/// Whole directories (so a new DANE-TA scenario is covered by itself) and single files.
const DATE_SENSITIVE: [&str; 11] = [
    "scenarios/dane-ta",
    "scenarios/dane-ee/positive-control.toml",
    "scenarios/dane-ee/ee-02-expired-leaf.toml",
    "scenarios/dane-ee/ee-03-not-yet-valid.toml",
    "scenarios/dns-names/tlsa-cname-shared-ta.toml",
    "scenarios/rollover/roll-05-retired-issuer.toml",
    "scenarios/tlsa-lookup/tlsa-l-06-tlsa-expired-rrsig.toml",
    "scenarios/tlsa-lookup/tlsa-l-06-tlsa-future-rrsig.toml",
    // Deferred, then retried from the queue: queue file times under a faked clock.
    "scenarios/timeline/hybrid-cert-renewal.toml",
    "scenarios/timeline/ttl-01-cached-old-tlsa.toml",
    "scenarios/multi-mx/mmx-03-every-mx-fails.toml",
];

type Outcomes = Arc<OnceLock<Result<BTreeMap<String, Value>, String>>>;

fn main() {
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let paths: Vec<PathBuf> = DATE_SENSITIVE.iter().map(|p| root.join(p)).collect();
    let files = scenario::discover(&paths).expect("the date-sensitive scenarios exist");
    let ci = std::env::var_os("CI").is_some();
    let mut trials = Vec::new();
    for clock in HOST_CLOCKS {
        for sender in SENDERS {
            let missing = unavailable(sender);
            if let Some(why) = &missing
                && !ci
            {
                eprintln!("note: the host-clock {sender} trials are ignored: {why}");
            }
            let outcomes: Outcomes = Arc::new(OnceLock::new());
            for f in &files {
                let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
                let ignored = missing.is_some() && !ci;
                let name = format!("host-{}/{rel}@{sender}", &clock[..4]);
                let (f, outcomes, root, files, missing) = (
                    f.clone(),
                    outcomes.clone(),
                    root.clone(),
                    files.clone(),
                    missing.clone(),
                );
                trials.push(
                    Trial::test(name, move || {
                        if let Some(why) = missing {
                            return Err(format!("CI must run the host-clock trials, but {why}").into());
                        }
                        let all = outcomes.get_or_init(|| run_under(&root, clock, sender, &files));
                        check(all, &f, sender)
                    })
                    .with_ignored_flag(ignored),
                );
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Why these trials cannot run here, if they cannot.
fn unavailable(sender: &str) -> Option<String> {
    let faketime = ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join("faketime").is_file());
    if !faketime {
        return Some("`faketime` is not installed (apt-get install faketime)".into());
    }
    if sender == "reference" {
        return None;
    }
    if danesim::world::namespace::effective_uid() != Some(0) {
        return Some("they need root (run `ci/test` as root)".into());
    }
    danesim::sender::external::preflight(&SenderKind::parse(sender).ok()?)
        .err()
        .map(|e| e.to_string())
}

/// `faketime -f "@CLOCK" danesim run --sender SENDER --format json FILES...`: the outcomes by id.
fn run_under(root: &Path, clock: &str, sender: &str, files: &[PathBuf]) -> Result<BTreeMap<String, Value>, String> {
    let workdir = std::env::temp_dir().join(format!("danesim-host-{}-{sender}-{}", &clock[..4], std::process::id()));
    let out = Command::new("faketime")
        .args(["-f", &format!("@{clock}")])
        .arg(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--sender", sender, "--format", "json", "--workdir"])
        .arg(&workdir)
        .args(files)
        .current_dir(root)
        // Only the time of day is moved: tokio's timers stay on the real monotonic clock.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .map_err(|e| format!("cannot run faketime: {e}"))?;
    // 0: all pass; 1: some outcome is a violation (compared with its snapshot per trial).
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "danesim --sender {sender} under a host clock of {clock} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON from danesim: {e}"))?;
    let outcomes = doc["outcomes"].as_array().ok_or("no outcomes in the JSON")?;
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(outcomes
        .iter()
        .filter_map(|o| Some((o["scenario"].as_str()?.to_string(), o.clone())))
        .collect())
}

/// The outcome equals the committed snapshot of the same scenario and sender.
fn check(all: &Result<BTreeMap<String, Value>, String>, file: &Path, sender: &str) -> Result<(), Failed> {
    let all = all.as_ref().map_err(|e| Failed::from(e.clone()))?;
    let s = scenario::load(file).map_err(|e| format!("{e}"))?;
    let o = all
        .get(&s.id)
        .ok_or_else(|| format!("no outcome for {} (see the run's errors)", s.id))?;
    let name = format!("{}@{sender}", s.id);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(file);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_yaml_snapshot!(name.as_str(), o));
    }))
    .map_err(|_| {
        Failed::from(format!(
            "{name} under a shifted host clock differs from its snapshot: the outcome depends on the host's date"
        ))
    })
}
