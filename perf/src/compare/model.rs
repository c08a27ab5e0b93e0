//! What a comparison produces: verdicts per metric, per endpoint, per suite.
//!
//! Everything here is plain data (serializable, so the orchestration can keep it beside the
//! summaries) and carries enough to explain itself: both values, both deltas, the threshold
//! actually used, the test and its p-value, and a one-line reason.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The verdict of one metric, one endpoint, one suite or the whole run.
///
/// Variants are declared from least to most severe: an endpoint takes the most severe verdict
/// of its metrics, a suite the most severe of its endpoints. `Improved` ranks above
/// `Unchanged` so that an endpoint with one real improvement and nothing worse shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Within the threshold, under the floor, or not distinguishable from no change.
    Unchanged,
    /// Better by more than the threshold and the floor, and significant.
    Improved,
    /// No baseline for this endpoint (or no baseline at all).
    New,
    /// Beyond the threshold but not significant, too few samples, or not testable.
    Noisy,
    /// In the baseline, absent from the current run: reported, never dropped.
    Missing,
    /// Worse by more than the threshold and the floor, and significant; or no samples at all
    /// in the current run (no data is never a pass).
    Regressed,
}

impl Verdict {
    /// The lower-case word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unchanged => "unchanged",
            Verdict::Improved => "improved",
            Verdict::New => "new",
            Verdict::Noisy => "noisy",
            Verdict::Missing => "missing",
            Verdict::Regressed => "regressed",
        }
    }

    /// The most severe of `verdicts`, or `Unchanged` when there are none.
    pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().max().unwrap_or(Verdict::Unchanged)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compared metric of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    P50,
    P95,
    P99,
    Rps,
    ErrorRate,
}

impl Metric {
    /// Every compared metric, in report order.
    pub const ALL: [Metric; 5] = [Metric::P50, Metric::P95, Metric::P99, Metric::Rps, Metric::ErrorRate];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Rps => "rps",
            Metric::ErrorRate => "errors",
        }
    }

    /// The quantile of a latency metric.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.50),
            Metric::P95 => Some(0.95),
            Metric::P99 => Some(0.99),
            Metric::Rps | Metric::ErrorRate => None,
        }
    }

    pub fn is_latency(self) -> bool {
        self.quantile().is_some()
    }

    /// Unit of the metric's values: `ms`, `req/s`, or `%` for the error rate.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::P50 | Metric::P95 | Metric::P99 => "ms",
            Metric::Rps => "req/s",
            Metric::ErrorRate => "%",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the significance of a change was tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TestMethod {
    /// Mann-Whitney U over per-window values, windows pooled into blocks of `block_s` seconds.
    MannWhitneyWindows { block_s: u32 },
    /// Mann-Whitney U over per-round values (A/B mode).
    MannWhitneyRounds,
    /// One-sided two-proportion z-test on error counts.
    TwoProportion,
    /// The segments' histograms resampled (`compare::resample`): independently on each side
    /// against a stored baseline, by pairs in A/B mode.
    SegmentBootstrap { paired: bool },
}

impl fmt::Display for TestMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestMethod::MannWhitneyWindows { block_s: 1 } => f.write_str("mann-whitney over 1 s windows"),
            TestMethod::MannWhitneyWindows { block_s } => {
                write!(f, "mann-whitney over {block_s} s blocks")
            }
            TestMethod::MannWhitneyRounds => f.write_str("mann-whitney over rounds"),
            TestMethod::TwoProportion => f.write_str("two-proportion z-test"),
            TestMethod::SegmentBootstrap { paired: true } => f.write_str("paired bootstrap over segments"),
            TestMethod::SegmentBootstrap { paired: false } => f.write_str("bootstrap over segments"),
        }
    }
}

/// A significance test that was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub method: TestMethod,
    /// One-sided p-value in the direction of the observed change.
    pub p_value: f64,
    /// Units compared on each side (segments or pairs, windows, blocks, rounds, or requests
    /// for error rates).
    pub n_base: u64,
    pub n_head: u64,
}

