//! The command adapter: any program, run per scenario inside the namespace from a sender
//! profile. It is judged from the receiving side (the witness) and from what its profile's
//! rules read in its output and exit status (`rules`); a crash or a hang is an error.

use super::profile::{self, Profile};
use super::rules;
use super::{Adapter, Attempt};
use crate::scenario::Scenario;
use crate::world::LabError;
use crate::world::clock::WorldClock;
use crate::world::lab::Lab;
use crate::world::namespace::find_tool;
use crate::world::unbound::RESOLVER;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Output lines kept in the trace: enough to read what happened, bounded for the snapshot.
pub(super) const MAX_LINES: usize = 200;
/// Octets of each of stdout and stderr kept; the rest is read and dropped, so a program
/// that floods its output neither blocks on a full pipe nor fills memory.
const MAX_OUTPUT: usize = 1 << 20;

/// How one run of the program ended.
enum Ran {
    Exited(i32, String),
    /// Killed by a signal (a crash, or an outside kill): never an outcome of delivery.
    Signalled(i32, String),
    /// Still running at the profile's timeout, and killed; the output read until then.
    TimedOut(String),
}

/// Runs `cmd` (its stdin given the message if the profile says so), reading stdout and
/// stderr as they come, so that a timeout keeps what the program printed.
async fn run(
    mut cmd: tokio::process::Command,
    stdin: profile::Stdin,
    message: &[u8],
    timeout: std::time::Duration,
) -> std::io::Result<Ran> {
    use std::os::unix::process::ExitStatusExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut child = cmd.spawn()?;
    let feed = child.stdin.take().filter(|_| stdin == profile::Stdin::Message);
    let message = message.to_vec();
    // A program that exits without reading its stdin is no error of ours (a closed pipe).
    let feeding = tokio::spawn(async move {
        if let Some(mut pipe) = feed {
            let _ = pipe.write_all(&message).await;
            let _ = pipe.shutdown().await;
        }
    });
    type Kept = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;
    async fn drain<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>, kept: Kept) {
        let Some(mut pipe) = pipe else { return };
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            let room = MAX_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
    }
    let (out_kept, err_kept) = (Kept::default(), Kept::default());
    let out = tokio::spawn(drain(child.stdout.take(), out_kept.clone()));
    let err = tokio::spawn(drain(child.stderr.take(), err_kept.clone()));
    let status = tokio::time::timeout(timeout, child.wait()).await;
    if status.is_err() {
        // The program itself is killed; whatever it started dies with the namespace's
        // PID 1 when the run ends.
        let _ = child.kill().await;
    }
    feeding.abort();
    // A process the program left behind may hold the pipes open: read what is there, then
    // stop waiting.
    for reader in [out, err] {
        if tokio::time::timeout(std::time::Duration::from_secs(2), async { reader.await.ok() })
            .await
            .is_err()
        {
            // Dropped: the task is detached and ends with the pipe.
        }
    }
    let text = |k: &Kept| String::from_utf8_lossy(&k.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let mut output = text(&out_kept);
    output.push_str(&text(&err_kept));
    Ok(match status {
        Err(_) => Ran::TimedOut(output),
        Ok(status) => {
            let status = status?;
            match (status.code(), status.signal()) {
                (Some(code), _) => Ran::Exited(code, output),
                (None, Some(signal)) => Ran::Signalled(signal, output),
                (None, None) => Ran::Exited(-1, output),
            }
        }
    })
}

/// " (SIGABRT)" for the signals a crash or a kill gives.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// The last lines of the output, for an error message.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let from = lines.len().saturating_sub(20);
    match lines.is_empty() {
        true => "(nothing)".into(),
        false => lines[from..].join("\n"),
    }
}

