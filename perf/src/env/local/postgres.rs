//! PostgreSQL as a child process: `initdb` into a temporary directory, `postgres` on a free
//! 127.0.0.1 port, tuned for throwaway data (no fsync), trust authentication on loopback.
//!
//! When the gate runs as root (CI containers often do) PostgreSQL refuses to start, so both
//! programs run as the `postgres` account (or `nobody`), which is given the temporary
//! directory. The directories above it must then be traversable by that account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

use super::server::{ServerProcess, Stopping};
use crate::env::error::{EnvError, copy_logs_noting};
use crate::env::procs::{self, RunAs, Spawn, error_chain};
use crate::env::types::{POSTGRES_DURABILITY_SETTINGS, POSTGRES_STATEMENT_SETTINGS};

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
    server: ServerProcess,
    data: PathBuf,
    postgres: PathBuf,
    run_as: Option<RunAs>,
    database: String,
    user: String,
}

/// Settings written into `postgresql.conf`: throwaway data, enough connections for a pooled
/// app, and nothing reachable from outside the machine.
const SETTINGS: &str = "
# added by the perf gate: throwaway data, loopback only
listen_addresses = '127.0.0.1'
max_connections = 200
logging_collector = off
";

/// Fast shutdown (SIGINT: open transactions are rolled back), SIGKILL after 30 s; when
/// dropped, immediate shutdown (SIGQUIT stops the backends too), SIGKILL to the group after 5 s.
const STOPPING: Stopping =
    Stopping { signal: Signal::SIGINT, grace: Duration::from_secs(30), on_drop: Signal::SIGQUIT, on_drop_grace: Duration::from_secs(5) };

impl PostgresProcess {
    /// `Err(Exited)` with the log's tail when the server was started and has exited since.
    pub fn check_running(&mut self) -> Result<(), EnvError> {
        self.server.check_running()
    }

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
        let server = ServerProcess::new("postgres", parent, "postgres.log", opts.startup_timeout, cancel, STOPPING)?;
        if let Some(r) = &run_as {
            r.chown(server.root())?;
        }
        let root = server.root().to_path_buf();
        let mut pg = PostgresProcess {
            data: root.join("data"),
            server,
            postgres: bin.postgres,
            run_as,
            database: opts.database.clone(),
            user: opts.user.clone(),
        };
        match pg.boot(&bin.initdb, &root).await {
            Ok(()) => Ok(pg),
            Err(e) => Err(match logs_on_failure {
                Some(dest) => copy_logs_noting(e, &[root.join("initdb.log"), pg.server.log_path().to_path_buf()], dest),
                None => e,
            }),
        }
    }

    async fn boot(&mut self, initdb: &Path, root: &Path) -> Result<(), EnvError> {
        self.initdb(initdb, root).await?;
        let spec = {
            let this = self.spawn_spec_for();
            move |port| this(port)
        };
        // The app's database is created once, by the first probe that reaches the server.
        let created = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(self.database == "postgres"));
        let (user, database) = (self.user.clone(), self.database.clone());
        let ready = move |port| {
            let (user, database, created) = (user.clone(), database.clone(), created.clone());
            async move {
                if !created.load(std::sync::atomic::Ordering::Relaxed) {
                    create_database(port, &user, &database).await?;
                    created.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                select_one(port, &user, &database).await
            }
        };
        self.server.boot(spec, ready).await
    }

    /// `postgres://USER@127.0.0.1:PORT/DB`: trust authentication, so no password.
    pub fn url(&self) -> String {
        let mut u = url::Url::parse("postgres://127.0.0.1").expect("a literal url");
        let _ = u.set_username(&self.user);
        let _ = u.set_port(Some(self.server.port()));
        u.set_path(&self.database);
        u.to_string()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Process id of the postmaster while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// The superuser the app and the gate connect as (trust authentication on loopback).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The app's database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.server.log_path()
    }

    /// Fast shutdown (SIGINT: open transactions are rolled back), SIGKILL after 30 s. Keeps
    /// the data directory and the port. Does nothing when already stopped.
    pub async fn stop(&mut self) -> Result<(), EnvError> {
        self.server.stop().await
    }

    /// Starts the server again on the same port with the same data and waits for readiness.
    /// Does nothing when it runs.
    pub async fn start_again(&mut self) -> Result<(), EnvError> {
        let spec = self.spawn_spec_for()(self.server.port());
        let (user, database) = (self.user.clone(), self.database.clone());
        self.server
            .start_again(spec, move |port| {
                let (user, database) = (user.clone(), database.clone());
                async move { select_one(port, &user, &database).await }
            })
            .await
    }

    /// Stops the server and removes the temporary directory.
    pub async fn shutdown(self) -> Result<(), EnvError> {
        self.server.shutdown().await
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
        let status = procs::run_to_end("postgres", &spec, self.server.cancel()).await?;
        if !status.success() {
            return Err(EnvError::Exited {
                service: "postgres",
                status: format!("initdb failed: {status}"),
                log_tail: procs::tail_lines(&log, procs::TAIL_LINES),
            });
        }
        let conf = self.data.join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(|e| EnvError::Io { context: format!("reading {}", conf.display()), source: e })?;
        text.push_str(SETTINGS);
        for (name, value) in POSTGRES_DURABILITY_SETTINGS {
            text.push_str(&format!("{name} = {value}\n"));
        }
        // pg_stat_statements when this installation ships it (Debian's server package does):
        // the server would not start with a library it cannot load.
        if statements_library(&self.postgres).is_some() {
            for (name, value) in POSTGRES_STATEMENT_SETTINGS {
                text.push_str(&format!("{name} = '{value}'\n"));
            }
        }
        text.push_str(&format!("unix_socket_directories = '{}'\n", root.display().to_string().replace('\'', "''")));
        std::fs::write(&conf, text).map_err(|e| EnvError::Io { context: format!("writing {}", conf.display()), source: e })
    }

    /// How to spawn the postmaster on a port.
    fn spawn_spec_for(&self) -> impl Fn(u16) -> Spawn + use<> {
        let (program, data, log, run_as) =
            (self.postgres.clone(), self.data.clone(), self.server.log_path().to_path_buf(), self.run_as.clone());
        move |port| Spawn {
            program: program.clone(),
            args: vec!["-D".into(), data.display().to_string(), "-p".into(), port.to_string()],
            cwd: data.parent().unwrap_or(&data).to_path_buf(),
            env: Vec::new(),
            log: log.clone(),
            run_as: run_as.clone(),
            // Immediate shutdown: the postmaster stops its backends, then exits.
            parent_death_signal: Signal::SIGQUIT,
        }
    }
}

