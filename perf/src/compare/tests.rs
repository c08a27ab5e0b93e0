//! The rule on literal summaries (see `testkit`).

use crate::plan::{CompareRules, MetricThresholds};
use crate::summary::Summary;

use super::testkit::{Gen, empty_endpoint, endpoint, one, summary};
use super::*;

fn rules() -> CompareRules {
    CompareRules::default()
}

fn metric(c: &SuiteComparison, endpoint: &str, m: Metric) -> MetricComparison {
    c.endpoint(endpoint).unwrap_or_else(|| panic!("no endpoint {endpoint}")).metric(m).unwrap().clone()
}

fn pair(base: Gen, head: Gen) -> SuiteComparison {
    compare_suite(Some(&one("baseline", "get", &base)), &one("baseline", "get", &head), &rules())
}

#[test]
fn a_clear_regression_over_many_windows_is_significant() {
    let c = pair(Gen::new(100, 60, 10.0, 1), Gen::new(100, 60, 13.0, 2));
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!(p50.verdict, Verdict::Regressed, "{}", p50.reason);
    let rel = p50.delta_rel.unwrap();
    assert!(rel > 0.25 && rel < 0.35, "{rel}");
    let test = p50.test.as_ref().unwrap();
    assert!(test.p_value < 0.01, "{test:?}");
    assert_eq!(test.method, TestMethod::SegmentBootstrap { paired: false });
    // 60 s recorded in 5 s segments: 12 units a side.
    assert_eq!((test.n_base, test.n_head), (12, 12));
    let [low, high] = p50.interval.unwrap();
    assert!(low > 0.15 && low < rel && rel < high && high < 0.45, "{low} {rel} {high}");
    assert_eq!(p50.level, Some(0.95));
    // Every percentile is read from every request: p99 is tested like p50.
    let p99 = metric(&c, "get", Metric::P99);
    assert_eq!(p99.verdict, Verdict::Regressed, "{}", p99.reason);
    assert!(p99.interval.is_some());
    assert_eq!(c.verdict, Verdict::Regressed);
    assert_eq!(c.regressed_endpoints(), vec!["get"]);
    assert!(p50.reason.contains("beyond 20%"), "{}", p50.reason);
}

#[test]
fn the_same_delta_on_few_samples_is_noisy() {
    // 2 rps for 30 s: 60 requests, under the 100 needed.
    let c = pair(Gen::new(2, 30, 10.0, 1), Gen::new(2, 30, 13.0, 2));
    let p50 = metric(&c, "get", Metric::P50);
    assert!(p50.delta_rel.unwrap() > 0.2);
    assert_eq!(p50.verdict, Verdict::Noisy, "{}", p50.reason);
    assert!(p50.reason.contains("too few samples"), "{}", p50.reason);
    assert!(c.regressed_endpoints().is_empty());

    // Enough requests but only two seconds: one segment a side, nothing to resample.
    let c = pair(Gen::new(300, 2, 10.0, 1), Gen::new(300, 2, 13.0, 2));
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!(p50.verdict, Verdict::Noisy, "{}", p50.reason);
    assert!(p50.reason.contains("too few segments"), "{}", p50.reason);
}

#[test]
fn the_same_code_twice_never_regresses() {
    for seed in 0..20 {
        let c = pair(Gen::new(50, 30, 8.0, 100 + seed), Gen::new(50, 30, 8.0, 200 + seed));
        assert!(c.regressed_endpoints().is_empty(), "seed {seed}: {c:#?}");
    }
}

#[test]
fn a_ten_percent_slowdown_is_not_a_regression() {
    let c = pair(Gen::new(200, 60, 10.0, 1), Gen::new(200, 60, 11.0, 2));
    for m in [Metric::P50, Metric::P95, Metric::P99] {
        let mc = metric(&c, "get", m);
        assert_eq!(mc.verdict, Verdict::Unchanged, "{m}: {}", mc.reason);
        assert!(mc.reason.contains("within 20%"));
        // The test still ran and found the shift: significance alone never fails the gate.
        assert!(mc.test.is_some());
    }
}

