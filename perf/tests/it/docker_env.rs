//! The docker backend on a real engine: start, health through the published port, services
//! without the password, stop/start keeping data, resources, shutdown leaving nothing; and a
//! failed start (an app that exits at once) leaving its log and nothing else.
//!
//! Needs a Docker engine and the local images (see docker_support/mod.rs for the variables):
//!   .ci/docker-engine.sh start && fixtures/images/build.sh base services postgres redis
//!   PERF_REQUIRE_DOCKER=1 cargo nextest run -p perf -E "test(/^docker_env::/)"

use std::collections::HashMap;
use std::time::Duration;

use crate::docker_support::{TEST_PASSWORD, app_table, assert_nothing_left, engine_or_skip, leftovers, plan};
use perf::env::docker::{DockerEnv, engine, new_run_id};
use perf::env::{EnvError, Service, StartOptions};
use testcontainers::bollard::query_parameters::InspectContainerOptions;
use tokio_util::sync::CancellationToken;

fn options(dir: &std::path::Path) -> StartOptions {
    StartOptions {
        plan_dir: dir.to_path_buf(),
        logs_dir: dir.join("results/logs"),
        app_url: None,
        cancel: CancellationToken::new(),
        fault_proxies: false,
        build_env: Vec::new(),
        notes: perf::run::Notes::default(),
    }
}

async fn get(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap()
}