/// Everything the log gained since `offset`, read from there (the log is polled every few
/// milliseconds and grows over a whole run; empty when it does not exist yet).
fn log_since(path: &Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A sender described by a profile: a one-shot command, or a whole MTA with its config,
/// lifecycle and log (`profile`).
pub struct CommandSender {
    profile: Profile,
    /// The sender's name (`postfix`, `swaks`), for messages.
    name: String,
    /// `${DANESIM_WORKDIR}`.
    dir: PathBuf,
    /// Every command runs on the world clock (world::clock), as an MTA does.
    clock: WorldClock,
    /// What each template rendered to last: the files on disk.
    rendered: Vec<Option<String>>,
    started: bool,
    /// The message the last attempt left queued (its id in the log).
    pending: Option<String>,
    /// The namespace's `/dev/log`, when the profile's log is syslog.
    syslog: Option<crate::world::syslog::Syslog>,
}

/// Loads the profile and checks that its programs are installed and its `[[preflight]]`
/// checks pass, before the namespace exists: a missing or unfit program is named at once.
pub fn preflight(profile_path: &Path) -> Result<Profile, LabError> {
    let p = profile::load(profile_path).map_err(LabError::Config)?;
    let why = format!("a program of sender profile {}", profile_path.display());
    let l = &p.lifecycle;
    let programs = std::iter::once(&p.command)
        .filter(|c| !c.is_empty())
        .chain(l.setup.iter())
        .chain(l.start.iter())
        .chain(l.stop.iter())
        .chain(l.reset.iter())
        .chain(l.retry.iter())
        .chain(l.settle.iter())
        .chain(p.checks.iter().map(|c| &c.command))
        .chain(p.queue.iter().map(|q| &q.command));
    // A preflight's own program is its check: its failure carries the profile's `install`.
    for argv in programs {
        let program = &argv[0];
        // A program the run itself makes (in ${DANESIM_WORKDIR}) cannot be looked for yet.
        if program.contains("${") {
            continue;
        }
        locate(program, &why)?;
    }
    let vars = host_vars(&p);
    for c in &p.preflight {
        let argv: Vec<String> = c.command.iter().map(|a| profile::expand(a, &vars)).collect();
        let (status, output) = run_on_host(&argv, &vars, p.timeout);
        c.judge_run(&argv, status, &output).map_err(|e| {
            let fix = c
                .install
                .as_ref()
                .map(|i| format!("; to fix it: {i}"))
                .unwrap_or_default();
            LabError::Config(format!(
                "sender profile {}: preflight: {e}{fix}",
                profile_path.display()
            ))
        })?;
    }
    Ok(p)
}

/// The program's path: as given when it names one, else found on PATH or in the sbin
/// directories (Postfix's and Exim's tools live there, and root's PATH may lack them).
fn locate(program: &str, why: &str) -> Result<PathBuf, LabError> {
    if program.contains('/') {
        return match Path::new(program).is_file() {
            true => Ok(PathBuf::from(program)),
            false => Err(LabError::MissingTool {
                tool: program.to_string(),
                why: why.to_string(),
                install: "install it, or fix the path in the profile".into(),
            }),
        };
    }
    find_tool(
        program,
        why,
        &format!("install `{program}` (e.g. apt-get install {program})"),
    )
}

/// The variables that have a value before any world exists.
fn host_vars(p: &Profile) -> Vec<(&'static str, String)> {
    profile::VARIABLES
        .iter()
        .map(|v| {
            let value = match *v {
                "DANESIM_PROFILE_DIR" => p.dir().display().to_string(),
                "DANESIM_HOSTNAME" => crate::world::namespace::HOSTNAME.to_string(),
                "DANESIM_CLOCK_VARIABLES" => crate::world::clock::VARIABLES.join(" "),
                "DANESIM_RELAY_PORT" => "25".to_string(),
                _ => String::new(),
            };
            (*v, value)
        })
        .collect()
}

/// A preflight command on the host: its exit status (none when killed or timed out) and output.
fn run_on_host(argv: &[String], vars: &[(&str, String)], timeout: std::time::Duration) -> (Option<i32>, String) {
    use std::io::Read;
    let Ok(program) = locate(&argv[0], "a preflight check") else {
        return (None, format!("{} was not found", argv[0]));
    };
    let child = std::process::Command::new(program)
        .args(&argv[1..])
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (None, e.to_string()),
    };
    // Read in threads, so a chatty program never blocks on a full pipe.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_OUTPUT as u64).read_to_end(&mut kept);
            }
            kept
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(std::time::Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut output = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    output.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    (status, output)
}

