//! The plan: one TOML file that declares the environment, the requests and the suites.
//!
//! [`load`] reads and parses it; [`LoadedPlan::compile`] validates names, templates and
//! shapes and produces the [`compiled::Compiled`] form the engine runs. Every error names
//! the file, line, column and field. Parsing and compiling do no I/O besides reading the file.

pub mod compiled;
pub mod model;
pub(crate) mod template;
pub(crate) mod vars;

use std::fmt;
use std::path::{Path, PathBuf};

pub use compiled::Compiled;
pub use model::Plan;

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
    pub plan: Plan,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
}

/// What the command line changes in a plan.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Suites to run; empty means the plan's `default_suites` (or all of them).
    pub suites: Vec<String>,
    /// Shrink every suite to at most 30 s.
    pub quick: bool,
    /// Keep only requests with at least one of these tags (empty: all).
    pub tags: Vec<String>,
}

/// Reads and parses a plan file.
pub fn load(path: &Path) -> Result<LoadedPlan, PlanError> {
    let source = std::fs::read_to_string(path).map_err(|e| PlanError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the plan: {e}"),
    })?;
    parse(path, source)
}

/// Parses plan text; `path` is only used in messages.
pub fn parse(path: &Path, source: String) -> Result<LoadedPlan, PlanError> {
    let _ = (path, source);
    todo!("plan parsing is being written")
}

impl LoadedPlan {
    /// Validates the plan and produces what the engine runs.
    pub fn compile(&self, opts: &CompileOptions) -> Result<Compiled, PlanError> {
        let _ = opts;
        todo!("plan compilation is being written")
    }
}
