//! Fuzz the scenario loader (TOML → checked model) and the world it prepares (certificates,
//! signed zones), with arbitrary file contents.
//!
//! Properties: nothing panics; every refusal names its place as `file:line:col` (the rule for
//! load errors), and stays short (an error quotes a window of its line, never the file).
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use danesim::pki::KeyStore;
use danesim::scenario::load_str;
use danesim::world::build::prepare;
use libfuzzer_sys::fuzz_target;

static KEYS: LazyLock<KeyStore> = LazyLock::new(KeyStore::embedded);

fuzz_target!(|data: &[u8]| {
    // Bytes that are not UTF-8 are refused before parsing (the encoding error has its own
    // test); the loader proper takes text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load_str(Path::new("fuzz.toml"), text) {
        Ok(scenario) => {
            // A scenario that loads must build: its errors are data, never a panic.
            let _ = prepare(&scenario, &KEYS);
        }
        Err(e) => {
            let shown = e.to_string();
            let located = shown
                .strip_prefix("fuzz.toml:")
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(line, rest)| {
                    line.parse::<usize>().is_ok_and(|l| l >= 1)
                        && rest
                            .split_once(':')
                            .is_some_and(|(col, _)| col.parse::<usize>().is_ok_and(|c| c >= 1))
                });
            assert!(located, "a load error without file:line:col: {shown}");
            assert!(shown.len() <= 8 * 1024, "an error of {} bytes", shown.len());
        }
    }
});
