//! The local backend's failure paths, each followed by the same check: no process it started
//! survives and its temporary directory is gone.
//!
//! One test function runs the cases in sequence because it points `PERF_TMPDIR` (and, for one
//! case, `PATH`) at its own directories and sets `GITHUB_TOKEN`: process-wide settings.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::local_support::{options, plan, survivors};
use perf::env::resources::process_tree;
use perf::env::{BackendKind, EnvError, Environment};
use perf::run::lifetime::{Spec, with_environments};
use perf::run::{GateError, Notes};
use tokio_util::sync::CancellationToken;

/// Nothing left: no child of this test process, an empty temporary root.
fn assert_clean(tmp: &Path, case: &str) {
    let children: Vec<u32> = process_tree(std::process::id()).into_iter().skip(1).collect();
    assert_eq!(survivors(&children), Vec::<u32>::new(), "{case}: processes survive");
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "{case}: left behind {left:?}");
}

async fn start_err(plan: &perf::plan::Setup, logs: &Path) -> EnvError {
    match Environment::start(BackendKind::Local, plan, &options(logs, CancellationToken::new())).await {
        Ok(_) => panic!("the start should fail"),
        Err(e) => e,
    }
}

#[test]
fn every_failure_cleans_up_and_explains_itself() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    // When the tests run as root, postgres runs as another account that must reach its files.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: set before the runtime and any other thread of this test binary exist.
    unsafe {
        std::env::set_var("PERF_TMPDIR", tmp.path());
        std::env::set_var("GITHUB_TOKEN", "ghp_not_for_the_app");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(cases(tmp.path()));
}

