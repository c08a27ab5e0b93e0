//! Environment backends: where PostgreSQL, Redis and the app under test come from.
//!
//! One interface, three backends:
//! - `local`: child processes (initdb + postgres, redis-server, the app's own command);
//! - `docker`: containers through testcontainers, on a dedicated network;
//! - `external`: nothing is started, the app's URL is given.
//!
//! PostgreSQL and Redis are each started only when the plan asks for them
//! (`plan::EnvironmentSetup::starts`: a table, or a template of the app naming the service).
//! Everything that meets a service afterwards asks whether it is there: the list of services,
//! the resources sampled, `check_alive`, the fault proxies and [`ServiceAccess`].
//!
//! Everything a backend starts it stops, on every exit path: [`Environment::shutdown`] on the
//! normal path, and `Drop` (synchronous, best effort) on errors, panics and cancellation.
//!
//! This file holds what picks and drives a backend ([`BackendChoice`], [`Environment`]); what
//! the backends share lives in leaf files they import directly: `types` (the backend kind,
//! service addresses, start options, resource samples), `error` ([`EnvError`]) and `proxies`
//! (the proxies between the app and its databases: chaos suites' faults, the plan's link).

pub mod appenv;
pub mod docker;
mod error;
pub mod external;
pub mod local;
pub mod procs;
mod proxies;
pub mod resources;
mod types;

use crate::faults::ProxyStats;
pub use crate::plan::{Fault, Service};

use crate::plan::Setup;

pub use crate::plan::BackendKind;
pub use error::EnvError;
pub use proxies::Proxies;
use proxies::set_fault;
pub use types::{
    POSTGRES_DURABILITY_SETTINGS, POSTGRES_STATEMENT_SETTINGS, PostgresAccess, ResourceSample, ServiceAccess, ServiceInfo, StartOptions,
};

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

/// A running environment.
// One or two per run, never in a collection: the size of the local variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Environment {
    Local(local::LocalEnv),
    Docker(docker::DockerEnv),
    External(external::ExternalEnv),
}

impl Environment {
    /// Starts the environment the plan describes with `backend` (`--backend auto` is resolved
    /// before: [`BackendChoice::resolve`]) and waits until the app is up
    /// ([`procs::wait_http_ready`]).
    pub async fn start(backend: BackendKind, setup: &Setup, opts: &StartOptions) -> Result<Environment, EnvError> {
        match backend {
            BackendKind::External => Ok(Environment::External(external::ExternalEnv::start(setup, opts).await?)),
            BackendKind::Local => Ok(Environment::Local(local::LocalEnv::start(setup, opts).await?)),
            BackendKind::Docker => Ok(Environment::Docker(docker::DockerEnv::start(setup, opts).await?)),
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

    /// One entry per running service, app first: PostgreSQL and Redis only when the plan asks
    /// for them (`plan::EnvironmentSetup::starts`).
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

    /// Sets (or, with `Fault::None`, clears) a network fault between the app and `service`,
    /// on top of the plan's link if it has one. Needs an environment started with proxies
    /// (`fault_proxies`, or a link).
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
        proxies.map(Proxies::stats).unwrap_or_default()
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

    /// How the gate reaches the PostgreSQL and Redis it started (each `None` inside when the run
    /// did not start it); `None` for external (the gate did not start them and does not know
    /// where they are).
    pub fn service_access(&self) -> Option<ServiceAccess> {
        match self {
            Environment::Local(e) => e.service_access(),
            Environment::Docker(e) => e.service_access(),
            Environment::External(_) => None,
        }
    }

    /// The app's processes as this machine sees them (its main process and the processes it
    /// started, the main one first), for a profiler (`run::profile`), or why there are none:
    /// the external backend's app is not ours to profile.
    pub async fn app_pids(&self) -> Result<Vec<u32>, String> {
        let pid = match self {
            Environment::Local(e) => e.app_pid().ok_or_else(|| "the app is not running".to_string())?,
            Environment::Docker(e) => e.app_pid().await?,
            Environment::External(_) => return Err("the app is not ours to profile (external backend)".into()),
        };
        let mut pids = resources::process_tree(pid);
        pids.retain(|p| *p != pid);
        pids.insert(0, pid);
        Ok(pids)
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
