//! The hostile-input suite (issue 14): scenario files and directories that a user having a
//! bad day, or an attacker, would give danesim. Each must exit 2 with `file:line:col`, or
//! load and run correctly; never a panic, a hang, unbounded memory or a flood of output.
//!
//! Cases live in `tests/hostile/<class>/`. A file is one case: its first line states what
//! must happen (a UTF-16 file states it in UTF-16):
//!
//! | first line | passes when |
//! |---|---|
//! | `# expect: error 12:9` | exit 2, stderr contains `<file>:12:9` |
//! | `# expect: error 12` | exit 2, stderr contains `<file>:12:<col>` |
//! | `# expect: error` | exit 2, stderr contains `<file>:<line>:<col>` |
//! | `# expect: run` | exit 0 or 1 with a verdict (the summary line) |
//! | `# expect: pass` | exit 0 with the summary line: the scenario's own expectation holds |
//! | `# expect: either` | one of `error` and `run`: the file is odd, not wrong, and both are correct |
//!
//! A directory is one case too: its `expect` file's first line says the same, and an error
//! names a file of the directory (`# expect: error b.toml:3`). Scenario files run with
//! `danesim run <case>`; in the class `profiles` a case is a sender profile, run as
//! `danesim run --sender <case> <positive control>` (only errors: a valid profile would need
//! the namespace). The class `discovery` and the larger `sizes` cases are built here, at run
//! time, in a temporary directory: symbolic link loops, a FIFO, `/dev/zero`, files of 8 MiB
//! and 50 MB, zones of many records (committed files stay under 1 MiB; the 50 k-record zone
//! only in an optimised build).
//!
//! Every case runs the built binary under a wall-clock bound ([`WALL`]: the child's whole
//! process group is killed on timeout) and a memory bound (`prlimit --as`, [`MEMORY`]), and
//! must not exit 101, print "panicked", or write [`STDERR_MAX`] or more to stderr. The run
//! ends with a per-class summary; any failure fails the binary.

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wall-clock bound of one case.
const WALL: Duration = Duration::from_secs(20);
/// Address-space bound of one case (bytes), through `prlimit --as`.
const MEMORY: u64 = 1 << 30;
/// stderr must stay under this: an error quotes a window of a line, not the file.
const STDERR_MAX: usize = 64 * 1024;
/// The most of stdout and stderr kept for checking (the rest is counted, not kept).
const KEEP: usize = 1 << 20;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn control() -> PathBuf {
    root().join("scenarios/dane-ee/positive-control.toml")
}

/// What a case must do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Exit 2 and stderr names `<file>:<line>:<col>`; the file is the case or one of its
    /// directory (`None`: the case itself), line and column are checked when given.
    Error {
        file: Option<String>,
        line: Option<u32>,
        col: Option<u32>,
    },
    /// Exit 0 or 1 with a verdict.
    Run,
    /// Exit 0 with a verdict.
    Pass,
    /// Error (at any place) or run.
    Either,
    /// Exit 2 naming this path (a file that cannot be read has no line to point at).
    RefusePath(PathBuf),
    /// Exit 0 listing the scenario ids given, or exit 2 naming the path: discovery may skip
    /// what it cannot walk, or refuse it.
    ListOrRefuse { ids: Vec<String>, path: PathBuf },
    /// Exit 0 listing exactly this many scenarios (lines besides the summary), these ids
    /// among them.
    List { ids: Vec<String>, count: usize },
}

