//! Redis as a child process: `redis-server` on a free 127.0.0.1 port, no persistence, its
//! log in a temporary directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::env::EnvError;
use crate::env::procs::{self, ManagedChild, Spawn, error_chain};

/// How to start Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// How long the server may take to answer PING.
    pub startup_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self { startup_timeout: Duration::from_secs(30) }
    }
}

/// A running (or stopped) Redis server. It keeps no data across a stop: it is a cache.
///
/// `Drop` kills the server synchronously and removes the directory; [`shutdown`](Self::shutdown)
/// does the same gently and reports errors.
pub struct RedisProcess {
    dir: Option<TempDir>,
    log: PathBuf,
    program: PathBuf,
    port: u16,
    startup_timeout: Duration,
    cancel: CancellationToken,
    child: Option<ManagedChild>,
}

const STOP_GRACE: Duration = Duration::from_secs(10);

impl RedisProcess {
    /// Starts `redis-server` in a new temporary directory and waits until PING answers PONG.
    pub async fn start(opts: &RedisOptions) -> Result<RedisProcess, EnvError> {
        Self::start_in(opts, &procs::temp_root(), CancellationToken::new(), None).await
    }

    /// [`start`](Self::start) with the temporary directory under `parent`; on failure the
    /// logs are copied to `logs_on_failure` (the directory is removed right after); waits end with
    /// `Interrupted` when `cancel` fires.
    pub(crate) async fn start_in(
        opts: &RedisOptions,
        parent: &Path,
        cancel: CancellationToken,
        logs_on_failure: Option<&Path>,
    ) -> Result<RedisProcess, EnvError> {
        let program = procs::find_on_path("redis-server", "redis-server")?;
        let dir = tempfile::Builder::new()
            .prefix("perf-redis-")
            .tempdir_in(parent)
            .map_err(|e| EnvError::Io { context: format!("creating a temporary directory in {}", parent.display()), source: e })?;
        let mut redis = RedisProcess {
            log: dir.path().join("redis.log"),
            dir: Some(dir),
            program,
            port: 0,
            startup_timeout: opts.startup_timeout,
            cancel,
            child: None,
        };
        match redis.boot().await {
            Ok(()) => Ok(redis),
            Err(e) => Err(match logs_on_failure {
                Some(dest) => super::copy_logs_noting(e, std::slice::from_ref(&redis.log), dest),
                None => e,
            }),
        }
    }

    async fn boot(&mut self) -> Result<(), EnvError> {
        // The port is free when picked but could be taken before redis binds it: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.port = procs::free_port()?;
            self.spawn()?;
            match self.wait_ready().await {
                Err(EnvError::Exited { log_tail, .. }) if attempts < 3 && log_tail.contains("already in use") => {
                    tracing::debug!("redis port {} was taken, trying another", self.port);
                }
                other => return other,
            }
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the server while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// SIGTERM, SIGKILL after 10 s. Keeps the port. Does nothing when already stopped.
    pub async fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(mut child) = self.child.take() {
            child.stop(Signal::SIGTERM, STOP_GRACE).await;
        }
        Ok(())
    }

    /// Starts the server again on the same port (empty) and waits for PONG. Does nothing
    /// when it runs.
    pub async fn start_again(&mut self) -> Result<(), EnvError> {
        if self.child.as_mut().is_some_and(|c| c.is_running()) {
            return Ok(());
        }
        self.child = None;
        self.spawn()?;
        self.wait_ready().await
    }

    /// Stops the server and removes the temporary directory.
    pub async fn shutdown(mut self) -> Result<(), EnvError> {
        self.stop().await?;
        if let Some(dir) = self.dir.take() {
            let path = dir.path().display().to_string();
            dir.close().map_err(|e| EnvError::Io { context: format!("removing {path}"), source: e })?;
        }
        Ok(())
    }

    /// `Err(Exited)` when the server was started and has exited since.
    pub(crate) fn check_running(&mut self) -> Result<(), EnvError> {
        match &mut self.child {
            Some(c) => c.check_running(),
            None => Ok(()),
        }
    }

    fn spawn(&mut self) -> Result<(), EnvError> {
        let dir = self.log.parent().unwrap_or(&self.log).to_path_buf();
        let spec = Spawn {
            program: self.program.clone(),
            args: [
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                &dir.display().to_string(),
            ]
            .map(String::from)
            .to_vec(),
            cwd: dir,
            env: Vec::new(),
            log: self.log.clone(),
            run_as: None,
            parent_death_signal: Signal::SIGKILL,
        };
        self.child = Some(ManagedChild::spawn("redis", &spec)?);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<(), EnvError> {
        let deadline = tokio::time::Instant::now() + self.startup_timeout;
        loop {
            self.check_running()?;
            let detail = match self.ping().await {
                Ok(()) => return Ok(()),
                Err(detail) => detail,
            };
            if tokio::time::Instant::now() >= deadline {
                self.check_running()?;
                let log_tail = procs::tail_lines(&self.log, procs::TAIL_LINES);
                return Err(EnvError::NotReady { service: "redis", timeout: self.startup_timeout, detail, log_tail });
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(EnvError::Interrupted),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    async fn ping(&self) -> Result<(), String> {
        let url = self.url();
        let attempt = async {
            let client = redis::Client::open(url.as_str()).map_err(|e| format!("{url}: {}", error_chain(&e)))?;
            let mut con =
                client.get_multiplexed_async_connection().await.map_err(|e| format!("connecting to {url}: {}", error_chain(&e)))?;
            let pong: String =
                redis::cmd("PING").query_async(&mut con).await.map_err(|e| format!("PING: {}", error_chain(&e)))?;
            if pong == "PONG" { Ok(()) } else { Err(format!("PING answered {pong:?}")) }
        };
        tokio::time::timeout(Duration::from_secs(3), attempt)
            .await
            .map_err(|_| format!("PING to {url} took more than 3s"))?
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop_sync(Signal::SIGKILL, Duration::ZERO);
        }
    }
}
