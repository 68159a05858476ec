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