fn parse_expect(line: &str) -> Result<Expect, String> {
    let rest = line
        .trim()
        .strip_prefix('#')
        .map(str::trim)
        .and_then(|l| l.strip_prefix("expect:"))
        .map(str::trim)
        .ok_or_else(|| format!("the first line must be `# expect: ...`, not `{line}`"))?;
    let mut words = rest.split_whitespace();
    let kind = words.next().unwrap_or("");
    let arg = words.next();
    if words.next().is_some() {
        return Err(format!("too many words in `{line}`"));
    }
    Ok(match (kind, arg) {
        ("run", None) => Expect::Run,
        ("pass", None) => Expect::Pass,
        ("either", None) => Expect::Either,
        ("error", None) => Expect::Error {
            file: None,
            line: None,
            col: None,
        },
        ("error", Some(at)) => {
            // `[file:]line[:col]`: the last one or two parts are numbers.
            let parts: Vec<&str> = at.split(':').collect();
            let nums: Vec<u32> = parts.iter().rev().map_while(|p| p.parse().ok()).collect();
            let nums: Vec<u32> = nums.into_iter().rev().collect();
            let file_parts = &parts[..parts.len() - nums.len()];
            let file = (!file_parts.is_empty()).then(|| file_parts.join(":"));
            match nums.as_slice() {
                [] => Expect::Error {
                    file,
                    line: None,
                    col: None,
                },
                [l] => Expect::Error {
                    file,
                    line: Some(*l),
                    col: None,
                },
                [l, c] => Expect::Error {
                    file,
                    line: Some(*l),
                    col: Some(*c),
                },
                _ => return Err(format!("bad location in `{line}`")),
            }
        }
        _ => return Err(format!("unknown expectation `{rest}`")),
    })
}

/// The first line of a file: UTF-8, or UTF-16 or UTF-32 with a byte order mark; NUL bytes (UTF-16
/// without a mark) are dropped.
fn first_line(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe, 0, 0]) {
        let chars = rest
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        chars.map(|c| char::from_u32(c).unwrap_or('\u{fffd}')).collect()
    } else if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    } else if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    } else {
        let end = bytes.iter().position(|b| *b == b'\n').unwrap_or(bytes.len());
        let line: Vec<u8> = bytes[..end].iter().copied().filter(|b| *b != 0).collect();
        String::from_utf8_lossy(&line).into_owned()
    };
    let text = text.trim_start_matches('\u{feff}');
    Ok(text.split(['\n', '\r']).next().unwrap_or("").to_string())
}

/// What the child did.
struct Ran {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    stderr_len: usize,
    elapsed: Duration,
    timed_out: bool,
}

/// Reads a pipe to its end, keeping the first [`KEEP`] bytes and counting the rest.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<(Vec<u8>, usize)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n;
                    let room = KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        (kept, total)
    })
}

/// `setpriv` arguments that run the rest of a command as `nobody`: root reads every file,
/// so an unreadable file is only unreadable to another user.
const AS_NOBODY: [&str; 4] = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];

