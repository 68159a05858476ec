//! The Exim adapter: Debian's Exim 4.96 heavy build (DANE and DNSSEC compiled in),
//! unpacked beside Postfix by `ci/install-exim` because the two packages conflict. One
//! runtime config per run from `fixtures/senders/exim.conf`; each message is delivered
//! in the foreground (`-odf`), so the command returns after the attempt, and the
//! outcome is read from the main log.
//!
//! `hosts_try_dane = *` is the RFC 7672 behaviour (DANE where a secure TLSA RRset exists,
//! opportunistic TLS elsewhere, §2.2); `hosts_require_dane` would bounce mail for every
//! insecure domain, which no conformant sender does.

pub mod mainlog;

use super::{Adapter, Attempt, files};
use crate::scenario::{Relay, Scenario};
use crate::sender::external::Terminal;
use crate::world::LabError;
use crate::world::clock::{self, WorldClock};
use crate::world::lab::Lab;
use crate::world::namespace::find_tool;
use crate::world::process::run;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where `ci/install-exim` unpacks the binary; `DANESIM_EXIM` overrides it.
pub const DEFAULT_BINARY: &str = "/opt/danesim/exim/usr/sbin/exim4";
const INSTALL: &str = "ci/install-exim (as root; unpacks Debian's exim4-daemon-heavy 4.96 beside Postfix)";
const TEMPLATE: &str = include_str!("../../../../../fixtures/senders/exim.conf");
/// Above the transport's own timeouts (connect 5 s, commands 10 s) for two MX hosts.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(60);
/// Exim's compiled-in user; it receives and delivers as this user.
const EXIM_USER: &str = "Debian-exim";