/// The comparison of one metric of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    pub metric: Metric,
    /// Baseline value: ms for latency, req/s for throughput, percent for the error rate.
    pub base: Option<f64>,
    pub head: Option<f64>,
    /// `head - base`, in the metric's unit (percentage points for the error rate); beside the
    /// suite's shared shift where one was taken out (`shared_shift`).
    pub delta_abs: Option<f64>,
    /// `(head - base) / base`; `None` when the baseline is zero or absent (no division by 0).
    pub delta_rel: Option<f64>,
    /// Threshold used after overrides: a fraction for latency and throughput, percentage
    /// points for the error rate.
    pub threshold: f64,
    /// True when a per-endpoint override set `threshold`.
    pub overridden: bool,
    /// Absolute floor in ms (latency metrics only): a change no larger never counts.
    pub floor_ms: Option<f64>,
    /// Where the floor came from: `plan` (set in `[compare]`), `noise` (the change an A/A run
    /// of this testbed showed, recorded beside the stored baseline). Absent: no floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_from: Option<String>,
    /// The change's confidence interval `[low, high]` at `level`: fractions for latency and
    /// throughput (like `delta_rel`), points for the error rate. Absent when a side has no
    /// segments to resample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
    /// The smallest change this comparison would have called four times out of five
    /// (fraction, or points for the error rate): the threshold, the floor or the noise,
    /// whichever is largest. What a pass is worth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectable: Option<f64>,
    /// Against a stored baseline, the change the suite's other endpoints shared (their median,
    /// a fraction), taken out of this one's: then `delta_abs`, `delta_rel` and `interval` are
    /// of the change beside it (`head / (1 + shared_shift) - base`), `head` as measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_shift: Option<f64>,
    /// The significance test, when one could be run.
    pub test: Option<TestResult>,
    /// False when no test could be run because a side carries no per-window data: the
    /// verdict then rests on the threshold and the floor alone.
    pub tested: bool,
    pub verdict: Verdict,
    /// One line saying why.
    pub reason: String,
}

/// The comparison of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointComparison {
    pub name: String,
    /// Most severe of the metric verdicts.
    pub verdict: Verdict,
    /// Measured requests in the baseline (`None` when the endpoint is new).
    pub base_requests: Option<u64>,
    /// Measured requests now (`None` when the endpoint is missing).
    pub head_requests: Option<u64>,
    /// In [`Metric::ALL`] order.
    pub metrics: Vec<MetricComparison>,
}

impl MetricComparison {
    /// The interval in a few characters, in the change's own unit: `+8.1 … +16.9%`,
    /// `-0.20 … +0.90 pt`; `None` without one. A bound that is not zero never prints as zero
    /// (`+0.03 … +141.6%`): whether an interval leaves out no change is what a reader looks for.
    pub fn interval_short(&self) -> Option<String> {
        let [low, high] = self.interval?;
        Some(match self.metric {
            Metric::ErrorRate => format!("{} … {} pt", bound(low, 2), bound(high, 2)),
            _ => format!("{} … {}%", bound(low * 100.0, 1), bound(high * 100.0, 1)),
        })
    }

    /// Half the interval's width, rounded, for a table cell: `±9%`, `±0.4 pt`.
    pub fn noise_short(&self) -> Option<String> {
        let [low, high] = self.interval?;
        let half = (high - low) / 2.0;
        Some(match self.metric {
            Metric::ErrorRate => format!("±{half:.1} pt"),
            _ if half * 100.0 < 10.0 => format!("±{:.1}%", half * 100.0),
            _ => format!("±{:.0}%", half * 100.0),
        })
    }

    /// The smallest change this comparison could have seen: `20%`, `1.0 pt`.
    pub fn detectable_short(&self) -> Option<String> {
        let d = self.detectable?;
        Some(match self.metric {
            Metric::ErrorRate => format!("{d:.1} pt"),
            _ => format!("{:.0}%", d * 100.0),
        })
    }

    /// The change in a few characters: `+29.3%`, `+0.40 pt`, `+2.10 ms from 0`, `-` when there
    /// is none. Every report and the headline say a change this way.
    pub fn delta_short(&self) -> String {
        match (self.metric, self.delta_abs, self.delta_rel) {
            (_, None, _) => "-".to_string(),
            (Metric::ErrorRate, Some(d), _) => format!("{d:+.2} pt"),
            (_, Some(_), Some(r)) => format!("{:+.1}%", r * 100.0),
            (Metric::Rps, Some(d), None) => format!("{d:+.1} req/s from 0"),
            (_, Some(d), None) => format!("{d:+.2} ms from 0"),
        }
    }