/// Runs danesim with `args` in its own process group, under the bounds; as `nobody` when
/// `as_nobody` (root only).
fn run_bounded(args: &[&std::ffi::OsStr], cwd: &Path, as_nobody: bool) -> Ran {
    use std::os::unix::process::CommandExt;
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(AS_NOBODY).arg("prlimit");
        c
    } else {
        Command::new("prlimit")
    };
    cmd.arg(format!("--as={MEMORY}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_danesim"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("prlimit (util-linux) runs");
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > WALL => {
                timed_out = true;
                // setpriv and prlimit exec, so danesim is the group's leader: kill the group
                // (a runaway's helpers too), then reap.
                let _ = Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let elapsed = start.elapsed();
    let (stdout, _) = out.join().unwrap_or_default();
    let (stderr, stderr_len) = err.join().unwrap_or_default();
    Ran {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stderr_len,
        elapsed,
        timed_out,
    }
}

/// How a case ended, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Passed,
    Failed,
    OverBound,
}

#[derive(Default)]
struct Tally {
    cases: usize,
    passed: usize,
    failed: usize,
    over: usize,
    /// Not run here (root, and `nobody` cannot run the binary).
    skipped: usize,
}

type Summary = Arc<Mutex<BTreeMap<String, Tally>>>;

/// `<path>:<line>:<col>` in `stderr`, with the line and column checked when given.
/// With `any_file`, `path` is a directory and any file name below it may follow.
fn names_location(stderr: &str, path: &str, any_file: bool, line: Option<u32>, col: Option<u32>) -> bool {
    let mut rest = stderr;
    while let Some(i) = rest.find(path) {
        let mut after = &rest[i + path.len()..];
        rest = &rest[i + path.len()..];
        if any_file {
            let Some(below) = after.strip_prefix('/') else { continue };
            let name_len = below
                .find(|c: char| c == ':' || c.is_whitespace())
                .unwrap_or(below.len());
            after = &below[name_len..];
        }
        let Some(after) = after.strip_prefix(':') else { continue };
        let l: String = after.chars().take_while(char::is_ascii_digit).collect();
        let Some(after) = after[l.len()..].strip_prefix(':') else {
            continue;
        };
        let c: String = after.chars().take_while(char::is_ascii_digit).collect();
        if l.is_empty() || c.is_empty() {
            continue;
        }
        let (Ok(ln), Ok(cn)) = (l.parse::<u32>(), c.parse::<u32>()) else {
            continue;
        };
        if ln >= 1 && cn >= 1 && line.is_none_or(|x| x == ln) && col.is_none_or(|x| x == cn) {
            return true;
        }
    }
    false
}

fn has_verdict(stdout: &str) -> bool {
    stdout.contains("scenario(s) against")
}

/// Checks one run against the bounds and the expectation. `case` is the path an error must
/// name (the case file, or its directory).
fn judge(ran: &Ran, expect: &Expect, case: &Path) -> Result<(), (Verdict, String)> {
    let show = || {
        let tail = |s: &str| {
            let n = s.len();
            let mut from = n.saturating_sub(1500);
            while !s.is_char_boundary(from) {
                from += 1;
            }
            s[from..].to_string()
        };
        format!(
            "exit {:?} after {:.1?}\n--- stdout (end)\n{}\n--- stderr ({} bytes, end)\n{}",
            ran.status.and_then(|s| s.code()),
            ran.elapsed,
            tail(&ran.stdout),
            ran.stderr_len,
            tail(&ran.stderr)
        )
    };
    if ran.timed_out {
        return Err((
            Verdict::OverBound,
            format!("over the wall-clock bound of {WALL:?}\n{}", show()),
        ));
    }
    let status = ran.status.expect("reaped");
    if ran.stderr.contains("memory allocation of") || ran.stderr.contains("out of memory") {
        return Err((
            Verdict::OverBound,
            format!("over the memory bound of {MEMORY} bytes\n{}", show()),
        ));
    }
    if status.code().is_none() {
        use std::os::unix::process::ExitStatusExt;
        return Err((
            Verdict::Failed,
            format!(
                "killed by signal {:?} (a crash, e.g. a stack overflow)\n{}",
                status.signal(),
                show()
            ),
        ));
    }
    let code = status.code().expect("exited");
    if code == 101 || ran.stderr.contains("panicked") {
        return Err((Verdict::Failed, format!("panic (exit {code})\n{}", show())));
    }
    if ran.stderr_len >= STDERR_MAX {
        return Err((
            Verdict::Failed,
            format!(
                "{} bytes on stderr, the bound is {STDERR_MAX}\n{}",
                ran.stderr_len,
                show()
            ),
        ));
    }
    let case_s = case.display().to_string();
    let error_ok = |file: &Option<String>, line, col| {
        let path = match file {
            None => case_s.clone(),
            Some(f) => case.join(f).display().to_string(),
        };
        // A directory case's error may name any of its files.
        let any_file = file.is_none() && case.is_dir();
        code == 2 && names_location(&ran.stderr, &path, any_file, line, col)
    };
    let run_ok = (code == 0 || code == 1) && has_verdict(&ran.stdout);
    let ok = match expect {
        Expect::Error { file, line, col } => error_ok(file, *line, *col),
        Expect::Run => run_ok,
        Expect::Pass => code == 0 && has_verdict(&ran.stdout),
        Expect::Either => error_ok(&None, None, None) || run_ok,
        Expect::RefusePath(p) => code == 2 && ran.stderr.contains(&p.display().to_string()),
        Expect::ListOrRefuse { ids, path } => {
            (code == 0 && ids.iter().all(|id| ran.stdout.contains(id.as_str())))
                || (code == 2 && ran.stderr.contains(&path.display().to_string()))
        }
        Expect::List { ids, count } => {
            code == 0
                && ids.iter().all(|id| ran.stdout.contains(id.as_str()))
                && ran
                    .stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.contains("scenario(s)"))
                    .count()
                    == *count
        }
    };
    if ok {
        Ok(())
    } else {
        Err((Verdict::Failed, format!("expected {expect:?}\n{}", show())))
    }
}

fn record(summary: &Summary, class: &str, v: Verdict) {
    let mut m = summary.lock().unwrap_or_else(|e| e.into_inner());
    let t = m.entry(class.to_string()).or_default();
    t.cases += 1;
    match v {
        Verdict::Passed => t.passed += 1,
        Verdict::Failed => t.failed += 1,
        Verdict::OverBound => {
            t.failed += 1;
            t.over += 1;
        }
    }
}

