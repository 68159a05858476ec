//! Fuzz the endpoint's SMTP command parser (RFC 5321 §4.1) with arbitrary command lines.
//!
//! Properties: parsing never panics, and whatever parses renders back to a line that parses
//! to the same command (the parser and `render_command` are inverses, so a transcript that
//! records rendered commands records what the client meant).
#![no_main]

use danesim::smtp::{parse_command, render_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok(command) = parse_command(line) {
        let rendered = render_command(&command);
        assert_eq!(
            parse_command(rendered.as_bytes()).as_ref(),
            Ok(&command),
            "`{rendered}` does not parse back to {command:?}"
        );
    }
});
