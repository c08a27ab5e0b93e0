//! The regression rule for one metric of one endpoint: one rule for a stored baseline and for
//! A/B alike.
//!
//! In order, the first that applies decides:
//! 1. no samples in the current run (or no timed response for a latency metric): `regressed`,
//!    because no data is never a pass;
//! 2. no samples in the baseline: `noisy` (nothing to compare with, nothing to divide by);
//! 3. change within the threshold (relative for latency and throughput, absolute percentage
//!    points for the error rate; a zero baseline has no relative change, so any change counts
//!    as beyond it): `unchanged`;
//! 4. latency change not larger than the floor (the plan's, or the noise an A/A run of this
//!    testbed showed): `unchanged`;
//! 5. fewer than `min_samples` measured requests on either side: `noisy`;
//! 6. the evidence, the change's confidence interval from the resampled segments
//!    ([`super::resample`]): it must leave out every change up to [`MARGIN`] of the threshold,
//!    on the side the change went: `regressed` or `improved`; otherwise `noisy`. A side without segments (a summary from an older writer) falls back to the
//!    older window tests ([`super::units`]): p <= alpha; and with no per-window data at all
//!    the threshold and the floor decide alone, and the result says `untested`.
//!
//! Against a stored baseline, a latency change with an interval is read beside the suite's
//! other endpoints ([`super::shift`]) before rung 3: the shift they share, up to
//! [`Limits::shared`], is taken out of the head's value and of the interval, and the rungs
//! judge what is left (the reason says both).
//!
//! Every compared metric with segments also says the smallest change it could have seen
//! ([`detectable`]): what a pass is worth.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::plan::MetricThresholds;

use super::model::{Metric, MetricComparison, TestMethod, TestResult, Verdict, bound};
use super::resample::{Estimate, NoSegments};
use super::units::Untestable;

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

/// Where a latency floor came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Floor {
    /// No floor: the evidence alone decides.
    None,
    /// Set in the plan (for all endpoints or this one), in ms.
    Plan(f64),
    /// The change an A/A run of this testbed showed for this endpoint and metric, as a
    /// fraction of the baseline's value.
    Noise(f64),
}

impl Floor {
    /// The floor in ms for a baseline value of `base` ms.
    fn ms(self, base: f64) -> Option<f64> {
        match self {
            Floor::None => None,
            Floor::Plan(ms) => Some(ms),
            Floor::Noise(rel) => Some(rel * base.abs()),
        }
    }

    fn source(self) -> Option<&'static str> {
        match self {
            Floor::None => None,
            Floor::Plan(_) => Some("plan"),
            Floor::Noise(_) => Some("noise"),
        }
    }
}

/// The limits applied to one metric of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub threshold: f64,
    pub overridden: bool,
    pub floor: Floor,
    pub min_samples: u64,
    pub alpha: f64,
    /// The most of a shift shared by the suite's other endpoints taken out of this metric's
    /// change (a fraction: the plan's `shared_shift`, never more than the threshold; 0 for
    /// throughput and errors).
    pub shared: f64,
}

impl Limits {
    /// The plan's limits for `metric`, with the endpoint's overrides; `noise` is the A/A
    /// change recorded for this endpoint and metric (a fraction), used as the floor when the
    /// plan sets none.
    pub fn for_metric(spec: &crate::plan::CompareRules, overrides: Option<&MetricThresholds>, metric: Metric, noise: Option<f64>) -> Self {
        let over = overrides.and_then(|o| match metric {
            Metric::P50 => o.p50,
            Metric::P95 => o.p95,
            Metric::P99 => o.p99,
            Metric::Rps => o.rps,
            Metric::ErrorRate => o.error_rate_points,
        });
        let default = if metric == Metric::ErrorRate { spec.error_rate_points } else { spec.threshold };
        let plan_floor = overrides.and_then(|o| o.floor).map(|d| d.0).or(spec.floor);
        let floor = match (plan_floor, noise) {
            _ if !metric.is_latency() => Floor::None,
            (Some(d), _) => Floor::Plan(d.as_secs_f64() * 1000.0),
            (None, Some(rel)) if rel > 0.0 => Floor::Noise(rel),
            (None, _) => Floor::None,
        };
        let threshold = over.unwrap_or(default);
        let shared = if metric.is_latency() { spec.shared_shift.min(threshold) } else { 0.0 };
        Limits { threshold, overridden: over.is_some(), floor, min_samples: spec.min_samples, alpha: spec.alpha, shared }
    }

    /// The confidence of the intervals: `1 - alpha`.
    pub fn level(&self) -> f64 {
        1.0 - self.alpha
    }
}

/// What says whether a change is real.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Evidence {
    /// The change's interval from the resampled segments; `units` segments (or pairs) a side.
    Interval { estimate: Estimate, units: (usize, usize), paired: bool },
    /// The older tests, for a side without segments: a one-sided p-value, or why none.
    Legacy(Result<TestResult, Untestable>),
    /// Segments that could not be resampled, and no older test to fall back to.
    Missing(NoSegments),
}

