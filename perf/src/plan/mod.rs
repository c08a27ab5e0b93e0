//! The plan: one TOML file that declares the environment, the requests and the suites.
//!
//! [`load`] reads and parses it; [`LoadedPlan::compile`] validates names, templates and
//! shapes and produces the [`compiled::Compiled`] form the engine runs. Every error names
//! the file, line, column and field. Parsing and compiling do no I/O besides reading the file.

mod backend;
mod compile;
pub mod compiled;
mod identity;
mod loaded;
mod model;
mod options;
mod scale;
mod setup;
pub mod slice;
pub(crate) mod template;
#[cfg(test)]
mod tests;
mod values;
pub(crate) mod vars;

use std::path::Path;

pub use backend::BackendKind;
pub use compiled::{Compiled, Fault, Hold, Service};
pub(crate) use loaded::position;
pub use loaded::{LoadedPlan, PlanError};
pub use options::{CompileOptions, Shard};
pub use setup::{
    APP_ENV_NAMES, AppSetup, CompareRules, CompareRulesError, DockerAppSetup, EnvironmentSetup, LocalAppSetup, PostgresSetup, RedisSetup,
    Setup, not_started,
};
pub use values::{
    Dur, Executor, FineDur, HttpVersion, Link, MetricThresholds, SloSpec, SuiteKind, Think, parse_duration, parse_fine_duration,
};

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

/// What a loaded plan gives the layers after it. These live here rather than in `loaded.rs`:
/// the compiler imports `LoadedPlan`, so `loaded.rs` must not import the compiler.
impl LoadedPlan {
    /// Validates the plan and produces what the engine runs.
    pub fn compile(&self, opts: &CompileOptions) -> Result<Compiled, PlanError> {
        compile::compile(self, opts)
    }

    /// How to set up the app and its services, without compiling the suites (`cargo perf up`
    /// needs only this), its link to the databases checked as [`LoadedPlan::compile`] checks
    /// it. Its templates are checked when the environment renders them.
    pub fn setup(&self) -> Result<Setup, PlanError> {
        compile::check_environment(self)?;
        Ok(Setup::from(&self.plan))
    }

    /// The plan's regression rule (`[compare]`), without compiling the suites (`cargo perf
    /// history` needs only this), checked as [`LoadedPlan::compile`] checks it.
    pub fn compare_rules(&self) -> Result<CompareRules, PlanError> {
        compile::compare_rules(self)
    }
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