/// A trial that runs `body` and tallies its verdict under `class`.
fn trial(
    summary: &Summary,
    class: &str,
    name: String,
    body: impl FnOnce() -> Result<(), (Verdict, String)> + Send + 'static,
) -> Trial {
    let summary = summary.clone();
    let class_owned = class.to_string();
    Trial::test(format!("{class}/{name}"), move || match body() {
        Ok(()) => {
            record(&summary, &class_owned, Verdict::Passed);
            Ok(())
        }
        Err((v, msg)) => {
            record(&summary, &class_owned, v);
            Err(Failed::from(msg))
        }
    })
}

/// The committed cases: every file and directory in `tests/hostile/<class>/`.
fn committed(summary: &Summary) -> Vec<Trial> {
    let base = root().join("tests/hostile");
    let mut classes: Vec<PathBuf> = std::fs::read_dir(&base)
        .expect("tests/hostile exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    let mut trials = Vec::new();
    for class_dir in classes {
        let class = class_dir.file_name().expect("named").to_string_lossy().into_owned();
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&class_dir)
            .expect("readable class")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        cases.sort();
        for case in cases {
            let name = case.file_name().expect("named").to_string_lossy().into_owned();
            let profile = class == "profiles";
            trials.push(trial(summary, &class, name, move || {
                let case = std::fs::canonicalize(&case).map_err(|e| (Verdict::Failed, e.to_string()))?;
                let expect_file = if case.is_dir() {
                    case.join("expect")
                } else {
                    case.clone()
                };
                let expect = first_line(&expect_file)
                    .and_then(|l| parse_expect(&l))
                    .map_err(|m| (Verdict::Failed, format!("{}: {m}", expect_file.display())))?;
                let ran = if profile {
                    run_bounded(
                        &[
                            "run".as_ref(),
                            "--sender".as_ref(),
                            case.as_os_str(),
                            control().as_os_str(),
                        ],
                        &root(),
                        false,
                    )
                } else {
                    run_bounded(&["run".as_ref(), case.as_os_str()], &root(), false)
                };
                judge(&ran, &expect, &case)
            }));
        }
    }
    trials
}

/// The positive control, under another id, as a file's text.
fn scenario(id: &str) -> String {
    let text = std::fs::read_to_string(control()).expect("the positive control is readable");
    text.replace("id = \"positive-control\"", &format!("id = \"{id}\""))
}

fn tmp() -> Result<tempfile::TempDir, (Verdict, String)> {
    tempfile::tempdir().map_err(|e| (Verdict::Failed, format!("temp dir: {e}")))
}