/// The share of the threshold a change's interval must leave out: a change beyond a 20%
/// threshold counts when its interval leaves out every change of 12% or less. Then a change
/// of half the threshold reads as a regression about once in a hundred comparisons however
/// noisy the measurement (its interval must clear 12% while centred near 10%), and one of one
/// and a half times the threshold is caught nineteen times in twenty while the interval's
/// half-width stays under about 10%.
pub const MARGIN: f64 = 0.6;

fn describe_noise(metric: Metric, margin: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{margin:.2} points"),
        _ => format!("{:.0}%", margin * 100.0),
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

/// An interval for people: `95% CI +8.1% … +16.9%`, or in points for the error rate.
pub fn describe_interval(metric: Metric, low: f64, high: f64, level: f64) -> String {
    let pct = (level * 100.0).round();
    match metric {
        Metric::ErrorRate => format!("{pct:.0}% CI {} … {} points", bound(low, 2), bound(high, 2)),
        _ => format!("{pct:.0}% CI {}% … {}%", bound(low * 100.0, 1), bound(high * 100.0, 1)),
    }
}

fn describe_threshold(metric: Metric, limits: &Limits) -> String {
    match metric {
        Metric::ErrorRate => format!("{:.2} points", limits.threshold),
        _ => format!("{:.0}%", limits.threshold * 100.0),
    }
}

/// The smallest change the comparison would have called four times out of five: past the
/// margin by `z(level) + z(0.8)` standard errors, and never under the threshold or the floor
/// (as a fraction of `base`). A fraction for latency and throughput, points for the error rate.
pub(crate) fn detectable(metric: Metric, se: f64, limits: &Limits, base: f64) -> f64 {
    let normal = Normal::standard();
    let z = normal.inverse_cdf(1.0 - (1.0 - limits.level()) / 2.0) + normal.inverse_cdf(0.8);
    let floor = limits.floor.ms(base).filter(|_| base > 0.0).map_or(0.0, |ms| ms / base);
    let margin = MARGIN * limits.threshold;
    match metric {
        Metric::ErrorRate => limits.threshold.max(margin + z * se),
        _ => limits.threshold.max(floor).max(((1.0 + margin).ln() + z * se).exp_m1()),
    }
}

/// Judges one metric. `evidence` is asked for only when the metric has values on both sides.
// Long: the rule is one ladder read top to bottom (no data, within the threshold, under the
// floor, too few samples, then what the evidence says), each rung a return with its reason;
// kept in one place so that its order is the README's.
pub(crate) fn judge(
    metric: Metric,
    base: &Aggregate,
    head: &Aggregate,
    limits: Limits,
    shift: Option<(f64, usize)>,
    evidence: impl FnOnce() -> Evidence,
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
        floor_ms: None,
        floor_from: None,
        interval: None,
        level: None,
        detectable: None,
        shared_shift: None,
        test: None,
        tested: false,
        verdict: Verdict::Unchanged,
        reason: String::new(),
    };
    let Some(h) = h.filter(|_| head.requests > 0) else {
        let why = if head.requests == 0 {
            "no samples in the current run".to_string()
        } else {
            format!("no timed response among {} requests in the current run", head.requests)
        };
        return decided(out, Verdict::Regressed, why);
    };
    let Some(b) = b.filter(|_| base.requests > 0) else {
        return decided(out, Verdict::Noisy, "the baseline has no samples to compare with".to_string());
    };
    let mut evidence = evidence();
    // The suite's shared shift, taken out where the machine could have made it: a latency
    // metric with an interval (its bounds move with it), within the limit.
    let taken = match (&mut evidence, shift) {
        (Evidence::Interval { estimate, .. }, Some((s, n))) if metric.is_latency() && b > 0.0 && s != 0.0 && s.abs() <= limits.shared => {
            *estimate = beside_shift(estimate, s);
            Some((s, n))
        }
        _ => None,
    };
    let judged = taken.map_or(h, |(s, _)| h / (1.0 + s));
    let delta_abs = judged - b;
    let delta_rel = (b != 0.0).then(|| delta_abs / b);
    out.delta_abs = Some(delta_abs);
    out.delta_rel = delta_rel;
    out.shared_shift = taken.map(|(s, _)| s);
    if metric.is_latency() {
        out.floor_ms = limits.floor.ms(b);
        out.floor_from = limits.floor.source().map(str::to_string);
    }
    record_evidence(&mut out, metric, &evidence, &limits, b);
    let higher_is_worse = metric != Metric::Rps;
    let worse = if higher_is_worse { delta_abs > 0.0 } else { delta_abs < 0.0 };
    let moved = if worse { Verdict::Regressed } else { Verdict::Improved };
    let mut change = describe_change(metric, delta_abs, delta_rel);
    if let Some((s, n)) = taken {
        let measured = (h - b) / b;
        change.push_str(&format!(
            " beside the {:+.1}% the {n} other endpoints moved together (as measured {:+.1}%)",
            s * 100.0,
            measured * 100.0
        ));
    }
    let limit = describe_threshold(metric, &limits);
    let ci = match &out.interval {
        Some([low, high]) => format!(", {}", describe_interval(metric, *low, *high, limits.level())),
        None => String::new(),
    };

    let beyond = match (metric, delta_rel) {
        (Metric::ErrorRate, _) => delta_abs.abs() > limits.threshold,
        (_, Some(r)) => r.abs() > limits.threshold,
        (_, None) => delta_abs != 0.0,
    };
    if !beyond {
        return decided(out, Verdict::Unchanged, format!("{change} is within {limit}{ci}"));
    }
    if let Some(floor) = out.floor_ms.filter(|f| delta_abs.abs() <= *f) {
        let whose = match limits.floor {
            Floor::Noise(_) => " (the change an A/A run of this testbed showed)",
            _ => "",
        };
        return decided(out, Verdict::Unchanged, format!("{change} is under the {} ms floor{whose}", fmt_floor(floor)));
    }
    if base.requests < limits.min_samples || head.requests < limits.min_samples {
        let reason = format!(
            "{change} beyond {limit}, but too few samples ({} base, {} head; {} needed)",
            base.requests, head.requests, limits.min_samples
        );
        return decided(out, Verdict::Noisy, reason);
    }
    match evidence {
        Evidence::Interval { estimate, .. } => {
            // The interval is of the same change, read from the resamples. A change beyond the
            // threshold counts when the interval also leaves out every change up to
            // [`MARGIN`] of the threshold, on the side it went: a percentile whose estimate
            // wandered past the threshold is not enough, it must be clear of the noise by a
            // margin the threshold sets.
            let margin = MARGIN * limits.threshold;
            let clear = if delta_abs > 0.0 { estimate.low > margin } else { estimate.high < -margin };
            if clear {
                decided(out, moved, format!("{change} beyond {limit}{ci}"))
            } else {
                let near = describe_noise(metric, margin);
                decided(
                    out,
                    Verdict::Noisy,
                    format!("{change} beyond {limit}, but not clear of the noise: the interval reaches {near}{ci}"),
                )
            }
        }
        Evidence::Legacy(Ok(t)) if t.p_value <= limits.alpha => {
            decided(out, moved, format!("{change} beyond {limit}, p={} ({})", fmt_p(t.p_value), t.method))
        }
        Evidence::Legacy(Ok(t)) => decided(
            out,
            Verdict::Noisy,
            format!("{change} beyond {limit}, but not significant (p={} > {})", fmt_p(t.p_value), limits.alpha),
        ),
        Evidence::Legacy(Err(Untestable::NoWindows)) => {
            decided(out, moved, format!("{change} beyond {limit} (untested: no per-window data)"))
        }
        Evidence::Legacy(Err(why)) => decided(out, Verdict::Noisy, format!("{change} beyond {limit}, but {}", why.describe())),
        Evidence::Missing(why) => decided(out, Verdict::Noisy, format!("{change} beyond {limit}, but {}", why.describe())),
    }
}

