//! Stress: the arrival rate is raised in steps (the holds of a ramping-arrival-rate
//! scenario); the breaking point is the highest rate held before the first step that broke
//! the step SLO, and the failure mode says how it broke.
//!
//! Steps are judged on the whole-suite windows that lie entirely within a hold (ramps and the
//! warm-up are left out), so a stress suite should run its ramping scenario alone.
//!
//! When every planned step held, the orchestrator runs extra steps, one at a time, as
//! [`next_step`] decides: doubling the rate until a step fails, then bisecting between the
//! last held and the first failed rate; at most [`MAX_EXTRA_STEPS`], never above the plan's
//! `max_rate`, and stopping at the load generator's own limit (it could not send the
//! scheduled rate while the service still met the SLO: that is not the service breaking).
//! [`SearchEnd`] says which of these ended the search. The capacity figures (highest rate
//! held, the app's CPU per request there, what saturated first, instances for a target)
//! come from the same steps.

use serde_json::json;

use super::verdict::{check, figure, num, windows_within};
use crate::plan::compiled::{CapacityTarget, StressSpec, Suite};
use crate::summary::Summary;

/// Extra steps after the planned ones, at most.
pub const MAX_EXTRA_STEPS: usize = 8;
/// A step whose achieved rate is under this share of its scheduled rate was not sent in full.
const GENERATOR_SHORTFALL: f64 = 0.9;
/// A service whose CPU use reaches this share of the host's CPUs has saturated it.
const SATURATED_SHARE: f64 = 0.5;
/// Bisection stops when the failed and the held rate are this close (relative to the held).
const RESOLUTION: f64 = 0.1;

/// A measured step, planned or extra.
#[derive(Debug, Clone, PartialEq)]
pub struct StressStep {
    /// Scheduled rate (iterations per second).
    pub rate: f64,
    /// Measured seconds `[from, to)` of the run it belongs to.
    pub from: f64,
    pub to: f64,
    pub windows: usize,
    pub requests: u64,
    pub errors: u64,
    /// Request-weighted mean of the windows' p95 (latency from the scheduled start).
    pub p95_ms: Option<f64>,
    /// p95 of service time (from the actual start), known for extra steps: what the service
    /// did when the generator fell behind.
    pub service_p95_ms: Option<f64>,
    /// Requests per second measured over the step's windows.
    pub achieved_rps: f64,
    /// CPU cores the app and PostgreSQL used during the step (from the per-second samples).
    pub app_cores: Option<f64>,
    pub postgres_cores: Option<f64>,
    /// `latency`, `errors`, `timeouts` (the service broke) or `generator` (the load generator
    /// could not send the rate while the service met the SLO); `None` when held.
    pub failure: Option<&'static str>,
    /// Run after the planned steps by the search.
    pub extra: bool,
}

/// How a step ended, for the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Held,
    Broke,
    GeneratorLimit,
}

impl StressStep {
    pub fn outcome(&self) -> Outcome {
        match self.failure {
            None => Outcome::Held,
            Some("generator") => Outcome::GeneratorLimit,
            Some(_) => Outcome::Broke,
        }
    }
}

/// What ended the search for the breaking point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEnd {
    /// A step broke the SLO (latency, errors or timeouts).
    ServiceBroke,
    /// Every step held up to the plan's `max_rate`.
    MaxRate,
    /// The load generator could not send the scheduled rate while the service met the SLO.
    GeneratorLimit,
    /// [`MAX_EXTRA_STEPS`] extra steps held (no `max_rate`, or below it).
    StepLimit,
    /// Every planned step held and no extra step was run.
    NotSearched,
    /// No step was measured.
    NoSteps,
}

impl SearchEnd {
    /// The summary's spelling.
    pub fn key(self) -> &'static str {
        match self {
            SearchEnd::ServiceBroke => "service_broke",
            SearchEnd::MaxRate => "max_rate",
            SearchEnd::GeneratorLimit => "generator_limit",
            SearchEnd::StepLimit => "step_limit",
            SearchEnd::NotSearched => "not_searched",
            SearchEnd::NoSteps => "no_steps",
        }
    }
}