async fn cases(tmp: &Path) {
    let logs_root = tempfile::tempdir().unwrap();

    // The app exits while starting: the error has its exit status and its last log lines,
    // and every service's log is copied.
    let logs = logs_root.path().join("exits");
    let e = start_err(&plan("FAIL_AT_START = \"missing SECRET_KEY\"", "[]", "", "20s"), &logs).await;
    let msg = e.to_string();
    assert!(matches!(e, EnvError::Exited { service: "app", .. }), "{msg}");
    assert!(msg.contains("exit status: 3") && msg.contains("testapp: missing SECRET_KEY"), "{msg}");
    assert!(msg.contains(&format!("logs copied to {}", logs.display())), "{msg}");
    for f in ["app.log", "postgres.log", "redis.log"] {
        assert!(logs.join(f).is_file(), "{f} is copied");
    }
    assert_clean(tmp, "app exits");

    // The health check never answers 200: not ready, with the last answer.
    let logs = logs_root.path().join("unhealthy");
    let e = start_err(&plan("HEALTH_STATUS = \"503\"", "[]", "", "2s"), &logs).await;
    let msg = e.to_string();
    assert!(matches!(e, EnvError::NotReady { service: "app", .. }), "{msg}");
    assert!(msg.contains("503") && msg.contains("GET /health"), "the tail has the app's log: {msg}");
    assert_clean(tmp, "app never healthy");

    // The build fails: its output's tail is in the error.
    let logs = logs_root.path().join("build");
    let build = r#"["sh", "-c", "echo 'error[E0308]: mismatched types' >&2; exit 1"]"#;
    let e = start_err(&plan("", build, "", "20s"), &logs).await;
    let msg = e.to_string();
    assert!(matches!(e, EnvError::Build(_)) && msg.contains("error[E0308]: mismatched types"), "{msg}");
    assert!(logs.join("build.log").is_file());
    assert_clean(tmp, "build fails");

    // A template names something the backend does not know: the error names the env key,
    // and nothing was started.
    let e = start_err(&plan("SESSION_DB = \"{{postgres.uri}}\"", "[]", "", "20s"), logs_root.path()).await;
    let msg = e.to_string();
    assert!(msg.contains("app.env.SESSION_DB") && msg.contains("postgres.uri"), "{msg}");
    assert!(!msg.contains("logs copied"), "found before anything started: {msg}");
    assert_clean(tmp, "unknown template name");

    // Ctrl-C while PostgreSQL is still being created: interrupted soon, nothing left.
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let res = Environment::start(BackendKind::Local, &plan("", "[\"sleep\", \"60\"]", "", "20s"), &options(logs_root.path(), cancel)).await;
    assert!(matches!(res, Err(EnvError::Interrupted)), "{:?}", res.err());
    assert!(started.elapsed() < Duration::from_secs(15), "interrupted after {:?}", started.elapsed());
    assert_clean(tmp, "cancelled");

    // A normal run: the app does not inherit the gate's GitHub token.
    let env = Environment::start(BackendKind::Local, &plan("", "[]", "", "20s"), &options(logs_root.path(), CancellationToken::new()))
        .await
        .unwrap();
    let seen: serde_json::Value = crate::local_support::get(&format!("{}/env", env.app_url())).await.unwrap().json().await.unwrap();
    assert_eq!(seen["GITHUB_TOKEN"], serde_json::Value::Null, "{seen}");
    assert!(seen["DATABASE_URL"].as_str().unwrap().starts_with("postgres://"));
    env.shutdown().await.unwrap();
    assert_clean(tmp, "normal run");

    // Redis dies by itself (kill -9) while the environment runs: check_alive, which the gate
    // calls every second of a suite, names it with its exit and its log's tail.
    let mut env = Environment::start(BackendKind::Local, &plan("", "[]", "", "20s"), &options(logs_root.path(), CancellationToken::new()))
        .await
        .unwrap();
    env.check_alive().await.expect("everything runs");
    // A service stopped on purpose (what a chaos suite does) is not a death.
    env.stop_service(perf::env::Service::Postgres).await.unwrap();
    env.check_alive().await.expect("postgres was stopped on purpose");
    let redis_pid = process_tree(std::process::id())
        .into_iter()
        .find(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("redis-server")))
        .expect("redis-server is a child of the test");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(redis_pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let e = loop {
        match env.check_alive().await {
            Err(e) => break e,
            Ok(()) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(()) => panic!("redis was killed but check_alive says all is well"),
        }
    };
    assert!(matches!(e, EnvError::Exited { service: "redis", .. }), "{e}");
    assert!(e.to_string().contains("signal: 9"), "{e}");
    env.shutdown().await.unwrap();
    assert_clean(tmp, "redis killed");

    // A panic while the environment runs: unwinding drops it, which stops everything.
    let pids = Arc::new(Mutex::new(Vec::new()));
    let seen = pids.clone();
    let logs = logs_root.path().to_path_buf();
    let task = tokio::spawn(async move {
        let env =
            Environment::start(BackendKind::Local, &plan("", "[]", "", "20s"), &options(&logs, CancellationToken::new())).await.unwrap();
        seen.lock().unwrap().extend(process_tree(std::process::id()).into_iter().skip(1));
        let _keep = env;
        panic!("a bug in the gate");
    });
    let joined = task.await;
    assert!(joined.unwrap_err().is_panic());
    let pids = pids.lock().unwrap().clone();
    assert!(pids.len() >= 3, "app, redis and postgres were running: {pids:?}");
    assert_clean(tmp, "panic");

    // Two environments side by side (A/B, the experiment), the second fails to start: the
    // first is stopped too, and the error names the one that did not come up.
    let spec = |name: &str, env: &str, logs: &str| Spec {
        name: name.to_string(),
        backend: BackendKind::Local,
        setup: plan(env, "[]", "", "20s"),
        start: options(&logs_root.path().join(logs), CancellationToken::new()),
    };
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = said.clone();
    let notes = Notes::to(move |l| sink.lock().unwrap().push(l.to_string()));
    let mut worked = false;
    let specs = vec![spec("base", "", "pair-base"), spec("head", "FAIL_AT_START = \"head is broken\"", "pair-head")];
    let res = with_environments(&notes, &CancellationToken::new(), specs, async |_: &mut [Environment]| {
        worked = true;
        Ok(())
    })
    .await;
    let msg = res.unwrap_err().to_string();
    assert!(msg.starts_with("the head environment did not come up") && msg.contains("head is broken"), "{msg}");
    assert!(!worked, "no work without every environment");
    assert_clean(tmp, "second of two fails to start");

    // The work fails: every environment is stopped, the work's error is the outcome.
    let specs = vec![spec("base", "", "pair-base"), spec("head", "", "pair-head")];
    let res: Result<(), GateError> = with_environments(&notes, &CancellationToken::new(), specs, async |envs: &mut [Environment]| {
        assert_eq!(envs.len(), 2);
        Err(GateError::Io("disk full".into()))
    })
    .await;
    assert_eq!(res.unwrap_err().to_string(), "disk full");
    assert_clean(tmp, "the work fails");
    assert!(said.lock().unwrap().is_empty(), "clean stops say nothing: {:?}", said.lock().unwrap());

    // redis-server missing from PATH: the error says which package to install.
    let path = std::env::var_os("PATH").unwrap();
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: no other thread reads the environment while this case runs (the runtime's
    // workers are idle between cases).
    unsafe { std::env::set_var("PATH", empty.path()) };
    let e = start_err(&plan("", "[]", "", "20s"), logs_root.path()).await;
    unsafe { std::env::set_var("PATH", path) };
    let msg = e.to_string();
    assert!(matches!(e, EnvError::MissingProgram { .. }), "{msg}");
    assert!(msg.contains("redis-server") && msg.contains("apt-get install redis-server"), "{msg}");
    assert_clean(tmp, "missing program");
}