/// `estimate` with a shared shift `s` (a fraction) taken out: the change and its bounds divided
/// by `1 + s`; the one-sided p-value read again from the standard error of the log ratio (the
/// resamples are not kept).
fn beside_shift(estimate: &Estimate, s: f64) -> Estimate {
    let out = |x: f64| (1.0 + x) / (1.0 + s) - 1.0;
    let change = out(estimate.change);
    let p_value = if estimate.se > 0.0 { Normal::standard().cdf(-((1.0 + change).ln().abs() / estimate.se)) } else { estimate.p_value };
    Estimate { change, low: out(estimate.low), high: out(estimate.high), p_value, se: estimate.se }
}

/// Puts what the evidence says into the comparison: the test, the interval, what it could
/// have detected.
fn record_evidence(out: &mut MetricComparison, metric: Metric, evidence: &Evidence, limits: &Limits, base: f64) {
    match evidence {
        Evidence::Interval { estimate, units, paired } => {
            out.test = Some(TestResult {
                method: TestMethod::SegmentBootstrap { paired: *paired },
                p_value: estimate.p_value,
                n_base: units.0 as u64,
                n_head: units.1 as u64,
            });
            out.tested = true;
            out.interval = Some([estimate.low, estimate.high]);
            out.level = Some(limits.level());
            out.detectable = Some(detectable(metric, estimate.se, limits, base));
        }
        Evidence::Legacy(Ok(t)) => {
            out.test = Some(t.clone());
            out.tested = true;
        }
        Evidence::Legacy(Err(_)) | Evidence::Missing(_) => {}
    }
}

fn decided(mut out: MetricComparison, verdict: Verdict, reason: String) -> MetricComparison {
    out.verdict = verdict;
    out.reason = reason;
    out
}

/// A p-value for people: 3 significant digits, scientific below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

fn fmt_floor(ms: f64) -> String {
    if ms >= 1.0 && ms.fract() == 0.0 { format!("{ms:.0}") } else { format!("{ms:.2}") }
}