async fn pg_client(port: u16) -> tokio_postgres::Client {
    let url = format!("postgres://perf:{TEST_PASSWORD}@127.0.0.1:{port}/perfdb");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to postgres");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_env_end_to_end() {
    if !engine_or_skip("docker_env_end_to_end").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(&app_table(dir.path()), Some(TEST_PASSWORD));
    let opts = options(dir.path());
    let started = std::time::Instant::now();
    let mut env = DockerEnv::start(&plan, &opts).await.unwrap_or_else(|e| panic!("start failed: {e}"));
    let run_id = env.run_id().to_string();
    eprintln!("docker_env_end_to_end: environment up in {:.1} s", started.elapsed().as_secs_f64());

    // The app answers through its port published on 127.0.0.1, and reached both databases
    // by their network aliases (its deep health check queries them).
    let app_url = env.app_url().to_string();
    assert!(app_url.starts_with("http://127.0.0.1:"), "{app_url}");
    let (status, body) = get(&format!("{app_url}/health/deep")).await;
    assert_eq!(status, 200, "deep health: {body}");

    // services(): app first, 127.0.0.1 only, never the password.
    let services = env.services();
    let kinds: Vec<Service> = services.iter().map(|s| s.service).collect();
    assert_eq!(kinds, [Service::App, Service::Postgres, Service::Redis]);
    for s in &services {
        assert!(!s.url.contains(TEST_PASSWORD), "password in {}", s.url);
        assert!(s.url.contains("127.0.0.1:"), "{}", s.url);
    }
    assert!(services[1].url.starts_with("postgres://perf@127.0.0.1:") && services[1].url.ends_with("/perfdb"));
    let pg_port = port_of(services[1].url.trim_end_matches("/perfdb"));
    let redis_port = port_of(&services[2].url);

    // Everything is labelled with the run, and every published port is bound to 127.0.0.1.
    let docker = engine::connect().unwrap();
    let found = leftovers(&run_id).await;
    assert_eq!(found.containers.len(), 3, "{found}");
    assert_eq!(found.networks, [format!("perf-gate-{run_id}")]);
    assert_eq!(found.volumes, [format!("perf-gate-{run_id}-pgdata")]);
    for name in &found.containers {
        let info = docker.inspect_container(name, None::<InspectContainerOptions>).await.unwrap();
        let bindings = info.host_config.unwrap().port_bindings.unwrap();
        assert_eq!(bindings.len(), 1, "{name}: {bindings:?}");
        for binding in bindings.values().flatten().flatten() {
            assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"), "{name}");
        }
    }

    // PostgreSQL down and up again: the app notices, the data and the port survive.
    let pg = pg_client(pg_port).await;
    // Throwaway data, as the local backend has it: a commit does not wait for the disk.
    let durability: Vec<String> = pg
        .query("SELECT name || '=' || setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(durability, ["fsync=off", "full_page_writes=off", "synchronous_commit=off"]);
    // Some work, so that PostgreSQL's CPU counter is clearly above what a fresh start uses.
    pg.batch_execute("SELECT count(*) FROM generate_series(1, 3000000)").await.unwrap();
    let pg_cpu_before_stop = env.resources().await.into_iter().find(|(s, _)| *s == Service::Postgres).unwrap().1.cpu_seconds;
    pg.batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')").await.unwrap();
    drop(pg);
    env.stop_service(Service::Postgres).await.unwrap();
    env.check_alive().await.expect("a service stopped on purpose is not a death");
    let (status, _) = get(&format!("{app_url}/health/deep")).await;
    assert_ne!(status, 200, "deep health must fail while postgres is stopped");
    env.start_service(Service::Postgres).await.unwrap();
    assert_eq!(port_of(env.services()[1].url.trim_end_matches("/perfdb")), pg_port, "port kept");
    let pg = pg_client(pg_port).await;
    let row = pg.query_one("SELECT v FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "still here");
    drop(pg);

    // Redis down and up again.
    env.stop_service(Service::Redis).await.unwrap();
    env.start_service(Service::Redis).await.unwrap();
    assert_eq!(port_of(&env.services()[2].url), redis_port);
    // The app may need a request or two to notice that its connections broke.
    let mut deep = get(&format!("{app_url}/health/deep")).await;
    for _ in 0..50 {
        if deep.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        deep = get(&format!("{app_url}/health/deep")).await;
    }
    assert_eq!(deep.0, 200, "deep health after restarts: {}", deep.1);

    // Resources: every container has used CPU and holds memory.
    let resources: HashMap<Service, _> = env.resources().await.into_iter().collect();
    assert_eq!(resources.len(), 3, "{resources:?}");
    for (service, sample) in &resources {
        assert!(sample.cpu_seconds > 0.0, "{service:?}: {sample:?}");
        assert!(sample.memory_bytes > 0, "{service:?}: {sample:?}");
    }
    // Cumulative over the run: the restart did not reset PostgreSQL's CPU seconds.
    assert!(
        resources[&Service::Postgres].cpu_seconds > pg_cpu_before_stop,
        "postgres CPU went from {pg_cpu_before_stop} before its restart to {:?}",
        resources[&Service::Postgres]
    );

    // Redis killed from outside (OOM, a crash): check_alive, asked every second of a suite,
    // names it with the container's exit state.
    env.check_alive().await.expect("everything runs");
    let redis_container = found.containers.iter().find(|n| n.contains("redis")).expect("a redis container");
    docker.kill_container(redis_container, None::<testcontainers::bollard::query_parameters::KillContainerOptions>).await.unwrap();
    let e = env.check_alive().await.expect_err("redis was killed");
    assert!(matches!(e, EnvError::Exited { service: "redis", .. }), "{e}");
    assert!(e.to_string().contains("exit code 137"), "{e}");

    eprintln!("docker_env_end_to_end: resources {resources:?}");
    let stopping = std::time::Instant::now();
    env.shutdown().await.unwrap();
    eprintln!("docker_env_end_to_end: shut down in {:.1} s", stopping.elapsed().as_secs_f64());
    assert_nothing_left(&run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_env_app_that_exits_at_once_fails_with_its_log_and_leaves_nothing() {
    if !engine_or_skip("docker_env_app_that_exits_at_once").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("crash");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nCMD [\"sh\", \"-c\", \"echo crash app starting; echo 'fatal: cannot open /nonexistent.conf' >&2; exit 3\"]\n",
            crate::docker_support::base_image()
        ),
    )
    .unwrap();
    let run_id = new_run_id();
    let image = format!("perf-local/perf-test-crash:{run_id}");
    let plan = plan(&format!("{{ image = {image:?}, dockerfile = \"crash/Dockerfile\", context = \"crash\" }}"), None);
    let opts = options(dir.path());

    let err = match DockerEnv::start_with_run_id(&plan, &opts, &run_id).await {
        Ok(_) => panic!("an app that exits at once must fail the start"),
        Err(e) => e,
    };
    let _ = std::process::Command::new("docker").args(["rmi", "--force", &image]).output();

    match &err {
        EnvError::Exited { service, status, log_tail } => {
            assert_eq!(*service, "app");
            assert!(status.contains("exit code 3"), "{status}");
            assert!(log_tail.contains("fatal: cannot open /nonexistent.conf"), "{log_tail}");
        }
        other => panic!("expected the app's exit, got: {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("results/logs"), "the error says where the logs are: {message}");
    let app_log = std::fs::read_to_string(opts.logs_dir.join("app.log")).expect("results/logs/app.log");
    assert!(app_log.contains("crash app starting") && app_log.contains("fatal: cannot open"), "{app_log}");
    let pg_log = std::fs::read_to_string(opts.logs_dir.join("postgres.log")).expect("results/logs/postgres.log");
    assert!(pg_log.contains("ready to accept connections"), "{pg_log}");
    assert!(opts.logs_dir.join("app-build.log").exists(), "the build's output is kept");
    assert_nothing_left(&run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_env_missing_image_without_registry_names_the_override() {
    if !engine_or_skip("docker_env_missing_image").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan(&app_table(dir.path()), None);
    plan.environment.redis.as_mut().expect("the test plan starts redis").image = "perf-local/does-not-exist:never".into();
    let run_id = new_run_id();
    let err = match DockerEnv::start_with_run_id(&plan, &options(dir.path()), &run_id).await {
        Ok(_) => panic!("a missing image that cannot be pulled must fail the start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("perf-local/does-not-exist:never"), "{err}");
    assert!(err.contains("PERF_REDIS_IMAGE"), "{err}");
    assert_nothing_left(&run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_env_dropped_by_a_panic_removes_everything() {
    use futures::FutureExt;
    if !engine_or_skip("docker_env_dropped_by_a_panic").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(&app_table(dir.path()), None);
    let opts = options(dir.path());
    let run_id = new_run_id();
    let outcome = std::panic::AssertUnwindSafe(async {
        let env = DockerEnv::start_with_run_id(&plan, &opts, &run_id).await.unwrap_or_else(|e| panic!("start failed: {e}"));
        assert_eq!(leftovers(env.run_id()).await.containers.len(), 3);
        panic!("a bug in the middle of a suite");
    })
    .catch_unwind()
    .await;
    let message = outcome.err().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
    assert_eq!(message.as_deref(), Some("a bug in the middle of a suite"), "the panic came from the test body");
    // Drop swept synchronously: nothing is left the moment the panic has unwound.
    let left = leftovers(&run_id).await;
    assert!(left.is_empty(), "left after the panic: {left}");
}

/// The app image builds from the repository root (`perf.toml`'s `[app.docker] context = "."`).
/// With the classic builder (Debian's docker.io 20.10), only the context root's `.dockerignore`
/// keeps `target/` (gigabytes after one build) and `.git/` out of what is sent to the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_build_context_stays_small_with_the_classic_builder() {
    if !engine_or_skip("the_repository_build_context_stays_small_with_the_classic_builder").await {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // FROM scratch pulls nothing; COPY . keeps exactly the context the builder received.
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, "FROM scratch\nCOPY . /context\n").unwrap();
    let tag = format!("perf-test-context:{}", new_run_id());
    let out = std::process::Command::new("docker")
        .args(["build", "--quiet", "-f"])
        .arg(&dockerfile)
        .args(["-t", &tag])
        .arg(root)
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_HOST", engine::docker_host())
        .output()
        .expect("the docker command runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", &tag])
        .env("DOCKER_HOST", engine::docker_host())
        .output()
        .unwrap();
    let _ = std::process::Command::new("docker").args(["image", "rm", "--force", &tag]).env("DOCKER_HOST", engine::docker_host()).output();
    let size: u64 = String::from_utf8_lossy(&inspect.stdout).trim().parse().expect("an image size");
    assert!(size < 50 * 1024 * 1024, "the context copied into the image is {size} bytes: target/, .git/ or results/ got in");
}
