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
//! 4. Stop the environment (also on errors and Ctrl-C: `Environment`'s `Drop`).
//! 5. Build the [`Report`]; the caller renders and publishes it.

pub mod ab;
pub mod baseline;
pub mod experiment;
pub mod scrape;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::compare::{SuiteComparison, compare_suite};
use crate::engine::{ProgressMode, RunClock, RunOptions, run_suite};
use crate::env::{BackendChoice, BackendKind, Environment, ResourceSample, Service, StartOptions};
use crate::faults::ProxyStats;
use crate::plan::compiled::{ChaosAction, ChaosVerb, Compiled, Fault, Special, Suite};
use crate::plan::{CompareRules, Setup, SuiteKind};
use crate::special::Observations;
use crate::plan::CompileOptions;
use crate::render::{BaselineSource, Confirmation, Report, RunFacts, SuiteReport};
use crate::summary::{self, AppMetrics, Event, ResourceUsage, RunContext, Summary, Testbed};

pub use baseline::{Baselines, Pick};

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

/// Where the baseline comes from.
#[derive(Debug, Clone)]
pub enum BaselineChoice {
    /// No comparison at all.
    None,
    /// A folder of `<suite>.json` (the committed `results/baseline/` by default) or one file;
    /// `source` is how the report names it.
    Path { path: PathBuf, source: BaselineSource },
}

/// Everything one gate run needs, already resolved from the command line.
#[derive(Debug, Clone)]
pub struct GateOptions {
    pub plan_path: PathBuf,
    pub compile: CompileOptions,
    pub backend: BackendChoice,
    /// `external` backend: the app's URL.
    pub app_url: Option<String>,
    /// Results folder: `<suite>.json`, `logs/`.
    pub out_dir: PathBuf,
    pub baseline: BaselineChoice,
    /// Re-run a suite once when it regressed, and fail only if the re-run regresses too.
    pub confirm: bool,
    /// Compare with the closest baseline even when it is of another testbed or an older suite
    /// definition (`--baseline-any-testbed`); the report marks it.
    pub any_testbed: bool,
    pub progress: ProgressMode,
    pub cancel: CancellationToken,
    /// Seed of every virtual user's random draws: the same requests in the same order on
    /// every run, which removes one source of noise between baseline and head.
    pub seed: u64,
    /// Environment variables added to the app's (`KEY=VALUE`), e.g. an experiment's knob.
    pub app_env: Vec<(String, String)>,
}

/// A validated run, before anything is started.
pub struct Prepared {
    pub compiled: Compiled,
    /// The compiled setup with this run's changes: `--app-env`, `PERF_*_IMAGE` (Docker).
    pub setup: Setup,
    /// SHA-256 of the plan file, recorded in every summary.
    pub plan_hash: String,
    pub baselines: Baselines,
    pub plan_dir: PathBuf,
    /// The backend this run uses (`auto` resolved).
    pub backend: BackendKind,
    /// Where this run measures: picks the baseline, recorded in every summary.
    pub testbed: Testbed,
}

impl Prepared {
    /// This run's testbed as it would be with `backend` (A/B mode runs both sides as local
    /// processes whatever `auto` found).
    pub fn testbed_for(&self, backend: BackendKind) -> Testbed {
        let t = &self.testbed;
        let runtime = if backend == BackendKind::Docker { t.runtime.clone() } else { None };
        Testbed::new(backend.as_str(), t.cpus, t.cpu_model.clone(), t.memory_gib, runtime, t.quick, t.cpu_score)
    }
}

/// Step 1: reads and validates the plan, decides the backend and the testbed, and reads and
/// picks the baselines. Starts nothing.
pub async fn prepare(opts: &GateOptions) -> Result<Prepared, GateError> {
    let (backend, testbed) = resolve_testbed(opts).await;
    prepare_on(opts, backend, testbed)
}

/// The backend this run will use (`auto` resolved by asking the Docker engine) and the testbed
/// it measures on. Starts nothing; takes a fraction of a second (the CPU calibration).
pub async fn resolve_testbed(opts: &GateOptions) -> (BackendKind, Testbed) {
    let backend = opts.backend.resolve().await;
    let runtime = match backend {
        BackendKind::Docker => crate::env::docker::engine_version().await,
        BackendKind::Local | BackendKind::External => None,
    };
    (backend, summary::testbed(backend.as_str(), opts.compile.quick, runtime))
}

