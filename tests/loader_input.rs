//! Hostile input to the scenario loader (issue 14, "Input limits" and "Errors"): files that
//! are no regular files, too large or not UTF-8, directory link loops, huge lines and keys,
//! escapes before non-ASCII text, and semantic errors that used to have no location. Each
//! runs the built binary under a time and memory bound and must exit 2 with a short error
//! that names `file:line:col` (or, for a directory, the directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of `danesim` gave.
struct Run {
    code: i32,
    stderr: String,
    elapsed: Duration,
}

/// The bound every hostile input runs under: a hang or a runaway read fails the test.
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// Virtual memory for the child, in KiB (`ulimit -v`): reading `/dev/zero` would exceed it.
const MEMORY_KIB: u64 = 4 * 1024 * 1024;
/// The most stderr one broken file may produce.
const STDERR_LIMIT: usize = 4096;

fn danesim(args: &[&str]) -> Run {
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_danesim"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh and the danesim binary run");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        // Bounded: a runaway error message must not fill the test's memory either.
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut stderr, 1 << 20), &mut buf).ok();
        buf
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait works") {
            break s;
        }
        if start.elapsed() > TIME_LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("danesim {args:?} ran longer than {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = String::from_utf8_lossy(&reader.join().expect("reader thread")).into_owned();
    Run {
        code: status.code().unwrap_or(-1),
        stderr,
        elapsed: start.elapsed(),
    }
}

/// `danesim list PATH` must exit 2, quickly, with a short stderr containing `want`.
fn refused(path: &Path, want: &str) -> Run {
    let r = danesim(&["list", path.to_str().expect("temp paths are UTF-8")]);
    assert_eq!(r.code, 2, "exit code for {}; stderr:\n{}", path.display(), r.stderr);
    assert!(r.stderr.contains(want), "expected `{want}` in:\n{}", r.stderr);
    assert!(
        r.stderr.len() < STDERR_LIMIT,
        "{} bytes of stderr:\n{}",
        r.stderr.len(),
        &r.stderr[..2000]
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("danesim-loader-")
        .tempdir()
        .expect("a temp dir")
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("the temp dir is writable");
    p
}

fn seed() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join("scenarios/dane-ee/positive-control.toml")).expect("the seed scenario exists")
}

/// The seed scenario with one edit.
fn edited(from: &str, to: &str) -> String {
    let s = seed();
    assert!(s.contains(from), "`{from}` is not in the seed");
    s.replacen(from, to, 1)
}

/// 1-based line and column of the first `needle` in `text` (columns in characters).
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let line = text[..at].matches('\n').count() + 1;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, text[start..at].chars().count() + 1)
}

// ---- Input limits -------------------------------------------------------------------------

#[test]
fn a_fifo_named_toml_is_refused_without_blocking() {
    let d = temp();
    let p = d.path().join("x.toml");
    let ok = Command::new("mkfifo").arg(&p).status().expect("mkfifo runs");
    assert!(ok.success());
    let r = refused(d.path(), "x.toml:1:1: a FIFO (named pipe), not a regular file");
    assert!(r.stderr.contains("regular file of TOML text"), "{}", r.stderr);
    // Named directly, too.
    refused(&p, "a FIFO (named pipe), not a regular file");
}

#[test]
fn a_link_to_dev_zero_is_refused_without_reading() {
    let d = temp();
    let p = d.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &p).expect("symlink");
    let r = refused(d.path(), "zero.toml:1:1: a character device, not a regular file");
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
}

#[test]
fn a_socket_named_toml_is_refused() {
    let d = temp();
    let p = d.path().join("s.toml");
    let _l = std::os::unix::net::UnixListener::bind(&p).expect("bind a unix socket");
    refused(d.path(), "s.toml:1:1: a socket, not a regular file");
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let d = temp();
    let p = d.path().join("big.toml");
    let f = std::fs::File::create(&p).expect("create");
    // Sparse: 8 MiB + 1 byte without writing them.
    f.set_len(8 * 1024 * 1024 + 1).expect("set_len");
    refused(
        d.path(),
        "big.toml:1:1: larger than the scenario size limit of 8388608 bytes (8 MiB)",
    );
}

