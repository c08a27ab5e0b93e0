//! The plan: one TOML file that declares the environment, the requests and the suites.
//!
//! [`load`] reads and parses it; [`LoadedPlan::compile`] validates names, templates and
//! shapes and produces the [`compiled::Compiled`] form the engine runs. Every error names
//! the file, line, column and field. Parsing and compiling do no I/O besides reading the file.

mod backend;
mod compile;
pub mod compiled;
mod identity;
mod model;
mod scale;
mod setup;
pub mod slice;
pub(crate) mod template;
#[cfg(test)]
mod tests;
pub(crate) mod vars;

use std::fmt;
use std::path::{Path, PathBuf};

pub use backend::BackendKind;
pub use compiled::{Compiled, Fault, Hold, Service};
pub use model::{Dur, Executor, HttpVersion, MetricThresholds, SloSpec, SuiteKind, Think, parse_duration};
pub use setup::{AppSetup, CompareRules, DockerAppSetup, EnvironmentSetup, LocalAppSetup, PostgresSetup, RedisSetup, Setup};

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

/// Part `index` (from 1) of `count` of a plan's load: `--shard K/N`, one of N machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// This shard's part of `n` things split as evenly as possible, remainders to the lowest
    /// shards: the parts of all shards add up to `n`.
    pub fn share(self, n: u32) -> u32 {
        n / self.count + u32::from(self.index - 1 < n % self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N` with 1 ≤ K ≤ N.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard: expected K/N with 1 ≤ K ≤ N, like 2/3");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What the command line changes in a plan.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Suites to run (names, kinds such as `chaos`, or `all`); empty means the plan's
    /// `default_suites` (or all of them).
    pub suites: Vec<String>,
    /// Shrink every suite to at most 30 s.
    pub quick: bool,
    /// Keep only requests with at least one of these tags (empty: all).
    pub tags: Vec<String>,
    /// Stretch or shrink every selected suite to this length (nightly runs by hand).
    pub duration: Option<std::time::Duration>,
    /// Scale the virtual users of closed-model scenarios so that their peak is this.
    pub users: Option<u32>,
    /// Send only this part of the load (`--shard K/N`); not part of a suite's identity, so
    /// every shard's summary, and their merge, compare with a whole run's baseline.
    pub shard: Option<Shard>,
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

/// Parses plan text; `path` is only used in messages. Unknown keys, wrong types and bad
/// durations are reported here with their position; references between tables are checked by
/// [`LoadedPlan::compile`].
pub fn parse(path: &Path, source: String) -> Result<LoadedPlan, PlanError> {
    let file = path.display().to_string();
    let plan: model::Plan = {
        let de = toml::Deserializer::parse(&source).map_err(|e| toml_error(&file, &source, &e, ""))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = field_path(e.path());
            toml_error(&file, &source, e.inner(), &field)
        })?
    };
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(source.as_bytes()));
    Ok(LoadedPlan { path: path.to_path_buf(), source, plan, hash })
}

impl LoadedPlan {
    /// Validates the plan and produces what the engine runs.
    pub fn compile(&self, opts: &CompileOptions) -> Result<Compiled, PlanError> {
        compile::compile(self, opts)
    }

    /// How to set up the app and its services, without compiling the suites (`cargo perf up`
    /// needs only this). Its templates are checked when the environment renders them.
    pub fn setup(&self) -> Setup {
        Setup::from(&self.plan)
    }

    /// The plan's regression rule (`[compare]`), without compiling the suites (`cargo perf
    /// history` needs only this).
    pub fn compare_rules(&self) -> CompareRules {
        CompareRules::from(&self.plan.compare)
    }

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

fn toml_error(file: &str, source: &str, e: &toml::de::Error, field: &str) -> PlanError {
    let (line, column) = e.span().map_or((1, 1), |s| position(source, s.start));
    PlanError { file: file.to_string(), line, column, field: field.to_string(), message: e.message().trim().to_string() }
}

/// `requests.book.path` from serde_path_to_error's path, without toml's span internals.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        let part = match seg {
            Segment::Seq { index } => format!("[{index}]"),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key.starts_with("$__") {
                    continue;
                }
                format!(".{key}")
            }
            Segment::Unknown => continue,
        };
        out.push_str(&part);
    }
    out.trim_start_matches('.').to_string()
}
