//! The app under test as a child process: its build step, its command with the environment
//! rendered from the plan's templates, and its health wait.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

use crate::env::appenv::{self, AppEnvValues, PostgresAddr, RedisAddr};
use crate::env::error::EnvError;
use crate::env::procs::{self, ManagedChild, Spawn};
use crate::plan::BackendKind;
use crate::plan::{LocalAppSetup, Setup};
use crate::util::Notes;

/// Environment variables, name and value, in order.
pub type EnvVars = Vec<(String, String)>;

/// The values the app's templates may use (see [`crate::env::appenv`]): PostgreSQL and Redis
/// on loopback (or the fault proxies in front of them) when the run starts them,
/// `{{app.listen}}` (`127.0.0.1:PORT`) and `{{app.port}}`; in the command also
/// `{{cargo.target_dir}}`.
#[derive(Debug, Clone, Default)]
pub struct AppContext {
    /// `None` when the run starts no PostgreSQL.
    pub postgres: Option<PostgresAddr>,
    /// `None` when the run starts no Redis.
    pub redis: Option<RedisAddr>,
    pub port: u16,
    /// Where cargo builds, when the plan's command or build uses `{{cargo.target_dir}}`.
    pub cargo_target_dir: Option<String>,
}

/// PostgreSQL as the app sees it on loopback: the port (the server's own, or its fault
/// proxy's), the user and database, and no password (it trusts connections from loopback).
pub fn postgres_on_loopback(port: u16, user: &str, database: &str) -> PostgresAddr {
    PostgresAddr {
        host: std::net::Ipv4Addr::LOCALHOST.to_string(),
        port,
        user: user.to_string(),
        password: String::new(),
        database: database.to_string(),
    }
}

/// Redis as the app sees it on loopback, at its own port or its fault proxy's.
pub fn redis_on_loopback(port: u16) -> RedisAddr {
    RedisAddr { host: std::net::Ipv4Addr::LOCALHOST.to_string(), port }
}

impl AppContext {
    /// The check made before anything starts ([`AppEnvValues::placeholders`]): every service
    /// `setup` starts stands at an empty address, the others have no values at all.
    pub fn before_start(setup: &Setup, cargo_target_dir: Option<String>) -> AppContext {
        let values = AppEnvValues::placeholders(setup, cargo_target_dir);
        AppContext { postgres: values.postgres, redis: values.redis, port: 0, cargo_target_dir: values.cargo_target_dir }
    }

    fn values(&self) -> AppEnvValues {
        AppEnvValues {
            postgres: self.postgres.clone(),
            redis: self.redis.clone(),
            app_listen: format!("127.0.0.1:{}", self.port),
            app_port: self.port,
            cargo_target_dir: self.cargo_target_dir.clone(),
        }
    }

    /// Renders one template; `field` names it in errors (`app.env.DATABASE_URL`).
    pub fn render(&self, field: &str, template: &str) -> Result<String, EnvError> {
        appenv::render(field, template, &self.values())
    }

    /// The app's command (program and arguments) and environment, rendered.
    pub fn render_app(&self, setup: &Setup) -> Result<(Vec<String>, EnvVars), EnvError> {
        Ok((self.render_argv("app.local.command", &local(setup)?.command)?, self.render_env(&setup.app.env)?))
    }

    /// Every element of an argv (`app.local.command`, `app.local.build`), rendered.
    pub fn render_argv(&self, field: &str, argv: &[String]) -> Result<Vec<String>, EnvError> {
        argv.iter().enumerate().map(|(i, a)| self.render(&format!("{field}[{i}]"), a)).collect()
    }

    /// Renders every value of the app's environment.
    pub fn render_env(&self, env: &BTreeMap<String, String>) -> Result<EnvVars, EnvError> {
        env.iter().map(|(k, v)| Ok((k.clone(), self.render(&format!("app.env.{k}"), v)?))).collect()
    }
}

