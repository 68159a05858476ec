//! The command adapter: any program, run per scenario inside the namespace from a sender
//! profile. It has no log danesim understands, so it is judged from the receiving side
//! (the witness) and its exit code: 0 claims a delivery, anything else a failure.

use super::profile::{self, Profile};
use super::{Adapter, Attempt, Terminal, TlsClaim};
use crate::scenario::Scenario;
use crate::world::LabError;
use crate::world::clock::WorldClock;
use crate::world::lab::Lab;
use crate::world::namespace::find_tool;
use crate::world::unbound::RESOLVER;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Output lines kept in the trace: enough to read what happened, bounded for the snapshot.
const MAX_LINES: usize = 200;

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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.output();
        let (terminal, output, text) = match tokio::time::timeout(self.profile.timeout, child).await {
            Ok(Ok(out)) => {
                let code = out.status.code().unwrap_or(-1);
                let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
                all.push_str(&String::from_utf8_lossy(&out.stderr));
                (
                    Terminal::Exited(code),
                    all,
                    format!("{} exited with status {code}", argv[0]),
                )
            }
            Ok(Err(e)) => {
                return Err(LabError::Command {
                    command: argv.join(" "),
                    detail: e.to_string(),
                });
            }
            // kill_on_drop stops the program when the timeout drops the future.
            Err(_) => (
                Terminal::Exited(-1),
                String::new(),
                format!("{} killed after {} s", argv[0], self.profile.timeout.as_secs()),
            ),
        };
        let claims_dane = self
            .profile
            .verified_marker
            .as_ref()
            .is_some_and(|m| output.contains(m.as_str()));
        let mut tls = BTreeMap::new();
        if claims_dane {
            for e in &s.endpoints {
                tls.insert(e.address, TlsClaim::Verified);
            }
        }
        let mut log: Vec<String> = vec![text.clone()];
        log.extend(output.lines().take(MAX_LINES).map(str::to_string));
        Ok(Attempt {
            terminal,
            dsn: None,
            text,
            relay: None,
            tls,
            reasons: BTreeMap::new(),
            log,
        })
    }

    async fn reset(&mut self) -> Result<(), LabError> {
        Ok(())
    }

    async fn shutdown(&mut self) {}
}
