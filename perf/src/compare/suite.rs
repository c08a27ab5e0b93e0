//! One suite compared: each endpoint through the rule ([`super::rule`]), with the evidence
//! of its resampled segments ([`super::resample`]) or, for summaries written before segments,
//! the older window tests ([`super::units`]); endpoints present on one side only; the notes
//! that qualify the comparison.

use std::collections::BTreeSet;

use crate::plan::CompareRules;
use crate::summary::{EndpointSummary, SCHEMA_VERSION, Summary};

use super::model::{
    CompareMode, EndpointComparison, Metric, MetricComparison, RulesApplied, SuiteComparison, TestMethod, TestResult, Verdict,
};
use super::noise::Noise;
use super::resample::{self, NoSegments, Segmented};
use super::rule::{Aggregate, Evidence, Limits, judge};
use super::shift::SharedShift;
use super::stats::{Alternative, mann_whitney, two_proportion};
use super::units::{self, Untestable};

/// How two summaries relate, beyond the rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// A/B: segment `i` of base and of head ran back to back (resampled by pairs).
    pub paired: bool,
    /// The testbed's measured noise for this suite: the floor where the plan sets none.
    pub noise: Option<&'a Noise>,
}

/// Compares one suite's current summary with a stored baseline (`None`: every endpoint is
/// new), with no noise record.
pub fn compare_suite(base: Option<&Summary>, head: &Summary, rules: &CompareRules) -> SuiteComparison {
    compare_suite_with(base, head, rules, Context::default())
}

/// [`compare_suite`] in a [`Context`]: A/B pairs, a testbed's noise.
pub fn compare_suite_with(base: Option<&Summary>, head: &Summary, rules: &CompareRules, ctx: Context<'_>) -> SuiteComparison {
    let Some(base) = base else {
        return no_baseline(head, rules);
    };
    let names: BTreeSet<&String> = base.endpoints.keys().chain(head.endpoints.keys()).collect();
    let shared = shared_shift(base, head, rules, ctx);
    let endpoints = names
        .into_iter()
        .map(|name| match (base.endpoints.get(name), head.endpoints.get(name)) {
            (Some(b), Some(h)) => compare_endpoint(name, (b, base), (h, head), rules, ctx, &shared),
            (Some(b), None) => missing_endpoint(name, &aggregate(b), b.requests),
            (None, Some(h)) => new_endpoint(name, &aggregate(h), h.requests),
            (None, None) => unreachable!("name comes from one of the maps"),
        })
        .collect();
    let mode = if ctx.paired {
        let pairs = head.endpoints.values().map(|e| e.segments.len()).max().unwrap_or(0);
        CompareMode::AB { pairs: pairs as u32 }
    } else {
        CompareMode::Baseline
    };
    let mut notes = comparability_notes(base, head);
    notes.extend(shared_note(&shared, rules));
    if ctx.paired {
        // Base and head are two builds measured in the same job: their plans and commits
        // differ by design.
        notes.retain(|n| !n.starts_with("the plan changed"));
    }
    finish(head.suite.clone(), mode, endpoints, notes, rules)
}

/// What the endpoints moved together against a stored baseline ([`super::shift`]); nothing in
/// A/B (its pairs cancel the moment) or when the plan turns it off.
fn shared_shift(base: &Summary, head: &Summary, rules: &CompareRules, ctx: Context<'_>) -> SharedShift {
    if ctx.paired || rules.shared_shift <= 0.0 {
        return SharedShift::default();
    }
    let both: Vec<(&str, Aggregate, Aggregate)> =
        base.endpoints.iter().filter_map(|(n, b)| head.endpoints.get(n).map(|h| (n.as_str(), aggregate(b), aggregate(h)))).collect();
    SharedShift::of(both.iter().map(|(n, b, h)| (*n, b, h)), rules.min_samples)
}

