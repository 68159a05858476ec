//! Namespace mode: a private network, mount and PID namespace the harness makes for itself,
//! so that unmodified MTAs can resolve and dial the world's addresses.
//!
//! `danesim` runs itself again under `unshare --net --mount --pid --fork --kill-child` and
//! stays on top to pass SIGTERM and SIGINT on ([`enter`]). Inside, it is PID 1 of the new
//! PID namespace: when it exits for any reason (done, error, a signal to the top process
//! or to the whole group, SIGKILL of `unshare`), the kernel kills every process left in
//! the namespace, so no Postfix, Exim or unbound it started can outlive it. The network
//! namespace has only `lo`; the world's documentation addresses (192.0.2.0/24, 2001:db8::/32)
//! are put there, so traffic never leaves the namespace. Mounts are private to it: the
//! bind-mounted `resolv.conf` is seen by nothing outside.

use super::error::LabError;
use super::process::run;
use rustix::process::{Pid, Signal};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Set in the re-executed process; its presence plus being PID 1 means "inside".
pub const MARKER_ENV: &str = "DANESIM_NAMESPACE";

/// Directories searched for system tools besides `PATH` (sudo and cron often drop /usr/sbin).
const SBIN: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The work directory, absolute and already checked or created by the top process
/// (`world::workdir`), for the process inside.
pub const WORKDIR_ENV: &str = "DANESIM_WORKDIR";

/// Inside: the work directory the top process chose.
pub fn workdir_inside() -> Option<PathBuf> {
    std::env::var_os(WORKDIR_ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// True in the process re-executed inside its own namespaces.
pub fn inside() -> bool {
    std::env::var_os(MARKER_ENV).is_some() && std::process::id() == 1
}

/// The effective uid, read from /proc (no libc call needed).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub fn require_root(what: &str) -> Result<(), LabError> {
    if effective_uid() == Some(0) {
        Ok(())
    } else {
        Err(LabError::NotRoot { what: what.to_string() })
    }
}

/// Finds an executable by name on PATH or in the sbin directories; `install` says how to get it.
pub fn find_tool(name: &str, why: &str, install: &str) -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(SBIN.iter().map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(LabError::MissingTool {
        tool: name.to_string(),
        why: why.to_string(),
        install: install.to_string(),
    })
}

/// How long the namespace's PID 1 has to stop in order after a forwarded signal, before
/// it is killed (and with it, by the kernel, every process in its PID namespace).
const GRACE: Duration = Duration::from_secs(5);

/// How a run inside the namespace ended, as the top process sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The process inside finished on its own, with this exit code.
    Exited(u8),
    /// The top process got this signal (SIGTERM or SIGINT) and passed it on, but the process
    /// inside did not finish within the grace period and was killed with its namespace.
    /// The exit code is 128 + the signal number, as a shell reports it.
    Stopped(Signal),
}

impl Ended {
    pub fn exit_code(self) -> u8 {
        match self {
            Ended::Exited(code) => code,
            Ended::Stopped(sig) => signal_exit_code(sig),
        }
    }
}

/// 128 + the signal number: 143 for SIGTERM, 130 for SIGINT (the shell convention).
pub fn signal_exit_code(sig: Signal) -> u8 {
    (128 + sig.as_raw()).clamp(0, 255) as u8
}

/// Runs this program again under `unshare`, inside fresh namespaces, and waits for it.
///
/// This process stays on top, outside the namespace, because `unshare` itself blocks SIGINT
/// and SIGTERM while it waits: a supervisor's or CI timeout's `kill -TERM <pid>` to it alone
/// would be ignored and the whole run would go on. Here a SIGTERM or SIGINT is passed on to
/// the namespace's PID 1 (the inner danesim, which stops its world and sender and exits
/// with its own code: 128 + the signal for a run, 0 for serve); if it has not finished
/// within [`GRACE`], it is killed, and the kernel then kills every
/// process left in its PID namespace (pid_namespaces(7)). `--kill-child` covers the last
/// gap: should `unshare` die first, the kernel sends the inner danesim SIGKILL.
///
/// With `tell_pid`, the inner process reads `unshare`'s PID as one line on its stdin: that
/// process is in the new network and mount namespaces, the target for `nsenter`.
pub async fn enter(args: &[OsString], env: &[(&str, String)], tell_pid: bool) -> Result<Ended, LabError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Before the child exists, so that no signal is lost between spawn and select.
    let mut term = signal(SignalKind::terminate()).map_err(LabError::Unshare)?;
    let mut int = signal(SignalKind::interrupt()).map_err(LabError::Unshare)?;
    let unshare = find_tool(
        "unshare",
        "it creates the private namespace",
        "apt-get install util-linux",
    )?;
    let exe = std::env::current_exe().map_err(LabError::Unshare)?;
    let mut cmd = tokio::process::Command::new(unshare);
    cmd.args([
        "--net",
        "--mount",
        "--pid",
        // Its own host name (issue 16: inside, the name was the host's unqualified `vm`,
        // and an MTA stalled 60 s at start resolving it).
        "--uts",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
    ])
    .arg(exe)
    .args(args)
    .env(MARKER_ENV, "1")
    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
    .kill_on_drop(true);
    if tell_pid {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(LabError::Unshare)?;
    let top = child.id().unwrap_or(0);
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(format!("{top}\n").as_bytes())
            .await
            .map_err(LabError::Unshare)?;
    }
    let received = tokio::select! {
        status = child.wait() => return Ok(exited(status.map_err(LabError::Unshare)?)),
        _ = term.recv() => Signal::TERM,
        _ = int.recv() => Signal::INT,
    };
    // PID 1 of a PID namespace gets only the signals it has a handler for; the inner
    // danesim has one for both while it runs (and the grace period covers its start).
    for pid in children_of(top) {
        let _ = rustix::process::kill_process(pid, received);
    }
    // Stopped in order (a run exits 128 + the signal, serve 0): its own exit code stands.
    if let Ok(Ok(status)) = tokio::time::timeout(GRACE, child.wait()).await {
        return Ok(exited(status));
    }
    for pid in children_of(top) {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
    let _ = child.kill().await;
    Ok(Ended::Stopped(received))
}

