//! Real senders as a user meets them, beyond the per-scenario snapshots: the command
//! adapter catching a sender that is not DANE-aware, and the guarantee that no Postfix,
//! Exim or unbound outlives a run, even one interrupted with Ctrl-C or stopped by a
//! SIGTERM or SIGINT to the top process alone (issue 14).
//!
//! These need root and the packages (`ci/install-deps`). Without them each trial is
//! ignored with the reason printed, except under CI (`CI` set), where it fails.

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use danesim::world::NAMESPACE_DNS;

fn main() {
    let args = Arguments::from_args();
    let ci = std::env::var_os("CI").is_some();
    type Check = fn() -> Result<(), Failed>;
    let trials: Vec<(&str, &str, Check)> = vec![
        (
            "swaks_sends_in_cleartext_on_the_downgrade_and_danesim_says_noclear",
            "swaks",
            swaks_downgrade,
        ),
        (
            "swaks_trusts_an_interceptor_and_danesim_says_dane_match",
            "swaks",
            swaks_intercepted,
        ),
        (
            "a_profile_relays_where_danesim_relay_host_and_port_say",
            "swaks",
            swaks_relay,
        ),
        (
            "a_profile_that_crashes_or_hangs_is_an_error_never_a_pass",
            "swaks",
            crashing_and_hanging_profiles,
        ),
        ("a_profile_reads_the_message_on_its_stdin", "swaks", stdin_profile),
        (
            "a_sender_that_queues_and_exits_0_is_deferred_not_delivered",
            "swaks",
            queued_is_not_delivered,
        ),
        (
            "a_probe_is_judged_on_its_claims_a_false_or_missing_one_fails",
            "swaks",
            probe_claims,
        ),
        (
            "a_sender_that_logs_only_to_syslog_is_read_from_the_namespaces_dev_log",
            "swaks",
            syslog_profile,
        ),
        (
            "a_profile_sees_a_qualified_host_name_and_the_namespaces_own_hosts_file",
            "swaks",
            identity_profile,
        ),
        (
            "a_profile_claim_names_one_host_and_two_hosts_are_judged_apart",
            "swaks",
            claims_per_host,
        ),
        (
            "ctrl_c_in_the_middle_of_a_postfix_run_leaves_no_process",
            "postfix",
            ctrl_c_postfix,
        ),
        (
            "sigterm_to_the_top_pid_of_a_postfix_run_stops_it_and_leaves_no_process",
            "postfix",
            sigterm_to_the_top_pid,
        ),
        (
            "sigint_to_the_top_pid_of_a_postfix_run_stops_it_and_leaves_no_process",
            "postfix",
            sigint_to_the_top_pid,
        ),
        ("a_finished_exim_run_leaves_no_process", "exim", exim_finishes_clean),
        (
            "a_relative_workdir_works_and_is_kept_with_unbounds_log",
            "postfix",
            relative_workdir,
        ),
        (
            "a_non_empty_workdir_or_a_symlink_is_refused_with_exit_2",
            "postfix",
            unsafe_workdirs_refused,
        ),
        (
            "unbound_asks_only_the_world_even_for_a_name_outside_it",
            "reference",
            unbound_stays_in_the_world,
        ),
        (
            "the_default_workdir_is_new_private_and_unpredictable",
            "exim",
            default_workdir,
        ),
        (
            "without_libfaketime_a_real_sender_exits_2_and_says_install_faketime",
            "postfix",
            no_libfaketime,
        ),
    ];
    let mut out = Vec::new();
    for (name, sender, f) in trials {
        let missing = unavailable(sender);
        if let Some(why) = &missing
            && !ci
        {
            eprintln!("note: {name} is ignored: {why}");
        }
        let ignored = missing.is_some() && !ci;
        out.push(
            Trial::test(name, move || match missing {
                Some(why) => Err(format!("CI must run this test, but {why}").into()),
                None => f(),
            })
            .with_ignored_flag(ignored),
        );
    }
    libtest_mimic::run(&args, out).exit();
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unavailable(sender: &str) -> Option<String> {
    if danesim::world::namespace::effective_uid() != Some(0) {
        return Some("it needs root (run `ci/test` as root)".into());
    }
    let kind = match sender {
        "swaks" => {
            danesim::sender::SenderKind::parse(&root().join("fixtures/senders/swaks.toml").display().to_string())
        }
        s => danesim::sender::SenderKind::parse(s),
    };
    match kind {
        Ok(k) => danesim::sender::external::preflight(&k).err().map(|e| e.to_string()),
        Err(e) => Some(e),
    }
}

fn workdir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("danesim-rs-{tag}-{}", std::process::id()))
}

