//! The verdicts on literal summaries.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Observations, evaluate, fit};
use crate::plan::compiled::{
    ChaosAction, ChaosSpec, ChaosVerb, Exec, Expectation, Fault, Scenario, Service, Shape, SoakSpec, Special, SpikeSpec, StressSpec, Suite,
};
use crate::plan::{Executor, SuiteKind};
use crate::summary::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn window(t: u32, requests: u64, errors: u64, p95: Option<f64>) -> Window {
    Window { t, requests, errors, active_vus: 1, p50: p95.map(|p| p / 2.0), p95, p99: p95.map(|p| p * 1.5) }
}

fn endpoint(statuses: &[(&str, u64)], errors: u64, by_kind: &[(&str, u64)]) -> EndpointSummary {
    let requests =
        statuses.iter().map(|(_, n)| n).sum::<u64>() + by_kind.iter().filter(|(k, _)| *k != "status").map(|(_, n)| n).sum::<u64>();
    EndpointSummary {
        requests,
        errors: Errors { total: errors, by_kind: by_kind.iter().map(|(k, n)| (k.to_string(), *n)).collect(), by_status: BTreeMap::new() },
        statuses: statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        rps: 0.0,
        bytes_sent: 0,
        bytes_received: 0,
        latency_ms: Latency::default(),
        service_ms: Latency::default(),
        histogram: String::new(),
        service_histogram: String::new(),
        windows: Vec::new(),
        kind: None,
        messages_received: None,
        segments: Vec::new(),
    }
}

/// The compare tests' summary with this kind, warm-up and per-second windows.
fn summary(kind: &str, warmup_s: f64, windows: Vec<Window>) -> Summary {
    let mut s = crate::compare::testkit::summary("s", windows.len() as u32, Vec::new());
    s.kind = kind.into();
    s.run.warmup_s = warmup_s;
    s.windows = windows;
    s
}

fn suite(kind: SuiteKind, special: Special, shape: Shape) -> Suite {
    Suite {
        name: "s".into(),
        kind,
        warmup: secs(5),
        scenarios: vec![Scenario {
            name: "a".into(),
            executor: Executor::RampingArrivalRate,
            start: Duration::ZERO,
            shape,
            exec: Exec::Request(0),
            graceful_stop: secs(1),
        }],
        slo: Vec::new(),
        setup: Vec::new(),
        special: Some(special),
        definition_hash: String::new(),
    }
}

fn constant(duration: u64) -> Shape {
    Shape::ConstantArrivalRate { rate: 10.0, duration: secs(duration), pre_allocated_vus: 1, max_vus: 1 }
}

fn check<'a>(s: &'a Summary, name: &str) -> &'a Check {
    s.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name} in {:?}", s.checks))
}

// --- spike ---------------------------------------------------------------------------------

fn spike_suite() -> Suite {
    // Warm-up 5 s; spike from 20 s to 30 s of the suite = 15..25 s measured.
    let spec = SpikeSpec { start: secs(20), end: secs(30), max_error_rate: 0.01, max_recovery: secs(10), recovery_tolerance: 0.2 };
    suite(SuiteKind::Spike, Special::Spike(spec), constant(60))
}

/// 55 measured windows: 10 ms before the spike, `during` in it, then `after(k)` k s after it.
fn spike_windows(errors_during: u64, after: impl Fn(u32) -> f64) -> Vec<Window> {
    (0..55)
        .map(|t| match t {
            0..15 => window(t, 20, 0, Some(10.0)),
            15..25 => window(t, 200, errors_during, Some(400.0)),
            _ => window(t, 20, 0, Some(after(t - 25))),
        })
        .collect()
}

#[test]
fn spike_that_recovers_passes_with_its_recovery_time() {
    let mut s = summary("spike", 5.0, spike_windows(1, |k| if k < 4 { 200.0 } else { 11.5 }));
    evaluate(&spike_suite(), &mut s, &Observations::default());
    assert!(check(&s, "spike.errors").passed, "{:?}", s.checks);
    let c = check(&s, "spike.recovery");
    assert!(c.passed, "{c:?}");
    assert_eq!(s.figures["recovery_s"], 4.0);
    assert_eq!(s.figures["pre_spike_p95_ms"], 10.0);
    assert_eq!(s.figures["spike_error_rate"], 10.0 / 2000.0);
}

#[test]
fn spike_recovery_needs_three_consecutive_windows_and_a_limit() {
    // One good second at +1 s, then bad again: recovery counts from +6 s, over the 5 s limit.
    let mut suite = spike_suite();
    if let Some(Special::Spike(sp)) = &mut suite.special {
        sp.max_recovery = secs(5);
    }
    let mut s = summary("spike", 5.0, spike_windows(0, |k| if k == 1 || k >= 6 { 12.0 } else { 100.0 }));
    evaluate(&suite, &mut s, &Observations::default());
    assert_eq!(s.figures["recovery_s"], 6.0);
    assert!(!check(&s, "spike.recovery").passed);
}