/// True when the plan's local command or build step names `{{cargo.target_dir}}`.
pub fn uses_cargo_target_dir(setup: &Setup) -> bool {
    setup.app.local.iter().flat_map(|l| l.command.iter().chain(&l.build)).any(|a| a.contains("cargo.target_dir"))
}

/// The plan's `[app.local]`, which this backend cannot do without.
pub fn local(setup: &Setup) -> Result<&LocalAppSetup, EnvError> {
    setup.app.local.as_ref().ok_or_else(|| EnvError::Other(BackendKind::Local.missing_setup()))
}

/// Where cargo puts its build output for the workspace at `dir`, as `cargo metadata` says
/// (it honours `CARGO_TARGET_DIR` and `build.target-dir`); `env` is added to cargo's own.
pub async fn cargo_target_dir(dir: &Path, env: &[(String, String)]) -> Result<String, EnvError> {
    let out = tokio::process::Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .map_err(|e| EnvError::Io { context: "running `cargo metadata` for {{cargo.target_dir}}".into(), source: e })?;
    let fail = |why: String| EnvError::Other(format!("{{{{cargo.target_dir}}}}: `cargo metadata` in {}: {why}", dir.display()));
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| fail(e.to_string()))?;
    meta["target_directory"].as_str().map(str::to_string).ok_or_else(|| fail("no target_directory in its output".into()))
}

/// The program of an argv: a path with a `/` is relative to `base`, a bare name is looked up
/// on `PATH`.
pub fn resolve_program(field: &str, argv: &[String], base: &Path) -> Result<PathBuf, EnvError> {
    let Some(first) = argv.first() else {
        return Err(EnvError::Other(format!("{field} is empty: expected the program and its arguments, like [\"target/debug/app\"]")));
    };
    if first.contains('/') {
        let p = base.join(first);
        if procs::is_executable(&p) { Ok(p) } else { Err(EnvError::Other(format!("{field}: {} is not an executable file", p.display()))) }
    } else {
        procs::path_dirs().into_iter().map(|d| d.join(first)).find(|p| procs::is_executable(p)).ok_or_else(|| EnvError::MissingProgram {
            program: first.clone(),
            hint: format!("{field} names a program that is not on PATH"),
        })
    }
}

/// Runs the build command to its end with its output in `log`; `env` is added to the
/// environment the gate was started with.
pub async fn build(argv: &[String], cwd: &Path, env: &[(String, String)], log: &Path, cancel: &CancellationToken) -> Result<(), EnvError> {
    if argv.is_empty() {
        return Ok(());
    }
    let program = resolve_program("app.local.build", argv, cwd)?;
    let spec = Spawn {
        program,
        args: argv[1..].to_vec(),
        cwd: cwd.to_path_buf(),
        env: env.to_vec(),
        log: log.to_path_buf(),
        run_as: None,
        parent_death_signal: Signal::SIGKILL,
    };
    tracing::info!("building the app: {}", argv.join(" "));
    let status = procs::run_to_end("build", &spec, cancel).await?;
    if status.success() {
        Ok(())
    } else {
        Err(EnvError::Build(format!(
            "`{}` failed ({status})\n--- last lines of its output ---\n{}",
            argv.join(" "),
            procs::tail_lines(log, procs::TAIL_LINES)
        )))
    }
}

/// The app: started with a fixed command, environment and port, so that a restart is the
/// same app at the same address.
pub struct AppProcess {
    spec: Spawn,
    /// `http://127.0.0.1:PORT`.
    base_url: String,
    /// The plan's health path; `None`: any answer at `/` will do.
    health: Option<String>,
    startup_timeout: Duration,
    cancel: CancellationToken,
    notes: Notes,
    child: Option<ManagedChild>,
}

