//! Readiness that is right for each image: a real PostgreSQL connection running `SELECT 1`
//! and a Redis `PING`, both through the port published on 127.0.0.1.
//!
//! Log lines are not trusted: the official PostgreSQL image prints "ready to accept
//! connections" twice, the first time for the temporary server it runs during initialisation
//! (which listens on no TCP port). And a TCP connect alone proves nothing either: the engine's
//! port proxy accepts connections before anything listens inside the container.

use std::future::Future;
use std::time::Duration;

use testcontainers::bollard::Docker;
use tokio_util::sync::CancellationToken;

use super::super::EnvError;
use super::engine;

/// How long one probe may take before it counts as a failed attempt.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between attempts.
const POLL: Duration = Duration::from_millis(200);
/// Lines of a container's log put into an error.
pub const TAIL_LINES: usize = 40;

/// Probes until `probe` succeeds, the container stops (an `Exited` error with its log tail),
/// `timeout` passes (a `NotReady` error with the last probe error and the log tail) or
/// `cancel` fires (`Interrupted`).
pub async fn wait_ready<F, Fut>(
    docker: &Docker,
    container: &str,
    service: &'static str,
    timeout: Duration,
    cancel: &CancellationToken,
    mut probe: F,
) -> Result<(), EnvError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return Err(EnvError::Interrupted),
            r = tokio::time::timeout(PROBE_TIMEOUT, probe()) => r,
        };
        let last = match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
        };
        if let Some(status) = engine::stopped_state(docker, container).await? {
            let log_tail = engine::log_tail(docker, container, TAIL_LINES).await;
            return Err(EnvError::Exited { service, status, log_tail });
        }
        if tokio::time::Instant::now() >= deadline {
            let log_tail = engine::log_tail(docker, container, TAIL_LINES).await;
            return Err(EnvError::NotReady { service, timeout, detail: last, log_tail });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(EnvError::Interrupted),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Connects to PostgreSQL on 127.0.0.1:`port` with the password and runs `SELECT 1`.
/// The error never contains the password (tokio-postgres does not print it).
pub async fn postgres_answers(port: u16, user: &str, password: &str, database: &str) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname(database)
        .connect_timeout(PROBE_TIMEOUT);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to postgres on 127.0.0.1:{port}: {}", super::super::procs::error_chain(&e)))?;
    let driver = tokio::spawn(connection);
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| format!("SELECT 1 on 127.0.0.1:{port}: {}", super::super::procs::error_chain(&e)));
    drop(client);
    driver.abort();
    result
}

/// Sends `PING` to Redis on 127.0.0.1:`port` and expects `PONG`.
pub async fn redis_answers(port: u16) -> Result<(), String> {
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str()).map_err(|e| format!("{url}: {e}"))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("PING {url}: {e}"))?;
    if pong == "PONG" { Ok(()) } else { Err(format!("PING {url} answered {pong:?}")) }
}