#[test]
fn spike_that_never_recovers_fails() {
    let mut s = summary("spike", 5.0, spike_windows(0, |_| 50.0));
    evaluate(&spike_suite(), &mut s, &Observations::default());
    let c = check(&s, "spike.recovery");
    assert!(!c.passed && c.detail.contains("never came back"), "{c:?}");
    assert_eq!(s.figures["recovery_s"], serde_json::Value::Null);
}

#[test]
fn spike_errors_over_the_limit_fail() {
    let mut s = summary("spike", 5.0, spike_windows(10, |_| 10.0));
    evaluate(&spike_suite(), &mut s, &Observations::default());
    let c = check(&s, "spike.errors");
    assert!(!c.passed && c.detail.contains("100 of 2000"), "{c:?}");
    assert!(check(&s, "spike.recovery").passed);
}

// --- stress --------------------------------------------------------------------------------

fn stress_suite(min_breaking_rate: f64) -> Suite {
    // Steps 50, 100, 200, 400 /s: a 1 s ramp then a 10 s hold each; warm-up 5 s.
    let mut stages = Vec::new();
    for r in [50.0, 100.0, 200.0, 400.0] {
        stages.push((secs(1), r));
        stages.push((secs(10), r));
    }
    let shape = Shape::RampingArrivalRate { start_rate: 0.0, stages, pre_allocated_vus: 1, max_vus: 1 };
    let spec = StressSpec { slo_p95: Duration::from_millis(100), max_error_rate: 0.01, min_breaking_rate, max_rate: None, capacity: None };
    suite(SuiteKind::Stress, Special::Stress(spec), shape)
}

/// Measured windows for 44 s of timeline after a 5 s warm-up: t = 0..39. `step(rate)` gives
/// (errors per window, p95).
fn stress_windows(step: impl Fn(f64) -> (u64, f64)) -> Vec<Window> {
    (0..39u32)
        .map(|t| {
            let suite_t = t as u64 + 5;
            let rate = [50.0, 100.0, 200.0, 400.0][(suite_t / 11) as usize];
            let (errors, p95) = step(rate);
            window(t, rate as u64, errors, Some(p95))
        })
        .collect()
}

#[test]
fn holds_are_the_stages_that_keep_the_rate() {
    let stages = vec![(secs(5), 10.0), (secs(1), 50.0), (secs(10), 50.0), (secs(0), 50.0), (secs(3), 0.0), (secs(3), 0.0)];
    let h = Shape::RampingArrivalRate { start_rate: 10.0, stages, pre_allocated_vus: 1, max_vus: 1 }.holds();
    assert_eq!(h.iter().map(|h| (h.rate, h.start)).collect::<Vec<_>>(), [(10.0, secs(0)), (50.0, secs(6))]);
}

#[test]
fn stress_breaking_point_and_latency_failure() {
    let mut s = summary("stress", 5.0, stress_windows(|r| (0, if r >= 400.0 { 300.0 } else { 20.0 })));
    evaluate(&stress_suite(150.0), &mut s, &Observations::default());
    assert_eq!(s.figures["breaking_rate"], 200.0);
    assert_eq!(s.figures["failure_mode"], "latency");
    let steps = s.figures["steps"].as_array().unwrap();
    // The 50/s hold (suite 1..11 s) is partly in the warm-up: measured from 5 s on.
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[3]["held"], false);
    let c = check(&s, "stress.breaking_point");
    assert!(c.passed && c.detail.contains("broke at 400/s by latency"), "{c:?}");

    let mut s = summary("stress", 5.0, stress_windows(|r| (0, if r >= 400.0 { 300.0 } else { 20.0 })));
    evaluate(&stress_suite(400.0), &mut s, &Observations::default());
    assert!(!check(&s, "stress.breaking_point").passed);
}

#[test]
fn stress_failure_mode_errors_and_timeouts() {
    let errors_from_200 = |r: f64| (if r >= 200.0 { 10 } else { 0 }, 20.0);
    let mut s = summary("stress", 5.0, stress_windows(errors_from_200));
    evaluate(&stress_suite(50.0), &mut s, &Observations::default());
    assert_eq!(s.figures["breaking_rate"], 100.0);
    assert_eq!(s.figures["failure_mode"], "errors");

    let mut s = summary("stress", 5.0, stress_windows(errors_from_200));
    s.endpoints.insert("provider".into(), endpoint(&[("200", 1000)], 100, &[("timeout", 90), ("status", 10)]));
    evaluate(&stress_suite(50.0), &mut s, &Observations::default());
    assert_eq!(s.figures["failure_mode"], "timeouts");

    let mut s = summary("stress", 5.0, stress_windows(|_| (0, 20.0)));
    evaluate(&stress_suite(50.0), &mut s, &Observations::default());
    assert_eq!(s.figures["breaking_rate"], 400.0);
    assert_eq!(s.figures["failure_mode"], "none");
}

// --- stress: the search past the planned steps and capacity --------------------------------