/// Processes whose command line, environment or working directory mention `dir`: every
/// process a run starts works in its work directory (unbound `-c dir/...`, Postfix
/// `MAIL_CONFIG` and its queue directory, Exim `-C dir/...`).
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        let p = e.path();
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(p.join("environ")).unwrap_or_default();
        let cwd = std::fs::read_link(p.join("cwd"))
            .map(|c| c.display().to_string())
            .unwrap_or_default();
        let text = |b: &[u8]| String::from_utf8_lossy(b).replace('\0', " ");
        if text(&cmdline).contains(&needle) || text(&environ).contains(&needle) || cwd.starts_with(&needle) {
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            found.push(format!("{pid} {} ({})", comm.trim(), text(&cmdline).trim()));
        }
    }
    found
}

/// No process of the run in `dir` is left; the directory is removed either way.
fn nothing_left(dir: &Path) -> Result<(), Failed> {
    let left = processes_using(dir);
    let _ = std::fs::remove_dir_all(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("processes left after the run: {left:?}").into())
    }
}

/// `danesim run --sender SENDER PATHS... --workdir DIR` from the repository root.
fn danesim_run(dir: &Path, args: &[&str]) -> Result<std::process::Output, Failed> {
    Command::new(env!("CARGO_BIN_EXE_danesim"))
        .arg("run")
        .arg("--sender")
        .args(args)
        .arg("--workdir")
        .arg(dir)
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run danesim: {e}").into())
}