/// The report's note on the shared shift: how far the whole suite moved, and whether that was
/// taken for the machine's (within the plan's `shared_shift` and the threshold) or judged as
/// measured.
fn shared_note(shared: &SharedShift, rules: &CompareRules) -> Option<String> {
    let moved: Vec<(Metric, f64, usize)> =
        [Metric::P50, Metric::P95, Metric::P99].into_iter().filter_map(|m| shared.overall(m).map(|(s, n)| (m, s, n))).collect();
    let n = moved.first()?.2;
    let limit = rules.shared_shift.min(rules.threshold);
    let each = moved.iter().map(|(m, s, _)| format!("{m} {:+.1}%", s * 100.0)).collect::<Vec<_>>().join(", ");
    let beyond: Vec<String> = moved.iter().filter(|(_, s, _)| s.abs() > limit).map(|(m, _, _)| m.to_string()).collect();
    let judged = if beyond.is_empty() {
        "each endpoint's latency is judged beside the others' shared move (the machine's moment, not the code's: A/B tells them apart)"
            .to_string()
    } else {
        format!("beyond the ±{:.0}% taken for the machine's on {}: judged as measured there", limit * 100.0, beyond.join(", "))
    };
    Some(format!("against the baseline the {n} endpoints moved together by {each} (median); {judged}"))
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
    (b, base): (&EndpointSummary, &Summary),
    (h, head): (&EndpointSummary, &Summary),
    rules: &CompareRules,
    ctx: Context<'_>,
    shared: &SharedShift,
) -> EndpointComparison {
    let overrides = rules.endpoints.get(name);
    let (ba, ha) = (aggregate(b), aggregate(h));
    let resampled = Segmented::of(&b.segments, &h.segments, ctx.paired)
        .map(|seg| (resample::estimate(&seg, 1.0 - rules.alpha, resample::RESAMPLES, resample::seed_for(name)), seg.units(), seg.paired()));
    let metrics: Vec<MetricComparison> = Metric::ALL
        .into_iter()
        .map(|m| {
            let limits = Limits::for_metric(rules, overrides, m, ctx.noise.and_then(|n| n.get(name, m)));
            judge(m, &ba, &ha, limits, shared.beside(name, m), || match &resampled {
                Ok((estimates, units, paired)) => match estimates.get(m) {
                    Ok(estimate) => Evidence::Interval { estimate, units: *units, paired: *paired },
                    Err(why) => Evidence::Missing(why),
                },
                Err(NoSegments::Missing) => Evidence::Legacy(legacy_test(m, (b, base, &ba), (h, head, &ha))),
                Err(why) => Evidence::Missing(why.clone()),
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

/// The older tests, for summaries written before segments: Mann-Whitney over per-window
/// values, the two-proportion z-test on error counts.
fn legacy_test(
    m: Metric,
    (b, base, ba): (&EndpointSummary, &Summary, &Aggregate),
    (h, head, ha): (&EndpointSummary, &Summary, &Aggregate),
) -> Result<TestResult, Untestable> {
    let alt = match (ba.value(m), ha.value(m)) {
        (Some(x), Some(y)) if y < x => Alternative::HeadLess,
        _ => Alternative::HeadGreater,
    };
    if m == Metric::ErrorRate {
        return two_proportion(ba.errors, ba.requests, ha.errors, ha.requests, alt)
            .map(|p| TestResult { method: TestMethod::TwoProportion, p_value: p, n_base: ba.requests, n_head: ha.requests })
            .ok_or(Untestable::NoWindows);
    }
    let u = match m {
        Metric::Rps => units::rps_units(&b.windows, base.run.duration_s, &h.windows, head.run.duration_s)?,
        _ => units::latency_units(&b.windows, &h.windows, m)?,
    };
    let method = TestMethod::MannWhitneyWindows { block_s: u.block };
    mann_whitney(&u.base, &u.head, alt)
        .map(|r| TestResult { method, p_value: r.p_value, n_base: u.base.len() as u64, n_head: u.head.len() as u64 })
        .ok_or(Untestable::TooFewUnits { base: u.base.len(), head: u.head.len(), per_unit: 1, needed: 1 })
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
                floor_from: None,
                interval: None,
                level: None,
                detectable: None,
                shared_shift: None,
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

pub(super) fn new_endpoint(name: &str, head: &Aggregate, requests: u64) -> EndpointComparison {
    one_sided(name, head, requests, true)
}

pub(super) fn missing_endpoint(name: &str, base: &Aggregate, requests: u64) -> EndpointComparison {
    one_sided(name, base, requests, false)
}

pub(super) fn finish(
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
            floor_ms: rules.floor.map(|d| d.as_secs_f64() * 1000.0),
            error_rate_points: rules.error_rate_points,
            min_samples: rules.min_samples,
            alpha: rules.alpha,
        },
    }
}

/// Caveats that make a comparison less trustworthy without making it impossible.
pub(super) fn comparability_notes(base: &Summary, head: &Summary) -> Vec<String> {
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
