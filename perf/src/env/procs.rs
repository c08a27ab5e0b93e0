//! Child processes and readiness waits shared by the backends.
//!
//! A [`ManagedChild`] is a service the gate started: it runs in its own process group (so a
//! Ctrl-C typed in the terminal reaches the gate only, and the gate stops services in order),
//! its stdout and stderr go to a log file, and it gets a parent-death signal so that it cannot
//! outlive the gate even when the gate is killed with SIGKILL.
//!
//! The parent-death signal fires when the *thread* that spawned the child exits, not the
//! process. Spawn only from threads that live as long as the child: a tokio worker thread or
//! the main thread, never from `spawn_blocking` (blocking-pool threads exit after 10 s idle).
//!
//! Waiting polls `try_wait` every few milliseconds instead of using tokio's SIGCHLD-driven
//! `Child`: the same `std::process::Child` can then also be waited for synchronously in
//! `Drop`, which tokio's type cannot do.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Gid, Pid, Uid, User};
use tokio_util::sync::CancellationToken;

use super::error::EnvError;
use crate::util::Notes;

/// How often a wait that has not succeeded yet says so.
pub const WAIT_NOTE_EVERY: Duration = Duration::from_secs(5);

/// How long a named health path may answer 404 before the wait gives up on it. A 404 is the
/// app's answer about the path, not a service still starting; the short grace only covers
/// something in front of the app (a router, an ingress) that answers 404 for a moment while
/// the route to it is set up.
pub const NOT_FOUND_GRACE: Duration = Duration::from_secs(2);

