//! Redis as a child process: `redis-server` on a free 127.0.0.1 port, no persistence, its
//! log in a temporary directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

use super::server::{ServerProcess, Stopping};
use crate::env::error::{EnvError, copy_logs_noting};
use crate::env::procs::{self, Spawn, error_chain};

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
/// does the same gently and reports errors. Like [`PostgresProcess`](super::PostgresProcess),
/// it is killed when the thread that started it exits.
pub struct RedisProcess {
    server: ServerProcess,
    program: PathBuf,
}

const STOPPING: Stopping =
    Stopping { signal: Signal::SIGTERM, grace: Duration::from_secs(10), on_drop: Signal::SIGKILL, on_drop_grace: Duration::ZERO };

impl RedisProcess {
    /// `Err(Exited)` with the log's tail when the server was started and has exited since.
    pub fn check_running(&mut self) -> Result<(), EnvError> {
        self.server.check_running()
    }

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
        let server = ServerProcess::new("redis", parent, "redis.log", opts.startup_timeout, cancel, STOPPING)?;
        let mut redis = RedisProcess { server, program };
        let (root, log) = (redis.server.root().to_path_buf(), redis.server.log_path().to_path_buf());
        let program = redis.program.clone();
        let spec = move |port| spawn_spec(&program, &root, &log, port);
        let booted = redis.server.boot(spec, ping).await;
        match booted {
            Ok(()) => Ok(redis),
            Err(e) => Err(match logs_on_failure {
                Some(dest) => copy_logs_noting(e, &[redis.server.log_path().to_path_buf()], dest),
                None => e,
            }),
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        url(self.server.port())
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Process id of the server while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.server.log_path()
    }

    /// SIGTERM, SIGKILL after 10 s. Keeps the port. Does nothing when already stopped.
    pub async fn stop(&mut self) -> Result<(), EnvError> {
        self.server.stop().await
    }

    /// Starts the server again on the same port (empty) and waits for PONG. Does nothing
    /// when it runs.
    pub async fn start_again(&mut self) -> Result<(), EnvError> {
        let spec = spawn_spec(&self.program, self.server.root(), self.server.log_path(), self.server.port());
        self.server.start_again(spec, ping).await
    }

    /// Stops the server and removes the temporary directory.
    pub async fn shutdown(self) -> Result<(), EnvError> {
        self.server.shutdown().await
    }
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// `redis-server` on loopback, no persistence, in the foreground.
fn spawn_spec(program: &Path, dir: &Path, log: &Path, port: u16) -> Spawn {
    Spawn {
        program: program.to_path_buf(),
        args: [
            "--port",
            &port.to_string(),
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
        cwd: dir.to_path_buf(),
        env: Vec::new(),
        log: log.to_path_buf(),
        run_as: None,
        parent_death_signal: Signal::SIGKILL,
    }
}

/// PING answers PONG within 3 s.
async fn ping(port: u16) -> Result<(), String> {
    let url = url(port);
    let attempt = async {
        let client = redis::Client::open(url.as_str()).map_err(|e| format!("{url}: {}", error_chain(&e)))?;
        let mut con = client.get_multiplexed_async_connection().await.map_err(|e| format!("connecting to {url}: {}", error_chain(&e)))?;
        let pong: String = redis::cmd("PING").query_async(&mut con).await.map_err(|e| format!("PING: {}", error_chain(&e)))?;
        if pong == "PONG" { Ok(()) } else { Err(format!("PING answered {pong:?}")) }
    };
    tokio::time::timeout(Duration::from_secs(3), attempt).await.map_err(|_| format!("PING to {url} took more than 3s"))?
}