async fn connect(port: u16, user: &str, dbname: &str) -> Result<tokio_postgres::Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1").port(port).user(user).dbname(dbname).connect_timeout(Duration::from_secs(2));
    let connecting = cfg.connect(tokio_postgres::NoTls);
    let (client, conn) = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| format!("connecting to 127.0.0.1:{port} took more than 5s"))?
        .map_err(|e| format!("connecting to database {dbname:?} on 127.0.0.1:{port}: {}", error_chain(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// `SELECT 1` works in `dbname`.
async fn select_one(port: u16, user: &str, dbname: &str) -> Result<(), String> {
    let client = connect(port, user, dbname).await?;
    let row = client.query_one("SELECT 1::int4", &[]).await.map_err(|e| format!("SELECT 1: {}", error_chain(&e)))?;
    match row.try_get::<_, i32>(0) {
        Ok(1) => Ok(()),
        other => Err(format!("SELECT 1 answered {other:?}")),
    }
}

/// Creates the app's database, owned by `user`, unless it exists.
async fn create_database(port: u16, user: &str, database: &str) -> Result<(), String> {
    let client = connect(port, user, "postgres").await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await
        .map_err(|e| format!("looking up database {database:?}: {}", error_chain(&e)))?
        .is_some();
    if !exists {
        let sql = format!("CREATE DATABASE {} OWNER {}", quote_ident(database), quote_ident(user));
        client.batch_execute(&sql).await.map_err(|e| format!("{sql}: {}", error_chain(&e)))?;
    }
    Ok(())
}

/// `pg_stat_statements.so` in the library folder of the installation `postgres` belongs to
/// (`<prefix>/bin/postgres` → `<prefix>/lib/`, as Debian and source builds lay it out).
/// Symbolic links are followed first (`/usr/local/bin/postgres` is often a link into the
/// installation).
fn statements_library(postgres: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(postgres).ok()?;
    let prefix = real.parent()?.parent()?;
    ["lib", "lib/postgresql"].iter().map(|d| prefix.join(d).join("pg_stat_statements.so")).find(|p| p.is_file())
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
            hint: "install it with `apt-get install postgresql` (or put the directory holding initdb and postgres on PATH)".into(),
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
    fn the_statements_library_is_found_through_a_link_to_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, lib, links) = (dir.path().join("pg/bin"), dir.path().join("pg/lib"), dir.path().join("links"));
        for d in [&bin, &lib, &links] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(bin.join("postgres"), "").unwrap();
        std::os::unix::fs::symlink(bin.join("postgres"), links.join("postgres")).unwrap();
        assert_eq!(statements_library(&links.join("postgres")), None, "no library installed yet");
        std::fs::write(lib.join("pg_stat_statements.so"), "").unwrap();
        let found = statements_library(&links.join("postgres")).unwrap();
        assert_eq!(found, std::fs::canonicalize(lib.join("pg_stat_statements.so")).unwrap());
    }

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
        let names: Vec<String> = dirs.iter().map(|p| p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["15", "13", "9.6"]);
    }
}
