//! The local backend: PostgreSQL, Redis and the app as child processes of the gate.
//!
//! [`LocalEnv::start`] creates one temporary run directory (under `PERF_TMPDIR` when set,
//! else the system's temporary directory) that holds everything: the PostgreSQL cluster,
//! Redis's directory, and the build's and the app's logs. PostgreSQL and Redis are started
//! only when the plan asks for them (`plan::EnvironmentSetup::starts`): an app that uses
//! neither needs neither program installed. The databases and the app's
//! build run at the same time; the app starts once all three are done, on a free port, with
//! its environment (and its command's arguments) rendered from the plan's templates
//! (`{{postgres.url}}` and its parts, `{{redis.url}}`, `{{app.listen}}`, `{{app.port}}`…; see
//! `appenv`), and is ready when its health path answers 200 (without one, when it answers at
//! `/`: `procs::wait_http_ready`). Its program is relative to the plan's directory when
//! it holds a `/`, looked up on PATH otherwise; it runs in the plan's directory. Children
//! never inherit `GITHUB_TOKEN` or `GH_TOKEN`.
//!
//! Every child runs in its own process group, so a Ctrl-C typed in the terminal reaches the
//! gate only; the gate then stops the app, Redis and PostgreSQL in that order. Every child
//! also gets a parent-death signal, so none outlives the gate even if the gate is killed.
//! On a failed start the logs are copied to `StartOptions::logs_dir` and the error says so.
//!
//! [`PostgresProcess`] and [`RedisProcess`] also serve tests that need a real database or
//! cache without the whole environment.

mod app;
mod postgres;
mod redis;
mod server;

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use tempfile::TempDir;

pub use app::{AppContext, cargo_target_dir};
pub use postgres::{PostgresOptions, PostgresProcess};
pub use redis::{RedisOptions, RedisProcess};

use super::error::{EnvError, copy_logs_noting};
use super::procs::{self, RunAs, Spawn};
use super::proxies::{self, Proxies};
use super::resources;
use super::types::{PostgresAccess, ResourceSample, ServiceAccess, ServiceInfo, StartOptions};
use crate::plan::{Service, Setup};
use app::AppProcess;

/// An app built as the local backend builds it, for a caller that keeps the result (A/B mode
/// keeps the base's binary apart, so that building the head does not replace it).
#[derive(Debug, Clone)]
pub struct BuiltApp {
    /// The program the plan's `[app.local] command` runs, resolved.
    pub program: PathBuf,
    /// Where cargo built, when the plan names `{{cargo.target_dir}}`.
    pub cargo_target_dir: Option<PathBuf>,
}

/// Runs the plan's `[app.local] build` in `dir` with `build_env` added (its output in `log`)
/// and says which program the app's command then runs. A failed build is an error with the end
/// of its log.
pub async fn build_app(
    setup: &Setup,
    dir: &Path,
    build_env: &[(String, String)],
    log: &Path,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<BuiltApp, EnvError> {
    let cargo_target_dir = if app::uses_cargo_target_dir(setup) { Some(app::cargo_target_dir(dir, build_env).await?) } else { None };
    let templates = AppContext::before_start(setup, cargo_target_dir.clone());
    let local = app::local(setup)?;
    let build = templates.render_argv("app.local.build", &local.build)?;
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| EnvError::Io { context: format!("creating {}", parent.display()), source: e })?;
    }
    app::build(&build, dir, build_env, log, cancel).await?;
    let command = templates.render_argv("app.local.command", &local.command)?;
    let program = app::resolve_program("app.local.command", &command, dir)?;
    Ok(BuiltApp { program, cargo_target_dir: cargo_target_dir.map(PathBuf::from) })
}

/// A running local environment. Dropping it stops everything (synchronously, best effort)
/// and removes the run directory; [`shutdown`](Self::shutdown) does it gently.
pub struct LocalEnv {
    app_url: String,
    // Fields are taken in stop order (app, redis, postgres) by `shutdown` and `Drop`.
    // Boxed to keep `Environment` small.
    app: Option<Box<AppProcess>>,
    redis: Option<Box<RedisProcess>>,
    postgres: Option<Box<PostgresProcess>>,
    run_dir: Option<TempDir>,
    proxies: Option<Proxies>,
}

