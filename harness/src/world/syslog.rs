//! A syslog socket at `/dev/log` inside the namespace, for a sender that logs only through
//! syslog(3) (a profile's `[log] syslog = true`). glibc's syslog(3) and logger(1) write to
//! the fixed path `/dev/log`, so the namespace gets a `/dev` of its own: a tmpfs whose
//! entries are links to the host's `/dev` (bind-mounted into the work directory first),
//! plus the socket. Nothing is created in the host's `/dev`, and all of it goes with the
//! namespace's mounts.
//!
//! Each datagram is one message (RFC 3164 §4.1: `<PRI>` then the timestamp, tag and text);
//! it is written as one line, without its `<PRI>`, to the profile's log file. Hand-written:
//! the server side of syslog over a Unix socket is a read loop, and no crate is needed for it.

use super::error::LabError;
use super::namespace::{find_tool, inside};
use super::process::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::io::AsyncWriteExt;

/// The path every syslog(3) client writes to.
pub const DEV_LOG: &str = "/dev/log";
/// Longest message kept (RFC 5426 §3.2 asks receivers to take 2048 octets; MTAs stay below).
const MAX_MESSAGE: usize = 64 * 1024;
/// What the log file may grow to; past it messages are dropped and one line says so.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// The running socket; dropping it stops the reader.
pub struct Syslog {
    task: tokio::task::JoinHandle<()>,
    pub file: PathBuf,
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Gives the namespace its own `/dev` with a `/dev/log` socket, and starts writing what it
/// receives to `file`. Only inside the namespace danesim made.
pub async fn start(workdir: &Path, file: &Path) -> Result<Syslog, LabError> {
    use std::os::unix::fs::PermissionsExt;
    if !inside() {
        return Err(LabError::Config(
            "refusing to replace /dev outside a namespace danesim created".into(),
        ));
    }
    let mount = find_tool(
        "mount",
        "it gives the namespace its own /dev/log",
        "apt-get install mount",
    )?;
    let host_dev = workdir.join("host-dev");
    std::fs::create_dir_all(&host_dev).map_err(|source| LabError::Write {
        path: host_dev.clone(),
        source,
    })?;
    run(Command::new(&mount).arg("--rbind").arg("/dev").arg(&host_dev))?;
    run(Command::new(&mount).args(["-t", "tmpfs", "-o", "mode=0755,size=1m", "danesim-dev", "/dev"]))?;
    let entries = std::fs::read_dir(&host_dev).map_err(|source| LabError::Write {
        path: host_dev.clone(),
        source,
    })?;
    for e in entries.flatten() {
        let name = e.file_name();
        if name == "log" {
            continue;
        }
        let link = Path::new("/dev").join(&name);
        std::os::unix::fs::symlink(e.path(), &link).map_err(|source| LabError::Write { path: link, source })?;
    }
    let socket = tokio::net::UnixDatagram::bind(DEV_LOG).map_err(|source| LabError::Write {
        path: DEV_LOG.into(),
        source,
    })?;
    // MTAs log after dropping root.
    std::fs::set_permissions(DEV_LOG, std::fs::Permissions::from_mode(0o666)).map_err(|source| LabError::Write {
        path: DEV_LOG.into(),
        source,
    })?;
    let out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .await
        .map_err(|source| LabError::Write {
            path: file.to_path_buf(),
            source,
        })?;
    let task = tokio::spawn(read_loop(socket, out));
    Ok(Syslog {
        task,
        file: file.to_path_buf(),
    })
}

async fn read_loop(socket: tokio::net::UnixDatagram, mut out: tokio::fs::File) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut written: u64 = 0;
    let mut full = false;
    while let Ok(n) = socket.recv(&mut buf).await {
        let line = message_line(&buf[..n]);
        if written + line.len() as u64 > MAX_FILE {
            if !full {
                full = true;
                let _ = out
                    .write_all(b"danesim: the syslog file is full; later messages are dropped\n")
                    .await;
            }
            continue;
        }
        written += line.len() as u64;
        if out.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// One datagram as one line: without `<PRI>`, line breaks inside made spaces, a newline at
/// the end.
fn message_line(datagram: &[u8]) -> Vec<u8> {
    let mut m = datagram;
    if m.first() == Some(&b'<')
        && let Some(end) = m.iter().take(5).position(|b| *b == b'>')
        && m[1..end].iter().all(u8::is_ascii_digit)
    {
        m = &m[end + 1..];
    }
    while let Some((last, rest)) = m.split_last() {
        if *last == b'\n' || *last == b'\0' {
            m = rest;
        } else {
            break;
        }
    }
    let mut line: Vec<u8> = m
        .iter()
        .map(|b| if *b == b'\n' || *b == b'\r' { b' ' } else { *b })
        .collect();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_is_one_line_without_its_priority() {
        assert_eq!(
            message_line(b"<22>Dec  4 12:00:00 mta[7]: delivered\n"),
            b"Dec  4 12:00:00 mta[7]: delivered\n"
        );
        assert_eq!(message_line(b"two\nlines\0"), b"two lines\n");
        assert_eq!(message_line(b"<x>not a priority"), b"<x>not a priority\n");
        assert_eq!(message_line(b""), b"\n");
    }

    /// Outside the namespace danesim made, /dev is never touched.
    #[tokio::test]
    async fn refused_outside_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = start(dir.path(), &dir.path().join("syslog")).await else {
            panic!("started outside the namespace");
        };
        assert!(e.to_string().contains("outside a namespace danesim created"), "{e}");
        assert!(!dir.path().join("host-dev").exists());
    }
}
