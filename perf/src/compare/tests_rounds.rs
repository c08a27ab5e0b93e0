//! A/B mode on literal rounds.

use crate::plan::CompareRules;
use crate::summary::Summary;

use super::testkit::{Gen, endpoint, one, summary};
use super::*;

fn rounds(n: u64, median_ms: f64, seed: u64) -> Vec<Summary> {
    (0..n).map(|i| one("concurrent", "book", &Gen::new(40, 20, median_ms, seed + i))).collect()
}

#[test]
fn head_rounds_slower_by_thirty_percent_regress() {
    let c = compare_rounds(&rounds(5, 10.0, 10), &rounds(5, 13.0, 20), &CompareRules::default());
    assert_eq!(c.mode, CompareMode::Rounds { base_rounds: 5, head_rounds: 5 });
    let p50 = c.endpoint("book").unwrap().metric(Metric::P50).unwrap().clone();
    assert_eq!(p50.verdict, Verdict::Regressed, "{}", p50.reason);
    let t = p50.test.unwrap();
    assert_eq!((t.method, t.n_base, t.n_head), (TestMethod::MannWhitneyRounds, 5, 5));
    // Exact: all five head rounds above all five base rounds gives 1 / C(10, 5).
    assert!((t.p_value - 1.0 / 252.0).abs() < 1e-12, "{}", t.p_value);
    assert_eq!(c.regressed_endpoints(), vec!["book"]);
}

#[test]
fn the_same_code_in_rounds_passes() {
    let c = compare_rounds(&rounds(4, 10.0, 10), &rounds(4, 10.0, 50), &CompareRules::default());
    assert!(c.regressed_endpoints().is_empty(), "{c:#?}");
    assert_eq!(c.verdict, Verdict::Unchanged);
}

#[test]
fn side_values_merge_the_rounds_histograms_exactly() {
    // One fast round and one slow round: the merged p50 lies between, where no mean of the two
    // rounds' p50s would put it exactly.
    let fast = one("s", "get", &Gen::new(100, 10, 2.0, 1));
    let slow = one("s", "get", &Gen::new(100, 10, 20.0, 2));
    let c = compare_rounds(&[fast.clone(), slow.clone()], &[fast.clone(), slow.clone(), fast.clone()], &CompareRules::default());
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for s in [&fast, &slow] {
        all.add(super::hist::decode(&s.endpoints["get"].histogram).unwrap()).unwrap();
    }
    let p99 = c.endpoint("get").unwrap().metric(Metric::P99).unwrap();
    assert_eq!(p99.base, Some(all.value_at_quantile(0.99) as f64 / 1000.0));
    let e = c.endpoint("get").unwrap();
    assert_eq!((e.base_requests, e.head_requests), (Some(2000), Some(3000)));
    // Throughput is all requests over all measured seconds.
    assert_eq!(e.metric(Metric::Rps).unwrap().head, Some(100.0));
    // Two base rounds cannot be tested.
    assert!(p99.test.is_none());
}

#[test]
fn too_few_rounds_make_a_real_change_noisy() {
    let c = compare_rounds(&rounds(2, 10.0, 10), &rounds(2, 14.0, 20), &CompareRules::default());
    let p50 = c.endpoint("book").unwrap().metric(Metric::P50).unwrap();
    assert_eq!(p50.verdict, Verdict::Noisy, "{}", p50.reason);
    assert!(p50.reason.contains("too few windows") || p50.reason.contains("too few"), "{}", p50.reason);
}

#[test]
fn endpoints_missing_from_head_rounds_are_reported() {
    let g = Gen::new(40, 20, 5.0, 1);
    let base: Vec<Summary> = (0..3).map(|_| summary("s", 20, vec![("a", endpoint(&g)), ("b", endpoint(&g))])).collect();
    let head: Vec<Summary> = (0..3).map(|_| summary("s", 20, vec![("a", endpoint(&g))])).collect();
    let c = compare_rounds(&base, &head, &CompareRules::default());
    assert_eq!(c.endpoint("b").unwrap().verdict, Verdict::Missing);
    assert_eq!(c.endpoint("a").unwrap().verdict, Verdict::Unchanged);
    let none = compare_rounds(&[], &head, &CompareRules::default());
    assert_eq!(none.verdict, Verdict::New);
    assert!(none.notes.iter().any(|n| n.contains("no base rounds")));
}