/// The file in a run's folder naming the gate process that owns it (`resources::owner_token`).
const OWNER_FILE: &str = "owner";

/// Removes the run folders under `root` whose gate process is gone (`kill -9`: no chance to
/// clean up; its processes died with it through the parent-death signal, its folder did not).
/// Folders of live gates, and folders without an owner file, are left alone.
fn sweep_orphans(root: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("perf-local-") {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(entry.path().join(OWNER_FILE)) else { continue };
        if resources::owner_is_gone(owner.trim()) && std::fs::remove_dir_all(entry.path()).is_ok() {
            let pid = owner.trim().rsplit('/').next().unwrap_or_default().to_string();
            removed.push((entry.path(), format!("gate process {pid}")));
        }
    }
    removed
}

impl LocalEnv {
    /// Starts the PostgreSQL and Redis the plan asks for and the app, and waits until the app is
    /// up (`procs::wait_http_ready`). Ends with `Interrupted` soon after `opts.cancel` fires.
    pub async fn start(setup: &Setup, opts: &StartOptions) -> Result<LocalEnv, EnvError> {
        let root = procs::temp_root();
        for (dir, owner) in sweep_orphans(&root) {
            opts.notes.say(format!("  removed what an earlier run left when its gate was killed ({owner}): {}", dir.display()));
        }
        let run_dir = tempfile::Builder::new()
            .prefix("perf-local-")
            .tempdir_in(&root)
            .map_err(|e| EnvError::Io { context: format!("creating a temporary directory in {}", root.display()), source: e })?;
        if setup.environment.postgres.is_some() && RunAs::for_postgres()?.is_some() {
            // PostgreSQL runs as another account, which must be able to reach its directory.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o711))
                .map_err(|e| EnvError::Io { context: format!("opening {} to postgres", run_dir.path().display()), source: e })?;
        }
        let owner_file = run_dir.path().join(OWNER_FILE);
        std::fs::write(&owner_file, resources::owner_token())
            .map_err(|e| EnvError::Io { context: format!("writing {}", owner_file.display()), source: e })?;
        tracing::debug!(dir = %run_dir.path().display(), "local environment directory");
        let mut env = LocalEnv { app_url: String::new(), app: None, redis: None, postgres: None, run_dir: Some(run_dir), proxies: None };
        match env.boot(setup, opts).await {
            Ok(()) => Ok(env),
            Err(EnvError::Interrupted) => Err(EnvError::Interrupted),
            Err(e) => {
                let e = env.save_logs(e, &opts.logs_dir);
                env.shutdown_quietly().await;
                Err(e)
            }
        }
    }

