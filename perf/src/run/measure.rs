//! One suite measured: the load, and beside it the side work — resources sampled every
//! second, the app's metrics scraped, a chaos suite's actions at their times — then the
//! summary with the special suites' checks.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use tokio_util::sync::CancellationToken;

use crate::engine::{ProgressMode, RunClock, RunOptions, run_suite};
use crate::env::{Environment, ResourceSample, Service};
use crate::faults::ProxyStats;
use crate::plan::SuiteKind;
use crate::plan::compiled::{ChaosAction, ChaosVerb, Fault, Special, Suite};
use crate::plan::slice::{segment_length, slice};
use crate::special::Observations;
use crate::summary::{self, AppMetrics, Event, ResourceUsage, RunContext, Summary};
use crate::util::machine;

use crate::util::Notes;

use super::context::needs_proxies;
use super::options::{GateError, GateOptions};
use super::prepare::Prepared;
use super::{profile, scrape, stress, underneath};

/// Runs one suite with resource sampling and metric scrapes, and builds its summary. Chaos
/// suites' actions (stop or start PostgreSQL or Redis) happen at their times beside the load,
/// with the app's metrics scraped every second; special suites get their checks.
///
/// A stress suite whose planned steps all held goes on with extra steps (see
/// [`stress::search`], which measures each through [`measure_once`]) before its checks are
/// made.
pub async fn measure_suite(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    suite: &Suite,
    ctx: &RunContext,
) -> Result<Summary, GateError> {
    let (mut summary, mut obs) = measure_once(opts, prepared, env, suite, ctx, true, Profiling::Own).await?;
    if let Some(Special::Stress(spec)) = &suite.special {
        let measure = async |env: &mut Environment, step: &Suite| measure_once(opts, prepared, env, step, ctx, false, Profiling::Off).await;
        obs.stress_extra = stress::search(&opts.notes, env, suite, spec, &summary, measure).await?;
    }
    crate::special::evaluate(suite, &mut summary, &obs);
    Ok(summary)
}

/// Runs `suite` (a warm-up: its results are not kept) without reading the databases'
/// statistics or profiling the app, which would say nothing anybody reads.
pub(super) async fn warm_up(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    suite: &Suite,
    ctx: &RunContext,
) -> Result<(), GateError> {
    measure_once(opts, prepared, env, suite, ctx, false, Profiling::Off).await.map(|_| ())
}

/// How several environments share the segments of a suite's measured part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// One environment at a time, in an order drawn for every segment: the machine's drift
    /// (minutes) hits every side alike.
    #[default]
    Turns,
    /// Every environment at the same moments ("duet"): what the machine does in a
    /// millisecond (a stalled core, a neighbour's burst) lands on every side's requests of
    /// that moment alike, so it moves the pair, not the difference. Each side then shares the
    /// machine with the others' load.
    Duet,
}

/// How long before a segment measured [`Schedule::Duet`] its sides' timelines start: time
/// for each side's snapshots and setup, so that none starts late.
const DUET_LEAD: Duration = Duration::from_millis(500);

