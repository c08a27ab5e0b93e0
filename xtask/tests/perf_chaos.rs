//! The chaos suites against the reference app on the local backend, each run twice: as
//! shipped (the assertion holds, exit 0) and deliberately broken through one of the app's
//! opt-in knobs (the matching assertion fails, exit 1):
//! - write_race with `REFAPP_UNSAFE_BOOKING=1` (check-then-insert without the unique index)
//!   books some slot twice: `one_winner_per_slot` fails;
//! - chaos_db with `REFAPP_BREAKER=off`: PostgreSQL goes down and comes back, but the breaker
//!   never opens: `breaker_cycle` fails.
//!
//! Needs PostgreSQL's server binaries and redis-server (see README).

use std::path::{Path, PathBuf};
use std::process::Command;

use perf::summary::Summary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs one suite with `--quick` and returns the exit code and the summary.
fn run(suite: &str, app_env: Option<&str>) -> (i32, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(["perf", "--backend", "local", "--quick", "--no-baseline", "--progress", "plain", "--suite", suite])
        .arg("--out")
        .arg(dir.path())
        .current_dir(root());
    for k in ["GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_STEP_SUMMARY", "PERF_SUITES", "PERF_DURATION", "PERF_USERS", "PERF_BACKEND"] {
        c.env_remove(k);
    }
    if let Some(kv) = app_env {
        c.args(["--app-env", kv]);
    }
    let out = c.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let summary = perf::summary::read(&dir.path().join(format!("{suite}.json"))).unwrap_or_else(|e| {
        panic!("{suite}: no summary ({e}); exit {code}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr))
    });
    (code, summary)
}

fn check<'a>(s: &'a Summary, name: &str) -> &'a perf::summary::Check {
    s.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name} in {:?}", s.checks))
}

#[test]
fn write_race_has_one_winner_per_slot_unless_booking_is_unsafe() {
    let (code, safe) = run("write_race", None);
    let c = check(&safe, "chaos.one_winner_per_slot:10");
    assert!(c.passed, "{c:?}");
    assert_eq!(code, 0, "{:?}", safe.checks);
    assert!(safe.endpoints["book_race"].statuses.get("409").copied().unwrap_or(0) > 100, "the slots were really raced for");

    let (code, broken) = run("write_race", Some("REFAPP_UNSAFE_BOOKING=1"));
    let c = check(&broken, "chaos.one_winner_per_slot:10");
    assert!(!c.passed, "double bookings must be caught: {c:?}");
    assert_eq!(code, 1);
}

#[test]
fn database_outage_cycles_the_breaker_unless_it_is_disabled() {
    let (code, shipped) = run("chaos_db", None);
    for name in ["chaos.no_5xx_except_503", "chaos.breaker_cycle", "chaos.errors_stop_within:5s"] {
        let c = check(&shipped, name);
        assert!(c.passed, "{c:?}");
    }
    assert_eq!(code, 0, "{:?}", shipped.checks);
    let whats: Vec<&str> = shipped.events.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["stop postgres", "start postgres"], "the injected timeline is recorded");

    let (code, broken) = run("chaos_db", Some("REFAPP_BREAKER=off"));
    let c = check(&broken, "chaos.breaker_cycle");
    assert!(!c.passed, "a disabled breaker must be caught: {c:?}");
    assert_eq!(code, 1);
}