#[test]
fn two_directory_links_to_dot_are_a_loop_not_an_explosion() {
    let d = temp();
    write(d.path(), "ok.toml", seed());
    std::os::unix::fs::symlink(".", d.path().join("a")).expect("symlink");
    std::os::unix::fs::symlink(".", d.path().join("b")).expect("symlink");
    let r = refused(d.path(), "a directory link loop: it leads back to");
    assert!(r.stderr.contains("/a"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
}

#[test]
fn a_directory_reached_by_two_links_is_walked_once() {
    let d = temp();
    let real = d.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    write(&real, "one.toml", seed());
    // A fan of links, each level twice to the one below: 2^20 paths without the walked set.
    let mut below = real.clone();
    for i in 0..20 {
        let level = d.path().join(format!("l{i}"));
        std::fs::create_dir(&level).expect("mkdir");
        std::os::unix::fs::symlink(&below, level.join("x")).expect("symlink");
        std::os::unix::fs::symlink(&below, level.join("y")).expect("symlink");
        below = level;
    }
    let r = danesim(&["list", d.path().to_str().expect("UTF-8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}

#[test]
fn directories_nested_too_deep_are_refused() {
    let d = temp();
    let mut p = d.path().to_path_buf();
    for _ in 0..34 {
        p = p.join("d");
    }
    std::fs::create_dir_all(&p).expect("mkdir -p");
    refused(d.path(), "directories nested deeper than 32 levels");
}

// ---- Encoding -----------------------------------------------------------------------------

#[test]
fn a_file_that_is_not_utf8_is_located_with_its_byte_offset() {
    let d = temp();
    let text = edited("title = \"", "title = \"\u{1}");
    let mut bytes = text.into_bytes();
    let at = bytes.iter().position(|b| *b == 1).expect("the marker");
    bytes[at] = 0xff;
    let p = write(d.path(), "latin.toml", &bytes);
    let text = String::from_utf8_lossy(&bytes);
    let (line, col) = position(&text, "\u{fffd}");
    refused(
        &p,
        &format!("latin.toml:{line}:{col}: not UTF-8 (invalid byte 0xff at byte offset {at})"),
    );
}

#[test]
fn a_utf16_file_is_named_as_such() {
    let d = temp();
    let mut bytes = vec![0xff, 0xfe];
    for u in seed().encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let p = write(d.path(), "wide.toml", &bytes);
    let r = refused(&p, "wide.toml:1:1: the file is UTF-16 (little-endian");
    assert!(r.stderr.contains("save it as UTF-8"), "{}", r.stderr);
    let mut be = vec![0xfe, 0xff];
    for u in seed().encode_utf16() {
        be.extend_from_slice(&u.to_be_bytes());
    }
    refused(
        &write(d.path(), "wide-be.toml", &be),
        "wide-be.toml:1:1: the file is UTF-16 (big-endian",
    );
}

#[test]
fn a_utf8_byte_order_mark_is_accepted_and_columns_ignore_it() {
    let d = temp();
    let p = write(d.path(), "bom.toml", format!("\u{feff}{}", seed()));
    let r = danesim(&["list", p.to_str().expect("UTF-8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // An error on line 1 is at the column an editor shows.
    let p = write(d.path(), "bom-bad.toml", format!("\u{feff}idd = \"x\"\n{}", seed()));
    refused(&p, "bom-bad.toml:1:1: unknown field `idd`");
}

// ---- Bounded errors -----------------------------------------------------------------------

#[test]
fn a_huge_one_line_file_errors_quickly_with_a_short_excerpt() {
    let d = temp();
    // Just under the limit, on one line, with the error at its end.
    let p = write(
        d.path(),
        "line.toml",
        format!("x = \"{}\" y", "a".repeat(8 * 1024 * 1024 - 20)),
    );
    let r = refused(&p, "line.toml:1:");
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}

#[test]
fn a_megabyte_key_is_cut_in_the_message() {
    let d = temp();
    let key = "k".repeat(1 << 20);
    let p = write(d.path(), "key.toml", format!("{key} = 1\n{}", seed()));
    let r = refused(&p, "key.toml:1:1: unknown field `kkkk");
    assert!(r.stderr.contains('…'), "{}", r.stderr);
}

#[test]
fn a_huge_bad_record_is_cut_in_the_message() {
    let d = temp();
    let junk = "é".repeat(1 << 19);
    let p = write(d.path(), "rec.toml", edited("A    192.0.2.10", &format!("A {junk}")));
    refused(&p, "rec.toml:");
}

// ---- Columns after TOML escapes -----------------------------------------------------------

/// A record line with an escape, then non-ASCII text in the bad token: the error is at the
/// token as written in the file (it panicked off a char boundary, and was columns off).
#[test]
fn a_bad_record_after_escapes_is_located_where_it_is_written() {
    let d = temp();
    let text = edited("\"mx1           A    192.0.2.10\"", r#""mx1\tA\t192.0.2.é""#);
    let (line, col) = position(&text, "192.0.2.é");
    let p = write(d.path(), "esc.toml", &text);
    refused(
        &p,
        &format!("esc.toml:{line}:{col}: bad record in zone example.test.: `192.0.2.é`"),
    );

    let text = edited(
        "\"mx1           A    192.0.2.10\"",
        r#""mx1 \u0041 \u0031\u0039\u0032.0.2.999""#,
    );
    let (line, col) = position(&text, r"\u0031");
    let p = write(d.path(), "esc2.toml", &text);
    refused(
        &p,
        &format!("esc2.toml:{line}:{col}: bad record in zone example.test.: `192.0.2.999`"),
    );

    // A literal string has no escapes; a multi-line one may continue a line with `\`.
    let text = edited("\"mx1           A    192.0.2.10\"", "\"\"\"mx1 \\\n     A é\"\"\"");
    let (line, col) = position(&text, "é\"\"\"");
    let p = write(d.path(), "esc3.toml", &text);
    refused(&p, &format!("esc3.toml:{line}:{col}: bad record in zone example.test."));
}

/// After a `{cert:NAME}` placeholder (checked with stand-in data), a column is still the text's.
#[test]
fn a_bad_token_after_a_placeholder_is_located_in_the_text() {
    let d = temp();
    let text = edited("TLSA 3 1 1 {cert:mx1}", "TLSA 3 1 1 {cert:mx1} é");
    let (line, col) = position(&text, "é\"");
    let p = write(d.path(), "ph.toml", &text);
    refused(&p, &format!("ph.toml:{line}:{col}:"));
}

// ---- Errors that had no location ----------------------------------------------------------

#[test]
fn a_cname_beside_other_data_is_located_at_the_cname() {
    let d = temp();
    let text = edited(
        "  \"@             MX   10 mx1\",\n",
        "  \"@             MX   10 mx1\",\n  \"mx1 CNAME other\",\n",
    );
    let (line, col) = position(&text, "mx1 CNAME other");
    let p = write(d.path(), "cname.toml", &text);
    let r = refused(
        &p,
        &format!("cname.toml:{line}:{col}: zone example.test.: `mx1.example.test.` has a CNAME and other data"),
    );
    assert!(!r.stderr.contains("column 0"), "{}", r.stderr);
}

#[test]
fn data_below_a_delegation_is_located_at_its_record() {
    let d = temp();
    let text = edited(
        "  \"@             MX   10 mx1\",\n",
        "  \"@             MX   10 mx1\",\n  \"sub NS ns1.elsewhere.test.\",\n  \"a.sub A 192.0.2.77\",\n",
    );
    let (line, col) = position(&text, "a.sub A 192.0.2.77");
    let p = write(d.path(), "cut.toml", &text);
    refused(
        &p,
        &format!("cut.toml:{line}:{col}: zone example.test.: `a.sub.example.test. A` is at or below the zone cut"),
    );
}

#[test]
fn path_len_on_a_leaf_is_located_at_path_len() {
    let d = temp();
    let text = edited(
        "sans = [\"mx1.example.test\"]",
        "sans = [\"mx1.example.test\"]\npath_len = 0",
    );
    let (line, col) = position(&text, "0\n");
    let p = write(d.path(), "pl.toml", &text);
    let r = refused(
        &p,
        &format!("pl.toml:{line}:{col}: certificate `mx1`: path_len applies to CA certificates only"),
    );
    assert!(
        r.stderr.contains("set `ca = true`, or remove `path_len`"),
        "{}",
        r.stderr
    );
}

#[test]
fn permitted_dns_on_a_leaf_is_located_at_permitted_dns() {
    let d = temp();
    let text = edited(
        "sans = [\"mx1.example.test\"]",
        "sans = [\"mx1.example.test\"]\npermitted_dns = [\"example.test\"]",
    );
    let (line, col) = position(&text, "\"example.test\"]");
    let p = write(d.path(), "nc.toml", &text);
    refused(
        &p,
        &format!("nc.toml:{line}:{col}: certificate `mx1`: permitted_dns applies to CA certificates only"),
    );
}

#[test]
fn an_empty_or_non_ascii_san_is_located_at_the_san() {
    let d = temp();
    let text = edited("sans = [\"mx1.example.test\"]", "sans = [\"mx1.example.test\", \"\"]");
    let (line, col) = position(&text, "\"\"]");
    let p = write(d.path(), "san.toml", &text);
    refused(
        &p,
        &format!("san.toml:{line}:{col}: certificate `mx1`: empty DNS name in `sans`"),
    );
    let text = edited("sans = [\"mx1.example.test\"]", "sans = [\"mx1.exämple.test\"]");
    let (line, col) = position(&text, "\"mx1.exämple");
    let p = write(d.path(), "idn.toml", &text);
    refused(
        &p,
        &format!("idn.toml:{line}:{col}: certificate `mx1`: SAN \"mx1.exämple.test\" is not an ASCII"),
    );
}

#[test]
fn two_files_with_one_id_are_located_at_the_second_id() {
    let d = temp();
    let first = write(d.path(), "a.toml", seed());
    let text = format!("# the same scenario again\n{}", seed());
    let (line, col) = position(&text, "\"positive-control\"");
    write(d.path(), "b.toml", &text);
    let r = refused(
        d.path(),
        &format!(
            "b.toml:{line}:{col}: scenario id `positive-control` is already used by {}",
            first.display()
        ),
    );
    assert!(
        !r.stderr.contains("a.toml:"),
        "the first file is named, not blamed:\n{}",
        r.stderr
    );
}

/// A timeline step that adds a CNAME beside data is refused at load time, at the step (it
/// failed only when the world was rebuilt during the run).
#[test]
fn a_step_that_puts_a_cname_beside_data_is_located_at_the_step() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("scenarios/timeline/ttl-03-transient-servfail.toml"))
        .expect("the seed scenario exists");
    let from = "when = \"after attempt 1\"\n";
    assert!(text.contains(from));
    let text = text.replacen(from, &format!("{from}add = [\"mx1 CNAME other\"]\n"), 1);
    let (line, col) = position(&text, "[[step]]");
    let d = temp();
    let p = write(d.path(), "step.toml", &text);
    refused(
        &p,
        &format!(
            "step.toml:{line}:{col}: after step 1: zone example.test.: record `mx1 CNAME other`: `mx1.example.test.` has a CNAME and other data"
        ),
    );
}

#[test]
fn an_empty_permitted_subtree_on_a_ca_is_located_at_it() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("scenarios/dane-ta/ta-13-name-constraints.toml"))
        .expect("the seed scenario exists");
    let from = "permitted_dns = [\"";
    assert!(text.contains(from));
    let text = text.replacen(from, "permitted_dns = [\"\", \"", 1);
    let (line, col) = position(&text, "\"\", \"");
    let d = temp();
    let p = write(d.path(), "nc.toml", &text);
    refused(&p, &format!("nc.toml:{line}:{col}: certificate `"));
}

/// A zone without records reaches the assembly rules with its origin unchecked.
#[test]
fn a_zone_origin_that_is_no_domain_name_is_located_at_the_origin() {
    let d = temp();
    let text = edited(
        "[[endpoint]]",
        "[[zone]]\norigin = \"b..example.test.\"\n\n[[endpoint]]",
    );
    let (line, col) = position(&text, "\"b..example.test.\"");
    let p = write(d.path(), "origin.toml", &text);
    refused(
        &p,
        &format!("origin.toml:{line}:{col}: zone origin `b..example.test.` is not a valid domain name"),
    );
}

/// A `{cert:NAME}` placeholder whose data cannot be computed (RFC 6698 §2.1.2, §2.1.3) was
/// refused only when the world was built, with no position: now at the selector or the
/// matching type.
#[test]
fn a_placeholder_with_no_defined_computation_is_located_at_the_parameter() {
    let d = temp();
    for (tlsa, at, what) in [
        ("TLSA 3 7 1 {cert:mx1}", "7 1 {", "selector 7"),
        ("TLSA 3 1 9 {cert:mx1}", "9 {", "matching type 9"),
        ("TLSA 3 2 255 {cert:mx1}", "2 255 {", "selector 2"),
    ] {
        let text = edited("TLSA 3 1 1 {cert:mx1}", tlsa);
        let (line, col) = position(&text, at);
        let p = write(d.path(), "ph.toml", &text);
        refused(
            &p,
            &format!("ph.toml:{line}:{col}: cannot compute TLSA data for {what}: `{{cert:mx1}}` needs"),
        );
    }
}

/// What hickory's zone-file parser accepts but no wire form carries failed only when the
/// zone was signed, with no position: a TXT <character-string> over 255 octets (RFC 1035
/// §3.3), RDATA over 65535 octets (RFC 1035 §3.2.1); in a zone and in a timeline step.
#[test]
fn records_over_the_wire_limits_are_located_at_the_record() {
    let d = temp();
    let s255 = "a".repeat(255);
    let big_txt = format!("big TXT {}", vec![s255.as_str(); 260].join(" "));
    let big_tlsa = format!("_25._tcp.big TLSA 3 1 0 {}", "ab".repeat(65533));
    for (record, at, want) in [
        (
            format!("big TXT \\\"{s255}\\\" \\\"a{s255}\\\""),
            format!("\\\"a{s255}"),
            "a TXT <character-string> is at most 255 octets (RFC 1035 §3.3), this one is 256",
        ),
        (
            big_txt.clone(),
            s255.clone(),
            "TXT data over 65535 octets: RDLENGTH is 16 bits",
        ),
        (
            big_tlsa.clone(),
            "3 1 0 abab".into(),
            "TLSA data over 65535 octets: RDLENGTH is 16 bits",
        ),
    ] {
        let text = edited(
            "  \"@             MX   10 mx1\",\n",
            &format!("  \"@             MX   10 mx1\",\n  \"{record}\",\n"),
        );
        let (line, col) = position(&text, &at);
        let p = write(d.path(), "wire.toml", &text);
        refused(
            &p,
            &format!("wire.toml:{line}:{col}: bad record in zone example.test.: {want}"),
        );
    }
    // A step's record is checked as a zone's is (the timeline seed).
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("scenarios/timeline/ttl-01-cached-old-tlsa.toml"))
        .expect("the seed scenario exists");
    let text = format!("{text}\n[[step]]\nwhen = \"start\"\nadd = [\"{big_txt}\"]\n");
    let (line, col) = position(&text, &format!("{s255} "));
    let p = write(d.path(), "step.toml", &text);
    refused(
        &p,
        &format!("step.toml:{line}:{col}: bad record in zone example.test.: TXT data over 65535"),
    );
}

// ---- Faults on denial proofs (issue 15) ---------------------------------------------------

/// Each misuse of `on` / `no-denial` is located at the key at fault.
#[test]
fn denial_fault_misuse_is_located_at_its_key() {
    let base = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/tlsa-lookup/tlsa-l-06-tlsa-denial-bad-signature.toml"),
    )
    .expect("the denial scenario exists");
    let cases: [(&str, &str, &str, &str); 5] = [
        // (replace, with, locate, message)
        (
            "on = \"denial\"",
            "on = \"proof\"",
            "\"proof\"",
            "unknown fault target `proof`",
        ),
        (
            "kind = \"bad-signature\"\non = \"denial\"",
            "kind = \"servfail\"\non = \"denial\"",
            "\"denial\"",
            "applies to signature faults, not `servfail`",
        ),
        (
            "kind = \"bad-signature\"\non = \"denial\"",
            "kind = \"no-denial\"\non = \"answer\"",
            "\"answer\"",
            "cannot act on the answer",
        ),
        ("qtype = \"TLSA\"\n", "", "\"denial\"", "needs `qtype`"),
        ("qtype = \"TLSA\"", "qtype = \"TXT\"", "\"TXT\"", "exists in the world"),
    ];
    let d = temp();
    for (i, (from, to, locate, want)) in cases.iter().enumerate() {
        assert!(base.contains(from), "`{from}` is not in the scenario");
        let text = base.replacen(from, to, 1);
        // Located inside the quotes: at the value itself.
        let (line, col) = position(&text, locate);
        let col = col + 1;
        let name = format!("denial-{i}.toml");
        let p = write(d.path(), &name, &text);
        refused(&p, &format!("{name}:{line}:{col}: "));
        refused(&p, want);
    }
}
