//! The regression rule for one metric of one endpoint.
//!
//! In order, the first that applies decides:
//! 1. no samples in the current run (or no timed response for a latency metric): `regressed`,
//!    because no data is never a pass;
//! 2. no samples in the baseline: `noisy` (nothing to compare with, nothing to divide by);
//! 3. change within the threshold (relative for latency and throughput, absolute percentage
//!    points for the error rate; a zero baseline has no relative change, so any change counts
//!    as beyond it): `unchanged`;
//! 4. latency change not larger than the absolute floor: `unchanged`;
//! 5. fewer than `min_samples` measured requests on either side: `noisy`;
//! 6. the one-sided test in the direction of the change: p <= alpha gives `regressed` or
//!    `improved`, otherwise `noisy`; too few units to test gives `noisy`; and when a side has
//!    no per-window data at all (older summaries) the threshold and the floor decide alone,
//!    and the result says `untested`.

use crate::plan::MetricThresholds;

use super::model::{Metric, MetricComparison, TestMethod, TestResult, Verdict};
use super::stats::{Alternative, mann_whitney, two_proportion};
use super::units::{Units, Untestable};

/// What the rule needs to know about one endpoint on one side.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Aggregate {
    pub requests: u64,
    pub errors: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub rps: f64,
}

impl Aggregate {
    /// The metric's value: ms, req/s, or the error rate in percent.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let v = match metric {
            Metric::P50 => self.p50,
            Metric::P95 => self.p95,
            Metric::P99 => self.p99,
            Metric::Rps => (self.requests > 0).then_some(self.rps),
            Metric::ErrorRate => (self.requests > 0).then(|| 100.0 * self.errors.min(self.requests) as f64 / self.requests as f64),
        };
        v.filter(|x| x.is_finite())
    }
}

/// The limits applied to one metric of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub threshold: f64,
    pub overridden: bool,
    pub floor_ms: f64,
    pub min_samples: u64,
    pub alpha: f64,
}

impl Limits {
    pub fn for_metric(spec: &crate::plan::CompareRules, overrides: Option<&MetricThresholds>, metric: Metric) -> Self {
        let over = overrides.and_then(|o| match metric {
            Metric::P50 => o.p50,
            Metric::P95 => o.p95,
            Metric::P99 => o.p99,
            Metric::Rps => o.rps,
            Metric::ErrorRate => o.error_rate_points,
        });
        let default = if metric == Metric::ErrorRate { spec.error_rate_points } else { spec.threshold };
        Limits {
            threshold: over.unwrap_or(default),
            overridden: over.is_some(),
            floor_ms: spec.floor.as_secs_f64() * 1000.0,
            min_samples: spec.min_samples,
            alpha: spec.alpha,
        }
    }
}

/// Formats a change for reasons: `+25.3% (+2.10 ms)`, `-40.0% (-8.0 req/s)`, `+4.90 points`.
pub fn describe_change(metric: Metric, delta_abs: f64, delta_rel: Option<f64>) -> String {
    match metric {
        Metric::ErrorRate => format!("{delta_abs:+.2} points"),
        _ => {
            let abs = match metric {
                Metric::Rps => format!("{delta_abs:+.1} req/s"),
                _ => format!("{delta_abs:+.2} ms"),
            };
            match delta_rel {
                Some(r) => format!("{:+.1}% ({abs})", r * 100.0),
                None => format!("{abs} from zero"),
            }
        }
    }
}

fn describe_threshold(metric: Metric, limits: &Limits) -> String {
    match metric {
        Metric::ErrorRate => format!("{:.2} points", limits.threshold),
        _ => format!("{:.0}%", limits.threshold * 100.0),
    }
}

