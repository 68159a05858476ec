//! The `danesim` command line. Exit codes: 0 all passed, 1 a violation (or, for `check`, a
//! failing host), 2 bad input.
//!
//! A reader that closes stdout early (`danesim list | head -1`, `run | head`) changes
//! nothing: printing stops quietly and the exit code is the command's own (0 for `list`,
//! the verdict for `run`); `serve` stops its world and exits 0. Any other failure to write
//! stdout (a full disk) is exit 2 with the reason (see `danesim::output`).

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand, ValueEnum};
use danesim::inspect;
use danesim::outcome::report;
use danesim::pki::KeyStore;
use danesim::runner;
use danesim::scenario::{self, Scenario};
use danesim::sender::SenderKind;
use danesim::teach;
use danesim::{errln, out, outln};
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
        /// Scenarios run at once (the reference sender; real senders run one world at a time).
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        /// The reference sender's DNS timeout (a dropped query costs this): a duration such as
        /// 300ms or 2s, or a bare number of milliseconds; 50ms to 30s (default 1s).
        #[arg(long, value_name = "DURATION", value_parser = dns_timeout)]
        dns_timeout: Option<std::time::Duration>,
        /// Work directory for a real sender's files and logs (kept after the run). It must
        /// be new, or an empty directory of yours (never a symlink); it is made mode 0700.
        /// Default: a new directory with a random name under the system temp dir.
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
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
    /// Print the TLSA record for a certificate file, like `ldns-dane create` or gen_tlsa:
    /// `_25._tcp.HOST. IN TLSA 3 1 1 <HEX>` (hex in uppercase).
    Tlsa {
        /// PEM file, leaf first, then its issuers. Usages 3 and 1 take the first certificate,
        /// usages 2 and 0 the last (the trust anchor), unless --index says otherwise.
        #[arg(long, value_name = "FILE.pem")]
        cert: PathBuf,
        /// Certificate usage: 3 DANE-EE, 2 DANE-TA (0 and 1 are unusable for SMTP).
        #[arg(long, default_value_t = 3)]
        usage: u8,
        /// Selector: 1 SubjectPublicKeyInfo, 0 full certificate.
        #[arg(long, default_value_t = 1)]
        selector: u8,
        /// Matching type: 1 SHA-256, 2 SHA-512, 0 full data.
        #[arg(long, default_value_t = 1)]
        mtype: u8,
        #[arg(long, default_value_t = 25)]
        port: u16,
        #[arg(long, default_value = "tcp")]
        proto: String,
        /// The host (TLSA base domain). Default: the leaf certificate's first DNS name.
        #[arg(long)]
        host: Option<String>,
        /// Take the certificate at this position in the file (0 = the first).
        #[arg(long, value_name = "N")]
        index: Option<usize>,
    },
    /// Explain one scenario step by step: the sender's decisions with their RFC sections, what
    /// each DNSSEC state means, the TLSA records, the certificates, and how to fix a failure.
    Explain {
        scenario: PathBuf,
        /// An in-process sender: reference or exchange-online.
        #[arg(long, default_value = "reference")]
        sender: String,
    },
    /// Serve a scenario's world on loopback until Ctrl-C, for dig, delv, posttls-finger and swaks;
    /// prints the ports first, then a line per DNS query and per SMTP connection.
    Serve {
        scenario: PathBuf,
        /// The world on its own addresses in a private namespace, behind a validating unbound,
        /// for tools entered with nsenter (root).
        #[arg(long)]
        namespace: bool,
    },
    /// Check a zone file's MX and TLSA records against the certificates the MX hosts serve,
    /// offline. Exit 1 when a host fails.
    Check {
        /// RFC 1035 master file (an export of the zone, signed or not).
        #[arg(long, value_name = "FILE")]
        zone: PathBuf,
        /// Origin for relative names before any $ORIGIN (default: from the file).
        #[arg(long, value_name = "NAME")]
        origin: Option<String>,
        /// The mail domain (default: the zone's apex).
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
        /// The chain an MX host serves, leaf first (repeatable).
        #[arg(long = "cert", value_name = "HOST=FILE.pem", value_parser = host_and_file)]
        certs: Vec<(String, PathBuf)>,
        /// The time for certificate and signature validity: YYYY-MM-DD or RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
}

/// `--dns-timeout`: the one duration syntax; a bare number stays milliseconds, as it was
/// documented before durations took units.
fn dns_timeout(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let text = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        format!("{t}ms")
    } else {
        t.to_string()
    };
    danesim::duration::parse(&text, &danesim::duration::DNS_TIMEOUT).map_err(|e| e.to_string())
}

