//! The suite's shared shift in the rule ([`super::shift`]): against a stored baseline, each
//! endpoint read beside the others' common move, within the plan's `shared_shift` and the
//! threshold; never in A/B.

use crate::plan::CompareRules;
use crate::summary::Summary;

use super::testkit::{Gen, endpoint, summary};
use super::*;

const OTHERS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// A suite of six endpoints at 2 ms times `machine`, and `slots` at 2.5 ms times `machine`
/// times `code`: 20 req/s for 60 s each (1200 requests).
fn run(machine: f64, code: f64, seed: u64) -> Summary {
    let mut eps: Vec<(&str, _)> =
        OTHERS.iter().enumerate().map(|(i, n)| (*n, endpoint(&Gen::new(20, 60, 2.0 * machine, seed * 100 + i as u64)))).collect();
    eps.push(("slots", endpoint(&Gen::new(20, 60, 2.5 * machine * code, seed * 100 + 99))));
    summary("baseline", 60, eps)
}

fn rules(threshold: f64, shared: f64) -> CompareRules {
    let mut r = CompareRules::default().with_shared_shift(shared).unwrap();
    r.threshold = threshold;
    r
}

fn p50(c: &SuiteComparison, name: &str) -> MetricComparison {
    c.endpoint(name).unwrap().metric(Metric::P50).unwrap().clone()
}

#[test]
fn a_route_slower_while_the_machine_ran_faster_is_caught_beside_the_others() {
    // The code made `slots` 28% slower; the machine was 9% faster for the pull request's run
    // than for the baseline's: as measured, +16.5%, within 20%.
    let (base, head) = (run(1.0, 1.0, 1), run(0.91, 1.28, 2));
    let off = compare_suite(Some(&base), &head, &rules(0.2, 0.0));
    let measured = p50(&off, "slots");
    assert_eq!(measured.verdict, Verdict::Unchanged, "{}", measured.reason);
    assert!((0.12..0.20).contains(&measured.delta_rel.unwrap()), "{measured:?}");

    let c = compare_suite(Some(&base), &head, &rules(0.2, 0.1));
    let slots = p50(&c, "slots");
    assert_eq!(slots.verdict, Verdict::Regressed, "{}", slots.reason);
    let shift = slots.shared_shift.expect("the others' move is taken out");
    assert!((-0.12..-0.06).contains(&shift), "{shift}");
    let rel = slots.delta_rel.unwrap();
    assert!((0.23..0.33).contains(&rel), "judged beside the shift: {rel}");
    let [low, high] = slots.interval.unwrap();
    assert!(low > 0.12 && low < rel && rel < high, "the interval moved with it: {low} {high}");
    assert!(slots.reason.contains("the 6 other endpoints moved together"), "{}", slots.reason);
    assert!(slots.reason.contains("as measured +1"), "{}", slots.reason);
    // The others, beside each other, did not move.
    assert_eq!(c.regressed_endpoints(), vec!["slots"]);
    assert!(c.notes.iter().any(|n| n.contains("the 7 endpoints moved together by p50 -")), "{:?}", c.notes);
}

#[test]
fn an_unchanged_route_on_a_slower_machine_is_not_called_slower() {
    // `slots` 12% slower (within 20%) on a machine 9% slower: +22% as measured, a regression
    // to a rule that reads each endpoint alone.
    let (base, head) = (run(1.0, 1.0, 3), run(1.09, 1.12, 4));
    let off = compare_suite(Some(&base), &head, &rules(0.2, 0.0));
    assert_eq!(off.regressed_endpoints(), vec!["slots"], "{}", p50(&off, "slots").reason);

    let c = compare_suite(Some(&base), &head, &rules(0.2, 0.1));
    let slots = p50(&c, "slots");
    assert_eq!(slots.verdict, Verdict::Unchanged, "{}", slots.reason);
    assert!(c.regressed_endpoints().is_empty());
}

#[test]
fn a_move_of_the_whole_suite_beyond_the_limit_is_judged_as_measured() {
    // Every route 30% slower (a middleware on every request): not the machine's to take.
    let (base, head) = (run(1.0, 1.0, 5), run(1.3, 1.0, 6));
    let c = compare_suite(Some(&base), &head, &rules(0.2, 0.1));
    assert_eq!(c.regressed_endpoints().len(), 7, "{:?}", c.regressed_endpoints());
    let slots = p50(&c, "slots");
    assert_eq!(slots.shared_shift, None);
    assert!(slots.delta_rel.unwrap() > 0.25, "{slots:?}");
    assert!(c.notes.iter().any(|n| n.contains("beyond the ±10% taken for the machine's on p50")), "{:?}", c.notes);
}

#[test]
fn the_threshold_caps_the_shift_taken() {
    // At a 5% threshold, a 9% move of the machine is more than the rule may take for it.
    let (base, head) = (run(1.0, 1.0, 7), run(0.91, 1.28, 8));
    let c = compare_suite(Some(&base), &head, &rules(0.05, 0.1));
    let slots = p50(&c, "slots");
    assert_eq!(slots.shared_shift, None, "{}", slots.reason);
    assert!(c.notes.iter().any(|n| n.contains("beyond the ±5%")), "{:?}", c.notes);
}

#[test]
fn a_b_pairs_are_never_read_beside_a_shift() {
    let (base, head) = (run(1.0, 1.0, 9), run(0.94, 1.0, 10));
    let c = compare_suite_with(Some(&base), &head, &rules(0.2, 0.1), Context { paired: true, noise: None });
    for e in &c.endpoints {
        assert!(e.metrics.iter().all(|m| m.shared_shift.is_none()), "{}", e.name);
    }
    assert!(!c.notes.iter().any(|n| n.contains("moved together")), "{:?}", c.notes);
}

#[test]
fn a_shared_shift_outside_zero_to_one_is_refused_on_its_field() {
    for bad in [-0.1, 1.0, f64::NAN] {
        let e = CompareRules::default().with_shared_shift(bad).unwrap_err();
        assert_eq!(e.field, "compare.shared_shift");
    }
    assert_eq!(CompareRules::default().shared_shift, 0.10);
}
