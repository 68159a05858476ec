//! Errors in scenario files: always with the file, line and column, and a hint.
//!
//! An error quotes at most a window of the offending line ([`EXCERPT_CHARS`] characters), and
//! its message, label and help are cut to a few hundred bytes, so that a hostile file (a 50 MB
//! line, a key a megabyte long) gives a short error, in time linear in the file's size.

use miette::{Diagnostic, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use std::ops::Range;
use std::path::Path;
use thiserror::Error;

/// The largest scenario file danesim reads: scenarios are a few kilobytes, and this bound
/// keeps a mistaken path (a log, an image, `/dev/zero`) from filling memory.
pub const MAX_SCENARIO_BYTES: u64 = 8 * 1024 * 1024;

/// The most characters of the offending line an error quotes.
pub const EXCERPT_CHARS: usize = 120;
/// Characters of the window before the error's start, when the line is longer.
const EXCERPT_BEFORE: usize = 40;
/// Bounds (bytes) of the texts of an error: a message, a label and a help can all quote
/// what the author wrote, which may be huge.
const MESSAGE_BYTES: usize = 400;
const LABEL_BYTES: usize = 100;
const HELP_BYTES: usize = 800;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("{path}: cannot read: {source}")]
    #[diagnostic(
        code(danesim::scenario::read),
        help("check the path; `danesim list` shows the scenarios it finds")
    )]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A FIFO, socket, device or directory where a scenario file was expected: reading it could
    /// block forever or never end.
    #[error("{path}:1:1: {kind}, not a regular file; scenarios are read from regular files only")]
    #[diagnostic(
        code(danesim::scenario::not_regular),
        help(
            "replace it with a regular file of TOML text (a symbolic link to one is fine), or rename it so that \
             its name does not end in `.toml`"
        )
    )]
    NotRegular { path: String, kind: &'static str },

    #[error("{path}:1:1: larger than the scenario size limit of {limit} bytes (8 MiB)")]
    #[diagnostic(
        code(danesim::scenario::too_large),
        help(
            "a scenario is a short TOML file: check that this is the file you meant, or split it into several \
             scenarios (scenarios/README.md, \"Limits\")"
        )
    )]
    TooLarge { path: String, limit: u64 },

    /// A directory symbolic link back to one of its own ancestors: walking it would never end.
    #[error("{path}: a directory link loop: it leads back to {ancestor}")]
    #[diagnostic(
        code(danesim::scenario::link_loop),
        help(
            "remove the link, or name the scenario directories without it; discovery follows directory links \
             but refuses loops (scenarios/README.md, \"Limits\")"
        )
    )]
    LinkLoop { path: String, ancestor: String },

    #[error("{path}: directories nested deeper than {limit} levels")]
    #[diagnostic(
        code(danesim::scenario::too_deep),
        help(
            "scenario directories are a few levels deep; check for links that nest directories (scenarios/README.md, \"Limits\")"
        )
    )]
    TooDeep { path: String, limit: usize },

    #[error("{location}: {message}")]
    #[diagnostic(code(danesim::scenario::invalid))]
    At {
        /// `file:line:col`, 1-based, as editors and CI annotations expect.
        location: String,
        message: String,
        #[source_code]
        src: Excerpt,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
}

impl ScenarioError {
    /// An error at `span` (byte offsets into `source`; clamped to it and to char boundaries).
    /// Linear in the length of `source`: the excerpt is a window of the span's line.
    pub fn at(
        path: &Path,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioError {
        let start = floor_char_boundary(source, span.start);
        let end = floor_char_boundary(source, span.end.max(start));
        let (line, col) = line_col(source, start);
        let src = Excerpt::new(path.display().to_string(), source, start, line);
        // The label stays inside the quoted window.
        let window = src.offset..src.offset + src.text.len();
        let lstart = start.clamp(window.start, window.end);
        let lend = end.clamp(lstart, window.end);
        ScenarioError::At {
            location: format!("{}:{line}:{col}", path.display()),
            message: truncate(message.into(), MESSAGE_BYTES),
            src,
            span: (lstart, lend - lstart).into(),
            label: truncate(label.into(), LABEL_BYTES),
            help: help.map(|h| truncate(h, HELP_BYTES)),
        }
    }
}

/// The quoted part of a scenario file: one window of one line, with its position, so that
/// miette renders the true line number and columns without holding the whole file.
#[derive(Debug)]
pub struct Excerpt {
    name: String,
    /// The window, with `…` where the line was cut; never a line break.
    text: String,
    /// The byte offset in the file that `text` stands at (a leading `…` counts as before it).
    offset: usize,
    /// 0-based line of the window.
    line: usize,
    /// 0-based column (in characters) of the start of `text`.
    column: usize,
}

impl Excerpt {
    fn new(name: String, source: &str, at: usize, line: usize) -> Excerpt {
        let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[at..].find(['\n', '\r']).map_or(source.len(), |i| at + i);
        let before = source[line_start..at].char_indices().rev().map(|(i, _)| line_start + i);
        // Keep EXCERPT_BEFORE characters before `at`, and fill the rest of the window after it.
        let mut from = at;
        let mut kept = 0;
        for i in before {
            if kept == EXCERPT_BEFORE {
                break;
            }
            from = i;
            kept += 1;
        }
        let mut to = at;
        let mut count = kept;
        for (i, c) in source[at..line_end].char_indices() {
            if count == EXCERPT_CHARS {
                break;
            }
            to = at + i + c.len_utf8();
            count += 1;
        }
        // A short line is quoted whole, from its start.
        if from > line_start && count < EXCERPT_CHARS {
            let more = source[line_start..from]
                .char_indices()
                .rev()
                .take(EXCERPT_CHARS - count);
            for (i, _) in more {
                from = line_start + i;
            }
        }
        let column = column_of(source, line_start, from);
        let cut_left = from > line_start && from >= ELLIPSIS.len();
        let mut text = String::with_capacity(to - from + 2 * ELLIPSIS.len());
        if cut_left {
            text.push_str(ELLIPSIS);
        }
        text.push_str(&source[from..to]);
        if to < line_end {
            text.push_str(ELLIPSIS);
        }
        Excerpt {
            name,
            text,
            offset: if cut_left { from - ELLIPSIS.len() } else { from },
            line: line - 1,
            column: if cut_left { column.saturating_sub(1) } else { column },
        }
    }
}

const ELLIPSIS: &str = "…";

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        _before: usize,
        _after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let end = self.offset + self.text.len();
        if span.offset() < self.offset || span.offset() + span.len() > end {
            return Err(MietteError::OutOfBounds);
        }
        // The column of the span's start, for the `[file:line:col]` header.
        let rel = floor_char_boundary(&self.text, span.offset() - self.offset);
        let column = self.column + self.text[..rel].chars().count();
        let all: SourceSpan = (self.offset, self.text.len()).into();
        let contents =
            MietteSpanContents::new_named(self.name.clone(), self.text.as_bytes(), all, self.line, column, 1);
        Ok(Box::new(contents))
    }
}

