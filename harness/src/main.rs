//! The `danesim` command line. Exit codes: 0 all passed, 1 a violation, 2 bad input.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand, ValueEnum};
use danesim::outcome::report;
use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario::{self, Scenario};
use danesim::sender::SenderKind;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "danesim",
    version,
    about = "Offline DANE (RFC 7672) simulation harness for SMTP senders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against a sender and judge the outcomes.
    Run {
        /// Scenario files or directories (searched for *.toml).
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// The sender under test.
        #[arg(long, default_value = "reference")]
        sender: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Scenarios run at once.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
    },
    /// List the scenarios found under the paths.
    List {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
    /// Print a scenario world's DNSSEC trust anchor (the key of `test.`) as DS and DNSKEY,
    /// and optionally write it in the forms delv and unbound read.
    Anchor {
        scenario: PathBuf,
        /// Write a delv anchors file (`delv -a FILE +root=test.`).
        #[arg(long, value_name = "FILE")]
        delv: Option<PathBuf>,
        /// Write an unbound `trust-anchor-file`.
        #[arg(long, value_name = "FILE")]
        unbound: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per scenario and a summary.
    Human,
    /// One JSON document: the outcomes in snapshot form and a summary.
    Json,
    /// TAP version 14.
    Tap,
    /// JUnit XML.
    Junit,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::List { paths } => match load_all(&paths) {
            Ok(list) => {
                for s in &list {
                    println!("{:<36} {:<20} {}", s.id, s.covers.join(","), s.title);
                }
                println!("{} scenario(s)", list.len());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Anchor {
            scenario,
            delv,
            unbound,
        } => anchor(&scenario, delv, unbound),
        Command::Run {
            paths,
            sender,
            format,
            jobs,
        } => {
            let sender = match SenderKind::parse(&sender) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let list = match load_all(&paths) {
                Ok(l) => l,
                Err(code) => return code,
            };
            if list.is_empty() {
                eprintln!("error: no scenario files (*.toml) under {}", show(&paths));
                return ExitCode::from(2);
            }
            run(list, sender, format, jobs.max(1))
        }
    }
}

fn anchor(path: &std::path::Path, delv: Option<PathBuf>, unbound: Option<PathBuf>) -> ExitCode {
    let s = match scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("{:?}", miette::Report::new(e));
            return ExitCode::from(2);
        }
    };
    let prepared = match danesim::world::prepare(&s, &KeyStore::embedded()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let ta = prepared.dns.trust_anchor();
    println!(
        "; trust anchor of the world of scenario `{}` (fixed key: the same every run)",
        s.id
    );
    println!("{}", ta.ds.trim_end());
    println!("{}", ta.dnskey.trim_end());
    for (file, text, what) in [
        (delv, ta.delv_anchors(), "delv anchors"),
        (unbound, ta.unbound_anchor(), "unbound trust-anchor-file"),
    ] {
        if let Some(f) = file {
            if let Err(e) = std::fs::write(&f, text) {
                eprintln!("error: cannot write {}: {e}", f.display());
                return ExitCode::from(2);
            }
            eprintln!("wrote {what} to {}", f.display());
        }
    }
    ExitCode::SUCCESS
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Load every scenario; report every broken file (not just the first) and exit 2.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, ExitCode> {
    let files = scenario::discover(paths).map_err(|e| {
        eprintln!("{:?}", miette::Report::new(e));
        ExitCode::from(2)
    })?;
    let mut ok = Vec::new();
    let mut bad = 0;
    for f in files {
        match scenario::load(&f) {
            Ok(s) => ok.push(s),
            Err(e) => {
                bad += 1;
                eprintln!("error: {e}");
                eprintln!("{:?}", miette::Report::new(e));
            }
        }
    }
    let mut ids = std::collections::BTreeMap::new();
    for s in &ok {
        if let Some(prev) = ids.insert(s.id.clone(), s.path.clone()) {
            eprintln!(
                "error: scenario id `{}` is used by both {} and {}",
                s.id,
                prev.display(),
                s.path.display()
            );
            bad += 1;
        }
    }
    if bad > 0 {
        eprintln!("{bad} scenario file(s) could not be used; nothing was run");
        return Err(ExitCode::from(2));
    }
    Ok(ok)
}

fn run(list: Vec<Scenario>, sender: SenderKind, format: Format, jobs: usize) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let keys = Arc::new(KeyStore::embedded());
    let results = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
        let mut handles = Vec::new();
        for s in list {
            let (keys, sender, sem) = (keys.clone(), sender.clone(), sem.clone());
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.expect("the semaphore is never closed");
                let r = runner::run(&s, &sender, &keys).await;
                (s, r)
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await);
        }
        out
    });

    let mut outcomes = Vec::new();
    let mut faults = 0;
    for r in results {
        match r {
            Ok((_, Ok(run))) => outcomes.push(run),
            Ok((s, Err(e))) => {
                faults += 1;
                eprintln!("error: {}: {e}", s.path.display());
            }
            Err(e) => {
                faults += 1;
                eprintln!("error: a scenario task failed: {e}");
            }
        }
    }
    match format {
        Format::Human => {
            for r in &outcomes {
                println!("{}", report::line(&r.outcome));
            }
            let all: Vec<_> = outcomes.iter().map(|r| r.outcome.clone()).collect();
            println!("{}", report::summary(&all, sender.name()));
        }
        Format::Json => {
            let items: Vec<serde_json::Value> = outcomes.iter().map(|r| r.outcome.redacted(&r.redactions)).collect();
            let passed = outcomes.iter().filter(|r| r.outcome.verdict.passed()).count();
            let doc = serde_json::json!({
                "sender": sender.name(),
                "outcomes": items,
                "summary": { "scenarios": outcomes.len(), "passed": passed, "violations": outcomes.len() - passed, "errors": faults },
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("JSON values always serialize")
            );
        }
        Format::Tap | Format::Junit => {
            let all: Vec<_> = outcomes.iter().map(|r| r.outcome.clone()).collect();
            let text = if format == Format::Tap {
                report::tap(&all)
            } else {
                report::junit(&all, sender.name())
            };
            print!("{text}");
        }
    }
    if faults > 0 {
        return ExitCode::from(2);
    }
    if outcomes.iter().all(|r| r.outcome.verdict.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
