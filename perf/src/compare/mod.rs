//! Comparison of a run with a baseline: the regression rule. Pure: functions of summaries.
//!
//! Per suite and per endpoint, five metrics are compared: latency p50, p95 and p99 (more than
//! `threshold` worse is a regression), throughput (more than `threshold` lower), and the error
//! rate (more than `error_rate_points` percentage points higher: a ratio on zero means
//! nothing). A change counts only when it is beyond the threshold, larger than the absolute
//! floor (latency), measured on at least `min_samples` requests on both sides, and significant
//! at `alpha` by a one-sided test. [`rule`] states the order of these checks; [`units`] says
//! which samples the tests compare and why.
//!
//! Two entry points:
//! - [`compare_suite`]: one run against a stored summary; the per-window values of each run are
//!   the samples (Mann-Whitney U), the error counts feed a two-proportion z-test;
//! - [`compare_ab`]: alternating rounds of base and head; the rounds are the samples and each
//!   side's histograms are merged exactly for the reported values.

mod ab;
mod hist;
mod model;
mod rule;
pub mod stats;
pub mod underneath;
pub mod units;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ab;
#[cfg(test)]
mod tests_sim;

use std::collections::BTreeSet;

pub use ab::compare_ab;
pub use model::*;
pub use rule::{describe_change, fmt_p};

use crate::plan::CompareRules;
use crate::summary::{EndpointSummary, SCHEMA_VERSION, Summary};

use rule::{Aggregate, Limits, judge};

/// Compares one suite's current summary with its baseline (`None`: every endpoint is new).
pub fn compare_suite(base: Option<&Summary>, head: &Summary, rules: &CompareRules) -> SuiteComparison {
    let Some(base) = base else {
        return no_baseline(head, rules);
    };
    let names: BTreeSet<&String> = base.endpoints.keys().chain(head.endpoints.keys()).collect();
    let endpoints = names
        .into_iter()
        .map(|name| match (base.endpoints.get(name), head.endpoints.get(name)) {
            (Some(b), Some(h)) => compare_endpoint(name, b, base, h, head, rules),
            (Some(b), None) => missing_endpoint(name, &aggregate(b), b.requests),
            (None, Some(h)) => new_endpoint(name, &aggregate(h), h.requests),
            (None, None) => unreachable!("name comes from one of the maps"),
        })
        .collect();
    finish(head.suite.clone(), CompareMode::Baseline, endpoints, comparability_notes(base, head), rules)
}

fn no_baseline(head: &Summary, rules: &CompareRules) -> SuiteComparison {
    let endpoints = head.endpoints.iter().map(|(n, h)| new_endpoint(n, &aggregate(h), h.requests)).collect();
    let mut c = finish(head.suite.clone(), CompareMode::NoBaseline, endpoints, Vec::new(), rules);
    c.verdict = Verdict::New;
    c
}

pub(crate) fn aggregate(e: &EndpointSummary) -> Aggregate {
    Aggregate {
        requests: e.requests,
        errors: e.errors.total,
        p50: e.latency_ms.p50,
        p95: e.latency_ms.p95,
        p99: e.latency_ms.p99,
        rps: e.rps,
    }
}

fn compare_endpoint(
    name: &str,
    b: &EndpointSummary,
    base: &Summary,
    h: &EndpointSummary,
    head: &Summary,
    rules: &CompareRules,
) -> EndpointComparison {
    let overrides = rules.endpoints.get(name);
    let (ba, ha) = (aggregate(b), aggregate(h));
    let metrics: Vec<MetricComparison> = Metric::ALL
        .into_iter()
        .map(|m| {
            let limits = Limits::for_metric(rules, overrides, m);
            judge(m, &ba, &ha, limits, || match m {
                Metric::Rps => units::rps_units(&b.windows, base.run.duration_s, &h.windows, head.run.duration_s),
                _ => units::latency_units(&b.windows, &h.windows, m),
            })
        })
        .collect();
    EndpointComparison {
        name: name.to_string(),
        verdict: Verdict::worst(metrics.iter().map(|m| m.verdict)),
        base_requests: Some(b.requests),
        head_requests: Some(h.requests),
        metrics,
    }
}

