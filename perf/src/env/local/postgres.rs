//! PostgreSQL as a child process: `initdb` into a temporary directory, `postgres` on a free
//! 127.0.0.1 port, tuned for throwaway data (no fsync), trust authentication on loopback.
//!
//! When the gate runs as root (CI containers often do) PostgreSQL refuses to start, so both
//! programs run as the `postgres` account (or `nobody`), which is given the temporary
//! directory. The directories above it must then be traversable by that account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::env::EnvError;
use crate::env::procs::{self, ManagedChild, RunAs, Spawn, error_chain};

/// How to start PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Database created for the app (owned by `user`).
    pub database: String,
    /// Superuser created by initdb; connects without a password from 127.0.0.1.
    pub user: String,
    /// How long the server may take to accept connections.
    pub startup_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { database: "perf".into(), user: "perf".into(), startup_timeout: Duration::from_secs(30) }
    }
}

/// A running (or stopped) PostgreSQL server with its own data directory.
///
/// `Drop` kills the server synchronously (immediate shutdown, then SIGKILL) and removes the
/// directory; [`shutdown`](Self::shutdown) does the same gently and reports errors.
///
/// The server also gets SIGQUIT from the kernel when the *thread* that started it (or last
/// restarted it) exits, so it cannot outlive a killed gate. Keep it owned by the code that
/// uses it: a server shared by several tests through a `static` would die with the first
/// test's thread (and a `static` is never dropped, so its directory would stay).
pub struct PostgresProcess {
    dir: Option<TempDir>,
    data: PathBuf,
    log: PathBuf,
    postgres: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    database: String,
    user: String,
    startup_timeout: Duration,
    cancel: CancellationToken,
    child: Option<ManagedChild>,
}

/// Settings written into `postgresql.conf`: throwaway data, enough connections for a pooled
/// app, and nothing reachable from outside the machine.
const SETTINGS: &str = "
# added by the perf gate: throwaway data, loopback only
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
";

/// How long a fast shutdown may take before the server is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

impl PostgresProcess {
    /// Creates a cluster in a new temporary directory, starts the server and waits until
    /// `SELECT 1` succeeds in the app's database.
    pub async fn start(opts: &PostgresOptions) -> Result<PostgresProcess, EnvError> {
        Self::start_in(opts, &procs::temp_root(), CancellationToken::new(), None).await
    }

    /// [`start`](Self::start) with the temporary directory under `parent`; on failure the
    /// logs are copied to `logs_on_failure` (the directory is removed right after); waits, now and
    /// later, end with `Interrupted` when `cancel` fires.
    pub(crate) async fn start_in(
        opts: &PostgresOptions,
        parent: &Path,
        cancel: CancellationToken,
        logs_on_failure: Option<&Path>,
    ) -> Result<PostgresProcess, EnvError> {
        let bin = find_binaries()?;
        let run_as = RunAs::for_postgres()?;
        let dir = tempfile::Builder::new()
            .prefix("perf-postgres-")
            .tempdir_in(parent)
            .map_err(|e| EnvError::Io { context: format!("creating a temporary directory in {}", parent.display()), source: e })?;
        if let Some(r) = &run_as {
            r.chown(dir.path())?;
        }
        let root = dir.path().to_path_buf();
        let mut pg = PostgresProcess {
            data: root.join("data"),
            log: root.join("postgres.log"),
            dir: Some(dir),
            postgres: bin.postgres,
            run_as,
            port: 0,
            database: opts.database.clone(),
            user: opts.user.clone(),
            startup_timeout: opts.startup_timeout,
            cancel,
            child: None,
        };
        match pg.boot(&bin.initdb, &root).await {
            Ok(()) => Ok(pg),
            Err(e) => Err(match logs_on_failure {
                Some(dest) => super::copy_logs_noting(e, &[root.join("initdb.log"), pg.log.clone()], dest),
                None => e,
            }),
        }
    }