fn swaks_downgrade() -> Result<(), Failed> {
    let dir = workdir("swaks");
    let out = danesim_run(
        &dir,
        &[
            "fixtures/senders/swaks.toml",
            "scenarios/starttls/downgrade-attempt.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!("expected exit 1 (a violation), got {}\n{stdout}\n{stderr}", out.status).into());
    }
    let line = stdout
        .lines()
        .find(|l| l.contains("downgrade-attempt"))
        .ok_or_else(|| format!("no line for downgrade-attempt:\n{stdout}"))?;
    if !line.starts_with("VIOLATION") {
        return Err(format!("expected a VIOLATION line, got: {line}").into());
    }
    if !stdout.contains(
        "NOCLEAR (RFC 7672 §2.2): mx1.example.test. (192.0.2.10) received MAIL FROM:<sender@client.test> in cleartext",
    ) {
        return Err(format!("the NOCLEAR violation is not named:\n{stdout}").into());
    }
    nothing_left(&dir)
}

/// Issue 16: a sender killed by a signal, or still running at its timeout, is an error of
/// the sender (exit 2, the ERROR line), never a DEFER that a scenario expecting DEFER would
/// pass; the error quotes what the program printed, also when it was killed.
fn crashing_and_hanging_profiles() -> Result<(), Failed> {
    for (profile, says, printed) in [
        (
            "tests/profiles/crashes.toml",
            "killed by signal 6 (SIGABRT)",
            "about to crash",
        ),
        (
            "tests/profiles/hangs.toml",
            "did not finish within 2s",
            "connecting to example.test",
        ),
    ] {
        let dir = workdir("crash");
        // A scenario whose expectation is DEFER: a deferral would pass it.
        let out = danesim_run(&dir, &[profile, "scenarios/dane-ee/renewed-cert.toml"])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || stdout.contains("PASS") {
            return Err(format!(
                "{profile}: expected exit 2 and no PASS, got {}
{stdout}
{stderr}",
                out.status
            )
            .into());
        }
        let all = format!("{stdout}{stderr}");
        if !all.contains(says) || !all.contains(printed) {
            return Err(format!(
                "{profile}: the error must say `{says}` and quote `{printed}`:
{all}"
            )
            .into());
        }
        nothing_left(&dir)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Issue 16: `stdin = "message"` gives the program the message on its standard input; the
/// profile's script delivers what it read (swaks, no DANE: OPP where the catalogue allows it).
fn stdin_profile() -> Result<(), Failed> {
    let dir = workdir("stdin");
    let out = danesim_run(
        &dir,
        &[
            "tests/profiles/reads-stdin.toml",
            "scenarios/tlsa-lookup/missing-tlsa.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().find(|l| l.contains("missing-tlsa")).unwrap_or_default();
    if out.status.code() != Some(0) || !line.starts_with("PASS") {
        return Err(format!(
            "expected a PASS (OPP) from the message read on stdin, got {}
{stdout}
{stderr}",
            out.status
        )
        .into());
    }
    nothing_left(&dir)
}

/// An MTA that queues and exits 0: its `[queue]` listing still names the message, so the
/// attempt is DEFER, never a delivery (and so no REPORT violation, which a claimed delivery
/// with nothing accepted would be). Without the [queue], the same program reads as sent.
fn queued_is_not_delivered() -> Result<(), Failed> {
    let dir = workdir("queued");
    let out = danesim_run(
        &dir,
        &[
            "tests/profiles/queues-and-exits-0.toml",
            "scenarios/dane-ee/positive-control.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .find(|l| l.contains("positive-control"))
        .unwrap_or_default();
    if out.status.code() != Some(1)
        || !line.contains("DEFER")
        || !stdout.contains("still queued (user@example.test queued)")
        || stdout.contains("REPORT")
    {
        return Err(format!(
            "expected DEFER, still queued, no REPORT; got {}\n{stdout}\n{stderr}",
            out.status
        )
        .into());
    }
    nothing_left(&dir)?;
    // The same program without its queue listing claims a delivery the witness never saw.
    let plain = dir.with_extension("plain.toml");
    let text =
        std::fs::read_to_string(root().join("tests/profiles/queues-and-exits-0.toml")).map_err(|e| format!("{e}"))?;
    std::fs::write(&plain, text.split("\n[queue]\n").next().unwrap_or_default()).map_err(|e| format!("{e}"))?;
    let dir2 = workdir("queued-plain");
    let out = danesim_run(
        &dir2,
        &[
            plain.to_str().unwrap_or_default(),
            "scenarios/dane-ee/positive-control.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_file(&plain);
    if !stdout.contains("REPORT") {
        return Err(
            format!("without [queue] the exit status 0 should claim a delivery (REPORT):\n{stdout}\n{stderr}").into(),
        );
    }
    nothing_left(&dir2)
}

/// A probe sends no mail and is judged on its per-host claims (witness/probe.rs):
/// posttls-finger passes where it authenticates the matching host and refuses the renewed
/// one; a probe that claims verification after a mismatched chain fails PROBE-CLAIM, and
/// one that authenticates nothing where AUTH is expected fails PROBE-HOST, and one that
/// delivers fails PROBE-MAIL.
fn probe_claims() -> Result<(), Failed> {
    let cases: [(&str, &str, Option<&str>); 6] = [
        ("posttls-finger", "scenarios/dane-ee/positive-control.toml", None),
        ("posttls-finger", "scenarios/dane-ee/renewed-cert.toml", None),
        (
            "tests/profiles/probe-liar.toml",
            "scenarios/dane-ee/renewed-cert.toml",
            Some("PROBE-CLAIM"),
        ),
        (
            "tests/profiles/probe-liar.toml",
            "scenarios/dane-ee/positive-control.toml",
            None,
        ),
        (
            "tests/profiles/probe-blind.toml",
            "scenarios/dane-ee/positive-control.toml",
            Some("PROBE-HOST"),
        ),
        (
            "tests/profiles/probe-sends-mail.toml",
            "scenarios/tlsa-lookup/missing-tlsa.toml",
            Some("PROBE-MAIL"),
        ),
    ];
    for (n, (sender, scenario, fails)) in cases.into_iter().enumerate() {
        let dir = workdir(&format!("probe{n}"));
        let out = danesim_run(&dir, &[sender, scenario])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = match fails {
            None => out.status.code() == Some(0) && stdout.lines().any(|l| l.starts_with("PASS")),
            Some(check) => out.status.code() == Some(1) && stdout.contains(&format!("{check} (RFC ")),
        };
        if !ok {
            return Err(format!(
                "{sender} on {scenario}: expected {fails:?}, got {}\n{stdout}\n{stderr}",
                out.status
            )
            .into());
        }
        nothing_left(&dir)?;
    }
    Ok(())
}

/// A sender that reports only through syslog(3): its outcome comes from what danesim's
/// `/dev/log` received inside the namespace, and the host's `/dev` is left as it was.
fn syslog_profile() -> Result<(), Failed> {
    let dir = workdir("syslog");
    let had_dev_log = std::fs::symlink_metadata("/dev/log").is_ok();
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args([
            "run",
            "--format",
            "json",
            "--sender",
            "tests/profiles/syslog.toml",
            "--workdir",
        ])
        .arg(&dir)
        .arg("scenarios/tlsa-lookup/missing-tlsa.toml")
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("no JSON ({e}); stderr: {stderr}"))?;
    let o = &doc["outcomes"][0];
    let status = o["status"].as_str().unwrap_or_default();
    let trace = o["trace"].to_string();
    if out.status.code() != Some(0)
        || o["verdict"] != "pass"
        || !status.contains("id=missing-tlsa status=0")
        || !trace.contains("fakemta: id=missing-tlsa")
    {
        return Err(format!(
            "expected a PASS read from syslog, got {} {o}
{stderr}",
            out.status
        )
        .into());
    }
    let logged = std::fs::read_to_string(dir.join("syslog/syslog")).unwrap_or_default();
    if !logged.contains("fakemta[") {
        return Err(format!("the syslog file has no fakemta line: {logged:?}").into());
    }
    if std::fs::symlink_metadata("/dev/log").is_ok() != had_dev_log {
        return Err("the host's /dev/log changed: the namespace's /dev must be its own".into());
    }
    nothing_left(&dir)
}

/// Issue 16 must-show: a sender that authenticated mx1 (its rule names mx1's address) and
/// then delivered to mx2 over TLS it never verified is judged per host: mx2 is TLS, not
/// AUTH, and the run fails. (The old `verified_marker` marked every host verified: AUTH.)
fn claims_per_host() -> Result<(), Failed> {
    let dir = workdir("claims");
    let out = danesim_run(
        &dir,
        &[
            "tests/profiles/claims-one-host.toml",
            "scenarios/multi-mx/secondary-mx-dane.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!("expected exit 1 (a violation), got {}\n{stdout}\n{stderr}", out.status).into());
    }
    for says in [
        "RESULT (RFC 7672 §2.2.1): expected AUTH, the sender reported TLS",
        "mx2.example.test.: expected AUTH, got TLS",
    ] {
        if !stdout.contains(says) {
            return Err(format!("`{says}` missing:\n{stdout}").into());
        }
    }
    nothing_left(&dir)
}

/// Issue 16: inside the namespace the sender's host name is `client.test`, and the
/// namespace's own /etc/hosts resolves it (no DNS lookup of the machine's name, nothing of
/// the host's hosts file).
fn identity_profile() -> Result<(), Failed> {
    let dir = workdir("identity");
    let out = danesim_run(
        &dir,
        &[
            "tests/profiles/identity.toml",
            "scenarios/dane-ee/renewed-cert.toml",
            "--format",
            "json",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in ["name=client.test", "fqdn=client.test", "127.0.1.1       client.test"] {
        if !stdout.contains(line) {
            return Err(format!("`{line}` missing from the program's output:\n{stdout}").into());
        }
    }
    nothing_left(&dir)
}

/// The profile variables of a relay route (issue 15) reach the program: swaks, sent to
/// `${DANESIM_RELAY_HOST}` on `${DANESIM_RELAY_PORT}`, delivers at the endpoint on 2525. It is
/// right where no TLSA applies to that port, and held to AUTH where `_2525._tcp` is secure.
fn swaks_relay() -> Result<(), Failed> {
    let dir = workdir("swaks-relay");
    let out = danesim_run(&dir, &["fixtures/senders/swaks-relay.toml", "scenarios/routes"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!("expected exit 1 (a violation), got {}\n{stdout}\n{stderr}", out.status).into());
    }
    let line = |id: &str| stdout.lines().find(|l| l.contains(id)).unwrap_or_default().to_string();
    if !line("relay-2525-only-port-25-tlsa").starts_with("PASS") {
        return Err(format!("swaks must deliver opportunistically to the relay on 2525:\n{stdout}").into());
    }
    let matching = line("relay-2525-matching-tlsa");
    if !matching.starts_with("VIOLATION")
        || !stdout.contains("RESULT (RFC 7672 §2.2.3): expected AUTH, the sender reported TLS")
    {
        return Err(
            format!("an unauthenticated delivery on a committed relay route must be a violation:\n{stdout}").into(),
        );
    }
    nothing_left(&dir)
}

/// A sender that checks no certificate hands the message to a man in the middle; the
/// endpoint behind it cannot see that, the attacker's relay can (RFC 7672 §3.2).
fn swaks_intercepted() -> Result<(), Failed> {
    let dir = workdir("swaks-mitm");
    let out = danesim_run(
        &dir,
        &[
            "fixtures/senders/swaks.toml",
            "scenarios/attacker/stls-07-mitm-intercept.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!("expected exit 1 (a violation), got {}\n{stdout}\n{stderr}", out.status).into());
    }
    if !stdout.contains(
        "DANE-MATCH (RFC 7672 §3.2): mx1.example.test. (192.0.2.10) accepted 1 message(s) the sender handed to an interceptor whose chain no usable TLSA record of its routes matches",
    ) {
        return Err(format!("the interception is not named:\n{stdout}").into());
    }
    nothing_left(&dir)
}

/// Who gets the signal that stops a Postfix run.
#[derive(Clone, Copy)]
enum Target {
    /// The whole foreground process group, as a terminal's Ctrl-C does.
    Group,
    /// The top danesim process alone, as a supervisor or a CI timeout does (`kill -TERM <pid>`).
    TopPid,
}

fn ctrl_c_postfix() -> Result<(), Failed> {
    stop_postfix_run("ctrlc", Target::Group, "INT", 130, "interrupted")
}

fn sigterm_to_the_top_pid() -> Result<(), Failed> {
    stop_postfix_run("sigterm", Target::TopPid, "TERM", 143, "terminated")
}

fn sigint_to_the_top_pid() -> Result<(), Failed> {
    stop_postfix_run("sigint", Target::TopPid, "INT", 130, "interrupted")
}

/// Starts a Postfix run over every scenario, sends `signal` to `target` in its middle, and
/// checks that danesim exits `code`, says `word`, and leaves no process behind.
fn stop_postfix_run(tag: &str, target: Target, signal: &str, code: i32, word: &str) -> Result<(), Failed> {
    let dir = workdir(tag);
    let mut child = std::os::unix::process::CommandExt::process_group(
        Command::new(env!("CARGO_BIN_EXE_danesim"))
            .args(["run", "--sender", "postfix", "scenarios/"])
            .arg("--workdir")
            .arg(&dir)
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        0,
    )
    .spawn()
    .map_err(|e| format!("cannot run danesim: {e}"))?;
    let pid = child.id();
    // Wait until Postfix has delivered at least one message: the run is in its middle.
    let maillog = dir.join("postfix/maillog");
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(&maillog).unwrap_or_default();
        if log.contains("status=") {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            return Err("the postfix run never got to its first delivery".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The check below must be able to fail: right now there are processes to find.
    let running = processes_using(&dir);
    let has = |name: &str| running.iter().any(|p| p.split_whitespace().nth(1) == Some(name));
    if !(has("master") && has("unbound")) {
        let _ = child.kill();
        return Err(format!("expected postfix master and unbound mid-run, found {running:?}").into());
    }
    // The group is the child's own (process_group(0)), so its id is the child's pid.
    let whom = match target {
        Target::Group => format!("-{pid}"),
        Target::TopPid => pid.to_string(),
    };
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", &whom])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -{signal} {whom} failed").into());
    }
    let started = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s.code();
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err(format!("danesim did not stop within 20 s of SIG{signal} to {whom}").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    // The kernel empties the PID namespace once its first process is gone; give it a moment.
    let mut left = processes_using(&dir);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        left = processes_using(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if exit != Some(code) {
        return Err(format!("expected exit {code} after SIG{signal} to {whom}, got {exit:?}; stderr: {stderr}").into());
    }
    if !stderr.contains(word) {
        return Err(format!("danesim did not say `{word}`: {stderr}").into());
    }
    if !left.is_empty() {
        return Err(format!("processes left after SIG{signal} to {whom}: {left:?}").into());
    }
    Ok(())
}

fn exim_finishes_clean() -> Result<(), Failed> {
    let dir = workdir("exim");
    let out = danesim_run(
        &dir,
        &[
            "exim",
            "scenarios/dane-ee/renewed-cert.toml",
            "scenarios/multi-mx/secondary-mx.toml",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() != Some(0) {
        return Err(format!(
            "expected exit 0, got {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if !(stdout.contains("PASS       renewed-cert") && stdout.contains("OPP via mx2.example.test.")) {
        return Err(format!("unexpected report:\n{stdout}").into());
    }
    nothing_left(&dir)
}

/// `--workdir rel` from another directory: made absolute before unbound (which reads its
/// paths relative to its own directory) starts; the log it names is there afterwards.
fn relative_workdir() -> Result<(), Failed> {
    let parent = workdir("relative");
    std::fs::create_dir_all(&parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--sender", "postfix", "--workdir", "rel"])
        .arg(root().join("scenarios/dane-ee/positive-control.toml"))
        .current_dir(&parent)
        .output()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dir = parent.join("rel");
    let kept = dir.join("unbound.log").is_file();
    let named = stderr.contains(&format!(
        "work directory (configs and logs of the run): {}",
        dir.display()
    ));
    let left = nothing_left(&parent);
    if out.status.code() != Some(0) || !stdout.contains("PASS       positive-control") {
        return Err(format!(
            "expected a pass with a relative --workdir, got {}\n{stdout}\n{stderr}",
            out.status
        )
        .into());
    }
    if !(kept && named) {
        return Err(format!("the absolute work directory with unbound.log is not kept and named: {stderr}").into());
    }
    left
}

/// A directory that is not new (a previous run's, or a symlink planted by someone else) is
/// refused before anything runs, and nothing is written into it or through it.
fn unsafe_workdirs_refused() -> Result<(), Failed> {
    let base = workdir("refused");
    let full = base.join("full");
    let target = base.join("target");
    let link = base.join("link");
    let made = std::fs::create_dir_all(&full)
        .and_then(|_| std::fs::write(full.join("maillog"), "a previous run"))
        .and_then(|_| std::fs::create_dir_all(&target))
        .and_then(|_| std::os::unix::fs::symlink(&target, &link));
    made.map_err(|e| format!("cannot prepare {}: {e}", base.display()))?;
    let mut result = Ok(());
    for (dir, why) in [(&full, "is not empty"), (&link, "is a symbolic link")] {
        let out = danesim_run(dir, &["postfix", "scenarios/dane-ee/positive-control.toml"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !stderr.contains(why) || !stderr.contains(&dir.display().to_string()) {
            result = Err(format!(
                "expected exit 2 saying {} {why}, got {}: {stderr}",
                dir.display(),
                out.status
            ));
        }
    }
    let written: Vec<_> = std::fs::read_dir(&full)
        .into_iter()
        .flatten()
        .chain(std::fs::read_dir(&target).into_iter().flatten())
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let _ = std::fs::remove_dir_all(&base);
    result?;
    if written.len() != 1 {
        return Err(format!("files were written into a refused directory: {written:?}").into());
    }
    Ok(())
}

/// Without `--workdir`: a new directory with a random name (not the pid), that only its
/// owner may list or write (the sender's own users may only pass through: mode 0711 at most).
fn default_workdir() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--sender", "exim", "scenarios/dane-ee/positive-control.toml"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("work directory (configs and logs of the run): "))
        .map(PathBuf::from)
        .ok_or_else(|| format!("no work directory named: {stderr}"))?;
    let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let left = nothing_left(&dir);
    if out.status.code() != Some(0) {
        return Err(format!("expected exit 0, got {}: {stderr}", out.status).into());
    }
    let suffix = name.strip_prefix("danesim-exim-").unwrap_or_default();
    if !dir.starts_with(std::env::temp_dir()) || suffix.is_empty() || suffix.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("not a fresh unpredictable name: {}", dir.display()).into());
    }
    match mode {
        Ok(m) if m & 0o066 == 0 => left,
        Ok(m) => Err(format!("{} has mode {m:o}; others may read or write it", dir.display()).into()),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display()).into()),
    }
}

/// A name outside the world (`www.example.com.`): without root hints of its own, the
/// namespace's unbound asks only the world's server (before, its infrastructure cache
/// listed the 13 root servers, reached for and missed only because there is no route).
/// `serve --namespace` keeps the namespace up for `nsenter`; a SIGTERM to its top PID stops it.
fn unbound_stays_in_the_world() -> Result<(), Failed> {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(["serve", "--namespace", "scenarios/dane-ee/positive-control.toml"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    // Read on until it exits: a serve whose reader leaves stops (a closed stdout).
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let ready = line == "ready";
        lines.push(line);
        if ready {
            break;
        }
    }
    let field = |key: &str| lines.iter().find_map(|l| l.strip_prefix(key).map(str::to_string));
    let (Some(target), Some(anchor)) = (field("namespace "), field("anchor ")) else {
        let _ = child.kill();
        return Err(format!("serve --namespace did not get ready: {lines:?}").into());
    };
    let dir = Path::new(&anchor)
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let inside = |tool: &str, args: &[&str]| {
        Command::new("nsenter")
            .args(["--target", &target, "--net", "--mount", "--", tool])
            .args(args)
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
    };
    let asked = inside("dig", &["+tries=1", "+time=5", "www.example.com", "A"]);
    let conf = dir.join("unbound.conf").display().to_string();
    let infra = inside("unbound-control", &["-c", &conf, "dump_infra"]);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err("serve --namespace did not stop within 20 s of SIGTERM to its top PID".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let asked = asked.map_err(|e| format!("cannot run dig in the namespace: {e}"))?;
    let infra = infra.map_err(|e| format!("cannot run unbound-control in the namespace: {e}"))?;
    if !asked.contains("status: SERVFAIL") && !asked.contains("status: REFUSED") {
        return Err(format!("a name outside the world resolved?\n{asked}").into());
    }
    let servers: Vec<&str> = infra.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let world = NAMESPACE_DNS.to_string();
    if servers.is_empty() || servers.iter().any(|s| *s != world) {
        return Err(format!("unbound asked servers outside the world ({world}): {servers:?}\n{infra}\n{asked}").into());
    }
    if status.code() != Some(0) {
        return Err(format!("serve --namespace exited {status} after SIGTERM (it stops in order: 0)").into());
    }
    nothing_left(&dir)
}

/// The world clock's preflight: no libfaketime (here: a named one that does not exist), no
/// run, exit 2 with what to install, before any namespace or process is made.
fn no_libfaketime() -> Result<(), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(["run", "--sender", "postfix", "scenarios/dane-ee/positive-control.toml"])
        .current_dir(root())
        .env(danesim::world::clock::LIBRARY_ENV, "/nonexistent/libfaketime.so.1")
        .output()
        .map_err(|e| format!("cannot run danesim: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !stderr.contains("apt-get install faketime") {
        return Err(format!(
            "expected exit 2 naming `apt-get install faketime`, got {}: {stderr}",
            out.status
        )
        .into());
    }
    Ok(())
}