/// The search's decision after the steps so far (in the order they ran).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run one more step at this rate.
    Step(f64),
    Stop(SearchEnd),
}

/// Decides the next step from the outcomes so far: `(rate, outcome, extra)` in run order.
/// A planned step that failed ends it (the planned steps found the breaking point, or the
/// generator's limit); otherwise extra steps double the highest held rate (capped at
/// `max_rate`) until one breaks, then bisect between the highest held rate below it and the
/// lowest broken one until they are within 10%; a step at the generator's limit ends it; so do
/// `max_rate` held and [`MAX_EXTRA_STEPS`] extra steps.
pub fn next_step(steps: &[(f64, Outcome, bool)], max_rate: Option<f64>) -> Next {
    if steps.is_empty() {
        return Next::Stop(SearchEnd::NoSteps);
    }
    if let Some((_, o, _)) = steps.iter().find(|(_, o, extra)| !extra && *o != Outcome::Held) {
        return Next::Stop(if *o == Outcome::GeneratorLimit { SearchEnd::GeneratorLimit } else { SearchEnd::ServiceBroke });
    }
    if steps.iter().any(|(_, o, extra)| *extra && *o == Outcome::GeneratorLimit) {
        return Next::Stop(SearchEnd::GeneratorLimit);
    }
    let extras = steps.iter().filter(|(_, _, extra)| *extra).count();
    let broke = steps.iter().filter(|(_, o, _)| *o == Outcome::Broke).map(|(r, _, _)| *r).reduce(f64::min);
    let held = steps.iter().filter(|(r, o, _)| *o == Outcome::Held && broke.is_none_or(|b| *r < b)).map(|(r, _, _)| *r).fold(0.0, f64::max);
    match broke {
        Some(b) => {
            if b - held <= (held * RESOLUTION).max(1.0) || extras >= MAX_EXTRA_STEPS {
                Next::Stop(SearchEnd::ServiceBroke)
            } else {
                Next::Step(((held + b) / 2.0).round())
            }
        }
        None if max_rate.is_some_and(|m| held >= m) => Next::Stop(SearchEnd::MaxRate),
        None if extras >= MAX_EXTRA_STEPS => Next::Stop(SearchEnd::StepLimit),
        None => Next::Step(max_rate.map_or(held * 2.0, |m| (held * 2.0).min(m))),
    }
}

/// Instances needed for `target_rps` when each is planned at `(1 - headroom)` of the rate one
/// instance held: `ceil(target / (held × (1 − headroom)))`; `None` when nothing was held.
pub fn instances_needed(target: CapacityTarget, held_rps: f64) -> Option<u64> {
    let per_instance = held_rps * (1.0 - target.headroom);
    (per_instance > 0.0 && per_instance.is_finite()).then(|| (target.target_rps / per_instance - 1e-9).ceil().max(1.0) as u64)
}

/// The holds of `suite`'s ramping-arrival-rate scenario measured in `summary`, classified by
/// the step SLO; empty when the suite has none (or all lie in the warm-up).
pub fn measure_steps(spec: &StressSpec, suite: &Suite, summary: &Summary) -> Vec<StressStep> {
    let warmup = summary.run.warmup_s;
    let Some((offset, holds)) = suite.scenarios.iter().map(|s| (s.start, s.shape.holds())).find(|(_, h)| !h.is_empty()) else {
        return Vec::new();
    };
    let timeouts_dominate = timeouts_dominate(summary);
    let mut out = Vec::new();
    for h in &holds {
        let from = (offset + h.start).as_secs_f64() - warmup;
        let to = from + h.duration.as_secs_f64();
        let ws: Vec<_> = windows_within(&summary.windows, from, to).collect();
        if ws.is_empty() {
            continue; // inside the warm-up, or shorter than a window
        }
        let requests: u64 = ws.iter().map(|w| w.requests).sum();
        let errors: u64 = ws.iter().map(|w| w.errors).sum();
        // Windows carry percentiles, not histograms: the step's p95 is approximated by the
        // request-weighted mean of its windows' p95.
        let (weighted, weight) = ws
            .iter()
            .filter_map(|w| w.p95.map(|p| (p * w.requests as f64, w.requests as f64)))
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let mut step = StressStep {
            rate: h.rate,
            from,
            to,
            windows: ws.len(),
            requests,
            errors,
            p95_ms: (weight > 0.0).then(|| weighted / weight),
            service_p95_ms: None,
            achieved_rps: requests as f64 / ws.len() as f64,
            app_cores: cores(summary, "app", from, to),
            postgres_cores: cores(summary, "postgres", from, to),
            failure: None,
            extra: false,
        };
        step.failure = classify(spec, &step, timeouts_dominate);
        out.push(step);
    }
    out
}