/// Polls the app at `base_url` until it is up, the timeout passes, or `cancel` fires.
///
/// With a `health` path the app is up when that path answers 200; a 404 there that lasts
/// [`NOT_FOUND_GRACE`] ends the wait at once with an error that names the path and how to set
/// it (the plan's `[app] health`). Without one (a plan that names none, such as a plan for
/// `--backend external` without an `[app]` table) any answer at the root (`base_url/`) means
/// up, except 502, 503 and 504: a server still starting, or a proxy in front that cannot reach
/// it yet.
///
/// `log_tail` is called on failure to put the end of the service's log into the error, and
/// may report that the service has exited (an `Err`), which ends the wait at once. Every
/// [`WAIT_NOTE_EVERY`] without success, `notes` hears what is awaited, for how long, and what
/// the last attempt got: a silent minute looks like a hang.
pub async fn wait_http_ready(
    service: &'static str,
    base_url: &str,
    health: Option<&str>,
    timeout: Duration,
    cancel: &CancellationToken,
    notes: &Notes,
    mut log_tail: impl FnMut() -> Result<String, EnvError>,
) -> Result<(), EnvError> {
    const ATTEMPT: Duration = Duration::from_secs(2);
    let url = format!("{}{}", base_url.trim_end_matches('/'), health.unwrap_or("/"));
    let awaited = if health.is_some() { "answer 200" } else { "answer" };
    let client = reqwest::Client::builder().timeout(ATTEMPT).build().map_err(|e| EnvError::Other(format!("http client: {e}")))?;
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut next_note = started + WAIT_NOTE_EVERY;
    // Since when the health path has answered 404 without a break.
    let mut not_found_since = None;
    loop {
        let sent = tokio::time::Instant::now();
        let (last, short) = match client.get(&url).send().await {
            Ok(resp) if is_up(health, resp.status()) => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                if status == reqwest::StatusCode::NOT_FOUND && health.is_some() {
                    not_found_since.get_or_insert(sent);
                } else {
                    not_found_since = None;
                }
                let body = resp.text().await.unwrap_or_default();
                (format!("GET {url} answered {status}: {}", body.chars().take(300).collect::<String>()), format!("answered {status}"))
            }
            Err(e) if e.is_timeout() => {
                not_found_since = None;
                (format!("GET {url}: no answer within {ATTEMPT:?}"), format!("no answer within {ATTEMPT:?}"))
            }
            Err(e) => {
                not_found_since = None;
                (format!("GET {url}: {}", error_chain(&e)), innermost(&e))
            }
        };
        let tail = log_tail()?;
        let now = tokio::time::Instant::now();
        if let (Some(path), Some(since)) = (health, not_found_since)
            && now - since >= NOT_FOUND_GRACE
        {
            return Err(EnvError::Other(format!(
                "app.health: GET {url} answered 404 Not Found for {}s: the app has no page at {path:?}, so it would never \
                 be ready; set [app] health = \"/your/health\" in the plan to a path that answers 200 once the app is ready, \
                 or leave `health` out (then any answer at / counts)",
                NOT_FOUND_GRACE.as_secs()
            )));
        }
        if now >= deadline {
            return Err(EnvError::NotReady { service, timeout, detail: last, log_tail: tail });
        }
        if now >= next_note {
            notes.say(format!(
                "  waiting for {service} to {awaited} at {url}: {}s of {}s, last attempt: {short}",
                (now - started).as_secs(),
                timeout.as_secs()
            ));
            next_note = now + WAIT_NOTE_EVERY;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(EnvError::Interrupted),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Whether an answer means up: 200 at a named health path; without one, any answer but 502,
/// 503 and 504.
fn is_up(health: Option<&str>, status: reqwest::StatusCode) -> bool {
    use reqwest::StatusCode;
    match health {
        Some(_) => status == StatusCode::OK,
        None => !matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT),
    }
}

/// The deepest cause of an error (`Connection refused (os error 111)`), the part a person
/// needs when the layers above it only say "error sending request".
pub fn innermost(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// How often a wait for a process exit looks again.
const POLL: Duration = Duration::from_millis(20);

/// Variables of the gate's environment that its children never inherit: a GitHub token
/// has no business in the app under test (whose logs end up in reports).
pub const WITHHELD_ENV: [&str; 2] = ["GITHUB_TOKEN", "GH_TOKEN"];

/// Number of log lines put into errors.
pub const TAIL_LINES: usize = 30;

/// An unprivileged account to run a program as. PostgreSQL refuses to run as root, and CI
/// machines often run everything as root.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl RunAs {
    /// `None` when the gate does not run as root (programs then run as the current user);
    /// otherwise the `postgres` account when it exists (Debian's packages create it), else
    /// `nobody`.
    pub fn for_postgres() -> Result<Option<RunAs>, EnvError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        for name in ["postgres", "nobody"] {
            if let Ok(Some(u)) = User::from_name(name) {
                return Ok(Some(RunAs { name: name.to_string(), uid: u.uid, gid: u.gid }));
            }
        }
        Err(EnvError::Other("running as root, and neither a `postgres` nor a `nobody` account exists to run postgresql as".into()))
    }

    /// Gives `path` to this account (the directories the program writes into).
    pub fn chown(&self, path: &Path) -> Result<(), EnvError> {
        nix::unistd::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| EnvError::Io { context: format!("giving {} to the `{}` account", path.display(), self.name), source: e.into() })
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Added to the inherited environment (less [`WITHHELD_ENV`]).
    pub env: Vec<(String, String)>,
    /// Stdout and stderr are appended here.
    pub log: PathBuf,
    pub run_as: Option<RunAs>,
    /// Sent to the child by the kernel when the spawning thread exits (the gate died).
    pub parent_death_signal: Signal,
}

