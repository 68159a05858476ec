//! A real validating resolver for external senders: unbound, started by the harness with
//! the world's trust anchor and stub-zoned to the in-process authoritative server. Real
//! MTAs trust the AD bit of a local validating resolver (RFC 7672 §2.1.1 leaves DNSSEC
//! validation to it), so unbound, not danesim, decides what is secure, insecure or bogus.

use super::clock::WorldClock;
use super::error::LabError;
use super::namespace::find_tool;
use super::process::checked;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Where unbound answers the MTAs in namespace mode, as `resolv.conf` says.
pub const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct Unbound {
    child: Child,
    dir: PathBuf,
    listen: SocketAddr,
    authoritative: SocketAddr,
    /// The zone origins stub-zoned to the authoritative server.
    zones: Vec<String>,
    conf: PathBuf,
    control: PathBuf,
    pub log: PathBuf,
    anchor: PathBuf,
    current_anchor: String,
}

impl Unbound {
    /// Writes the config and the anchor into `dir`, starts unbound in the foreground on
    /// `listen` and waits until its control socket answers.
    pub async fn start(
        dir: &Path,
        listen: SocketAddr,
        authoritative: SocketAddr,
        zones: &[String],
        anchor: &str,
        clock: &WorldClock,
    ) -> Result<Unbound, LabError> {
        let install = "apt-get install unbound";
        let daemon = find_tool("unbound", "the validating resolver real senders use", install)?;
        let control = find_tool("unbound-control", "it flushes unbound's caches between worlds", install)?;
        let conf = dir.join("unbound.conf");
        let log = dir.join("unbound.log");
        let anchor_file = dir.join("anchor.key");
        let socket = dir.join("unbound.ctl");
        write(&anchor_file, anchor)?;
        write(
            &conf,
            &config(dir, &log, &anchor_file, &socket, listen, authoritative, zones),
        )?;
        let stderr = dir.join("unbound.stderr");
        let stderr_file = std::fs::File::create(&stderr).map_err(|source| LabError::Write {
            path: stderr.clone(),
            source,
        })?;
        let mut cmd = std::process::Command::new(daemon);
        // RRSIG validity (RFC 4035 §5.3.1) at the world's time, not the host's.
        clock.apply(&mut cmd);
        let child = Command::from(cmd)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // What unbound says before its logfile is open (a config error) lands here.
            .stderr(Stdio::from(stderr_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LabError::Command {
                command: "unbound -d".into(),
                detail: e.to_string(),
            })?;
        let mut u = Unbound {
            child,
            dir: dir.to_path_buf(),
            listen,
            authoritative,
            zones: zones.to_vec(),
            conf,
            control,
            log,
            anchor: anchor_file,
            current_anchor: anchor.to_string(),
        };
        let started = Instant::now();
        loop {
            if u.control(&["status"]).await.is_ok() {
                return Ok(u);
            }
            if let Ok(Some(status)) = u.child.try_wait() {
                return Err(LabError::Command {
                    command: format!("unbound -d -c {}", u.conf.display()),
                    detail: format!("exited with {status}; {}", said(&[&stderr, &u.log])),
                });
            }
            if started.elapsed() > READY_WITHIN {
                return Err(LabError::Command {
                    command: format!("unbound -d -c {}", u.conf.display()),
                    detail: format!(
                        "its control socket did not answer within {} s; {}",
                        READY_WITHIN.as_secs(),
                        said(&[&stderr, &u.log])
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A new world replaces the old one: install its anchor and drop every cached answer,
    /// key and infrastructure entry (`reload` rereads the config and the anchor file and
    /// empties the caches), so nothing learnt from the previous world leaks into this one.
    pub async fn new_world(
        &mut self,
        anchor: &str,
        authoritative: SocketAddr,
        zones: &[String],
    ) -> Result<(), LabError> {
        if anchor != self.current_anchor {
            write(&self.anchor, anchor)?;
            self.current_anchor = anchor.to_string();
        }
        if authoritative != self.authoritative || zones != self.zones.as_slice() {
            let socket = self.dir.join("unbound.ctl");
            let text = config(
                &self.dir,
                &self.log,
                &self.anchor,
                &socket,
                self.listen,
                authoritative,
                zones,
            );
            write(&self.conf, &text)?;
            self.authoritative = authoritative;
            self.zones = zones.to_vec();
        }
        self.control(&["reload"]).await.map(|_| ())
    }

    /// A timeline's flush: forget every answer, key and negative or bogus entry under `test.`,
    /// so the next lookup asks the authoritative server again (notes/real-senders.md).
    pub async fn flush(&self) -> Result<(), LabError> {
        self.control(&["flush_zone", "test."]).await?;
        self.control(&["flush_bogus"]).await?;
        self.control(&["flush_negative"]).await?;
        self.control(&["flush_infra", "all"]).await?;
        Ok(())
    }

    async fn control(&self, args: &[&str]) -> Result<String, LabError> {
        let out = Command::new(&self.control)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await;
        checked(format!("unbound-control {}", args.join(" ")), out)
    }

    /// Stops unbound and waits for it, so nothing outlives the lab.
    pub async fn stop(mut self) {
        let _ = self.control(&["stop"]).await;
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// What unbound left in `files` for a failed start: the last lines of each file that
/// exists and is not empty, named by path, or that it wrote nothing at all.
fn said(files: &[&Path]) -> String {
    let mut parts = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
        parts.push(format!("{} says: {tail}", f.display()));
    }
    if parts.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!("it wrote nothing ({} are empty or missing)", names.join(", "))
    } else {
        parts.join("; ")
    }
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|source| LabError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The generated configuration. Each setting that differs from unbound's default says why.
fn config(
    dir: &Path,
    log: &Path,
    anchor: &Path,
    socket: &Path,
    listen: SocketAddr,
    authoritative: SocketAddr,
    zones: &[String],
) -> String {
    // One stub per zone, all at the one authoritative server: unbound then never follows a
    // referral to the NS glue address, which in process is 127.0.0.1 on a port nobody serves.
    let mut stubs = String::new();
    // The root too: a stub for "." takes the place of unbound's compiled-in hints for the 13
    // root servers (they are used only when no root stub or hints file is configured), so a
    // name or a delegation outside the world is asked of the world's server, which refuses
    // it, and unbound never tries to leave, route or no route (issue 14).
    let root_in_world = zones.iter().any(|z| z == ".");
    let world_only = std::iter::once(".").filter(|_| !root_in_world);
    for z in zones.iter().map(String::as_str).chain(world_only) {
        stubs.push_str(&format!(
            "\nstub-zone:\n    name: \"{z}\"\n    stub-addr: {}@{}\n",
            authoritative.ip(),
            authoritative.port()
        ));
    }
    let text = format!(
        r#"# unbound for one danesim namespace; generated, do not edit.
server:
    directory: "{dir}"
    # Run as whoever started it, unchrooted: the files live in danesim's work directory.
    username: ""
    chroot: ""
    pidfile: ""
    logfile: "{log}"
    use-syslog: no
    log-time-ascii: yes
    verbosity: 1
    # Say why an answer is bogus (the reason lands in the log the harness keeps).
    val-log-level: 2
    log-servfail: yes
    interface: {resolver}
    port: {port}
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    so-reuseport: no
    module-config: "validator iterator"
    # The world's only trust anchor: the key of `test.` (RFC 4033 §2; DESIGN.md "Zones").
    trust-anchor-file: "{anchor}"
    # The authoritative server is on loopback; unbound refuses to ask loopback by default.
    do-not-query-localhost: no
    # `test.` is a special-use TLD that unbound answers NXDOMAIN for itself unless told not to.
    local-zone: "test." nodefault
    # Deterministic queries: the authoritative server sees exactly what the sender's lookups need.
    qname-minimisation: no
    aggressive-nsec: no
    # Keep RRsets in the order the server sent them (unbound shuffles them by default), so
    # an MTA's log of a multi-record TLSA RRset reads the same every run.
    rrset-roundrobin: no
    # No RFC 8145 key-tag queries (`_ta-XXXX.test. NULL`) in the witness's query log.
    trust-anchor-signaling: no
    prefetch: no
    prefetch-key: no
    # Caching as shipped (cache-max-ttl 1 day, cache-max-negative-ttl 1 hour): a timeline
    # moves unbound's clock (libfaketime) past a TTL instead of waiting for it, so a cache
    # cap would only hide what the sender's resolver really keeps (TTL-01).

remote-control:
    control-enable: yes
    control-interface: "{socket}"
    control-use-cert: no

"#,
        dir = dir.display(),
        log = log.display(),
        anchor = anchor.display(),
        socket = socket.display(),
        resolver = listen.ip(),
        port = listen.port(),
    );
    text + &stubs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(zones: &[&str]) -> String {
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        let p = Path::new("/w");
        config(
            p,
            &p.join("unbound.log"),
            &p.join("anchor.key"),
            &p.join("unbound.ctl"),
            SocketAddr::from(([127, 0, 0, 1], 53)),
            SocketAddr::from(([127, 0, 0, 2], 53)),
            &zones,
        )
    }

    #[test]
    fn the_root_is_the_worlds_server_and_no_other_server_is_named() {
        let text = conf(&["test.", "example.test."]);
        assert!(
            text.contains("stub-zone:\n    name: \".\"\n    stub-addr: 127.0.0.2@53\n"),
            "{text}"
        );
        // No hints file (unbound's own lists the 13 root servers), no forwarder, and every
        // server unbound may ask is the world's.
        assert!(!text.contains("root-hints") && !text.contains("forward-zone"), "{text}");
        let servers: Vec<&str> = text.lines().filter(|l| l.contains("-addr:")).collect();
        assert_eq!(servers.len(), 3, "{text}");
        assert!(
            servers.iter().all(|l| l.trim() == "stub-addr: 127.0.0.2@53"),
            "{servers:?}"
        );
        // Validation stays on, with the world's anchor.
        assert!(text.contains("module-config: \"validator iterator\""), "{text}");
        assert!(text.contains("trust-anchor-file: \"/w/anchor.key\""), "{text}");
    }

    #[test]
    fn a_world_with_a_root_zone_gets_one_root_stub() {
        let text = conf(&[".", "test."]);
        assert_eq!(text.matches("name: \".\"").count(), 1, "{text}");
    }

    #[test]
    fn a_failed_start_quotes_the_files_that_exist_or_says_there_are_none() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (stderr, log) = (dir.path().join("unbound.stderr"), dir.path().join("unbound.log"));
        let none = said(&[&stderr, &log]);
        assert!(none.starts_with("it wrote nothing"), "{none}");
        std::fs::write(
            &stderr,
            "[1:0] error: syntax error\nread unbound.conf failed: 1 errors\n",
        )
        .expect("written");
        let some = said(&[&stderr, &log]);
        assert!(
            some.contains(&format!("{} says:", stderr.display())) && some.contains("syntax error"),
            "{some}"
        );
        assert!(!some.contains("unbound.log"), "a missing log is not named: {some}");
    }
}
