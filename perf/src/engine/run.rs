//! One suite run: setup steps, the scenarios side by side, the per-second ticker that closes
//! windows and feeds progress and hooks, and the result.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::client::Target;
use super::progress::{Progress, Tick};
use super::shared::{ScenarioCounters, Shared};
use super::stats::{Collector, Gauge, Recorder};
use super::vu::{Vu, step};
use super::{EngineError, RunClock, RunOptions, ScenarioResult, SuiteResult, closed, open};
use crate::plan::compiled::{Compiled, SharedVars, Suite};

/// Room between the user ids of two scenarios (ids pick statistics shards and seeds).
const IDS_PER_SCENARIO: usize = 1 << 20;

fn shard_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8) * 2
}

pub(crate) async fn run_suite(compiled: &Compiled, suite: &Suite, opts: RunOptions) -> Result<SuiteResult, EngineError> {
    let target = Arc::new(Target::new(&opts.base_url, compiled.http, &opts.tls_roots).await?);
    let vars = Arc::new(SharedVars::new(compiled.vars.clone()));
    let total = suite.scenarios.iter().map(|s| s.start + s.shape.duration()).max().unwrap_or_default();

    // Setup runs before the suite's timeline: its requests are never recorded as measured.
    let far_future = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut shared = Shared {
        requests: compiled.requests.clone(),
        target,
        vars: vars.clone(),
        recorder: Recorder::new(compiled.requests.len(), shard_count()),
        gauge: Gauge::default(),
        measured_start: far_future,
        late_after: compiled.late_after,
        // Shards draw different values from the same seed (users, dates, think times).
        seed: match compiled.shard {
            Some(s) => opts.seed ^ u64::from(s.index - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            None => opts.seed,
        },
        shard: compiled.shard,
    };
    if !suite.setup.is_empty() {
        let mut setup_vu = Vu::new(&shared, usize::MAX / 2);
        setup_vu.vars.begin_iteration();
        for s in &suite.setup {
            let name = shared.requests[s.request()].name.clone();
            let outcome = tokio::select! {
                o = step(&shared, &mut setup_vu, s.request(), None) => o,
                _ = opts.cancel.cancelled() => return Err(EngineError::Cancelled),
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
        vars.set_globals(&setup_vu.vars);
    }

    if let Some(at) = opts.start_at
        && let Ok(wait) = at.duration_since(std::time::SystemTime::now())
    {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = opts.cancel.cancelled() => return Err(EngineError::Cancelled),
        }
    }
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

    let mut scenario_tasks = JoinSet::new();
    let mut counters = Vec::new();
    for (i, sc) in suite.scenarios.iter().enumerate() {
        let c = Arc::new(ScenarioCounters::default());
        counters.push(c.clone());
        let (shared, sc, cancel) = (shared.clone(), Arc::new(sc.clone()), opts.cancel.clone());
        let start = t0 + sc.start;
        let id_base = i * IDS_PER_SCENARIO;
        if sc.executor.is_open() {
            scenario_tasks.spawn(open::run(shared, sc, c, start, id_base, cancel));
        } else {
            scenario_tasks.spawn(closed::run(shared, sc, c, start, id_base, cancel));
        }
    }

    let names: Vec<String> = shared.requests.iter().map(|r| r.name.clone()).collect();
    let mut collector = Collector::new(names);
    let mut progress = Progress::new(opts.progress, &suite.name, total);
    let mut errors_seen = 0u64;
    // Ticks: once a second from the suite start during the warm-up, then on whole seconds
    // from the measured start, where each tick closes a window.
    let mut next_tick =
        if suite.warmup.is_zero() { measured_start + Duration::from_secs(1) } else { (t0 + Duration::from_secs(1)).min(measured_start) };
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
            if let Some(tx) = &opts.hooks.windows {
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
        if let Some(tx) = &opts.hooks.windows {
            let _ = tx.try_send(report);
        }
    }
    let cancelled = opts.cancel.is_cancelled();
    progress.finish(if cancelled { "interrupted" } else { "done" });

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

    let mut invalid_reasons = Vec::new();
    if cancelled {
        invalid_reasons.push("the run was interrupted before its end".to_string());
    }
    let scenarios: Vec<ScenarioResult> = suite
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
        .collect();
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
