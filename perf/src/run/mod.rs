//! Orchestration of one gate run (`cargo xtask perf`): everything between the command line and
//! the pure parts.
//!
//! 1. Validate every input before anything starts: the plan (compiled for the selected suites)
//!    and the baseline summaries. Bad input is [`GateError::Input`] (exit 2) and no load is sent.
//! 2. Start the environment (local, docker or external backend).
//! 3. Per suite: scrape the app's metrics, run the load while sampling the services' resource
//!    use every second, scrape again, build the summary and write `<out>/<suite>.json`
//!    atomically; compare with the baseline; when something regressed, run the suite once more
//!    and keep the verdict only if the re-run regresses too.
//! 4. Stop the environment (also on errors and Ctrl-C): [`lifetime`] owns every environment's
//!    lifetime, for the gate, A/B mode and the experiment alike.
//! 5. Build the [`Report`]; the caller renders and publishes it.

pub mod ab;
pub mod baseline;
pub mod experiment;
mod judge;
pub mod lifetime;
mod measure;
pub mod measured;
pub mod outputs;
mod prepare;
pub mod scrape;
mod stress;
mod underneath;

use std::path::{Path, PathBuf};

use crate::env::{BackendChoice, BackendKind, Environment, StartOptions};
use crate::plan::SuiteKind;
use crate::plan::compiled::{Special, Suite};
use crate::render::{BaselineSource, Confirmation, Report, RunFacts, SuiteReport};
use crate::summary::{self, RunContext};

pub use crate::util::Notes;
pub use baseline::{Baselines, Pick};
pub use judge::{Judged, judge};
use lifetime::{Spec, with_environment};
pub use measure::measure_suite;
pub use prepare::{BaselineChoice, GateOptions, Prepared, plan_dir, prepare, prepare_on, resolve_testbed};

/// Why a gate run could not produce a verdict. Every variant is exit 2 except
/// [`GateError::Interrupted`] (130).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Bad input: plan, baseline, options. Nothing was started.
    #[error("{0}")]
    Input(String),
    /// The environment did not come up or broke.
    #[error("{0}")]
    Environment(String),
    #[error("{0}")]
    Io(String),
    #[error("interrupted")]
    Interrupted,
}

impl GateError {
    pub fn exit_code(&self) -> u8 {
        match self {
            GateError::Interrupted => 130,
            _ => 2,
        }
    }
}

/// What a finished run produced.
pub struct GateRun {
    pub report: Report,
    /// Summary files written, in suite order.
    pub written: Vec<PathBuf>,
}

/// Steps 2 to 5 for a prepared run. Suites that set network faults run last, in an
/// environment of their own whose app reaches PostgreSQL and Redis through the fault proxies;
/// every other suite measures the app connected directly.
pub async fn run(opts: &GateOptions, prepared: &Prepared) -> Result<GateRun, GateError> {
    let (direct, proxied): (Vec<&Suite>, Vec<&Suite>) = prepared.compiled.suites.iter().partition(|s| !needs_proxies(s));
    let mut reports = Vec::new();
    let mut written = Vec::new();
    for (suites, fault_proxies) in [(direct, false), (proxied, true)] {
        if suites.is_empty() {
            continue;
        }
        let (r, w) = run_in_environment(opts, prepared, &suites, fault_proxies).await?;
        reports.extend(r);
        written.extend(w);
    }
    let facts = reports.first().map(|r| RunFacts::from_summary(&r.summary));
    let Some(facts) = facts else {
        return Err(GateError::Input("no suite to run".into()));
    };
    Ok(GateRun { report: Report { facts, suites: reports, invalid_reasons: Vec::new() }, written })
}

/// A chaos suite with `latency`, `loss`, `reset`, `blackhole` or `heal` actions.
fn needs_proxies(suite: &Suite) -> bool {
    matches!(&suite.special, Some(Special::Chaos(c)) if c.needs_proxy())
}

/// Starts an environment, runs `suites` in it and stops it.
async fn run_in_environment(
    opts: &GateOptions,
    prepared: &Prepared,
    suites: &[&Suite],
    fault_proxies: bool,
) -> Result<(Vec<SuiteReport>, Vec<PathBuf>), GateError> {
    let start = StartOptions {
        plan_dir: prepared.plan_dir.clone(),
        logs_dir: opts.out_dir.join("logs"),
        app_url: opts.app_url.clone(),
        cancel: opts.cancel.clone(),
        fault_proxies,
        build_env: Vec::new(),
        notes: opts.notes.clone(),
    };
    let proxied = if fault_proxies { ", the app reaching postgres and redis through fault proxies" } else { "" };
    opts.notes.say(format!("starting the environment ({}{proxied})", backend_words(opts.backend, prepared.backend)));
    let spec = Spec { name: String::new(), backend: prepared.backend.into(), setup: prepared.setup.clone(), start };
    with_environment(&opts.notes, &opts.cancel, spec, async |env: &mut Environment| {
        for s in env.services() {
            opts.notes.say(format!("  {}: {}", s.service.as_str(), s.url));
        }
        let ctx = run_context(opts, prepared, &prepared.plan_dir);
        run_suites(opts, prepared, suites, env, &ctx).await
    })
    .await
}