use super::{MAX_EXTRA_STEPS, Next, Outcome, SearchEnd, StressStep, instances_needed, next_step};
use crate::plan::compiled::CapacityTarget;

const H: Outcome = Outcome::Held;
const B: Outcome = Outcome::Broke;
const G: Outcome = Outcome::GeneratorLimit;

fn planned(rates: &[(f64, Outcome)]) -> Vec<(f64, Outcome, bool)> {
    rates.iter().map(|(r, o)| (*r, *o, false)).collect()
}

#[test]
fn search_doubles_past_held_planned_steps_then_bisects() {
    let mut tried = planned(&[(800.0, H), (1600.0, H), (3200.0, H)]);
    assert_eq!(next_step(&tried, None), Next::Step(6400.0));
    tried.push((6400.0, H, true));
    assert_eq!(next_step(&tried, None), Next::Step(12800.0));
    tried.push((12800.0, B, true));
    // Between the highest held (6400) and the lowest broken (12800).
    assert_eq!(next_step(&tried, None), Next::Step(9600.0));
    tried.push((9600.0, H, true));
    assert_eq!(next_step(&tried, None), Next::Step(11200.0));
    tried.push((11200.0, B, true));
    assert_eq!(next_step(&tried, None), Next::Step(10400.0));
    tried.push((10400.0, B, true));
    // 9600 held, 10400 broke: within 10% of the held rate, the breaking point is found.
    assert_eq!(next_step(&tried, None), Next::Stop(SearchEnd::ServiceBroke));
}

#[test]
fn search_stops_at_a_planned_failure_max_rate_the_generator_or_the_step_budget() {
    // A planned step broke: the planned steps answered; a planned generator shortfall ends it too.
    assert_eq!(next_step(&planned(&[(50.0, H), (100.0, B), (200.0, H)]), None), Next::Stop(SearchEnd::ServiceBroke));
    assert_eq!(next_step(&planned(&[(50.0, H), (100.0, G)]), None), Next::Stop(SearchEnd::GeneratorLimit));
    assert_eq!(next_step(&[], None), Next::Stop(SearchEnd::NoSteps));

    // The ceiling caps the doubling, and once held, ends the search.
    let mut tried = planned(&[(3200.0, H)]);
    assert_eq!(next_step(&tried, Some(5000.0)), Next::Step(5000.0));
    tried.push((5000.0, H, true));
    assert_eq!(next_step(&tried, Some(5000.0)), Next::Stop(SearchEnd::MaxRate));
    // Planned steps reaching max_rate already: no extra step.
    assert_eq!(next_step(&planned(&[(3200.0, H)]), Some(3200.0)), Next::Stop(SearchEnd::MaxRate));

    // The generator could not send 6400/s while the service met its SLO: that ends it, and
    // it is the generator's limit, not a breaking point.
    let mut tried = planned(&[(3200.0, H)]);
    tried.push((6400.0, G, true));
    assert_eq!(next_step(&tried, None), Next::Stop(SearchEnd::GeneratorLimit));

    // Every extra step held: the budget bounds the search.
    let mut tried = planned(&[(1.0, H)]);
    let mut rate = 1.0;
    for _ in 0..MAX_EXTRA_STEPS {
        let Next::Step(r) = next_step(&tried, None) else { panic!("{tried:?}") };
        assert_eq!(r, rate * 2.0);
        rate = r;
        tried.push((r, H, true));
    }
    assert_eq!(next_step(&tried, None), Next::Stop(SearchEnd::StepLimit));
    // While bisecting, the budget ends it as found (within a wider interval).
    let mut tried = planned(&[(100.0, H)]);
    tried.extend((0..MAX_EXTRA_STEPS - 1).map(|i| (1000.0 + i as f64, H, true)));
    tried.push((100_000.0, B, true));
    assert_eq!(next_step(&tried, None), Next::Stop(SearchEnd::ServiceBroke));
}

#[test]
fn instances_for_a_target_keep_the_headroom() {
    let t = |target_rps, headroom| CapacityTarget { target_rps, headroom };
    // 5000 / (2000 × 0.7) = 3.57 → 4.
    assert_eq!(instances_needed(t(5000.0, 0.3), 2000.0), Some(4));
    // Exactly divisible: no extra instance for rounding noise.
    assert_eq!(instances_needed(t(4000.0, 0.0), 2000.0), Some(2));
    assert_eq!(instances_needed(t(1400.0, 0.3), 2000.0), Some(1));
    assert_eq!(instances_needed(t(10.0, 0.5), 2000.0), Some(1));
    assert_eq!(instances_needed(t(5000.0, 0.3), 0.0), None);
}

/// An extra step measured in a run of its own.
fn extra(rate: f64, achieved: f64, p95: f64, service_p95: f64, failure: Option<&'static str>) -> StressStep {
    StressStep {
        rate,
        from: 0.0,
        to: 10.0,
        windows: 10,
        requests: (achieved * 10.0) as u64,
        errors: 0,
        p95_ms: Some(p95),
        service_p95_ms: Some(service_p95),
        achieved_rps: achieved,
        app_cores: Some(rate / 1000.0),
        postgres_cores: Some(rate / 4000.0),
        failure,
        extra: true,
    }
}

