//! What every backend shares: which backend ran, how to reach the services it started, the
//! options a start is given, and a service's resource sample.

use std::fmt;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::plan::Service;

/// How to reach one service, for people: never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub service: Service,
    /// `http://127.0.0.1:PORT`, `postgres://user@127.0.0.1:PORT/db`, `redis://127.0.0.1:PORT`.
    pub url: String,
}

/// How the gate itself reaches the databases it started (published ports on loopback), to
/// read their statistics beside the load. A service the run did not start is `None` (see
/// `plan::EnvironmentSetup::starts`): its statistics say "not started", they do not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccess {
    pub postgres: Option<PostgresAccess>,
    /// Redis's port on 127.0.0.1.
    pub redis_port: Option<u16>,
}

/// How the gate connects to the PostgreSQL it started. Holds the password: never printed
/// (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresAccess {
    /// On 127.0.0.1.
    pub port: u16,
    pub user: String,
    /// `None`: trust on loopback (the local backend).
    pub password: Option<String>,
    pub database: String,
}

impl fmt::Debug for PostgresAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresAccess")
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("database", &self.database)
            .finish()
    }
}

/// Server settings both backends give PostgreSQL: `pg_stat_statements` loaded, so the gate
/// can say which statements got slower; utility statements (BEGIN, SET) left out of it.
pub const POSTGRES_STATEMENT_SETTINGS: [(&str, &str); 3] =
    [("shared_preload_libraries", "pg_stat_statements"), ("pg_stat_statements.track_utility", "off"), ("pg_stat_statements.max", "1000")];

/// Durability settings both backends give PostgreSQL: its data is thrown away after the run,
/// so a commit does not wait for the disk. With `fsync` on, the write endpoints' tails are the
/// runner's disk: measured in Docker (a volume on overlay storage), `book` p99 23 ms and its
/// slowest request 100 ms against 2.5 ms at p50, and an A/A of the same code moved that p99 by
/// up to 1000%; the local backend, without fsync, had p99 under 4 ms.
pub const POSTGRES_DURABILITY_SETTINGS: [(&str, &str); 3] = [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off")];

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
    /// Put a [`FaultProxy`](crate::faults::FaultProxy) between the app and PostgreSQL and between the app and Redis (the
    /// app's `{{postgres.url}}`, `{{redis.url}}` and their hosts and ports name the proxies), so chaos suites can
    /// set network faults; only in front of the services the plan starts. Off for measured suites: a proxy adds its
    /// own hop, which a measured suite takes only to model the link to the databases the plan asks for (`Setup`'s
    /// `environment.link`: then the backends put the proxies in whatever this says, and faults come on top of the link).
    pub fault_proxies: bool,
    /// Environment added to the local backend's build step and its `cargo metadata` call
    /// (A/B mode builds the base in a target folder of its own).
    pub build_env: Vec<(String, String)>,
    /// Where a start-up that takes a while says what it waits for.
    pub notes: crate::util::Notes,
}

/// Resource use of one service since the environment started (cumulative CPU) and now
/// (memory). Summaries hold the difference over a suite.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSample {
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
}
