//! Shared by the Docker tests (perf/tests/docker_*.rs): engine check, images, plans, and a
//! stub app that runs inside a container.
//!
//! Environment variables the Docker tests read:
//! - `PERF_REQUIRE_DOCKER=1`: no engine is a test failure (CI sets it); otherwise the tests
//!   print a notice and pass without doing anything (a laptop without Docker).
//! - `PERF_POSTGRES_IMAGE`, `PERF_REDIS_IMAGE` (default `perf-local/postgres:15`,
//!   `perf-local/redis:7`, built by fixtures/images/build.sh).
//! - `PERF_APP_IMAGE`: the app image under test (for example `perf-local/refapp:dev`); when
//!   unset, a stub app is used: this test binary itself, copied into an image on
//!   `PERF_BASE_IMAGE` (default `perf-local/debian:bookworm`), serving `/health/deep`
//!   after checking its `DATABASE_URL` and `REDIS_URL`.
//! - `DOCKER_HOST` as usual.

#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use perf::env::docker::{self, Leftovers, engine};
use perf::plan::Setup;

pub const STUB_IMAGE: &str = "perf-local/perf-test-stub:dev";
pub const TEST_PASSWORD: &str = "s3cret-Passw0rd-for-tests";

/// True when an engine answers. Without one: panics under `PERF_REQUIRE_DOCKER=1`, prints a
/// notice and returns false otherwise.
pub async fn engine_or_skip(test: &str) -> bool {
    if docker::engine_answers().await {
        return true;
    }
    let host = engine::docker_host();
    if std::env::var("PERF_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("{test}: PERF_REQUIRE_DOCKER=1 but no Docker engine answers at {host} (start one with .ci/docker-engine.sh start)");
    }
    eprintln!("{test}: SKIPPED: no Docker engine answers at {host} (set PERF_REQUIRE_DOCKER=1 to make this a failure)");
    false
}

fn var_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

pub fn base_image() -> String {
    var_or("PERF_BASE_IMAGE", "perf-local/debian:bookworm")
}

/// The database image overrides the tests apply: the environment's, else the local images.
/// The app's image is chosen by each test (`app_table`), never overridden behind its back.
pub fn image_lookup(key: &str) -> Option<String> {
    match key {
        "PERF_POSTGRES_IMAGE" => Some(var_or(key, "perf-local/postgres:15")),
        "PERF_REDIS_IMAGE" => Some(var_or(key, "perf-local/redis:7")),
        _ => None,
    }
}

/// `PERF_APP_IMAGE` when set and not empty.
pub fn app_image() -> Option<String> {
    std::env::var("PERF_APP_IMAGE").ok().filter(|v| !v.trim().is_empty())
}

/// A plan for the Docker tests: the app from `app_docker` (an inline TOML table), health at
/// `/health/deep`, the three template names in its environment.
pub fn plan(app_docker: &str, password: Option<&str>) -> Setup {
    let password = password.map(|p| format!("password = {p:?}")).unwrap_or_default();
    let text = format!(
        r#"
version = 1
[environment]
startup_timeout = "90s"
[environment.postgres]
user = "perf"
database = "perfdb"
{password}
[app]
health = "/health/deep"
local = {{ command = ["unused-by-docker"] }}
docker = {app_docker}
[app.env]
DATABASE_URL = "{{{{postgres.url}}}}"
REDIS_URL = "{{{{redis.url}}}}"
LISTEN_ADDR = "{{{{app.listen}}}}"
APP_PORT = "{{{{app.port}}}}"
[requests.health]
path = "/health"
[suites.baseline.scenarios.one]
executor = "constant-vus"
vus = 1
duration = "1s"
request = "health"
"#
    );
    let mut setup =
        perf::plan::parse(std::path::Path::new("perf.toml"), text).expect("test plan parses").setup().expect("test plan's setup");
    docker::apply_image_overrides(&mut setup, image_lookup);
    setup
}

/// The app table of the test plan: `PERF_APP_IMAGE` when set, else the stub, built from a
/// Dockerfile written into `dir` (the plan directory) by the backend itself when missing.
pub fn app_table(dir: &Path) -> String {
    if let Some(image) = app_image() {
        return format!("{{ image = {image:?}, port = 8080 }}");
    }
    write_stub_context(dir);
    format!("{{ image = {STUB_IMAGE:?}, dockerfile = \"stub/Dockerfile\", context = \"stub\", port = 8080 }}")
}

