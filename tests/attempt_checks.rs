//! `[[timeline.check]]` (scenarios/README.md, "Checks of earlier attempts"): an attempt before
//! the last is judged on what its check states, each stated fact fails when the behaviour is
//! otherwise, and every misuse of the syntax is a load error at file:line:col.

#![allow(clippy::result_large_err)]

use danesim::outcome::{Outcome, Verdict};
use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario::{self, ScenarioError};
use danesim::sender::SenderKind;
use std::path::{Path, PathBuf};

const DROPS: &str = "scenarios/smtp-replies/session-1-drops-mid-data-retry.toml";

fn edited(edits: &[(&str, &str)]) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut text = std::fs::read_to_string(root.join(DROPS)).expect("the catalogue scenario");
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` not in {DROPS}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn load(text: &str) -> Result<scenario::Scenario, ScenarioError> {
    scenario::load_str(Path::new("checks.toml"), text)
}

fn run(edits: &[(&str, &str)]) -> Outcome {
    let s = load(&edited(edits)).expect("the edited scenario loads");
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    rt.block_on(runner::run(&s, &SenderKind::Reference, &KeyStore::embedded()))
        .expect("the run completes")
        .outcome
}

/// The failed checks' names and details.
fn violations(o: &Outcome) -> Vec<(String, String)> {
    match &o.verdict {
        Verdict::Violation(v) => v.iter().map(|v| (v.invariant.clone(), v.detail.clone())).collect(),
        other => panic!("the check must fail: {other:?}"),
    }
}

#[test]
fn the_catalogue_check_passes_and_each_stated_fact_can_fail() {
    assert!(
        matches!(run(&[]).verdict, Verdict::Pass),
        "the catalogue scenario passes"
    );
    // Each edit states something attempt 1 does not show; the failure names attempt 1.
    for (from, to, invariant) in [
        (
            "\"mx1.example.test\" = \"TEMPFAIL\"",
            "\"mx1.example.test\" = \"AUTH\"",
            "HOST",
        ),
        // Reference sender's code here is 4.4.2 (the connection broke in DATA).
        (
            "invariants = [\"NOCLEAR\"]",
            "invariants = [\"NOCLEAR\"]\nstatus = \"4.7.5\"",
            "STATUS",
        ),
        ("invariants = [\"NOCLEAR\"]", "invariants = [\"ONCE\"]", "ONCE"),
    ] {
        let v = violations(&run(&[(from, to)]));
        assert!(
            v.iter()
                .any(|(name, detail)| name == invariant && detail.contains("attempt 1")),
            "{to}: expected {invariant} at attempt 1 among {v:?}"
        );
    }
}

#[test]
fn misuse_is_a_load_error_at_its_key() {
    let check = "[[timeline.check]]                       # attempt 1: the host was tried and failed temporarily\nattempt = 1\n";
    for (to, locate, want) in [
        ("attempt = 0\n", "attempt = 0", "the timeline has attempts 1 to 2"),
        ("attempt = 3\n", "attempt = 3", "the timeline has attempts 1 to 2"),
        (
            "attempt = 2\n",
            "attempt = 2",
            "is the last: its expectation is `[expect]`",
        ),
        ("attempt = 1\nresult = \"DEFER\"\n", "result", "unknown field `result`"),
        (
            "attempt = 1\nvia = \"mx1.example.test\"\n",
            "via",
            "unknown field `via`",
        ),
    ] {
        let text = edited(&[(check, &format!("[[timeline.check]]\n{to}"))]);
        let err = load(&text).expect_err(to).to_string();
        let at = text.find(locate).expect("the edit is in the text");
        let line = text[..at].matches('\n').count() + 1;
        assert!(err.contains(want), "{to}: {err}");
        assert!(
            err.contains(&format!("checks.toml:{line}:")),
            "{to}: not at line {line}: {err}"
        );
    }
    // Twice the same attempt, and a check that states nothing.
    let twice = edited(&[(
        "[expect]\n",
        "[[timeline.check]]\nattempt = 1\nnotes = [\"downgrade-path\"]\n\n[expect]\n",
    )]);
    let err = load(&twice).expect_err("twice").to_string();
    assert!(err.contains("attempt 1 is checked twice (first at line"), "{err}");
    let empty = edited(&[(
        "hosts = { \"mx1.example.test\" = \"TEMPFAIL\" }\ninvariants = [\"NOCLEAR\"]\n",
        "",
    )]);
    let err = load(&empty).expect_err("empty").to_string();
    assert!(err.contains("the check of attempt 1 states nothing"), "{err}");
    // As in [expect]: a status class that fits no expected result of the attempt (a DEFER).
    let class = edited(&[(
        "invariants = [\"NOCLEAR\"]",
        "invariants = [\"NOCLEAR\"]\nstatus = \"2.x.x\"",
    )]);
    assert!(load(&class).is_err(), "a 2.x.x status for a DEFER attempt loads");
}
