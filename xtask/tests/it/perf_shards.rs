//! Load beyond one machine, end to end on this one: the reference app's environment started
//! once with `cargo xtask up` (local backend: real PostgreSQL, Redis and the app), three shard
//! processes (`--shard K/3`) started at one `--start-at` against it, `cargo xtask merge`, and
//! the gate on the merged run (`--from-summaries`); then one process sending the same plan's
//! whole load, for comparison.
//!
//! What must hold:
//! - the merged counts are the sums of the shards' (per endpoint), and each shard ran a third
//!   of every scenario's scheduled starts;
//! - the achieved rate of each scenario is within 2% of the plan's (the open model: the shards'
//!   schedules interleave into the plan's, so together they keep its rate);
//! - every shard's measured load began at the common start time (plus the warm-up), within
//!   250 ms: the shards' schedules are offset from one instant, not from when each process
//!   happened to start (the interleaving within that schedule is checked at the server in
//!   `perf/tests/it/engine_shard.rs`);
//! - p50 and p95 of the merged run are within the noise of the single process's. Tolerance:
//!   a factor of 2 either way, or 2 ms apart, whichever is looser. Both runs put the same
//!   request rate on the same app on a 2-core machine, but the sharded run adds two more
//!   generator processes to it; what the check catches is a merge that is not of the
//!   histograms (a sum of the shards' percentiles is 3× off, a mean of them hides the tail).
//!
//! Runs in the `measured-load` group (alone on the machine): about 90 s.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use perf::summary::Summary;

const WARMUP_S: f64 = 2.0;
const RATES: [(&str, f64); 2] = [("health", 150.0), ("provider", 75.0)];

/// The plan the shards and the single process send: two endpoints at fixed rates, one of them
/// reading PostgreSQL. It targets an app started elsewhere (`--backend external`).
const PLAN: &str = r#"version = 1
[app]
health = "/health/deep"
[variables]
provider_id = { int = [1, 300] }
[requests.health]
path = "/health"
[requests.provider]
path = "/api/providers/{{provider_id}}"
[suites.spread]
warmup = "2s"
[suites.spread.scenarios.health]
executor = "constant-arrival-rate"
rate = 150
duration = "14s"
request = "health"
[suites.spread.scenarios.provider]
executor = "constant-arrival-rate"
rate = 75
duration = "14s"
request = "provider"
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.current_dir(root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("GITHUB_") || (k.starts_with("PERF_") && k != "PERF_TMPDIR") {
            c.env_remove(k);
        }
    }
    c
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `cargo xtask up --backend local` with the repository's plan (the reference app), stopped
/// (Ctrl-C to its process group) when dropped.
struct Up(crate::up_local::Up);

impl Up {
    fn start() -> (Up, String) {
        let mut up = crate::up_local::start_up(&root().join("perf.toml"));
        let lines = up.read_until_ready();
        let app = lines.iter().find_map(|l| l.strip_prefix("app: ")).expect("xtask up prints the app's URL").to_string();
        (Up(up), app)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let child = &mut self.0.child;
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
    }
}

fn gate(plan: &Path, url: &str, out: &Path) -> Command {
    let mut c = xtask();
    c.args(["perf", "--plan", s(plan), "--backend", "external", "--app-url", url, "--no-baseline", "--progress", "off", "--out", s(out)]);
    c
}

fn read(path: &Path) -> Summary {
    perf::summary::read(path).unwrap_or_else(|e| panic!("{e}"))
}

fn within_noise(what: &str, merged: f64, single: f64) {
    let ratio = merged / single;
    assert!(
        (0.5..=2.0).contains(&ratio) || (merged - single).abs() <= 2.0,
        "{what}: merged {merged:.3} ms vs one process {single:.3} ms (×{ratio:.2})"
    );
}