fn with_cpu(mut s: Summary) -> Summary {
    // The app uses 1 ms of CPU per scheduled request, PostgreSQL a quarter of that.
    let (mut app, mut pg) = (Vec::new(), Vec::new());
    let (mut a, mut p) = (0.0, 0.0);
    for t in 0..39u32 {
        let rate = [50.0, 100.0, 200.0, 400.0][((t as u64 + 5) / 11) as usize];
        app.push([t as f64, a]);
        pg.push([t as f64, p]);
        a += rate / 1000.0;
        p += rate / 4000.0;
    }
    s.resources.insert("app".into(), ResourceUsage { cpu_series: app, ..Default::default() });
    s.resources.insert("postgres".into(), ResourceUsage { cpu_series: pg, ..Default::default() });
    s
}

fn stress_with(max_rate: Option<f64>, target: Option<CapacityTarget>) -> Suite {
    let mut suite = stress_suite(50.0);
    if let Some(Special::Stress(spec)) = &mut suite.special {
        spec.max_rate = max_rate;
        spec.capacity = target;
    }
    suite
}

#[test]
fn stress_search_past_the_plan_finds_where_the_service_broke_and_sizes_instances() {
    let mut s = with_cpu(summary("stress", 5.0, stress_windows(|_| (0, 20.0))));
    let obs = Observations {
        stress_extra: vec![
            extra(800.0, 800.0, 30.0, 25.0, None),
            extra(1600.0, 1590.0, 450.0, 400.0, Some("latency")),
            extra(1200.0, 1200.0, 60.0, 50.0, None),
            extra(1400.0, 1400.0, 180.0, 150.0, Some("latency")),
            extra(1300.0, 1300.0, 150.0, 120.0, Some("latency")),
        ],
        ..Default::default()
    };
    evaluate(&stress_with(None, Some(CapacityTarget { target_rps: 5000.0, headroom: 0.3 })), &mut s, &obs);
    assert_eq!(s.figures["breaking_rate"], 1200.0);
    assert_eq!(s.figures["failure_mode"], "latency");
    assert_eq!(s.figures["search_end"], "service_broke");
    assert_eq!(s.figures["steps"].as_array().unwrap().len(), 9);
    assert_eq!(s.figures["steps"][4]["extra"], true);
    let c = check(&s, "stress.breaking_point");
    assert!(c.passed && c.detail.contains("held 1200/s; broke at 1300/s by latency"), "{c:?}");
    assert!(c.detail.contains("after 5 extra steps: the service broke"), "{c:?}");

    let cap = &s.figures["capacity"];
    assert_eq!(cap["held_rps"], 1200.0);
    // 1.2 cores at 1200 requests/s: 1 ms of app CPU per request.
    assert_eq!(cap["app_cpu_ms_per_request"], 1.0);
    // At the breaking step (1300/s) the app used 1.3 cores of the host's 2, PostgreSQL 0.325:
    // the app's CPU.
    assert_eq!(cap["saturated_first"], "app_cpu");
    assert_eq!(cap["search_end"], "service_broke");
    // ceil(5000 / (1200 × 0.7)) = ceil(5.95) = 6.
    assert_eq!(cap["instances"], 6);
    assert_eq!(cap["headroom"], 0.3);
}

#[test]
fn stress_planned_steps_measure_their_cpu_from_the_series() {
    let mut s = with_cpu(summary("stress", 5.0, stress_windows(|r| (0, if r >= 400.0 { 300.0 } else { 20.0 }))));
    evaluate(&stress_with(None, None), &mut s, &Observations::default());
    let steps = s.figures["steps"].as_array().unwrap();
    assert_eq!(steps[2]["rate"], 200.0);
    assert_eq!(steps[2]["app_cores"], 0.2);
    assert_eq!(steps[2]["postgres_cores"], 0.05);
    let cap = &s.figures["capacity"];
    assert_eq!((cap["held_rps"].as_f64(), cap["app_cpu_ms_per_request"].as_f64()), (Some(200.0), Some(1.0)));
    // No target in the plan: no instance count.
    assert!(cap.get("instances").is_none());
    // It broke at 400/s with the app at 0.4 cores of 2: no CPU saturated, latency came first.
    assert_eq!(cap["saturated_first"], "latency");
    assert!(cap["saturated_detail"].as_str().unwrap().contains("app 0.40 cores, postgres 0.10 cores"), "{cap}");
}

