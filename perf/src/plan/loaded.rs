//! A parsed plan with its source, and the error that points into it: every later check
//! reports the file, line, column and field through [`LoadedPlan::error_at`].

use std::fmt;
use std::path::PathBuf;

use super::model;

/// A bad plan: where, which field, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub file: String,
    /// 1-based; 0 when the error has no position (the file could not be read).
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, for example `requests.book.path`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanError {}

/// A parsed plan with its source, for positions in later errors.
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    pub source: String,
    pub(crate) plan: model::Plan,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
}

impl LoadedPlan {
    /// An error at a byte span of the source.
    pub(crate) fn error_at(&self, span: std::ops::Range<usize>, field: &str, message: impl Into<String>) -> PlanError {
        let (line, column) = position(&self.source, span.start);
        PlanError { file: self.path.display().to_string(), line, column, field: field.to_string(), message: message.into() }
    }

    /// An error that has no place in the file (a command-line choice, for instance).
    pub(crate) fn error(&self, field: &str, message: impl Into<String>) -> PlanError {
        PlanError { file: self.path.display().to_string(), line: 0, column: 0, field: field.to_string(), message: message.into() }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn position(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..source.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
