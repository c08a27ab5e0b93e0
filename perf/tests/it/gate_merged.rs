//! The gate on a distributed run, as a user runs it with the installed `cargo-perf`: three
//! shard processes (`--shard K/3 --start-at`) against one server, `merge`, then the gate on
//! the merged folder (`--from-summaries`). The merged run records a baseline of its own
//! testbed (`…-3shards`), a slower server's merged run regresses against it (exit 1), and an
//! unmerged shard or a changed plan is refused before anything is judged (exit 2, file named).
//!
//! The server is in the test process: `/work` answers after a delay the test sets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// 12 s: six segments of 2 s, more than the five the comparison resamples (6 s gave three).
const PLAN: &str = r#"version = 1
[requests.work]
path = "/work"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-arrival-rate"
rate = 150
duration = "12s"
request = "work"
"#;

struct Server {
    url: String,
    delay_ms: Arc<AtomicU64>,
}

async fn work(State(delay): State<Arc<AtomicU64>>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Relaxed))).await;
    "done"
}

async fn serve() -> Server {
    let delay_ms = Arc::new(AtomicU64::new(2));
    let app = Router::new().route("/work", get(work)).route("/health", get(|| async { "ok" })).with_state(delay_ms.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { url, delay_ms }
}

/// `cargo-perf ARGS` with no GitHub or PERF_* settings from the environment the tests run in.
fn cargo_perf(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-perf"));
    c.args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("PERF_") || k.starts_with("GITHUB_") {
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

/// Three shard processes sharing one start time, then merged into `<dir>/merged`. They are
/// spawned half a second apart: each calibrates the CPU as it starts, and three calibrations
/// at once on a 2-core machine slow each other (all three by half, or one not at all), which
/// would make the two runs' testbeds differ by more than the tolerance.
async fn sharded_run(plan: &Path, url: &str, dir: &Path) -> PathBuf {
    let at = humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(4)).to_string();
    let mut children = Vec::new();
    for k in 1..=3 {
        let out = dir.join(format!("shard-{k}"));
        let child = cargo_perf(&["--plan", s(plan), "--backend", "external", "--app-url", url, "--progress", "off"])
            .args(["--shard", &format!("{k}/3"), "--start-at", &at, "--out", s(&out)])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outputs =
        tokio::task::spawn_blocking(move || children.into_iter().map(|c| c.wait_with_output().unwrap()).collect::<Vec<_>>()).await.unwrap();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
    }
    let merged = dir.join("merged");
    let dirs: Vec<PathBuf> = (1..=3).map(|k| dir.join(format!("shard-{k}"))).collect();
    let o = cargo_perf(&["merge"]).args(&dirs).args(["--out", s(&merged)]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    merged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_run_is_gated_against_the_baseline_of_merged_runs_of_as_many_shards() {
    let server = serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("perf.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let baseline = tmp.path().join("baseline");

    // A first distributed run becomes the baseline of 3-shard runs.
    let merged = sharded_run(&plan, &server.url, &tmp.path().join("one")).await;
    let gated = tmp.path().join("gated-one");
    let o = cargo_perf(&["--plan", s(&plan), "--from-summaries", s(&merged), "--baseline", s(&baseline), "--update-baseline"])
        .args(["--out", s(&gated)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stored: Vec<PathBuf> = std::fs::read_dir(&baseline).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let key = stored[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(key.starts_with("external-") && key.ends_with("-3shards"), "a merged run's testbed names its shard count: {key}");
    let recorded = perf::summary::read(&stored[0].join("s.json")).unwrap();
    assert_eq!(recorded.endpoints["work"].requests, 1800, "the three shards' 600 + 600 + 600");
    assert_eq!(recorded.run.merged_from.len(), 3);
    assert!(gated.join("report.html").is_file() && gated.join("s.json").is_file(), "the gate's outputs go to --out");

    // The same server, 10× slower: the merged run regresses against the merged baseline.
    server.delay_ms.store(20, Ordering::Relaxed);
    let slower = sharded_run(&plan, &server.url, &tmp.path().join("two")).await;
    let o = cargo_perf(&["--plan", s(&plan), "--from-summaries", s(&slower), "--baseline", s(&baseline)])
        .args(["--out", s(&tmp.path().join("gated-two"))])
        .output()
        .unwrap();
    let all = text(&o);
    let report = std::fs::read_to_string(tmp.path().join("gated-two/report.md")).unwrap_or_default();
    assert_eq!(o.status.code(), Some(1), "{all}\nreport.md:\n{report}");
    assert!(all.contains(&format!("testbed: {key}")), "judged on the merged testbed: {all}");
    assert!(report.contains("work"), "{report}");

    // One shard's folder is a part of the load, not a run: refused, named.
    let shard = tmp.path().join("two/shard-2");
    let o = cargo_perf(&["--plan", s(&plan), "--from-summaries", s(&shard), "--baseline", s(&baseline)])
        .args(["--out", s(&tmp.path().join("gated-three"))])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains(&shard.join("s.json").display().to_string()) && all.contains("merge the shards first"), "{all}");
    assert!(!tmp.path().join("gated-three/s.json").exists(), "nothing judged, nothing written");

    // The plan changed since the shards ran: their results are not this plan's suite.
    std::fs::write(&plan, PLAN.replace("rate = 150", "rate = 160")).unwrap();
    let o = cargo_perf(&["--plan", s(&plan), "--from-summaries", s(&slower), "--baseline", s(&baseline)])
        .args(["--out", s(&tmp.path().join("gated-four"))])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains(&slower.join("s.json").display().to_string()) && all.contains("another definition"), "{all}");
}
