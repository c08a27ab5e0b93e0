//! SLO evaluation: a pure function of the suite's SLO entries and the endpoint statistics.
//!
//! The `"*"` entry applies to every endpoint of the summary; an entry named after an endpoint
//! applies to it and, for the metrics it sets, replaces the `"*"` limit (so one slow endpoint
//! can get a looser p99 without loosening the others). Every result says `passed` explicitly.
//! No data is never a pass: an endpoint with no measured request, or with no latency sample
//! for a latency limit, fails with a reason; so does an SLO naming an endpoint the run never
//! measured.

use std::collections::BTreeMap;

use super::model::{EndpointSummary, Latency, SloResult};
use crate::plan::SloSpec;

/// One limit: metric name and threshold (ms for latencies, a fraction for `error_rate`,
/// requests per second for `min_rps`).
fn limits(spec: &SloSpec) -> Vec<(&'static str, f64)> {
    let ms = |d: Option<crate::plan::Dur>| d.map(|d| d.0.as_secs_f64() * 1000.0);
    let mut out = Vec::new();
    for (name, v) in [
        ("p50", ms(spec.p50)),
        ("p90", ms(spec.p90)),
        ("p95", ms(spec.p95)),
        ("p99", ms(spec.p99)),
        ("p999", ms(spec.p999)),
        ("max", ms(spec.max)),
        ("error_rate", spec.error_rate),
        ("min_rps", spec.min_rps),
    ] {
        if let Some(v) = v {
            out.push((name, v));
        }
    }
    out
}

fn latency_metric(l: &Latency, metric: &str) -> Option<f64> {
    match metric {
        "p50" => l.p50,
        "p90" => l.p90,
        "p95" => l.p95,
        "p99" => l.p99,
        "p999" => l.p999,
        "max" => l.max,
        _ => None,
    }
}

/// Evaluates `slo` (endpoint name, `None` for `"*"`) against `endpoints`.
/// Results are ordered by endpoint, then in the order metrics are listed in [`SloSpec`].
pub fn evaluate(slo: &[(Option<String>, SloSpec)], endpoints: &BTreeMap<String, EndpointSummary>) -> Vec<SloResult> {
    let star: Vec<(&str, f64)> = slo.iter().filter(|(k, _)| k.is_none()).flat_map(|(_, s)| limits(s)).collect();
    // Effective limits per endpoint: "*" first, then named entries replacing by metric.
    let mut wanted: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for name in endpoints.keys() {
        wanted.insert(name.as_str(), star.clone());
    }
    for (key, spec) in slo {
        let Some(name) = key else { continue };
        let list = wanted.entry(name.as_str()).or_insert_with(|| star.clone());
        for (metric, threshold) in limits(spec) {
            match list.iter_mut().find(|(m, _)| *m == metric) {
                Some(slot) => slot.1 = threshold,
                None => list.push((metric, threshold)),
            }
        }
    }
    let order = ["p50", "p90", "p95", "p99", "p999", "max", "error_rate", "min_rps"];
    let mut out = Vec::new();
    for (name, mut list) in wanted {
        list.sort_by_key(|(m, _)| order.iter().position(|o| o == m));
        for (metric, threshold) in list {
            out.push(check(name, endpoints.get(name), metric, threshold));
        }
    }
    out
}

/// The same limits judged again on other statistics (the merge of shards' summaries): one
/// result per result of `previous`, in its order.
pub fn reevaluate(previous: &[SloResult], endpoints: &BTreeMap<String, EndpointSummary>) -> Vec<SloResult> {
    previous.iter().map(|r| check(&r.endpoint, endpoints.get(&r.endpoint), &r.metric, r.threshold)).collect()
}