/// One extra step: `suite` is the search's one-hold suite and `summary` its run. Service time
/// (the slowest endpoint's p95) decides whether a shortfall is the generator's.
pub fn measure_extra_step(spec: &StressSpec, suite: &Suite, summary: &Summary) -> Option<StressStep> {
    let mut step = measure_steps(spec, suite, summary).into_iter().next()?;
    step.extra = true;
    step.service_p95_ms = summary.endpoints.values().filter_map(|e| e.service_ms.p95).reduce(f64::max);
    step.failure = classify(spec, &step, timeouts_dominate(summary));
    Some(step)
}

/// Per-step error kinds are not recorded (windows only count errors), so the timeout share
/// of the whole run's errors stands in for each failing step's.
fn timeouts_dominate(summary: &Summary) -> bool {
    let (timeouts, all_errors) = summary
        .endpoints
        .values()
        .fold((0u64, 0u64), |(t, a), e| (t + e.errors.by_kind.get("timeout").copied().unwrap_or(0), a + e.errors.total));
    all_errors > 0 && timeouts * 2 > all_errors
}

fn classify(spec: &StressSpec, s: &StressStep, timeouts_dominate: bool) -> Option<&'static str> {
    let slo_ms = spec.slo_p95.as_secs_f64() * 1000.0;
    let error_rate = if s.requests == 0 { 1.0 } else { s.errors as f64 / s.requests as f64 };
    if s.requests == 0 || error_rate > spec.max_error_rate {
        return Some(if timeouts_dominate { "timeouts" } else { "errors" });
    }
    // Latency counts from the scheduled start, so a generator that falls behind makes it
    // grow too: what the service itself took (service time, when known) decides.
    let service_ok = s.service_p95_ms.or(s.p95_ms).is_some_and(|p| p <= slo_ms);
    if s.achieved_rps < s.rate * GENERATOR_SHORTFALL && service_ok {
        return Some("generator");
    }
    if s.p95_ms.is_none_or(|p| p > slo_ms) { Some("latency") } else { None }
}

/// CPU cores `service` used over `[from, to)` from its per-second cumulative CPU samples;
/// `None` without two samples in the span.
fn cores(summary: &Summary, service: &str, from: f64, to: f64) -> Option<f64> {
    let series = &summary.resources.get(service)?.cpu_series;
    let inside: Vec<&[f64; 2]> = series.iter().filter(|[t, _]| *t >= from - 0.5 && *t <= to + 0.5).collect();
    let (first, last) = (inside.first()?, inside.last()?);
    let dt = last[0] - first[0];
    (dt >= 0.9).then(|| ((last[1] - first[1]).max(0.0) / dt * 1000.0).round() / 1000.0)
}

