//! Environment backends: where PostgreSQL, Redis and the app under test come from.
//!
//! One interface, three backends:
//! - `local`: child processes (initdb + postgres, redis-server, the app's own command);
//! - `docker`: containers through testcontainers, on a dedicated network;
//! - `external`: nothing is started, the app's URL is given.
//!
//! Everything a backend starts it stops, on every exit path: [`Environment::shutdown`] on the
//! normal path, and `Drop` (synchronous, best effort) on errors, panics and cancellation.

pub mod appenv;
pub mod docker;
pub mod external;
pub mod local;
pub mod procs;
pub mod resources;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::faults::{FaultProxy, ProxyStats};
pub use crate::plan::{Fault, Service};

use crate::plan::Setup;

/// What the user asked for with `--backend` (the one backend enum: the CLI parses it directly;
/// [`BackendKind`] is what `auto` resolved to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// Docker when an engine answers, local otherwise.
    #[default]
    Auto,
    Local,
    Docker,
    External,
}

impl BackendChoice {
    /// The backend a run will use: `auto` becomes Docker when an engine answers within two
    /// seconds and local processes otherwise. Decided once, before anything starts, so that
    /// the run's testbed (and so its baseline) is known up front.
    pub async fn resolve(self) -> BackendKind {
        match self {
            BackendChoice::Local => BackendKind::Local,
            BackendChoice::Docker => BackendKind::Docker,
            BackendChoice::External => BackendKind::External,
            BackendChoice::Auto if docker::engine_answers().await => BackendKind::Docker,
            BackendChoice::Auto => BackendKind::Local,
        }
    }
}

impl From<BackendKind> for BackendChoice {
    fn from(kind: BackendKind) -> BackendChoice {
        match kind {
            BackendKind::Local => BackendChoice::Local,
            BackendKind::Docker => BackendChoice::Docker,
            BackendKind::External => BackendChoice::External,
        }
    }
}

/// The backend actually used; recorded in every summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Local,
    Docker,
    External,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
            BackendKind::External => "external",
        }
    }
}

impl BackendKind {
    /// What this backend needs from the plan that a plan may leave out, checked before
    /// anything starts: the local backend builds and runs `[app.local]`, the docker backend
    /// runs `[app.docker]`'s image (or `PERF_APP_IMAGE`); `external` needs only the app's URL.
    pub fn check_setup(self, setup: &Setup) -> Result<(), String> {
        let missing = match self {
            BackendKind::Local => setup.app.local.is_none(),
            BackendKind::Docker => setup.app.docker.is_none(),
            BackendKind::External => false,
        };
        if missing { Err(self.missing_setup()) } else { Ok(()) }
    }

    /// What [`BackendKind::check_setup`] says when the plan lacks what this backend needs.
    pub fn missing_setup(self) -> String {
        const ELSEWHERE: &str = "or, for a service started elsewhere, --backend external --app-url URL (which needs no [app] table)";
        match self {
            BackendKind::Local => format!(
                "the local backend builds and runs the app from [app.local] (`command`, and `build` when it needs one), \
                 and the plan has no [app.local]: add one, {ELSEWHERE}"
            ),
            BackendKind::Docker => format!(
                "the docker backend runs the app's image from [app.docker] (`image`, and `dockerfile` to build it when it is \
                 missing) or PERF_APP_IMAGE, and the plan has neither: add one, {ELSEWHERE}"
            ),
            BackendKind::External => String::new(),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach one service, for people: never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub service: Service,
    /// `http://127.0.0.1:PORT`, `postgres://user@127.0.0.1:PORT/db`, `redis://127.0.0.1:PORT`.
    pub url: String,
}

/// How the gate itself reaches the databases it started (published ports on loopback), to
/// read their statistics beside the load. Holds the password: never printed (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccess {
    pub postgres_port: u16,
    pub postgres_user: String,
    pub postgres_password: Option<String>,
    pub postgres_database: String,
    pub redis_port: u16,
}

impl fmt::Debug for ServiceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccess")
            .field("postgres_port", &self.postgres_port)
            .field("postgres_user", &self.postgres_user)
            .field("postgres_password", &self.postgres_password.as_ref().map(|_| "<hidden>"))
            .field("postgres_database", &self.postgres_database)
            .field("redis_port", &self.redis_port)
            .finish()
    }
}

/// Server settings both backends give PostgreSQL: `pg_stat_statements` loaded, so the gate
/// can say which statements got slower; utility statements (BEGIN, SET) left out of it.
pub const POSTGRES_STATEMENT_SETTINGS: [(&str, &str); 3] =
    [("shared_preload_libraries", "pg_stat_statements"), ("pg_stat_statements.track_utility", "off"), ("pg_stat_statements.max", "1000")];