/// 1-based line and column (in characters) of a byte offset; any offset is accepted (clamped
/// to the text and to a char boundary). A UTF-8 byte order mark is no column: editors hide it.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset);
    let before = &source[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, column_of(source, line_start, offset) + 1)
}

/// 0-based column in characters of `offset` on the line starting at `line_start`.
fn column_of(source: &str, line_start: usize, offset: usize) -> usize {
    let text = &source[line_start..offset];
    let text = if line_start == 0 {
        text.strip_prefix('\u{feff}').unwrap_or(text)
    } else {
        text
    };
    text.chars().count()
}

/// The largest char boundary of `s` at or below `i` (`str::floor_char_boundary` is unstable).
pub fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `s` cut to at most `max` bytes on a char boundary, with `…` when cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let cut = floor_char_boundary(&s, max.saturating_sub(ELLIPSIS.len()));
        s.truncate(cut);
        s.push_str(ELLIPSIS);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_col_is_one_based() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 9), (2, 4));
    }

    #[test]
    fn line_col_clamps_offsets_inside_a_character_and_past_the_end() {
        let s = "a = \"é\"\n";
        // 5 is the first byte of `é`, 6 its second.
        assert_eq!(line_col(s, 6), (1, 6));
        assert_eq!(line_col(s, 1000), (2, 1));
    }

    #[test]
    fn a_byte_order_mark_is_no_column() {
        let s = "\u{feff}id = 1\n";
        assert_eq!(line_col(s, 3), (1, 1));
        assert_eq!(line_col(s, 8), (1, 6));
    }

    fn render(e: &ScenarioError) -> String {
        format!("{e}\n{:?}", miette::Report::new_boxed(Box::new(clone(e))))
    }

    fn clone(e: &ScenarioError) -> ScenarioError {
        match e {
            ScenarioError::At {
                location,
                message,
                src,
                span,
                label,
                help,
            } => ScenarioError::At {
                location: location.clone(),
                message: message.clone(),
                src: Excerpt {
                    name: src.name.clone(),
                    text: src.text.clone(),
                    offset: src.offset,
                    line: src.line,
                    column: src.column,
                },
                span: *span,
                label: label.clone(),
                help: help.clone(),
            },
            _ => unreachable!("only At errors are rendered here"),
        }
    }

    #[test]
    fn a_huge_line_is_quoted_as_a_window_with_the_true_position() {
        let line = format!("k = \"{}X{}\"", "a".repeat(5_000_000), "b".repeat(5_000_000));
        let source = format!("id = \"x\"\n{line}\n");
        let at = source.find('X').unwrap();
        // Linear time is measured in ci/bench, never asserted here (a loaded host is slow).
        let e = ScenarioError::at(
            Path::new("big.toml"),
            &source,
            at..at + 1,
            "m".repeat(10_000),
            "here",
            None,
        );
        let out = render(&e);
        assert!(out.len() < 4096, "{} bytes", out.len());
        assert!(out.starts_with("big.toml:2:5000006:"), "{out}");
        assert!(out.contains("[big.toml:2:5000006]"), "{out}");
        assert!(
            out.contains("…aaaa") && out.contains("Xbbb") && out.contains("bb…"),
            "{out}"
        );
    }

    #[test]
    fn a_short_line_is_quoted_whole() {
        let source = "id = \"x\"\nk = \"abc\"\n";
        let e = ScenarioError::at(Path::new("s.toml"), source, 14..15, "bad", "here", None);
        let out = render(&e);
        assert!(out.contains("k = \"abc\""), "{out}");
        assert!(out.contains("[s.toml:2:6]"), "{out}");
        assert!(!out.contains('…'), "{out}");
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        let s = truncate("é".repeat(300), 401);
        assert!(s.len() <= 401 && s.ends_with('…'), "{}", s.len());
        assert_eq!(truncate("short".into(), 10), "short");
    }

    proptest! {
        /// Any span into any text gives an error (no panic), and it renders.
        #[test]
        fn at_never_panics(source in "(?s).{0,200}", start in 0usize..300, len in 0usize..300) {
            let e = ScenarioError::at(Path::new("p.toml"), &source, start..start + len, "m", "l", None);
            let _ = render(&e);
            let e = ScenarioError::at(Path::new("p.toml"), &source, start + len..start, "m", "l", None);
            let _ = render(&e);
        }
    }
}