/// Judges one metric. `units` is asked for the test samples only when the metric has values on
/// both sides.
pub(crate) fn judge(
    metric: Metric,
    base: &Aggregate,
    head: &Aggregate,
    limits: Limits,
    units: impl FnOnce() -> Result<Units, Untestable>,
) -> MetricComparison {
    let (b, h) = (base.value(metric), head.value(metric));
    let mut out = MetricComparison {
        metric,
        base: b,
        head: h,
        delta_abs: None,
        delta_rel: None,
        threshold: limits.threshold,
        overridden: limits.overridden,
        floor_ms: metric.is_latency().then_some(limits.floor_ms),
        test: None,
        tested: false,
        verdict: Verdict::Unchanged,
        reason: String::new(),
    };
    let verdict = |out: &mut MetricComparison, v: Verdict, reason: String| {
        out.verdict = v;
        out.reason = reason;
    };
    let Some(h) = h.filter(|_| head.requests > 0) else {
        let why = if head.requests == 0 {
            "no samples in the current run".to_string()
        } else {
            format!("no timed response among {} requests in the current run", head.requests)
        };
        verdict(&mut out, Verdict::Regressed, why);
        return out;
    };
    let Some(b) = b.filter(|_| base.requests > 0) else {
        verdict(&mut out, Verdict::Noisy, "the baseline has no samples to compare with".to_string());
        return out;
    };

    let delta_abs = h - b;
    let delta_rel = (b != 0.0).then(|| delta_abs / b);
    out.delta_abs = Some(delta_abs);
    out.delta_rel = delta_rel;
    let higher_is_worse = metric != Metric::Rps;
    let worse = if higher_is_worse { delta_abs > 0.0 } else { delta_abs < 0.0 };
    let change = describe_change(metric, delta_abs, delta_rel);
    let limit = describe_threshold(metric, &limits);

    // The test runs whenever it can, so reports can show p-values for every metric.
    let alt = if delta_abs > 0.0 { Alternative::HeadGreater } else { Alternative::HeadLess };
    let tested: Result<TestResult, Untestable> = if metric == Metric::ErrorRate {
        two_proportion(base.errors, base.requests, head.errors, head.requests, alt)
            .map(|p| TestResult { method: TestMethod::TwoProportion, p_value: p, n_base: base.requests, n_head: head.requests })
            .ok_or(Untestable::NoWindows)
    } else {
        units().and_then(|u| {
            let method = if u.block == 0 { TestMethod::MannWhitneyRounds } else { TestMethod::MannWhitneyWindows { block_s: u.block } };
            mann_whitney(&u.base, &u.head, alt)
                .map(|r| TestResult { method, p_value: r.p_value, n_base: u.base.len() as u64, n_head: u.head.len() as u64 })
                .ok_or(Untestable::TooFewUnits { base: u.base.len(), head: u.head.len(), per_unit: 1, needed: 1 })
        })
    };
    if let Ok(t) = &tested {
        out.test = Some(t.clone());
        out.tested = true;
    }

    let beyond = match (metric, delta_rel) {
        (Metric::ErrorRate, _) => delta_abs.abs() > limits.threshold,
        (_, Some(r)) => r.abs() > limits.threshold,
        (_, None) => delta_abs != 0.0,
    };
    if !beyond {
        verdict(&mut out, Verdict::Unchanged, format!("{change} is within {limit}"));
        return out;
    }
    if metric.is_latency() && delta_abs.abs() <= limits.floor_ms {
        let reason = format!("{change} is under the {} ms floor", fmt_floor(limits.floor_ms));
        verdict(&mut out, Verdict::Unchanged, reason);
        return out;
    }
    if base.requests < limits.min_samples || head.requests < limits.min_samples {
        let reason = format!(
            "{change} beyond {limit}, but too few samples ({} base, {} head; {} needed)",
            base.requests, head.requests, limits.min_samples
        );
        verdict(&mut out, Verdict::Noisy, reason);
        return out;
    }
    let moved = if worse { Verdict::Regressed } else { Verdict::Improved };
    match tested {
        Ok(t) if t.p_value <= limits.alpha => {
            verdict(&mut out, moved, format!("{change} beyond {limit}, p={} ({})", fmt_p(t.p_value), t.method));
        }
        Ok(t) => {
            let reason = format!("{change} beyond {limit}, but not significant (p={} > {})", fmt_p(t.p_value), limits.alpha);
            verdict(&mut out, Verdict::Noisy, reason);
        }
        Err(Untestable::NoWindows) => {
            verdict(&mut out, moved, format!("{change} beyond {limit} (untested: no per-window data)"));
        }
        Err(why) => verdict(&mut out, Verdict::Noisy, format!("{change} beyond {limit}, but {}", why.describe())),
    }
    out
}

/// A p-value for people: 3 significant digits, scientific below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

fn fmt_floor(ms: f64) -> String {
    if ms.fract() == 0.0 { format!("{ms:.0}") } else { format!("{ms}") }
}
