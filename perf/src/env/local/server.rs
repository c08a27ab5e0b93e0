//! What every local service process has in common: a temporary directory, a log, a port on
//! loopback picked free, a child process that dies with the gate, readiness polling until a
//! deadline, a gentle stop and a restart on the same port. [`PostgresProcess`](super::PostgresProcess)
//! and [`RedisProcess`](super::RedisProcess) add only how to spawn their program and how to ask
//! it whether it is ready.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::env::error::EnvError;
use crate::env::procs::{self, ManagedChild, Spawn};

/// How a service stops: gently (`stop`), and when dropped (`Drop` cannot wait long).
#[derive(Debug, Clone, Copy)]
pub(super) struct Stopping {
    pub signal: Signal,
    pub grace: Duration,
    pub on_drop: Signal,
    pub on_drop_grace: Duration,
}

/// A service's process and its temporary directory.
///
/// `Drop` stops the process with [`Stopping::on_drop`] and removes the directory;
/// [`shutdown`](Self::shutdown) does the same gently and reports errors.
pub(super) struct ServerProcess {
    service: &'static str,
    dir: Option<TempDir>,
    root: PathBuf,
    log: PathBuf,
    port: u16,
    startup_timeout: Duration,
    cancel: CancellationToken,
    stopping: Stopping,
    child: Option<ManagedChild>,
}

impl ServerProcess {
    /// A new temporary directory `<parent>/perf-<service>-…` with the log file `log_name` in it;
    /// nothing runs yet.
    pub fn new(
        service: &'static str,
        parent: &Path,
        log_name: &str,
        startup_timeout: Duration,
        cancel: CancellationToken,
        stopping: Stopping,
    ) -> Result<ServerProcess, EnvError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("perf-{service}-"))
            .tempdir_in(parent)
            .map_err(|e| EnvError::Io { context: format!("creating a temporary directory in {}", parent.display()), source: e })?;
        let root = dir.path().to_path_buf();
        Ok(ServerProcess {
            service,
            log: root.join(log_name),
            root,
            dir: Some(dir),
            port: 0,
            startup_timeout,
            cancel,
            stopping,
            child: None,
        })
    }

    /// The temporary directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// Picks a free port, spawns `spec(port)` and waits until `ready(port)` answers `Ok`. The
    /// port is free when picked but could be taken before the server binds it: up to three
    /// ports are tried when the log says "already in use".
    pub async fn boot<F: Future<Output = Result<(), String>>>(
        &mut self,
        spec: impl Fn(u16) -> Spawn,
        mut ready: impl FnMut(u16) -> F,
    ) -> Result<(), EnvError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.port = procs::free_port()?;
            self.spawn(spec(self.port))?;
            match self.wait_ready(&mut ready).await {
                Err(EnvError::Exited { log_tail, .. }) if attempts < 3 && log_tail.contains("already in use") => {
                    tracing::debug!("{} port {} was taken, trying another", self.service, self.port);
                }
                other => return other,
            }
        }
    }

    /// Starts the process again on the same port and waits for `ready`. Does nothing when it
    /// runs.
    pub async fn start_again<F: Future<Output = Result<(), String>>>(
        &mut self,
        spec: Spawn,
        mut ready: impl FnMut(u16) -> F,
    ) -> Result<(), EnvError> {
        if self.child.as_mut().is_some_and(|c| c.is_running()) {
            return Ok(());
        }
        self.child = None;
        self.spawn(spec)?;
        self.wait_ready(&mut ready).await
    }

    fn spawn(&mut self, spec: Spawn) -> Result<(), EnvError> {
        self.child = Some(ManagedChild::spawn(self.service, &spec)?);
        Ok(())
    }

    /// Polls `ready` every 50 ms until it answers `Ok`, the process exits (`Exited`, with its
    /// log's tail), the startup timeout passes (`NotReady`, with the last answer) or the run is
    /// cancelled (`Interrupted`).
    async fn wait_ready<F: Future<Output = Result<(), String>>>(&mut self, ready: &mut impl FnMut(u16) -> F) -> Result<(), EnvError> {
        let deadline = tokio::time::Instant::now() + self.startup_timeout;
        loop {
            self.check_running()?;
            let detail = match ready(self.port).await {
                Ok(()) => return Ok(()),
                Err(detail) => detail,
            };
            if tokio::time::Instant::now() >= deadline {
                self.check_running()?;
                let log_tail = procs::tail_lines(&self.log, procs::TAIL_LINES);
                return Err(EnvError::NotReady { service: self.service, timeout: self.startup_timeout, detail, log_tail });
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(EnvError::Interrupted),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Stops the process gently ([`Stopping::signal`], SIGKILL after the grace). Keeps the
    /// directory and the port. Does nothing when already stopped.
    pub async fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(mut child) = self.child.take() {
            child.stop(self.stopping.signal, self.stopping.grace).await;
        }
        Ok(())
    }

    /// Stops the process and removes the temporary directory.
    pub async fn shutdown(mut self) -> Result<(), EnvError> {
        self.stop().await?;
        if let Some(dir) = self.dir.take() {
            let path = dir.path().display().to_string();
            dir.close().map_err(|e| EnvError::Io { context: format!("removing {path}"), source: e })?;
        }
        Ok(())
    }

    /// `Err(Exited)` when the process was started and has exited since.
    pub fn check_running(&mut self) -> Result<(), EnvError> {
        match &mut self.child {
            Some(c) => c.check_running(),
            None => Ok(()),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop_sync(self.stopping.on_drop, self.stopping.on_drop_grace);
        }
        // `dir` (a TempDir) removes itself when dropped.
    }
}
