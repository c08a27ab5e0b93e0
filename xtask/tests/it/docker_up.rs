//! `cargo xtask up --backend docker`, interrupted: the test runs the real command line, waits
//! for its service lines, checks the app answers, sends SIGINT, waits for exit 0, and asserts
//! through the engine's API that no container, network or volume of the run is left.
//!
//! Needs a Docker engine and the local images (fixtures/images/build.sh base services postgres
//! redis). Variables: `PERF_REQUIRE_DOCKER=1` turns a missing engine into a failure (CI);
//! `PERF_POSTGRES_IMAGE` / `PERF_REDIS_IMAGE` (default `perf-local/postgres:15`,
//! `perf-local/redis:7`) and `PERF_BASE_IMAGE` (default `perf-local/debian:bookworm`) name the
//! images, written into the test's own plan. The app is a stub: this test binary, copied into
//! an image on the base, answering 200 to every GET (std only, no database check: what is
//! tested here is the command's clean-up).
//!
//!   PERF_REQUIRE_DOCKER=1 cargo nextest run -p xtask -E 'test(/^docker_up::/)'

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use perf::env::docker::{self, engine};

const STUB_IMAGE: &str = "perf-local/xtask-test-stub:dev";

fn var_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

async fn engine_or_skip(test: &str) -> bool {
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

/// A plan using the local images and the stub app, with the stub's build context beside it.
fn write_plan(dir: &Path) -> std::path::PathBuf {
    let _ = Command::new("docker").args(["rmi", "--force", STUB_IMAGE]).output();
    let ctx = dir.join("stub");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(std::env::current_exe().unwrap(), ctx.join("stub-app")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY stub-app /usr/local/bin/stub-app\nENV PERF_XTASK_STUB=1\nUSER nobody\n\
             ENTRYPOINT [\"/usr/local/bin/stub-app\", \"--ignored\", \"--exact\", \"docker_up::stub_app\", \"--nocapture\"]\n",
            var_or("PERF_BASE_IMAGE", "perf-local/debian:bookworm")
        ),
    )
    .unwrap();
    let plan = format!(
        r#"version = 1
[environment.postgres]
image = {pg:?}
[environment.redis]
image = {redis:?}
[app]
health = "/health"
[app.env]
DATABASE_URL = "{{{{postgres.url}}}}"
REDIS_URL = "{{{{redis.url}}}}"
LISTEN_ADDR = "{{{{app.listen}}}}"
[app.local]
command = ["unused-by-docker"]
[app.docker]
image = {STUB_IMAGE:?}
dockerfile = "stub/Dockerfile"
context = "stub"
port = 8080
[requests.health]
path = "/health"
[suites.baseline.scenarios.one]
executor = "constant-vus"
vus = 1
duration = "1s"
request = "health"
"#,
        pg = var_or("PERF_POSTGRES_IMAGE", "perf-local/postgres:15"),
        redis = var_or("PERF_REDIS_IMAGE", "perf-local/redis:7"),
    );
    let path = dir.join("perf.toml");
    std::fs::write(&path, plan).unwrap();
    path
}

/// `xtask up`, its stdout read on a thread; interrupted (then killed) if the test fails.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn spawn(plan: &Path) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["up", "--backend", "docker", "--plan"])
            .arg(plan)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn xtask up");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Up { child, lines, seen: Vec::new() }
    }

    fn line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("xtask up printed no {prefix:?} line within {timeout:?}; stdout so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn exit_code(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "xtask up did not exit within {timeout:?} after SIGINT");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn http_get_status(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xtask_up_docker_interrupted_leaves_nothing() {
    if !engine_or_skip("xtask_up_docker_interrupted_leaves_nothing").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let mut up = Up::spawn(&plan);
    let app = up.line("app: ", Duration::from_secs(180));
    up.line("postgres: ", Duration::from_secs(5));
    up.line("redis: ", Duration::from_secs(5));
    up.line("ready: ", Duration::from_secs(5));
    let url = app.trim_start_matches("app: ").to_string();
    assert_eq!(http_get_status(&format!("{url}/health")), Some(200), "the app answers at {url}");

    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let docker = engine::connect().unwrap();
    let run = engine::run_publishing(&docker, port).await.unwrap().expect("a perf gate container publishes the app's port");
    let before = engine::list_labelled(&docker, Some(&run)).await.unwrap();
    assert_eq!(before.containers.len(), 3, "{before}");
    assert_eq!(before.networks.len(), 1, "{before}");
    assert_eq!(before.volumes.len(), 1, "{before}");

    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(up.exit_code(Duration::from_secs(60)), 0, "xtask up exits 0 after SIGINT");
    let mut left = engine::list_labelled(&docker, Some(&run)).await.unwrap();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = engine::list_labelled(&docker, Some(&run)).await.unwrap();
    }
    assert!(left.is_empty(), "run {run} left: {left}");
    let _ = Command::new("docker").args(["rmi", "--force", STUB_IMAGE]).output();
}

/// The stub app inside the container (`PERF_XTASK_STUB=1`): 200 "ok" to every request on
/// `LISTEN_ADDR`. Anywhere else this ignored test returns at once.
#[test]
#[ignore = "the stub app inside the test's container, not a test"]
fn stub_app() {
    if std::env::var("PERF_XTASK_STUB").as_deref() != Ok("1") {
        return;
    }
    let listener = std::net::TcpListener::bind(std::env::var("LISTEN_ADDR").unwrap()).unwrap();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        });
    }
}
