//! Literal summaries for tests, generated from a seeded RNG: deterministic, and internally
//! consistent (whole-run percentiles, histograms and per-second windows come from the same
//! simulated requests).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::summary::*;

use super::hist;

/// How to simulate one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Gen {
    pub rps: u32,
    pub seconds: u32,
    /// Median latency in ms.
    pub median_ms: f64,
    /// Log-normal spread of single requests.
    pub sigma: f64,
    /// Log-normal spread of a whole second (slow stretches of the machine).
    pub window_sigma: f64,
    pub error_rate: f64,
    pub seed: u64,
    /// Write per-second windows (older summaries had none).
    pub windows: bool,
    /// Seconds per segment, as the engine groups them (older summaries had none: 0).
    pub segment_s: u32,
    /// A slowness factor per second shared with another run (the machine both sides of an
    /// A/B run share), on top of the run's own `window_sigma`.
    pub drift: Vec<f64>,
}

impl Gen {
    pub fn new(rps: u32, seconds: u32, median_ms: f64, seed: u64) -> Self {
        let segment_s = crate::plan::slice::recorded_segment(std::time::Duration::from_secs(u64::from(seconds)));
        Gen { rps, seconds, median_ms, sigma: 0.35, window_sigma: 0.05, error_rate: 0.0, seed, windows: true, segment_s, drift: Vec::new() }
    }
    pub fn errors(mut self, rate: f64) -> Self {
        self.error_rate = rate;
        self
    }
    pub fn without_windows(mut self) -> Self {
        self.windows = false;
        self
    }
    /// Without segment histograms, as summaries written before they existed.
    pub fn without_segments(mut self) -> Self {
        self.segment_s = 0;
        self
    }
    pub fn segments_of(mut self, seconds: u32) -> Self {
        self.segment_s = seconds;
        self
    }
    pub fn drifting(mut self, drift: Vec<f64>) -> Self {
        self.drift = drift;
        self
    }
    pub fn spread(mut self, sigma: f64, window_sigma: f64) -> Self {
        self.sigma = sigma;
        self.window_sigma = window_sigma;
        self
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    // Box-Muller: enough for test data, and no extra dependency.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A histogram as the engine keeps one (`engine/stats.rs`): 3 significant digits, sized to
/// what it records. A fixed top of an hour would allocate, zero, encode and decode about 23k
/// counts for every second and segment of every simulated endpoint, where a few thousand hold
/// milliseconds; the buckets, and so every percentile, are the same (the lowest value and the
/// precision set them).
fn new_hist() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

fn ms_at(h: &Histogram<u64>, q: f64) -> Option<f64> {
    hist::quantile_ms(h, q)
}

fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        p50: ms_at(h, 0.5),
        p90: ms_at(h, 0.9),
        p95: ms_at(h, 0.95),
        p99: ms_at(h, 0.99),
        p999: ms_at(h, 0.999),
        max: Some(h.max() as f64 / 1000.0),
        mean: Some(h.mean() / 1000.0),
        stdev: Some(h.stdev() / 1000.0),
    }
}