pub(super) fn evaluate(spec: &StressSpec, suite: &Suite, summary: &mut Summary, extra: &[StressStep]) {
    if !suite.scenarios.iter().any(|s| !s.shape.holds().is_empty()) {
        check(summary, "stress.breaking_point", false, "the suite has no ramping-arrival-rate scenario with steps");
        return;
    }
    let mut measured = measure_steps(spec, suite, summary);
    measured.extend(extra.iter().cloned());
    let tried: Vec<_> = measured.iter().map(|s| (s.rate, s.outcome(), s.extra)).collect();
    let end = match next_step(&tried, spec.max_rate) {
        Next::Stop(end) => end,
        Next::Step(_) => SearchEnd::NotSearched,
    };
    let (held_step, broke) = held_and_broke(&measured);
    let breaking = held_step.map_or(0.0, |s| s.rate);
    let mode = broke.and_then(|s| s.failure).unwrap_or("none");
    figure(summary, "breaking_rate", num(breaking));
    figure(summary, "failure_mode", mode);
    figure(summary, "search_end", end.key());
    figure(summary, "steps", measured.iter().map(step_row).collect::<Vec<_>>());

    let generator = measured.iter().find(|s| s.outcome() == Outcome::GeneratorLimit);
    let extras = measured.iter().filter(|s| s.extra).count();
    let ended = search_ended(end, spec, breaking, generator);
    let how = match broke {
        None if measured.is_empty() => "no step was measured (all inside the warm-up?)".to_string(),
        None => format!("every step held up to {breaking}/s"),
        Some(s) => format!("held {breaking}/s; broke at {}/s by {mode} ({})", s.rate, why_it_broke(s, spec)),
    };
    let searched = if extras > 0 { format!(" after {extras} extra step{}", if extras == 1 { "" } else { "s" }) } else { String::new() };
    let passed = breaking >= spec.min_breaking_rate && !measured.is_empty();
    check(
        summary,
        "stress.breaking_point",
        passed,
        format!("{how}; the search ended{searched}: {ended}; at least {}/s required", spec.min_breaking_rate),
    );
    if let Some(held) = held_step {
        let limit = broke.or(generator).or_else(|| measured.iter().max_by(|a, b| a.rate.total_cmp(&b.rate)));
        let cpus = summary.run.host.cpus;
        figure(summary, "capacity", capacity(spec.capacity, held, limit, end, cpus));
    }
}

/// The highest step that held and the step that broke the service, if one did. A planned step
/// that failed ends the steps as before (held: the highest before it); otherwise the lowest
/// broken extra step bounds the held ones.
fn held_and_broke(measured: &[StressStep]) -> (Option<&StressStep>, Option<&StressStep>) {
    match measured.iter().position(|s| !s.extra && s.failure.is_some()) {
        Some(i) => (highest_held(&measured[..i], f64::INFINITY), Some(&measured[i]).filter(|s| s.outcome() == Outcome::Broke)),
        None => {
            let broke = measured.iter().filter(|s| s.outcome() == Outcome::Broke).min_by(|a, b| a.rate.total_cmp(&b.rate));
            (highest_held(measured, broke.map_or(f64::INFINITY, |b| b.rate)), broke)
        }
    }
}

/// One row of the `steps` figure.
fn step_row(s: &StressStep) -> serde_json::Value {
    let opt = |x: Option<f64>| x.map_or(serde_json::Value::Null, num);
    json!({
        "rate": num(s.rate), "from_s": num(s.from), "to_s": num(s.to), "windows": s.windows,
        "requests": s.requests, "errors": s.errors,
        "error_rate": num(if s.requests == 0 { 0.0 } else { s.errors as f64 / s.requests as f64 }),
        "p95_ms": opt(s.p95_ms), "service_p95_ms": opt(s.service_p95_ms),
        "achieved_rps": num(s.achieved_rps), "app_cores": opt(s.app_cores), "postgres_cores": opt(s.postgres_cores),
        "held": s.failure.is_none(), "failure": s.failure, "extra": s.extra,
    })
}

/// What ended the search, in words; `generator` is the step the load generator could not send.
fn search_ended(end: SearchEnd, spec: &StressSpec, breaking: f64, generator: Option<&StressStep>) -> String {
    match end {
        SearchEnd::ServiceBroke => "the service broke".to_string(),
        SearchEnd::MaxRate => format!("max_rate {}/s reached", spec.max_rate.unwrap_or(breaking)),
        SearchEnd::GeneratorLimit => match generator {
            Some(g) => format!(
                "the load generator's limit, not the service's: at {}/s it sent {:.0}/s while the service met the SLO",
                g.rate, g.achieved_rps
            ),
            None => "the load generator's limit".to_string(),
        },
        SearchEnd::StepLimit => format!("{MAX_EXTRA_STEPS} extra steps, all held"),
        SearchEnd::NotSearched => "no extra step was run".to_string(),
        SearchEnd::NoSteps => "nothing measured".to_string(),
    }
}

