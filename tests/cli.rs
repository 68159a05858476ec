//! The command line as a user meets it: exit codes, the report lines, and errors that
//! point at file:line:col.

use std::path::{Path, PathBuf};
use std::process::Command;
mod common;

use common::{TempDir, danesim, root};

#[test]
fn the_seed_catalogue_passes_against_the_reference_sender() {
    let (code, out, err) = danesim(&["run", "scenarios/"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for id in [
        "renewed-cert",
        "missing-tlsa",
        "secondary-mx",
        "secondary-mx-dane",
        "downgrade-attempt",
        "positive-control",
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no line for {id} in:\n{out}"));
        assert!(line.starts_with("PASS"), "{line}");
    }
    // Catalogued deviations of the reference sender (ta-14-ca-leaf) are allowed, violations not.
    assert!(out.contains(", 0 with violations"), "{out}");
}

/// Copy a seed scenario with one edit, into a temp dir, and return its path.
fn edited(src: &str, from: &str, to: &str) -> (TempDir, PathBuf) {
    let text = std::fs::read_to_string(root().join(src)).expect("seed scenario exists");
    assert!(text.contains(from), "`{from}` not in {src}");
    let dir = TempDir::new("danesim-test");
    let p = dir.path().join(Path::new(src).file_name().expect("has a file name"));
    std::fs::write(&p, text.replacen(from, to, 1)).expect("temp dir is writable");
    (dir, p)
}

#[test]
fn a_wrong_expectation_exits_1_and_names_the_scenario() {
    let (_d, p) = edited(
        "scenarios/dane-ee/renewed-cert.toml",
        "result = \"DEFER\"",
        "result = \"AUTH\"",
    );
    let (code, out, _) = danesim(&["run", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("VIOLATION  renewed-cert"), "{out}");
    assert!(
        out.contains("RESULT (RFC 7672 §3.2): expected AUTH, the sender reported DEFER"),
        "{out}"
    );
}

#[test]
fn json_format_is_machine_readable() {
    let (code, out, _) = danesim(&["run", "--format", "json", "scenarios/starttls/downgrade-attempt.toml"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("--format json prints one JSON document");
    assert_eq!(v["summary"]["passed"], 1);
    assert_eq!(v["outcomes"][0]["result"], "DEFER");
    assert_eq!(v["outcomes"][0]["verdict"], "pass");
}

fn assert_bad_input(code: i32, err: &str, location: &str, what: &str) {
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(location), "expected `{location}` in:\n{err}");
    assert!(err.contains(what), "expected `{what}` in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_unknown_key_is_reported_at_file_line_col() {
    let (_d, p) = edited(
        "scenarios/dane-ee/positive-control.toml",
        "[message]\nto = ",
        "[message]\ntoo = ",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "positive-control.toml:15:1", "unknown field `too`");
}

#[test]
fn a_bad_zone_line_is_reported_at_file_line_col() {
    let (_d, p) = edited(
        "scenarios/dane-ee/positive-control.toml",
        "A    192.0.2.10",
        "A    192.0.2.999",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "positive-control.toml:26:23",
        "bad record in zone example.test.: `192.0.2.999` is not an IPv4 address",
    );
}

#[test]
fn an_unknown_certificate_name_is_reported_at_file_line_col() {
    let (_d, p) = edited("scenarios/dane-ee/positive-control.toml", "{cert:mx1}", "{cert:mx9}");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "positive-control.toml:27:29", "unknown certificate `mx9`");
    assert!(err.contains("declared certificates: mx1"), "{err}");
}

#[test]
fn an_unknown_sender_and_a_missing_path_exit_2() {
    let (code, _, err) = danesim(&["run", "--sender", "sendmail9", "scenarios/"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown sender `sendmail9`"), "{err}");
    let (code, _, err) = danesim(&["run", "no/such/dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/dir"), "{err}");
}

#[test]
fn list_names_every_seed_scenario() {
    let (code, out, _) = danesim(&["list"]);
    assert_eq!(code, 0);
    for id in [
        "renewed-cert",
        "missing-tlsa",
        "secondary-mx",
        "downgrade-attempt",
        "positive-control",
    ] {
        assert!(out.contains(id), "{out}");
    }
}
#[test]
fn anchor_prints_ds_and_dnskey_and_writes_a_delv_file() {
    let dir = TempDir::new("danesim-test");
    let f = dir.path().join("anchors.conf");
    let (code, out, err) = danesim(&[
        "anchor",
        "scenarios/dane-ee/positive-control.toml",
        "--delv",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("test. IN DS ") && l.contains(" 15 2 ")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("test. IN DNSKEY 257 3 15 ")), "{out}");
    let written = std::fs::read_to_string(&f).expect("the anchors file was written");
    assert!(written.contains("test. static-key 257 3 15"), "{written}");
    // The same key every run: the fixtures are fixed.
    let (_, again, _) = danesim(&["anchor", "scenarios/dane-ee/positive-control.toml"]);
    assert_eq!(out, again);
}

#[test]
fn tap_and_junit_report_violations_for_ci() {
    let (_d, p) = edited(
        "scenarios/dane-ee/renewed-cert.toml",
        "result = \"DEFER\"",
        "result = \"AUTH\"",
    );
    let (code, out, _) = danesim(&[
        "run",
        "--format",
        "tap",
        p.to_str().unwrap(),
        "scenarios/starttls/downgrade-attempt.toml",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("TAP version 14\n1..2\n"), "{out}");
    assert!(out.contains("\nok 2 - downgrade-attempt@reference DEFER"), "{out}");
    assert!(out.contains("not ok 1 - renewed-cert@reference DEFER"), "{out}");
    assert!(out.contains("invariant: \"RESULT\""), "{out}");

    let (code, out, _) = danesim(&["run", "--format", "junit", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tests=\"1\" failures=\"1\""), "{out}");
    assert!(
        out.contains("<failure type=\"RESULT\" message=\"RESULT (RFC 7672 §3.2): expected AUTH"),
        "{out}"
    );
}

#[test]
fn a_real_sender_without_root_or_its_package_fails_fast_and_says_what_to_do() {
    // The shipped Exim profile, with its binary where nothing is.
    let moved = std::env::temp_dir().join(format!("danesim-cli-exim-{}", std::process::id()));
    std::fs::create_dir_all(&moved).unwrap();
    let exim = moved.join("exim.toml");
    let shipped = std::fs::read_to_string(root().join("fixtures/senders/exim.toml")).unwrap();
    let template = root().join("fixtures/senders/exim/exim.conf");
    std::fs::write(
        &exim,
        shipped
            .replace("/opt/danesim/exim/usr/sbin/exim4", "/nonexistent/exim4")
            .replace("\"exim/exim.conf\"", &format!("{:?}", template.display().to_string())),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_danesim"))
        .args([
            "run",
            "--sender",
            exim.to_str().unwrap(),
            "scenarios/dane-ee/positive-control.toml",
        ])
        .current_dir(root())
        .output()
        .expect("the danesim binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    if danesim::world::namespace::effective_uid() == Some(0) {
        assert!(
            err.contains("/nonexistent/exim4") && err.contains("ci/install-exim"),
            "{err}"
        );
    } else {
        assert!(
            err.contains("needs root") && err.contains("reference sender needs no privileges"),
            "{err}"
        );
    }
    // A sender profile whose program is missing is named the same way.
    let dir = std::env::temp_dir().join(format!("danesim-cli-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("nothere.toml");
    std::fs::write(
        &profile,
        "command = [\"danesim-no-such-program\", \"${DANESIM_RECIPIENT}\"]\n",
    )
    .unwrap();
    let (code, _, err) = danesim(&[
        "run",
        "--sender",
        profile.to_str().expect("a UTF-8 temp path"),
        "scenarios/dane-ee/positive-control.toml",
    ]);
    assert_eq!(code, 2, "{err}");
    if danesim::world::namespace::effective_uid() == Some(0) {
        assert!(err.contains("`danesim-no-such-program` was not found"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_fault_or_ds_mode_is_reported_at_file_line_col() {
    let (_d, p) = edited(
        "scenarios/tlsa-lookup/tlsa-l-05-tlsa-servfail.toml",
        "kind = \"servfail\"",
        "kind = \"servfial\"",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "tlsa-l-05-tlsa-servfail.toml:35:9",
        "unknown fault kind `servfial`",
    );
    assert!(err.contains("known: servfail, refused, drop"), "{err}");

    let (_d, p) = edited(
        "scenarios/tlsa-lookup/tlsa-l-05-tlsa-servfail.toml",
        "qname = \"_25._tcp.mx1.example.test.\"",
        "qname = \"mx1.example.org.\"",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "tlsa-l-05-tlsa-servfail.toml:33:10",
        "`mx1.example.org.` is in none of the world's zones",
    );

    let (_d, p) = edited(
        "scenarios/dns-security/mx-03-ds-mismatch.toml",
        "ds = \"mismatch\"",
        "ds = \"broken\"",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "mx-03-ds-mismatch.toml:21:7", "unknown DS mode `broken`");
}

#[test]
fn a_bad_scripted_reply_is_reported_at_file_line_col() {
    let (_d, p) = edited(
        "scenarios/smtp-replies/rcpt-550-bounce.toml",
        "replies = { rcpt = \"550 5.1.1 User unknown\" }",
        "replies = { rcpt = \"55 5.1.1 User unknown\" }",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "rcpt-550-bounce.toml:30:21", "`55` is not a reply code");

    let (_d, p) = edited(
        "scenarios/smtp-replies/rcpt-550-bounce.toml",
        "replies = { rcpt = ",
        "replies = { rcp = ",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "rcpt-550-bounce.toml:30:19",
        "unknown stage `rcp` in `replies`",
    );
    assert!(
        err.contains("stages: greeting, ehlo, mail, rcpt, data, end-of-data"),
        "{err}"
    );

    let (_d, p) = edited(
        "scenarios/smtp-replies/drop-during-data.toml",
        "drop = \"data\"",
        "drop = \"rcpt\"",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "drop-during-data.toml:31:9", "unknown drop point `rcpt`");

    let (_d, p) = edited(
        "scenarios/smtp-replies/slow-greeting.toml",
        "greeting = \"400ms\"",
        "greeting = \"soon\"",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "slow-greeting.toml:31:24", "`soon` is not a duration");
}

#[test]
fn a_bad_attacker_is_reported_at_file_line_col() {
    // scenarios/attacker/stls-02-forged-454.toml line 31:
    // attacker = { mode = "inject", stage = "starttls", reply = "454 4.7.0 ..." }
    let file = "scenarios/attacker/stls-02-forged-454.toml";
    let (_d, p) = edited(file, "mode = \"inject\"", "mode = \"forge\"");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "stls-02-forged-454.toml:31:22",
        "unknown attacker mode `forge`",
    );
    assert!(err.contains("modes: strip-starttls, inject, intercept"), "{err}");

    let (_d, p) = edited(file, "stage = \"starttls\"", "stage = \"tls\"");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "stls-02-forged-454.toml:31:40", "unknown stage `tls`");
    assert!(
        err.contains("greeting, ehlo, starttls, mail, rcpt, data, end-of-data"),
        "{err}"
    );

    let (_d, p) = edited(file, "stage = \"starttls\", ", "");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "stls-02-forged-454.toml:31:12",
        "attacker mode `inject` needs `stage`",
    );

    let (_d, p) = edited(file, "mode = \"inject\"", "mode = \"intercept\"");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "stls-02-forged-454.toml:31:12",
        "attacker mode `intercept` needs `cert`",
    );

    let (_d, p) = edited(
        "scenarios/attacker/stls-07-mitm-intercept.toml",
        "cert = \"interceptor\"",
        "cert = \"interceptr\"",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(code, &err, "stls-07-mitm-intercept.toml:39:42", "interceptr");

    let (_d, p) = edited(
        "scenarios/attacker/stls-07-mitm-intercept.toml",
        "cert = \"interceptor\" }",
        "cert = \"interceptor\", reply = \"250 ok\" }",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "stls-07-mitm-intercept.toml:39:",
        "`reply` does not apply to attacker mode `intercept`",
    );
}

#[test]
fn a_bad_timeline_is_reported_at_file_line_col() {
    let file = "scenarios/timeline/hybrid-cert-renewal.toml";
    let (_d, p) = edited(file, "when = \"after attempt 1\"", "when = \"after the renewal\"");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "hybrid-cert-renewal.toml:47:9",
        "unknown event `after the renewal`",
    );
    assert!(
        err.contains("\"start\", \"after attempt N\", \"after delivery\""),
        "{err}"
    );

    let (_d, p) = edited(file, "when = \"after attempt 2\"", "when = \"after attempt 3\"");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "hybrid-cert-renewal.toml:52:9",
        "attempt 3 has no next attempt",
    );

    let (_d, p) = edited(
        file,
        "expect = [\"AUTH\", \"DEFER\", \"AUTH\"]",
        "expect = [\"AUTH\", \"DEFER\"]",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "hybrid-cert-renewal.toml:",
        "`expect` lists 2 result(s) for 3 attempt(s)",
    );

    let (_d, p) = edited(file, "cert = \"onprem-2027\" }", "cert = \"onprem-2028\" }");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "hybrid-cert-renewal.toml:49:",
        "unknown certificate `onprem-2028`",
    );

    let (_d, p) = edited(
        "scenarios/timeline/roll-04-across-the-switch.toml",
        "remove = [\"_25._tcp.mx1  TLSA 3 1 1 {cert:current}\"]",
        "remove = [\"_25._tcp.mx2  TLSA\"]",
    );
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_bad_input(
        code,
        &err,
        "roll-04-across-the-switch.toml:52:",
        "nothing in zone example.test. matches `_25._tcp.mx2  TLSA`",
    );

    let (_d, p) = edited(file, "[timeline]\nattempts = 3", "[timelime]\nattempts = 3");
    let (code, _, err) = danesim(&["run", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `timelime`"), "{err}");
}

/// Issue 6's must-show: the human output of hybrid-cert-renewal under the exchange-online
/// profile lists the three attempts, the second one deferred with 450 4.7.323.
#[test]
fn exchange_online_reports_the_hybrid_outage_attempt_by_attempt() {
    let (code, out, err) = danesim(&[
        "run",
        "--sender",
        "exchange-online",
        "scenarios/timeline/hybrid-cert-renewal.toml",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let attempts: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("attempt ")).collect();
    assert_eq!(attempts.len(), 3, "{out}");
    assert!(attempts[0].contains("attempt 1 T+0s (message 1): AUTH"), "{out}");
    assert!(
        attempts[1]
            .contains("attempt 2 T+15m (message 2): DEFER 450 4.7.323 tlsa-invalid: The domain failed DANE validation")
            && attempts[1].contains("LastAttemptedServerName=mail.example.test; LastAttemptedIP=192.0.2.10"),
        "{out}"
    );
    assert!(attempts[2].contains("attempt 3 T+30m (message 2): AUTH"), "{out}");
    assert!(
        out.contains("then after attempt 1: 192.0.2.10 now serves onprem-2027"),
        "{out}"
    );
}

/// `--dns-timeout` takes a duration (a bare number stays milliseconds) and must outlast the
/// scenarios' scripted DNS delays by 100 ms (issue 14: `--dns-timeout 300` silently flipped
/// `transport-slow-mx`, whose MX answers take 400 ms).
#[test]
fn a_dns_timeout_shorter_than_a_scripted_delay_is_refused() {
    let slow = "scenarios/dns-security/transport-slow-mx.toml";
    for short in ["300", "300ms", "499ms"] {
        let (code, out, err) = danesim(&["run", "--dns-timeout", short, slow]);
        assert_eq!(code, 2, "{short}: {out}{err}");
        assert!(
            err.contains("scenario `transport-slow-mx`") && err.contains("400ms") && err.contains("500ms or more"),
            "{short}: {err}"
        );
        assert!(out.is_empty(), "nothing runs: {out}");
    }
    for enough in ["500", "500ms", "2s"] {
        let (code, out, err) = danesim(&["run", "--dns-timeout", enough, slow]);
        assert_eq!(code, 0, "{enough}: {out}{err}");
        assert!(out.contains("PASS       transport-slow-mx"), "{out}");
    }
    for bad in ["10", "31s", "soon", "999999999999999999d"] {
        let (code, _, err) = danesim(&["run", "--dns-timeout", bad, slow]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("50ms to 30s"), "{bad}: {err}");
    }
}
