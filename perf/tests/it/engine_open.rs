//! Open-model runs: coordinated omission against a server that stalls, late and dropped
//! starts, and cancellation.

use std::time::Duration;

use crate::engine_support::{TestServer, compile, endpoint, run_with, start};
use perf::engine::{ProgressMode, RunOptions};
use tokio::time::Instant;

/// Options whose clock hook makes the server's `/stall` route hold requests arriving between
/// `from` and `until` after the measured start.
fn stalling(server: &TestServer, from: Duration, until: Duration) -> RunOptions {
    let (clock_tx, mut clock_rx) = tokio::sync::watch::channel::<Option<perf::engine::RunClock>>(None);
    let seen = server.seen.clone();
    tokio::spawn(async move {
        if let Ok(c) = clock_rx.wait_for(|c| c.is_some()).await {
            let start = Instant::from_std(c.unwrap().measured_start);
            *seen.stall.lock() = Some((start + from, start + until));
        }
    });
    let mut opts = RunOptions::new(&server.url);
    opts.progress = ProgressMode::Off;
    opts.hooks.clock = Some(clock_tx);
    opts
}

fn count_at_least(h: &hdrhistogram::Histogram<u64>, us: u64) -> u64 {
    h.iter_recorded().filter(|v| v.value_iterated_to() >= us).map(|v| v.count_at_value()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_latency_but_not_in_service_time() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.stall]
path = "/stall"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-arrival-rate"
rate = 50
duration = "4s"
pre_allocated_vus = 1
max_vus = 1
request = "stall"
"#,
    );
    let opts = stalling(&server, Duration::from_millis(1000), Duration::from_millis(2000));
    let r = run_with(&compiled, opts, Duration::from_secs(20)).await;
    let e = endpoint(&r, "stall");
    let sc = &r.scenarios[0];
    assert_eq!(e.requests, 200, "every scheduled start was made, late or not");
    assert_eq!(sc.scheduled_starts, 200);
    assert_eq!(sc.dropped_iterations, 0);
    // The one request that hit the stall took about a second to serve; the ~50 starts
    // scheduled behind it waited for the only user: their latency, measured from the schedule,
    // includes that queueing, their service time does not.
    let slow_latency = count_at_least(&e.latency, 500_000);
    let slow_service = count_at_least(&e.service, 500_000);
    assert!(slow_latency >= 20, "latency samples above 500 ms: {slow_latency}");
    assert!(slow_service <= 2, "service samples above 500 ms: {slow_service}");
    assert!(e.latency.max() >= 900_000, "max latency {} µs", e.latency.max());
    assert!(e.latency.value_at_quantile(0.9) > 5 * e.service.value_at_quantile(0.9));
    assert!(sc.late_starts >= 40, "late starts {}", sc.late_starts);
    assert_eq!(r.invalid_reasons.len(), 1, "{:?}", r.invalid_reasons);
    assert!(r.invalid_reasons[0].contains("fell behind schedule"), "{}", r.invalid_reasons[0]);
    let summary = perf::summary::build(&r, &perf::summary::RunContext::default());
    assert!(!summary.valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_that_cannot_be_made_before_the_end_are_dropped() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.stall]
path = "/stall"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-arrival-rate"
rate = 50
duration = "2s"
pre_allocated_vus = 1
max_vus = 1
graceful_stop = "500ms"
request = "stall"
"#,
    );
    let opts = stalling(&server, Duration::from_millis(1500), Duration::from_secs(10));
    let began = Instant::now();
    let r = run_with(&compiled, opts, Duration::from_secs(20)).await;
    assert!(began.elapsed() < Duration::from_secs(5), "the graceful stop bounded the run");
    let sc = &r.scenarios[0];
    assert_eq!(sc.scheduled_starts, 100);
    assert!((20..=26).contains(&sc.dropped_iterations), "dropped {}", sc.dropped_iterations);
    assert_eq!(sc.interrupted_iterations, 1, "the stalled request was cut after the graceful stop");
    let e = endpoint(&r, "stall");
    assert_eq!(e.requests + sc.dropped_iterations + sc.interrupted_iterations, 100);
    assert!(!r.invalid_reasons.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_run_promptly() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.ok]
path = "/ok"
[requests.slow]
path = "/slow/5000"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 2
duration = "60s"
request = "ok"
[suites.s.scenarios.b]
executor = "constant-arrival-rate"
rate = 5
duration = "60s"
request = "slow"
"#,
    );
    let mut opts = RunOptions::new(&server.url);
    opts.progress = ProgressMode::Off;
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        cancel.cancel();
    });
    let began = Instant::now();
    let r = run_with(&compiled, opts, Duration::from_secs(20)).await;
    assert!(began.elapsed() < Duration::from_secs(3), "stopped after {:?}", began.elapsed());
    assert!(r.cancelled);
    assert!(r.invalid_reasons.iter().any(|s| s.contains("interrupted")), "{:?}", r.invalid_reasons);
    assert!(endpoint(&r, "ok").requests > 0);
    assert_eq!(endpoint(&r, "slow").requests, 0, "no slow request finished");
    let slow = r.scenarios.iter().find(|s| s.name == "b").unwrap();
    assert!(slow.interrupted_iterations >= 3, "{slow:?}");
}