/// Time the app gets to shut down gracefully after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl AppProcess {
    pub fn new(
        spec: Spawn,
        base_url: String,
        health: Option<String>,
        startup_timeout: Duration,
        cancel: CancellationToken,
        notes: Notes,
    ) -> AppProcess {
        AppProcess { spec, base_url, health, startup_timeout, cancel, notes, child: None }
    }

    /// Starts the app and waits until it is up ([`procs::wait_http_ready`]: its health path
    /// answers 200, or without one anything answers at `/`). Fails early, with the log's tail,
    /// when the app exits while starting.
    pub async fn start(&mut self) -> Result<(), EnvError> {
        if self.child.as_mut().is_some_and(|c| c.is_running()) {
            return Ok(());
        }
        self.child = None;
        let child = self.child.insert(ManagedChild::spawn("app", &self.spec)?);
        procs::wait_http_ready("app", &self.base_url, self.health.as_deref(), self.startup_timeout, &self.cancel, &self.notes, || {
            child.check_running()?;
            Ok(child.log_tail())
        })
        .await
    }

    /// `Err(Exited)` with the log's tail when the app was started and has exited since.
    pub fn check_running(&mut self) -> Result<(), EnvError> {
        match &mut self.child {
            Some(c) => c.check_running(),
            None => Ok(()),
        }
    }

    /// SIGTERM to the app's process group, SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop_group(Signal::SIGTERM, STOP_GRACE).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid())
    }

    pub fn log_path(&self) -> &Path {
        &self.spec.log
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop_group_sync(Signal::SIGTERM, Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `LocalEnv::boot` gives an app when both databases run: PostgreSQL at `pg_port`,
    /// Redis at `redis_port` (the servers' own, or their proxies'), the app at `port`.
    fn on_loopback(pg_port: u16, user: &str, database: &str, redis_port: u16, port: u16) -> AppContext {
        AppContext {
            postgres: Some(postgres_on_loopback(pg_port, user, database)),
            redis: Some(redis_on_loopback(redis_port)),
            port,
            cargo_target_dir: None,
        }
    }

    fn ctx() -> AppContext {
        AppContext { cargo_target_dir: Some("/tmp/shared-target".into()), ..on_loopback(5, "perf", "perf", 6, 7) }
    }

    #[test]
    fn the_command_may_name_the_cargo_target_dir() {
        let argv = vec!["{{cargo.target_dir}}/debug/app".to_string(), "--port={{app.port}}".to_string()];
        assert_eq!(ctx().render_argv("app.local.command", &argv).unwrap(), ["/tmp/shared-target/debug/app", "--port=7"]);
        let without = AppContext { cargo_target_dir: None, ..ctx() };
        let err = without.render_argv("app.local.command", &argv).unwrap_err().to_string();
        assert!(err.contains("app.local.command[0]") && err.contains("cargo.target_dir"), "{err}");
    }

    #[tokio::test]
    async fn cargo_metadata_finds_the_target_dir_and_honours_cargo_target_dir() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let default = cargo_target_dir(workspace, &[]).await.unwrap();
        assert!(Path::new(&default).is_absolute(), "{default}");
        let moved = cargo_target_dir(workspace, &[("CARGO_TARGET_DIR".into(), "/tmp/elsewhere-target".into())]).await.unwrap();
        assert_eq!(moved, "/tmp/elsewhere-target");
    }

    #[test]
    fn templates_resolve_every_name() {
        let c = ctx();
        assert_eq!(c.render("f", "{{postgres.url}}").unwrap(), "postgres://perf@127.0.0.1:5/perf");
        assert_eq!(c.render("f", "{{postgres.host}}:{{postgres.port}}").unwrap(), "127.0.0.1:5");
        assert_eq!(c.render("f", "{{postgres.user}}/{{postgres.database}}").unwrap(), "perf/perf");
        assert_eq!(c.render("f", "[{{postgres.password}}]").unwrap(), "[]", "trust authentication: no password");
        assert_eq!(c.render("f", "{{ redis.url }}/0").unwrap(), "redis://127.0.0.1:6/0");
        assert_eq!(c.render("f", "{{redis.host}} {{redis.port}}").unwrap(), "127.0.0.1 6");
        assert_eq!(c.render("f", "--listen={{app.listen}}").unwrap(), "--listen=127.0.0.1:7");
        assert_eq!(c.render("f", "{{app.port}}").unwrap(), "7");
        assert_eq!(c.render("f", "plain").unwrap(), "plain");
    }

    #[test]
    fn the_local_values_name_the_proxies_when_they_stand_between() {
        // `LocalEnv::boot` passes the proxies' ports instead of the servers' own.
        let c = on_loopback(41000, "appuser", "app", 41001, 8080);
        let env: BTreeMap<String, String> = [
            ("DATABASE_URL", "{{postgres.url}}"),
            ("DB_HOST", "{{postgres.host}}"),
            ("DB_PORT", "{{postgres.port}}"),
            ("REDIS_URL", "{{redis.url}}"),
            ("REDIS_PORT", "{{redis.port}}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let rendered: BTreeMap<String, String> = c.render_env(&env).unwrap().into_iter().collect();
        assert_eq!(rendered["DATABASE_URL"], "postgres://appuser@127.0.0.1:41000/app");
        assert_eq!(rendered["DB_HOST"], "127.0.0.1");
        assert_eq!(rendered["DB_PORT"], "41000");
        assert_eq!(rendered["REDIS_URL"], "redis://127.0.0.1:41001");
        assert_eq!(rendered["REDIS_PORT"], "41001");
    }

    #[test]
    fn before_start_the_templates_may_name_only_the_services_the_run_starts() {
        let setup = |tables: &str| {
            let text = format!(
                "version = 1\n{tables}\n[app.local]\ncommand = [\"app\", \"--port={{{{app.port}}}}\"]\n\
                 [requests.r]\npath = \"/\"\n[suites.s.scenarios.a]\nexecutor = \"constant-vus\"\nrequest = \"r\"\n"
            );
            crate::plan::parse(Path::new("perf.toml"), text).unwrap().setup().unwrap()
        };
        // Neither database: the app's own names render, and the command renders.
        let mut s = setup("");
        let c = AppContext::before_start(&s, None);
        assert!(c.postgres.is_none() && c.redis.is_none());
        assert!(c.render_app(&s).is_ok());
        // A template added after the plan was read names Redis, which this run does not start.
        s.app.env.insert("CACHE".into(), "{{redis.url}}".into());
        let err = AppContext::before_start(&s, None).render_app(&s).unwrap_err().to_string();
        assert!(err.starts_with("app.env.CACHE: `{{redis.url}}` names redis"), "{err}");
        // With the table, it stands at a placeholder address until the servers run.
        let s = setup("[environment.redis]");
        let c = AppContext::before_start(&s, Some("/t".into()));
        assert!(c.postgres.is_none() && c.redis.is_some());
        assert_eq!(c.render("f", "{{redis.port}} {{cargo.target_dir}}").unwrap(), "0 /t");
    }

    #[test]
    fn an_unknown_name_names_the_env_key() {
        let mut env = BTreeMap::new();
        env.insert("DATABASE_URL".to_string(), "{{postgres.uri}}".to_string());
        let err = ctx().render_env(&env).unwrap_err().to_string();
        assert!(err.contains("app.env.DATABASE_URL") && err.contains("postgres.uri"), "{err}");
        let err = ctx().render("app.env.X", "{{app.port").unwrap_err().to_string();
        assert!(err.contains("app.env.X") && err.contains("not closed"), "{err}");
    }

    #[test]
    fn programs_resolve_relative_to_the_plan_or_on_path() {
        let base = Path::new("/");
        assert_eq!(resolve_program("f", &["bin/sh".into()], base).unwrap(), Path::new("/bin/sh"));
        assert!(resolve_program("f", &["sh".into()], base).unwrap().ends_with("sh"));
        let err = resolve_program("app.local.command", &[], base).unwrap_err().to_string();
        assert!(err.contains("app.local.command is empty"), "{err}");
        let err = resolve_program("f", &["./nope".into()], base).unwrap_err().to_string();
        assert!(err.contains("not an executable"), "{err}");
    }
}