/// [`prepare`] with the backend and testbed already decided ([`resolve_testbed`]).
pub fn prepare_on(opts: &GateOptions, backend: BackendKind, testbed: Testbed) -> Result<Prepared, GateError> {
    let loaded = crate::plan::load(&opts.plan_path).map_err(|e| GateError::Input(e.to_string()))?;
    let compiled = loaded.compile(&opts.compile).map_err(|e| GateError::Input(e.to_string()))?;
    let suites: Vec<(String, String)> = compiled.suites.iter().map(|s| (s.name.clone(), s.definition_hash.clone())).collect();
    let baselines = match &opts.baseline {
        BaselineChoice::None => Baselines::default(),
        BaselineChoice::Path { path, .. } => {
            baseline::load(path, baseline::Want { testbed: &testbed, suites: &suites, any_testbed: opts.any_testbed })?
        }
    };
    let mut setup = compiled.setup.clone();
    setup.app.env.extend(opts.app_env.iter().cloned());
    if backend == BackendKind::Docker {
        crate::env::docker::apply_image_overrides(&mut setup, |k| std::env::var(k).ok());
    }
    let plan_dir = plan_dir(&opts.plan_path)?;
    Ok(Prepared { setup, plan_hash: loaded.hash, compiled, baselines, plan_dir, backend, testbed })
}

impl Prepared {
    /// Load suites that have no baseline to compare with (none at all, or none comparable).
    pub fn uncompared_suites(&self) -> Vec<&str> {
        self.compiled
            .suites
            .iter()
            .filter(|s| s.kind == SuiteKind::Load && self.baselines.get(&s.name).is_none())
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// The folder the plan's relative paths are resolved against.
pub fn plan_dir(plan_path: &Path) -> Result<PathBuf, GateError> {
    let dir = match plan_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.canonicalize().map_err(|e| GateError::Input(format!("{}: {e}", dir.display())))
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
    };
    let proxied = if fault_proxies { ", the app reaching postgres and redis through fault proxies" } else { "" };
    eprintln!("starting the environment ({}{proxied})", backend_words(opts.backend, prepared.backend));
    let mut env = match Environment::start(prepared.backend.into(), &prepared.setup, &start).await {
        Ok(env) => env,
        Err(_) if opts.cancel.is_cancelled() => return Err(GateError::Interrupted),
        Err(e) => return Err(GateError::Environment(format!("the environment did not come up: {e}"))),
    };
    for s in env.services() {
        eprintln!("  {}: {}", s.service.as_str(), s.url);
    }
    let ctx = run_context(opts, prepared, &prepared.plan_dir);
    let result = run_suites(opts, prepared, suites, &mut env, &ctx).await;
    let stopped = env.shutdown().await;
    match (result, stopped) {
        (Ok(done), Ok(())) => Ok(done),
        (Ok(done), Err(e)) => {
            eprintln!("warning: stopping the environment: {e}");
            Ok(done)
        }
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(stop)) => {
            // The suite's error decides the outcome; the clean-up's is not lost.
            eprintln!("warning: stopping the environment after the failure: {stop}");
            Err(e)
        }
    }
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
                    judge(b, first, rules, opts.confirm, move || measure_suite(opts, prepared, env, suite, ctx)).await?;
                if let Some(why) = across {
                    judged.comparison.notes.insert(0, format!("compared across testbeds (--baseline-any-testbed): {why}"));
                }
                (judged.summary, Some(judged.comparison), judged.confirmation)
            }
            _ => (first, None, Confirmation::NotRun),
        };
        let file = opts.out_dir.join(format!("{}.json", suite.name));
        summary::write_atomic(&file, &summary).map_err(|e| GateError::Io(e.to_string()))?;
        written.push(file);
        let (baseline_source, baseline_summary) = match (pick, &opts.baseline) {
            (Some(Pick::Found { summary: b, path, .. }), BaselineChoice::Path { source, .. }) => {
                let source = match source {
                    BaselineSource::Committed { .. } => BaselineSource::Committed { path: display_path(path) },
                    other => other.clone(),
                };
                (source, Some(b.clone()))
            }
            (Some(Pick::NotComparable { why, testbeds }), _) => (
                BaselineSource::NotComparable { why: why.clone(), testbed: prepared.testbed.key.clone(), available: testbeds.clone() },
                None,
            ),
            _ => (BaselineSource::None, None),
        };
        reports.push(SuiteReport {
            summary,
            comparison,
            baseline: baseline_source,
            baseline_summary,
            confirmation,
        });
    }
    Ok((reports, written))
}