#[test]
fn stress_search_ends_at_the_generator_limit_or_max_rate_not_at_a_breaking_point() {
    // 800/s scheduled, 500/s sent, the service answering in 20 ms: the generator's limit.
    let mut s = with_cpu(summary("stress", 5.0, stress_windows(|_| (0, 20.0))));
    let obs = Observations { stress_extra: vec![extra(800.0, 500.0, 900.0, 20.0, Some("generator"))], ..Default::default() };
    evaluate(&stress_with(None, Some(CapacityTarget { target_rps: 1000.0, headroom: 0.0 })), &mut s, &obs);
    assert_eq!(s.figures["breaking_rate"], 400.0);
    assert_eq!(s.figures["failure_mode"], "none");
    assert_eq!(s.figures["search_end"], "generator_limit");
    let c = check(&s, "stress.breaking_point");
    assert!(c.detail.contains("the load generator's limit, not the service's: at 800/s it sent 500/s"), "{c:?}");
    assert_eq!(s.figures["capacity"]["saturated_first"], "generator");
    assert_eq!(s.figures["capacity"]["instances"], 3);

    let mut s = with_cpu(summary("stress", 5.0, stress_windows(|_| (0, 20.0))));
    let obs = Observations { stress_extra: vec![extra(600.0, 600.0, 30.0, 25.0, None)], ..Default::default() };
    evaluate(&stress_with(Some(600.0), None), &mut s, &obs);
    assert_eq!(s.figures["breaking_rate"], 600.0);
    assert_eq!(s.figures["search_end"], "max_rate");
    assert!(check(&s, "stress.breaking_point").detail.contains("max_rate 600/s reached"));
    assert_eq!(s.figures["capacity"]["saturated_first"], "none");

    // Without extra steps while the search would go on, the report says it did not run.
    let mut s = summary("stress", 5.0, stress_windows(|_| (0, 20.0)));
    evaluate(&stress_with(None, None), &mut s, &Observations::default());
    assert_eq!(s.figures["search_end"], "not_searched");
}

