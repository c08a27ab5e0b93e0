//! The chaos suites against the reference app on the local backend, each run twice, side by
//! side (a gate process per suite and side, each with its own PostgreSQL, Redis and app, at a
//! few dozen requests per second: the machine has room for four, and nothing is compared with
//! a baseline): as shipped (the assertion holds, exit 0) and deliberately broken through one of
//! the app's opt-in knobs (the matching assertion fails, exit 1):
//! - write_race with `REFAPP_UNSAFE_BOOKING=1` (check-then-insert without the unique index)
//!   books some slot twice: `one_winner_per_slot` fails;
//! - chaos_db with `REFAPP_BREAKER=off`: PostgreSQL goes down and comes back, but the breaker
//!   never opens: `breaker_cycle` fails;
//! - chaos_net_db and chaos_net_redis (latency, loss, resets and a blackhole through the fault
//!   proxies) with the app's timeouts raised far past the suites' limits (`REFAPP_DB_*_MS`,
//!   `REFAPP_REDIS_TIMEOUT_MS`): requests hang in the blackhole and `timeouts_hold` fails;
//! - realtime (WebSocket watchers) with `REFAPP_NO_EVENTS=1` (slot events never published):
//!   every expected message times out and the `watch.message` SLOs fail.
//!
//! Needs PostgreSQL's server binaries and redis-server (see README).

use std::path::{Path, PathBuf};
use std::process::Command;

use perf::summary::Summary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs one suite with `--quick` twice at once, as shipped and with `broken` (`KEY=VALUE`)
/// given to the app; returns each run's exit code and summary.
fn run(suite: &str, broken: &str) -> ((i32, Summary), (i32, Summary)) {
    let ((shipped_code, mut shipped), (broken_code, mut broken)) = run_many(&[suite], &[broken]);
    ((shipped_code, shipped.remove(0)), (broken_code, broken.remove(0)))
}

/// Runs each of `suites` as shipped and with the `broken` settings, all at the same time, each
/// in a gate run of its own (the chaos suites' timelines are fixed: run one after another they
/// would only add up); returns, as shipped and broken, the highest exit code and the summaries
/// in the order asked.
fn run_many(suites: &[&str], broken: &[&str]) -> ((i32, Vec<Summary>), (i32, Vec<Summary>)) {
    std::thread::scope(|scope| {
        let runs: Vec<_> = [&[][..], broken]
            .into_iter()
            .map(|env| suites.iter().map(|&suite| scope.spawn(move || run_once(&[suite], env))).collect::<Vec<_>>())
            .collect();
        let mut sides = runs.into_iter().map(|side| {
            side.into_iter().map(|run| run.join().expect("a gate run's thread")).fold((0, Vec::new()), |(code, mut all), (c, mut s)| {
                all.append(&mut s);
                (code.max(c), all)
            })
        });
        let shipped = sides.next().expect("as shipped");
        (shipped, sides.next().expect("broken"))
    })
}

/// Runs `suites` in one gate run with `--quick`, each `app_env` entry (`KEY=VALUE`) given to
/// the app; returns the exit code and the summaries in the order asked.
fn run_once(suites: &[&str], app_env: &[&str]) -> (i32, Vec<Summary>) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(["perf", "--backend", "local", "--quick", "--no-baseline", "--progress", "plain", "--suite", &suites.join(",")])
        .arg("--out")
        .arg(dir.path())
        .current_dir(root());
    for k in ["GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_STEP_SUMMARY", "PERF_SUITES", "PERF_DURATION", "PERF_USERS", "PERF_BACKEND"] {
        c.env_remove(k);
    }
    for kv in app_env {
        c.args(["--app-env", kv]);
    }
    let out = c.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let summaries = suites
        .iter()
        .map(|suite| {
            perf::summary::read(&dir.path().join(format!("{suite}.json")))
                .unwrap_or_else(|e| panic!("{suite}: no summary ({e}); exit {code}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)))
        })
        .collect();
    (code, summaries)
}

fn check<'a>(s: &'a Summary, name: &str) -> &'a perf::summary::Check {
    s.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name} in {:?}", s.checks))
}

#[test]
fn write_race_has_one_winner_per_slot_unless_booking_is_unsafe() {
    let ((code, safe), (broken_code, broken)) = run("write_race", "REFAPP_UNSAFE_BOOKING=1");
    let c = check(&safe, "chaos.one_winner_per_slot:10");
    assert!(c.passed, "{c:?}");
    assert_eq!(code, 0, "{:?}", safe.checks);
    assert!(safe.endpoints["book_race"].statuses.get("409").copied().unwrap_or(0) > 100, "the slots were really raced for");

    let c = check(&broken, "chaos.one_winner_per_slot:10");
    assert!(!c.passed, "double bookings must be caught: {c:?}");
    assert_eq!(broken_code, 1);
}

