//! Errors in scenario files: always with the file, line and column, and a hint.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::path::Path;
use thiserror::Error;

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

    #[error("{location}: {message}")]
    #[diagnostic(code(danesim::scenario::invalid))]
    At {
        /// `file:line:col`, 1-based, as editors and CI annotations expect.
        location: String,
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
}

impl ScenarioError {
    /// An error at `span` (byte offsets into `source`).
    pub fn at(
        path: &Path,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioError {
        let start = span.start.min(source.len());
        let end = span.end.clamp(start, source.len());
        let (line, col) = line_col(source, start);
        ScenarioError::At {
            location: format!("{}:{line}:{col}", path.display()),
            message: message.into(),
            src: NamedSource::new(path.display().to_string(), source.to_string()),
            span: (start, end - start).into(),
            label: label.into(),
            help,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 9), (2, 4));
    }
}