/// What every summary of this run records besides the measurements; `source_dir` is the tree
/// the app was built from (its git commit is recorded).
pub(crate) fn run_context(opts: &GateOptions, prepared: &Prepared, source_dir: &Path) -> RunContext {
    RunContext {
        git: summary::git_info(source_dir),
        backend: prepared.backend.as_str().to_string(),
        host: summary::host_info(),
        plan_hash: prepared.plan_hash.clone(),
        testbed: Some(prepared.testbed.clone()),
        quick: opts.compile.quick,
        tags: opts.compile.tags.clone(),
        tool_version: crate::TOOL_VERSION.to_string(),
    }
}

async fn run_suites(
    opts: &GateOptions,
    prepared: &Prepared,
    suites: &[&Suite],
    env: &mut Environment,
    ctx: &RunContext,
) -> Result<(Vec<SuiteReport>, Vec<PathBuf>), GateError> {
    let rules = &prepared.compiled.compare;
    let mut reports = Vec::new();
    let mut written = Vec::new();
    for &suite in suites {
        // Special suites (spike, stress, soak, chaos) are judged by their own checks; their
        // numbers are shaped by what was done to the app, so no baseline comparison.
        let pick = if suite.kind == SuiteKind::Load { prepared.baselines.pick(&suite.name) } else { None };
        let first = measure_suite(opts, prepared, env, suite, ctx).await?;
        let (summary, comparison, confirmation) = match pick {
            Some(Pick::Found { summary: b, across, .. }) => {
                let env: &mut Environment = &mut *env;
                let mut judged =
                    judge(b, first, rules, opts.confirm, &opts.notes, move || measure_suite(opts, prepared, env, suite, ctx)).await?;
                judge::distrust_busy_regression(&mut judged);
                if let Some(why) = across {
                    judged.comparison.notes.insert(0, format!("compared across testbeds (--baseline-any-testbed): {why}"));
                }
                (judged.summary, Some(judged.comparison), judged.confirmation)
            }
            _ => (first, None, Confirmation::NotRun),
        };
        let (report, file) = finish_suite(opts, prepared, pick, summary, comparison, confirmation)?;
        written.push(file);
        reports.push(report);
    }
    Ok((reports, written))
}

/// Writes a judged suite's summary as `<out>/<suite>.json` and makes its part of the report:
/// where its baseline came from (or why there was none to compare with).
pub(crate) fn finish_suite(
    opts: &GateOptions,
    prepared: &Prepared,
    pick: Option<&Pick>,
    summary: summary::Summary,
    comparison: Option<crate::compare::SuiteComparison>,
    confirmation: Confirmation,
) -> Result<(SuiteReport, PathBuf), GateError> {
    let file = opts.out_dir.join(format!("{}.json", summary.suite));
    summary::write_atomic(&file, &summary).map_err(|e| GateError::Io(e.to_string()))?;
    let (baseline_source, baseline_summary) = match (pick, &opts.baseline) {
        (Some(Pick::Found { summary: b, path, .. }), BaselineChoice::Path { source, .. }) => {
            let source = match source {
                BaselineSource::Committed { .. } => BaselineSource::Committed { path: report_path(path) },
                other => other.clone(),
            };
            (source, Some((**b).clone()))
        }
        (Some(Pick::NotComparable { why, testbeds }), _) => {
            (BaselineSource::NotComparable { why: why.clone(), testbed: prepared.testbed.key.clone(), available: testbeds.clone() }, None)
        }
        _ => (BaselineSource::None, None),
    };
    Ok((SuiteReport { summary, comparison, baseline: baseline_source, baseline_summary, confirmation }, file))
}

/// `path` relative to the current directory when it is inside it, for messages.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

/// How reports and the pull-request comment name a file: relative to the root of the git
/// repository it is in, so that a runner's `/home/runner/work/…` never shows; outside a
/// repository, as [`display_path`] does.
pub fn report_path(path: &Path) -> String {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let dir = if abs.is_dir() { abs.as_path() } else { abs.parent().unwrap_or(Path::new("/")) };
    match crate::util::git(dir, &["rev-parse", "--show-toplevel"]) {
        Ok(top) => match abs.strip_prefix(&top) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => display_path(path),
        },
        Err(_) => display_path(path),
    }
}

fn backend_words(choice: BackendChoice, resolved: BackendKind) -> &'static str {
    match (choice, resolved) {
        (BackendChoice::Auto, BackendKind::Docker) => "auto: a Docker engine answers, so Docker",
        (BackendChoice::Auto, _) => "auto: no Docker engine answers, so local processes",
        (_, BackendKind::Local) => "local processes",
        (_, BackendKind::Docker) => "Docker",
        (_, BackendKind::External) => "external: nothing started",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_name_files_from_the_repository_root_wherever_the_gate_runs() {
        let repo = tempfile::tempdir().unwrap();
        crate::util::git(repo.path(), &["init", "-q"]).unwrap();
        let file = repo.path().join("service/results/baseline/local-2cpu/baseline.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "{}").unwrap();
        // The current directory (the test runner's) is not the repository.
        assert_eq!(report_path(&file), "service/results/baseline/local-2cpu/baseline.json");
        assert_eq!(report_path(&repo.path().join("service/results/baseline")), "service/results/baseline");
        // Outside any repository: the path as given.
        let loose = tempfile::tempdir().unwrap();
        let outside = loose.path().join("b.json");
        std::fs::write(&outside, "{}").unwrap();
        assert_eq!(report_path(&outside), outside.display().to_string());
    }
}
