//! `bmf.json`: Bencher Metric Format, for `bencher run --adapter json --file results/bmf.json`.
//!
//! BMF is a JSON object of benchmarks, each an object of measures, each a metric with a
//! required `value` and optional `lower_value` and `upper_value` (all numbers). One benchmark
//! per endpoint, named `<suite>/<endpoint>`, with Bencher's two built-in measures:
//!
//! - `latency`, in nanoseconds (the unit of Bencher's built-in Latency measure): `value` is
//!   the median (p50) and `upper_value` the p95, the band Bencher draws above the median.
//!   One measure with p95 as its upper bound rather than separate p95/p99 measures, because
//!   `latency` is the measure every Bencher project has, with its unit, while a measure named
//!   in BMF that does not exist is created by Bencher without our unit. No `lower_value`: our
//!   rule has no lower bound for latency. Lossy: Bencher's thresholds test `value` only, so
//!   a Bencher alert follows the median, not p95 or p99 (the gate's own rule judges those).
//! - `throughput`, in operations per second (one operation is one request): `value` is the
//!   measured requests per second; `lower_value` and `upper_value` the slowest and fastest
//!   whole second of the run (from the per-second windows; the last, partial second left out;
//!   widened to include `value` when needed).
//!
//! An endpoint with no timed response has no `latency`; error rates are not exported to
//! Bencher (no built-in measure fits them).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::summary::{EndpointSummary, Summary};
use crate::verdict::Report;

/// Bencher's built-in latency measure (nanoseconds).
pub const LATENCY: &str = "latency";
/// Bencher's built-in throughput measure (operations per second).
pub const THROUGHPUT: &str = "throughput";

/// One BMF metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_value: Option<f64>,
}

/// Benchmark name → measure slug → metric.
pub type Bmf = BTreeMap<String, BTreeMap<&'static str, Metric>>;

/// The report's endpoints as BMF. Suites in report order give the same names as the summary's
/// endpoint keys; a benchmark name that two suites share is the last suite's.
pub fn bmf(report: &Report) -> Bmf {
    let mut out = Bmf::new();
    for s in &report.suites {
        for (name, e) in &s.summary.endpoints {
            out.insert(format!("{}/{name}", s.summary.suite), measures(&s.summary, e));
        }
    }
    out
}

fn measures(summary: &Summary, e: &EndpointSummary) -> BTreeMap<&'static str, Metric> {
    let mut m = BTreeMap::new();
    let ns = |ms: f64| (ms * 1_000_000.0).round();
    if let Some(p50) = e.latency_ms.p50.filter(|v| v.is_finite()) {
        m.insert(LATENCY, Metric { value: ns(p50), lower_value: None, upper_value: e.latency_ms.p95.filter(|v| v.is_finite()).map(ns) });
    }
    if e.rps.is_finite() {
        let whole: Vec<f64> =
            e.windows.iter().filter(|w| f64::from(w.t) + 1.0 <= summary.run.duration_s + 1e-9).map(|w| w.requests as f64).collect();
        // A band around the value: the average over a run that ends in a partial second can
        // sit just outside its whole seconds' range.
        let lower = whole.iter().copied().reduce(f64::min).map(|l| l.min(e.rps));
        let upper = whole.iter().copied().reduce(f64::max).map(|u| u.max(e.rps));
        m.insert(THROUGHPUT, Metric { value: e.rps, lower_value: lower, upper_value: upper });
    }
    m
}