/// A comparison with the baseline after the confirmation re-run, if one was needed.
pub struct Judged {
    /// The summary the verdict is about: the re-run's when there was one.
    pub summary: Summary,
    pub comparison: SuiteComparison,
    pub confirmation: Confirmation,
}

/// Compares `first` with `base`; when an endpoint regressed (and `confirm` is set and the run
/// is valid), runs `rerun` once and keeps the regression only on endpoints that regress in
/// both runs. The gate and the verdict-quality experiment both decide through this.
pub async fn judge<F, Fut>(base: &Summary, first: Summary, rules: &CompareRules, confirm: bool, rerun: F) -> Result<Judged, GateError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Summary, GateError>>,
{
    let comparison = compare_suite(Some(base), &first, rules);
    if !(confirm && first.valid && comparison.has_regression()) {
        return Ok(Judged { summary: first, comparison, confirmation: Confirmation::NotRun });
    }
    let regressed: Vec<String> = comparison.regressed_endpoints().into_iter().map(str::to_string).collect();
    eprintln!("{}: regression on {}; running the suite once more to confirm", first.suite, regressed.join(", "));
    let again = rerun().await?;
    let again_cmp = confirm_comparison(Some(base), &again, rules, &regressed);
    let confirmation =
        if again_cmp.has_regression() { Confirmation::Confirmed } else { Confirmation::NotConfirmed { first_run: regressed } };
    Ok(Judged { summary: again, comparison: again_cmp, confirmation })
}

/// The re-run's comparison. A regression stands only on endpoints that regressed in both
/// runs: an endpoint that regresses once in two runs is noise, not a change.
fn confirm_comparison(base: Option<&Summary>, again: &Summary, rules: &CompareRules, first: &[String]) -> SuiteComparison {
    use crate::compare::Verdict;
    let mut c = compare_suite(base, again, rules);
    for e in c.endpoints.iter_mut() {
        if e.verdict == Verdict::Regressed && !first.contains(&e.name) {
            e.verdict = Verdict::Noisy;
            for m in e.metrics.iter_mut().filter(|m| m.verdict == Verdict::Regressed) {
                m.verdict = Verdict::Noisy;
                m.reason = format!("{} (regressed in the re-run only)", m.reason);
            }
        }
    }
    c.verdict = Verdict::worst(c.endpoints.iter().map(|e| e.verdict));
    c
}

/// `path` relative to the current directory when it is inside it, for messages.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
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

/// Runs one suite with resource sampling and metric scrapes, and builds its summary. Chaos
/// suites' actions (stop or start PostgreSQL or Redis) happen at their times beside the load,
/// with the app's metrics scraped every second; special suites get their checks.
pub async fn measure_suite(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    suite: &Suite,
    ctx: &RunContext,
) -> Result<Summary, GateError> {
    let app = &prepared.setup.app;
    let client = reqwest::Client::new();
    let metrics_url = app.metrics.as_ref().map(|m| format!("{}{}", env.app_url(), m));
    let scrape_once = |client: reqwest::Client, url: Option<String>| {
        let prefixes = app.metrics_series.clone();
        async move {
            match url {
                Some(url) => scrape::scrape(&client, &url, &prefixes).await,
                None => None,
            }
        }
    };
    let before_metrics = scrape_once(client.clone(), metrics_url.clone()).await;
    let before = env.resources().await;
    let proxies_before = env.proxy_stats();

    let (clock_tx, clock_rx) = tokio::sync::watch::channel(None);
    let mut run_opts = RunOptions::new(env.app_url());
    run_opts.cancel = opts.cancel.clone();
    run_opts.progress = opts.progress;
    run_opts.seed = opts.seed;
    run_opts.hooks.clock = Some(clock_tx);
    let actions = match &suite.special {
        Some(Special::Chaos(c)) => c.actions.clone(),
        _ => Vec::new(),
    };
    let side_scrape = if actions.is_empty() { None } else { metrics_url.clone() };
    let done = CancellationToken::new();
    let side = side_work(env, done.clone(), clock_rx, actions, side_scrape.map(|u| (client.clone(), u, app.metrics_series.clone())));
    let load = async {
        let r = run_suite(&prepared.compiled, suite, run_opts).await;
        done.cancel();
        r
    };
    let (result, side) = tokio::join!(load, side);
    let result = result.map_err(|e| GateError::Input(format!("suite {}: {e}", suite.name)))?;
    if result.cancelled || opts.cancel.is_cancelled() {
        return Err(GateError::Interrupted);
    }
    let after = env.resources().await;
    let after_metrics = scrape_once(client, metrics_url).await;

    let mut summary = summary::build(&result, ctx);
    summary.resources = resource_usage(&before, &after, &side.samples);
    if needs_proxies(suite) {
        summary.figures.insert("fault_proxies".into(), proxy_figures(&proxies_before, &env.proxy_stats()));
    }
    if let (Some(before), Some(after)) = (before_metrics, after_metrics) {
        summary.app_metrics = Some(AppMetrics { before, after });
    }
    summary.invalid_reasons.extend(side.failures.iter().cloned());
    if !side.failures.is_empty() {
        summary.valid = false;
    }
    if suite.kind == SuiteKind::Stress && !summary.invalid_reasons.is_empty() && side.failures.is_empty() {
        // A stress suite is meant to go past what the app sustains: falling behind schedule
        // there is the finding (the breaking point), not a broken run.
        let notes = std::mem::take(&mut summary.invalid_reasons);
        summary.figures.insert("schedule".into(), serde_json::json!(notes));
        summary.valid = true;
    }
    let obs = Observations { events: side.events, metrics: side.metrics, warmup_s: summary.run.warmup_s };
    crate::special::evaluate(suite, &mut summary, &obs);
    Ok(summary)
}

