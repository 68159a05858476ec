//! Offsets into a TOML string's value, mapped back to the file.
//!
//! An error inside a string (a bad record line) is found at a byte offset of the decoded
//! value; in the file, every escape before it (`\n`, `\"`, `\u00e9`, a line-ending backslash
//! in a multi-line string, toml.io §String) takes another number of bytes. Adding the
//! decoded offset to the string's start put columns in the wrong place after an escape, and
//! off a char boundary before non-ASCII text.

/// The byte offset, within the string token `raw` (quotes included, as `toml::Spanned` spans
/// it), at which byte `decoded` of the value `value` stands. An offset inside an escape maps
/// to the escape's start; one past the end to the closing quote. `None` when `raw` does not
/// decode to `value` (then the caller has no better position than the token's start).
pub fn source_offset(raw: &str, value: &str, decoded: usize) -> Option<usize> {
    let (delim, basic) = if raw.starts_with("\"\"\"") {
        ("\"\"\"", true)
    } else if raw.starts_with("'''") {
        ("'''", false)
    } else if raw.starts_with('"') {
        ("\"", true)
    } else if raw.starts_with('\'') {
        ("'", false)
    } else {
        return None;
    };
    let multi = delim.len() == 3;
    let mut start = delim.len();
    if multi {
        // A newline right after the opening delimiter is not part of the value.
        let rest = raw.get(start..)?;
        start += if rest.starts_with('\n') {
            1
        } else if rest.starts_with("\r\n") {
            2
        } else {
            0
        };
    }
    let end = raw.len().checked_sub(delim.len()).filter(|e| *e >= start)?;
    let body = raw.get(start..end)?;
    let target = decoded.min(value.len());
    if !basic {
        // Literal strings have no escapes: the value is the body.
        return (body == value).then_some(start + target);
    }
    let bytes = body.as_bytes();
    let (mut i, mut d) = (0usize, 0usize);
    while d < target {
        if i >= body.len() {
            return None;
        }
        let (raw_len, piece): (usize, Option<char>) = if bytes[i] == b'\\' {
            let next = *bytes.get(i + 1)?;
            if multi && matches!(next, b' ' | b'\t' | b'\r' | b'\n') {
                // A line-ending backslash trims itself and all whitespace and newlines after it.
                let skip = body[i + 1..]
                    .find(|c: char| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                    .unwrap_or(body.len() - i - 1);
                (1 + skip, None)
            } else {
                let (len, c) = match next {
                    b'b' => (2, '\u{8}'),
                    b'e' => (2, '\u{1b}'),
                    b'f' => (2, '\u{c}'),
                    b'n' => (2, '\n'),
                    b'r' => (2, '\r'),
                    b't' => (2, '\t'),
                    b'\\' => (2, '\\'),
                    b'"' => (2, '"'),
                    b'x' => (4, hex(body.get(i + 2..i + 4)?)?),
                    b'u' => (6, hex(body.get(i + 2..i + 6)?)?),
                    b'U' => (10, hex(body.get(i + 2..i + 10)?)?),
                    _ => return None,
                };
                (len, Some(c))
            }
        } else {
            let c = body[i..].chars().next()?;
            (c.len_utf8(), Some(c))
        };
        if let Some(c) = piece {
            let mut buf = [0u8; 4];
            let s = c.encode_utf8(&mut buf);
            // What was decoded so far must be the value, or the mapping means nothing.
            if value.get(d..d + s.len()) != Some(s) {
                return None;
            }
            if d + s.len() > target {
                // The offset falls inside this character: point at where it is written.
                return Some(start + i);
            }
            d += s.len();
        }
        i += raw_len;
    }
    Some(start + i)
}

fn hex(digits: &str) -> Option<char> {
    char::from_u32(u32::from_str_radix(digits, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The value toml decodes from `raw`, and the offset of `needle` in the file.
    fn check(raw: &str, needle: &str, in_raw: &str) {
        let doc: toml::Table = toml::from_str(&format!("v = {raw}")).expect("valid TOML");
        let value = doc["v"].as_str().expect("a string");
        let d = value.find(needle).expect("needle in the value");
        let at = source_offset(raw, value, d).expect("maps");
        assert!(
            raw[at..].starts_with(in_raw),
            "{raw}: offset {at} is at `{}`",
            &raw[at..]
        );
    }

    #[test]
    fn escapes_before_the_offset_are_counted_in_the_file() {
        check(r#""a\tb X""#, "X", "X");
        check(r#""\"é\" X""#, "X", "X");
        check(r#""\u00e9\U0001F600 X""#, "X", "X");
        check(r#""\\\n X""#, "X", "X");
        check(r#""é\té X""#, "X", "X");
        // An offset inside an escaped character points at the escape.
        let raw = r#""a\u00e9b""#;
        assert_eq!(source_offset(raw, "aéb", 2), Some(2));
    }

    #[test]
    fn literal_and_multi_line_strings() {
        check(r"'a\tb X'", "X", "X");
        check("'''\na\\tb X'''", "X", "X");
        check("\"\"\"\na\\tb X\"\"\"", "X", "X");
        check("\"\"\"a \\\n    \n   b X\"\"\"", "X", "X");
        check("\"\"\"a \\  \r\n   b X\"\"\"", "X", "X");
    }

    #[test]
    fn a_raw_text_that_is_not_the_value_maps_nothing() {
        assert_eq!(source_offset("\"abc\"", "abd", 3), None);
        assert_eq!(source_offset("abc", "abc", 1), None);
        assert_eq!(source_offset("\"", "", 0), None);
    }

    proptest! {
        /// Any value, written with random escapes, maps every char start to where it is written.
        #[test]
        fn every_character_maps_to_its_source(value in "(?s).{0,40}", escape in proptest::collection::vec(any::<bool>(), 40)) {
            let mut raw = String::from("\"");
            let mut starts = Vec::new();
            for (n, c) in value.chars().enumerate() {
                starts.push(raw.len());
                match c {
                    '"' => raw.push_str("\\\""),
                    '\\' => raw.push_str("\\\\"),
                    c if (c as u32) < 0x20 || c == '\u{7f}' || escape[n % 40] => raw.push_str(&format!("\\U{:08X}", c as u32)),
                    c => raw.push(c),
                }
            }
            raw.push('"');
            let doc: toml::Table = toml::from_str(&format!("v = {raw}")).expect("valid TOML");
            prop_assert_eq!(doc["v"].as_str(), Some(value.as_str()));
            for ((d, _), s) in value.char_indices().zip(&starts) {
                prop_assert_eq!(source_offset(&raw, &value, d), Some(*s));
            }
            prop_assert_eq!(source_offset(&raw, &value, value.len()), Some(raw.len() - 1));
        }

        #[test]
        fn never_panics(raw in "(?s).{0,30}", value in "(?s).{0,30}", d in 0usize..40) {
            let _ = source_offset(&raw, &value, d);
        }
    }
}
