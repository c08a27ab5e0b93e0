//! Chaos: the expectations of a suite whose services were stopped and started, or cut off,
//! slowed or reset by the fault proxy.
//!
//! Statuses and errors come from the summary (whole-run totals and per-second windows), the
//! times of the actions from the recorded events (the plan's times minus the warm-up when an
//! event is missing), and the breaker and cache from the per-second metric scrapes.

use super::observations::Observations;
use super::verdict::check;
use crate::plan::compiled::{ChaosAction, ChaosSpec, Expectation, Service};
use crate::summary::Summary;

/// Gauge of the reference app's circuit breaker: 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "refapp_breaker_state";
pub const CACHE_HITS: &str = "refapp_cache_hits_total";

pub(super) fn evaluate(spec: &ChaosSpec, summary: &mut Summary, obs: &Observations, warmup: f64) {
    for e in &spec.expect {
        let (passed, detail) = match e {
            Expectation::NoErrors => no_errors(summary),
            Expectation::No5xxExcept503 => no_5xx_except_503(summary),
            Expectation::ErrorsStopWithin(d) => match last_recovery(spec, obs, warmup, None) {
                Some((a, t)) => errors_stop_within(summary, d.as_secs_f64(), t, a),
                None => (false, "no service was started again or healed".to_string()),
            },
            Expectation::TimeoutsHold(d) => timeouts_hold(summary, d.as_secs_f64() * 1000.0),
            Expectation::BreakerCycle => breaker_cycle(obs),
            Expectation::CacheRecovers => match last_recovery(spec, obs, warmup, Some(Service::Redis)) {
                Some((a, t)) => cache_recovers(obs, t, a),
                None => (false, "redis was not started again or healed".to_string()),
            },
            Expectation::OneWinnerPerSlot(n) => one_winner_per_slot(summary, *n),
        };
        check(summary, format!("chaos.{}", e.name()), passed, detail);
    }
}

/// When `a` happened, in seconds from the measured start: its recorded event (the last one
/// with the same text), or the planned time.
fn when(a: &ChaosAction, obs: &Observations, warmup: f64) -> f64 {
    let what = a.what();
    obs.events.iter().rev().find(|e| e.what == what).map_or(a.at.as_secs_f64() - warmup, |e| e.t)
}

/// The last `start` or `heal` (of `service`, or of any), with its time.
fn last_recovery(spec: &ChaosSpec, obs: &Observations, warmup: f64, service: Option<Service>) -> Option<(ChaosAction, f64)> {
    spec.actions.iter().rev().find(|a| a.verb.recovers() && service.is_none_or(|s| s == a.service)).map(|a| (*a, when(a, obs, warmup)))
}

/// Every endpoint's slowest service time is within `limit_ms`, and no request timed out in
/// the load generator (those have no service time).
fn timeouts_hold(summary: &Summary, limit_ms: f64) -> (bool, String) {
    let slowest = summary.endpoints.iter().filter_map(|(n, e)| e.service_ms.max.map(|m| (n, m))).max_by(|a, b| a.1.total_cmp(&b.1));
    let over: Vec<String> = summary
        .endpoints
        .iter()
        .filter_map(|(n, e)| e.service_ms.max.filter(|m| *m > limit_ms).map(|m| format!("{n} {m:.0} ms")))
        .collect();
    let timed_out: u64 = summary.endpoints.values().filter_map(|e| e.errors.by_kind.get("timeout")).sum();
    match slowest {
        _ if timed_out > 0 => (false, format!("{timed_out} requests got no answer within the load generator's request timeout")),
        None => (false, "no request was answered: no service time to judge".into()),
        Some(_) if !over.is_empty() => (false, format!("served slower than {limit_ms:.0} ms: {}", over.join(", "))),
        Some((n, m)) => (true, format!("slowest request {m:.0} ms ({n}), limit {limit_ms:.0} ms")),
    }
}

fn no_errors(summary: &Summary) -> (bool, String) {
    let failed: Vec<String> =
        summary.endpoints.iter().filter(|(_, e)| e.errors.total > 0).map(|(n, e)| format!("{n}: {}", e.errors.total)).collect();
    if failed.is_empty() { (true, "no failed request".into()) } else { (false, format!("failed requests: {}", failed.join(", "))) }
}