    async fn boot(&mut self, setup: &Setup, opts: &StartOptions) -> Result<(), EnvError> {
        let dir = self.dir().to_path_buf();
        let timeout = setup.environment.startup_timeout;
        let pg_opts = setup.environment.postgres.as_ref().map(|spec| PostgresOptions {
            database: spec.database.clone(),
            user: spec.user.clone(),
            startup_timeout: timeout,
        });
        let redis_opts = setup.environment.redis.as_ref().map(|_| RedisOptions { startup_timeout: timeout });
        let cancel = &opts.cancel;
        // A mistake in the app's templates (a name of a service the run does not start among
        // them) is found before anything is started.
        let cargo_target_dir =
            if app::uses_cargo_target_dir(setup) { Some(app::cargo_target_dir(&opts.plan_dir, &opts.build_env).await?) } else { None };
        let templates = AppContext::before_start(setup, cargo_target_dir.clone());
        templates.render_app(setup)?;
        let build = templates.render_argv("app.local.build", &app::local(setup)?.build)?;
        let build_log = dir.join("build.log");
        let logs = Some(opts.logs_dir.as_path());
        let (pg, redis, ()) = tokio::try_join!(
            async {
                match &pg_opts {
                    Some(o) => PostgresProcess::start_in(o, &dir, cancel.clone(), logs).await.map(Some),
                    None => Ok(None),
                }
            },
            async {
                match &redis_opts {
                    Some(o) => RedisProcess::start_in(o, &dir, cancel.clone(), logs).await.map(Some),
                    None => Ok(None),
                }
            },
            app::build(&build, &opts.plan_dir, &opts.build_env, &build_log, cancel),
        )?;
        // The app reaches the servers directly, or through the proxies on loopback (chaos
        // suites' faults, the plan's link).
        let loopback = std::net::Ipv4Addr::LOCALHOST;
        let (mut pg_port, mut redis_port) = (pg.as_ref().map(|p| p.port()), redis.as_ref().map(|r| r.port()));
        if proxies::wanted(setup, opts.fault_proxies) {
            let upstream = |port: Option<u16>| port.map(|p| std::net::SocketAddr::from((loopback, p)));
            let proxies = Proxies::start(loopback.into(), upstream(pg_port), upstream(redis_port), setup.environment.link).await?;
            (pg_port, redis_port) = (proxies.addr(Service::Postgres).map(|a| a.port()), proxies.addr(Service::Redis).map(|a| a.port()));
            self.proxies = Some(proxies);
        }
        let ctx = AppContext {
            postgres: pg.as_ref().zip(pg_port).map(|(p, port)| app::postgres_on_loopback(port, p.user(), p.database())),
            redis: redis_port.map(app::redis_on_loopback),
            port: procs::free_port()?,
            cargo_target_dir,
        };
        self.postgres = pg.map(Box::new);
        self.redis = redis.map(Box::new);

        let (argv, env) = ctx.render_app(setup)?;
        let program = app::resolve_program("app.local.command", &argv, &opts.plan_dir)?;
        let spec = Spawn {
            program,
            args: argv[1..].to_vec(),
            cwd: opts.plan_dir.clone(),
            env,
            log: dir.join("app.log"),
            run_as: None,
            parent_death_signal: Signal::SIGKILL,
        };
        self.app_url = format!("http://127.0.0.1:{}", ctx.port);
        let health = setup.app.health.clone();
        let app = AppProcess::new(spec, self.app_url.clone(), health, timeout, cancel.clone(), opts.notes.clone());
        self.app.insert(Box::new(app)).start().await
    }

    /// Base URL of the app, `http://127.0.0.1:PORT`.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// The run's temporary directory (holds every service's files and logs).
    pub fn dir(&self) -> &Path {
        self.run_dir.as_ref().map(|d| d.path()).unwrap_or(Path::new(""))
    }

    /// App, then PostgreSQL and Redis when the run started them: how to reach them (no
    /// passwords: trust auth on loopback).
    pub fn services(&self) -> Vec<ServiceInfo> {
        let mut out = vec![ServiceInfo { service: Service::App, url: self.app_url.clone() }];
        if let Some(pg) = &self.postgres {
            out.push(ServiceInfo { service: Service::Postgres, url: pg.url() });
        }
        if let Some(r) = &self.redis {
            out.push(ServiceInfo { service: Service::Redis, url: r.url() });
        }
        out
    }

    /// The fault proxies, when the environment was started with them.
    pub fn proxies(&self) -> Option<&Proxies> {
        self.proxies.as_ref()
    }

    /// Stops one service, keeping its port (and PostgreSQL's data).
    pub async fn stop_service(&mut self, service: Service) -> Result<(), EnvError> {
        match service {
            Service::App => {
                self.app_mut()?.stop().await;
                Ok(())
            }
            Service::Postgres => self.postgres_mut()?.stop().await,
            Service::Redis => self.redis_mut()?.stop().await,
        }
    }

    /// Starts a stopped service again at the same address and waits until it is ready.
    pub async fn start_service(&mut self, service: Service) -> Result<(), EnvError> {
        match service {
            Service::App => self.app_mut()?.start().await,
            Service::Postgres => self.postgres_mut()?.start_again().await,
            Service::Redis => self.redis_mut()?.start_again().await,
        }
    }

    /// `Err(Exited)` when the app, PostgreSQL or Redis exited by itself.
    pub fn check_alive(&mut self) -> Result<(), EnvError> {
        if let Some(app) = self.app.as_mut() {
            app.check_running()?;
        }
        if let Some(pg) = self.postgres.as_mut() {
            pg.check_running()?;
        }
        if let Some(redis) = self.redis.as_mut() {
            redis.check_running()?;
        }
        Ok(())
    }