pub fn binary() -> PathBuf {
    std::env::var_os("DANESIM_EXIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY))
}

/// The binary is there and the user it runs as exists.
pub fn preflight() -> Result<(), LabError> {
    let bin = binary();
    if !bin.is_file() {
        return Err(LabError::MissingTool {
            tool: bin.display().to_string(),
            why: "the Exim sender under test".into(),
            install: INSTALL.into(),
        });
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    if !passwd.lines().any(|l| l.starts_with(&format!("{EXIM_USER}:"))) {
        return Err(LabError::MissingTool {
            tool: format!("the system user {EXIM_USER}"),
            why: "Exim receives and delivers as this user".into(),
            install: INSTALL.into(),
        });
    }
    Ok(())
}

pub struct Exim {
    binary: PathBuf,
    config: PathBuf,
    spool: PathBuf,
    mainlog: PathBuf,
    paniclog: PathBuf,
    message: PathBuf,
    /// The message the last attempt left queued (its Exim id).
    pending: Option<String>,
    /// The config with every placeholder filled but the relay router's.
    template: String,
    /// The relay the config on disk routes to (`[route] relay`), if any.
    route: Option<Relay>,
    /// Every Exim command runs on it: the delivery process judges certificate dates at the
    /// scenario's time (world::clock).
    clock: WorldClock,
}

impl Exim {
    pub async fn start(workdir: &Path, clock: &WorldClock) -> Result<Exim, LabError> {
        preflight()?;
        let base = workdir.join("exim");
        let spool = base.join("spool");
        let logdir = base.join("log");
        std::fs::create_dir_all(&logdir).map_err(|source| LabError::Write {
            path: logdir.clone(),
            source,
        })?;
        let binary = without_setuid(&binary(), &base)?;
        // Exim writes its log as its own user and does not create the directory; every parent
        // must be searchable by that user (a 0700 temp dir is not).
        let chown = find_tool("chown", "log directory ownership", "apt-get install coreutils")?;
        let chmod = find_tool("chmod", "directory modes", "apt-get install coreutils")?;
        run(Command::new(&chown)
            .arg(format!("{EXIM_USER}:{EXIM_USER}"))
            .arg(&logdir))?;
        run(Command::new(&chmod).arg("0750").arg(&logdir))?;
        for d in [workdir, base.as_path()] {
            run(Command::new(&chmod).arg("o+x").arg(d))?;
        }
        let config = base.join("exim.conf");
        let text = TEMPLATE
            .replace("@@EXIM_PATH@@", &binary.display().to_string())
            .replace("@@SPOOL@@", &spool.display().to_string())
            .replace("@@LOGDIR@@", &logdir.display().to_string())
            .replace("@@HELO@@", "client.test")
            .replace("@@DANE_MODE@@", "hosts_try_dane")
            // Exim clears its environment at start; a re-executed Exim must keep the clock.
            .replace("@@KEEP_ENVIRONMENT@@", &clock::VARIABLES.join(" : "));
        let template = text.clone();
        let text = with_relay(&template, None);
        if let Some(left) = text
            .lines()
            .find(|l| !l.trim_start().starts_with('#') && l.contains("@@"))
        {
            return Err(LabError::Config(format!(
                "fixtures/senders/exim.conf has a placeholder the adapter does not fill: {left}"
            )));
        }
        std::fs::write(&config, text).map_err(|source| LabError::Write {
            path: config.clone(),
            source,
        })?;
        // Exim refuses a config that group or others may write.
        run(Command::new(&chmod).arg("0644").arg(&config))?;
        // Validate the config before the first scenario, so a broken one is named at once.
        run(clock
            .apply(&mut Command::new(&binary))
            .arg("-C")
            .arg(&config)
            .arg("-bV"))?;
        Ok(Exim {
            binary,
            config,
            spool,
            mainlog: logdir.join("mainlog"),
            paniclog: logdir.join("paniclog"),
            message: base.join("message.eml"),
            pending: None,
            template,
            route: None,
            clock: clock.clone(),
        })
    }

    /// Rewrites the config when the scenario's route differs from the one on disk. Every
    /// Exim command reads the config afresh (-C), so the next submission or retry uses it.
    fn route_to(&mut self, relay: Option<&Relay>) -> Result<(), LabError> {
        if self.route.as_ref() == relay {
            return Ok(());
        }
        let text = with_relay(&self.template, relay);
        std::fs::write(&self.config, text).map_err(|source| LabError::Write {
            path: self.config.clone(),
            source,
        })?;
        self.route = relay.cloned();
        Ok(())
    }
}

/// The config with the `relay` router for `relay`, or with none (routing by MX).
fn with_relay(template: &str, relay: Option<&Relay>) -> String {
    let router = match relay {
        None => String::new(),
        // `host::port`: the port after a doubled colon, the list separator (Exim spec,
        // "The manualroute router", host lists with ports).
        Some(r) => format!(
            "relay:\n  driver = manualroute\n  domains = ! client.test\n  transport = remote_smtp\n  \
             route_list = * {}::{} bydns\n  dnssec_request_domains = *\n  self = send\n  no_more\n",
            r.host.trim_end_matches('.'),
            r.port
        ),
    };
    // The placeholder's own line only: the template's header names it in a comment too.
    template.replace("\n@@RELAY_ROUTER@@\n", &format!("\n{router}\n"))
}

/// A copy of the Exim binary without its set-uid bit, which Exim runs as `exim_path`.
///
/// Exim re-executes itself to deliver (`-Mc`, from its own user after receiving). Executing
/// the set-uid original from that user puts the loader in secure mode, which ignores
/// `LD_PRELOAD` (ld.so(8)): the delivery process, the one that verifies the certificate,
/// would lose the world clock, judge dates by the host's, and take a message received at
/// world time for one months old ("retry timeout exceeded"). The bit gives nothing here: the
/// harness runs Exim as root, and the delivery drops root anyway for `-C` (the "lost
/// privilege" line in the panic log).
fn without_setuid(original: &Path, dir: &Path) -> Result<PathBuf, LabError> {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join("exim4");
    let write = |source| LabError::Write {
        path: copy.clone(),
        source,
    };
    // A fresh copy per run: the original may have been upgraded since the last one.
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(original, &copy).map_err(write)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).map_err(write)?;
    Ok(copy)
}

impl Exim {
    /// Runs one foreground Exim command (the submission with -odf, or a forced retry with
    /// -M) and returns the delivery attempt it logged for message `id` (or, for a new
    /// message, the one its `<=` line names).
    async fn run_attempt(
        &mut self,
        args: &[&std::ffi::OsStr],
        stdin: Option<std::fs::File>,
        s: &Scenario,
        id: Option<&str>,
    ) -> Result<Attempt, LabError> {
        let (log_at, panic_at) = (files::log_len(&self.mainlog), files::log_len(&self.paniclog));
        let mut cmd = std::process::Command::new(&self.binary);
        self.clock.apply(&mut cmd);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.arg("-C").arg(&self.config).args(args);
        match stdin {
            Some(f) => cmd.stdin(f),
            None => cmd.stdin(Stdio::null()),
        };
        let shown = format!(
            "exim -C {} {}",
            self.config.display(),
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        );
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(ATTEMPT_LIMIT, child).await {
            Ok(r) => r.map_err(|e| LabError::Command {
                command: shown.clone(),
                detail: e.to_string(),
            })?,
            Err(_) => {
                return Err(LabError::Timeout {
                    what: "exim".into(),
                    seconds: ATTEMPT_LIMIT.as_secs(),
                    log: self.mainlog.display().to_string(),
                });
            }
        };
        let lines: Vec<_> = files::log_since(&self.mainlog, log_at)
            .lines()
            .filter_map(mainlog::parse_line)
            .collect();
        let id = match id {
            Some(id) => Some(id.to_string()),
            None => mainlog::message_id(&lines, &s.message.from, &s.message.to),
        };
        let found = id
            .as_deref()
            .and_then(|id| mainlog::attempt(&lines, id, &s.message.to).map(|a| (id.to_string(), a)));
        let Some((id, mut a)) = found else {
            return Err(LabError::Command {
                command: shown,
                detail: format!(
                    "{}: no delivery result in {}; stderr: {}",
                    out.status,
                    self.mainlog.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        };
        // The panic log holds one harmless line per delivery process (privileges dropped
        // for -C); anything else there is part of the sender's story.
        for l in files::log_since(&self.paniclog, panic_at).lines() {
            if !l.contains("lost privilege") {
                a.log
                    .push(format!("paniclog: {}", l.split_once("] ").map(|x| x.1).unwrap_or(l)));
            }
        }
        self.pending = (a.terminal == Terminal::Deferred).then_some(id);
        Ok(a)
    }
}

#[async_trait]
impl Adapter for Exim {
    async fn attempt(&mut self, s: &Scenario, _lab: &Lab) -> Result<Attempt, LabError> {
        self.route_to(s.relay.as_ref())?;
        let file = files::message(&self.message, &s.message.body)?;
        // -odf: deliver in the foreground, so the command returns when the attempt has ended.
        let words = ["-odf", "-f", s.message.from.as_str(), "--", s.message.to.as_str()];
        let args: Vec<&std::ffi::OsStr> = words.iter().map(std::ffi::OsStr::new).collect();
        self.run_attempt(&args, Some(file), s, None).await
    }

    async fn retry(&mut self, s: &Scenario, _lab: &Lab) -> Result<Attempt, LabError> {
        let Some(id) = self.pending.clone() else {
            return Err(LabError::Config("exim: no deferred message to retry".into()));
        };
        // -M forces a delivery attempt now, whatever the retry hints say: the timeline, not
        // a clock, decides when the retry happens.
        let words = ["-M", id.as_str()];
        let args: Vec<&std::ffi::OsStr> = words.iter().map(std::ffi::OsStr::new).collect();
        self.run_attempt(&args, None, s, Some(&id)).await
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        self.pending = None;
        // No Exim process runs between deliveries (-odf, no daemon), so the spool can be
        // emptied directly: queued messages and the retry hints, which would otherwise make
        // the next world's hosts "retry time not reached".
        for sub in ["input", "msglog", "db"] {
            let d = self.spool.join(sub);
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay router appears once, at the placeholder's line, before `dnslookup`, with the
    /// port after a doubled colon and DNS (DNSSEC-aware) address lookups; without a relay
    /// the config routes by MX only.
    #[test]
    fn the_relay_router_routes_to_the_host_and_port_before_mx() {
        let relay = Relay {
            host: "mx1.example.test.".into(),
            port: 2525,
        };
        let with = with_relay(TEMPLATE, Some(&relay));
        let live: Vec<&str> = with.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        assert!(live.iter().all(|l| !l.contains("@@RELAY_ROUTER@@")));
        let route = live
            .iter()
            .position(|l| l.trim() == "route_list = * mx1.example.test::2525 bydns")
            .expect("the relay's route_list");
        let dnslookup = live.iter().position(|l| *l == "dnslookup:").expect("the MX router");
        assert!(route < dnslookup, "the relay router comes first");
        assert_eq!(live.iter().filter(|l| **l == "relay:").count(), 1);
        let without = with_relay(TEMPLATE, None);
        assert!(
            !without
                .lines()
                .any(|l| l == "relay:" || l.contains("@@RELAY_ROUTER@@") && !l.starts_with('#'))
        );
    }
}