#[test]
fn stress_figures_and_cpu_series_validate_against_the_summary_schema() {
    let schema: serde_json::Value = serde_json::from_str(include_str!("../../../schema/summary.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut s = with_cpu(summary("stress", 5.0, stress_windows(|_| (0, 20.0))));
    let obs = Observations { stress_extra: vec![extra(800.0, 800.0, 900.0, 800.0, Some("latency"))], ..Default::default() };
    evaluate(&stress_with(None, Some(CapacityTarget { target_rps: 5000.0, headroom: 0.3 })), &mut s, &obs);
    let mut json = serde_json::to_value(&s).unwrap();
    // The test kit's summary has placeholder hashes: only what the stress suite wrote counts.
    let ours = |json: &serde_json::Value| -> Vec<String> {
        validator
            .iter_errors(json)
            .filter(|e| ["/figures", "/resources"].iter().any(|p| e.instance_path().to_string().starts_with(p)))
            .map(|e| e.to_string())
            .collect()
    };
    assert!(json["figures"]["capacity"]["instances"].is_u64() && !json["resources"]["app"]["cpu_series"].as_array().unwrap().is_empty());
    assert_eq!(ours(&json), Vec::<String>::new());
    // The schema does judge the new fields: a headroom of 1 and an unknown end are refused.
    json["figures"]["capacity"]["headroom"] = serde_json::json!(1.0);
    json["figures"]["search_end"] = serde_json::json!("gave_up");
    assert_eq!(ours(&json).len(), 2, "{:?}", ours(&json));
}

#[test]
fn a_planned_step_behind_schedule_with_a_fast_service_is_the_generators_limit() {
    // 400/s scheduled, 250/s measured, p95 within the SLO.
    let windows = stress_windows(|_| (0, 20.0))
        .into_iter()
        .map(|mut w| {
            if w.requests == 400 {
                w.requests = 250;
            }
            w
        })
        .collect();
    let mut s = summary("stress", 5.0, windows);
    evaluate(&stress_with(None, None), &mut s, &Observations::default());
    assert_eq!(s.figures["search_end"], "generator_limit");
    assert_eq!(s.figures["breaking_rate"], 200.0);
    assert_eq!(s.figures["failure_mode"], "none");
    assert_eq!(s.figures["steps"][3]["failure"], "generator");
}

// --- soak ----------------------------------------------------------------------------------

fn soak_suite() -> Suite {
    let spec = SoakSpec { max_memory_growth: 0.2, max_p95_growth: 0.2, services: vec![Service::App, Service::Postgres] };
    suite(SuiteKind::Soak, Special::Soak(spec), constant(600))
}

/// Deterministic noise in [-1, 1].
fn noise(i: usize) -> f64 {
    ((i * 7919 % 101) as f64 / 50.0) - 1.0
}

fn soak_summary(app: impl Fn(usize) -> f64, p95: impl Fn(usize) -> f64, n: usize) -> Summary {
    let mut s = summary("soak", 5.0, (0..n).map(|i| window(i as u32, 50, 0, Some(p95(i)))).collect());
    let series = |f: &dyn Fn(usize) -> f64| (0..n).map(|i| f(i) as u64).collect::<Vec<_>>();
    s.resources
        .insert("app".into(), ResourceUsage { cpu_seconds: 1.0, peak_memory_bytes: 0, memory_series: series(&app), ..Default::default() });
    s.resources.insert(
        "postgres".into(),
        ResourceUsage { cpu_seconds: 1.0, peak_memory_bytes: 0, memory_series: series(&|i| 50e6 + 1e6 * noise(i)), ..Default::default() },
    );
    s
}

#[test]
fn soak_flat_memory_passes_even_when_noisy() {
    let mut s = soak_summary(|i| 100e6 + 5e6 * noise(i), |i| 10.0 + 3.0 * noise(i + 3), 300);
    evaluate(&soak_suite(), &mut s, &Observations::default());
    for name in ["soak.memory.app", "soak.memory.postgres", "soak.p95"] {
        assert!(check(&s, name).passed, "{:?}", check(&s, name));
    }
    assert!(s.figures["memory_growth.app"].as_f64().unwrap().abs() < 0.05);
}

#[test]
fn soak_leaking_memory_and_rising_latency_fail() {
    // +100 KiB/s on 100 MB over 300 s: +31%.
    let mut s = soak_summary(|i| 100e6 + 102_400.0 * i as f64 + 1e6 * noise(i), |i| 10.0 + 0.02 * i as f64 + noise(i), 300);
    evaluate(&soak_suite(), &mut s, &Observations::default());
    let c = check(&s, "soak.memory.app");
    assert!(!c.passed && c.detail.contains("significant rise"), "{c:?}");
    assert!((s.figures["memory_growth.app"].as_f64().unwrap() - 0.306).abs() < 0.01);
    assert!(check(&s, "soak.memory.postgres").passed);
    assert!(!check(&s, "soak.p95").passed, "{:?}", check(&s, "soak.p95"));
    assert!((s.figures["p95_slope_ms_per_s"].as_f64().unwrap() - 0.02).abs() < 0.005);
}

#[test]
fn soak_step_then_plateau_is_not_a_leak() {
    // Shaped like PostgreSQL in a real 10-minute soak (flat, a climb over 100 s, flat again),
    // with a step large enough that the whole-run trend passes the limit.
    let step = |i: usize| 66e6 + 20e6 * ((i as f64 - 330.0) / 100.0).clamp(0.0, 1.0) + 2e4 * noise(i);
    let mut s = soak_summary(step, |i| 10.0 + noise(i), 600);
    evaluate(&soak_suite(), &mut s, &Observations::default());
    let c = check(&s, "soak.memory.app");
    assert!(s.figures["memory_growth.app"].as_f64().unwrap() > 0.2, "the whole-run trend alone would call it a leak");
    assert!(c.passed && c.detail.contains("a plateau, not a leak"), "{c:?}");
    // The same step still rising at the end is a leak.
    let rising = |i: usize| 66e6 + 9e6 * ((i as f64 - 330.0) / 100.0).max(0.0) + 2e4 * noise(i);
    let mut s = soak_summary(rising, |i| 10.0 + noise(i), 600);
    evaluate(&soak_suite(), &mut s, &Observations::default());
    let c = check(&s, "soak.memory.app");
    assert!(!c.passed && !c.detail.contains("plateau"), "{c:?}");
}

#[test]
fn soak_growth_without_significance_passes() {
    // Big swings around a flat line over few points: growth can look large, slope is noise.
    let t = fit(&[
        (0.0, 10.0),
        (1.0, 30.0),
        (2.0, 5.0),
        (3.0, 28.0),
        (4.0, 8.0),
        (5.0, 33.0),
        (6.0, 9.0),
        (7.0, 31.0),
        (8.0, 10.0),
        (9.0, 35.0),
    ])
    .unwrap();
    assert!(t.growth().unwrap() > 0.2);
    assert!(!t.rising(), "{t:?}");
    let perfect = fit(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]).unwrap();
    assert!(perfect.rising() && perfect.slope == 1.0);
}

#[test]
fn soak_short_series_are_not_judged() {
    let mut s = soak_summary(|i| 100e6 * (1.0 + i as f64), |i| 10.0 * (1.0 + i as f64), 5);
    s.resources.remove("postgres");
    evaluate(&soak_suite(), &mut s, &Observations::default());
    for name in ["soak.memory.app", "soak.memory.postgres", "soak.p95"] {
        let c = check(&s, name);
        assert!(c.passed && c.detail.starts_with("not judged"), "{c:?}");
    }
}

// --- chaos ---------------------------------------------------------------------------------

fn chaos_suite(service: Service, expect: Vec<Expectation>) -> Suite {
    chaos_suite_with(service, ChaosVerb::Stop, ChaosVerb::Start, expect)
}

/// `first` at 15 s and `then` at 25 s of the suite, on `service`.
fn chaos_suite_with(service: Service, first: ChaosVerb, then: ChaosVerb, expect: Vec<Expectation>) -> Suite {
    let actions = vec![ChaosAction { at: secs(15), service, verb: first }, ChaosAction { at: secs(25), service, verb: then }];
    suite(SuiteKind::Chaos, Special::Chaos(ChaosSpec { actions, expect }), constant(40))
}

/// Warm-up 5 s: the service is down from 10 s to 20 s measured; errors in `failing` seconds.
fn chaos_summary(failing: std::ops::Range<u32>, statuses: &[(&str, u64)], errors: u64) -> Summary {
    let mut s = summary("chaos", 5.0, (0..35).map(|t| window(t, 10, if failing.contains(&t) { 2 } else { 0 }, Some(5.0))).collect());
    s.endpoints.insert("book".into(), endpoint(statuses, errors, &[("status", errors)]));
    s
}

fn events() -> Observations {
    let ev = |t: f64, what: &str| Event { t, what: what.into() };
    Observations {
        events: vec![ev(10.2, "stop postgres"), ev(20.3, "start postgres")],
        metrics: Vec::new(),
        warmup_s: 5.0,
        ..Default::default()
    }
}

fn one(s: &Summary) -> &Check {
    assert_eq!(s.checks.len(), 1, "{:?}", s.checks);
    &s.checks[0]
}

#[test]
fn chaos_no_5xx_except_503() {
    let suite = chaos_suite(Service::Postgres, vec![Expectation::No5xxExcept503]);
    let mut s = chaos_summary(10..22, &[("201", 50), ("503", 20)], 20);
    evaluate(&suite, &mut s, &events());
    assert!(one(&s).passed, "{:?}", s.checks);
    assert_eq!(one(&s).name, "chaos.no_5xx_except_503");
    assert_eq!(s.events.len(), 2, "the events are copied into the summary");

    let mut s = chaos_summary(10..22, &[("201", 50), ("503", 20), ("500", 1)], 21);
    evaluate(&suite, &mut s, &events());
    assert!(!one(&s).passed && one(&s).detail.contains("1 × 500 on book"), "{:?}", s.checks);
}

#[test]
fn chaos_errors_stop_within_the_restart() {
    let suite = chaos_suite(Service::Postgres, vec![Expectation::ErrorsStopWithin(secs(5))]);
    // Restarted at 20.3 s: errors until second 25 (25 < 25.3) pass, at second 26 fail.
    let mut s = chaos_summary(10..26, &[("503", 30)], 30);
    evaluate(&suite, &mut s, &events());
    assert!(one(&s).passed, "{:?}", s.checks);
    let mut s = chaos_summary(10..27, &[("503", 34)], 34);
    evaluate(&suite, &mut s, &events());
    assert!(!one(&s).passed && one(&s).detail.contains("at 26 s"), "{:?}", s.checks);
    // Without events the plan's time is used: 25 s − 5 s warm-up = 20 s.
    let mut s = chaos_summary(10..26, &[("503", 30)], 30);
    evaluate(&suite, &mut s, &Observations::default());
    assert!(!one(&s).passed, "{:?}", s.checks);
}

#[test]
fn chaos_errors_are_timed_from_the_heal_of_a_network_fault() {
    let suite = chaos_suite_with(
        Service::Postgres,
        ChaosVerb::Fault(Fault::Blackhole),
        ChaosVerb::Heal,
        vec![Expectation::ErrorsStopWithin(secs(5))],
    );
    let ev = |t: f64, what: &str| Event { t, what: what.into() };
    let obs = Observations {
        events: vec![ev(10.1, "blackhole postgres"), ev(20.2, "heal postgres")],
        metrics: Vec::new(),
        warmup_s: 5.0,
        ..Default::default()
    };
    let mut s = chaos_summary(10..25, &[("503", 30)], 30);
    evaluate(&suite, &mut s, &obs);
    assert!(one(&s).passed && one(&s).detail.contains("`heal postgres` at 20.2 s"), "{:?}", s.checks);
    let mut s = chaos_summary(10..27, &[("503", 34)], 34);
    evaluate(&suite, &mut s, &obs);
    assert!(!one(&s).passed, "{:?}", s.checks);
}

#[test]
fn chaos_timeouts_hold() {
    let suite =
        chaos_suite_with(Service::Postgres, ChaosVerb::Fault(Fault::Blackhole), ChaosVerb::Heal, vec![Expectation::TimeoutsHold(secs(2))]);
    let run = |slowest: &[f64], timeouts: u64| {
        let mut s = chaos_summary(0..0, &[], 0);
        s.endpoints.clear();
        for (i, max) in slowest.iter().enumerate() {
            let mut e = endpoint(&[("200", 10)], timeouts, &[("timeout", timeouts)]);
            e.service_ms.max = Some(*max);
            s.endpoints.insert(format!("e{i}"), e);
        }
        evaluate(&suite, &mut s, &Observations::default());
        one(&s).clone()
    };
    let c = run(&[1500.0, 40.0], 0);
    assert!(c.passed && c.detail.contains("slowest request 1500 ms (e0)"), "{c:?}");
    assert_eq!(c.name, "chaos.timeouts_hold:2s");
    let c = run(&[2400.0, 40.0], 0);
    assert!(!c.passed && c.detail.contains("e0 2400 ms"), "{c:?}");
    // Requests the load generator gave up on have no service time: they fail the check.
    let c = run(&[100.0], 3);
    assert!(!c.passed && c.detail.contains("3 requests got no answer"), "{c:?}");
    let c = run(&[], 0);
    assert!(!c.passed, "{c:?}");
}

#[test]
fn chaos_no_errors() {
    let suite = chaos_suite(Service::Redis, vec![Expectation::NoErrors]);
    let mut s = chaos_summary(0..0, &[("200", 300)], 0);
    evaluate(&suite, &mut s, &Observations::default());
    assert!(one(&s).passed);
    let mut s = chaos_summary(12..13, &[("200", 298)], 2);
    evaluate(&suite, &mut s, &Observations::default());
    assert!(!one(&s).passed && one(&s).detail.contains("book: 2"), "{:?}", s.checks);
}

fn scrapes(values: &[(f64, &[(&str, f64)])]) -> Observations {
    Observations { metrics: values.iter().map(|(t, m)| (*t, m.iter().map(|(k, v)| (k.to_string(), *v)).collect())).collect(), ..events() }
}

#[test]
fn chaos_breaker_cycle() {
    let suite = chaos_suite(Service::Postgres, vec![Expectation::BreakerCycle]);
    let b = "refapp_breaker_state";
    let run = |obs: Observations| {
        let mut s = chaos_summary(0..0, &[], 0);
        evaluate(&suite, &mut s, &obs);
        one(&s).clone()
    };
    let c = run(scrapes(&[
        (9.0, &[(b, 0.0)]),
        (11.0, &[(b, 1.0)]),
        (14.0, &[(b, 2.0)]),
        (15.0, &[(b, 1.0)]),
        (22.0, &[(b, 2.0)]),
        (23.0, &[(b, 0.0)]),
        (30.0, &[(b, 0.0)]),
    ]));
    assert!(c.passed && c.detail.contains("half-open"), "{c:?}");
    let c = run(scrapes(&[(9.0, &[(b, 0.0)]), (30.0, &[(b, 0.0)])]));
    assert!(!c.passed && c.detail.contains("never opened"), "{c:?}");
    let c = run(scrapes(&[(9.0, &[(b, 0.0)]), (11.0, &[(b, 1.0)]), (30.0, &[(b, 2.0)])]));
    assert!(!c.passed && c.detail.contains("never closed"), "{c:?}");
    let c = run(scrapes(&[]));
    assert!(!c.passed && c.detail.contains("no sample"), "{c:?}");
}

#[test]
fn chaos_cache_recovers() {
    let suite = chaos_suite(Service::Redis, vec![Expectation::CacheRecovers]);
    let h = |c: &str| format!("refapp_cache_hits_total{{cache=\"{c}\"}}");
    let (p, s_) = (h("provider"), h("slots"));
    let obs = |after: f64| {
        let ev = |t: f64, what: &str| Event { t, what: what.into() };
        let m = |t: f64, a: f64, b: f64| {
            (t, BTreeMap::from([(p.clone(), a), (s_.clone(), b), ("refapp_cache_misses_total{cache=\"provider\"}".to_string(), 7.0)]))
        };
        Observations {
            events: vec![ev(10.0, "stop redis"), ev(20.0, "start redis")],
            metrics: vec![m(9.0, 100.0, 50.0), m(15.0, 100.0, 50.0), m(20.5, 100.0, 50.0), m(30.0, 100.0 + after, 50.0)],
            warmup_s: 5.0,
            ..Default::default()
        }
    };
    let mut s = chaos_summary(0..0, &[], 0);
    evaluate(&suite, &mut s, &obs(40.0));
    assert!(one(&s).passed, "{:?}", s.checks);
    let mut s = chaos_summary(0..0, &[], 0);
    evaluate(&suite, &mut s, &obs(0.0));
    assert!(!one(&s).passed, "{:?}", s.checks);
}

#[test]
fn chaos_one_winner_per_slot() {
    let suite = chaos_suite(Service::Postgres, vec![Expectation::OneWinnerPerSlot(10)]);
    let mut s = chaos_summary(0..0, &[("201", 10), ("409", 990)], 0);
    evaluate(&suite, &mut s, &Observations::default());
    assert!(one(&s).passed, "{:?}", s.checks);
    assert_eq!(one(&s).name, "chaos.one_winner_per_slot:10");
    let mut s = chaos_summary(0..0, &[("201", 11), ("409", 989)], 0);
    evaluate(&suite, &mut s, &Observations::default());
    assert!(!one(&s).passed && one(&s).detail.contains("more than once"), "{:?}", s.checks);
}

#[test]
fn load_suites_are_left_alone() {
    let mut suite = chaos_suite(Service::Redis, vec![Expectation::NoErrors]);
    suite.kind = SuiteKind::Load;
    suite.special = None;
    let mut s = chaos_summary(1..2, &[("500", 1)], 1);
    evaluate(&suite, &mut s, &events());
    assert!(s.checks.is_empty() && s.events.is_empty() && s.figures.is_empty());
}