/// Runs `suite` on every environment (A/B's two sides, the experiment's copies): its warm-up
/// once on each (unless `warm` is off: a second pass, on environments the first warmed),
/// then each segment of its measured part on all of them, as `schedule` says:
/// in turns, in an order drawn for every segment, or all at once. The app's CPU is recorded
/// over all the segments at once (one recording, [`profile::Turns`]). Returns each
/// environment's segments put together, in `envs`' order (`ctxs[i]` is `envs[i]`'s context);
/// `progress(done, of)` hears of each round of segments.
// Long: the warm-up, then the segments' two schedules over the same recording.
#[allow(clippy::too_many_arguments)] // one measurement's whole context, passed down once
pub(super) async fn measure_in_turns(
    opts: &GateOptions,
    prepared: &Prepared,
    suite: &Suite,
    envs: &mut [Environment],
    ctxs: &[RunContext],
    rng: &mut SmallRng,
    schedule: Schedule,
    warm: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Summary>, GateError> {
    let sliced = slice(suite, segment_length(suite));
    let quiet = GateOptions { progress: ProgressMode::Off, ..opts.clone() };
    let mut order: Vec<usize> = (0..envs.len()).collect();
    if let Some(warmup) = sliced.warmup.as_ref().filter(|_| warm) {
        order.shuffle(rng);
        for &i in &order {
            warm_up(&quiet, prepared, &mut envs[i], warmup, &ctxs[i]).await?;
        }
    }
    let mut recording = profile::Turns::of(suite, envs).await;
    // All sides, or one side of an A/B only, to measure what the profiler costs (in turns: a
    // duet's sides are measured at the same moments, under one recording).
    let recorded = match schedule {
        Schedule::Turns => profile::recorded_sides(envs.len()),
        Schedule::Duet => vec![true; envs.len()],
    };
    let mut runs: Vec<Vec<Summary>> = vec![Vec::new(); envs.len()];
    for (round, segment) in sliced.segments.iter().enumerate() {
        match schedule {
            Schedule::Turns => {
                order.shuffle(rng);
                for &i in &order {
                    let turns = if recorded[i] { recording.as_mut() } else { None };
                    runs[i].push(measure_segment(&quiet, prepared, &mut envs[i], segment, &ctxs[i], turns).await?);
                }
            }
            Schedule::Duet => {
                // One start for every side's timeline (after each one's setup), and the same
                // seed: the same requests leave for every side at the same instants.
                let together = GateOptions { start_at: Some(std::time::SystemTime::now() + DUET_LEAD), ..quiet.clone() };
                // The recording covers every app's processes: switched on by the first
                // environment's run, it sees them all over the same measured part.
                let mut first = recording.as_mut();
                // Which side is set going first alternates from segment to segment (the first
                // polled is the first whose requests leave, and it reads slower: README, "Duet,
                // a study"), so a pair of segments holds one of each.
                let mut sides: Vec<(usize, &mut Environment)> = envs.iter_mut().enumerate().collect();
                let n = sides.len();
                sides.rotate_left(round % n);
                let together = &together;
                let each = sides.into_iter().map(|(i, env)| {
                    let turns = first.take();
                    async move { measure_segment(together, prepared, env, segment, &ctxs[i], turns).await.map(|s| (i, s)) }
                });
                for (i, s) in futures::future::try_join_all(each).await? {
                    runs[i].push(s);
                }
            }
        }
        progress(round + 1, sliced.segments.len());
    }
    for s in runs.iter_mut().flatten() {
        s.run.suite_hash = Some(suite.definition_hash.clone());
    }
    let mut sides = runs
        .iter()
        .map(|r| summary::concat(r).map_err(|e| GateError::Io(format!("suite {}: {e}", suite.name))))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(recording) = recording {
        recording.finish_into(&mut sides, &opts.cancel).await;
        for (side, _) in sides.iter_mut().zip(&recorded).filter(|(_, r)| !**r) {
            side.set_profile(profile::not_recorded());
        }
    }
    Ok(sides)
}

/// One segment of a load suite whose segments take turns on several environments, measured
/// as [`measure_suite`] measures a suite, except the app's CPU: `turns` (one recording for all
/// the segments, read by the caller at the end) is switched on during the segment's measured
/// part.
async fn measure_segment(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    segment: &Suite,
    ctx: &RunContext,
    turns: Option<&mut profile::Turns>,
) -> Result<Summary, GateError> {
    let profiling = match turns.and_then(profile::Turns::session) {
        Some(session) => Profiling::Shared(session),
        None => Profiling::Off,
    };
    let (mut summary, obs) = measure_once(opts, prepared, env, segment, ctx, true, profiling).await?;
    crate::special::evaluate(segment, &mut summary, &obs);
    Ok(summary)
}

/// How a run's app CPU is sampled (load suites measured for judging only: [`profile::wanted`]).
enum Profiling<'a> {
    /// A recording of its own, read into the run's summary.
    Own,
    /// A recording that spans many runs, switched on during this run's measured part; its
    /// owner reads it.
    Shared(&'a mut profile::Session),
    Off,
}

/// One run of `suite`'s timeline: the summary and what was observed beside it, before the
/// special checks. `underneath` off skips the databases' statistics and the app's CPU profile
/// (the stress search's extra steps: they would say nothing the suite's own run did not).
// Long: the snapshots before the load, the four tasks beside it (load, side work, the databases'
// activity, the CPU profile) and the summary after it share the environment and the load's
// clock; split at either seam, each half takes a dozen of the other's values.
async fn measure_once(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    suite: &Suite,
    ctx: &RunContext,
    underneath: bool,
    profiling: Profiling<'_>,
) -> Result<(Summary, Observations), GateError> {
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
    let docker = env.kind() == crate::env::BackendKind::Docker;
    let machine_before = machine::snapshot(docker);

    let (clock_tx, clock_rx) = tokio::sync::watch::channel(None);
    let activity_clock = clock_rx.clone();
    let profile_clock = clock_rx.clone();
    let mut run_opts = RunOptions::new(env.app_url());
    // Ctrl-C stops the load; so does a service dying by itself (the side work sees it).
    let stop_load = opts.cancel.child_token();
    run_opts.cancel = stop_load.clone();
    run_opts.progress = opts.progress;
    run_opts.seed = opts.seed;
    run_opts.start_at = opts.start_at;
    run_opts.hooks.clock = Some(clock_tx);
    let actions = match &suite.special {
        Some(Special::Chaos(c)) => c.actions.clone(),
        _ => Vec::new(),
    };
    let side_scrape = if actions.is_empty() { None } else { metrics_url.clone() };
    let done = CancellationToken::new();
    // What the databases do, read beside the load (chaos suites stop and fault them on
    // purpose: their counters would say nothing about the app).
    let probe = match env.service_access() {
        Some(access) if actions.is_empty() && underneath => Some(underneath::Probe::open(access).await),
        _ => None,
    };
    let activity = async {
        match &probe {
            Some(p) => p.sample_activity(activity_clock, done.clone()).await,
            None => underneath::Activity::default(),
        }
    };
    // The app's CPU over the measured part of a load suite measured for judging.
    let profiling = if underneath && profile::wanted(suite) { profiling } else { Profiling::Off };
    let app_pids = if matches!(profiling, Profiling::Own) { Some(env.app_pids().await) } else { None };
    let cpu_profile = async {
        match (profiling, app_pids) {
            (Profiling::Own, Some(pids)) => Some(profile::record(pids, profile_clock, done.clone(), opts.cancel.clone()).await),
            (Profiling::Shared(session), _) => {
                session.during(profile_clock, &done).await;
                None
            }
            _ => None,
        }
    };
    let watch = Watch { services: actions.is_empty(), stop_load };
    let side = side_work(
        env,
        done.clone(),
        clock_rx,
        actions,
        side_scrape.map(|u| (client.clone(), u, app.metrics_series.clone())),
        &opts.notes,
        watch,
    );
    let load = async {
        let r = run_suite(&prepared.compiled, suite, run_opts).await;
        done.cancel();
        r
    };
    let (result, side, activity, cpu_profile) = tokio::join!(load, side, activity, cpu_profile);
    if let Some(e) = side.died {
        return Err(GateError::Environment(format!("suite {}: the load was stopped: {e}", suite.name)));
    }
    let result = result.map_err(|e| GateError::Input(format!("suite {}: {e}", suite.name)))?;
    if result.cancelled || opts.cancel.is_cancelled() {
        return Err(GateError::Interrupted);
    }
    let machine_after = machine::snapshot(docker);
    let after = env.resources().await;
    let after_metrics = scrape_once(client, metrics_url).await;

    let mut summary = summary::build(&result, ctx);
    summary.resources = resource_usage(&before, &after, &side.samples, &side.sample_times);
    summary.machine = machine_before.zip(machine_after).map(|(b, a)| machine::between(&b, &a));
    summary.underneath = match probe {
        Some(p) => Some(p.read(activity).await),
        None if env.kind() == crate::env::BackendKind::External && underneath => Some(underneath::unavailable_external()),
        None => None,
    };
    if let Some(p) = cpu_profile {
        summary.set_profile(p);
    }
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
    let obs = Observations { events: side.events, metrics: side.metrics, warmup_s: summary.run.warmup_s, stress_extra: Vec::new() };
    Ok((summary, obs))
}

/// Whether the side work watches the services, and how it stops the load when one dies.
struct Watch {
    /// Off for chaos suites: they stop and fault services on purpose, and judge what follows.
    services: bool,
    stop_load: CancellationToken,
}

/// What ran beside the load.
struct SideWork {
    /// A service that died by itself during the suite (the load was stopped).
    died: Option<crate::env::EnvError>,
    /// Resource use of each service, every second.
    samples: Vec<Vec<(Service, ResourceSample)>>,
    /// When each sample was taken, seconds from the measured start (`None` before the load's
    /// clock was known).
    sample_times: Vec<Option<f64>>,
    /// Chaos actions done, seconds from the measured start.
    events: Vec<Event>,
    /// App metrics every second (chaos suites only), seconds from the measured start.
    metrics: Vec<(f64, BTreeMap<String, f64>)>,
    /// Chaos actions that could not be done: the run is invalid.
    failures: Vec<String>,
}

/// What the chaos actions left to undo after the suite: services stopped, services faulted.
#[derive(Default)]
struct Undone {
    stopped: Vec<Service>,
    faulted: Vec<Service>,
}

/// Does one chaos action at `t` s from the measured start: an event when done, a failure (the
/// run is invalid) when not.
async fn act(env: &mut Environment, action: ChaosAction, t: f64, notes: &Notes, undone: &mut Undone, out: &mut SideWork) {
    match chaos_action(env, action).await {
        Ok(()) => {
            notes.say(format!("chaos: {} at {t:.1}s", action.what()));
            let (stopped, faulted) = (&mut undone.stopped, &mut undone.faulted);
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

/// Samples resources every second until `done`; once the load's clock is known, does each
/// chaos action at `suite start + at` and scrapes the app's metrics every second. A service
/// still stopped at the end is started again, and a fault still set is cleared, so later
/// suites find the environment whole. Outside chaos suites it also asks every second whether
/// every service is still alive, and stops the load when one died by itself.
async fn side_work(
    env: &mut Environment,
    done: CancellationToken,
    mut clock_rx: tokio::sync::watch::Receiver<Option<RunClock>>,
    actions: Vec<ChaosAction>,
    scrape_target: Option<(reqwest::Client, String, Vec<String>)>,
    notes: &Notes,
    watch: Watch,
) -> SideWork {
    let mut out = SideWork {
        died: None,
        samples: Vec::new(),
        sample_times: Vec::new(),
        events: Vec::new(),
        metrics: Vec::new(),
        failures: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut clock: Option<RunClock> = None;
    let mut clock_open = true;
    let mut next = 0usize;
    let mut undone = Undone::default();
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
                let t = clock.map(|c| secs_since(c.measured_start)).unwrap_or(0.0);
                act(env, actions[next], t, notes, &mut undone, &mut out).await;
                next += 1;
            }
            _ = tick.tick() => {
                if watch.services
                    && let Err(e) = env.check_alive().await
                {
                    out.died = Some(e);
                    watch.stop_load.cancel();
                    break;
                }
                // Sampling never makes an action late: Docker's stats can take a second or
                // more, so a sample still running when the next action is due is dropped.
                let sample = match deadline {
                    Some(due) => tokio::time::timeout_at(due.into(), env.resources()).await.ok(),
                    None => Some(env.resources().await),
                };
                if let Some(sample) = sample {
                    out.samples.push(sample);
                    out.sample_times.push(clock.map(|c| secs_since(c.measured_start)));
                }
                if let (Some(c), Some((client, url, prefixes))) = (clock, &scrape_target)
                    && let Some(values) = scrape::scrape(client, url, prefixes).await
                {
                    out.metrics.push((secs_since(c.measured_start), values));
                }
            }
        }
    }
    let undo = undone.stopped.into_iter().map(|s| (s, ChaosVerb::Start)).chain(undone.faulted.into_iter().map(|s| (s, ChaosVerb::Heal)));
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

/// CPU seconds over the suite (after minus before; a restarted service counts from zero),
/// peak memory over the samples, and CPU since the start at each timed sample, per service.
fn resource_usage(
    before: &[(Service, ResourceSample)],
    after: &[(Service, ResourceSample)],
    samples: &[Vec<(Service, ResourceSample)>],
    times: &[Option<f64>],
) -> BTreeMap<String, ResourceUsage> {
    let mut out = BTreeMap::new();
    for (service, end) in after {
        let start = before.iter().find(|(s, _)| s == service).map(|(_, r)| r.cpu_seconds).unwrap_or(0.0);
        let cpu = if end.cpu_seconds >= start { end.cpu_seconds - start } else { end.cpu_seconds };
        let series: Vec<u64> =
            samples.iter().filter_map(|round| round.iter().find(|(s, _)| s == service).map(|(_, r)| r.memory_bytes)).collect();
        let peak = series.iter().copied().chain([end.memory_bytes]).max().unwrap_or(0);
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let cpu_series = samples
            .iter()
            .zip(times)
            .filter_map(|(round_, t)| Some((round_.iter().find(|(s, _)| s == service)?, (*t)?)))
            .filter(|((_, r), _)| r.cpu_seconds >= start)
            .map(|((_, r), t)| [round(t), round(r.cpu_seconds - start)])
            .collect();
        out.insert(
            service.as_str().to_string(),
            ResourceUsage { cpu_seconds: round(cpu), peak_memory_bytes: peak, memory_series: series, cpu_series },
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
        let got = resource_usage(&before, &after, &samples, &[Some(-0.5), Some(0.5)]);
        assert_eq!(got["app"].cpu_seconds, 2.5);
        // CPU since the start at each timed sample (for each stress step's CPU).
        assert_eq!(got["app"].cpu_series, vec![[-0.5, 1.0], [0.5, 2.0]]);
        // Postgres restarted: samples below its starting counter are left out.
        assert!(got["postgres"].cpu_series.is_empty());
        assert_eq!(got["app"].peak_memory_bytes, 50);
        assert_eq!(got["app"].memory_series, vec![50, 30]);
        // Postgres restarted during the suite: its counter started again from zero.
        assert_eq!(got["postgres"].cpu_seconds, 0.5);
        assert_eq!(got["postgres"].peak_memory_bytes, 90);
    }
}
