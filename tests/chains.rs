//! CHAIN-01 (RFC 7672 §2.1.3): every alias-chain scenario gives one outcome, run after run,
//! and never a delivery. The reference sender once read hickory-resolver's empty answer
//! after a long chain as "provably insecure" and delivered in cleartext in some runs and
//! not in others; 50 runs of each scenario must now give byte-identical outcomes.

use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario;
use danesim::sender::SenderKind;
use std::path::PathBuf;

const RUNS: usize = 50;

#[test]
fn every_chain_scenario_gives_one_outcome_in_50_runs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dns-names");
    let files: Vec<PathBuf> = scenario::discover(&[dir])
        .expect("the scenarios are readable")
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("chain-")))
        .collect();
    // 1, the limit, the limit + 1 and 16 links, and a loop; at the MX host and at the TLSA owner.
    assert_eq!(files.len(), 10, "{files:?}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let keys = KeyStore::embedded();
    let mut figures = Vec::new();
    for f in &files {
        let s = scenario::load(f).expect("the chain scenarios load");
        let mut first: Option<String> = None;
        for run in 0..RUNS {
            let r = rt
                .block_on(runner::run(&s, &SenderKind::Reference, &keys))
                .expect("the world runs");
            assert!(
                r.outcome.verdict.passed(),
                "{} run {run}: {:?}",
                s.id,
                r.outcome.verdict
            );
            // No endpoint ever saw MAIL FROM: not in cleartext, not at all.
            let mails = r
                .outcome
                .witness
                .endpoints
                .iter()
                .flat_map(|e| &e.connections)
                .filter(|t| t.mail_from.is_some())
                .count();
            assert_eq!(mails, 0, "{} run {run}: MAIL FROM seen", s.id);
            let snap = serde_json::to_string_pretty(&r.outcome.redacted(&r.redactions)).expect("JSON");
            match &first {
                None => first = Some(snap),
                Some(f) => assert_eq!(f, &snap, "{} run {run} differs from run 0", s.id),
            }
        }
        let hosts: Vec<String> = {
            let v: serde_json::Value = serde_json::from_str(first.as_deref().unwrap_or("{}")).expect("JSON");
            v["hosts"]
                .as_array()
                .map(|a| a.iter().map(|h| format!("{}={}", h["host"], h["code"])).collect())
                .unwrap_or_default()
        };
        figures.push(format!(
            "{}: {RUNS} runs, 1 outcome (DEFER; {})",
            s.id,
            hosts.join(", ")
        ));
    }
    for line in figures {
        println!("{line}");
    }
}