#[test]
fn a_huge_improvement_is_improved() {
    let c = pair(Gen::new(100, 30, 50.0, 1), Gen::new(100, 30, 5.0, 2));
    let p95 = metric(&c, "get", Metric::P95);
    assert_eq!(p95.verdict, Verdict::Improved, "{}", p95.reason);
    assert!(p95.delta_rel.unwrap() < -0.8);
    assert_eq!(c.endpoint("get").unwrap().verdict, Verdict::Improved);
    assert!(c.regressed_endpoints().is_empty());
}

#[test]
fn a_floor_the_plan_sets_keeps_tiny_changes_unchanged_and_none_is_the_default() {
    // 0.2 ms to 0.4 ms doubles, but moves less than a 1 ms floor set in the plan.
    let (base, head) = (one("baseline", "get", &Gen::new(100, 30, 0.2, 1)), one("baseline", "get", &Gen::new(100, 30, 0.4, 2)));
    let mut floored = rules();
    floored.floor = Some(std::time::Duration::from_millis(1));
    let c = compare_suite(Some(&base), &head, &floored);
    let p50 = metric(&c, "get", Metric::P50);
    assert!(p50.delta_rel.unwrap() > 0.5);
    assert_eq!(p50.verdict, Verdict::Unchanged, "{}", p50.reason);
    assert!(p50.reason.contains("under the 1 ms floor"), "{}", p50.reason);
    assert_eq!((p50.floor_ms, p50.floor_from.as_deref()), (Some(1.0), Some("plan")));
    // With no floor (the default), a clear doubling of a fast endpoint is a regression.
    let c = compare_suite(Some(&base), &head, &rules());
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!((p50.verdict, p50.floor_ms), (Verdict::Regressed, None), "{}", p50.reason);
}

#[test]
fn the_floor_is_the_noise_an_aa_run_measured_unless_the_plan_sets_one() {
    // The A/A run of this testbed moved `get`'s p50 by 40%: a 30% change is under that.
    let noise = Noise {
        suite: "baseline".into(),
        testbed: "t".into(),
        recorded_at: "2026-12-04T00:00:00Z".into(),
        endpoints: [("get".to_string(), [(Metric::P50, 0.4)].into_iter().collect())].into_iter().collect(),
    };
    let (base, head) = (one("baseline", "get", &Gen::new(100, 60, 2.0, 1)), one("baseline", "get", &Gen::new(100, 60, 2.6, 2)));
    let ctx = Context { paired: false, noise: Some(&noise) };
    let c = compare_suite_with(Some(&base), &head, &rules(), ctx);
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!(p50.verdict, Verdict::Unchanged, "{}", p50.reason);
    assert!(p50.reason.contains("floor (the change an A/A run of this testbed showed)"), "{}", p50.reason);
    assert_eq!(p50.floor_from.as_deref(), Some("noise"));
    // Other metrics have no recorded noise, and the plan's own floor wins over the noise.
    assert_eq!(metric(&c, "get", Metric::P95).floor_from, None);
    let mut floored = rules();
    floored.floor = Some(std::time::Duration::from_micros(100));
    let c = compare_suite_with(Some(&base), &head, &floored, ctx);
    assert_eq!(metric(&c, "get", Metric::P50).verdict, Verdict::Regressed);
}

#[test]
fn a_zero_baseline_does_not_divide_by_zero() {
    // Latency recorded as 0 ms (a summary rounded to whole ms, say).
    let mut base = one("s", "get", &Gen::new(100, 30, 5.0, 1));
    let ep = base.endpoints.get_mut("get").unwrap();
    ep.latency_ms.p50 = Some(0.0);
    ep.windows.iter_mut().for_each(|w| w.p50 = Some(0.0));
    // An older summary: its windows are all there is to test with.
    ep.segments.clear();
    let head = one("s", "get", &Gen::new(100, 30, 5.0, 2));
    let c = compare_suite(Some(&base), &head, &rules());
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!(p50.delta_rel, None);
    assert!(p50.delta_abs.unwrap() > 4.0);
    assert_eq!(p50.verdict, Verdict::Regressed, "{}", p50.reason);
    assert!(p50.reason.contains("from zero"), "{}", p50.reason);

    // A baseline with no samples at all (0 rps): nothing to compare with, no verdict of change.
    let base = summary("s", 30, vec![("get", empty_endpoint())]);
    let c = compare_suite(Some(&base), &head, &rules());
    for m in Metric::ALL {
        let mc = metric(&c, "get", m);
        assert_eq!(mc.verdict, Verdict::Noisy, "{m}");
        assert_eq!(mc.delta_rel, None);
        assert!(mc.reason.contains("baseline has no samples"));
    }
}

