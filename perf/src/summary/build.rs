//! Assembling a [`Summary`] from what the engine measured and what the orchestrator knows.
//! Pure: no clock, no file, no process (see [`super::host`] for the helpers that do look).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::hist;
use super::model::*;
use super::slo;
use crate::engine::{EndpointResult, Segment, SuiteResult};

/// What the orchestrator knows about a run that the engine does not.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContext {
    pub git: GitInfo,
    pub backend: crate::plan::BackendKind,
    pub host: HostInfo,
    /// SHA-256 of the plan file (`LoadedPlan::hash`).
    pub plan_hash: String,
    /// Where this run measures; `None` outside a gate run (tests, tools).
    pub testbed: Option<super::testbed::Testbed>,
    pub quick: bool,
    pub tags: Vec<String>,
    pub tool_version: String,
}

impl Default for RunContext {
    fn default() -> Self {
        RunContext {
            git: GitInfo::default(),
            backend: crate::plan::BackendKind::External,
            host: HostInfo::default(),
            plan_hash: String::new(),
            testbed: None,
            quick: false,
            tags: Vec::new(),
            tool_version: crate::TOOL_VERSION.to_string(),
        }
    }
}

/// Percentiles, max, mean and standard deviation of a µs histogram, in milliseconds.
pub fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let q = |q: f64| Some(h.value_at_quantile(q) as f64 / 1000.0);
    Latency {
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
        max: Some(h.max() as f64 / 1000.0),
        mean: Some(h.mean() / 1000.0),
        stdev: Some(h.stdev() / 1000.0),
    }
}

fn kind_name(kind: crate::plan::SuiteKind) -> String {
    kind.name().to_string()
}

impl From<&crate::engine::Window> for Window {
    fn from(w: &crate::engine::Window) -> Self {
        Window { t: w.t, requests: w.requests, errors: w.errors, active_vus: w.active_vus, p50: w.p50, p95: w.p95, p99: w.p99 }
    }
}

impl From<&crate::engine::EndpointWindow> for EndpointWindow {
    fn from(w: &crate::engine::EndpointWindow) -> Self {
        EndpointWindow { t: w.t, requests: w.requests, errors: w.errors, p50: w.p50, p95: w.p95, p99: w.p99 }
    }
}

/// Builds the summary of one suite run, SLOs evaluated.
pub fn build(result: &SuiteResult, ctx: &RunContext) -> Summary {
    let secs = result.measured.as_secs_f64();
    let endpoints: BTreeMap<String, EndpointSummary> = result.endpoints.iter().map(|e| (e.name.clone(), endpoint(e, secs))).collect();
    let mut invalid_reasons = result.invalid_reasons.clone();
    if endpoints.values().all(|e| e.requests == 0) {
        invalid_reasons.push("no request was measured".to_string());
    }
    let slo = slo::evaluate(&result.slo, &endpoints);
    let run = RunInfo {
        started_at: result.started_at.to_string(),
        duration_s: secs,
        warmup_s: result.warmup.as_secs_f64(),
        git: ctx.git.clone(),
        backend: ctx.backend,
        host: ctx.host.clone(),
        tool_version: ctx.tool_version.clone(),
        plan_hash: ctx.plan_hash.clone(),
        suite_hash: Some(result.suite_hash.clone()),
        testbed: ctx.testbed.clone(),
        quick: ctx.quick,
        tags: ctx.tags.clone(),
        shard: result.shard,
        merged_from: Vec::new(),
    };
    Summary {
        valid: invalid_reasons.is_empty(),
        invalid_reasons,
        endpoints,
        scenarios: scenarios(result),
        windows: result.windows.iter().map(Window::from).collect(),
        slo,
        ..Summary::new(result.suite.clone(), kind_name(result.kind), run)
    }
}

/// One endpoint's figures over `secs` measured seconds.
fn endpoint(e: &EndpointResult, secs: f64) -> EndpointSummary {
    let by_kind: BTreeMap<String, u64> = e.errors_by_kind.iter().map(|(k, n)| (k.as_str().to_string(), *n)).collect();
    EndpointSummary {
        requests: e.requests,
        errors: Errors {
            total: by_kind.values().sum(),
            by_kind,
            by_status: e.unexpected_statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        },
        statuses: e.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        rps: if secs > 0.0 { e.requests as f64 / secs } else { 0.0 },
        bytes_sent: e.bytes_sent,
        bytes_received: e.bytes_received,
        latency_ms: latency(&e.latency),
        service_ms: latency(&e.service),
        histogram: hist::encode(&e.latency),
        service_histogram: hist::encode(&e.service),
        windows: e.windows.iter().map(EndpointWindow::from).collect(),
        kind: e.kind.map(str::to_string),
        messages_received: (e.kind == Some("ws_connect")).then_some(e.ws_messages),
        segments: e.segments.iter().map(segment).collect(),
    }
}

/// A recorded segment, its latencies encoded as a histogram again (exactly: each value is a
/// bucket's own).
fn segment(s: &Segment) -> EndpointSegment {
    let histogram = if s.latency.is_empty() {
        String::new()
    } else {
        let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
        h.auto(true);
        for &(v, n) in &s.latency {
            let _ = h.record_n(v, n);
        }
        hist::encode(&h)
    };
    EndpointSegment { t: f64::from(s.t), seconds: f64::from(s.seconds), requests: s.requests, errors: s.errors, histogram }
}

/// Each scenario's schedule keeping.
fn scenarios(result: &SuiteResult) -> BTreeMap<String, ScenarioSummary> {
    result
        .scenarios
        .iter()
        .map(|s| {
            let summary = ScenarioSummary {
                executor: s.executor.name().to_string(),
                iterations: s.iterations,
                dropped_iterations: s.dropped_iterations,
                late_starts: s.late_starts,
                interrupted_iterations: s.interrupted_iterations,
                aborted_iterations: s.aborted_iterations,
                max_vus: s.max_vus,
            };
            (s.name.clone(), summary)
        })
        .collect()
}
