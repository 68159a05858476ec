//! Bad input never panics: mutated scenario files either load or fail with an error
//! that names file:line:col (DEVELOPERS.md, "Bad input").

use danesim::scenario::{self, ScenarioError};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn seeds() -> Vec<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    scenario::discover(&[root])
        .expect("scenarios are readable")
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (p, text)
        })
        .collect()
}

/// A loaded scenario is fine; an error must be an `At` error with a location in this file.
fn check(path: &Path, text: &str) -> Result<(), TestCaseError> {
    match scenario::load_str(path, text) {
        // What loads must also build (issue certificates, compute TLSA, sign zones) or fail
        // with an error; a panic here fails the test.
        Ok(s) => {
            let _ = danesim::world::prepare(&s, &danesim::pki::KeyStore::embedded());
            Ok(())
        }
        Err(ScenarioError::At { location, .. }) => {
            let prefix = format!("{}:", path.display());
            prop_assert!(location.starts_with(&prefix), "location `{location}`");
            let rest: Vec<&str> = location[prefix.len()..].split(':').collect();
            prop_assert_eq!(rest.len(), 2, "line:col in `{}`", location);
            prop_assert!(
                rest.iter().all(|n| n.parse::<usize>().is_ok_and(|n| n >= 1)),
                "`{}`",
                location
            );
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("unlocated error: {other}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Replace a random span of a real scenario with random text.
    #[test]
    fn splicing_text_into_a_scenario_never_panics(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        len in 0usize..12,
        insert in "[ -~\n\"{}\\[\\]=:.@]{0,16}",
    ) {
        let seeds = seeds();
        let (path, text) = &seeds[which.index(seeds.len())];
        let mut cut = at.index(text.len().max(1));
        while !text.is_char_boundary(cut) { cut -= 1; }
        let mut end = (cut + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{}{}", &text[..cut], insert, &text[end..]);
        check(path, &mutated)?;
    }

    /// Whole lines of one scenario dropped or duplicated.
    #[test]
    fn dropping_or_repeating_lines_never_panics(
        which in any::<prop::sample::Index>(),
        line in any::<prop::sample::Index>(),
        repeat in any::<bool>(),
    ) {
        let seeds = seeds();
        let (path, text) = &seeds[which.index(seeds.len())];
        let mut lines: Vec<&str> = text.lines().collect();
        let i = line.index(lines.len());
        if repeat { lines.insert(i, lines[i]); } else { lines.remove(i); }
        check(path, &lines.join("\n"))?;
    }
}

#[test]
fn every_seed_scenario_loads() {
    for (path, text) in seeds() {
        scenario::load_str(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A minimal scenario with `clock_line` at the top and `dates` in its one certificate.
fn dated(clock_line: &str, dates: &str) -> String {
    format!(
        "id = \"dates\"\ntitle = \"dates\"\nteaches = \"dates\"\n{clock_line}\n\n[[cert]]\nname = \"mx1\"\nkey = \"ed25519:mx1\"\n\
         sans = [\"mx1.example.test\"]\n{dates}\n\n[[zone]]\norigin = \"example.test.\"\n\
         records = [\"@ MX 10 mx1\", \"mx1 A 192.0.2.10\"]\n\n[[endpoint]]\naddress = \"192.0.2.10\"\n\
         host = \"mx1.example.test\"\ncert = \"mx1\"\n\n[expect]\nresult = \"OPP\"\n"
    )
}

/// Dates outside what a certificate can encode, or offsets whose arithmetic overflows, are
/// load errors at the field (issue 14: they panicked in the loader and in rcgen). Dates at
/// the edges of the calendar load and issue.
#[test]
fn dates_beyond_the_certificate_calendar_are_located_errors() {
    let path = Path::new("dates.toml");
    let cases: &[(&str, &str, usize)] = &[
        ("", "not_after = \"+100000000d\"", 10),
        ("", "not_after = \"+106751991167300d\"", 10),
        ("", "not_before = \"-99999999999999999999d\"", 10),
        ("", "not_before = \"1949-12-31T23:59:59Z\"", 10),
        ("clock = \"9999-06-01T00:00:00Z\"", "", 4),
        ("clock = \"0000-06-01T00:00:00Z\"", "", 4),
        ("clock = \"1950-01-02T00:00:00Z\"", "", 4),
    ];
    for (clock, dates, line) in cases {
        let text = dated(clock, dates);
        match scenario::load_str(path, &text) {
            Err(ScenarioError::At { location, .. }) => {
                assert!(
                    location.starts_with(&format!("dates.toml:{line}:")),
                    "{clock} {dates}: {location}"
                );
            }
            Err(other) => panic!("{clock} {dates}: unlocated error {other}"),
            Ok(_) => panic!("{clock} {dates}: loaded"),
        }
    }
    let keys = danesim::pki::KeyStore::embedded();
    for (clock, dates) in [
        ("clock = \"9998-06-01T00:00:00Z\"", ""),
        ("clock = \"1950-03-01T00:00:00Z\"", ""),
        ("", "not_after = \"9999-12-31T23:59:59Z\""),
        ("", "not_before = \"1950-01-01T00:00:00Z\""),
    ] {
        let s = scenario::load_str(path, &dated(clock, dates)).unwrap_or_else(|e| panic!("{clock} {dates}: {e}"));
        danesim::world::prepare(&s, &keys).unwrap_or_else(|e| panic!("{clock} {dates}: {e}"));
    }
}

/// The error a scenario text gives, as (location, message); panics if it loads.
fn refused(path: &Path, text: &str) -> (String, String) {
    match scenario::load_str(path, text) {
        Err(ScenarioError::At { location, message, .. }) => (location, message),
        Err(other) => panic!("unlocated error {other}"),
        Ok(_) => panic!("loaded:\n{text}"),
    }
}

/// A two-attempt timeline scenario with `retry` and `fault_delay` (a slow MX answer) as given.
fn timed(retry: &str, fault_delay: &str) -> String {
    format!(
        "id = \"timed\"\ntitle = \"timed\"\nteaches = \"timed\"\n\n[[zone]]\norigin = \"example.test.\"\n\
         records = [\"@ MX 10 mx1\", \"mx1 A 192.0.2.10\"]\n\n[[endpoint]]\naddress = \"192.0.2.10\"\n\
         host = \"mx1.example.test\"\nbehaviour = \"no-starttls\"\n\n[[fault]]\nqname = \"example.test.\"\n\
         kind = \"slow\"\ndelay = \"{fault_delay}\"\n\n[timeline]\nattempts = 2\nexpect = [\"OPP\", \"OPP\"]\n\
         retry = [\"{retry}\"]\n\n[expect]\nresult = \"OPP\"\n"
    )
}

/// One duration syntax (issue 14): what a report prints (`T+1h30m`) is what `retry` reads,
/// and a huge number is a load error naming the range, not `T+160850727062149d`.
#[test]
fn durations_are_one_bounded_syntax() {
    let path = Path::new("timed.toml");
    for ok in ["1h30m", "90s", "2d", "1h 30m", "400d", "0s"] {
        let s = scenario::load_str(path, &timed(ok, "400ms")).unwrap_or_else(|e| panic!("{ok}: {e}"));
        let t = s.timeline.expect("a timeline");
        let printed = danesim::runner::offset(t.offset(2));
        assert_eq!(
            printed.trim_start_matches("T+"),
            danesim::duration::format(t.retry[0]),
            "{ok}"
        );
        let again = scenario::load_str(path, &timed(printed.trim_start_matches("T+"), "400ms"))
            .unwrap_or_else(|e| panic!("{printed} does not read back: {e}"));
        assert_eq!(again.timeline.expect("a timeline").retry, t.retry, "{ok}");
    }
    let retry_line = 22;
    for (bad, what) in [
        ("999999999999999999d", "out of range"),
        ("401d", "out of range"),
        ("soon", "not a duration"),
        ("10", "not a duration"),
        ("-1h", "not a duration"),
    ] {
        let (location, message) = refused(path, &timed(bad, "400ms"));
        assert_eq!(location, format!("timed.toml:{retry_line}:11"), "{bad}: {message}");
        assert!(
            message.contains(what) && message.contains("0s to 400d"),
            "{bad}: {message}"
        );
    }
    // Real waits: at most 30s; the column is the text's.
    for bad in ["31s", "99999999999999ms", "1 fortnight"] {
        let (location, message) = refused(path, &timed("1h", bad));
        assert_eq!(location, "timed.toml:17:10", "{bad}: {message}");
        assert!(message.contains("0s to 30s"), "{bad}: {message}");
    }
    scenario::load_str(path, &timed("1h", "1s500ms")).expect("1s500ms is a real wait");
    // Certificate offsets read the same syntax, with their calendar check kept.
    let dates = Path::new("dates.toml");
    let s = scenario::load_str(dates, &dated("", "not_after = \"+1h30m\"")).expect("+1h30m is an offset");
    assert_eq!(s.certs[0].not_after - s.clock, time::Duration::minutes(90));
    let (location, message) = refused(dates, &dated("", "not_after = \"+soon\""));
    assert!(location.starts_with("dates.toml:10:"), "{location}");
    assert!(message.contains("not an offset from the clock"), "{message}");
    // Whole numbers of fixed units: no fractions, no average months or years.
    for (offset, why) in [("+1.5d", "whole numbers only"), ("+5y", "no fixed length")] {
        let (location, message) = refused(dates, &dated("", &format!("not_after = \"{offset}\"")));
        assert!(location.starts_with("dates.toml:10:"), "{location}");
        assert!(message.contains(why), "{offset}: {message}");
    }
}

/// An invariant that names nothing is a load error at the invariant (issue 14: `SNI(host) =`
/// loaded as a check that the ClientHello names `.`, and every run was a violation).
#[test]
fn an_invariant_without_a_name_is_located_at_the_invariant() {
    let path = Path::new("sni.toml");
    let text = |inv: &str| {
        format!(
            "id = \"sni\"\ntitle = \"sni\"\nteaches = \"sni\"\n\n[[zone]]\norigin = \"example.test.\"\n\
             records = [\"@ MX 10 mx1\", \"mx1 A 192.0.2.10\"]\n\n[[endpoint]]\naddress = \"192.0.2.10\"\n\
             host = \"mx1.example.test\"\nbehaviour = \"no-starttls\"\n\n[expect]\nresult = \"OPP\"\n\
             invariants = [\"ONCE\", \"{inv}\"]\n"
        )
    };
    for (inv, want) in [
        ("SNI(mx1.example.test) =", "needs the name every ClientHello must carry"),
        ("SNI(mx1.example.test) = .", "`.` is not one name"),
        ("SNI() = mx1.example.test", "needs the MX host"),
        ("NOMAIL( )", "NOMAIL(host) needs the host"),
    ] {
        let (location, message) = refused(path, &text(inv));
        // Line 16 holds the invariants; the second one's text begins in column 24.
        assert_eq!(location, "sni.toml:16:24", "{inv}: {message}");
        assert!(message.contains(want), "{inv}: {message}");
    }
    scenario::load_str(path, &text("SNI(mx1.example.test) = mx1.example.test")).expect("a named SNI loads");
}