    async fn boot(&mut self, initdb: &Path, root: &Path) -> Result<(), EnvError> {
        self.initdb(initdb, root).await?;
        // The port is free when picked but could be taken before postgres binds it: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.port = procs::free_port()?;
            self.spawn()?;
            match self.wait_ready(true).await {
                Err(EnvError::Exited { log_tail, .. }) if attempts < 3 && log_tail.contains("already in use") => {
                    tracing::debug!("postgres port {} was taken, trying another", self.port);
                }
                other => return other,
            }
        }
    }

    /// `postgres://USER@127.0.0.1:PORT/DB`: trust authentication, so no password.
    pub fn url(&self) -> String {
        self.url_at_port(self.port)
    }

    /// The same URL with another port on loopback (a proxy in front of this server).
    pub fn url_at_port(&self, port: u16) -> String {
        let mut u = url::Url::parse("postgres://127.0.0.1").expect("a literal url");
        let _ = u.set_username(&self.user);
        let _ = u.set_port(Some(port));
        u.set_path(&self.database);
        u.to_string()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the postmaster while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Fast shutdown (SIGINT: open transactions are rolled back), SIGKILL after 30 s. Keeps
    /// the data directory and the port. Does nothing when already stopped.
    pub async fn stop(&mut self) -> Result<(), EnvError> {
        if let Some(mut child) = self.child.take() {
            child.stop(Signal::SIGINT, STOP_GRACE).await;
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same data and waits for readiness.
    /// Does nothing when it runs.
    pub async fn start_again(&mut self) -> Result<(), EnvError> {
        if self.child.as_mut().is_some_and(|c| c.is_running()) {
            return Ok(());
        }
        self.child = None;
        self.spawn()?;
        self.wait_ready(false).await
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

    async fn initdb(&self, initdb: &Path, root: &Path) -> Result<(), EnvError> {
        let log = root.join("initdb.log");
        let spec = Spawn {
            program: initdb.to_path_buf(),
            args: vec![
                "-D".into(),
                self.data.display().to_string(),
                "-U".into(),
                self.user.clone(),
                "--auth=trust".into(),
                "--encoding=UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
            ],
            cwd: root.to_path_buf(),
            env: Vec::new(),
            log: log.clone(),
            run_as: self.run_as.clone(),
            parent_death_signal: Signal::SIGKILL,
        };
        let status = procs::run_to_end("postgres", &spec, &self.cancel).await?;
        if !status.success() {
            return Err(EnvError::Exited {
                service: "postgres",
                status: format!("initdb failed: {status}"),
                log_tail: procs::tail_lines(&log, procs::TAIL_LINES),
            });
        }
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| EnvError::Io { context: format!("reading {}", conf.display()), source: e })?;
        text.push_str(SETTINGS);
        text.push_str(&format!("unix_socket_directories = '{}'\n", root.display().to_string().replace('\'', "''")));
        std::fs::write(&conf, text).map_err(|e| EnvError::Io { context: format!("writing {}", conf.display()), source: e })
    }

    fn spawn(&mut self) -> Result<(), EnvError> {
        let root = self.data.parent().unwrap_or(&self.data).to_path_buf();
        let spec = Spawn {
            program: self.postgres.clone(),
            args: vec!["-D".into(), self.data.display().to_string(), "-p".into(), self.port.to_string()],
            cwd: root,
            env: Vec::new(),
            log: self.log.clone(),
            run_as: self.run_as.clone(),
            // Immediate shutdown: the postmaster stops its backends, then exits.
            parent_death_signal: Signal::SIGQUIT,
        };
        self.child = Some(ManagedChild::spawn("postgres", &spec)?);
        Ok(())
    }

    /// Waits until `SELECT 1` works in the app's database; first creates that database when
    /// `create_db` is set.
    async fn wait_ready(&mut self, create_db: bool) -> Result<(), EnvError> {
        let deadline = tokio::time::Instant::now() + self.startup_timeout;
        let mut created = !create_db || self.database == "postgres";
        loop {
            self.check_running()?;
            let attempt = if created {
                self.select_one(&self.database).await
            } else {
                match self.create_database().await {
                    Ok(()) => {
                        created = true;
                        self.select_one(&self.database).await
                    }
                    Err(e) => Err(e),
                }
            };
            let detail = match attempt {
                Ok(()) => return Ok(()),
                Err(detail) => detail,
            };
            if tokio::time::Instant::now() >= deadline {
                self.check_running()?;
                let log_tail = procs::tail_lines(&self.log, procs::TAIL_LINES);
                return Err(EnvError::NotReady { service: "postgres", timeout: self.startup_timeout, detail, log_tail });
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(EnvError::Interrupted),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    async fn connect(&self, dbname: &str) -> Result<tokio_postgres::Client, String> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .connect_timeout(Duration::from_secs(2));
        let connecting = cfg.connect(tokio_postgres::NoTls);
        let (client, conn) = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| format!("connecting to 127.0.0.1:{} took more than 5s", self.port))?
            .map_err(|e| format!("connecting to database {dbname:?} on 127.0.0.1:{}: {}", self.port, error_chain(&e)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    async fn select_one(&self, dbname: &str) -> Result<(), String> {
        let client = self.connect(dbname).await?;
        let row = client.query_one("SELECT 1::int4", &[]).await.map_err(|e| format!("SELECT 1: {}", error_chain(&e)))?;
        match row.try_get::<_, i32>(0) {
            Ok(1) => Ok(()),
            other => Err(format!("SELECT 1 answered {other:?}")),
        }
    }

    async fn create_database(&self) -> Result<(), String> {
        let client = self.connect("postgres").await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&self.database])
            .await
            .map_err(|e| format!("looking up database {:?}: {}", self.database, error_chain(&e)))?
            .is_some();
        if !exists {
            let sql = format!("CREATE DATABASE {} OWNER {}", quote_ident(&self.database), quote_ident(&self.user));
            client.batch_execute(&sql).await.map_err(|e| format!("{sql}: {}", error_chain(&e)))?;
        }
        Ok(())
    }
}

impl Drop for PostgresProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown stops the backends too; SIGKILL to the group after 5 s.
            child.stop_sync(Signal::SIGQUIT, Duration::from_secs(5));
        }
        // `dir` (a TempDir) removes itself when dropped.
    }
}

/// `"name"` with inner quotes doubled: an SQL identifier that is never interpreted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

/// `initdb` and `postgres` from one directory (so their versions match): first a `PATH`
/// directory that has both, then Debian's `/usr/lib/postgresql/<version>/bin`, newest first.
fn find_binaries() -> Result<Binaries, EnvError> {
    let mut candidates = procs::path_dirs();
    candidates.extend(debian_bin_dirs(Path::new("/usr/lib/postgresql")));
    candidates
        .into_iter()
        .find(|d| procs::is_executable(&d.join("initdb")) && procs::is_executable(&d.join("postgres")))
        .map(|d| Binaries { initdb: d.join("initdb"), postgres: d.join("postgres") })
        .ok_or_else(|| EnvError::MissingProgram {
            program: "postgresql (initdb and postgres)".into(),
            hint: "install it with `apt-get install postgresql` (or put the directory holding initdb and postgres on PATH)"
                .into(),
        })
}

/// `<root>/<version>/bin` for every numeric version directory, newest first.
fn debian_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let key: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((key?, e.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("perf"), "\"perf\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn debian_versions_sort_newest_first() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9.6", "15", "13", "notaversion"] {
            std::fs::create_dir_all(root.path().join(v).join("bin")).unwrap();
        }
        let dirs = debian_bin_dirs(root.path());
        let names: Vec<String> =
            dirs.iter().map(|p| p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["15", "13", "9.6"]);
    }
}