#[test]
fn database_outage_cycles_the_breaker_unless_it_is_disabled() {
    let ((code, shipped), (broken_code, broken)) = run("chaos_db", "REFAPP_BREAKER=off");
    for name in ["chaos.no_5xx_except_503", "chaos.breaker_cycle", "chaos.errors_stop_within:5s"] {
        let c = check(&shipped, name);
        assert!(c.passed, "{c:?}");
    }
    assert_eq!(code, 0, "{:?}", shipped.checks);
    let whats: Vec<&str> = shipped.events.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["stop postgres", "start postgres"], "the injected timeline is recorded");

    let c = check(&broken, "chaos.breaker_cycle");
    assert!(!c.passed, "a disabled breaker must be caught: {c:?}");
    assert_eq!(broken_code, 1);
}

#[test]
fn network_faults_are_bounded_by_the_apps_timeouts_unless_they_are_raised() {
    // An app without timeouts worth the name: connecting, waiting for a pooled connection,
    // statements and Redis commands may all take 20 s.
    let slow = [
        "REFAPP_DB_CONNECT_TIMEOUT_MS=20000",
        "REFAPP_DB_POOL_WAIT_MS=20000",
        "REFAPP_DB_STATEMENT_TIMEOUT_MS=20000",
        "REFAPP_REDIS_TIMEOUT_MS=20000",
    ];
    let suites = ["chaos_net_db", "chaos_net_redis"];
    let ((code, shipped), (broken_code, broken)) = run_many(&suites, &slow);
    let (db, redis) = (&shipped[0], &shipped[1]);
    for name in ["chaos.no_5xx_except_503", "chaos.timeouts_hold:3s", "chaos.breaker_cycle", "chaos.errors_stop_within:5s"] {
        let c = check(db, name);
        assert!(c.passed, "{c:?}");
    }
    for name in ["chaos.no_errors", "chaos.timeouts_hold:500ms", "chaos.cache_recovers"] {
        let c = check(redis, name);
        assert!(c.passed, "{c:?}");
    }
    assert_eq!(code, 0, "{:?} {:?}", db.checks, redis.checks);
    let whats: Vec<&str> = db.events.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["latency postgres 50ms ± 20ms", "loss postgres 2%", "reset postgres", "blackhole postgres", "heal postgres"]);
    // The faults went through the proxy: connections were reset and bytes swallowed.
    let proxy = &db.figures["fault_proxies"]["postgres"];
    assert!(proxy["reset"].as_u64().unwrap() > 0 && proxy["blackholed_bytes"].as_u64().unwrap() > 0, "{proxy}");
    let proxy = &redis.figures["fault_proxies"]["redis"];
    assert!(proxy["reset"].as_u64().unwrap() > 0 && proxy["blackholed_bytes"].as_u64().unwrap() > 0, "{proxy}");

    let c = check(&broken[0], "chaos.timeouts_hold:3s");
    assert!(!c.passed, "requests hanging on the database must be caught: {c:?}");
    let c = check(&broken[1], "chaos.timeouts_hold:500ms");
    assert!(!c.passed, "requests hanging on the cache must be caught: {c:?}");
    assert_eq!(broken_code, 1);
}

#[test]
fn realtime_watchers_hear_every_booking_unless_events_are_off() {
    let ((code, shipped), (broken_code, broken)) = run("realtime", "REFAPP_NO_EVENTS=1");
    let (watch, message) = (&shipped.endpoints["watch"], &shipped.endpoints["watch.message"]);
    assert_eq!(watch.kind.as_deref(), Some("ws_connect"));
    assert!(watch.requests >= 100, "{} connections", watch.requests);
    assert_eq!(watch.errors.total, 0, "no connection failed or dropped: {:?}", watch.errors);
    // Two expectations (booked, cancelled) per completed iteration, each met.
    assert!(message.requests >= shipped.endpoints["cancel"].requests, "{} {}", message.requests, shipped.endpoints["cancel"].requests);
    assert_eq!(message.errors.total, 0, "{:?}", message.errors);
    // Ten watchers per provider: each event is heard by the other watchers too.
    assert!(watch.messages_received.unwrap() > 2 * message.requests, "{:?} {}", watch.messages_received, message.requests);
    assert!(shipped.slo.iter().all(|s| s.passed), "{:?}", shipped.slo);
    assert_eq!(code, 0);

    let message = &broken.endpoints["watch.message"];
    assert!(message.requests > 0);
    assert_eq!(message.errors.by_kind.get("timeout"), Some(&message.requests), "{:?}", message.errors);
    let failed: Vec<&str> = broken.slo.iter().filter(|s| !s.passed).map(|s| s.endpoint.as_str()).collect();
    assert_eq!(failed, ["watch.message", "watch.message"], "{:?}", broken.slo);
    assert_eq!(broken_code, 1);
}