fn io<T>(r: std::io::Result<T>) -> Result<T, (Verdict, String)> {
    r.map_err(|e| (Verdict::Failed, format!("building the case: {e}")))
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<(), (Verdict, String)> {
    io(std::os::unix::fs::symlink(target, link))
}

fn mkfifo(path: &Path) -> Result<(), (Verdict, String)> {
    let st = io(Command::new("mkfifo").arg(path).status())?;
    if st.success() {
        Ok(())
    } else {
        Err((Verdict::Failed, "mkfifo failed".into()))
    }
}

/// A one-line file of `len` bytes: a string value that runs on (no closing quote, no
/// newline), so that any parse of it fails on line 1.
fn one_line_file(path: &Path, len: usize) -> Result<(), (Verdict, String)> {
    use std::io::Write;
    let mut f = io(std::fs::File::create(path))?;
    let head = b"title = \"";
    io(f.write_all(head))?;
    let chunk = vec![b'a'; 1 << 20];
    let mut left = len - head.len();
    while left > 0 {
        let n = left.min(chunk.len());
        io(f.write_all(&chunk[..n]))?;
        left -= n;
    }
    Ok(())
}

fn is_root() -> bool {
    // The effective uid, as `id -u` prints it; no unsafe needed.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

type Build = fn(&Path) -> Result<(Vec<String>, Expect), (Verdict, String)>;

/// Discovery cases, built at run time in a temporary directory: what `list <dir>` finds.
/// Each builder fills the directory and returns the arguments after `list`/`run` and the
/// expectation.
fn discovery_cases() -> Vec<(&'static str, Build)> {
    fn d(p: &Path) -> String {
        p.display().to_string()
    }
    vec![
        ("link-to-dot", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink(".", dir.join("a"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.join("a"),
                },
            ))
        }),
        ("two-links-to-dot", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink(".", dir.join("a"))?;
            symlink(".", dir.join("b"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.to_path_buf(),
                },
            ))
        }),
        ("five-links-to-dot", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            for n in ["a", "b", "c", "d", "e"] {
                symlink(".", dir.join(n))?;
            }
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.to_path_buf(),
                },
            ))
        }),
        ("link-to-parent", |dir| {
            io(std::fs::create_dir(dir.join("sub")))?;
            io(std::fs::write(dir.join("sub/good.toml"), scenario("good")))?;
            symlink("..", dir.join("sub/up"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.to_path_buf(),
                },
            ))
        }),
        ("links-to-each-other", |dir| {
            io(std::fs::create_dir_all(dir.join("x")))?;
            io(std::fs::create_dir_all(dir.join("y")))?;
            io(std::fs::write(dir.join("x/good.toml"), scenario("good")))?;
            symlink("../y", dir.join("x/to-y"))?;
            symlink("../x", dir.join("y/to-x"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.to_path_buf(),
                },
            ))
        }),
        ("link-loop-of-files", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink("b.toml", dir.join("a.toml"))?;
            symlink("a.toml", dir.join("b.toml"))?;
            Ok((vec!["list".into(), d(dir)], Expect::RefusePath(dir.join("a.toml"))))
        }),
        ("dangling-toml-link", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink("nowhere.toml", dir.join("gone.toml"))?;
            Ok((vec!["list".into(), d(dir)], Expect::RefusePath(dir.join("gone.toml"))))
        }),
        ("dangling-dir-link", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink("nowhere", dir.join("gone"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.join("gone"),
                },
            ))
        }),
        ("fifo-named-toml", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            mkfifo(&dir.join("x.toml"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("x.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("fifo-given-directly", |dir| {
            mkfifo(&dir.join("x.toml"))?;
            Ok((
                vec!["run".into(), d(&dir.join("x.toml"))],
                Expect::Error {
                    file: Some("x.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("socket-named-toml", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            // The listener stays bound for the case's life (leaked: the temp dir goes first).
            let l = io(std::os::unix::net::UnixListener::bind(dir.join("s.toml")))?;
            std::mem::forget(l);
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("s.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("link-to-dev-zero", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink("/dev/zero", dir.join("zero.toml"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("zero.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("link-to-dev-urandom", |dir| {
            symlink("/dev/urandom", dir.join("random.toml"))?;
            Ok((
                vec!["run".into(), d(dir)],
                Expect::Error {
                    file: Some("random.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("link-to-dev-null", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink("/dev/null", dir.join("null.toml"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("null.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("dev-zero-given-directly", |_dir| {
            Ok((
                vec!["list".into(), "/dev/zero".into()],
                Expect::RefusePath("/dev/zero".into()),
            ))
        }),
        ("directory-named-toml", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            io(std::fs::create_dir(dir.join("x.toml")))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::List {
                    ids: vec!["good".into()],
                    count: 1,
                },
            ))
        }),
        ("directory-named-toml-holding-a-scenario", |dir| {
            io(std::fs::create_dir(dir.join("x.toml")))?;
            io(std::fs::write(dir.join("x.toml/inner.toml"), scenario("inner")))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::List {
                    ids: vec!["inner".into()],
                    count: 1,
                },
            ))
        }),
        ("unreadable-file", |dir| {
            use std::os::unix::fs::PermissionsExt;
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            let p = dir.join("secret.toml");
            io(std::fs::write(&p, scenario("secret")))?;
            io(std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)))?;
            Ok((vec!["list".into(), d(dir)], Expect::RefusePath(p)))
        }),
        ("unreadable-directory", |dir| {
            use std::os::unix::fs::PermissionsExt;
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            let p = dir.join("closed");
            io(std::fs::create_dir(&p))?;
            io(std::fs::write(p.join("inner.toml"), scenario("inner")))?;
            io(std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)))?;
            Ok((vec!["list".into(), d(dir)], Expect::RefusePath(p)))
        }),
        ("one-line-8mib-plus-1", |dir| {
            one_line_file(&dir.join("big.toml"), (8 << 20) + 1)?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("big.toml".into()),
                    line: Some(1),
                    col: None,
                },
            ))
        }),
        ("one-line-50mb", |dir| {
            one_line_file(&dir.join("huge.toml"), 50_000_000)?;
            Ok((
                vec!["run".into(), d(dir)],
                Expect::Error {
                    file: Some("huge.toml".into()),
                    line: Some(1),
                    col: None,
                },
            ))
        }),
        ("one-line-2mib", |dir| {
            one_line_file(&dir.join("long.toml"), 2 << 20)?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("long.toml".into()),
                    line: Some(1),
                    col: None,
                },
            ))
        }),
        ("sparse-file-1tb", |dir| {
            let f = io(std::fs::File::create(dir.join("sparse.toml")))?;
            io(f.set_len(1 << 40))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::Error {
                    file: Some("sparse.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("empty-file", |dir| {
            io(std::fs::write(dir.join("empty.toml"), ""))?;
            Ok((
                vec!["run".into(), d(dir)],
                Expect::Error {
                    file: Some("empty.toml".into()),
                    line: None,
                    col: None,
                },
            ))
        }),
        ("deep-directories", |dir| {
            let mut p = dir.to_path_buf();
            for _ in 0..60 {
                p = p.join("d");
            }
            io(std::fs::create_dir_all(&p))?;
            io(std::fs::write(p.join("deep.toml"), scenario("deep")))?;
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into(), "deep".into()],
                    path: dir.to_path_buf(),
                },
            ))
        }),
        ("many-files", |dir| {
            for n in 0..300 {
                io(std::fs::write(
                    dir.join(format!("s{n:03}.toml")),
                    scenario(&format!("copy-{n:03}")),
                ))?;
            }
            Ok((
                vec!["list".into(), d(dir)],
                Expect::List {
                    ids: vec!["copy-000".into(), "copy-299".into()],
                    count: 300,
                },
            ))
        }),
        ("link-to-a-sibling-directory", |dir| {
            io(std::fs::create_dir(dir.join("real")))?;
            io(std::fs::write(dir.join("real/one.toml"), scenario("one")))?;
            io(std::fs::create_dir(dir.join("walk")))?;
            io(std::fs::write(dir.join("walk/two.toml"), scenario("two")))?;
            symlink("../real", dir.join("walk/linked"))?;
            Ok((
                vec!["list".into(), d(&dir.join("walk"))],
                Expect::List {
                    ids: vec!["one".into(), "two".into()],
                    count: 2,
                },
            ))
        }),
        ("hidden-and-uppercase-names", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            io(std::fs::write(dir.join(".toml"), "not = a scenario"))?;
            io(std::fs::write(dir.join("x.TOML"), "not = a scenario"))?;
            io(std::fs::write(dir.join("x.toml~"), "not = a scenario"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::List {
                    ids: vec!["good".into()],
                    count: 1,
                },
            ))
        }),
        ("file-link-twice", |dir| {
            io(std::fs::write(dir.join("good.toml"), scenario("good")))?;
            symlink("good.toml", dir.join("again.toml"))?;
            Ok((
                vec!["list".into(), d(dir)],
                Expect::ListOrRefuse {
                    ids: vec!["good".into()],
                    path: dir.to_path_buf(),
                },
            ))
        }),
        ("path-with-newline-and-colon", |dir| {
            let p = dir.join("odd\nname:1:1.toml");
            io(std::fs::write(&p, "id = 5\n"))?;
            Ok((
                vec!["run".into(), d(&p)],
                Expect::Error {
                    file: Some("odd\nname:1:1.toml".into()),
                    line: Some(1),
                    col: None,
                },
            ))
        }),
    ]
}