#[test]
fn zero_samples_now_is_never_a_pass() {
    let base = one("s", "get", &Gen::new(100, 30, 5.0, 1));
    let head = summary("s", 30, vec![("get", empty_endpoint())]);
    let c = compare_suite(Some(&base), &head, &rules());
    for m in Metric::ALL {
        let mc = metric(&c, "get", m);
        assert_eq!(mc.verdict, Verdict::Regressed, "{m}");
        assert!(mc.reason.contains("no samples in the current run"));
    }
    assert_eq!(c.regressed_endpoints(), vec!["get"]);
    // Every request failed: there is no latency to compare, which is not an improvement.
    let head = one("s", "get", &Gen::new(100, 30, 5.0, 2).errors(1.0));
    let c = compare_suite(Some(&base), &head, &rules());
    assert_eq!(metric(&c, "get", Metric::P99).verdict, Verdict::Regressed);
    assert_eq!(metric(&c, "get", Metric::ErrorRate).verdict, Verdict::Regressed);
}

#[test]
fn missing_and_new_endpoints_are_reported() {
    let g = Gen::new(50, 30, 5.0, 1);
    let base = summary("s", 30, vec![("kept", endpoint(&g)), ("gone", endpoint(&g))]);
    let head = summary("s", 30, vec![("kept", endpoint(&g)), ("added", endpoint(&g))]);
    let c = compare_suite(Some(&base), &head, &rules());
    let names: Vec<&str> = c.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["added", "gone", "kept"]);
    let gone = c.endpoint("gone").unwrap();
    assert_eq!(gone.verdict, Verdict::Missing);
    assert_eq!(gone.head_requests, None);
    assert_eq!(gone.metric(Metric::P50).unwrap().base, base.endpoints["gone"].latency_ms.p50);
    let added = c.endpoint("added").unwrap();
    assert_eq!(added.verdict, Verdict::New);
    assert_eq!(added.base_requests, None);
    assert_eq!(c.endpoint("kept").unwrap().verdict, Verdict::Unchanged);
    assert_eq!(c.verdict, Verdict::Missing);
    assert!(c.regressed_endpoints().is_empty());
}

#[test]
fn no_baseline_makes_everything_new() {
    let head = one("s", "get", &Gen::new(50, 30, 5.0, 1));
    let c = compare_suite(None, &head, &rules());
    assert_eq!(c.mode, CompareMode::NoBaseline);
    assert_eq!(c.verdict, Verdict::New);
    assert!(c.endpoint("get").unwrap().metrics.iter().all(|m| m.verdict == Verdict::New && m.head.is_some()));
}

#[test]
fn overrides_apply_per_endpoint_and_metric() {
    let base = Gen::new(100, 60, 10.0, 1);
    let head = Gen::new(100, 60, 13.0, 2);
    let b = summary("s", 60, vec![("loose", endpoint(&base)), ("strict", endpoint(&base))]);
    let h = summary("s", 60, vec![("loose", endpoint(&head)), ("strict", endpoint(&head))]);
    // [compare.endpoints.loose] p50 = 0.5, p95 = 0.5, p99 = 0.5
    let mut spec = CompareRules::default();
    spec.endpoints.insert("loose".into(), MetricThresholds { p50: Some(0.5), p95: Some(0.5), p99: Some(0.5), ..Default::default() });
    let c = compare_suite(Some(&b), &h, &spec);
    let loose = metric(&c, "loose", Metric::P50);
    assert_eq!((loose.threshold, loose.overridden), (0.5, true));
    assert_eq!(loose.verdict, Verdict::Unchanged, "{}", loose.reason);
    assert!(loose.reason.contains("within 50%"));
    // Only the named metrics are overridden.
    assert_eq!(metric(&c, "loose", Metric::Rps).threshold, 0.2);
    let strict = metric(&c, "strict", Metric::P50);
    assert_eq!((strict.threshold, strict.overridden, strict.verdict), (0.2, false, Verdict::Regressed));
    assert_eq!(c.regressed_endpoints(), vec!["strict"]);

    let mut one_metric = CompareRules::default();
    let t = MetricThresholds { p50: Some(0.5), ..Default::default() };
    one_metric.endpoints.insert("loose".into(), t);
    let c = compare_suite(Some(&b), &h, &one_metric);
    assert_eq!(metric(&c, "loose", Metric::P50).verdict, Verdict::Unchanged);
    assert_eq!(metric(&c, "loose", Metric::P95).verdict, Verdict::Regressed);
}