/// A child process in its own process group, with its output in a log file.
pub struct ManagedChild {
    service: &'static str,
    child: std::process::Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl ManagedChild {
    /// Starts the program. Fails with `Io` when it cannot be executed.
    pub fn spawn(service: &'static str, spec: &Spawn) -> Result<ManagedChild, EnvError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|e| EnvError::Io { context: format!("opening {}'s log {}", service, spec.log.display()), source: e })?;
        let log_err = log.try_clone().map_err(|e| EnvError::Io { context: "duplicating a log file".into(), source: e })?;
        let mut cmd = Command::new(&spec.program);
        for secret in WITHHELD_ENV {
            cmd.env_remove(secret);
        }
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0);
        if let Some(r) = &spec.run_as {
            cmd.uid(r.uid.as_raw()).gid(r.gid.as_raw());
        }
        // SAFETY: the hook runs in the forked child before exec and calls only
        // async-signal-safe system calls. It runs after the uid change, which would otherwise
        // clear the parent-death signal.
        unsafe {
            cmd.pre_exec(parent_death_hook(spec.parent_death_signal));
        }
        let child =
            cmd.spawn().map_err(|e| EnvError::Io { context: format!("starting {service} ({})", spec.program.display()), source: e })?;
        tracing::debug!(service, pid = child.id(), program = %spec.program.display(), "started");
        Ok(ManagedChild { service, child, log: spec.log.clone(), status: None })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        tail_lines(&self.log, TAIL_LINES)
    }

    /// The exit status once the process has exited (reaps it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(Some(st)) => self.status = Some(st),
                Ok(None) => {}
                // ECHILD: someone else reaped it; it is gone either way.
                Err(_) => self.status = Some(std::os::unix::process::ExitStatusExt::from_raw(0)),
            }
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// `Err(Exited)` with the log's tail when the process has exited.
    pub fn check_running(&mut self) -> Result<(), EnvError> {
        match self.try_status() {
            None => Ok(()),
            Some(st) => Err(EnvError::Exited { service: self.service, status: st.to_string(), log_tail: self.log_tail() }),
        }
    }

    /// Sends `sig` to the process itself (ignored when it has exited).
    pub fn signal(&mut self, sig: Signal) {
        if self.is_running() {
            let _ = kill(Pid::from_raw(self.pid() as i32), sig);
        }
    }

    /// Sends `sig` to the whole process group: the process and every descendant that did
    /// not leave the group. Used right after the leader exits too, for stragglers.
    pub fn signal_group(&self, sig: Signal) {
        match killpg(Pid::from_raw(self.pid() as i32), sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(service = self.service, "signalling the process group: {e}"),
        }
    }

    /// Waits until the process exits or `timeout` passes.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_status() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends `sig` to the process and waits up to `grace`; then SIGKILL to its process group,
    /// and when it had not stopped, to it and all its descendants first. Returns true when
    /// the process stopped within the grace period.
    pub async fn stop(&mut self, sig: Signal, grace: Duration) -> bool {
        self.stop_with(sig, grace, false).await
    }

    /// [`stop`](Self::stop), sending `sig` to the whole process group (an app started
    /// through a wrapper script gets it too).
    pub async fn stop_group(&mut self, sig: Signal, grace: Duration) -> bool {
        self.stop_with(sig, grace, true).await
    }

    /// Blocking [`stop`](Self::stop), for `Drop`.
    pub fn stop_sync(&mut self, sig: Signal, grace: Duration) -> bool {
        self.stop_with_sync(sig, grace, false)
    }

    /// Blocking [`stop_group`](Self::stop_group), for `Drop`.
    pub fn stop_group_sync(&mut self, sig: Signal, grace: Duration) -> bool {
        self.stop_with_sync(sig, grace, true)
    }

    /// SIGKILL to the process and every live descendant, wherever their process group
    /// (PostgreSQL's backends call setsid, so the group alone does not reach them). Must run
    /// while the process still lives: once it is gone its children belong to init.
    fn kill_tree(&mut self) {
        if !self.is_running() {
            return;
        }
        for pid in super::resources::process_tree(self.pid()) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }

    fn send(&mut self, sig: Signal, group: bool) {
        if !group {
            self.signal(sig);
        } else if self.is_running() {
            self.signal_group(sig);
        }
    }

    async fn stop_with(&mut self, sig: Signal, grace: Duration, group: bool) -> bool {
        self.send(sig, group);
        let clean = self.wait_exit(grace).await.is_some();
        if !clean {
            tracing::warn!(service = self.service, "did not stop within {grace:?} of {sig}: killing it");
            self.kill_tree();
        }
        self.signal_group(Signal::SIGKILL);
        if !clean {
            self.wait_exit(Duration::from_secs(10)).await;
        }
        clean
    }

    fn stop_with_sync(&mut self, sig: Signal, grace: Duration, group: bool) -> bool {
        self.send(sig, group);
        let deadline = Instant::now() + grace;
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let clean = !self.is_running();
        if !clean {
            self.kill_tree();
        }
        self.signal_group(Signal::SIGKILL);
        if !clean {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        clean
    }
}