impl CommandSender {
    /// Prepares the sender's work directory and runs the profile's lifecycle up to `start`.
    pub async fn start(name: &str, profile_path: &Path, workdir: &Path, lab: &Lab) -> Result<CommandSender, LabError> {
        use std::os::unix::fs::PermissionsExt;
        let profile = preflight(profile_path)?;
        // The run is judged in this process: the profile's deviations join the catalogue's.
        crate::outcome::deviation::declare(&profile.deviations);
        let dir = workdir.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Write {
            path: dir.clone(),
            source,
        })?;
        // Search-only for others (workdir.rs): MTAs drop to their own users and must reach
        // their files inside.
        for d in [workdir, dir.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).map_err(|source| LabError::Write {
                path: d.to_path_buf(),
                source,
            })?;
        }
        let mut sender = CommandSender {
            rendered: vec![None; profile.templates.len()],
            profile,
            name: name.to_string(),
            dir,
            clock: lab.clock.clone(),
            started: false,
            pending: None,
            syslog: None,
        };
        let vars = sender.vars(None, lab, "")?;
        if let Some(spec) = sender.profile.log.as_ref().filter(|l| l.syslog) {
            let file = PathBuf::from(profile::expand(&spec.file, &vars));
            sender.syslog = Some(crate::world::syslog::start(workdir, &file).await?);
        }
        let texts = sender.renderings(&vars);
        sender.write(texts)?;
        let setup = sender.profile.lifecycle.setup.clone();
        sender.lifecycle("setup", &setup, &vars).await?;
        sender.check(&vars).await?;
        let start = sender.profile.lifecycle.start.clone();
        sender.lifecycle("start", &start, &vars).await?;
        sender.started = true;
        Ok(sender)
    }

    /// The variables for one command; `s` is the scenario (none before the first), and the
    /// files they name (the message, the trust anchor) are written.
    fn vars(&self, s: Option<&Scenario>, lab: &Lab, message_id: &str) -> Result<Vec<(&'static str, String)>, LabError> {
        let message = self.dir.join("message.eml");
        let anchor = self.dir.join("anchor.key");
        let write = |path: &Path, bytes: &[u8]| {
            std::fs::write(path, bytes).map_err(|source| LabError::Write {
                path: path.to_path_buf(),
                source,
            })
        };
        write(&anchor, lab.anchor.as_bytes())?;
        if let Some(s) = s {
            write(&message, unix_message(s).as_bytes())?;
        }
        let Some(s) = s else {
            return Ok(self.base_vars(message_id));
        };
        let mut vars = self.base_vars(message_id);
        for (k, v) in vars.iter_mut() {
            let value = match *k {
                "DANESIM_SENDER" => s.message.from.clone(),
                "DANESIM_RECIPIENT" => s.message.to.clone(),
                "DANESIM_DOMAIN" => s.message.domain.trim_end_matches('.').to_string(),
                "DANESIM_WORLD_ADDRESSES" => s
                    .endpoints
                    .iter()
                    .map(|e| e.address.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                "DANESIM_SCENARIO" => s.id.clone(),
                "DANESIM_RELAY_HOST" => s
                    .relay
                    .as_ref()
                    .map(|r| r.host.trim_end_matches('.').to_string())
                    .unwrap_or_default(),
                "DANESIM_RELAY_PORT" => s.relay.as_ref().map_or(25, |r| r.port).to_string(),
                _ => continue,
            };
            *v = value;
        }
        Ok(vars)
    }

    /// The variables that hold for the whole run (the scenario's are empty).
    fn base_vars(&self, message_id: &str) -> Vec<(&'static str, String)> {
        let mut vars = host_vars(&self.profile);
        for (k, v) in vars.iter_mut() {
            let value = match *k {
                "DANESIM_RESOLVER" => RESOLVER.to_string(),
                "DANESIM_TRUST_ANCHOR_FILE" => self.dir.join("anchor.key").display().to_string(),
                "DANESIM_WORKDIR" => self.dir.display().to_string(),
                "DANESIM_MESSAGE_FILE" => self.dir.join("message.eml").display().to_string(),
                "DANESIM_MESSAGE_ID" => message_id.to_string(),
                _ => continue,
            };
            *v = value;
        }
        vars
    }

    /// What each template renders to with `vars`.
    fn renderings(&self, vars: &[(&str, String)]) -> Vec<String> {
        self.profile
            .templates
            .iter()
            .map(|t| profile::expand(&t.text, vars))
            .collect()
    }

    /// Writes the renderings that differ from the files on disk.
    fn write(&mut self, texts: Vec<String>) -> Result<(), LabError> {
        use std::os::unix::fs::PermissionsExt;
        for (i, (t, text)) in self.profile.templates.iter().zip(texts).enumerate() {
            if self.rendered[i].as_deref() == Some(text.as_str()) {
                continue;
            }
            let path = self.dir.join(&t.to);
            let err = |source| LabError::Write {
                path: path.clone(),
                source,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(err)?;
            }
            std::fs::write(&path, &text).map_err(err)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(t.mode)).map_err(err)?;
            self.rendered[i] = Some(text);
        }
        Ok(())
    }

    /// Renders the templates with the scenario's values; when a file changes, the sender is
    /// stopped first, checked and started again (a restart, not a reload: after a reload an
    /// old Postfix process may still route the next message the old way).
    async fn configure(&mut self, vars: &[(&str, String)]) -> Result<(), LabError> {
        let texts = self.renderings(vars);
        if texts
            .iter()
            .zip(&self.rendered)
            .all(|(t, r)| r.as_deref() == Some(t.as_str()))
        {
            return Ok(());
        }
        let (stop, start) = (
            self.profile.lifecycle.stop.clone(),
            self.profile.lifecycle.start.clone(),
        );
        if self.started {
            self.lifecycle("stop", &stop, vars).await?;
            self.started = false;
        }
        self.write(texts)?;
        self.check(vars).await?;
        self.lifecycle("start", &start, vars).await?;
        self.started = true;
        Ok(())
    }

    /// Runs the profile's `[[check]]`s: a config in which DANE would silently do nothing is
    /// refused before any verdict depends on it.
    async fn check(&self, vars: &[(&str, String)]) -> Result<(), LabError> {
        for c in &self.profile.checks {
            let argv: Vec<String> = c.command.iter().map(|a| profile::expand(a, vars)).collect();
            let (code, output) = self.exec(&argv, vars, false, &[]).await?;
            c.judge_run(&argv, Some(code), &output).map_err(|e| {
                LabError::Config(format!(
                    "sender {}: refusing this configuration (a [[check]] of {}): {e}",
                    self.name,
                    self.profile.path.display()
                ))
            })?;
        }
        Ok(())
    }

    /// Runs lifecycle commands in order; one that fails is an error with its output and the
    /// log's last lines.
    async fn lifecycle(&self, what: &str, commands: &[Vec<String>], vars: &[(&str, String)]) -> Result<(), LabError> {
        for argv in commands {
            let argv: Vec<String> = argv.iter().map(|a| profile::expand(a, vars)).collect();
            let (code, output) = self.exec(&argv, vars, false, &[]).await?;
            if code != 0 {
                let why = format!("the sender's `{what}` exited with status {code}");
                return Err(self.failed(&argv, &why, &output, vars));
            }
        }
        Ok(())
    }

    /// A command of the sender that failed: its words, its output's end and the log's.
    fn failed(&self, argv: &[String], why: &str, output: &str, vars: &[(&str, String)]) -> LabError {
        LabError::Command {
            command: argv.join(" "),
            detail: format!("{why}; its output:\n{}{}", tail(output), self.log_tail(vars)),
        }
    }

    /// The log's last lines, for an error message (empty without a log).
    fn log_tail(&self, vars: &[(&str, String)]) -> String {
        let Some(spec) = &self.profile.log else {
            return String::new();
        };
        let path = PathBuf::from(profile::expand(&spec.file, vars));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(5);
        format!("\nthe last lines of {}:\n{}", path.display(), lines[from..].join("\n"))
    }

    /// Runs one command of the profile inside the namespace, on the world clock, in the work
    /// directory; a crash or a hang is an error of the sender, never an outcome.
    async fn exec(
        &self,
        argv: &[String],
        vars: &[(&str, String)],
        message_on_stdin: bool,
        message: &[u8],
    ) -> Result<(i32, String), LabError> {
        let program = locate(
            &argv[0],
            &format!("a program of sender profile {}", self.profile.path.display()),
        )?;
        let mut cmd = std::process::Command::new(program);
        self.clock.apply(&mut cmd);
        let mut cmd = tokio::process::Command::from(cmd);
        let stdin = match message_on_stdin {
            true => profile::Stdin::Message,
            false => profile::Stdin::Null,
        };
        cmd.args(&argv[1..])
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(&self.dir)
            .stdin(match stdin {
                profile::Stdin::Null => Stdio::null(),
                profile::Stdin::Message => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let command = argv.join(" ");
        match run(cmd, stdin, message, self.profile.timeout).await {
            Ok(Ran::Exited(code, output)) => Ok((code, output)),
            Ok(Ran::Signalled(signal, output)) => Err(LabError::Command {
                command,
                detail: format!(
                    "the sender was killed by signal {signal}{}: a crash is an error of the sender, never a \
                     deferral; its output:\n{}",
                    signal_name(signal),
                    tail(&output)
                ),
            }),
            Ok(Ran::TimedOut(output)) => Err(LabError::Command {
                command,
                detail: format!(
                    "the sender did not finish within {} and was killed (raise `timeout` in the profile if it \
                     is only slow); its output so far:\n{}",
                    crate::duration::format(self.profile.timeout),
                    tail(&output)
                ),
            }),
            Err(e) => Err(LabError::Command {
                command,
                detail: e.to_string(),
            }),
        }
    }

    /// Waits for the outcome of message `id` (or of the message the log will name) in the
    /// lines the log gains after `offsets`.
    async fn wait(
        &mut self,
        vars: &[(&str, String)],
        id: Option<String>,
        offsets: &[(PathBuf, u64)],
        started: std::time::Instant,
    ) -> Result<Attempt, LabError> {
        let spec = self.profile.log.clone().expect("log mode");
        let message = rules::regex(&profile::expand_regex(&spec.message, vars))
            .map_err(|e| LabError::Config(format!("sender {}: `log.message`: {e}", self.name)))?;
        let compiled =
            rules::compile(&spec.rules, vars).map_err(|e| LabError::Config(format!("sender {}: {e}", self.name)))?;
        let (log_path, offset) = offsets[0].clone();
        loop {
            let lines = spec.lines(&log_since(&log_path, offset));
            let id = id.clone().or_else(|| spec.message_id(&message, &lines));
            if let Some(id) = &id {
                let extra: Vec<(String, Vec<super::log_source::Line>)> = offsets[1..]
                    .iter()
                    .map(|(p, o)| {
                        let name = p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        (name, spec.lines(&log_since(p, *o)))
                    })
                    .collect();
                if let Some(a) = spec.attempt(&compiled, &lines, id, &extra) {
                    self.pending = (a.terminal == super::Terminal::Deferred).then(|| id.clone());
                    return Ok(a);
                }
            }
            let what = match &id {
                Some(id) => format!("no outcome line for message {id}"),
                None => "no line naming the message (log.message)".to_string(),
            };
            if spec.foreground {
                return Err(LabError::Command {
                    command: self.name.clone(),
                    detail: format!(
                        "the submission returned, but {} has {what}{}",
                        log_path.display(),
                        self.log_tail(vars)
                    ),
                });
            }
            if started.elapsed() > self.profile.timeout {
                return Err(LabError::Timeout {
                    what: format!("{} ({what})", self.name),
                    seconds: self.profile.timeout.as_secs(),
                    log: log_path.display().to_string(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The log file and the `also` files with their lengths now: where the attempt's lines start.
    fn offsets(&self, vars: &[(&str, String)]) -> Vec<(PathBuf, u64)> {
        let Some(spec) = &self.profile.log else {
            return Vec::new();
        };
        std::iter::once(&spec.file)
            .chain(spec.also.iter())
            .map(|f| {
                let p = PathBuf::from(profile::expand(f, vars));
                let len = log_len(&p);
                (p, len)
            })
            .collect()
    }

    /// A command's output and exit status judged by the profile's rules (no `[log]`), and,
    /// with a `[queue]`, by whether the message is still queued: then it was not delivered.
    async fn judge_output(
        &self,
        vars: &[(&str, String)],
        program: &str,
        code: i32,
        output: &str,
    ) -> Result<Attempt, LabError> {
        let compiled = rules::compile(&self.profile.rules, vars)
            .map_err(|e| LabError::Config(format!("sender {}: {e}", self.name)))?;
        let mut a = rules::attempt(&compiled, &self.profile.exit, code, output, program);
        if let Some(q) = &self.profile.queue {
            let argv: Vec<String> = q.command.iter().map(|x| profile::expand(x, vars)).collect();
            let (status, listing) = self.exec(&argv, vars, false, &[]).await?;
            if status != 0 {
                let why = format!("the sender's queue listing exited with status {status}");
                return Err(self.failed(&argv, &why, &listing, vars));
            }
            let queued = rules::regex(&profile::expand_regex(&q.queued, vars))
                .map_err(|e| LabError::Config(format!("sender {}: `queue.queued`: {e}", self.name)))?;
            if let Some(line) = listing.lines().find(|l| queued.is_match(l)) {
                // Queued is not delivered, whatever the exit status said.
                a.log.push(format!("{}: {}", argv.join(" "), line.trim()));
                if a.terminal != super::Terminal::Deferred {
                    a.text = format!("still queued ({}), although {}", line.trim(), a.text);
                    a.terminal = super::Terminal::Deferred;
                    a.dsn = None;
                    a.relay = None;
                }
            }
        }
        Ok(a)
    }
}

/// The message with Unix line endings: a local program reads a message the way sendmail(1)
/// does and puts CRLF on the wire itself (RFC 5321 §2.3.8).
fn unix_message(s: &Scenario) -> String {
    String::from_utf8_lossy(&s.message.body).replace("\r\n", "\n")
}

#[async_trait]
impl Adapter for CommandSender {
    async fn attempt(&mut self, s: &Scenario, lab: &Lab) -> Result<Attempt, LabError> {
        let vars = self.vars(Some(s), lab, "")?;
        self.configure(&vars).await?;
        let offsets = self.offsets(&vars);
        let started = std::time::Instant::now();
        if let Some(addr) = self.profile.submit {
            let message = String::from_utf8_lossy(&s.message.body).into_owned();
            super::submit::smtp(
                addr,
                crate::world::namespace::HOSTNAME,
                &s.message.from,
                &s.message.to,
                message.as_bytes(),
                self.profile.timeout,
            )
            .await
            .map_err(|e| LabError::Command {
                command: format!("SMTP submission to {addr}"),
                detail: format!("the sender did not accept the message: {e}{}", self.log_tail(&vars)),
            })?;
            return self.wait(&vars, None, &offsets, started).await;
        }
        let argv: Vec<String> = self.profile.command.iter().map(|a| profile::expand(a, &vars)).collect();
        let stdin = self.profile.stdin == profile::Stdin::Message;
        let (code, output) = self.exec(&argv, &vars, stdin, unix_message(s).as_bytes()).await?;
        if self.profile.log.is_none() {
            let mut a = self.judge_output(&vars, &argv[0], code, &output).await?;
            if self.profile.probe {
                // It sends no mail, whatever its exit status: nothing was delivered.
                a.terminal = super::Terminal::Deferred;
                a.dsn = None;
                a.relay = None;
                a.text = format!("a probe: it authenticates peers and sends no mail ({})", a.text);
            }
            return Ok(a);
        }
        if code != 0 {
            let why = format!("the sender did not accept the message (exit status {code})");
            return Err(self.failed(&argv, &why, &output, &vars));
        }
        self.wait(&vars, None, &offsets, started).await
    }

    async fn retry(&mut self, s: &Scenario, lab: &Lab) -> Result<Attempt, LabError> {
        let retry = self.profile.lifecycle.retry.clone();
        if retry.is_empty() {
            return Err(LabError::Config(format!(
                "sender {}: its profile has no `[lifecycle] retry`, so a timeline cannot retry a deferred message; \
                 give it the command that retries the queue now (Postfix: postqueue -f)",
                self.name
            )));
        }
        let id = self.pending.clone().unwrap_or_default();
        let vars = self.vars(Some(s), lab, &id)?;
        self.configure(&vars).await?;
        if self.profile.log.is_none() {
            // No queue danesim can read: the retry command's own output and status are the attempt.
            let mut last = (0, String::new(), String::new());
            for argv in &retry {
                let argv: Vec<String> = argv.iter().map(|a| profile::expand(a, &vars)).collect();
                let (code, output) = self.exec(&argv, &vars, false, &[]).await?;
                last = (code, output, argv[0].clone());
            }
            return self.judge_output(&vars, &last.2, last.0, &last.1).await;
        }
        if id.is_empty() {
            return Err(LabError::Config(format!(
                "sender {}: no deferred message to retry",
                self.name
            )));
        }
        let offsets = self.offsets(&vars);
        let started = std::time::Instant::now();
        self.lifecycle("retry", &retry, &vars).await?;
        self.wait(&vars, Some(id), &offsets, started).await
    }

    fn is_probe(&self) -> bool {
        self.profile.probe
    }

    async fn settle(&mut self, attempt: &Attempt) -> Result<(), LabError> {
        let settle = self.profile.lifecycle.settle.clone();
        let mut vars = self.base_vars(self.pending.as_deref().unwrap_or(""));
        let outcome = match attempt.terminal {
            super::Terminal::Sent => "sent",
            super::Terminal::Deferred => "deferred",
            super::Terminal::Bounced => "bounced",
        };
        for (k, v) in vars.iter_mut() {
            if *k == "DANESIM_OUTCOME" {
                *v = outcome.to_string();
            }
        }
        self.lifecycle("settle", &settle, &vars).await
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        self.pending = None;
        let reset = self.profile.lifecycle.reset.clone();
        if reset.is_empty() {
            return Ok(());
        }
        let vars = self.base_vars("");
        self.lifecycle("reset", &reset, &vars).await
    }

    async fn shutdown(&mut self) {
        if self.started {
            let stop = self.profile.lifecycle.stop.clone();
            let vars = self.base_vars("");
            let _ = self.lifecycle("stop", &stop, &vars).await;
            self.started = false;
        }
        self.syslog = None;
    }
}