/// The stub's build context: this test binary and a Dockerfile whose entrypoint runs only
/// the ignored test `docker_support::stub_app_server`.
fn write_stub_context(dir: &Path) {
    static REMOVED_OLD: OnceLock<()> = OnceLock::new();
    // Once per test process: drop the stub image a previous build of the tests left, so the
    // backend builds it again from this binary (tests of one process share it).
    // Child processes of a test (PERF_STUB_KEEP=1) use what their parent prepared.
    REMOVED_OLD.get_or_init(|| {
        if std::env::var("PERF_STUB_KEEP").as_deref() != Ok("1") {
            let _ = std::process::Command::new("docker").args(["rmi", "--force", STUB_IMAGE]).output();
        }
    });
    let ctx = dir.join("stub");
    std::fs::create_dir_all(&ctx).unwrap();
    let exe = std::env::current_exe().unwrap();
    std::fs::copy(&exe, ctx.join("stub-app")).unwrap();
    let dockerfile = format!(
        "FROM {base}\n\
         COPY stub-app /usr/local/bin/stub-app\n\
         ENV PERF_STUB_APP=1\n\
         LABEL perf-gate.test-stub=1\n\
         USER nobody\n\
         ENTRYPOINT [\"/usr/local/bin/stub-app\", \"--ignored\", \"--exact\", \"docker_support::stub_app_server\", \"--nocapture\", \"--test-threads=1\"]\n",
        base = base_image()
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
}

/// What is left in the engine with the run's label.
pub async fn leftovers(run_id: &str) -> Leftovers {
    let docker = engine::connect().unwrap();
    engine::list_labelled(&docker, Some(run_id)).await.unwrap()
}

/// Polls until nothing is left of the run (removal is asynchronous in the engine), at most 10 s.
pub async fn assert_nothing_left(run_id: &str) {
    let mut left = leftovers(run_id).await;
    for _ in 0..50 {
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = leftovers(run_id).await;
    }
    panic!("run {run_id} left objects in the engine: {left}");
}

/// The stub app: runs only inside the stub image (`PERF_STUB_APP=1`); anywhere else this
/// ignored test returns at once. `/health` answers 200; `/health/deep` answers 200 when
/// `SELECT 1` on `DATABASE_URL` and `PING` on `REDIS_URL` both work, 503 otherwise, which
/// shows that the app reaches the databases through their network aliases.
#[test]
#[ignore = "the stub app inside the Docker tests' container, not a test"]
fn stub_app_server() {
    if std::env::var("PERF_STUB_APP").as_deref() != Ok("1") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(stub::serve());
}

mod stub {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;

    pub async fn serve() {
        let addr = std::env::var("LISTEN_ADDR").expect("LISTEN_ADDR");
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind LISTEN_ADDR");
        println!("stub app listening on {addr}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted.expect("accept"),
                _ = term.recv() => { println!("stub app: SIGTERM, exiting"); std::process::exit(0) }
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }

    async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let (status, body) = match req.uri().path() {
            "/health" => (StatusCode::OK, "ok".to_string()),
            "/health/deep" => match tokio::time::timeout(Duration::from_secs(3), deep()).await {
                Ok(Ok(())) => (StatusCode::OK, "postgres ok, redis ok".to_string()),
                Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e),
                Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timed out".to_string()),
            },
            _ => (StatusCode::NOT_FOUND, "not found".to_string()),
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        Ok(resp)
    }

    async fn deep() -> Result<(), String> {
        let db = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_string())?;
        let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await.map_err(|e| format!("postgres: {e}"))?;
        let driver = tokio::spawn(conn);
        client.simple_query("SELECT 1").await.map_err(|e| format!("postgres: {e}"))?;
        driver.abort();
        let redis_url = std::env::var("REDIS_URL").map_err(|_| "REDIS_URL is not set".to_string())?;
        let client = redis::Client::open(redis_url.as_str()).map_err(|e| format!("redis: {e}"))?;
        let mut con = client.get_multiplexed_async_connection().await.map_err(|e| format!("redis: {e}"))?;
        let pong: String = redis::cmd("PING").query_async(&mut con).await.map_err(|e| format!("redis: {e}"))?;
        if pong != "PONG" {
            return Err(format!("redis answered {pong}"));
        }
        Ok(())
    }
}