fn check(endpoint: &str, stats: Option<&EndpointSummary>, metric: &str, threshold: f64) -> SloResult {
    let result = |actual: Option<f64>, passed: bool, reason: Option<String>| SloResult {
        endpoint: endpoint.to_string(),
        metric: metric.to_string(),
        threshold,
        actual,
        passed,
        reason,
    };
    let Some(e) = stats else {
        return result(None, false, Some("the endpoint was not measured in this suite".into()));
    };
    if e.requests == 0 {
        return result(None, false, Some("no request was measured".into()));
    }
    match metric {
        "error_rate" => {
            let actual = e.error_rate();
            result(Some(actual), actual <= threshold, None)
        }
        "min_rps" => result(Some(e.rps), e.rps >= threshold, None),
        _ => match latency_metric(&e.latency_ms, metric) {
            Some(actual) => result(Some(actual), actual <= threshold, None),
            None => result(None, false, Some("no response had a latency (every request failed)".into())),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plan::Dur;
    use crate::summary::model::{EndpointSummary, Errors, Latency};

    fn ep(requests: u64, errors: u64, p99: Option<f64>, rps: f64) -> EndpointSummary {
        EndpointSummary {
            requests,
            errors: Errors { total: errors, ..Default::default() },
            statuses: Default::default(),
            rps,
            bytes_sent: 0,
            bytes_received: 0,
            latency_ms: Latency { p99, p50: p99, ..Default::default() },
            service_ms: Latency::default(),
            histogram: String::new(),
            service_histogram: String::new(),
            windows: vec![],
            kind: None,
            messages_received: None,
            segments: Vec::new(),
        }
    }

    fn ms(n: u64) -> Option<Dur> {
        Some(Dur(Duration::from_millis(n)))
    }

    #[test]
    fn star_applies_everywhere_and_named_entries_override_by_metric() {
        let slo = vec![
            (None, SloSpec { p99: ms(100), error_rate: Some(0.01), ..Default::default() }),
            (Some("slow".to_string()), SloSpec { p99: ms(800), min_rps: Some(5.0), ..Default::default() }),
        ];
        let mut eps = BTreeMap::new();
        eps.insert("fast".to_string(), ep(1000, 20, Some(50.0), 10.0));
        eps.insert("slow".to_string(), ep(1000, 0, Some(500.0), 4.0));
        let r = evaluate(&slo, &eps);
        let got: Vec<(&str, &str, f64, bool)> = r.iter().map(|s| (s.endpoint.as_str(), s.metric.as_str(), s.threshold, s.passed)).collect();
        assert_eq!(
            got,
            vec![
                ("fast", "p99", 100.0, true),
                ("fast", "error_rate", 0.01, false),
                ("slow", "p99", 800.0, true),
                ("slow", "error_rate", 0.01, true),
                ("slow", "min_rps", 5.0, false),
            ]
        );
        assert_eq!(r[1].actual, Some(0.02));
    }

    #[test]
    fn no_data_is_never_a_pass() {
        let slo = vec![
            (None, SloSpec { p99: ms(100), error_rate: Some(0.5), ..Default::default() }),
            (Some("ghost".to_string()), SloSpec { p50: ms(1), ..Default::default() }),
        ];
        let mut eps = BTreeMap::new();
        eps.insert("idle".to_string(), ep(0, 0, None, 0.0));
        eps.insert("down".to_string(), ep(10, 10, None, 1.0));
        let r = evaluate(&slo, &eps);
        let find = |e: &str, m: &str| r.iter().find(|s| s.endpoint == e && s.metric == m).unwrap();
        assert!(!find("idle", "p99").passed);
        assert!(!find("idle", "error_rate").passed, "zero requests fail even an error-rate limit");
        assert!(find("idle", "p99").reason.as_deref().unwrap().contains("no request"));
        assert!(!find("down", "p99").passed);
        assert_eq!(find("down", "p99").actual, None);
        assert!(!find("ghost", "p50").passed);
        assert!(find("ghost", "p50").reason.as_deref().unwrap().contains("not measured"));
        assert!(!find("ghost", "p99").passed, "the star entry applies to the named endpoint too");
    }
}
