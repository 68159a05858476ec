//! The world clock for the programs of namespace mode: Postfix, Exim, command senders and
//! unbound see the scenario's clock, not the host's (DESIGN.md "One world clock").
//!
//! Certificates are dated from the scenario clock and RRSIGs carry a fixed window
//! (2025-01-01 .. 2035-01-01) or one relative to the clock (`[[zone.signatures]]`); a real
//! MTA judges the first and unbound the second by the time it reads, and unbound expires
//! its cache by it. So every such process runs with libfaketime preloaded (Debian
//! `faketime`, as Deckard runs resolvers), reading the time from one file that the harness
//! rewrites for each world and moves on before each attempt of a timeline
//! ([`WorldClock::advance`]):
//!
//! - The file holds a "start at" spec, `@YYYY-MM-DD hh:mm:ss` (UTC): a process reads the
//!   world clock plus the real seconds since it started or since the spec last changed,
//!   whichever is later (libfaketime restarts the count when it reads a new spec, to the
//!   second), so the host's date never enters, and event loops and timeouts still see time
//!   pass. Two processes of one world may differ by those seconds: nothing here is dated
//!   that finely (certificates live days).
//! - `FAKETIME_NO_CACHE=1`: libfaketime rereads the file at every clock read, so a running
//!   process sees a new world's clock at once (its default caches it for 10 s). The file is
//!   replaced by a rename, so no reader ever sees half of it.
//! - `FAKETIME_DONT_FAKE_MONOTONIC=1`: only the time of day moves; monotonic timers never
//!   jump when the world changes.
//! - `TZ=UTC0`: libfaketime reads the spec in local time; the harness writes UTC.
//! - Stat times stay faked (libfaketime's default): a file the kernel stamps with the real
//!   time reads as world time, so Postfix's queue manager does not take a new queue file
//!   for one from the future. Times a process sets with `utime()` read back off by the
//!   distance between the host and the world; Postfix sets them only on deferred mail,
//!   which the harness retries with `postqueue -f`, a scan that ignores them.
//! - Every inherited `FAKETIME*` variable is removed first (`FAKETIME` would win over the
//!   file), and `LD_PRELOAD` is replaced, so a danesim that itself runs under `faketime`
//!   still gives its children the world clock.
//!
//! The dynamic loader ignores `LD_PRELOAD` for set-uid and set-gid programs (Postfix's
//! `postdrop`, `postqueue`): they verify nothing. Postfix's `master` clears its children's
//! environment, so the adapter lists [`VARIABLES`] in `import_environment`; Exim clears its
//! own, so its config lists them in `keep_environment`.

use super::error::LabError;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::macros::format_description;

/// How to get the library when it is missing.
pub const INSTALL: &str = "apt-get install faketime";
/// The library's file name (the single-threaded build: every faked program here reads its
/// clock from one thread).
const LIBRARY: &str = "libfaketime.so.1";
/// Where Debian puts it, below a multiarch directory (`/usr/lib/x86_64-linux-gnu/faketime/`).
const DEBIAN_PACKAGE: &str = "libfaketime";

/// The variables a faked process needs (also what Postfix and Exim must keep).
pub const VARIABLES: [&str; 5] = [
    "LD_PRELOAD",
    "FAKETIME_TIMESTAMP_FILE",
    "FAKETIME_NO_CACHE",
    "FAKETIME_DONT_FAKE_MONOTONIC",
    "TZ",
];

/// Names a libfaketime to use instead of searching (e.g. one built from source).
pub const LIBRARY_ENV: &str = "DANESIM_LIBFAKETIME";

/// Finds libfaketime: `DANESIM_LIBFAKETIME` if set, else the path the Debian package
/// installed (`dpkg-query -L`), else the usual places (multiarch, /usr/local). Missing: a
/// clear "install faketime".
pub fn library() -> Result<PathBuf, LabError> {
    library_from(std::env::var_os(LIBRARY_ENV))
}

