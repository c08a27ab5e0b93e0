//! Ctrl-C with the docker backend: a child process starts the environment the way
//! `cargo xtask up --backend docker` does (a cancellation token cancelled on SIGINT/SIGTERM,
//! service lines on stdout, teardown on the signal), the test sends SIGINT, waits for the
//! child and asserts through the engine's API that no container, network or volume labelled
//! with the run is left: once after start-up, once in the middle of it.
//!
//! The child is this test binary running its ignored test `docker_up_child`
//! (`PERF_DOCKER_UP_CHILD=1`). Same variables as docker_env.rs (see docker_support/mod.rs):
//!   PERF_REQUIRE_DOCKER=1 cargo nextest run -p perf -E "test(/^docker_interrupt::/)"

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::docker_support::{app_table, assert_nothing_left, engine_or_skip, leftovers, plan};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use perf::env::docker::{DockerEnv, new_run_id};
use perf::env::{Environment, StartOptions};
use tokio_util::sync::CancellationToken;

/// A child running `docker_up_child`, its stdout read line by line on a thread.
struct UpChild {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl UpChild {
    fn spawn(dir: &Path, run_id: &str) -> UpChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "docker_interrupt::docker_up_child", "--nocapture", "--test-threads=1"])
            .env("PERF_DOCKER_UP_CHILD", "1")
            .env("PERF_DOCKER_UP_DIR", dir)
            .env("PERF_DOCKER_UP_RUN_ID", run_id)
            .env("PERF_STUB_KEEP", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest prints the child's first line right after its own test name.
                let line = line.strip_prefix("test docker_interrupt::docker_up_child ... ").map(str::to_string).unwrap_or(line);
                let _ = tx.send(line);
            }
        });
        UpChild { child, lines, seen: Vec::new() }
    }

    /// Reads lines until one starts with `prefix`; panics with everything seen on timeout.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?} within {timeout:?}; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn interrupt(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
    }

    /// Waits for the exit (at most `timeout`, then kills it and fails) and returns the
    /// exit code and the rest of the output.
    fn wait_exit(mut self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status.code().unwrap_or(-1), self.seen.join("\n"));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the child did not exit within {timeout:?} after SIGINT; output:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for UpChild {
    /// A failed assertion must not leave the child (and its containers) running: interrupt it
    /// so that it cleans up, and kill it if it does not exit in time.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_after_start_up_removes_everything() {
    if !engine_or_skip("sigint_after_start_up_removes_everything").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    app_table(dir.path()); // prepares the stub's build context once, in this process
    let run_id = new_run_id();
    let mut child = UpChild::spawn(dir.path(), &run_id);
    let app = child.wait_line("app: ", Duration::from_secs(180));
    child.wait_line("postgres: ", Duration::from_secs(5));
    child.wait_line("redis: ", Duration::from_secs(5));
    child.wait_line("ready: ", Duration::from_secs(5));
    let url = app.trim_start_matches("app: ").to_string();
    let status = reqwest::get(format!("{url}/health/deep")).await.unwrap().status();
    assert_eq!(status, 200);
    assert_eq!(leftovers(&run_id).await.containers.len(), 3);

    child.interrupt();
    let (code, output) = child.wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "exit code after SIGINT; output:\n{output}");
    assert!(output.contains("stopped"), "{output}");
    assert_nothing_left(&run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_in_the_middle_of_start_up_removes_everything() {
    if !engine_or_skip("sigint_in_the_middle_of_start_up_removes_everything").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    app_table(dir.path());
    let run_id = new_run_id();
    let mut child = UpChild::spawn(dir.path(), &run_id);
    child.wait_line("run: ", Duration::from_secs(30));
    // Interrupt once the first container exists: PostgreSQL's initialisation takes seconds,
    // so start-up is still waiting for readiness.
    let deadline = Instant::now() + Duration::from_secs(120);
    while leftovers(&run_id).await.containers.is_empty() {
        assert!(Instant::now() < deadline, "no container of run {run_id} appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.interrupt();
    let (code, output) = child.wait_exit(Duration::from_secs(60));
    assert_eq!(code, 2, "an interrupted start exits 2; output:\n{output}");
    assert!(output.contains("error: interrupted"), "{output}");
    assert!(!output.contains("ready: "), "the start must not have completed: {output}");
    assert_nothing_left(&run_id).await;
}

/// The child: what `xtask up --backend docker` does, in a process of its own.
/// `kill -9` of the gate: nothing cleans up, the containers stay. The next run finds them by
/// their process label (the owner is gone), removes them and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_after_a_killed_gate_removes_what_it_left() {
    if !engine_or_skip("the_run_after_a_killed_gate_removes_what_it_left").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    app_table(dir.path());
    let run_id = new_run_id();
    let mut child = UpChild::spawn(dir.path(), &run_id);
    child.wait_line("ready: ", Duration::from_secs(180));
    child.child.kill().unwrap(); // SIGKILL
    child.child.wait().unwrap();
    assert_eq!(leftovers(&run_id).await.containers.len(), 3, "a killed gate leaves its containers");

    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = said.clone();
    let opts = StartOptions {
        plan_dir: dir.path().to_path_buf(),
        logs_dir: dir.path().join("results/logs"),
        app_url: None,
        cancel: CancellationToken::new(),
        fault_proxies: false,
        build_env: Vec::new(),
        notes: perf::run::Notes::to(move |l| sink.lock().unwrap().push(l.to_string())),
    };
    let next = DockerEnv::start(&plan(&app_table(dir.path()), None), &opts).await.expect("the next run starts");
    assert_nothing_left(&run_id).await;
    let said = said.lock().unwrap().join("\n");
    assert!(said.contains(&format!("removed what an earlier run left when its gate was killed (run {run_id})")), "{said}");
    next.shutdown().await.unwrap();
}

#[test]
#[ignore = "the child process of the interrupt tests, not a test"]
fn docker_up_child() {
    if std::env::var("PERF_DOCKER_UP_CHILD").as_deref() != Ok("1") {
        return;
    }
    let dir = std::path::PathBuf::from(std::env::var("PERF_DOCKER_UP_DIR").unwrap());
    let run_id = std::env::var("PERF_DOCKER_UP_RUN_ID").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let code = rt.block_on(async move {
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::spawn(async move {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            token.cancel();
        });
        let plan = plan(&app_table(&dir), None);
        let opts = StartOptions {
            plan_dir: dir.clone(),
            logs_dir: dir.join("results/logs"),
            app_url: None,
            cancel: cancel.clone(),
            fault_proxies: false,
            build_env: Vec::new(),
            notes: perf::run::Notes::default(),
        };
        println!("run: {run_id}");
        let env = match DockerEnv::start_with_run_id(&plan, &opts, &run_id).await {
            Ok(env) => Environment::Docker(env),
            Err(e) => {
                println!("error: {e}");
                return 2;
            }
        };
        for s in env.services() {
            println!("{}: {}", s.service.as_str(), s.url);
        }
        println!("ready: press Ctrl-C to stop");
        cancel.cancelled().await;
        match env.shutdown().await {
            Ok(()) => {
                println!("stopped");
                0
            }
            Err(e) => {
                println!("error: {e}");
                2
            }
        }
    });
    std::process::exit(code);
}