    /// How much worse the metric got, in multiples of its threshold (so that a p50, a
    /// throughput and an error rate can be ranked together): latency `+60%` against a 20%
    /// threshold is 3, throughput `-30%` is 1.5, errors `+2 pt` against 1 pt is 2. Zero when
    /// it got better or cannot be told.
    pub fn worsening(&self) -> f64 {
        let moved = match self.metric {
            Metric::P50 | Metric::P95 | Metric::P99 => self.delta_rel,
            Metric::Rps => self.delta_rel.map(|r| -r),
            Metric::ErrorRate => self.delta_abs,
        };
        match moved {
            Some(m) if m > 0.0 && self.threshold > 0.0 => m / self.threshold,
            Some(m) if m > 0.0 => m,
            _ => 0.0,
        }
    }
}

impl EndpointComparison {
    pub fn metric(&self, metric: Metric) -> Option<&MetricComparison> {
        self.metrics.iter().find(|m| m.metric == metric)
    }

    /// The regressed metric that moved most ([`MetricComparison::worsening`]), if any.
    pub fn biggest_regression(&self) -> Option<&MetricComparison> {
        self.metrics.iter().filter(|m| m.verdict == Verdict::Regressed).max_by(|a, b| a.worsening().total_cmp(&b.worsening()))
    }

    /// The size of the endpoint's regression: its biggest regressed metric's worsening (an
    /// endpoint with no samples at all ranks first).
    pub fn effect(&self) -> f64 {
        match self.biggest_regression() {
            Some(m) if m.head.is_none() => f64::INFINITY,
            Some(m) => m.worsening(),
            None => 0.0,
        }
    }
}

/// What the current run was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CompareMode {
    /// Nothing: every endpoint is new.
    NoBaseline,
    /// A stored summary.
    Baseline,
    /// A/B: base and head in pairs of segments run back to back on the same machine.
    AB { pairs: u32 },
    /// Whole runs on each side (the nightly history's nights).
    Rounds { base_rounds: u32, head_rounds: u32 },
}

/// The rule's settings as they were applied (overrides are recorded per metric).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesApplied {
    pub threshold: f64,
    /// The plan's floor for every endpoint; `None`: the measured noise, or none.
    pub floor_ms: Option<f64>,
    pub error_rate_points: f64,
    pub min_samples: u64,
    pub alpha: f64,
}

/// The comparison of one suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteComparison {
    pub suite: String,
    pub mode: CompareMode,
    /// Most severe of the endpoint verdicts (`New` when there is no baseline).
    pub verdict: Verdict,
    /// Sorted by name; missing endpoints included.
    pub endpoints: Vec<EndpointComparison>,
    /// Caveats about comparability: older schema, changed plan, other backend, invalid baseline.
    pub notes: Vec<String>,
    pub rules: RulesApplied,
}

impl SuiteComparison {
    /// Names of the endpoints whose verdict is `regressed`: the ones a confirmation re-run
    /// must look at again.
    pub fn regressed_endpoints(&self) -> Vec<&str> {
        self.endpoints.iter().filter(|e| e.verdict == Verdict::Regressed).map(|e| e.name.as_str()).collect()
    }

    /// The metrics a comparison could not decide, as `endpoint metric`: beyond their threshold
    /// but not clear of the noise, or with too few requests to test, where the baseline has a
    /// value. More requests can decide them; in A/B, a second pass of pairs
    /// (`run::judge::judge_pairs`).
    pub fn undecided(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .flat_map(|e| {
                e.metrics
                    .iter()
                    .filter(|m| m.verdict == Verdict::Noisy && m.base.is_some())
                    .map(move |m| format!("{} {}", e.name, m.metric))
            })
            .collect()
    }

    /// The regressed endpoints, the one that moved most first (then by name).
    pub fn regressions_by_effect(&self) -> Vec<&EndpointComparison> {
        let mut out: Vec<&EndpointComparison> = self.endpoints.iter().filter(|e| e.verdict == Verdict::Regressed).collect();
        out.sort_by(|a, b| b.effect().total_cmp(&a.effect()).then_with(|| a.name.cmp(&b.name)));
        out
    }

    /// True when at least one endpoint regressed.
    pub fn has_regression(&self) -> bool {
        self.verdict == Verdict::Regressed
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointComparison> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// An interval's bound: `value` with a sign and `decimals` decimals, or as many more (up to 4)
/// as it takes for a value that is not zero not to print as zero: `+0.0` only for zero itself.
/// The one formatter of bounds, for the tables ([`MetricComparison::interval_short`]) and the
/// verdict's reason (`rule::describe_interval`) alike.
pub(super) fn bound(value: f64, decimals: usize) -> String {
    let shown = (decimals..=4).find(|&d| value == 0.0 || (value * 10f64.powi(d as i32)).round() != 0.0).unwrap_or(4);
    format!("{value:+.shown$}")
}