/// Larger cases built at run time (committed files stay under 1 MiB).
fn generated_sizes() -> Vec<(&'static str, Build)> {
    fn many_records(dir: &Path, n: usize) -> Result<(Vec<String>, Expect), (Verdict, String)> {
        let base = scenario("many-records");
        let mut extra = String::new();
        for i in 0..n {
            extra.push_str(&format!("  \"h{i} A 192.0.2.{}\",\n", 1 + i % 250));
        }
        let text = base.replacen("records = [\n", &format!("records = [\n{extra}"), 1);
        let p = dir.join("many.toml");
        io(std::fs::write(&p, text))?;
        Ok((vec!["run".into(), p.display().to_string()], Expect::Pass))
    }
    let mut cases: Vec<(&'static str, Build)> = vec![
        // Unoptimised, signing takes about 1 ms a record, so a debug build tries 5 k; the
        // 50 k-record zone (quadratic assembly took minutes) runs in `cargo test --release`,
        // and ci/bench times it.
        ("zone-5k-records", |dir| many_records(dir, 5_000)),
        ("title-4mib", |dir| {
            let text = scenario("long-title").replacen("title = \"", &format!("title = \"{}", "t".repeat(4 << 20)), 1);
            let p = dir.join("title.toml");
            io(std::fs::write(&p, text))?;
            Ok((vec!["run".into(), p.display().to_string()], Expect::Either))
        }),
        ("record-line-3mib-bad-address", |dir| {
            // One A record whose address is 3 MiB of digits: the error quotes a window.
            let text = scenario("long-record").replacen(
                "records = [\n",
                &format!("records = [\n  \"mx9 A {}\",\n", "1".repeat(3 << 20)),
                1,
            );
            let p = dir.join("record.toml");
            io(std::fs::write(&p, text))?;
            Ok((
                vec!["run".into(), p.display().to_string()],
                Expect::Error {
                    file: None,
                    line: None,
                    col: None,
                },
            ))
        }),
    ];
    if !cfg!(debug_assertions) {
        cases.push(("zone-50k-records", |dir| many_records(dir, 50_000)));
    }
    cases
}

