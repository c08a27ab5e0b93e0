//! One suite run: setup steps, the scenarios side by side, the per-second ticker that closes
//! windows and feeds progress and hooks, and the result.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::client::Target;
use super::options::{RunClock, RunOptions};
use super::progress::{Progress, Tick};
use super::result::{EngineError, ScenarioResult, SuiteResult};
use super::shared::{ScenarioCounters, Shared};
use super::stats::{Collector, EndpointResult, Gauge, Recorder, Window, WindowReport};
use super::vu::{Vu, step};
use super::{closed, open};
use crate::plan::compiled::{Compiled, SharedVars, Suite};

/// Room between the user ids of two scenarios (ids pick statistics shards and seeds).
const IDS_PER_SCENARIO: usize = 1 << 20;

fn shard_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8) * 2
}

pub(crate) async fn run_suite(compiled: &Compiled, suite: &Suite, opts: RunOptions) -> Result<SuiteResult, EngineError> {
    let target = Arc::new(Target::new(&opts.base_url, compiled.http, &opts.tls_roots).await?);
    let total = suite.scenarios.iter().map(|s| s.start + s.shape.duration()).max().unwrap_or_default();
    let mut shared = new_shared(compiled, target, opts.seed);
    run_setup(&shared, suite, &opts.cancel).await?;
    wait_for_start_at(&opts).await?;

    let t0 = Instant::now();
    let wall0 = jiff::Timestamp::now();
    shared.measured_start = t0 + suite.warmup;
    shared.recorder = Recorder::new(compiled.requests.len(), shard_count());
    let shared = Arc::new(shared);
    let measured_start = shared.measured_start;
    let measured_wall = wall0.checked_add(suite.warmup).unwrap_or(wall0);
    if let Some(tx) = &opts.hooks.clock {
        let _ = tx.send(Some(RunClock {
            suite_start: t0.into_std(),
            measured_start: measured_start.into_std(),
            load_end: (t0 + total).into_std(),
            measured_start_wall: measured_wall,
        }));
    }

    let (scenario_tasks, counters) = spawn_scenarios(suite, &shared, t0, &opts.cancel);
    let names: Vec<String> = shared.requests.iter().map(|r| r.name.clone()).collect();
    let mut collector = Collector::new(names, crate::plan::slice::recorded_segment(total.saturating_sub(suite.warmup)));
    let mut progress = Progress::new(opts.progress, &suite.name, total);
    let windows = opts.hooks.windows.as_ref();
    let end = tick_until_done(scenario_tasks, &shared, &mut collector, &mut progress, windows, t0, suite.warmup).await;
    let cancelled = opts.cancel.is_cancelled();
    progress.finish(if cancelled { "interrupted" } else { "done" });

    let (endpoints, windows) = exercised_endpoints(collector, &shared, suite);
    let scenarios = scenario_results(suite, counters);
    let mut invalid_reasons = Vec::new();
    if cancelled {
        invalid_reasons.push("the run was interrupted before its end".to_string());
    }
    for sc in &scenarios {
        if let Some(reason) = sc.behind_schedule(compiled.late_after) {
            invalid_reasons.push(reason);
        }
    }
    Ok(SuiteResult {
        suite: suite.name.clone(),
        suite_hash: suite.definition_hash.clone(),
        kind: suite.kind,
        started_at: measured_wall,
        warmup: suite.warmup,
        measured: end.saturating_duration_since(measured_start),
        endpoints,
        scenarios,
        windows,
        slo: suite.slo.clone(),
        invalid_reasons,
        cancelled,
        shard: compiled.shard,
    })
}

/// The state the run's tasks share, before the timeline starts: its measured start lies far
/// in the future, so that the setup's requests are never recorded as measured.
fn new_shared(compiled: &Compiled, target: Arc<Target>, seed: u64) -> Shared {
    let far_future = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    Shared {
        requests: compiled.requests.clone(),
        target,
        vars: Arc::new(SharedVars::new(compiled.vars.clone())),
        recorder: Recorder::new(compiled.requests.len(), shard_count()),
        gauge: Gauge::default(),
        measured_start: far_future,
        late_after: compiled.late_after,
        // Shards draw different values from the same seed (users, dates, think times).
        seed: match compiled.shard {
            Some(s) => seed ^ u64::from(s.index - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            None => seed,
        },
        shard: compiled.shard,
    }
}

/// Runs the suite's setup steps as one user, before its timeline; what they capture becomes
/// every user's globals. A step that fails, or needs a value no earlier step captured, stops
/// the run.
async fn run_setup(shared: &Shared, suite: &Suite, cancel: &CancellationToken) -> Result<(), EngineError> {
    if suite.setup.is_empty() {
        return Ok(());
    }
    let mut setup_vu = Vu::new(shared, usize::MAX / 2);
    setup_vu.vars.begin_iteration();
    for s in &suite.setup {
        let name = shared.requests[s.request()].name.clone();
        let outcome = tokio::select! {
            o = step(shared, &mut setup_vu, s.request(), None) => o,
            _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        };
        let failure = match outcome {
            None => Some("it needs a value no earlier setup step captured".to_string()),
            Some(o) => o.error.map(|k| match o.status {
                Some(status) => format!("{} error (status {status})", k.as_str()),
                None => format!("{} error", k.as_str()),
            }),
        };
        if let Some(reason) = failure {
            return Err(EngineError::Setup { step: name, reason });
        }
    }
    shared.vars.set_globals(&setup_vu.vars);
    Ok(())
}

/// Waits for `opts.start_at` when it lies ahead (`--start-at`: shards begin together).
async fn wait_for_start_at(opts: &RunOptions) -> Result<(), EngineError> {
    if let Some(at) = opts.start_at
        && let Ok(wait) = at.duration_since(std::time::SystemTime::now())
    {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = opts.cancel.cancelled() => return Err(EngineError::Cancelled),
        }
    }
    Ok(())
}