/// Options that do not come from the plan.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Directory the plan's relative paths are resolved against.
    pub plan_dir: PathBuf,
    /// Where service logs are copied when something fails (results/logs).
    pub logs_dir: PathBuf,
    /// `external` backend: the app's base URL.
    pub app_url: Option<String>,
    /// Cancelled on Ctrl-C or SIGTERM: start-up stops waiting and cleans up.
    pub cancel: CancellationToken,
    /// Put a [`FaultProxy`] between the app and PostgreSQL and between the app and Redis (the
    /// app's `{{postgres.url}}` and `{{redis.url}}` name the proxies), so chaos suites can
    /// set network faults. Off for measured suites: a proxy adds its own hop.
    pub fault_proxies: bool,
    /// Environment added to the local backend's build step and its `cargo metadata` call
    /// (A/B mode builds the base in a target folder of its own).
    pub build_env: Vec<(String, String)>,
    /// Where a start-up that takes a while says what it waits for.
    pub notes: crate::util::Notes,
}

/// The fault proxies of an environment started with `fault_proxies`.
#[derive(Debug)]
pub struct Proxies {
    pub postgres: FaultProxy,
    pub redis: FaultProxy,
}

impl Proxies {
    /// Starts one proxy per service, listening on `listen`'s address with a free port.
    pub async fn start(listen: std::net::IpAddr, postgres: SocketAddr, redis: SocketAddr) -> Result<Proxies, EnvError> {
        let start = |service: &'static str, upstream: SocketAddr| async move {
            FaultProxy::start(SocketAddr::new(listen, 0), upstream)
                .await
                .map_err(|e| EnvError::Io { context: format!("starting the fault proxy for {service} on {listen}"), source: e })
        };
        Ok(Proxies { postgres: start("postgres", postgres).await?, redis: start("redis", redis).await? })
    }

    /// Counters of both proxies since they started.
    pub fn stats(&self) -> [(Service, ProxyStats); 2] {
        [(Service::Postgres, self.postgres.stats()), (Service::Redis, self.redis.stats())]
    }

    fn set(&self, service: Service, fault: Fault) -> Result<(), EnvError> {
        match service {
            Service::Postgres => self.postgres.set(fault),
            Service::Redis => self.redis.set(fault),
            Service::App => {
                return Err(EnvError::Other("the app has no fault proxy in front of it: faults apply to postgres and redis".into()));
            }
        }
        Ok(())
    }
}

/// Sets `fault` through `proxies`, or says why there are none.
fn set_fault(proxies: Option<&Proxies>, service: Service, fault: Fault) -> Result<(), EnvError> {
    match proxies {
        Some(p) => p.set(service, fault),
        None => Err(EnvError::Other(format!(
            "cannot set `{}` on {}: the environment was started without fault proxies",
            fault.describe(),
            service.as_str()
        ))),
    }
}

