//! Namespace mode: a private network, mount and PID namespace the harness makes for itself,
//! so that unmodified MTAs can resolve and dial the world's addresses.
//!
//! `danesim` re-executes itself under `unshare --net --mount --pid --fork --kill-child`.
//! Inside, it is PID 1 of the new PID namespace: when it exits for any reason (done, error,
//! Ctrl-C, SIGKILL of the outer `unshare`), the kernel kills every process left in the
//! namespace, so no Postfix, Exim or unbound it started can outlive it. The network
//! namespace has only `lo`; the world's documentation addresses (192.0.2.0/24, 2001:db8::/32)
//! are put there, so traffic never leaves the namespace. Mounts are private to it: the
//! bind-mounted `resolv.conf` is seen by nothing outside.

use super::error::LabError;
use super::process::run;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the re-executed process; its presence plus being PID 1 means "inside".
pub const MARKER_ENV: &str = "DANESIM_NAMESPACE";

/// Directories searched for system tools besides `PATH` (sudo and cron often drop /usr/sbin).
const SBIN: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

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

/// Replaces this process with itself under `unshare`, inside fresh namespaces. Returns only on failure.
pub fn reexec(args: &[OsString]) -> LabError {
    reexec_with(args, &[])
}

/// As [`reexec`], with more environment variables for the process inside.
pub fn reexec_with(args: &[OsString], env: &[(&str, String)]) -> LabError {
    let unshare = match find_tool(
        "unshare",
        "it creates the private namespace",
        "apt-get install util-linux",
    ) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return LabError::Unshare(e),
    };
    // --kill-child: if the outer `unshare` is killed, the kernel kills the inner danesim (PID 1),
    // and with it the whole PID namespace. unshare itself ignores SIGINT/SIGTERM while it waits,
    // so a Ctrl-C reaches the inner danesim, which stops its children in order.
    let err = Command::new(unshare)
        .args([
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--",
        ])
        .arg(exe)
        .args(args)
        .env(MARKER_ENV, "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .exec();
    LabError::Unshare(err)
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
    run(Command::new(mount).arg("--bind").arg(&conf).arg("/etc/resolv.conf"))?;
    Ok(())
}