/// Why the step that broke failed the step SLO, in words.
fn why_it_broke(s: &StressStep, spec: &StressSpec) -> String {
    let slo_ms = spec.slo_p95.as_secs_f64() * 1000.0;
    match s.failure {
        Some("latency") => match s.p95_ms {
            Some(p) => format!("p95 {p:.1} ms > {slo_ms:.1} ms"),
            None => "no latency measured".to_string(),
        },
        _ if s.requests == 0 => "no request completed".to_string(),
        _ => format!(
            "{} of {} requests failed, {:.2}% > {:.2}%",
            s.errors,
            s.requests,
            s.errors as f64 / s.requests as f64 * 100.0,
            spec.max_error_rate * 100.0
        ),
    }
}

fn highest_held(steps: &[StressStep], below: f64) -> Option<&StressStep> {
    steps.iter().filter(|s| s.failure.is_none() && s.rate < below).max_by(|a, b| a.rate.total_cmp(&b.rate))
}

/// The capacity figures: what one instance held, its CPU per request there, what saturated
/// first at the step that ended the search, and instances for the plan's target.
fn capacity(target: Option<CapacityTarget>, held: &StressStep, limit: Option<&StressStep>, end: SearchEnd, cpus: u32) -> serde_json::Value {
    let opt = |x: Option<f64>| x.map_or(serde_json::Value::Null, num);
    let rps = if held.achieved_rps > 0.0 { held.achieved_rps } else { held.rate };
    let per_request = held.app_cores.map(|c| (c / rps * 1e6).round() / 1000.0);
    let cores = |s: &StressStep| format!("app {} cores, postgres {} cores", fmt_cores(s.app_cores), fmt_cores(s.postgres_cores));
    let (saturated, detail) = match (end, limit) {
        (SearchEnd::GeneratorLimit, Some(s)) => {
            ("generator", format!("the load generator could not send {}/s ({}); the service met its SLO", s.rate, cores(s)))
        }
        (SearchEnd::ServiceBroke, Some(s)) => {
            // A service saturates its CPU when it uses at least half the host's CPUs (the load
            // generator and the other services share them); otherwise the step broke with no
            // CPU saturated, and the failure itself (errors, latency) is what came first.
            let (app, pg) = (s.app_cores.unwrap_or(0.0), s.postgres_cores.unwrap_or(0.0));
            let saturated = f64::from(cpus.max(1)) * SATURATED_SHARE;
            let which = if app.max(pg) < saturated {
                if matches!(s.failure, Some("errors" | "timeouts")) { "errors" } else { "latency" }
            } else if app >= pg {
                "app_cpu"
            } else {
                "postgres_cpu"
            };
            (which, format!("at {}/s, broken by {}: {}", s.rate, s.failure.unwrap_or("?"), cores(s)))
        }
        (_, Some(s)) => ("none", format!("nothing saturated up to {}/s: {}", s.rate, cores(s))),
        (_, None) => ("none", "no step measured".to_string()),
    };
    let mut out = json!({
        "held_rps": num(held.rate),
        "achieved_rps": num(held.achieved_rps),
        "app_cores": opt(held.app_cores),
        "postgres_cores": opt(held.postgres_cores),
        "app_cpu_ms_per_request": opt(per_request),
        "saturated_first": saturated,
        "saturated_detail": detail,
        "search_end": end.key(),
    });
    if let Some(t) = target {
        out["target_rps"] = num(t.target_rps);
        out["headroom"] = num(t.headroom);
        out["instances"] = instances_needed(t, held.rate).map_or(serde_json::Value::Null, |n| json!(n));
    }
    out
}

fn fmt_cores(c: Option<f64>) -> String {
    c.map_or("?".to_string(), |c| format!("{c:.2}"))
}