/// What ran beside the load.
struct SideWork {
    /// Resource use of each service, every second.
    samples: Vec<Vec<(Service, ResourceSample)>>,
    /// Chaos actions done, seconds from the measured start.
    events: Vec<Event>,
    /// App metrics every second (chaos suites only), seconds from the measured start.
    metrics: Vec<(f64, BTreeMap<String, f64>)>,
    /// Chaos actions that could not be done: the run is invalid.
    failures: Vec<String>,
}

/// Samples resources every second until `done`; once the load's clock is known, does each
/// chaos action at `suite start + at` and scrapes the app's metrics every second. A service
/// still stopped at the end is started again, and a fault still set is cleared, so later
/// suites find the environment whole.
async fn side_work(
    env: &mut Environment,
    done: CancellationToken,
    mut clock_rx: tokio::sync::watch::Receiver<Option<RunClock>>,
    actions: Vec<ChaosAction>,
    scrape_target: Option<(reqwest::Client, String, Vec<String>)>,
) -> SideWork {
    let mut out = SideWork { samples: Vec::new(), events: Vec::new(), metrics: Vec::new(), failures: Vec::new() };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut clock: Option<RunClock> = None;
    let mut clock_open = true;
    let mut next = 0usize;
    let mut stopped: Vec<Service> = Vec::new();
    let mut faulted: Vec<Service> = Vec::new();
    loop {
        let deadline = clock.and_then(|c| actions.get(next).map(|a| c.suite_start + a.at));
        tokio::select! {
            _ = done.cancelled() => break,
            changed = clock_rx.changed(), if clock.is_none() && clock_open => {
                match changed {
                    Ok(()) => clock = *clock_rx.borrow(),
                    Err(_) => clock_open = false,
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(std::time::Instant::now).into()), if deadline.is_some() => {
                let action = actions[next];
                next += 1;
                let t = clock.map(|c| secs_since(c.measured_start)).unwrap_or(0.0);
                match chaos_action(env, action).await {
                    Ok(()) => {
                        eprintln!("chaos: {} at {t:.1}s", action.what());
                        match action.verb {
                            ChaosVerb::Stop => stopped.push(action.service),
                            ChaosVerb::Start => stopped.retain(|s| *s != action.service),
                            ChaosVerb::Fault(_) if !faulted.contains(&action.service) => faulted.push(action.service),
                            ChaosVerb::Fault(_) => {}
                            ChaosVerb::Heal => faulted.retain(|s| *s != action.service),
                        }
                        out.events.push(Event { t, what: action.what() });
                    }
                    Err(e) => out.failures.push(format!("chaos action `{}` failed: {e}", action.what())),
                }
            }
            _ = tick.tick() => {
                // Sampling never makes an action late: Docker's stats can take a second or
                // more, so a sample still running when the next action is due is dropped.
                let sample = match deadline {
                    Some(due) => tokio::time::timeout_at(due.into(), env.resources()).await.ok(),
                    None => Some(env.resources().await),
                };
                out.samples.extend(sample);
                if let (Some(c), Some((client, url, prefixes))) = (clock, &scrape_target)
                    && let Some(values) = scrape::scrape(client, url, prefixes).await
                {
                    out.metrics.push((secs_since(c.measured_start), values));
                }
            }
        }
    }
    let undo = stopped.into_iter().map(|s| (s, ChaosVerb::Start)).chain(faulted.into_iter().map(|s| (s, ChaosVerb::Heal)));
    for (service, verb) in undo {
        let action = ChaosAction { at: Duration::ZERO, service, verb };
        if let Err(e) = chaos_action(env, action).await {
            out.failures.push(format!("`{}` after the suite failed: {e}", action.what()));
        }
    }
    out
}

/// What the fault proxies did during a suite, per service: connections accepted and reset,
/// bytes a blackhole swallowed, connections the service itself refused.
fn proxy_figures(before: &[(Service, ProxyStats)], after: &[(Service, ProxyStats)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (service, a) in after {
        let b = before.iter().find(|(s, _)| s == service).map(|(_, b)| *b).unwrap_or_default();
        out.insert(
            service.as_str().to_string(),
            serde_json::json!({
                "connections": a.accepted - b.accepted,
                "reset": a.reset - b.reset,
                "blackholed_bytes": a.blackholed_bytes - b.blackholed_bytes,
                "upstream_failures": a.upstream_failures - b.upstream_failures,
            }),
        );
    }
    serde_json::Value::Object(out)
}

fn secs_since(start: std::time::Instant) -> f64 {
    let now = std::time::Instant::now();
    if now >= start { (now - start).as_secs_f64() } else { -((start - now).as_secs_f64()) }
}

async fn chaos_action(env: &mut Environment, action: ChaosAction) -> Result<(), crate::env::EnvError> {
    let service = action.service;
    match action.verb {
        ChaosVerb::Stop => env.stop_service(service).await,
        ChaosVerb::Start => env.start_service(service).await,
        ChaosVerb::Fault(fault) => env.set_fault(service, fault),
        ChaosVerb::Heal => env.set_fault(service, Fault::None),
    }
}

/// CPU seconds over the suite (after minus before; a restarted service counts from zero) and
/// peak memory over the samples, per service.
fn resource_usage(
    before: &[(Service, ResourceSample)],
    after: &[(Service, ResourceSample)],
    samples: &[Vec<(Service, ResourceSample)>],
) -> BTreeMap<String, ResourceUsage> {
    let mut out = BTreeMap::new();
    for (service, end) in after {
        let start = before.iter().find(|(s, _)| s == service).map(|(_, r)| r.cpu_seconds).unwrap_or(0.0);
        let cpu = if end.cpu_seconds >= start { end.cpu_seconds - start } else { end.cpu_seconds };
        let series: Vec<u64> = samples
            .iter()
            .filter_map(|round| round.iter().find(|(s, _)| s == service).map(|(_, r)| r.memory_bytes))
            .collect();
        let peak = series.iter().copied().chain([end.memory_bytes]).max().unwrap_or(0);
        out.insert(
            service.as_str().to_string(),
            ResourceUsage { cpu_seconds: (cpu * 1000.0).round() / 1000.0, peak_memory_bytes: peak, memory_series: series },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_usage_is_cpu_difference_and_peak_memory() {
        let s = |cpu: f64, mem: u64| ResourceSample { cpu_seconds: cpu, memory_bytes: mem };
        let before = vec![(Service::App, s(1.0, 10)), (Service::Postgres, s(5.0, 100))];
        let after = vec![(Service::App, s(3.5, 20)), (Service::Postgres, s(0.5, 90))];
        let samples = vec![vec![(Service::App, s(2.0, 50))], vec![(Service::App, s(3.0, 30)), (Service::Postgres, s(0.1, 80))]];
        let got = resource_usage(&before, &after, &samples);
        assert_eq!(got["app"].cpu_seconds, 2.5);
        assert_eq!(got["app"].peak_memory_bytes, 50);
        assert_eq!(got["app"].memory_series, vec![50, 30]);
        // Postgres restarted during the suite: its counter started again from zero.
        assert_eq!(got["postgres"].cpu_seconds, 0.5);
        assert_eq!(got["postgres"].peak_memory_bytes, 90);
    }
}