/// Metrics of an endpoint present on one side only.
fn one_sided(name: &str, side: &Aggregate, requests: u64, present_in_head: bool) -> EndpointComparison {
    let verdict = if present_in_head { Verdict::New } else { Verdict::Missing };
    let metrics = Metric::ALL
        .into_iter()
        .map(|m| {
            let v = side.value(m);
            MetricComparison {
                metric: m,
                base: if present_in_head { None } else { v },
                head: if present_in_head { v } else { None },
                delta_abs: None,
                delta_rel: None,
                threshold: 0.0,
                overridden: false,
                floor_ms: None,
                test: None,
                tested: false,
                verdict,
                reason: match (present_in_head, requests) {
                    (true, 0) => "new endpoint, with no samples in the current run".to_string(),
                    (true, _) => "new endpoint: nothing in the baseline".to_string(),
                    (false, _) => "in the baseline, absent from the current run".to_string(),
                },
            }
        })
        .collect();
    EndpointComparison {
        name: name.to_string(),
        verdict,
        base_requests: (!present_in_head).then_some(requests),
        head_requests: present_in_head.then_some(requests),
        metrics,
    }
}

pub(crate) fn new_endpoint(name: &str, head: &Aggregate, requests: u64) -> EndpointComparison {
    one_sided(name, head, requests, true)
}

pub(crate) fn missing_endpoint(name: &str, base: &Aggregate, requests: u64) -> EndpointComparison {
    one_sided(name, base, requests, false)
}

pub(crate) fn finish(
    suite: String,
    mode: CompareMode,
    mut endpoints: Vec<EndpointComparison>,
    notes: Vec<String>,
    rules: &CompareRules,
) -> SuiteComparison {
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    SuiteComparison {
        suite,
        mode,
        verdict: Verdict::worst(endpoints.iter().map(|e| e.verdict)),
        endpoints,
        notes,
        rules: RulesApplied {
            threshold: rules.threshold,
            floor_ms: rules.floor.as_secs_f64() * 1000.0,
            error_rate_points: rules.error_rate_points,
            min_samples: rules.min_samples,
            alpha: rules.alpha,
        },
    }
}

/// Caveats that make a comparison less trustworthy without making it impossible.
pub(crate) fn comparability_notes(base: &Summary, head: &Summary) -> Vec<String> {
    let mut notes = Vec::new();
    if base.suite != head.suite {
        notes.push(format!("the baseline is of suite {}, not {}", base.suite, head.suite));
    }
    if base.schema_version != SCHEMA_VERSION {
        notes.push(format!("baseline written with summary schema version {} (this build writes {SCHEMA_VERSION})", base.schema_version));
    }
    if !base.valid {
        let why = if base.invalid_reasons.is_empty() { String::new() } else { format!(": {}", base.invalid_reasons.join("; ")) };
        notes.push(format!("the baseline run was marked invalid{why}"));
    }
    if base.run.plan_hash != head.run.plan_hash {
        notes.push("the plan changed since the baseline was recorded".to_string());
    }
    if base.run.backend != head.run.backend {
        notes.push(format!("baseline ran on the {} backend, this run on {}", base.run.backend, head.run.backend));
    }
    if base.run.quick != head.run.quick {
        let q = |quick: bool| if quick { "--quick" } else { "full length" };
        notes.push(format!("baseline was {}, this run is {}", q(base.run.quick), q(head.run.quick)));
    }
    if base.run.host.cpus != head.run.host.cpus || base.run.host.cpu_model != head.run.host.cpu_model {
        notes.push("baseline ran on a different host (cpus or model)".to_string());
    }
    notes
}
