//! `cargo xtask perf --backend docker` end to end through testcontainers, with the reference
//! app's image: one quick baseline suite gives a valid summary that says `docker` and carries
//! the containers' resource use and the app's CPU profile (perf on the host), and in the same
//! run chaos_net_redis, in a second environment whose app reaches Redis through the fault proxy
//! on the network's gateway, passes its checks; a run interrupted with SIGINT in the middle of
//! the suite exits 130 and leaves no container, network or volume of its run (asked through
//! the engine's API).
//!
//! Needs a Docker engine and the local images (fixtures/images/build.sh): `PERF_POSTGRES_IMAGE`,
//! `PERF_REDIS_IMAGE`, `PERF_APP_IMAGE` (default `perf-local/postgres:15`, `perf-local/redis:7`,
//! `perf-local/refapp:dev`). `PERF_REQUIRE_DOCKER=1` turns a missing engine into a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use perf::env::docker::{self, engine};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn var_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

async fn engine_or_skip(test: &str) -> bool {
    if docker::engine_answers().await {
        return true;
    }
    if std::env::var("PERF_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("{test}: PERF_REQUIRE_DOCKER=1 but no Docker engine answers at {}", engine::docker_host());
    }
    eprintln!("{test}: SKIPPED: no Docker engine answers (set PERF_REQUIRE_DOCKER=1 to make this a failure)");
    false
}