#[test]
fn three_shard_processes_against_one_environment_merge_into_the_plans_load() {
    let (_up, url) = Up::start();
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("perf.toml");
    std::fs::write(&plan, PLAN).unwrap();

    // Three processes, one start time a few seconds ahead (RFC 3339, as another machine
    // would be given it).
    let start_at = SystemTime::now() + Duration::from_secs(6);
    let at = humantime::format_rfc3339_millis(start_at).to_string();
    let shards: Vec<Child> = (1..=3)
        .map(|k| {
            gate(&plan, &url, &tmp.path().join(format!("shard-{k}")))
                .args(["--shard", &format!("{k}/3"), "--start-at", &at])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in shards {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let dirs: Vec<PathBuf> = (1..=3).map(|k| tmp.path().join(format!("shard-{k}"))).collect();
    let merged_dir = tmp.path().join("merged");
    let o = xtask().arg("merge").args(&dirs).args(["--out", s(&merged_dir)]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let parts: Vec<Summary> = dirs.iter().map(|d| read(&d.join("spread.json"))).collect();
    let merged = read(&merged_dir.join("spread.json"));
    assert!(merged.valid, "{:?}", merged.invalid_reasons);

    // Counts: the sums of the shards', and a third of every scenario's starts each.
    for (name, _) in RATES {
        let sum: u64 = parts.iter().map(|p| p.endpoints[name].requests).sum();
        assert_eq!(merged.endpoints[name].requests, sum, "{name}");
        let errors: u64 = parts.iter().map(|p| p.endpoints[name].errors.total).sum();
        assert_eq!(merged.endpoints[name].errors.total, errors, "{name}");
        let iterations: Vec<u64> = parts.iter().map(|p| p.scenarios[name].iterations).collect();
        let (lo, hi) = (iterations.iter().min().unwrap(), iterations.iter().max().unwrap());
        assert!(hi - lo <= 1, "{name}: each shard starts every third iteration: {iterations:?}");
    }

    // The plan's rate, together.
    for (name, rate) in RATES {
        let rps = merged.endpoints[name].rps;
        assert!((rps - rate).abs() <= rate * 0.02, "{name}: {rps:.2}/s merged, the plan's {rate}/s");
    }

    // One schedule: each shard's measured load began at the start time plus the warm-up.
    let expected = start_at + Duration::from_secs_f64(WARMUP_S);
    for (k, p) in parts.iter().enumerate() {
        let began = humantime::parse_rfc3339_weak(&p.run.started_at).unwrap();
        let off = match began.duration_since(expected) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        eprintln!("shard {}: measured load began {off:+.4} s from the common start", k + 1);
        assert!(off.abs() <= 0.25, "shard {}: measured load began {off:+.3} s from the common start", k + 1);
    }

    // The gate on the merged run: valid, nothing to compare with, SLO-free plan: a pass.
    let o = xtask()
        .args(["perf", "--plan", s(&plan), "--from-summaries", s(&merged_dir), "--no-baseline", "--out", s(&tmp.path().join("gated"))])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("-3shards"), "the merged run's testbed: {}", text(&o));

    // One process sending the whole plan: percentiles within the noise.
    let single_dir = tmp.path().join("single");
    let o = gate(&plan, &url, &single_dir).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let single = read(&single_dir.join("spread.json"));
    for (name, _) in RATES {
        let (m, one) = (&merged.endpoints[name].latency_ms, &single.endpoints[name].latency_ms);
        eprintln!(
            "{name}: merged {} requests at {:.2}/s, p50 {:.3} p95 {:.3} ms; one process {} at {:.2}/s, p50 {:.3} p95 {:.3} ms",
            merged.endpoints[name].requests,
            merged.endpoints[name].rps,
            m.p50.unwrap(),
            m.p95.unwrap(),
            single.endpoints[name].requests,
            single.endpoints[name].rps,
            one.p50.unwrap(),
            one.p95.unwrap()
        );
        within_noise(&format!("{name} p50"), m.p50.unwrap(), one.p50.unwrap());
        within_noise(&format!("{name} p95"), m.p95.unwrap(), one.p95.unwrap());
    }
}
