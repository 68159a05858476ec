//! The Postfix adapter: a throwaway Postfix instance per run (its own config, queue and
//! data directories in the work directory), reused for every scenario of the run.
//!
//! Settings that matter (notes/real-senders.md):
//! - `smtp_tls_security_level = dane` and `smtp_dns_support_level = dnssec` (RFC 7672 §2:
//!   DANE needs the resolver's DNSSEC answers). Without the second Postfix only warns and
//!   falls back to opportunistic TLS, so a TLSA mismatch is *delivered*; the adapter reads
//!   the effective config back with `postconf -n` and refuses to run such a config.
//! - `maillog_file`: outcomes are in the log only.
//! - `max_use = 1`: each delivery gets a fresh `smtp` process, so no TLSA answer cached by a
//!   process (Postfix caches them for their TTL) outlives its world.
//! - The world clock (`world::clock`): `postfix start` runs with libfaketime's variables, and
//!   `import_environment` keeps them, because `master` and every daemon clear their
//!   environment to that list: `smtp` (which verifies the certificates) and `tlsproxy` judge
//!   dates at the scenario's time.

pub mod maillog;

use super::{Adapter, Attempt, files};
use crate::scenario::{Relay, Scenario};
use crate::sender::external::Terminal;
use crate::world::LabError;
use crate::world::clock::{self, WorldClock};
use crate::world::lab::Lab;
use crate::world::namespace::find_tool;
use crate::world::process::run;
use async_trait::async_trait;
use maillog::LogLine;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "apt-get install postfix (choose \"No configuration\")";
/// Long enough for every timeout below to fire first.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(60);

/// The Postfix programs the adapter runs.
pub struct Tools {
    pub postfix: PathBuf,
    pub postconf: PathBuf,
    pub sendmail: PathBuf,
    pub postsuper: PathBuf,
    pub postqueue: PathBuf,
}

impl Tools {
    /// Finds them all, or names the first one missing and how to install it.
    pub fn find() -> Result<Tools, LabError> {
        let why = "the Postfix sender under test";
        Ok(Tools {
            postfix: find_tool("postfix", why, INSTALL)?,
            postconf: find_tool("postconf", why, INSTALL)?,
            sendmail: find_tool("sendmail", why, INSTALL)?,
            postsuper: find_tool("postsuper", why, INSTALL)?,
            postqueue: find_tool("postqueue", why, INSTALL)?,
        })
    }
}

pub struct Postfix {
    config: PathBuf,
    maillog: PathBuf,
    message: PathBuf,
    postfix: PathBuf,
    sendmail: PathBuf,
    postsuper: PathBuf,
    postqueue: PathBuf,
    running: bool,
    /// The message the last attempt left queued (its queue id).
    pending: Option<String>,
    postconf: PathBuf,
    /// The relay `relayhost` names (`[route] relay`), if any.
    route: Option<Relay>,
    /// Postfix is restarted on it when the route changes.
    clock: WorldClock,
}

impl Postfix {
    pub async fn start(workdir: &Path, clock: &WorldClock) -> Result<Postfix, LabError> {
        let Tools {
            postfix,
            postconf,
            sendmail,
            postsuper,
            postqueue,
        } = Tools::find()?;
        let base = workdir.join("postfix");
        let config = base.join("config");
        let queue = base.join("queue");
        let data = base.join("data");
        let maillog = base.join("maillog");
        for d in [&config, &queue, &data] {
            std::fs::create_dir_all(d).map_err(|source| LabError::Write {
                path: d.clone(),
                source,
            })?;
        }
        // The package's pristine copies first: the machine's own /etc/postfix/master.cf may
        // carry local changes (content filters, relays) that have no place in a test instance.
        for (f, pristine) in [("master.cf", "master.cf.dist"), ("dynamicmaps.cf", "dynamicmaps.cf")] {
            let dist = Path::new("/usr/share/postfix").join(pristine);
            let from = if dist.is_file() {
                dist
            } else {
                Path::new("/etc/postfix").join(f)
            };
            std::fs::copy(&from, config.join(f)).map_err(|e| LabError::MissingTool {
                tool: from.display().to_string(),
                why: format!("the throwaway instance starts from the package's {f}: {e}"),
                install: INSTALL.into(),
            })?;
        }
        let defaults = run(Command::new(&postconf).args(["-d", "-h", "import_environment"]))?;
        let main_cf = main_cf(&queue, &data, &maillog, &base, &import_environment(&defaults));
        std::fs::write(config.join("main.cf"), main_cf).map_err(|source| LabError::Write {
            path: config.join("main.cf"),
            source,
        })?;
        // Debian's master.cf chroots the services; the instance's files are outside any chroot.
        run(Command::new(&postconf)
            .arg("-c")
            .arg(&config)
            .args(["-F", "*/*/chroot = n"]))?;
        // The data directory must belong to the mail owner, or `postfix start` fails with
        // nothing on stderr (the reason goes to the maillog only).
        run(Command::new(find_tool(
            "chown",
            "data directory ownership",
            "apt-get install coreutils",
        )?)
        .args(["-R", "postfix"])
        .arg(&data))?;
        let effective = run(Command::new(&postconf).arg("-c").arg(&config).arg("-n"))?;
        check_effective(&effective).map_err(LabError::Config)?;

        start_master(clock, &postfix, &config, &maillog)?;
        Ok(Postfix {
            message: base.join("message.eml"),
            config,
            maillog,
            postfix,
            sendmail,
            postsuper,
            postqueue,
            running: true,
            pending: None,
            postconf,
            route: None,
            clock: clock.clone(),
        })
    }