fn host_and_file(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((h, f)) if !h.is_empty() && !f.is_empty() => Ok((h.to_string(), PathBuf::from(f))),
        _ => Err(format!(
            "`{s}`: expected HOST=FILE.pem, e.g. mx1.example.com=mx1-chain.pem"
        )),
    }
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
    let code = dispatch(Cli::parse());
    match danesim::output::status() {
        Ok(()) | Err(std::io::ErrorKind::BrokenPipe) => code,
        Err(_) => {
            let why = danesim::output::failure().unwrap_or_default();
            errln!("error: cannot write to stdout: {why}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::List { paths } => match load_all(&paths) {
            Ok(list) => {
                for s in &list {
                    outln!("{:<36} {:<20} {}", s.id, s.covers.join(","), s.title);
                }
                outln!("{} scenario(s)", list.len());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Anchor {
            scenario,
            delv,
            unbound,
        } => anchor(&scenario, delv, unbound),
        Command::Tlsa {
            cert,
            usage,
            selector,
            mtype,
            port,
            proto,
            host,
            index,
        } => tlsa(inspect::TlsaRequest {
            cert,
            usage,
            selector,
            matching: mtype,
            port,
            proto,
            host,
            index,
        }),
        Command::Check {
            zone,
            origin,
            domain,
            certs,
            now,
        } => check(zone, origin, domain, certs, now),
        Command::Explain { scenario, sender } => explain(&scenario, &sender),
        Command::Serve { scenario, namespace } => serve(&scenario, namespace),
        Command::Run {
            paths,
            sender,
            format,
            jobs,
            dns_timeout,
            workdir,
        } => {
            let sender = match SenderKind::parse(&sender) {
                Ok(s) => s,
                Err(e) => {
                    errln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let list = match load_all(&paths) {
                Ok(l) => l,
                Err(code) => return code,
            };
            if list.is_empty() {
                errln!("error: no scenario files (*.toml) under {}", show(&paths));
                return ExitCode::from(2);
            }
            if sender.is_external() {
                return namespace_run(list, sender, format, workdir);
            }
            let limits = runner::Limits {
                dns: dns_timeout.unwrap_or(runner::DNS_TIMEOUT),
                ..runner::Limits::default()
            };
            if let Some(e) = list.iter().find_map(|s| limits.check(s).err()) {
                errln!("error: {e}");
                return ExitCode::from(2);
            }
            run(list, sender, format, jobs.max(1), limits)
        }
    }
}

fn anchor(path: &std::path::Path, delv: Option<PathBuf>, unbound: Option<PathBuf>) -> ExitCode {
    let s = match scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            errln!("{:?}", miette::Report::new(e));
            return ExitCode::from(2);
        }
    };
    let prepared = match danesim::world::prepare(&s, &KeyStore::embedded()) {
        Ok(p) => p,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let ta = prepared.dns.trust_anchor();
    outln!(
        "; trust anchor of the world of scenario `{}` (fixed key: the same every run)",
        s.id
    );
    outln!("{}", ta.ds.trim_end());
    outln!("{}", ta.dnskey.trim_end());
    for (file, text, what) in [
        (delv, ta.delv_anchors(), "delv anchors"),
        (unbound, ta.unbound_anchor(), "unbound trust-anchor-file"),
    ] {
        if let Some(f) = file {
            if let Err(e) = std::fs::write(&f, text) {
                errln!("error: cannot write {}: {e}", f.display());
                return ExitCode::from(2);
            }
            errln!("wrote {what} to {}", f.display());
        }
    }
    ExitCode::SUCCESS
}

fn tlsa(req: inspect::TlsaRequest) -> ExitCode {
    match inspect::tlsa_line(&req) {
        Ok(line) => {
            for note in &line.notes {
                errln!("note: {note}");
            }
            outln!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn check(
    zone: PathBuf,
    origin: Option<String>,
    domain: Option<String>,
    certs: Vec<(String, PathBuf)>,
    now: Option<String>,
) -> ExitCode {
    let report = now.as_deref().map(inspect::parse_now).transpose().and_then(|now| {
        inspect::check(&inspect::CheckRequest {
            zone,
            origin,
            domain,
            certs,
            now: now.unwrap_or_else(time::OffsetDateTime::now_utc),
        })
    });
    match report {
        Ok(r) => {
            out!("{}", r.render());
            if r.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn explain(path: &std::path::Path, sender: &str) -> ExitCode {
    let sender = match SenderKind::parse(sender) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (s, rt) = match load_one(path).and_then(|s| Ok((s, runtime()?))) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let limits = runner::Limits::default();
    match rt.block_on(teach::explain(&s, &sender, &KeyStore::embedded(), limits)) {
        Ok(e) => {
            out!("{}", e.text);
            if e.verdict.acceptable() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(path: &std::path::Path, namespace: bool) -> ExitCode {
    let (s, rt) = match load_one(path).and_then(|s| Ok((s, runtime()?))) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if namespace {
        return serve_namespace(&s, rt);
    }
    let keys = KeyStore::embedded();
    match rt.block_on(async { teach::serve(&s, &keys, teach::shutdown_signals()?).await }) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `serve --namespace`: as root, re-run this command inside fresh namespaces (it becomes
/// their PID 1), then serve there. The host PID of `unshare` is passed in, because
/// `nsenter` needs it and inside the namespace this process is PID 1.
fn serve_namespace(s: &Scenario, rt: tokio::runtime::Runtime) -> ExitCode {
    use danesim::world::namespace;
    if !namespace::inside() {
        if let Err(e) = namespace::require_root("`serve --namespace`")
            .and_then(|_| danesim::sender::external::preflight(&SenderKind::Reference))
        {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
        // `unshare` sits in the new network and mount namespaces: the target for `nsenter`.
        // Its PID is known only once it runs, so the inner process reads it on stdin.
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        // Removed when it is dropped, after the namespace is gone.
        let dir = match danesim::world::workdir::scratch("danesim-serve-ns-") {
            Ok(d) => d,
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        return enter_namespace(&args, dir.path(), true);
    }
    let host_pid = namespace::host_pid_from_stdin().unwrap_or(0);
    let Some(workdir) = namespace::workdir_inside() else {
        errln!("error: inside the namespace without a work directory (internal)");
        return ExitCode::from(2);
    };
    let keys = KeyStore::embedded();
    let served =
        rt.block_on(async { teach::serve_namespace(s, &keys, host_pid, &workdir, teach::shutdown_signals()?).await });
    match served {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exactly one scenario, with `run`'s error reporting (file:line:col, exit 2).
fn load_one(path: &std::path::Path) -> Result<Scenario, ExitCode> {
    let mut list = load_all(&[path.to_path_buf()])?;
    if list.len() != 1 {
        errln!(
            "error: {} holds {} scenarios; name one scenario file",
            path.display(),
            list.len()
        );
        return Err(ExitCode::from(2));
    }
    Ok(list.remove(0))
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            errln!("error: cannot start the async runtime: {e}");
            ExitCode::from(2)
        })
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
        errln!("{:?}", miette::Report::new(e));
        ExitCode::from(2)
    })?;
    let mut ok = Vec::new();
    let mut bad = 0;
    for f in files {
        match scenario::load(&f) {
            Ok(s) => ok.push(s),
            Err(e) => {
                bad += 1;
                errln!("error: {e}");
                errln!("{:?}", miette::Report::new(e));
            }
        }
    }
    for e in scenario::duplicate_ids(&ok) {
        bad += 1;
        errln!("error: {e}");
        errln!("{:?}", miette::Report::new(e));
    }
    if bad > 0 {
        errln!("{bad} scenario file(s) could not be used; nothing was run");
        return Err(ExitCode::from(2));
    }
    Ok(ok)
}

fn run(list: Vec<Scenario>, sender: SenderKind, format: Format, jobs: usize, limits: runner::Limits) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
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
                let r = runner::run_with(&s, &sender, &keys, limits).await;
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
                errln!("error: {}: {e}", s.path.display());
            }
            Err(e) => {
                faults += 1;
                errln!("error: a scenario task failed: {e}");
            }
        }
    }
    print_results(outcomes, faults, &sender, format)
}

/// A real sender: re-enter this program inside a private namespace (as root), then run
/// every scenario there against one sender instance behind unbound.
fn namespace_run(list: Vec<Scenario>, sender: SenderKind, format: Format, workdir: Option<PathBuf>) -> ExitCode {
    use danesim::world::namespace;
    if !namespace::inside() {
        if let Err(e) = namespace::require_root(&format!("`--sender {sender}`"))
            .and_then(|_| danesim::sender::external::preflight(&sender))
        {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        // Decided here, outside, and passed in as an absolute path (world::workdir).
        let dir = match &workdir {
            Some(d) => danesim::world::workdir::claim(d),
            None => danesim::world::workdir::fresh(&format!("danesim-{}-", file_name_part(sender.name()))),
        };
        return match dir {
            Ok(dir) => enter_namespace(&args, &dir, false),
            Err(e) => {
                errln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Some(workdir) = namespace::workdir_inside() else {
        errln!("error: inside the namespace without a work directory (internal)");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let keys = KeyStore::embedded();
    let done = rt.block_on(async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => return Err(format!("cannot watch SIGTERM: {e}")),
        };
        // This process is PID 1 of the namespace: when it returns, the kernel kills every
        // process left there, so an interrupted run leaves no Postfix, Exim or unbound behind.
        tokio::select! {
            r = runner::run_external(&list, &sender, &keys, &workdir) => r.map_err(|e| e.to_string()),
            _ = tokio::signal::ctrl_c() => Err("interrupted (SIGINT); every process of the run is stopped with the namespace".into()),
            _ = term.recv() => Err("terminated (SIGTERM); every process of the run is stopped with the namespace".into()),
        }
    });
    errln!("work directory (configs and logs of the run): {}", workdir.display());
    let (results, timings) = match done {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            // 128 + the signal, as the top process reports it too (world::namespace::enter).
            let code = if e.starts_with("interrupted") {
                namespace::signal_exit_code(rustix::process::Signal::INT)
            } else if e.starts_with("terminated") {
                namespace::signal_exit_code(rustix::process::Signal::TERM)
            } else {
                2
            };
            return ExitCode::from(code);
        }
    };
    let mut outcomes = Vec::new();
    let mut faults = 0;
    for (s, r) in list.iter().zip(results) {
        match r {
            Ok(run) => outcomes.push(run),
            Err(e) => {
                faults += 1;
                errln!("error: {}: {e}", s.path.display());
            }
        }
    }
    if std::env::var_os("DANESIM_TIMINGS").is_some() {
        let total: f64 = timings.scenarios.iter().map(|(_, d)| d.as_secs_f64()).sum();
        errln!(
            "timings: namespace+unbound {:.3} s, {} start {:.3} s, {} scenario(s) {:.3} s ({:.3} s each)",
            timings.lab_setup.as_secs_f64(),
            sender.name(),
            timings.sender_setup.as_secs_f64(),
            timings.scenarios.len(),
            total,
            total / timings.scenarios.len().max(1) as f64
        );
        for (id, d) in &timings.scenarios {
            errln!("timing: {id} {:.3} s", d.as_secs_f64());
        }
    }
    print_results(outcomes, faults, &sender, format)
}

/// The top process of namespace mode: runs `args` inside fresh namespaces and waits,
/// passing SIGTERM and SIGINT on (`world::namespace::enter`). Exit code: the inner run's,
/// or 128 + the signal that stopped it (143 for SIGTERM, 130 for SIGINT).
fn enter_namespace(args: &[std::ffi::OsString], workdir: &std::path::Path, tell_pid: bool) -> ExitCode {
    use danesim::world::namespace;
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let env = [(namespace::WORKDIR_ENV, workdir.display().to_string())];
    match rt.block_on(namespace::enter(args, &env, tell_pid)) {
        Ok(ended) => ExitCode::from(ended.exit_code()),
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// A sender's name as part of a directory name (a profile's name may hold anything).
fn file_name_part(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

fn print_results(outcomes: Vec<runner::RunResult>, faults: usize, sender: &SenderKind, format: Format) -> ExitCode {
    match format {
        Format::Human => {
            for r in &outcomes {
                outln!("{}", report::line(&r.outcome));
            }
            let all: Vec<_> = outcomes.iter().map(|r| r.outcome.clone()).collect();
            let summary = report::summary(&all, sender.name());
            // A scenario that ended in an error (printed above, on stderr) is counted, so
            // the summary never reads as if nothing ran.
            match faults {
                0 => outln!("{summary}"),
                n => outln!("{summary}, {n} error(s) (exit 2)"),
            }
        }
        Format::Json => {
            let items: Vec<serde_json::Value> = outcomes.iter().map(|r| r.outcome.redacted(&r.redactions)).collect();
            let passed = outcomes.iter().filter(|r| r.outcome.verdict.passed()).count();
            let acceptable = outcomes.iter().filter(|r| r.outcome.verdict.acceptable()).count();
            let doc = serde_json::json!({
                "sender": sender.name(),
                "outcomes": items,
                "summary": { "scenarios": outcomes.len(), "passed": passed, "deviations": acceptable - passed, "violations": outcomes.len() - acceptable, "errors": faults },
            });
            outln!(
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
            out!("{text}");
        }
    }
    if faults > 0 {
        return ExitCode::from(2);
    }
    if outcomes.iter().all(|r| r.outcome.verdict.acceptable()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
