//! The app's CPU profile on the local backend, end to end: the repository's plan and the
//! reference app on real PostgreSQL and Redis, a stored baseline, then a run with CPU work
//! planted in one function of the app (`REFAPP_WORK`: `refapp::metrics::busy_work` spins on
//! every request of a route). The profile comparison names that function first, the report's
//! "where the app spent its CPU" section lists it, and the differential flame graph is written.
//!
//! Needs `perf` with the right to watch the app (root, or `perf_event_paranoid` low enough),
//! PostgreSQL's server binaries and redis-server. Where `perf` cannot profile, the test checks
//! that the summary says why instead, unless `PERF_REQUIRE_PROFILER=1` (`.ci/run` sets it),
//! which makes that a failure. Sends measured load: runs in nextest's `measured-load`
//! group.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use perf::compare::profile::{ProfileComparison, compare};
use perf::env::BackendChoice;
use perf::plan::CompileOptions;
use perf::run::{BaselineChoice, GateOptions, GateOutcome, JudgedRun, Notes};
use perf::verdict::BaselineSource;

/// The function `REFAPP_WORK` spends its time in.
const PLANTED: &str = "refapp::metrics::busy_work";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

async fn gate(out: &Path, baseline: &Path, store: bool, app_env: &[(&str, &str)]) -> (JudgedRun, String) {
    let mut opts = GateOptions::new(root().join("perf.toml"), out.to_path_buf());
    opts.compile = CompileOptions {
        suites: vec!["baseline".into()],
        quick: true,
        duration: Some(std::time::Duration::from_secs(10)),
        ..CompileOptions::default()
    };
    opts.backend = BackendChoice::Local;
    opts.confirm = false;
    // On a shared machine the CPU calibration of two runs minutes apart may differ enough to
    // call the baseline another machine's; this test is about the profile, not the testbed.
    opts.any_testbed = true;
    opts.baseline =
        BaselineChoice::Path { path: baseline.to_path_buf(), source: BaselineSource::Committed { path: baseline.display().to_string() } };
    opts.update_baseline = store.then(|| baseline.to_path_buf());
    opts.app_env = app_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    opts.notes = Notes::to({
        let lines = lines.clone();
        move |l: &str| lines.lock().unwrap().push(l.to_string())
    });
    let outcome = perf::run::gate(opts).await.unwrap_or_else(|e| panic!("the gate runs: {e}\n{}", lines.lock().unwrap().join("\n")));
    let GateOutcome::Judged(run) = outcome else { panic!("a run, not --check") };
    let mut said = lines.lock().unwrap().join("\n");
    said.push_str(&perf::render::terminal(&run.report, perf::render::TerminalOptions::default()));
    said.push_str(&format!("\nbaseline update: {:?}", run.baseline_update.as_ref().map(|r| r.as_ref().map(|_| ()))));
    (*run, said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_slowed_in_the_app_is_named_first_with_its_flame_graph() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline");

    // 1. The baseline, stored with its profile.
    let (run, said) = gate(&dir.path().join("r1"), &baseline, true, &[]).await;
    assert_eq!(run.exit_code(), 0, "{said}");
    let base = run.report.suites[0].summary.clone();
    let profile = base.profile.as_ref().expect("a load suite on the local backend has a profile, or says why not");
    if let Some(why) = &profile.unavailable {
        // No perf or no permission here: one line says why, and the run was judged anyway.
        // `.ci/run` installs perf and sets PERF_REQUIRE_PROFILER=1: there this is a failure.
        assert!(std::env::var("PERF_REQUIRE_PROFILER").as_deref() != Ok("1"), "PERF_REQUIRE_PROFILER=1 but no profile: {why}");
        assert!(!why.is_empty());
        eprintln!("no profile on this machine: {why}");
        return;
    }
    assert!(profile.samples > 0 && profile.requests > 0, "{profile:?}");
    assert!(profile.stacks.len() <= perf::summary::Profile::MAX_STACKS);
    let stored = std::fs::read_dir(&baseline).unwrap().next().unwrap().unwrap().path().join("baseline.json");
    assert!(perf::summary::read(&stored).unwrap().profile.is_some_and(|p| p.samples > 0), "the stored baseline keeps the profile");

    // 2. 3 ms of CPU planted in `busy_work` on every request of one route.
    let r2 = dir.path().join("r2");
    let (run, said) = gate(&r2, &baseline, false, &[("REFAPP_WORK", "provider:3000")]).await;
    let head = &run.report.suites[0].summary;
    let ProfileComparison::Compared(c) = compare(base.profile.as_ref(), head.profile.as_ref()) else {
        panic!("both sides profiled: {:?}\n{said}", head.profile.as_ref().and_then(|p| p.unavailable.clone()))
    };
    // The reference app's own function resolves by name: its symbol table is enough for the
    // leaf frame, which self time is ranked by (no frame pointers needed).
    let first = &c.functions[0];
    assert_eq!(first.function, PLANTED, "the planted function comes first: {:?}", c.functions.iter().take(5).collect::<Vec<_>>());
    // Its growth is most of the app's growth in CPU per request.
    let growth = c.head_per_1k - c.base_per_1k;
    assert!(growth > 0.0 && first.delta() >= 0.5 * growth, "{first:?} of {growth} samples/1k req more in all");
    let md = std::fs::read_to_string(r2.join("report.md")).unwrap();
    let section = md.split("where the app spent its CPU</summary>").nth(1).unwrap_or_else(|| panic!("{md}"));
    assert!(section.contains(&PLANTED.replace('_', "\\_")), "Markdown escapes the underscore: {section}");
    let svg = std::fs::read_to_string(r2.join("baseline.profile-diff.svg")).expect("the differential flame graph is written");
    assert!(svg.contains("<svg") && svg.contains("busy_work"), "an SVG naming the function");
    let html = std::fs::read_to_string(r2.join("report.html")).unwrap();
    assert!(html.contains("baseline.profile-diff.svg"), "the HTML report links the flame graph");
}
