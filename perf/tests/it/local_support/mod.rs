//! Helpers shared by the local backend's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perf::env::StartOptions;
use perf::env::resources::is_alive;
use perf::plan::Setup;
use tokio_util::sync::CancellationToken;

/// The stand-in app's script.
pub fn testapp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/local_support/testapp.py")
}

/// A plan that runs the stand-in app with `extra_env` (TOML lines `KEY = "value"`) added to
/// its environment, `build` as its build command, and `args` after the script.
pub fn plan(extra_env: &str, build: &str, args: &str, timeout: &str) -> Setup {
    let text = format!(
        r#"
version = 1
[environment]
startup_timeout = "{timeout}"
[environment.postgres]
database = "app"
user = "appuser"
[app]
health = "/health"
[app.local]
build = {build}
command = ["python3", "{script}", {args}]
[app.env]
PORT = "{{{{app.port}}}}"
LISTEN_ADDR = "{{{{app.listen}}}}"
DATABASE_URL = "{{{{postgres.url}}}}"
REDIS_URL = "{{{{ redis.url }}}}"
{extra_env}
[requests.home]
path = "/"
[suites.smoke.scenarios.one]
executor = "constant-vus"
request = "home"
"#,
        script = testapp().display()
    );
    perf::plan::parse(Path::new("perf.toml"), text.clone())
        .unwrap_or_else(|e| panic!("test plan: {e}\n{text}"))
        .setup()
        .unwrap_or_else(|e| panic!("test plan: {e}"))
}

pub fn options(logs_dir: &Path, cancel: CancellationToken) -> StartOptions {
    StartOptions {
        plan_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        logs_dir: logs_dir.to_path_buf(),
        app_url: None,
        cancel,
        fault_proxies: false,
        build_env: Vec::new(),
        notes: perf::run::Notes::default(),
    }
}

/// Waits (bounded) until none of `pids` is alive; returns the survivors.
pub fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub async fn get(url: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?.get(url).send().await
}