    /// PostgreSQL's and Redis's ports on loopback, for the gate's own statistics reads (`None`
    /// for a service the run did not start).
    pub fn service_access(&self) -> Option<ServiceAccess> {
        Some(ServiceAccess {
            postgres: self.postgres.as_ref().map(|pg| PostgresAccess {
                port: pg.port(),
                user: pg.user().to_string(),
                password: None,
                database: pg.database().to_string(),
            }),
            redis_port: self.redis.as_ref().map(|r| r.port()),
        })
    }

    /// The app's process id while it runs.
    pub fn app_pid(&self) -> Option<u32> {
        self.app.as_ref().and_then(|a| a.pid())
    }

    /// Cumulative CPU seconds and current memory of each running service's process tree.
    pub fn resources(&self) -> Vec<(Service, ResourceSample)> {
        let pids = [
            (Service::App, self.app.as_ref().and_then(|a| a.pid())),
            (Service::Postgres, self.postgres.as_ref().and_then(|p| p.pid())),
            (Service::Redis, self.redis.as_ref().and_then(|r| r.pid())),
        ];
        pids.into_iter().filter_map(|(s, pid)| Some((s, resources::sample_process_tree(pid?)?))).collect()
    }

    /// Stops the app, Redis and PostgreSQL in that order and removes the run directory.
    /// Goes on after an error and reports the first one.
    pub async fn shutdown(mut self) -> Result<(), EnvError> {
        let mut first = None;
        if let Some(mut app) = self.app.take() {
            app.stop().await;
        }
        if let Some(r) = self.redis.take() {
            first = first.or(r.shutdown().await.err());
        }
        if let Some(pg) = self.postgres.take() {
            first = first.or(pg.shutdown().await.err());
        }
        if let Some(dir) = self.run_dir.take() {
            let path = dir.path().display().to_string();
            let res = dir.close().map_err(|e| EnvError::Io { context: format!("removing {path}"), source: e });
            first = first.or(res.err());
        }
        first.map_or(Ok(()), Err)
    }

    async fn shutdown_quietly(&mut self) {
        let env = LocalEnv {
            app_url: String::new(),
            app: self.app.take(),
            redis: self.redis.take(),
            postgres: self.postgres.take(),
            run_dir: self.run_dir.take(),
            proxies: self.proxies.take(),
        };
        if let Err(e) = env.shutdown().await {
            tracing::warn!("cleaning up after a failed start: {e}");
        }
    }

    /// Copies every log of the run to `logs_dir` and says so in the error.
    fn save_logs(&self, err: EnvError, logs_dir: &Path) -> EnvError {
        let mut logs: Vec<PathBuf> = Vec::new();
        if let Some(a) = &self.app {
            logs.push(a.log_path().to_path_buf());
        }
        logs.push(self.dir().join("build.log"));
        if let Some(r) = &self.redis {
            logs.push(r.log_path().to_path_buf());
        }
        if let Some(p) = &self.postgres {
            logs.push(p.log_path().to_path_buf());
        }
        copy_logs_noting(err, &logs, logs_dir)
    }
}

impl Drop for LocalEnv {
    /// Errors, panics and cancelled futures end here: stop in order, synchronously.
    fn drop(&mut self) {
        drop(self.app.take());
        drop(self.redis.take());
        drop(self.postgres.take());
        drop(self.run_dir.take());
    }
}

impl LocalEnv {
    fn app_mut(&mut self) -> Result<&mut AppProcess, EnvError> {
        self.app.as_deref_mut().ok_or_else(|| EnvError::Other("the app is not running".into()))
    }
    fn postgres_mut(&mut self) -> Result<&mut PostgresProcess, EnvError> {
        self.postgres.as_deref_mut().ok_or_else(|| EnvError::Other(crate::plan::not_started(Service::Postgres)))
    }
    fn redis_mut(&mut self) -> Result<&mut RedisProcess, EnvError> {
        self.redis.as_deref_mut().ok_or_else(|| EnvError::Other(crate::plan::not_started(Service::Redis)))
    }
}