impl Drop for ManagedChild {
    /// Last resort: whoever owns the child should have stopped it gently already.
    fn drop(&mut self) {
        if self.status.is_none() {
            self.stop_sync(Signal::SIGKILL, Duration::ZERO);
        }
    }
}

/// Runs a program to completion with its output in `log`, giving up when `cancel` fires
/// (the program and its group are killed then).
pub async fn run_to_end(service: &'static str, spec: &Spawn, cancel: &CancellationToken) -> Result<ExitStatus, EnvError> {
    let mut child = ManagedChild::spawn(service, spec)?;
    loop {
        if let Some(st) = child.try_status() {
            child.signal_group(Signal::SIGKILL);
            return Ok(st);
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                child.stop(Signal::SIGTERM, Duration::from_secs(5)).await;
                return Err(EnvError::Interrupted);
            }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The last `n` lines of a text file (empty when it cannot be read), without terminal escape
/// sequences ([`crate::util::strip_ansi`]): they go into messages, and an app that colours its
/// log into a file would show `[2m…[0m` there.
pub fn tail_lines(path: &Path, n: usize) -> String {
    const MAX: u64 = 16 * 1024;
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(MAX);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(MAX).read_to_end(&mut buf);
    let text = crate::util::strip_ansi(&String::from_utf8_lossy(&buf));
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let from = lines.len().saturating_sub(n);
    lines[from..].join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
pub fn free_port() -> Result<u16, EnvError> {
    crate::util::free_port().map_err(|e| EnvError::Io { context: "finding a free port on 127.0.0.1".into(), source: e })
}

/// Directories of `PATH`, in order.
pub fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
}

/// True when `path` is an executable regular file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Finds `program` on `PATH`; when it is missing the error names the Debian package to
/// install.
pub fn find_on_path(program: &str, debian_package: &str) -> Result<PathBuf, EnvError> {
    path_dirs().into_iter().map(|d| d.join(program)).find(|p| is_executable(p)).ok_or_else(|| EnvError::MissingProgram {
        program: program.to_string(),
        hint: format!("install it with `apt-get install {debian_package}` (or put it on PATH)"),
    })
}

/// The root under which the gate creates its temporary directories: `PERF_TMPDIR` when set,
/// otherwise the system's (`TMPDIR` or /tmp). Tests point `PERF_TMPDIR` at an empty
/// directory and check that it is empty again afterwards.
pub fn temp_root() -> PathBuf {
    std::env::var_os("PERF_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// A `pre_exec` hook that gives the child `sig` when the gate's spawning thread dies (see
/// the module's note on threads), and refuses to start it if the gate already died between
/// fork and `prctl` (then no signal would ever come). It calls only async-signal-safe system
/// calls (prctl, getppid), as a `pre_exec` hook must; for `std` and tokio commands alike.
pub fn parent_death_hook(sig: Signal) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    let parent = nix::unistd::getpid();
    move || {
        nix::sys::prctl::set_pdeathsig(sig)?;
        if nix::unistd::getppid() != parent {
            return Err(std::io::Error::other("the gate exited while starting this process"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{StatusCode, Uri};

    use super::*;

    /// An HTTP server on 127.0.0.1 whose answer to the n-th request (counting from 0) is the
    /// status `answer(path, n)`. It lives as long as the test's runtime.
    async fn serve(answer: fn(&str, usize) -> u16) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move { StatusCode::from_u16(answer(uri.path(), n)).unwrap() }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }

    async fn wait(url: &str, health: Option<&str>, timeout: Duration) -> Result<(), EnvError> {
        let notes = Notes::to(|_| {});
        wait_http_ready("app", url, health, timeout, &CancellationToken::new(), &notes, || Ok(String::new())).await
    }

    #[tokio::test]
    async fn without_a_health_path_any_answer_at_the_root_means_up() {
        // A service with no page at `/` at all still answers: it is up.
        let url = serve(|_, _| 404).await;
        let started = Instant::now();
        wait(&url, None, Duration::from_secs(60)).await.expect("a 404 at / is an answer");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        // A URL given with its slash is asked at `/`, not `//` (which answers "not yet" here).
        let url = serve(|path, _| if path == "/" { 200 } else { 503 }).await;
        wait(&format!("{url}/"), None, Duration::from_secs(5)).await.expect("the root of a URL given with its slash");
    }

    #[tokio::test]
    async fn without_a_health_path_a_server_still_starting_is_waited_for() {
        let url = serve(|_, n| if n < 3 { 503 } else { 200 }).await;
        wait(&url, None, Duration::from_secs(60)).await.expect("up once it stops answering 503");
        let url = serve(|_, _| 502).await;
        let err = wait(&url, None, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, EnvError::NotReady { service: "app", .. }), "{err}");
        assert!(err.to_string().contains(&format!("GET {url}/ answered 502")), "{err}");
    }

    #[tokio::test]
    async fn a_health_path_that_answers_404_fails_at_once_and_says_how_to_set_it() {
        let url = serve(|path, _| if path == "/" { 200 } else { 404 }).await;
        let started = Instant::now();
        let err = wait(&url, Some("/healthz"), Duration::from_secs(60)).await.unwrap_err();
        let took = started.elapsed();
        assert!(took >= NOT_FOUND_GRACE && took < NOT_FOUND_GRACE + Duration::from_secs(3), "gave up after {took:?}");
        let msg = err.to_string();
        assert!(matches!(err, EnvError::Other(_)), "{msg}");
        assert!(msg.starts_with("app.health: "), "{msg}");
        assert!(msg.contains(&format!("GET {url}/healthz answered 404 Not Found")), "{msg}");
        assert!(msg.contains("no page at \"/healthz\""), "{msg}");
        assert!(msg.contains("[app] health = \"/your/health\""), "{msg}");
    }

    #[test]
    fn log_tails_come_without_colour_codes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let lines = [
            "\x1b[2m2026-11-02T10:05:51Z\x1b[0m \x1b[32m INFO\x1b[0m listening",
            "\x1b[2m2026-11-02T10:05:52Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[1mdatabase\x1b[0m: connection refused",
            "\tat db.connect(Db.java:12)",
        ];
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        assert_eq!(
            tail_lines(&log, 2),
            "2026-11-02T10:05:52Z ERROR database: connection refused\n\tat db.connect(Db.java:12)",
            "the last two lines, plain"
        );
    }

    #[tokio::test]
    async fn a_404_that_stops_within_the_grace_is_waited_through() {
        // A router in front that answers 404 for a moment while the route is set up.
        let url = serve(|_, n| if n < 3 { 404 } else { 200 }).await;
        wait(&url, Some("/health"), Duration::from_secs(60)).await.expect("200 after three 404s");
        // A health path that answers anything but 200 or 404 is waited for until the timeout.
        let url = serve(|_, _| 500).await;
        let err = wait(&url, Some("/health"), Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, EnvError::NotReady { .. }), "{err}");
    }
}