fn no_5xx_except_503(summary: &Summary) -> (bool, String) {
    let mut bad = Vec::new();
    let mut unavailable = 0;
    for (name, e) in &summary.endpoints {
        for (status, n) in &e.statuses {
            match status.parse::<u16>() {
                Ok(503) => unavailable += n,
                Ok(s) if (500..600).contains(&s) && *n > 0 => bad.push(format!("{n} × {s} on {name}")),
                _ => {}
            }
        }
    }
    if bad.is_empty() {
        (true, format!("no 5xx other than 503 ({unavailable} × 503)"))
    } else {
        (false, format!("5xx other than 503: {}", bad.join(", ")))
    }
}

fn errors_stop_within(summary: &Summary, within: f64, restart: f64, a: ChaosAction) -> (bool, String) {
    let late: Vec<_> = summary.windows.iter().filter(|w| w.errors > 0 && w.t as f64 >= restart + within).collect();
    let last = summary.windows.iter().rev().find(|w| w.errors > 0);
    let about = format!("`{}` at {restart:.1} s", a.what());
    match (late.first(), last) {
        (None, None) => (true, format!("no failed request at all ({about})")),
        (None, Some(l)) => {
            (true, format!("last failed request in the second starting {:.1} s after {about} (limit {within:.0} s)", l.t as f64 - restart))
        }
        (Some(f), _) => {
            let n: u64 = late.iter().map(|w| w.errors).sum();
            (false, format!("{n} requests failed {within:.0} s or more after {about}, the first in the second starting at {} s", f.t))
        }
    }
}

/// Sum of every series of `metric` (all label sets) in one scrape; `None` when absent.
fn metric(sample: &std::collections::BTreeMap<String, f64>, metric: &str) -> Option<f64> {
    let mut found = None;
    for (series, v) in sample {
        if series.split('{').next() == Some(metric) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

fn breaker_cycle(obs: &Observations) -> (bool, String) {
    let states: Vec<(f64, f64)> = obs.metrics.iter().filter_map(|(t, m)| metric(m, BREAKER_STATE).map(|v| (*t, v))).collect();
    let Some(&(_, last)) = states.last() else {
        return (false, format!("no sample of {BREAKER_STATE}: the breaker cannot be followed"));
    };
    let Some(opened) = states.iter().position(|(_, v)| *v == 1.0) else {
        return (false, format!("the breaker never opened ({} samples)", states.len()));
    };
    let open_t = states[opened].0;
    let Some(closed) = states[opened..].iter().find(|(_, v)| *v == 0.0) else {
        return (false, format!("the breaker opened at {open_t:.0} s and never closed again"));
    };
    if last != 0.0 {
        return (
            false,
            format!("the breaker opened at {open_t:.0} s, closed at {:.0} s, but is not closed at the end (state {last})", closed.0),
        );
    }
    let half_open = states[opened..].iter().any(|(_, v)| *v == 2.0);
    (true, format!("opened at {open_t:.0} s, closed again at {:.0} s{}", closed.0, if half_open { " (through half-open)" } else { "" }))
}

fn cache_recovers(obs: &Observations, restart: f64, a: ChaosAction) -> (bool, String) {
    let about = format!("`{}` at {restart:.1} s", a.what());
    let hits: Vec<(f64, f64)> =
        obs.metrics.iter().filter(|(t, _)| *t >= restart).filter_map(|(t, m)| metric(m, CACHE_HITS).map(|v| (*t, v))).collect();
    match (hits.first(), hits.last()) {
        (Some(first), Some(last)) if last.1 > first.1 => {
            (true, format!("{:.0} cache hits in the {:.0} s after {about}", last.1 - first.1, last.0 - first.0))
        }
        (Some(_), Some(_)) => (false, format!("no cache hit after {about} ({} samples)", hits.len())),
        _ => (false, format!("no sample of {CACHE_HITS} after {about}")),
    }
}

/// `201 Created` responses, whatever the request: in a write race only the booking creates.
fn one_winner_per_slot(summary: &Summary, slots: u64) -> (bool, String) {
    let created: u64 = summary.endpoints.values().filter_map(|e| e.statuses.get("201")).sum();
    let detail = format!("{created} bookings created (201) for {slots} slots");
    match created.cmp(&slots) {
        std::cmp::Ordering::Equal => (true, detail),
        std::cmp::Ordering::Greater => (false, format!("{detail}: a slot was booked more than once")),
        std::cmp::Ordering::Less => (false, format!("{detail}: some slots were never booked")),
    }
}
