//! Closed-model runs against a local server: totals, windows, hooks, warm-up, ramping users.

use std::time::Duration;

use crate::engine_support::{compile, endpoint, run, run_with, start};
use perf::engine::{Hooks, ProgressMode, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_vus_windows_add_up_and_hooks_see_the_run() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.ok]
path = "/ok"
[suites.s]
warmup = "1s"
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 3
duration = "3500ms"
request = "ok"
"#,
    );
    let (clock_tx, clock_rx) = tokio::sync::watch::channel(None);
    let (win_tx, mut win_rx) = tokio::sync::mpsc::channel(64);
    let mut opts = RunOptions::new(&server.url);
    opts.progress = ProgressMode::Off;
    opts.hooks = Hooks { clock: Some(clock_tx), windows: Some(win_tx) };
    let r = run_with(&compiled, opts, Duration::from_secs(20)).await;

    let ok = endpoint(&r, "ok");
    assert!(ok.requests > 50, "{} requests", ok.requests);
    assert_eq!(ok.errors(), 0);
    assert_eq!(ok.statuses.get(&200), Some(&ok.requests));
    assert_eq!(ok.latency.len(), ok.requests);
    assert_eq!(ok.service.len(), ok.requests);
    assert!(ok.bytes_sent > ok.requests * 20, "request lines and headers are counted: {}", ok.bytes_sent);
    assert!(ok.bytes_received > ok.requests * 40, "status lines, headers and bodies: {}", ok.bytes_received);

    // Windows: whole seconds from the measured start, the last one partial; they add up.
    assert!((3..=4).contains(&r.windows.len()), "{} windows", r.windows.len());
    assert_eq!(r.windows.iter().map(|w| w.requests).sum::<u64>(), ok.requests);
    assert_eq!(ok.windows.iter().map(|w| w.requests).sum::<u64>(), ok.requests);
    assert!(r.windows.iter().enumerate().all(|(i, w)| w.t == i as u32));
    assert!(r.windows[..2].iter().all(|w| w.active_vus == 3 && w.p50.is_some()));
    assert!((r.measured.as_secs_f64() - 2.5).abs() < 0.5, "{:?}", r.measured);

    // Hooks: the clock came before the load, the live windows are the summary's windows.
    let clock = clock_rx.borrow().expect("the clock was published");
    assert_eq!(clock.measured_start - clock.suite_start, Duration::from_secs(1));
    assert_eq!(clock.load_end - clock.suite_start, Duration::from_millis(3500));
    let mut live = Vec::new();
    while let Ok(w) = win_rx.try_recv() {
        live.push(w);
    }
    assert_eq!(live.iter().map(|w| w.suite.clone()).collect::<Vec<_>>(), r.windows);
    assert!(live.iter().all(|w| w.endpoints.iter().all(|(n, _)| n == "ok")));

    let sc = &r.scenarios[0];
    assert_eq!(sc.max_vus, 3);
    assert!(sc.iterations > 0 && sc.iterations <= ok.requests);
    assert_eq!((sc.dropped_iterations, sc.late_starts, sc.aborted_iterations), (0, 0, 0));
    assert!(r.invalid_reasons.is_empty(), "{:?}", r.invalid_reasons);
    assert!(!r.cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_sent_but_not_recorded() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.ok]
path = "/ok"
[suites.s]
warmup = "1500ms"
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 2
duration = "3s"
request = "ok"
"#,
    );
    let (clock_tx, clock_rx) = tokio::sync::watch::channel(None);
    let mut opts = RunOptions::new(&server.url);
    opts.progress = ProgressMode::Off;
    opts.hooks.clock = Some(clock_tx);
    let r = run_with(&compiled, opts, Duration::from_secs(20)).await;
    let measured_start = tokio::time::Instant::from_std(clock_rx.borrow().unwrap().measured_start);
    let arrivals = server.seen.arrivals.lock().clone();
    let before = arrivals.iter().filter(|t| **t < measured_start).count() as u64;
    let after = arrivals.len() as u64 - before;
    let recorded = endpoint(&r, "ok").requests;
    assert!(before > 20, "the warm-up sent load: {before}");
    // Requests in flight at the boundary (at most one per user) may fall either side.
    assert!(recorded.abs_diff(after) <= 2, "recorded {recorded}, arrived after the warm-up {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_vus_follow_their_stages() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.slow]
path = "/slow/20"
[suites.s]
[suites.s.scenarios.ramp]
executor = "ramping-vus"
stages = [{ duration = "2s", target = 4 }, { duration = "1500ms", target = 4 }, { duration = "1500ms", target = 0 }]
graceful_stop = "1s"
request = "slow"
"#,
    );
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    assert_eq!(r.scenarios[0].max_vus, 4);
    let users: Vec<u32> = r.windows.iter().map(|w| w.active_vus).collect();
    // 0 -> 4 over 2 s (one user per 500 ms), hold, then down to 0.
    assert!(users[0] >= 1 && users[0] <= 2, "{users:?}");
    assert_eq!(users[2], 4, "{users:?}");
    assert_eq!(users[3], 4, "{users:?}");
    assert!(*users.last().unwrap() <= 2, "{users:?}");
    assert_eq!(r.windows.iter().map(|w| w.requests).sum::<u64>(), endpoint(&r, "slow").requests);
}