/// The exit code of `unshare`, which passes on the inner process's (or 128 + its signal).
fn exited(status: std::process::ExitStatus) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ended::Exited(code.clamp(0, 255) as u8),
        (None, Some(sig)) => Ended::Exited((128 + sig).clamp(0, 255) as u8),
        (None, None) => Ended::Exited(2),
    }
}

/// The processes whose parent is `parent` (field 4 of /proc/PID/stat, after the `(comm)`,
/// which may itself hold spaces and parentheses).
fn children_of(parent: u32) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent)
            && let Some(p) = Pid::from_raw(pid)
        {
            found.push(p);
        }
    }
    found
}

/// Inside, with `tell_pid`: `unshare`'s PID on the host, as [`enter`] wrote it on stdin.
pub fn host_pid_from_stdin() -> Option<u32> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    line.trim().parse().ok()
}

/// Brings `lo` up, puts the world addresses on it and bind-mounts a `resolv.conf` that names
/// the validating resolver. Only valid inside the namespace made by [`reexec`].
pub fn setup(addresses: &BTreeSet<IpAddr>, workdir: &Path, resolver: IpAddr) -> Result<(), LabError> {
    if !inside() {
        return Err(LabError::Config(
            "refusing to change network settings outside a namespace danesim created".into(),
        ));
    }
    let ip = find_tool(
        "ip",
        "it configures the namespace's loopback",
        "apt-get install iproute2",
    )?;
    run(Command::new(&ip).args(["link", "set", "lo", "up"]))?;
    for a in addresses {
        if a.is_loopback() {
            continue;
        }
        // nodad: an address on lo needs no duplicate detection, and DAD would delay binding (RFC 4862 §5.4).
        let mut c = Command::new(&ip);
        match a {
            IpAddr::V4(v4) => c.args(["addr", "add", &format!("{v4}/32"), "dev", "lo"]),
            IpAddr::V6(v6) => c.args(["-6", "addr", "add", &format!("{v6}/128"), "dev", "lo", "nodad"]),
        };
        run(&mut c)?;
    }
    // Exim 4.96 needs trust-ad to believe the resolver's AD bit (glibc ≥ 2.31 clears it
    // otherwise); edns0 lets DNSSEC-sized answers come over UDP.
    let conf = workdir.join("resolv.conf");
    let text = format!("# written by danesim for this namespace only\nnameserver {resolver}\noptions trust-ad edns0\n");
    std::fs::write(&conf, text).map_err(|source| LabError::Write {
        path: conf.clone(),
        source,
    })?;
    let mount = find_tool("mount", "it bind-mounts resolv.conf", "apt-get install mount")?;
    run(Command::new(&mount).arg("--bind").arg(&conf).arg("/etc/resolv.conf"))?;
    // A qualified name of the sender's own (RFC 5321 §4.1.1.1 wants a FQDN in EHLO, and MTAs
    // take it from the host name) that the namespace's own /etc/hosts resolves, so that
    // nothing waits on a DNS lookup of the machine's name, and nothing of the host's
    // /etc/hosts leaks into the world.
    rustix::system::sethostname(HOSTNAME.as_bytes())
        .map_err(|e| LabError::Config(format!("cannot set the namespace's host name to {HOSTNAME}: {e}")))?;
    let hosts = workdir.join("hosts");
    let text = format!(
        "# written by danesim for this namespace only\n127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n\
         127.0.1.1 {HOSTNAME} {}\n",
        HOSTNAME.split('.').next().unwrap_or(HOSTNAME)
    );
    std::fs::write(&hosts, text).map_err(|source| LabError::Write {
        path: hosts.clone(),
        source,
    })?;
    run(Command::new(&mount).arg("--bind").arg(&hosts).arg("/etc/hosts"))?;
    Ok(())
}

/// The sender's host name inside the namespace (the name Postfix and Exim are configured
/// with as well: `myhostname`, `primary_hostname`).
pub const HOSTNAME: &str = "client.test";
