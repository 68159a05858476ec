//! The teaching commands as a learner meets them: `danesim explain` (snapshots of the seed
//! scenarios' explanations, and every catalogue scenario explained without a fault) and
//! `danesim serve` (a world that real tools, dig, delv and swaks, can use, and that stops
//! cleanly on SIGINT).
//!
//! The serve test needs dig and delv (bind9-dnsutils) and swaks; `ci/install-deps` installs
//! them. It never skips: without a tool it fails and says what to install.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
mod common;

use common::{danesim, root};

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Explains one scenario, checks it is deterministic and free of run-specific details,
/// and snapshots it as `explain-<id>@<sender>`.
fn explained(file: &str, sender: &str) {
    let (code, out, err) = danesim(&["explain", file, "--sender", sender]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for (what, bad) in [("a loopback address", "127.0.0.1"), ("a temp path", "/tmp/")] {
        assert!(!out.contains(bad), "the explanation shows {what}:\n{out}");
    }
    let (_, again, _) = danesim(&["explain", file, "--sender", sender]);
    assert_eq!(out, again, "two runs of `explain {file}` differ");
    let id = Path::new(file).file_stem().expect("a file name").to_string_lossy();
    snapshot(&format!("explain-{id}@{sender}"), &out);
}

#[test]
fn explain_renewed_cert() {
    explained("scenarios/dane-ee/renewed-cert.toml", "reference");
}

#[test]
fn explain_missing_tlsa() {
    explained("scenarios/tlsa-lookup/missing-tlsa.toml", "reference");
}

#[test]
fn explain_secondary_mx() {
    explained("scenarios/multi-mx/secondary-mx.toml", "reference");
}

#[test]
fn explain_downgrade_attempt() {
    explained("scenarios/starttls/downgrade-attempt.toml", "reference");
}

#[test]
fn explain_hybrid_cert_renewal_as_exchange_online() {
    explained("scenarios/timeline/hybrid-cert-renewal.toml", "exchange-online");
}

/// What a learner must find in an explanation: the DNSSEC state with its meaning, the
/// TLSA record's fields, the presented certificate and the comparison, and a fix.
#[test]
fn explanations_show_states_records_certificates_and_a_fix() {
    let (code, out, _) = danesim(&["explain", "scenarios/dane-ee/renewed-cert.toml"]);
    assert_eq!(code, 0, "{out}");
    for needle in [
        "DNSSEC secure: every signature from the trust anchor",
        "fields: DANE-EE(3)",
        "it matches `mx1-old` of this world",
        "presented at depth 0: `mx1-new`",
        "depth 0 would need 3 1 1 ABA5ADDB",
        "[RFC 7672 §3.2, §2.2]",
        "_25._tcp.mx1.example.test. IN TLSA 3 1 1 ABA5ADDB552B7C6CE0D226815BD0535C59F96F9B351AE3477617E032F9CA15A2",
    ] {
        assert!(out.contains(needle), "`{needle}` is missing from:\n{out}");
    }
}

/// A relay route (issue 15) is explained as one: no MX, the relay's port in the TLSA owner
/// the fix publishes, and the port in `danesim tlsa`'s hint.
#[test]
fn explain_relay_2525_only_port_25_tlsa() {
    explained("scenarios/routes/relay-2525-only-port-25-tlsa.toml", "reference");
    let (code, out, _) = danesim(&["explain", "scenarios/routes/relay-2525-only-port-25-tlsa.toml"]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "route: the sender relays all mail to [mx1.example.test]:2525",
        "mx1.example.test. (relay): OPP",
        "_2525._tcp.mx1.example.test. IN TLSA 3 1 1 ",
        "--host mx1.example.test --port 2525",
        "mx1.example.test. at 192.0.2.10:2525: presents mx1",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
}

/// Every catalogue scenario can be explained: the sender passes and the text has a fix section.
#[test]
fn every_scenario_can_be_explained() {
    let files = danesim::scenario::discover(&[root().join("scenarios")]).expect("scenarios are readable");
    assert!(!files.is_empty());
    let mut failed = Vec::new();
    for f in files {
        let path = f.to_string_lossy().into_owned();
        let (code, out, err) = danesim(&["explain", &path]);
        if code != 0 || !out.contains("\nHow to fix it\n") || !out.contains("Decision trace") {
            failed.push(format!("{path}: exit {code}\n{err}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn explain_reports_bad_input_like_run() {
    let (code, _, err) = danesim(&["explain", "scenarios/no-such-scenario.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-scenario.toml"), "{err}");

    let dir = std::env::temp_dir().join(format!("danesim-teach-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "id = \"x\"\ntitle = 3\n").expect("write");
    for cmd in ["explain", "serve"] {
        let (code, _, err) = danesim(&[cmd, broken.to_str().expect("utf-8 path")]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("broken.toml:2:9"), "{cmd}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (code, _, err) = danesim(&[
        "explain",
        "--sender",
        "postfix",
        "scenarios/dane-ee/positive-control.toml",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--sender reference"), "{err}");
}

/// A program the serve test drives, or a failure that says how to install it.
fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: install {package} (`apt-get install {package}`, which ci/install-deps does)");
}

/// Kills the server if the test fails before it stops it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `danesim ARGS` in its own process group (Ctrl-C reaches a whole foreground group,
/// and so does the tests' SIGINT: under `--namespace` the outer `unshare` ignores a signal
/// sent to it alone), with a thread forwarding its stdout line by line.
fn start_serve(args: &[&str]) -> (Server, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    use std::os::unix::process::CommandExt;
    let child = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("danesim serve starts");
    let mut server = Server(child);
    let stdout = server.0.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (server, rx, reader)
}

/// Sends SIGINT to the server's process group and waits (at most 10 s) for it to exit.
fn interrupt(server: &mut Server) -> std::process::ExitStatus {
    let pid = server.0.id();
    let (ok, out) = run(Command::new("kill").args(["-INT", "--", &format!("-{pid}")]));
    assert!(ok, "kill -INT -{pid}: {out}");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = server.0.try_wait().expect("wait for danesim serve") {
            return s;
        }
        assert!(Instant::now() < end, "danesim serve did not exit within 10 s of SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc is readable").flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Field 4 is the parent; the command (field 2) may hold spaces, so count after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|f| f.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("the tool runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn serve_answers_dig_delv_and_swaks_and_stops_on_sigint() {
    let (dig, delv) = (tool("dig", "bind9-dnsutils"), tool("delv", "bind9-dnsutils"));
    let swaks = tool("swaks", "swaks");
    let (mut server, rx, reader) = start_serve(&["serve", "scenarios/dane-ee/positive-control.toml"]);
    let pid = server.0.id();
    let mut lines: Vec<String> = Vec::new();
    // Lines until one satisfies `want`, or fail after `limit`.
    let wait_for = |want: &dyn Fn(&str) -> bool, what: &str, limit: Duration, lines: &mut Vec<String>| {
        let end = Instant::now() + limit;
        loop {
            if lines.iter().any(|l| want(l)) {
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => panic!(
                    "no {what} from danesim serve within {limit:?}; it printed:\n{}",
                    lines.join("\n")
                ),
            }
        }
    };
    wait_for(&|l| l == "ready", "`ready` line", Duration::from_secs(30), &mut lines);

    let field = |prefix: &str| -> String {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{}", lines.join("\n")))
            .to_string()
    };
    let dns = field("dns ");
    let (dns_ip, dns_port) = dns.split_once(':').expect("dns ADDR:PORT");
    let anchor = PathBuf::from(field("anchor "));
    assert!(
        anchor.is_file(),
        "the anchor file {} exists while serving",
        anchor.display()
    );
    let smtp = field("smtp mx1.example.test 192.0.2.10 -> ");
    assert!(smtp.starts_with("127.0.0.1:"), "{smtp}");

    let (ok, out) = run(Command::new(&dig).args([
        &format!("@{dns_ip}"),
        "-p",
        dns_port,
        "+dnssec",
        "+norecurse",
        "MX",
        "example.test",
    ]));
    assert!(ok && out.contains("status: NOERROR"), "dig:\n{out}");
    assert!(out.contains("10 mx1.example.test."), "dig:\n{out}");
    assert!(out.contains("RRSIG\tMX"), "dig shows the MX RRset's signature:\n{out}");

    for (rtype, name) in [("MX", "example.test"), ("TLSA", "_25._tcp.mx1.example.test")] {
        let (_, out) = run(Command::new(&delv)
            .args([&format!("@{dns_ip}"), "-p", dns_port, "-a"])
            .arg(&anchor)
            .args(["+root=test.", rtype, name]));
        assert!(out.contains("; fully validated"), "delv {rtype} {name}:\n{out}");
    }

    let (ok, out) = run(Command::new(&swaks).args([
        "--server",
        &smtp,
        "--from",
        "sender@client.test",
        "--to",
        "user@example.test",
        "--tls",
    ]));
    assert!(ok, "swaks:\n{out}");
    assert!(out.contains("STARTTLS") && out.contains("250"), "swaks:\n{out}");

    // serve logs what arrived: the queries and the connection.
    wait_for(
        &|l| l.starts_with("query example.test. MX"),
        "query line",
        Duration::from_secs(5),
        &mut lines,
    );
    wait_for(
        &|l| l.starts_with("smtp mx1.example.test 192.0.2.10 connection 1:") && l.contains("message accepted"),
        "connection line",
        Duration::from_secs(5),
        &mut lines,
    );
    assert!(
        children_of(pid).is_empty(),
        "serve runs no child processes in process mode"
    );

    let status = interrupt(&mut server);
    reader.join().expect("the reader thread ends with the process");
    lines.extend(rx.try_iter());
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGINT; output:\n{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("# SIGINT: stopped the world of positive-control")),
        "{}",
        lines.join("\n")
    );
    assert!(!anchor.exists(), "the anchor file is removed on exit");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the serve process is gone (reaped)"
    );
}

/// `serve --namespace`: the world on its own addresses behind a validating unbound, entered
/// with nsenter. Needs root; CI runs it (it must not skip there), elsewhere without root it
/// says why it did nothing.
#[test]
fn serve_in_a_namespace_answers_real_lookups_and_leaves_nothing_behind() {
    if danesim::world::namespace::effective_uid() != Some(0) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the namespace serve test as root"
        );
        eprintln!("note: serve --namespace needs root; this test did nothing");
        return;
    }
    let (dig, nsenter) = (tool("dig", "bind9-dnsutils"), tool("nsenter", "util-linux"));
    let swaks = tool("swaks", "swaks");
    let (mut server, rx, reader) = start_serve(&["serve", "--namespace", "scenarios/dane-ee/positive-control.toml"]);
    let pid = server.0.id();
    let mut lines = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l: &String| l == "ready") {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("no `ready` within 30 s; it printed:\n{}", lines.join("\n")),
        }
    }
    // The nsenter target is `unshare`, the child of the top danesim that stays outside to
    // pass signals on; it sits in the new network and mount namespaces.
    let target: u32 = lines
        .iter()
        .find_map(|l| l.strip_prefix("namespace ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `namespace PID` line:\n{}", lines.join("\n")));
    assert!(
        children_of(pid).contains(&target),
        "namespace {target} is not a child of danesim {pid}"
    );
    assert!(
        lines.contains(&"smtp mx1.example.test 192.0.2.10".to_string()),
        "{}",
        lines.join("\n")
    );
    let inside = |tool: &Path| {
        let mut c = Command::new(&nsenter);
        c.args(["--target", &target.to_string(), "--net", "--mount", "--"])
            .arg(tool);
        c
    };
    // The namespace's own resolver (unbound, from the bind-mounted resolv.conf) validates.
    let (ok, out) = run(inside(&dig).args(["+dnssec", "MX", "example.test"]));
    assert!(
        ok && out.contains("flags: qr rd ra ad;"),
        "dig in the namespace:\n{out}"
    );
    let (ok, out) = run(inside(&dig).args(["+dnssec", "TLSA", "_25._tcp.mx1.example.test"]));
    assert!(
        ok && out.contains(" ad;") && out.contains("TLSA\t3 1 1"),
        "dig TLSA:\n{out}"
    );
    // swaks finds the MX itself and connects to 192.0.2.10:25, as a real client would.
    let (ok, out) = run(inside(&swaks).args(["--from", "sender@client.test", "--to", "user@example.test", "--tls"]));
    assert!(
        ok && out.contains("Connected to mx1.example.test") && out.contains("queued as"),
        "swaks in the namespace:\n{out}"
    );

    let status = interrupt(&mut server);
    reader.join().expect("the reader thread ends with the process");
    lines.extend(rx.try_iter());
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("smtp mx1.example.test 192.0.2.10 connection 1:") && l.contains("message accepted")),
        "{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("# SIGINT: stopped the world of positive-control and its resolver")),
        "{}",
        lines.join("\n")
    );
    // Nothing of the namespace is left: no unbound started for it, no work directory.
    // The work directory (a fresh one with a random name) is the anchor file's grandparent.
    let workdir = lines
        .iter()
        .find_map(|l| l.strip_prefix("anchor "))
        .and_then(|a| Path::new(a).parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| panic!("no `anchor FILE` line:\n{}", lines.join("\n")));
    assert!(
        workdir.starts_with(std::env::temp_dir()) && workdir.display().to_string().contains("danesim-serve-ns-"),
        "{}",
        workdir.display()
    );
    assert!(!workdir.exists(), "{} is removed", workdir.display());
    for e in std::fs::read_dir("/proc").expect("/proc is readable").flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !cmdline.contains(&workdir.display().to_string()),
            "a process of the served namespace is left: {cmdline}"
        );
    }
}

#[test]
fn explain_lists_each_connections_own_script() {
    let (code, out, err) = danesim(&["explain", "scenarios/smtp-replies/session-2-greeting-421.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "      connection 2: greeting answered `421 4.3.2 Service not available, try later`\n      every other connection: unscripted\n"
        ),
        "{out}"
    );
}