/// Whether `nobody` can run danesim through `setpriv` (util-linux): the binary's path must be
/// open to other users.
fn nobody_can_run() -> bool {
    Command::new("setpriv")
        .args(AS_NOBODY)
        .args(["test", "-x", env!("CARGO_BIN_EXE_danesim")])
        .status()
        .is_ok_and(|s| s.success())
}

fn generated(summary: &Summary, class: &str, cases: Vec<(&'static str, Build)>) -> Vec<Trial> {
    let root = is_root();
    let nobody = root && nobody_can_run();
    cases
        .into_iter()
        .map(|(name, build)| {
            // Root reads every file: an unreadable file is tried as `nobody`, or skipped.
            let drop_root = name.starts_with("unreadable") && root;
            let skip = drop_root && !nobody;
            let t = trial(summary, class, name.to_string(), move || {
                let dir = tmp()?;
                let path = io(std::fs::canonicalize(dir.path()))?;
                let (args, expect) = build(&path)?;
                if drop_root {
                    use std::os::unix::fs::PermissionsExt;
                    io(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))?;
                }
                let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
                let ran = run_bounded(&args, &path, drop_root);
                let result = judge(&ran, &expect, &path);
                // Let the temp dir be removed even when a case made parts of it unreadable.
                let _ = Command::new("chmod").args(["-R", "u+rwx"]).arg(&path).status();
                result
            });
            if skip {
                let mut m = summary.lock().unwrap_or_else(|e| e.into_inner());
                let tally = m.entry(class.to_string()).or_default();
                tally.cases += 1;
                tally.skipped += 1;
                t.with_ignored_flag(true)
            } else {
                t
            }
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let summary: Summary = Arc::default();
    let mut trials = committed(&summary);
    trials.extend(generated(&summary, "discovery", discovery_cases()));
    trials.extend(generated(&summary, "sizes", generated_sizes()));
    let conclusion = libtest_mimic::run(&args, trials);
    let m = summary.lock().unwrap_or_else(|e| e.into_inner());
    let line = |name: &str, t: &Tally| {
        let skipped = if t.skipped > 0 {
            format!(", {} skipped (root, and nobody cannot run danesim)", t.skipped)
        } else {
            String::new()
        };
        println!(
            "hostile: {name}: {} cases, {} passed, {} failed, {} over bound{skipped}",
            t.cases, t.passed, t.failed, t.over
        );
    };
    for (class, t) in m.iter() {
        line(class, t);
    }
    let total: Tally = m.values().fold(Tally::default(), |a, t| Tally {
        cases: a.cases + t.cases,
        passed: a.passed + t.passed,
        failed: a.failed + t.failed,
        over: a.over + t.over,
        skipped: a.skipped + t.skipped,
    });
    line("all", &total);
    drop(m);
    conclusion.exit();
}