#[test]
fn error_rates_compare_in_points() {
    let c = pair(Gen::new(50, 40, 5.0, 1), Gen::new(50, 40, 5.0, 2).errors(0.05));
    let e = metric(&c, "get", Metric::ErrorRate);
    assert_eq!(e.base, Some(0.0));
    assert!((e.head.unwrap() - 5.0).abs() < 1.0, "{:?}", e.head);
    assert_eq!(e.delta_rel, None);
    assert_eq!(e.verdict, Verdict::Regressed, "{}", e.reason);
    assert_eq!(e.test.as_ref().unwrap().method, TestMethod::SegmentBootstrap { paired: false });
    assert!(e.reason.contains("points"));
    // Without segments (an older baseline), the error counts are tested as before.
    let c = pair(Gen::new(50, 40, 5.0, 1).without_segments(), Gen::new(50, 40, 5.0, 2).errors(0.05));
    let e = metric(&c, "get", Metric::ErrorRate);
    assert_eq!((e.verdict, e.test.as_ref().unwrap().method), (Verdict::Regressed, TestMethod::TwoProportion), "{}", e.reason);

    // 0.1% to 0.2%, literally: double, but a tenth of a point.
    let mut b = one("s", "get", &Gen::new(100, 100, 5.0, 1));
    let mut h = one("s", "get", &Gen::new(100, 100, 5.0, 2));
    b.endpoints.get_mut("get").unwrap().errors.total = 10;
    h.endpoints.get_mut("get").unwrap().errors.total = 20;
    let c = compare_suite(Some(&b), &h, &rules());
    let e = metric(&c, "get", Metric::ErrorRate);
    assert!((e.base.unwrap() - 0.1).abs() < 1e-9 && (e.head.unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(e.verdict, Verdict::Unchanged, "{}", e.reason);
    assert!(e.reason.contains("within 1.00 points"), "{}", e.reason);
}

#[test]
fn a_throughput_drop_regresses() {
    let c = pair(Gen::new(100, 30, 5.0, 1), Gen::new(70, 30, 5.0, 2));
    let rps = metric(&c, "get", Metric::Rps);
    assert_eq!((rps.base, rps.head), (Some(100.0), Some(70.0)));
    assert!((rps.delta_rel.unwrap() + 0.3).abs() < 1e-9);
    assert_eq!(rps.verdict, Verdict::Regressed, "{}", rps.reason);
    // More throughput is better, not a regression.
    let c = pair(Gen::new(70, 30, 5.0, 1), Gen::new(100, 30, 5.0, 2));
    assert_eq!(metric(&c, "get", Metric::Rps).verdict, Verdict::Improved);
}

#[test]
fn summaries_without_windows_or_segments_use_threshold_and_floor_only() {
    let old = |g: Gen| g.without_windows().without_segments();
    let c = pair(old(Gen::new(100, 30, 10.0, 1)), Gen::new(100, 30, 13.0, 2));
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!(p50.verdict, Verdict::Regressed, "{}", p50.reason);
    assert!(!p50.tested && p50.test.is_none());
    assert!(p50.reason.contains("untested"), "{}", p50.reason);
    // Within the threshold, untested or not, nothing changes.
    let c = pair(old(Gen::new(100, 30, 10.0, 1)), old(Gen::new(100, 30, 11.0, 2)));
    assert_eq!(metric(&c, "get", Metric::P50).verdict, Verdict::Unchanged);
    // The error rate needs no windows: its test still runs.
    assert!(metric(&c, "get", Metric::ErrorRate).tested);
}

#[test]
fn a_noisy_machine_widens_the_intervals_and_never_fails_the_same_code() {
    // Seconds vary by a factor of e^0.6 (a busy runner), over 20 s. The same code twice is
    // called regressed at most once in 20: the resampled segments carry the seconds' swings
    // into the interval. A 25% change is then caught only when it stands out of them.
    let noisy = |median, seed| Gen::new(40, 20, median, seed).spread(0.2, 0.6);
    let mut widths = Vec::new();
    let (mut caught, mut failed) = (0, 0);
    for seed in 0..20 {
        let same = pair(noisy(10.0, 7 + 2 * seed), noisy(10.0, 8 + 2 * seed));
        failed += usize::from(!same.regressed_endpoints().is_empty());
        let c = pair(noisy(10.0, 7 + 2 * seed), noisy(12.5, 8 + 2 * seed));
        let p50 = metric(&c, "get", Metric::P50);
        let [low, high] = p50.interval.unwrap();
        widths.push(high - low);
        caught += usize::from(p50.verdict == Verdict::Regressed);
        if p50.verdict == Verdict::Noisy {
            assert!(p50.reason.contains("not clear of the noise"), "{}", p50.reason);
        }
    }
    let width = crate::util::median(widths.iter().copied()).unwrap();
    assert!(width > 0.6, "median interval width {width}");
    assert!(failed <= 1 && caught < 15, "same code failed {failed} of 20, the 25% change caught {caught}");
}

#[test]
fn notes_flag_an_older_schema_and_an_invalid_baseline() {
    let g = Gen::new(50, 30, 5.0, 1);
    let mut base: Summary = one("s", "get", &g);
    base.schema_version = 0;
    base.valid = false;
    base.invalid_reasons = vec!["fell behind schedule".into()];
    base.run.quick = true;
    let c = compare_suite(Some(&base), &one("s", "get", &g), &rules());
    let notes = c.notes.join("\n");
    assert!(notes.contains("schema version 0"), "{notes}");
    assert!(notes.contains("marked invalid: fell behind schedule"), "{notes}");
    assert!(notes.contains("--quick"), "{notes}");
    assert_eq!(c.verdict, Verdict::Unchanged);
}

#[test]
fn verdicts_order_by_severity() {
    use Verdict::*;
    assert_eq!(Verdict::worst([Unchanged, Improved]), Improved);
    assert_eq!(Verdict::worst([Improved, Noisy, New]), Noisy);
    assert_eq!(Verdict::worst([Missing, Regressed, Noisy]), Regressed);
    assert_eq!(Verdict::worst([]), Unchanged);
    assert_eq!(serde_json::to_string(&Regressed).unwrap(), "\"regressed\"");
}

#[test]
fn a_baseline_from_an_older_schema_without_windows_or_histograms() {
    let base: Summary =
        serde_json::from_str(include_str!("../../../fixtures/summaries/v0-baseline-no-windows.json")).expect("fixture parses");
    let head = one("baseline", "get", &Gen::new(100, 30, 13.0, 2));
    let c = compare_suite(Some(&base), &head, &rules());
    assert!(c.notes.iter().any(|n| n.contains("schema version 0")), "{:?}", c.notes);
    let p50 = metric(&c, "get", Metric::P50);
    assert_eq!(p50.base, Some(10.0));
    assert_eq!(p50.verdict, Verdict::Regressed, "{}", p50.reason);
    assert!(!p50.tested && p50.reason.contains("untested"));
    // Error counts need no windows: that metric is still tested.
    let e = metric(&c, "get", Metric::ErrorRate);
    assert!(e.tested && e.verdict == Verdict::Unchanged);
    assert_eq!(c.endpoint("retired").unwrap().verdict, Verdict::Missing);
    assert_eq!(c.regressed_endpoints(), vec!["get"]);
}

#[test]
fn a_bound_that_is_not_zero_never_prints_as_zero_in_the_reason() {
    assert_eq!(describe_interval(Metric::P95, 0.0002, 1.266, 0.95), "95% CI +0.02% … +126.6%");
    assert_eq!(describe_interval(Metric::P95, -0.00004, 0.0, 0.95), "95% CI -0.004% … +0.0%");
    assert_eq!(describe_interval(Metric::ErrorRate, 0.003, 0.5, 0.9), "90% CI +0.003 … +0.50 points");
}
