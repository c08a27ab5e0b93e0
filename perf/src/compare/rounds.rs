//! Whole runs as units: the nightly history's change points (`history::trend`), where each
//! night is one run of the suite, measured hours apart from the next.
//!
//! Reported values come from each side as a whole: latency percentiles from the exact merge of
//! the runs' HDR histograms, throughput as all requests over all measured seconds, the error
//! rate over all requests. The significance test compares the per-run values (Mann-Whitney U,
//! exact at these sizes): from one night to the next, it is the runs that vary, and that is
//! the noise a trend has to see through.

use std::collections::BTreeSet;

use crate::plan::CompareRules;
use crate::summary::{EndpointSummary, Summary};

use super::hist;
use super::model::{CompareMode, EndpointComparison, Metric, MetricComparison, SuiteComparison, TestMethod, TestResult, Verdict};
use super::rule::{Aggregate, Evidence, Limits, judge};
use super::stats::{Alternative, mann_whitney};
use super::suite::{comparability_notes, finish, missing_endpoint, new_endpoint};
use super::units::{Untestable, round_units};

/// One side's view of one endpoint over its rounds.
struct Side<'a> {
    /// The endpoint in each round where it appears.
    rounds: Vec<(&'a Summary, &'a EndpointSummary)>,
}

impl<'a> Side<'a> {
    fn of(rounds: &'a [Summary], name: &str) -> Self {
        Side { rounds: rounds.iter().filter_map(|s| s.endpoints.get(name).map(|e| (s, e))).collect() }
    }

    fn present(&self) -> bool {
        !self.rounds.is_empty()
    }

    fn requests(&self) -> u64 {
        self.rounds.iter().map(|(_, e)| e.requests).sum()
    }

    /// The whole side as one run; `fallback` is set when histograms had to be approximated.
    fn aggregate(&self, fallback: &mut bool) -> Aggregate {
        let requests = self.requests();
        let errors = self.rounds.iter().map(|(_, e)| e.errors.total).sum();
        let seconds: f64 = self.rounds.iter().map(|(s, _)| s.run.duration_s).sum();
        let rps = if seconds > 0.0 { requests as f64 / seconds } else { 0.0 };
        let timed: Vec<&EndpointSummary> = self.rounds.iter().map(|(_, e)| *e).filter(|e| e.latency_ms.p50.is_some()).collect();
        let decoded: Vec<_> = timed.iter().filter_map(|e| hist::decode(&e.histogram)).collect();
        let (p50, p95, p99) = if !timed.is_empty() && decoded.len() == timed.len() {
            let merged = hist::merge(&decoded);
            let q = |q: f64| merged.as_ref().and_then(|h| hist::quantile_ms(h, q));
            (q(0.50), q(0.95), q(0.99))
        } else {
            if !timed.is_empty() {
                *fallback = true;
            }
            let mean = |pick: fn(&EndpointSummary) -> Option<f64>| {
                let (mut sum, mut n) = (0.0, 0u64);
                for e in &timed {
                    if let Some(v) = pick(e) {
                        sum += v * e.requests as f64;
                        n += e.requests;
                    }
                }
                (n > 0).then(|| sum / n as f64)
            };
            (mean(|e| e.latency_ms.p50), mean(|e| e.latency_ms.p95), mean(|e| e.latency_ms.p99))
        };
        Aggregate { requests, errors, p50, p95, p99, rps }
    }

    /// The metric's value in each round (`None` where the round had no samples).
    fn per_round(&self, metric: Metric) -> Vec<Option<f64>> {
        self.rounds
            .iter()
            .map(|(_, e)| match metric {
                Metric::P50 => e.latency_ms.p50,
                Metric::P95 => e.latency_ms.p95,
                Metric::P99 => e.latency_ms.p99,
                Metric::Rps => (e.requests > 0).then_some(e.rps),
                Metric::ErrorRate => None,
            })
            .collect()
    }
}

