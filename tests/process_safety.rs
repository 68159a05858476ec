//! danesim under hostile process conditions (issue 14): output into a closed pipe is
//! neither a panic (exit 101) nor a changed exit code. Rust ignores SIGPIPE, so every
//! write into a pipe whose reader is gone fails with EPIPE; `println!` panicked on it.
//!
//! Each test closes the read end of stdout before danesim prints anything (or, for
//! `serve`, right after its first lines), which is what `danesim list | head -1` does once
//! `head` has its line.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn danesim(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_danesim"));
    c.args(args).current_dir(root()).stdin(Stdio::null());
    c
}

/// Waits at most `limit`; a process still running then is killed and reported.
fn wait(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

/// Runs `args` with stdout a pipe closed at once; returns the exit code and stderr.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let mut child = danesim(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("danesim starts");
    drop(child.stdout.take());
    // stderr is read only after the exit: its few lines fit in the pipe's buffer.
    let status = wait(&mut child, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    (status.code(), stderr_of(&mut child))
}

/// The exit code of the same command with stdout discarded (nothing can fail there).
fn code_with_stdout_discarded(args: &[&str]) -> Option<i32> {
    danesim(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("danesim starts")
        .code()
}

fn assert_quiet(args: &[&str], code: Option<i32>, expected: Option<i32>, stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "{args:?} panicked on a closed stdout:\n{stderr}"
    );
    assert_ne!(code, Some(101), "{args:?}: exit 101 (a panic)\n{stderr}");
    assert_eq!(
        code, expected,
        "{args:?}: a closed stdout must not change the exit code\n{stderr}"
    );
    assert!(
        !stderr.contains("error"),
        "{args:?}: a reader that left early is no error:\n{stderr}"
    );
}

#[test]
fn list_into_a_closed_pipe_exits_0_quietly() {
    let args = ["list", "scenarios/"];
    let (code, stderr) = into_closed_pipe(&args);
    assert_quiet(&args, code, Some(0), &stderr);
}

#[test]
fn run_into_a_closed_pipe_keeps_the_verdicts_exit_code() {
    let args = ["run", "scenarios/dane-ee"];
    let expected = code_with_stdout_discarded(&args);
    let (code, stderr) = into_closed_pipe(&args);
    assert_quiet(&args, code, expected, &stderr);
}

#[test]
fn run_json_into_a_closed_pipe_keeps_the_verdicts_exit_code() {
    let args = ["run", "--format", "json", "scenarios/dane-ee"];
    let expected = code_with_stdout_discarded(&args);
    let (code, stderr) = into_closed_pipe(&args);
    assert_quiet(&args, code, expected, &stderr);
}

#[test]
fn run_tap_into_a_closed_pipe_keeps_the_verdicts_exit_code() {
    let args = ["run", "--format", "tap", "scenarios/dane-ee"];
    let expected = code_with_stdout_discarded(&args);
    let (code, stderr) = into_closed_pipe(&args);
    assert_quiet(&args, code, expected, &stderr);
}

/// SIGTERM by pid, the way a supervisor stops serve.
fn terminate(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

#[test]
fn serve_into_a_closed_pipe_stops_the_world_and_exits_0() {
    let mut child = danesim(&["serve", "scenarios/dane-ee/positive-control.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("danesim starts");
    drop(child.stdout.take());
    // Nobody can read it: serve stops by itself, as a filter does when its reader leaves.
    let status = wait(&mut child, Duration::from_secs(20));
    if status.is_err() {
        terminate(&child);
    }
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|e| panic!("serve with a closed stdout: {e}\n{stderr}"));
    assert_quiet(&["serve"], status.code(), Some(0), &stderr);
}

/// A minimal DNS query (RFC 1035 §4.1): id 0x1234, RD, one question `example.test. MX IN`.
fn mx_query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["example", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 15, 0, 1]);
    q
}

#[test]
fn serve_whose_reader_leaves_after_ready_stops_at_the_next_query_line() {
    let mut child = danesim(&["serve", "scenarios/dane-ee/positive-control.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("danesim starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut dns = None;
    for line in lines.by_ref() {
        let line = line.expect("serve prints text");
        if let Some(a) = line.strip_prefix("dns ") {
            dns = Some(a.to_string());
        }
        if line == "ready" {
            break;
        }
    }
    // The reader leaves (`serve | head -5`); the next line serve writes meets EPIPE.
    drop(lines);
    let dns = dns.expect("serve names its DNS address before `ready`");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    socket
        .send_to(&mx_query(), &dns)
        .expect("the query goes to serve's DNS port");
    let status = wait(&mut child, Duration::from_secs(20));
    if status.is_err() {
        terminate(&child);
    }
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|e| panic!("serve after its reader left: {e}\n{stderr}"));
    assert_quiet(&["serve"], status.code(), Some(0), &stderr);
}

/// A stderr whose reader is gone (`danesim run x 2>&1 | head -0`): an error is still exit 2
/// and a pass still 0, never the panic of `eprintln!` on EPIPE (exit 101). (A stderr closed
/// with `2>&-` is EBADF, which Rust's stderr already ignores.)
#[test]
fn a_stderr_into_a_closed_pipe_keeps_the_exit_code() {
    for (args, expected) in [
        (&["run", "tests/hostile/message/to-nul.toml"][..], 2),
        (&["run", "/nonexistent-danesim-path"][..], 2),
        (&["run", "scenarios/dane-ee/positive-control.toml"][..], 0),
    ] {
        let mut child = danesim(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("danesim starts");
        drop(child.stderr.take());
        let status = wait(&mut child, Duration::from_secs(60)).expect("danesim ends");
        assert_eq!(
            status.code(),
            Some(expected),
            "danesim {args:?} with stderr into a closed pipe"
        );
    }
}
