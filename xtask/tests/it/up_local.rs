//! `xtask up --backend local` as a user runs it: a child process that prints the services'
//! URLs, serves until Ctrl-C or SIGTERM, and then leaves no process and no temporary
//! directory behind. Also: a SIGKILLed gate takes its services with it, and a bad plan
//! exits 2.
//!
//! The app is the local backend's stand-in (perf/tests/it/local_support/testapp.py). Each run
//! gets its own `PERF_TMPDIR`, so "nothing left" means "that directory is empty".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use perf::env::resources::{is_alive, process_tree};

fn testapp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/tests/it/local_support/testapp.py")
}

/// A plan for the stand-in app, written into `dir`.
fn write_plan(dir: &Path) -> PathBuf {
    let plan = format!(
        r#"version = 1
[environment]
startup_timeout = "60s"
[app]
health = "/health"
[app.local]
command = ["python3", "{}"]
[app.env]
PORT = "{{{{app.port}}}}"
LISTEN_ADDR = "{{{{app.listen}}}}"
DATABASE_URL = "{{{{postgres.url}}}}"
REDIS_URL = "{{{{redis.url}}}}"
[requests.health]
path = "/health"
[suites.smoke.scenarios.one]
executor = "constant-vus"
request = "health"
"#,
        testapp().display()
    );
    let path = dir.join("perf.toml");
    std::fs::write(&path, plan).unwrap();
    path
}

/// A running `xtask up` with its own temporary root (also `perf_shards`' environment).
pub(super) struct Up {
    pub(super) child: Child,
    tmp: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
}

pub(super) fn start_up(plan: &Path) -> Up {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    // When the tests run as root, postgres runs as another account that must reach its files.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["up", "--backend", "local", "--plan"])
        .arg(plan)
        .env("PERF_TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Like a shell's job: its own process group, which a terminal's Ctrl-C signals.
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Up { child, tmp, lines }
}

impl Up {
    /// Reads stdout until the `ready:` line; returns the lines before it.
    pub(super) fn read_until_ready(&mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("ready:") => {
                    assert_eq!(line, "ready: press Ctrl-C to stop");
                    return out;
                }
                Ok(line) => out.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    let mut err = String::new();
                    let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                    panic!("xtask up never said ready; stdout so far {out:?}; stderr:\n{err}");
                }
            }
        }
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("xtask up did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        err
    }

    fn temp_entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp.path()).unwrap().flatten().map(|e| e.path()).collect()
    }
}

/// Status code of `GET path` on `base` (`http://127.0.0.1:PORT`), over a plain socket.
fn http_status(base: &str, path: &str) -> u16 {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = String::new();
    BufReader::new(s).read_line(&mut head).unwrap();
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `xtask up`, checks what it prints and serves, and returns it with the process
/// ids of everything it started.
fn up_and_ready(plan: &Path) -> (Up, Vec<u32>) {
    let mut up = start_up(plan);
    let lines = up.read_until_ready();
    assert_eq!(lines.len(), 3, "one line per service: {lines:?}");
    let app = lines[0].strip_prefix("app: ").unwrap_or_else(|| panic!("app line first: {lines:?}"));
    assert!(app.starts_with("http://127.0.0.1:"), "{app}");
    let pg = lines[1].strip_prefix("postgres: ").unwrap();
    assert!(pg.starts_with("postgres://perf@127.0.0.1:") && pg.ends_with("/perf"), "{pg}");
    let redis = lines[2].strip_prefix("redis: ").unwrap();
    assert!(redis.starts_with("redis://127.0.0.1:"), "{redis}");
    assert_eq!(http_status(app, "/health"), 200, "the printed app URL answers");

    let pids: Vec<u32> = process_tree(up.child.id()).into_iter().skip(1).collect();
    assert!(pids.len() >= 3, "app, redis and postgres (and its helpers) run below xtask: {pids:?}");
    let entries = up.temp_entries();
    assert_eq!(entries.len(), 1, "one run directory: {entries:?}");
    assert!(entries[0].file_name().unwrap().to_string_lossy().starts_with("perf-local-"));
    (up, pids)
}

#[test]
fn ctrl_c_stops_everything_and_removes_the_temporary_directory() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let (mut up, pids) = up_and_ready(&plan);

    // What a terminal does on Ctrl-C: SIGINT to the foreground process group. The services
    // are in their own groups, so only the gate gets it; it must stop them.
    killpg(Pid::from_raw(up.child.id() as i32), Signal::SIGINT).unwrap();
    let status = up.wait(Duration::from_secs(60));
    let err = up.stderr();
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    assert!(err.contains("stopped"), "{err}");
    assert_eq!(survivors(&pids), Vec::<u32>::new(), "processes survive; stderr:\n{err}");
    assert_eq!(up.temp_entries(), Vec::<PathBuf>::new(), "temporary files survive");
}

#[test]
fn sigterm_stops_everything_too() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let (mut up, pids) = up_and_ready(&plan);

    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = up.wait(Duration::from_secs(60));
    let err = up.stderr();
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    assert_eq!(survivors(&pids), Vec::<u32>::new(), "processes survive; stderr:\n{err}");
    assert_eq!(up.temp_entries(), Vec::<PathBuf>::new());
}

/// SIGKILL cannot be handled, so the gate cannot remove its directory; but the kernel's
/// parent-death signal still stops every service.
#[test]
fn a_killed_gate_takes_its_services_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let (mut up, pids) = up_and_ready(&plan);

    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGKILL).unwrap();
    up.wait(Duration::from_secs(10));
    assert_eq!(survivors(&pids), Vec::<u32>::new(), "processes outlive a killed gate");
}

#[test]
fn a_bad_plan_exits_2_with_the_place_of_the_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("perf.toml");
    std::fs::write(&plan, "version = 1\n[app]\nhelth = \"/\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["up", "--backend", "local", "--plan"]).arg(&plan).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("perf.toml:3") && err.contains("helth"), "{err}");
    assert!(out.stdout.is_empty(), "nothing is printed on stdout: {:?}", String::from_utf8_lossy(&out.stdout));

    let missing = dir.path().join("nope.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["up", "--plan"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

#[test]
fn an_app_that_cannot_start_exits_2_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let text = std::fs::read_to_string(&plan).unwrap().replace("[app.env]", "[app.env]\nFAIL_AT_START = \"no config\"");
    std::fs::write(&plan, text).unwrap();
    let mut up = start_up(&plan);
    let status = up.wait(Duration::from_secs(120));
    let err = up.stderr();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("app exited unexpectedly") && err.contains("testapp: no config"), "{err}");
    let logs = dir.path().join("results/logs");
    assert!(err.contains(&logs.display().to_string()) && logs.join("app.log").is_file(), "{err}");
    assert_eq!(up.temp_entries(), Vec::<PathBuf>::new());
    assert!(up.lines.try_recv().is_err(), "no service line on stdout");
}