fn missing(tool: String) -> LabError {
    LabError::MissingTool {
        tool,
        why: "libfaketime gives Postfix, Exim, command senders and unbound the scenario's clock, so no outcome depends on the host's date".into(),
        install: INSTALL.into(),
    }
}

fn library_from(chosen: Option<OsString>) -> Result<PathBuf, LabError> {
    if let Some(p) = chosen {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(missing(format!("{} (named by {LIBRARY_ENV})", p.display())))
        };
    }
    let from_dpkg = Command::new("dpkg-query")
        .args(["-L", DEBIAN_PACKAGE])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let listed = from_dpkg
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.file_name().is_some_and(|n| n == LIBRARY));
    let usual = ["/usr/lib", "/usr/local/lib", "/usr/lib64"]
        .into_iter()
        .flat_map(|base| {
            let multiarch = std::fs::read_dir(base)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("faketime").join(LIBRARY));
            std::iter::once(Path::new(base).join("faketime").join(LIBRARY)).chain(multiarch)
        });
    listed
        .chain(usual)
        .find(|p| p.is_file())
        .ok_or_else(|| missing(LIBRARY.into()))
}

/// The spec libfaketime reads: "start at" the world clock, in UTC.
pub fn spec(at: OffsetDateTime) -> Result<String, LabError> {
    let utc = at.to_offset(time::UtcOffset::UTC);
    if !(1970..=9999).contains(&utc.year()) {
        return Err(LabError::Config(format!(
            "the world clock {at} is outside the years 1970..9999 that libfaketime can give the real senders"
        )));
    }
    let text = utc
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"))
        .map_err(|e| LabError::Config(format!("cannot write the world clock {at}: {e}")))?;
    Ok(format!("@{text}\n"))
}

/// The clock file of one lab and the library that reads it.
#[derive(Debug, Clone)]
pub struct WorldClock {
    library: PathBuf,
    file: PathBuf,
    /// The spec last written, and when: what the faked processes read now is that plus the
    /// real time since.
    written: Arc<Mutex<Option<(OffsetDateTime, Instant)>>>,
}

