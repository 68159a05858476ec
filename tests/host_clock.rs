//! One world clock (DESIGN.md): no outcome depends on the host's date.
//!
//! The date-sensitive scenarios (DANE-TA chains whose certificates live a year around the
//! scenario clock, expired and not-yet-valid leaves, RRSIG windows, deferrals retried from
//! the queue) run through the `danesim` binary on a host whose clock reads 2031 and 2024.
//! Each outcome must equal its committed snapshot (`tests/snapshots/<id>@<sender>.snap`,
//! the ones the `scenarios` trials check), for the reference sender, Postfix and Exim.
//! March 2031 is past every leaf's expiry, September 2024 before every RRSIG's inception
//! (2025-01-01).
//!
//! The host clock is moved for every process, not only for danesim: in a private mount
//! namespace an overlay on /etc adds `/etc/ld.so.preload` (libfaketime, which the loader
//! applies to every program, set-uid ones included, whatever its environment) and
//! `/etc/faketimerc` (the time libfaketime falls back to). A `faketime` wrapper alone
//! would not do: Postfix's master and Exim clear their environment, so the wrapper's
//! clock would never reach them, and the test could not fail for them. The host's /etc is
//! untouched. Only the world clock (`world::clock`, and the reference sender's own) can
//! then give an outcome that matches the snapshot.
//!
//! One danesim run per sender and host clock serves all its trials. They need root (the
//! namespace), libfaketime and, for Postfix and Exim, their packages (`ci/install-deps`);
//! without them the trials are ignored with the reason printed, except under CI (`CI`
//! set), where they fail.

mod common;

use danesim::scenario;
use danesim::sender::SenderKind;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Host clocks: past every leaf's `not_after` (the scenario clock is 2026-06-01, leaves
/// live a year), and before the fixed RRSIG inception; neither on June 1, so the logs tell
/// host time from world time (2026-06-01) apart.
const HOST_CLOCKS: [&str; 2] = ["2031-03-15 12:00:00", "2024-09-15 12:00:00"];
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
    if danesim::world::namespace::effective_uid() != Some(0) {
        return Some(
            "they need root: the host clock is moved in a private mount namespace (run `ci/test` as root)".into(),
        );
    }
    if let Err(e) = danesim::world::clock::library() {
        return Some(e.to_string());
    }
    danesim::sender::external::preflight(&SenderKind::parse(sender).ok()?)
        .err()
        .map(|e| e.to_string())
}

/// Moves the host clock to `clock` for every process of the command, in a private mount
/// namespace: `unshare --mount` and an overlay on /etc with ld.so.preload and faketimerc.
const MOVE_HOST_CLOCK: &str = r#"set -e
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
printf '%s\n' "$2" > /etc/ld.so.preload
printf '@%s\n' "$3" > /etc/faketimerc
shift 3
exec "$@""#;

/// `danesim run --sender SENDER --format json FILES...` on a host whose clock reads
/// `clock`: the outcomes by id.
fn run_under(root: &Path, clock: &str, sender: &str, files: &[PathBuf]) -> Result<BTreeMap<String, Value>, String> {
    // A new private directory (tempfile: random name, 0700), removed when this returns.
    let scratch = tempfile::Builder::new()
        .prefix(&format!("danesim-host-{}-{sender}-", &clock[..4]))
        .tempdir()
        .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    // Search-only for others: Postfix and Exim drop to their own users and must reach the
    // work directory inside (which danesim makes 0700 or 0711 itself).
    let search_only = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o711);
    std::fs::set_permissions(scratch.path(), search_only)
        .map_err(|e| format!("cannot chmod the scratch directory: {e}"))?;
    let base = scratch.path().to_path_buf();
    for d in ["upper", "work"] {
        std::fs::create_dir_all(base.join(d)).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    }
    let library = danesim::world::clock::library().map_err(|e| e.to_string())?;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "--",
            "sh",
            "-c",
            MOVE_HOST_CLOCK,
            "sh",
        ])
        .arg(&base)
        .arg(&library)
        .arg(clock)
        .arg(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--sender", sender, "--format", "json", "--workdir"])
        .arg(base.join("run"))
        .args(files)
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    // 0: all pass; 1: some outcome is a violation (compared with its snapshot per trial).
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "danesim --sender {sender} under a host clock of {clock} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    common::outcomes_by_id(&out.stdout)
}

/// The outcome equals the committed snapshot of the same scenario and sender.
fn check(all: &Result<BTreeMap<String, Value>, String>, file: &Path, sender: &str) -> Result<(), Failed> {
    let all = all.as_ref().map_err(|e| Failed::from(e.clone()))?;
    let s = scenario::load(file).map_err(|e| format!("{e}"))?;
    let o = all
        .get(&s.id)
        .ok_or_else(|| format!("no outcome for {} (see the run's errors)", s.id))?;
    let name = format!("{}@{sender}", s.id);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::snapshot_settings(file).bind(|| insta::assert_yaml_snapshot!(name.as_str(), o));
    }))
    .map_err(|_| {
        Failed::from(format!(
            "{name} under a shifted host clock differs from its snapshot: the outcome depends on the host's date"
        ))
    })
}