    /// Polls the maillog after `offset` until the message `qid_of` names has a terminal
    /// status line (an event, not a guessed sleep), and remembers it when it stays queued.
    async fn wait_for_status(
        &mut self,
        offset: u64,
        qid_of: impl Fn(&[LogLine]) -> Option<String>,
    ) -> Result<Attempt, LabError> {
        let started = Instant::now();
        loop {
            let lines = self.read_log_from(offset);
            if let Some(qid) = qid_of(&lines)
                && let Some(a) = maillog::attempt(&lines, &qid)
            {
                self.pending = (a.terminal == Terminal::Deferred).then_some(qid);
                return Ok(a);
            }
            if started.elapsed() > ATTEMPT_LIMIT {
                return Err(LabError::Timeout {
                    what: "postfix".into(),
                    seconds: ATTEMPT_LIMIT.as_secs(),
                    log: self.maillog.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sets `relayhost` to the scenario's relay (`[host]:port`: brackets, so no MX lookup,
    /// RFC 7672 §2.2.2), or empties it, when it differs from the running config. A restart,
    /// not a reload: after `postfix reload` an old trivial-rewrite may still resolve the next
    /// message by the old route, and a stopped master is certain.
    fn route_to(&mut self, relay: Option<&Relay>) -> Result<(), LabError> {
        if self.route.as_ref() == relay {
            return Ok(());
        }
        let value = relay.map(Relay::bracketed).unwrap_or_default();
        run(Command::new(&self.postconf)
            .arg("-c")
            .arg(&self.config)
            .arg("-e")
            .arg(format!("relayhost = {value}")))?;
        let effective = run(Command::new(&self.postconf).arg("-c").arg(&self.config).arg("-n"))?;
        check_effective(&effective).map_err(LabError::Config)?;
        // `postfix stop` returns once master has exited.
        run(Command::new(&self.postfix).arg("-c").arg(&self.config).arg("stop"))?;
        self.running = false;
        start_master(&self.clock, &self.postfix, &self.config, &self.maillog)?;
        self.running = true;
        self.route = relay.cloned();
        Ok(())
    }

    fn read_log_from(&self, offset: u64) -> Vec<LogLine> {
        files::log_since(&self.maillog, offset)
            .lines()
            .filter_map(maillog::parse_line)
            .collect()
    }
}

#[async_trait]
impl Adapter for Postfix {
    async fn attempt(&mut self, s: &Scenario, _lab: &Lab) -> Result<Attempt, LabError> {
        self.route_to(s.relay.as_ref())?;
        let offset = files::log_len(&self.maillog);
        let file = files::message(&self.message, &s.message.body)?;
        let out = tokio::process::Command::new(&self.sendmail)
            .arg("-C")
            .arg(&self.config)
            .arg("-f")
            .arg(&s.message.from)
            .arg("--")
            .arg(&s.message.to)
            .stdin(file)
            .output()
            .await
            .map_err(|e| LabError::Command {
                command: "sendmail".into(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(LabError::Command {
                command: format!(
                    "sendmail -C {} -f {} -- {}",
                    self.config.display(),
                    s.message.from,
                    s.message.to
                ),
                detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        // Wait for the event: the first terminal status line of this message in the log.
        self.wait_for_status(offset, |lines| maillog::queue_id(lines, &s.message.from))
            .await
    }

    async fn retry(&mut self, _s: &Scenario, _lab: &Lab) -> Result<Attempt, LabError> {
        let Some(qid) = self.pending.clone() else {
            return Err(LabError::Config("postfix: no deferred message to retry".into()));
        };
        let offset = files::log_len(&self.maillog);
        // `postqueue -f` retries the deferred queue now, whatever the backoff: the timeline,
        // not a clock, decides when the retry happens.
        run(Command::new(&self.postqueue).arg("-c").arg(&self.config).arg("-f"))?;
        self.wait_for_status(offset, |_| Some(qid.clone())).await
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        self.pending = None;
        // Drop whatever is still queued (a deferred message would be retried into the next
        // world), then `postqueue -f`, which also tells qmgr to forget which destinations
        // it had marked dead after a deferral.
        run(Command::new(&self.postsuper)
            .arg("-c")
            .arg(&self.config)
            .args(["-d", "ALL"]))?;
        run(Command::new(&self.postqueue).arg("-c").arg(&self.config).arg("-f"))?;
        Ok(())
    }

    async fn shutdown(&mut self) {
        if self.running {
            let _ = run(Command::new(&self.postfix).arg("-c").arg(&self.config).arg("stop"));
            self.running = false;
        }
    }
}

/// `postfix start` on the world clock; the maillog's last lines when it fails.
fn start_master(clock: &WorldClock, postfix: &Path, config: &Path, maillog: &Path) -> Result<(), LabError> {
    let out = clock
        .apply(&mut Command::new(postfix))
        .arg("-c")
        .arg(config)
        .arg("start")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            command: "postfix start".into(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        let tail = std::fs::read_to_string(maillog).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
        return Err(LabError::Command {
            command: format!("postfix -c {} start", config.display()),
            detail: format!(
                "{}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
        });
    }
    Ok(())
}

/// Postfix's default `import_environment` plus the world clock's variables, so `master` and
/// its daemons keep them (a name=value entry in the defaults stays as it is).
fn import_environment(defaults: &str) -> String {
    let mut names: Vec<String> = defaults.split_whitespace().map(str::to_string).collect();
    for v in clock::VARIABLES {
        if !names.iter().any(|n| n == v || n.starts_with(&format!("{v}="))) {
            names.push(v.to_string());
        }
    }
    names.join(" ")
}

/// The instance's main.cf. Every setting says why it is there.
fn main_cf(queue: &Path, data: &Path, maillog: &Path, base: &Path, import_environment: &str) -> String {
    format!(
        "# A throwaway Postfix instance for one danesim run; generated, do not edit.
compatibility_level = 3.6
# The world clock's variables survive master's environment cleaning (world::clock).
import_environment = {import_environment}
queue_directory = {queue}
data_directory = {data}
# The log is the only place Postfix reports outcomes; postlogd (already in master.cf) writes it.
maillog_file = {maillog}
maillog_file_prefixes = {base}
myhostname = client.test
myorigin = client.test
# A client only: no local domains, no listening smtpd; a relay host only for a scenario with
# `[route] relay` (set by the adapter, `Postfix::route_to`).
mydestination =
relayhost =
inet_interfaces = loopback-only
master_service_disable = inet
alias_maps =
alias_database =
local_recipient_maps =
notify_classes =
biff = no
# Bounces go to the sender's own domain: discard them, so they never reach the world's DNS.
transport_maps = inline:{{ client.test=discard: }}
# RFC 7672 §2: DANE, with the DNSSEC status of every lookup taken from the resolver's AD bit.
smtp_tls_security_level = dane
smtp_dns_support_level = dnssec
smtp_tls_loglevel = 1
# No state that outlives one world: no TLS session cache, no connection cache, and a
# fresh smtp process (and so an empty TLSA cache) for every delivery.
smtp_tls_session_cache_database =
smtp_connection_cache_on_demand = no
max_use = 1
# No retries of its own: the harness retries a deferred message with `postqueue -f` when a
# timeline says so, and a retry by Postfix's own clock would race with the timeline's steps.
# Postfix runs on the world clock, which a timeline moves on by hours or days between
# attempts; each jump fires every timer that falls within it, so none falls within a
# timeline's reach (64 attempts of at most 400 days).
# Short timeouts: a deliberate drop costs seconds, not minutes.
queue_run_delay = 24000d
minimal_backoff_time = 24000d
maximal_backoff_time = 24000d
smtp_connect_timeout = 5s
smtp_helo_timeout = 5s
smtp_starttls_timeout = 5s
smtp_mail_timeout = 5s
smtp_rcpt_timeout = 5s
smtp_data_init_timeout = 5s
smtp_data_xfer_timeout = 5s
smtp_data_done_timeout = 5s
smtp_quit_timeout = 5s
",
        queue = queue.display(),
        data = data.display(),
        maillog = maillog.display(),
        base = base.display(),
        import_environment = import_environment,
    )
}

/// Refuses an effective configuration (`postconf -n`) in which DANE would silently degrade
/// (docs/CONFORMANCE.md, known deviations: Postfix without `smtp_dns_support_level = dnssec`
/// falls back to opportunistic TLS and delivers after a TLSA mismatch).
pub fn check_effective(postconf_n: &str) -> Result<(), String> {
    let get = |name: &str| {
        postconf_n.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let mut problems = Vec::new();
    match get("smtp_tls_security_level").as_deref() {
        Some("dane") | Some("dane-only") => {}
        other => problems.push(format!(
            "smtp_tls_security_level is {:?}, not dane or dane-only: Postfix would not look for TLSA records",
            other.unwrap_or("unset")
        )),
    }
    match get("smtp_dns_support_level").as_deref() {
        Some("dnssec") => {}
        other => problems.push(format!(
            "smtp_dns_support_level is {:?}, not dnssec: Postfix would only warn and fall back to opportunistic TLS, delivering after a TLSA mismatch",
            other.unwrap_or("unset")
        )),
    }
    if get("smtp_host_lookup").is_some_and(|v| !v.contains("dns")) {
        problems.push("smtp_host_lookup does not include dns: DANE needs DNS lookups of MX hosts".into());
    }
    // Without them master drops the world clock, and smtp judges certificates by the host's date.
    let imported = get("import_environment").unwrap_or_default();
    let missing: Vec<&str> = clock::VARIABLES
        .into_iter()
        .filter(|v| !imported.split_whitespace().any(|n| n == *v))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "import_environment lacks {}: smtp would judge certificate dates by the host's clock, not the world's",
            missing.join(" ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "refusing this Postfix configuration, DANE would silently degrade: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_config_passes_the_check() {
        let imports = import_environment("MAIL_CONFIG TZ LANG=C");
        assert_eq!(
            imports,
            "MAIL_CONFIG TZ LANG=C LD_PRELOAD FAKETIME_TIMESTAMP_FILE FAKETIME_NO_CACHE FAKETIME_DONT_FAKE_MONOTONIC"
        );
        let cf = main_cf(
            Path::new("/q"),
            Path::new("/d"),
            Path::new("/l"),
            Path::new("/b"),
            &imports,
        );
        assert_eq!(check_effective(&cf), Ok(()));
    }

    #[test]
    fn a_config_that_drops_the_world_clock_is_refused() {
        let cf = main_cf(
            Path::new("/q"),
            Path::new("/d"),
            Path::new("/l"),
            Path::new("/b"),
            "MAIL_CONFIG TZ",
        );
        let err = check_effective(&cf).unwrap_err();
        assert!(
            err.contains("import_environment lacks LD_PRELOAD FAKETIME_TIMESTAMP_FILE"),
            "{err}"
        );
    }

    #[test]
    fn a_config_that_would_degrade_is_refused() {
        let err = check_effective("smtp_tls_security_level = dane\n").unwrap_err();
        assert!(err.contains("smtp_dns_support_level"), "{err}");
        let err = check_effective("smtp_tls_security_level = may\nsmtp_dns_support_level = dnssec\n").unwrap_err();
        assert!(err.contains("not dane"), "{err}");
        let err = check_effective(
            "smtp_tls_security_level = dane\nsmtp_dns_support_level = dnssec\nsmtp_host_lookup = native\n",
        )
        .unwrap_err();
        assert!(err.contains("smtp_host_lookup"), "{err}");
    }
}