/// Starts every scenario at its offset from `t0`, each with its executor and a range of user
/// ids of its own; returns the tasks and each scenario's counters.
fn spawn_scenarios(
    suite: &Suite,
    shared: &Arc<Shared>,
    t0: Instant,
    cancel: &CancellationToken,
) -> (JoinSet<()>, Vec<Arc<ScenarioCounters>>) {
    let mut scenario_tasks = JoinSet::new();
    let mut counters = Vec::new();
    for (i, sc) in suite.scenarios.iter().enumerate() {
        let c = Arc::new(ScenarioCounters::default());
        counters.push(c.clone());
        let (shared, sc, cancel) = (shared.clone(), Arc::new(sc.clone()), cancel.clone());
        let start = t0 + sc.start;
        let id_base = i * IDS_PER_SCENARIO;
        if sc.executor.is_open() {
            scenario_tasks.spawn(open::run(shared, sc, c, start, id_base, cancel));
        } else {
            scenario_tasks.spawn(closed::run(shared, sc, c, start, id_base, cancel));
        }
    }
    (scenario_tasks, counters)
}

/// Ticks until every scenario is done: once a second from `t0` during the warm-up, then on
/// whole seconds from the measured start, where each tick closes a window (sent to `windows`
/// without waiting); every tick feeds the progress line. The last, partial second is closed
/// too. Returns when the load ended.
async fn tick_until_done(
    mut scenario_tasks: JoinSet<()>,
    shared: &Shared,
    collector: &mut Collector,
    progress: &mut Progress,
    windows: Option<&mpsc::Sender<WindowReport>>,
    t0: Instant,
    warmup: Duration,
) -> Instant {
    let measured_start = shared.measured_start;
    let mut errors_seen = 0u64;
    let mut next_tick =
        if warmup.is_zero() { measured_start + Duration::from_secs(1) } else { (t0 + Duration::from_secs(1)).min(measured_start) };
    let mut window_index: u32 = 0;
    let mut last_tick = t0;
    let run_done = async { while scenario_tasks.join_next().await.is_some() {} };
    tokio::pin!(run_done);
    loop {
        tokio::select! {
            _ = &mut run_done => break,
            _ = sleep_until(next_tick) => {}
        }
        let now = next_tick;
        let (done, errs) = collector.live(&shared.recorder);
        errors_seen += errs;
        let secs = now.saturating_duration_since(last_tick).as_secs_f64().max(1e-3);
        last_tick = now;
        let in_warmup = now <= measured_start;
        let active = shared.gauge.take_peak();
        if !in_warmup {
            let report = collector.close_window(&shared.recorder, window_index, active);
            window_index += 1;
            if let Some(tx) = windows {
                let _ = tx.try_send(report);
            }
        }
        progress.tick(Tick {
            warmup: in_warmup,
            elapsed: now.saturating_duration_since(t0),
            rps: done as f64 / secs,
            errors: errors_seen,
            active,
        });
        next_tick = if now < measured_start {
            (now + Duration::from_secs(1)).min(measured_start)
        } else {
            measured_start + Duration::from_secs(window_index as u64 + 1)
        };
    }
    let end = Instant::now();
    // The last, partial second.
    if end > measured_start {
        let active = shared.gauge.take_peak();
        let report = collector.close_window(&shared.recorder, window_index, active);
        if let Some(tx) = windows {
            let _ = tx.try_send(report);
        }
    }
    end
}

/// The recorded endpoints with their protocol's kind, keeping those the suite's scenarios
/// exercise and any other that received a request; and the whole-suite windows.
fn exercised_endpoints(collector: Collector, shared: &Shared, suite: &Suite) -> (Vec<EndpointResult>, Vec<Window>) {
    let (mut endpoints, windows) = collector.finish(&shared.recorder);
    for (e, r) in endpoints.iter_mut().zip(&shared.requests) {
        e.kind = r.protocol.kind();
    }
    let wanted = suite.exercised();
    let mut i = 0;
    endpoints.retain(|e| {
        let keep = wanted.contains(&i) || e.requests > 0;
        i += 1;
        keep
    });
    (endpoints, windows)
}

/// Each scenario's schedule keeping, read from its counters.
fn scenario_results(suite: &Suite, counters: Vec<Arc<ScenarioCounters>>) -> Vec<ScenarioResult> {
    suite
        .scenarios
        .iter()
        .zip(counters)
        .map(|(sc, c)| ScenarioResult {
            name: sc.name.clone(),
            executor: sc.executor,
            iterations: c.iterations.load(Ordering::Relaxed),
            aborted_iterations: c.aborted.load(Ordering::Relaxed),
            dropped_iterations: c.dropped.load(Ordering::Relaxed),
            late_starts: c.late.load(Ordering::Relaxed),
            interrupted_iterations: c.interrupted.load(Ordering::Relaxed),
            scheduled_starts: c.scheduled.load(Ordering::Relaxed),
            max_vus: c.max_vus.load(Ordering::Relaxed),
        })
        .collect()
}
