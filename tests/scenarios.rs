//! One trial per scenario file × sender: run it, require a PASS verdict, and compare the
//! outcome with its committed insta snapshot (`tests/snapshots/<id>@<sender>.snap`).

use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario;
use danesim::sender::SenderKind;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;
use std::sync::Arc;

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
    let senders = [SenderKind::Reference];
    let mut trials = Vec::new();
    for f in files {
        for sender in &senders {
            let (rt, keys, f, sender) = (rt.clone(), keys.clone(), f.clone(), sender.clone());
            let name = format!("{}@{}", f.strip_prefix(&root).unwrap_or(&f).display(), sender.name());
            trials.push(Trial::test(name, move || run_one(&rt, &keys, &f, &sender)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run_one(rt: &tokio::runtime::Runtime, keys: &KeyStore, file: &PathBuf, sender: &SenderKind) -> Result<(), Failed> {
    let s = scenario::load(file).map_err(|e| format!("{e}"))?;
    let r = rt.block_on(runner::run(&s, sender, keys)).map_err(|e| format!("{e}"))?;
    let snap = r.outcome.redacted(&r.redactions);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(file);
    let name = format!("{}@{}", s.id, sender.name());
    // Compare the snapshot first, so a changed outcome is shown in full even when it also fails the verdict.
    let snap_result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_yaml_snapshot!(name.as_str(), snap));
    }));
    if !r.outcome.verdict.passed() {
        return Err(danesim::outcome::report::line(&r.outcome).into());
    }
    snap_result.map_err(|_| Failed::from(format!("snapshot {name} differs (cargo insta review)")))
}