/// Errors of the environment layer. Messages name the service and include the tail of its
/// log where there is one.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A program the backend needs is not installed.
    #[error("{program} not found: {hint}")]
    MissingProgram { program: String, hint: String },
    /// A service did not become ready in time.
    #[error("{service} did not become ready within {timeout:?}: {detail}{tail}", tail = tail_block(.log_tail))]
    NotReady { service: &'static str, timeout: Duration, detail: String, log_tail: String },
    /// A service exited on its own.
    #[error("{service} exited unexpectedly ({status}){tail}", tail = tail_block(.log_tail))]
    Exited { service: &'static str, status: String, log_tail: String },
    #[error("building the app failed: {0}")]
    Build(String),
    #[error("docker: {0}")]
    Docker(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

fn tail_block(tail: &str) -> String {
    if tail.trim().is_empty() { String::new() } else { format!("\n--- last lines of its log ---\n{}", tail.trim_end()) }
}

/// Resource use of one service since the environment started (cumulative CPU) and now
/// (memory). Summaries hold the difference over a suite.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSample {
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
}

/// A running environment.
pub enum Environment {
    Local(local::LocalEnv),
    Docker(docker::DockerEnv),
    External(external::ExternalEnv),
}

impl Environment {
    /// Starts the environment the plan describes with the chosen backend and waits until
    /// the app's health check answers 200.
    pub async fn start(choice: BackendChoice, setup: &Setup, opts: &StartOptions) -> Result<Environment, EnvError> {
        match choice {
            BackendChoice::External => Ok(Environment::External(external::ExternalEnv::start(setup, opts).await?)),
            BackendChoice::Local => Ok(Environment::Local(local::LocalEnv::start(setup, opts).await?)),
            BackendChoice::Docker => Ok(Environment::Docker(docker::DockerEnv::start(setup, opts).await?)),
            BackendChoice::Auto => {
                if docker::engine_answers().await {
                    Ok(Environment::Docker(docker::DockerEnv::start(setup, opts).await?))
                } else {
                    Ok(Environment::Local(local::LocalEnv::start(setup, opts).await?))
                }
            }
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Environment::Local(_) => BackendKind::Local,
            Environment::Docker(_) => BackendKind::Docker,
            Environment::External(_) => BackendKind::External,
        }
    }

    /// Base URL of the app under test, without a trailing slash.
    pub fn app_url(&self) -> &str {
        match self {
            Environment::Local(e) => e.app_url(),
            Environment::Docker(e) => e.app_url(),
            Environment::External(e) => e.app_url(),
        }
    }

    /// One entry per running service, app first.
    pub fn services(&self) -> Vec<ServiceInfo> {
        match self {
            Environment::Local(e) => e.services(),
            Environment::Docker(e) => e.services(),
            Environment::External(e) => e.services(),
        }
    }

    /// Stops one service, keeping its data (chaos: database down).
    pub async fn stop_service(&mut self, service: Service) -> Result<(), EnvError> {
        match self {
            Environment::Local(e) => e.stop_service(service).await,
            Environment::Docker(e) => e.stop_service(service).await,
            Environment::External(_) => Err(unsupported(service, "stop")),
        }
    }

    /// Starts a stopped service again on the same address with the same data.
    pub async fn start_service(&mut self, service: Service) -> Result<(), EnvError> {
        match self {
            Environment::Local(e) => e.start_service(service).await,
            Environment::Docker(e) => e.start_service(service).await,
            Environment::External(_) => Err(unsupported(service, "start")),
        }
    }

    /// Sets (or, with `Fault::None`, clears) a network fault between the app and `service`.
    /// Needs an environment started with `fault_proxies`.
    pub fn set_fault(&mut self, service: Service, fault: Fault) -> Result<(), EnvError> {
        match self {
            Environment::Local(e) => set_fault(e.proxies(), service, fault),
            Environment::Docker(e) => set_fault(e.proxies(), service, fault),
            Environment::External(_) => Err(unsupported(service, "set a fault on")),
        }
    }

    /// The fault proxies' counters (empty without proxies).
    pub fn proxy_stats(&self) -> Vec<(Service, ProxyStats)> {
        let proxies = match self {
            Environment::Local(e) => e.proxies(),
            Environment::Docker(e) => e.proxies(),
            Environment::External(_) => None,
        };
        proxies.map(|p| p.stats().to_vec()).unwrap_or_default()
    }

    /// `Err(Exited)`, with the cause and the end of its log, when a service this environment
    /// started has died by itself; a service stopped through [`Environment::stop_service`] is
    /// not asked about, and the external backend has nothing to ask. The gate asks every second
    /// while a suite runs, so a crash ends the run at once instead of being measured as errors.
    pub async fn check_alive(&mut self) -> Result<(), EnvError> {
        match self {
            Environment::Local(e) => e.check_alive(),
            Environment::Docker(e) => e.check_alive().await,
            Environment::External(_) => Ok(()),
        }
    }

    /// How the gate reaches the PostgreSQL and Redis it started; `None` for external (the gate
    /// did not start them and does not know where they are).
    pub fn service_access(&self) -> Option<ServiceAccess> {
        match self {
            Environment::Local(e) => e.service_access(),
            Environment::Docker(e) => e.service_access(),
            Environment::External(_) => None,
        }
    }

    /// Current resource use of each service the backend runs (empty for external).
    pub async fn resources(&self) -> Vec<(Service, ResourceSample)> {
        match self {
            Environment::Local(e) => e.resources(),
            Environment::Docker(e) => e.resources().await,
            Environment::External(_) => Vec::new(),
        }
    }

    /// Stops everything and removes what was created. Idempotent with `Drop`.
    pub async fn shutdown(self) -> Result<(), EnvError> {
        match self {
            Environment::Local(e) => e.shutdown().await,
            Environment::Docker(e) => e.shutdown().await,
            Environment::External(_) => Ok(()),
        }
    }
}

fn unsupported(service: Service, verb: &str) -> EnvError {
    EnvError::Other(format!("the external backend cannot {verb} {}: it does not manage services", service.as_str()))
}
