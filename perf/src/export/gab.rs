//! `benchmark.json`: github-action-benchmark's custom format, for `tool: customSmallerIsBetter`
//! (its gh-pages charts and its alert on a slower commit).
//!
//! The file is a JSON array of entries, each with the `name`, `unit` and `value` the action
//! requires and its optional `range` ("results' variance", shown as `± x`) and `extra` (shown in
//! the chart's tooltip). One entry per endpoint and latency percentile the gate compares (p50,
//! p95, p99):
//!
//! - `name`: `<suite>/<endpoint> p95` (one chart each);
//! - `unit`: `ms` (a time unit the action knows, so it can convert if the unit ever changes);
//! - `value`: that percentile over the whole run, in ms (microsecond resolution);
//! - `range`: `± ` the standard deviation of the same percentile across the run's per-second
//!   windows (absent with fewer than two seconds to compare);
//! - `extra`: requests, errors and throughput of the endpoint, the suite, backend and testbed,
//!   and the gate's verdict on this percentile when it was compared with a baseline.
//!
//! Throughput is bigger-is-better, so it is not in this smaller-is-better file; an endpoint
//! with no timed response has no entries.

use serde::Serialize;

use crate::compare::{Metric, SuiteComparison};
use crate::summary::{EndpointSummary, Summary};
use crate::verdict::Report;

use super::common::{round_us, stdev};

/// One github-action-benchmark entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub name: String,
    pub unit: String,
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// The percentiles exported, as the gate compares them.
const PERCENTILES: [Metric; 3] = [Metric::P50, Metric::P95, Metric::P99];

/// Every endpoint's p50, p95 and p99, suites in report order, endpoints by name.
pub fn benchmarks(report: &Report) -> Vec<Entry> {
    let mut out = Vec::new();
    for s in &report.suites {
        for (name, e) in &s.summary.endpoints {
            for metric in PERCENTILES {
                let Some(value) = whole_run(e, metric).filter(|v| v.is_finite()) else { continue };
                let per_second: Vec<f64> = e.windows.iter().filter_map(|w| per_window(w, metric)).collect();
                out.push(Entry {
                    name: format!("{}/{name} {metric}", s.summary.suite),
                    unit: "ms".to_string(),
                    value: round_us(value),
                    range: stdev(&per_second).map(|sd| format!("± {:.3}", round_us(sd))),
                    extra: Some(extra(&s.summary, name, e, metric, s.comparison.as_ref())),
                });
            }
        }
    }
    out
}

fn whole_run(e: &EndpointSummary, metric: Metric) -> Option<f64> {
    match metric {
        Metric::P50 => e.latency_ms.p50,
        Metric::P95 => e.latency_ms.p95,
        Metric::P99 => e.latency_ms.p99,
        _ => None,
    }
}

fn per_window(w: &crate::summary::EndpointWindow, metric: Metric) -> Option<f64> {
    match metric {
        Metric::P50 => w.p50,
        Metric::P95 => w.p95,
        Metric::P99 => w.p99,
        _ => None,
    }
}

fn extra(summary: &Summary, name: &str, e: &EndpointSummary, metric: Metric, c: Option<&SuiteComparison>) -> String {
    let mut lines = vec![
        format!("requests: {}, errors: {} ({:.2}%), {:.1} req/s", e.requests, e.errors.total, e.error_rate() * 100.0, e.rps),
        format!(
            "suite: {}, backend: {}, testbed: {}",
            summary.suite,
            summary.run.backend,
            summary.run.testbed.as_ref().map(|t| t.key.as_str()).unwrap_or("unknown")
        ),
    ];
    if let Some(m) = c.and_then(|c| c.endpoint(name)).and_then(|ec| ec.metric(metric)) {
        match m.delta_rel {
            Some(r) => lines.push(format!("gate: {} ({:+.1}%)", m.verdict, r * 100.0)),
            None => lines.push(format!("gate: {}", m.verdict)),
        }
    }
    lines.join("\n")
}
