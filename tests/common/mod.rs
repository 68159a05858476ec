//! What the command-line tests share: the repository root, running the built binary, and a
//! self-cleaning temporary directory. Each test crate uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `danesim ARGS` from the repository root: exit code, stdout, stderr.
pub fn danesim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the danesim binary runs");
    (
        out.status.code().expect("danesim exits normally, not by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary directory removed when dropped (no extra crate needed).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).expect("temp dir can be created");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One cleartext SMTP session into a running world, as a client that ignores DANE would
/// open it: EHLO, then every body in `bodies` as its own mail transaction (RFC 5321 §3.3),
/// each of which the endpoint must accept.
pub async fn cleartext_session(world: &danesim::world::World, from: &str, to: &str, address: &str, bodies: &[&[u8]]) {
    use danesim::sender::reference::smtp_client::SmtpClient;
    use std::time::Duration;
    // An address alone is port 25; `192.0.2.10:2525` dials an endpoint on another port.
    let addr: std::net::SocketAddr = address
        .parse()
        .or_else(|_| format!("{address}:25").parse())
        .expect("a socket address");
    let tcp = world
        .dialer
        .dial(addr, Duration::from_secs(5))
        .await
        .expect("the endpoint answers");
    let (mut c, greeting) = SmtpClient::start(tcp, Duration::from_secs(5)).await.expect("greeting");
    assert_eq!(greeting.code, 220);
    assert_eq!(c.ehlo("client.test").await.expect("EHLO").reply.code, 250);
    for body in bodies {
        assert_eq!(c.command(&format!("MAIL FROM:<{from}>")).await.expect("MAIL").code, 250);
        assert_eq!(c.command(&format!("RCPT TO:<{to}>")).await.expect("RCPT").code, 250);
        assert_eq!(
            c.data(body).await.expect("DATA").code,
            250,
            "the endpoint accepts the message"
        );
    }
    c.quit().await.expect("QUIT");
}

/// What a sender reports when it claims `result` via `host` at 192.0.2.10.
pub fn claimed(result: danesim::vocab::ResultCode, host: &str) -> danesim::sender::SenderReport {
    use danesim::sender::{HostReport, SenderReport};
    use danesim::vocab::HostCode;
    SenderReport {
        result,
        via: result.delivered().then(|| host.to_string()),
        status: "as the test says".into(),
        hosts: vec![HostReport {
            host: host.into(),
            preference: 10,
            code: if result.delivered() {
                HostCode::Opp
            } else {
                HostCode::TempFail
            },
            address: Some("192.0.2.10".into()),
            reason: String::new(),
            status: None,
            failure: None,
        }],
        notes: Vec::new(),
        reports_notes: false,
        trace: Vec::new(),
    }
}

/// The insta settings of the scenario snapshots: `tests/snapshots/<id>@<sender>.snap`,
/// named explicitly, with the scenario file as input.
pub fn snapshot_settings(file: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(file);
    settings
}

/// The outcomes of `danesim run --format json`, by scenario id.
pub fn outcomes_by_id(stdout: &[u8]) -> Result<std::collections::BTreeMap<String, serde_json::Value>, String> {
    let doc: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| format!("bad JSON from danesim: {e}"))?;
    let outcomes = doc["outcomes"].as_array().ok_or("no outcomes in the JSON")?;
    Ok(outcomes
        .iter()
        .filter_map(|o| Some((o["scenario"].as_str()?.to_string(), o.clone())))
        .collect())
}
