//! Stress: the arrival rate is raised in steps (the holds of a ramping-arrival-rate
//! scenario); the breaking point is the highest rate held before the first step that broke
//! the step SLO, and the failure mode says how it broke.
//!
//! Steps are judged on the whole-suite windows that lie entirely within a hold (ramps and the
//! warm-up are left out), so a stress suite should run its ramping scenario alone.

use serde_json::json;

use super::{check, figure, num, windows_within};
use crate::plan::compiled::{StressSpec, Suite};
use crate::summary::Summary;

/// A measured step.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    rate: f64,
    /// Measured seconds `[from, to)`.
    from: f64,
    to: f64,
    windows: usize,
    requests: u64,
    errors: u64,
    p95_ms: Option<f64>,
    failure: Option<&'static str>,
}

pub(super) fn evaluate(spec: &StressSpec, suite: &Suite, summary: &mut Summary, warmup: f64) {
    let Some((offset, steps)) = suite.scenarios.iter().map(|s| (s.start, s.shape.holds())).find(|(_, h)| !h.is_empty()) else {
        check(summary, "stress.breaking_point", false, "the suite has no ramping-arrival-rate scenario with steps");
        return;
    };
    // Per-step error kinds are not recorded (windows only count errors), so the timeout share
    // of the whole run's errors stands in for each failing step's.
    let (timeouts, all_errors) = summary
        .endpoints
        .values()
        .fold((0u64, 0u64), |(t, a), e| (t + e.errors.by_kind.get("timeout").copied().unwrap_or(0), a + e.errors.total));
    let timeouts_dominate = all_errors > 0 && timeouts * 2 > all_errors;
    let slo_ms = spec.slo_p95.as_secs_f64() * 1000.0;

    let mut measured = Vec::new();
    for h in &steps {
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
        let p95_ms = (weight > 0.0).then(|| weighted / weight);
        let error_rate = if requests == 0 { 1.0 } else { errors as f64 / requests as f64 };
        let failure = if requests == 0 || error_rate > spec.max_error_rate {
            Some(if timeouts_dominate { "timeouts" } else { "errors" })
        } else if p95_ms.is_none_or(|p| p > slo_ms) {
            Some("latency")
        } else {
            None
        };
        measured.push(Step { rate: h.rate, from, to, windows: ws.len(), requests, errors, p95_ms, failure });
    }

    let first_failure = measured.iter().position(|s| s.failure.is_some());
    let held = &measured[..first_failure.unwrap_or(measured.len())];
    let breaking = held.iter().map(|s| s.rate).fold(0.0, f64::max);
    let mode = first_failure.and_then(|i| measured[i].failure).unwrap_or("none");
    figure(summary, "breaking_rate", num(breaking));
    figure(summary, "failure_mode", mode);
    let table: Vec<_> = measured
        .iter()
        .map(|s| {
            json!({
                "rate": num(s.rate), "from_s": num(s.from), "to_s": num(s.to), "windows": s.windows,
                "requests": s.requests, "errors": s.errors,
                "error_rate": num(if s.requests == 0 { 0.0 } else { s.errors as f64 / s.requests as f64 }),
                "p95_ms": s.p95_ms.map_or(serde_json::Value::Null, num),
                "held": s.failure.is_none(), "failure": s.failure,
            })
        })
        .collect();
    figure(summary, "steps", table);

    let how = match first_failure.map(|i| &measured[i]) {
        None if measured.is_empty() => "no step was measured (all inside the warm-up?)".to_string(),
        None => format!("every step held (up to {breaking}/s)"),
        Some(s) => {
            let why = match s.failure {
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
            };
            format!("held {breaking}/s; broke at {}/s by {mode} ({why})", s.rate)
        }
    };
    let passed = breaking >= spec.min_breaking_rate && !measured.is_empty();
    check(summary, "stress.breaking_point", passed, format!("{how}; at least {}/s required", spec.min_breaking_rate));
}