impl WorldClock {
    /// Finds the library and writes `at` into `dir/world-clock`. `dir` is made searchable
    /// by all: Postfix's and Exim's processes read the file after dropping root.
    pub fn create(dir: &Path, at: OffsetDateTime) -> Result<WorldClock, LabError> {
        let library = library()?;
        let write_err = |source| LabError::Write {
            path: dir.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(dir).map_err(write_err)?.permissions().mode();
        if mode & 0o011 != 0o011 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o011)).map_err(write_err)?;
        }
        let clock = WorldClock {
            library,
            file: dir.join("world-clock"),
            written: Arc::default(),
        };
        clock.set(at)?;
        Ok(clock)
    }

    /// Sets the time every faked process reads from now on.
    pub fn set(&self, at: OffsetDateTime) -> Result<(), LabError> {
        let text = spec(at)?;
        let next = self.file.with_extension("next");
        let write = |path: &Path, r: std::io::Result<()>| {
            r.map_err(|source| LabError::Write {
                path: path.to_path_buf(),
                source,
            })
        };
        write(&next, std::fs::write(&next, text))?;
        write(
            &next,
            std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o644)),
        )?;
        write(&self.file, std::fs::rename(&next, &self.file))?;
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, Instant::now()));
        Ok(())
    }

    /// Moves the clock on by `by` from what the processes read now (the spec plus the real
    /// seconds since, rounded up): a cache entry made at any moment before reads at least
    /// `by` older afterwards, whatever the real seconds were (a timeline's retry or
    /// `expire`, RFC 4035 §5.3.3). Never backwards.
    pub fn advance(&self, by: Duration) -> Result<(), LabError> {
        if by.is_zero() {
            return Ok(());
        }
        let Some((spec, since)) = *self.written.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Err(LabError::Config("the world clock was never set".into()));
        };
        let real = since.elapsed();
        let whole = Duration::from_secs(real.as_secs() + u64::from(real.subsec_nanos() > 0));
        let now = spec + whole + by;
        self.set(now)
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The environment of a process on the world clock (names as in [`VARIABLES`]).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", self.library.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("TZ", "UTC0".into()),
        ]
    }

    /// Puts `cmd` on the world clock: no inherited `FAKETIME*` setting, then [`Self::env`].
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        // This process's own (set when danesim itself runs under `faketime`) and any set on `cmd`.
        let names: Vec<OsString> = std::env::vars_os()
            .map(|(k, _)| k)
            .chain(cmd.get_envs().map(|(k, _)| k.to_os_string()))
            .filter(|k| k.to_string_lossy().starts_with("FAKETIME"))
            .collect();
        for name in names {
            cmd.env_remove(name);
        }
        cmd.envs(self.env())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_spec_is_start_at_in_utc() {
        assert_eq!(
            spec(datetime!(2026-06-01 00:00:00 UTC)).unwrap(),
            "@2026-06-01 00:00:00\n"
        );
        assert_eq!(
            spec(datetime!(2026-06-01 02:30:05 +02:00)).unwrap(),
            "@2026-06-01 00:30:05\n"
        );
        assert!(spec(datetime!(1969-12-31 23:59:59 UTC)).is_err());
    }

    #[test]
    fn a_missing_library_says_how_to_install_it() {
        let e = library_from(Some("/nonexistent/libfaketime.so.1".into())).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, LabError::MissingTool { .. }), "{text}");
        assert!(text.contains("apt-get install faketime"), "{text}");
        assert!(text.contains("DANESIM_LIBFAKETIME"), "{text}");
    }

    #[test]
    fn inherited_faketime_settings_are_removed_and_ours_set() {
        let clock = WorldClock {
            library: PathBuf::from("/lib/libfaketime.so.1"),
            file: PathBuf::from("/w/world-clock"),
            written: Arc::default(),
        };
        let mut cmd = Command::new("true");
        cmd.env("FAKETIME", "@2031-01-01 00:00:00").env("FAKETIME_SHARED", "x");
        clock.apply(&mut cmd);
        let env: Vec<(String, Option<String>)> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into(), v.map(|v| v.to_string_lossy().into())))
            .collect();
        assert!(env.contains(&("FAKETIME".into(), None)), "{env:?}");
        assert!(env.contains(&("FAKETIME_SHARED".into(), None)), "{env:?}");
        assert!(env.contains(&("LD_PRELOAD".into(), Some("/lib/libfaketime.so.1".into()))));
        assert!(env.contains(&("FAKETIME_TIMESTAMP_FILE".into(), Some("/w/world-clock".into()))));
        let names: Vec<&str> = clock.env().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, VARIABLES);
    }

    /// A real probe: a running process reads the time written, and a rewrite at once.
    #[test]
    fn a_running_process_reads_each_world_clock() {
        use std::io::{BufRead, BufReader, Write};
        if library().is_err() && std::env::var_os("CI").is_none() {
            crate::errln!("note: libfaketime is not installed ({INSTALL}); probe not run");
            return;
        }
        let dir = std::env::temp_dir().join(format!("danesim-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let clock = WorldClock::create(&dir, datetime!(2031-03-01 12:30:00 UTC)).unwrap();
        // perl reads time(2) in the same process, before and after the rewrite. (bash's
        // printf does not go through libc's interposable time functions.)
        let mut child = std::process::Command::new("perl");
        child
            .args([
                "-e",
                r#"$| = 1; for (1, 2) { my @t = gmtime(time); printf "%04d-%02d-%02d %02d\n", $t[5] + 1900, $t[4] + 1, $t[3], $t[2]; <STDIN> if $_ == 1 }"#,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        clock.apply(&mut child);
        let mut child = child.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        clock.set(datetime!(2024-02-29 08:30:00 UTC)).unwrap();
        writeln!(child.stdin.take().unwrap()).unwrap();
        let mut second = String::new();
        out.read_line(&mut second).unwrap();
        child.wait().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((first.trim(), second.trim()), ("2031-03-01 12", "2024-02-29 08"));
    }
}
