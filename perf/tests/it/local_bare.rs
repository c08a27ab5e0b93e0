//! An app that needs neither database, on the local backend: a plan without
//! `[environment.postgres]` or `[environment.redis]` whose templates name neither starts no
//! PostgreSQL and no Redis (the run's folder holds the app's files only), lists the app
//! alone, has no fault proxy for either, and a gate run of it passes with the databases'
//! statistics saying "not started".
//!
//! Needs python3 only (the stand-in app, tests/it/local_support/testapp.py); the gate test
//! sends a few seconds of measured load, so it runs in nextest's `measured-load` group.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::local_support::{get, options, testapp};
use perf::env::{BackendChoice, BackendKind, Environment, Fault, Service, ServiceAccess};
use perf::run::{GateOptions, GateOutcome, Notes};
use tokio_util::sync::CancellationToken;

/// A plan that runs the stand-in app with no database: its templates name the app only.
fn bare_plan() -> String {
    format!(
        r#"
version = 1
default_suites = ["smoke"]
[app]
health = "/health"
[app.local]
command = ["python3", "{script}"]
[app.env]
PORT = "{{{{app.port}}}}"
LISTEN_ADDR = "{{{{app.listen}}}}"
[requests.health]
path = "/health"
[suites.smoke]
warmup = "1s"
[suites.smoke.scenarios.users]
executor = "constant-vus"
vus = 2
duration = "6s"
request = "health"
[suites.smoke.slo]
"*" = {{ error_rate = 0.01 }}
"#,
        script = testapp().display()
    )
}

fn setup() -> perf::plan::Setup {
    let text = bare_plan();
    perf::plan::parse(Path::new("perf.toml"), text.clone()).unwrap_or_else(|e| panic!("test plan: {e}\n{text}")).setup().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_databases_starts_alone() {
    let logs = tempfile::tempdir().unwrap();
    let setup = setup();
    assert_eq!(setup.environment.services(), [Service::App], "the plan asks for no database");
    let mut env = Environment::start(BackendKind::Local, &setup, &options(logs.path(), CancellationToken::new()))
        .await
        .expect("the local environment starts without PostgreSQL or Redis");
    let Environment::Local(local) = &env else { panic!("asked for the local backend") };
    let dir = local.dir().to_path_buf();
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.starts_with("perf-postgres-") || n.starts_with("perf-redis-")), "no server's folder: {names:?}");

    let services = env.services();
    assert_eq!(services.iter().map(|s| s.service).collect::<Vec<_>>(), [Service::App]);
    assert_eq!(get(&format!("{}/health", env.app_url())).await.unwrap().status(), 200);
    assert_eq!(env.service_access(), Some(ServiceAccess { postgres: None, redis_port: None }));
    assert_eq!(env.resources().await.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [Service::App]);
    env.check_alive().await.expect("the app alone is alive");
    let err = env.stop_service(Service::Postgres).await.unwrap_err().to_string();
    assert!(err.contains("postgres is not started"), "{err}");
    env.shutdown().await.unwrap();
    assert!(!dir.exists(), "{} is removed", dir.display());

    // With fault proxies (what chaos suites get): none for a service the run does not start.
    let opts = perf::env::StartOptions { fault_proxies: true, ..options(logs.path(), CancellationToken::new()) };
    let mut env = Environment::start(BackendKind::Local, &setup, &opts).await.expect("starts with proxies asked for");
    assert!(env.proxy_stats().is_empty(), "no proxy in front of a database that is not there");
    let err = env.set_fault(Service::Redis, Fault::Reset).unwrap_err().to_string();
    assert!(err.contains("redis is not started"), "{err}");
    env.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_passes_an_app_without_databases() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("perf.toml");
    std::fs::write(&plan, bare_plan()).unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut opts = GateOptions::new(plan, dir.path().join("results"));
    opts.backend = BackendChoice::Local;
    opts.confirm = false;
    opts.notes = Notes::to({
        let lines = lines.clone();
        move |l: &str| lines.lock().unwrap().push(l.to_string())
    });
    let outcome = perf::run::gate(opts).await.unwrap_or_else(|e| panic!("the gate runs: {e}\n{}", lines.lock().unwrap().join("\n")));
    let GateOutcome::Judged(run) = outcome else { panic!("a run, not --check") };
    let said = lines.lock().unwrap().join("\n");
    assert_eq!(run.exit_code(), 0, "{said}");
    assert!(said.contains("postgres is not started") && said.contains("redis is not started"), "{said}");
    let summary = &run.report.suites[0].summary;
    assert!(summary.valid, "{:?}", summary.invalid_reasons);
    assert!(summary.endpoints["health"].requests > 0, "{said}");
    assert_eq!(summary.resources.keys().map(String::as_str).collect::<Vec<_>>(), ["app"], "only the app was sampled");
    let under = summary.underneath.as_ref().expect("a load suite's statistics are read");
    let (pg, redis) = (under.postgres_unavailable.as_deref().unwrap_or(""), under.redis_unavailable.as_deref().unwrap_or(""));
    assert!(pg.starts_with("postgres is not started") && under.postgres.is_none(), "{under:?}");
    assert!(redis.starts_with("redis is not started") && under.redis.is_none(), "{under:?}");
}
