//! What every summary of a run records besides its measurements, and which suites measure
//! through the fault proxies.

use std::path::Path;

use crate::plan::compiled::{Special, Suite};
use crate::summary::{self, RunContext};

use super::options::GateOptions;
use super::prepare::Prepared;

/// What every summary of this run records besides the measurements; `source_dir` is the tree
/// the app was built from (its git commit is recorded).
pub(crate) fn run_context(opts: &GateOptions, prepared: &Prepared, source_dir: &Path) -> RunContext {
    RunContext {
        git: summary::git_info(source_dir),
        backend: prepared.backend,
        host: summary::host_info(),
        plan_hash: prepared.plan_hash.clone(),
        testbed: Some(prepared.testbed.clone()),
        quick: opts.compile.quick,
        tags: opts.compile.tags.clone(),
        tool_version: crate::TOOL_VERSION.to_string(),
    }
}

/// A chaos suite with `latency`, `loss`, `reset`, `blackhole` or `heal` actions: its app
/// reaches PostgreSQL and Redis through the fault proxies.
pub(crate) fn needs_proxies(suite: &Suite) -> bool {
    matches!(&suite.special, Some(Special::Chaos(c)) if c.needs_proxy())
}