/// Compares several runs of base with several runs of head, all of the same suite.
pub fn compare_rounds(base_rounds: &[Summary], head_rounds: &[Summary], rules: &CompareRules) -> SuiteComparison {
    let suite = head_rounds.first().or(base_rounds.first()).map(|s| s.suite.clone()).unwrap_or_default();
    let mode = CompareMode::Rounds { base_rounds: base_rounds.len() as u32, head_rounds: head_rounds.len() as u32 };
    let mut notes = Vec::new();
    if let (Some(b), Some(h)) = (base_rounds.first(), head_rounds.first()) {
        notes.extend(comparability_notes(b, h).into_iter().filter(|n| !n.starts_with("the baseline run was marked")));
    }
    for (side, rounds) in [("base", base_rounds), ("head", head_rounds)] {
        if rounds.is_empty() {
            notes.push(format!("no {side} rounds were run"));
        }
        for (i, r) in rounds.iter().enumerate() {
            if !r.valid {
                notes.push(format!("{side} round {} was marked invalid", i + 1));
            }
            if r.suite != suite {
                notes.push(format!("{side} round {} is of suite {}, not {suite}", i + 1, r.suite));
            }
        }
    }

    let names: BTreeSet<&String> = base_rounds.iter().chain(head_rounds).flat_map(|s| s.endpoints.keys()).collect();
    let mut approximated = Vec::new();
    let endpoints: Vec<EndpointComparison> = names
        .into_iter()
        .map(|name| {
            let (b, h) = (Side::of(base_rounds, name), Side::of(head_rounds, name));
            let mut fallback = false;
            let (ba, ha) = (b.aggregate(&mut fallback), h.aggregate(&mut fallback));
            if fallback {
                approximated.push(name.clone());
            }
            match (b.present(), h.present()) {
                (true, true) => compare_endpoint(name, &b, &ba, &h, &ha, rules),
                (true, false) => missing_endpoint(name, &ba, b.requests()),
                _ => new_endpoint(name, &ha, h.requests()),
            }
        })
        .collect();
    if !approximated.is_empty() {
        notes
            .push(format!("histograms did not decode for {}: latency is the request-weighted mean of the rounds", approximated.join(", ")));
    }
    let mut c = finish(suite, mode, endpoints, notes, rules);
    if base_rounds.is_empty() {
        c.verdict = Verdict::New;
    }
    c
}

fn compare_endpoint(name: &str, b: &Side<'_>, ba: &Aggregate, h: &Side<'_>, ha: &Aggregate, rules: &CompareRules) -> EndpointComparison {
    let overrides = rules.endpoints.get(name);
    let metrics: Vec<MetricComparison> = Metric::ALL
        .into_iter()
        .map(|m| judge(m, ba, ha, Limits::for_metric(rules, overrides, m, None), None, || Evidence::Legacy(rounds_test(m, b, ba, h, ha))))
        .collect();
    EndpointComparison {
        name: name.to_string(),
        verdict: Verdict::worst(metrics.iter().map(|m| m.verdict)),
        base_requests: Some(ba.requests),
        head_requests: Some(ha.requests),
        metrics,
    }
}

/// Mann-Whitney U over the runs' values of `m` (the two-proportion test for errors, over all
/// requests).
fn rounds_test(m: Metric, b: &Side<'_>, ba: &Aggregate, h: &Side<'_>, ha: &Aggregate) -> Result<TestResult, Untestable> {
    let alt = match (ba.value(m), ha.value(m)) {
        (Some(x), Some(y)) if y < x => Alternative::HeadLess,
        _ => Alternative::HeadGreater,
    };
    if m == Metric::ErrorRate {
        return super::stats::two_proportion(ba.errors, ba.requests, ha.errors, ha.requests, alt)
            .map(|p| TestResult { method: TestMethod::TwoProportion, p_value: p, n_base: ba.requests, n_head: ha.requests })
            .ok_or(Untestable::NoWindows);
    }
    let u = round_units(&b.per_round(m), &h.per_round(m))?;
    mann_whitney(&u.base, &u.head, alt)
        .map(|r| TestResult {
            method: TestMethod::MannWhitneyRounds,
            p_value: r.p_value,
            n_base: u.base.len() as u64,
            n_head: u.head.len() as u64,
        })
        .ok_or(Untestable::TooFewUnits { base: u.base.len(), head: u.head.len(), per_unit: 0, needed: 1 })
}