fn xtask(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.arg("perf").args(args).current_dir(root());
    c.env("PERF_POSTGRES_IMAGE", var_or("PERF_POSTGRES_IMAGE", "perf-local/postgres:15"))
        .env("PERF_REDIS_IMAGE", var_or("PERF_REDIS_IMAGE", "perf-local/redis:7"))
        .env("PERF_APP_IMAGE", var_or("PERF_APP_IMAGE", "perf-local/refapp:dev"));
    for k in ["GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_STEP_SUMMARY", "PERF_SUITES", "PERF_DURATION", "PERF_USERS", "PERF_BACKEND"] {
        c.env_remove(k);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_quick_baseline_end_to_end() {
    if !engine_or_skip("docker_quick_baseline_end_to_end").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("r");
    let out = xtask(&[
        "--backend",
        "docker",
        "--quick",
        // Both suites at 20 s (the chaos suite's faults keep their order and proportions).
        "--duration",
        "20s",
        "--suite",
        "baseline,chaos_net_redis",
        "--no-baseline",
        "--progress",
        "plain",
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The plan's SLOs are tight, and a container's disk can stall a write for a second on a
    // shared machine: an SLO breach (exit 1 with only SLOs failed) is not what this test is
    // about. Anything else that is not a pass (an invalid run, a failed check) fails it.
    let slo_only =
        out.status.code() == Some(1) && stdout.contains("Verdict: SLO BREACH. No regression.") && !stdout.contains("check failed");
    assert!(out.status.code() == Some(0) || slo_only, "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code());
    let summary = perf::summary::read(&out_dir.join("baseline.json")).expect("a valid summary");
    assert_eq!(summary.run.backend, perf::plan::BackendKind::Docker);
    assert!(summary.valid, "{:?}", summary.invalid_reasons);
    for name in ["health", "health_deep", "login", "providers", "provider", "slots", "book", "appointment", "cancel"] {
        let e = summary.endpoints.get(name).unwrap_or_else(|| panic!("endpoint {name} in the summary"));
        assert!(e.requests > 0 && e.errors.total == 0, "{name}: {} requests, {:?}", e.requests, e.errors);
    }
    for service in ["app", "postgres", "redis"] {
        let r = summary.resources.get(service).unwrap_or_else(|| panic!("resources of {service}"));
        assert!(r.peak_memory_bytes > 0, "{service}: {r:?}");
    }
    assert!(summary.resources["app"].cpu_seconds > 0.0);
    assert!(summary.app_metrics.is_some(), "the app's metrics were scraped");
    assert!(std::fs::read_to_string(out_dir.join("report.md")).unwrap().contains("docker"));
    assert!(!summary.figures.contains_key("fault_proxies"), "the measured suite does not go through a proxy");
    // The postgres image was started with pg_stat_statements loaded (`-c` arguments): the
    // statements, their plans and Redis's commands are in the summary.
    let under = summary.underneath.as_ref().expect("statistics of the databases");
    let pg = under.postgres.as_ref().unwrap_or_else(|| panic!("pg_stat_statements: {:?}", under.postgres_unavailable));
    assert!(pg.top.iter().any(|s| s.query.contains("LEFT JOIN slots") && s.plan.iter().any(|l| l.ends_with("on slots"))), "{:?}", pg.top);
    assert!(under.redis.as_ref().is_some_and(|r| r.keyspace_hits + r.keyspace_misses > 0), "{:?}", under.redis);
    // The app's CPU, sampled by perf on the host in the container's processes, named from the
    // app's own binary, read through the process's root: Rust functions linked into it (the
    // app's, or tokio's, hyper's, mio's: which of them a few dozen samples land in is luck),
    // not only libc's and the kernel's.
    if let Some(profile) = sampled_profile("docker_quick_baseline_end_to_end", &summary) {
        assert!(profile.samples > 0 && profile.requests > 0, "{profile:?}");
        let from_the_binary = |stack: &str| ["refapp::", "tokio::", "hyper::", "mio::", "axum::"].iter().any(|c| stack.contains(c));
        assert!(
            profile.stacks.keys().any(|stack| from_the_binary(stack)),
            "the app binary's functions are named: {:?}",
            profile.stacks.keys().take(10).collect::<Vec<_>>()
        );
    }

    let chaos = perf::summary::read(&out_dir.join("chaos_net_redis.json")).expect("a valid summary");
    assert!(chaos.underneath.is_none(), "chaos suites fault the databases: their counters say nothing");
    assert!(!chaos.checks.is_empty() && chaos.checks.iter().all(|c| c.passed), "{:?}", chaos.checks);
    let redis = &chaos.figures["fault_proxies"]["redis"];
    assert!(redis["connections"].as_u64().unwrap() > 0 && redis["reset"].as_u64().unwrap() > 0, "{redis}");
    assert!(stderr.contains("through fault proxies"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_run_interrupted_mid_suite_leaves_nothing() {
    if !engine_or_skip("docker_run_interrupted_mid_suite_leaves_nothing").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = xtask(&[
        "--backend",
        "docker",
        "--quick",
        "--suite",
        "baseline",
        "--no-baseline",
        "--progress",
        "plain",
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the app's URL, then for the measured part of the suite.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut port = None;
    let mut seen = String::new();
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no measured progress line in time; stderr so far:\n{seen}")
        });
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.trim().strip_prefix("app: ") {
            port = url.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        }
        if line.contains("[baseline] measure") {
            break;
        }
    }
    let port = port.expect("the app's URL was printed");
    let docker = engine::connect().unwrap();
    let run = engine::run_publishing(&docker, port).await.unwrap().expect("a perf gate container publishes the app's port");
    let before = engine::list_labelled(&docker, Some(&run)).await.unwrap();
    assert_eq!(before.containers.len(), 3, "{before}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("xtask perf did not exit within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(line) = rx.try_recv() {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert_eq!(status.code(), Some(130), "exit 130 after SIGINT; stderr:\n{seen}");
    let left = engine::list_labelled(&docker, Some(&run)).await.unwrap();
    assert!(left.is_empty(), "run {run} left: {left}");
}

/// A/B with Docker: the base's app image is `PERF_APP_BASE_IMAGE` (here the same image as the
/// head's, so the same code twice), both sides' containers up at once, the suite in pairs of
/// segments: a verdict from this machine, and no regression on unchanged code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_ab_of_the_same_image_passes_pair_by_pair() {
    if !engine_or_skip("docker_ab_of_the_same_image_passes_pair_by_pair").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("r");
    let out = xtask(&[
        "--backend",
        "docker",
        "--quick",
        "--suite",
        "baseline",
        // 12 s a side (the quick suite's 30 s shortened): five pairs of 2 s segments.
        "--duration",
        "12s",
        "--against",
        "HEAD",
        "--progress",
        "off",
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .env("PERF_APP_BASE_IMAGE", var_or("PERF_APP_IMAGE", "perf-local/refapp:dev"))
    .output()
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let slo_only = out.status.code() == Some(1) && stdout.contains("Verdict: SLO BREACH. No regression.");
    assert!(out.status.code() == Some(0) || slo_only, "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code());
    assert!(stdout.contains("Suite baseline (A/B against HEAD ("), "{stdout}");
    assert!(stderr.contains("A/B baseline:") && stderr.contains("pairs of"), "{stderr}");
    let head = perf::summary::read(&out_dir.join("baseline.json")).expect("the head side");
    assert_eq!(head.run.backend, perf::plan::BackendKind::Docker);
    let base = perf::summary::read(&out_dir.join("ab/baseline-base.json")).expect("the base side");
    let pairs = head.endpoints["slots"].segments.len();
    assert!(pairs >= 5 && base.endpoints["slots"].segments.len() == pairs, "{pairs} pairs");
    // Each side's app CPU, from one recording over all the segments, read per container.
    for (side, s) in [("base", &base), ("head", &head)] {
        if let Some(profile) = sampled_profile(&format!("docker_ab ({side})"), s) {
            let requests: u64 = s.endpoints.values().map(|e| e.requests).sum();
            assert!(profile.samples > 0 && profile.requests == requests, "{side}: {profile:?}");
        }
    }
}

/// The app's CPU profile of a load suite's summary when perf could take one; else why not is
/// printed, or, with PERF_REQUIRE_PROFILER=1, fails the test.
fn sampled_profile<'a>(test: &str, summary: &'a perf::summary::Summary) -> Option<&'a perf::summary::Profile> {
    let profile = summary.profile.as_ref().expect("a load suite has a profile, or says why not");
    match &profile.unavailable {
        Some(why) if std::env::var("PERF_REQUIRE_PROFILER").as_deref() == Ok("1") => {
            panic!("{test}: PERF_REQUIRE_PROFILER=1 but no profile: {why}")
        }
        Some(why) => {
            eprintln!("{test}: no profile on this machine: {why}");
            None
        }
        None => Some(profile),
    }
}