/// Simulates one endpoint.
pub(crate) fn endpoint(g: &Gen) -> EndpointSummary {
    let mut rng = StdRng::seed_from_u64(g.seed);
    let mut all = new_hist();
    let mut windows = Vec::new();
    let mut segments: Vec<EndpointSegment> = Vec::new();
    let mut seg_hist = new_hist();
    let mut w = new_hist();
    let (mut requests, mut errors) = (0u64, 0u64);
    for t in 0..g.seconds {
        let slow = (g.window_sigma * normal(&mut rng)).exp() * g.drift.get(t as usize).copied().unwrap_or(1.0);
        w.reset();
        let mut w_err = 0;
        for _ in 0..g.rps {
            requests += 1;
            if rng.random::<f64>() < g.error_rate {
                errors += 1;
                w_err += 1;
                continue;
            }
            let ms = g.median_ms * slow * (g.sigma * normal(&mut rng)).exp();
            let us = (ms * 1000.0).round().max(1.0) as u64;
            w.record(us).expect("in range");
            all.record(us).expect("in range");
        }
        windows.push(EndpointWindow {
            t,
            requests: u64::from(g.rps),
            errors: w_err,
            p50: ms_at(&w, 0.5),
            p95: ms_at(&w, 0.95),
            p99: ms_at(&w, 0.99),
        });
        if g.segment_s > 0 {
            let seg = segments.last_mut().filter(|s| (s.seconds as u32) < g.segment_s);
            match seg {
                Some(s) => {
                    s.seconds += 1.0;
                    s.requests += u64::from(g.rps);
                    s.errors += w_err;
                }
                None => {
                    close_segment(&mut segments, &seg_hist);
                    segments.push(EndpointSegment {
                        t: f64::from(t),
                        seconds: 1.0,
                        requests: u64::from(g.rps),
                        errors: w_err,
                        histogram: String::new(),
                    });
                    seg_hist.reset();
                }
            }
            seg_hist.add(&w).expect("same bounds");
        }
    }
    close_segment(&mut segments, &seg_hist);
    let mut by_kind = BTreeMap::new();
    if errors > 0 {
        by_kind.insert("timeout".to_string(), errors);
    }
    let lat = latency(&all);
    EndpointSummary {
        requests,
        errors: Errors { total: errors, by_kind, by_status: BTreeMap::new() },
        statuses: BTreeMap::from([("200".to_string(), requests - errors)]),
        rps: if g.seconds == 0 { 0.0 } else { requests as f64 / f64::from(g.seconds) },
        bytes_sent: requests * 100,
        bytes_received: requests * 1000,
        latency_ms: lat.clone(),
        service_ms: lat,
        histogram: if all.is_empty() { String::new() } else { hist::encode(&all) },
        service_histogram: String::new(),
        windows: if g.windows { windows } else { Vec::new() },
        kind: None,
        messages_received: None,
        segments,
    }
}

/// Writes the histogram of the last segment, once it holds every second it will.
fn close_segment(segments: &mut [EndpointSegment], seg_hist: &Histogram<u64>) {
    if let Some(last) = segments.last_mut() {
        last.histogram = if seg_hist.is_empty() { String::new() } else { hist::encode(seg_hist) };
    }
}

/// An endpoint that was never measured.
pub(crate) fn empty_endpoint() -> EndpointSummary {
    endpoint(&Gen::new(0, 30, 1.0, 0))
}

/// A summary of `suite` holding `endpoints`, lasting `seconds`.
pub(crate) fn summary(suite: &str, seconds: u32, endpoints: Vec<(&str, EndpointSummary)>) -> Summary {
    Summary {
        schema_version: SCHEMA_VERSION,
        schema_minor: crate::summary::SCHEMA_MINOR,
        suite: suite.to_string(),
        kind: "load".to_string(),
        valid: true,
        invalid_reasons: Vec::new(),
        run: RunInfo {
            started_at: "2026-11-20T10:00:00Z".to_string(),
            duration_s: f64::from(seconds),
            warmup_s: 5.0,
            git: GitInfo { sha: Some("0123456789abcdef".to_string()), branch: Some("main".to_string()), dirty: Some(false) },
            backend: crate::plan::BackendKind::Local,
            host: HostInfo { cpus: 2, cpu_model: Some("test cpu".to_string()), os: "linux".to_string() },
            tool_version: "0.1.0".to_string(),
            plan_hash: "feedface".to_string(),
            suite_hash: Some("5u17e".to_string()),
            testbed: Some(crate::summary::Testbed::new("local", 2, Some("test cpu".to_string()), 8, None, false, Some(500.0))),
            quick: false,
            tags: Vec::new(),
            shard: None,
            merged_from: Vec::new(),
        },
        endpoints: endpoints.into_iter().map(|(n, e)| (n.to_string(), e)).collect(),
        scenarios: BTreeMap::new(),
        windows: Vec::new(),
        slo: Vec::new(),
        resources: BTreeMap::new(),
        app_metrics: None,
        checks: Vec::new(),
        events: Vec::new(),
        figures: BTreeMap::new(),
        underneath: None,
        machine: None,
        profile: None,
    }
}

/// A suite of one endpoint.
pub(crate) fn one(suite: &str, name: &str, g: &Gen) -> Summary {
    summary(suite, g.seconds, vec![(name, endpoint(g))])
}
