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

pub struct CommandSender {
    profile: Profile,
    dir: PathBuf,
    /// The program runs on the world clock (world::clock), as an MTA does.
    clock: WorldClock,
}

/// Loads the profile and checks that its program is installed.
pub fn preflight(profile_path: &Path) -> Result<Profile, LabError> {
    let p = profile::load(profile_path).map_err(LabError::Config)?;
    let program = &p.command[0];
    if !program.contains('/') {
        find_tool(
            program,
            &format!("the program of sender profile {}", profile_path.display()),
            &format!("install `{program}` (e.g. apt-get install {program})"),
        )?;
    } else if !Path::new(program).is_file() {
        return Err(LabError::MissingTool {
            tool: program.clone(),
            why: format!("the program of sender profile {}", profile_path.display()),
            install: "install it, or fix the path in the profile".into(),
        });
    }
    Ok(p)
}

impl CommandSender {
    pub fn start(profile_path: &Path, workdir: &Path, clock: &WorldClock) -> Result<CommandSender, LabError> {
        let profile = preflight(profile_path)?;
        let dir = workdir.join("command");
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(CommandSender {
            profile,
            dir,
            clock: clock.clone(),
        })
    }
}

#[async_trait]
impl Adapter for CommandSender {
    async fn attempt(&mut self, s: &Scenario, lab: &Lab) -> Result<Attempt, LabError> {
        let message = self.dir.join("message.eml");
        let anchor = self.dir.join("anchor.key");
        // Unix line endings: a local program reads a message file the way sendmail(1) does
        // and puts CRLF on the wire itself (RFC 5321 §2.3.8).
        let unix = String::from_utf8_lossy(&s.message.body).replace("\r\n", "\n");
        for (path, bytes) in [(&message, unix.as_bytes()), (&anchor, lab.anchor.as_bytes())] {
            std::fs::write(path, bytes).map_err(|source| LabError::Write {
                path: path.clone(),
                source,
            })?;
        }
        let vars: Vec<(&str, String)> = vec![
            ("DANESIM_RESOLVER", RESOLVER.to_string()),
            ("DANESIM_TRUST_ANCHOR_FILE", anchor.display().to_string()),
            ("DANESIM_SENDER", s.message.from.clone()),
            ("DANESIM_RECIPIENT", s.message.to.clone()),
            ("DANESIM_DOMAIN", s.message.domain.trim_end_matches('.').to_string()),
            ("DANESIM_MESSAGE_FILE", message.display().to_string()),
            (
                "DANESIM_WORLD_ADDRESSES",
                s.endpoints
                    .iter()
                    .map(|e| e.address.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("DANESIM_SCENARIO", s.id.clone()),
            (
                "DANESIM_RELAY_HOST",
                s.relay
                    .as_ref()
                    .map(|r| r.host.trim_end_matches('.').to_string())
                    .unwrap_or_default(),
            ),
            (
                "DANESIM_RELAY_PORT",
                s.relay.as_ref().map_or(25, |r| r.port).to_string(),
            ),
        ];
        let argv: Vec<String> = self.profile.command.iter().map(|a| profile::expand(a, &vars)).collect();
        let mut cmd = std::process::Command::new(&argv[0]);
        self.clock.apply(&mut cmd);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.args(&argv[1..])
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(&self.dir)
            .stdin(match self.profile.stdin {
                profile::Stdin::Null => Stdio::null(),
                profile::Stdin::Message => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let command = argv.join(" ");
        let run = run(cmd, self.profile.stdin, unix.as_bytes(), self.profile.timeout).await;
        let (code, output) = match run {
            Ok(Ran::Exited(code, output)) => (code, output),
            Ok(Ran::Signalled(signal, output)) => {
                return Err(LabError::Command {
                    command,
                    detail: format!(
                        "the sender was killed by signal {signal}{}: a crash is an error of the sender, never a \
                         deferral; its output:\n{}",
                        signal_name(signal),
                        tail(&output)
                    ),
                });
            }
            Ok(Ran::TimedOut(output)) => {
                return Err(LabError::Command {
                    command,
                    detail: format!(
                        "the sender did not finish within {} and was killed (raise `timeout` in the profile if it \
                         is only slow); its output so far:\n{}",
                        crate::duration::format(self.profile.timeout),
                        tail(&output)
                    ),
                });
            }
            Err(e) => {
                return Err(LabError::Command {
                    command,
                    detail: e.to_string(),
                });
            }
        };
        Ok(rules::attempt(
            &self.profile.rules,
            &self.profile.exit,
            code,
            &output,
            &argv[0],
        ))
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        Ok(())
    }

    async fn shutdown(&mut self) {}
}
