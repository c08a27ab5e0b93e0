//! Waiting for a container to be ready: a probe that is right for its image (a real
//! PostgreSQL `SELECT 1`, a Redis `PING`: [`super::postgres`], [`super::redis`]), through the
//! port published on 127.0.0.1, until it answers, the container stops or the time is up.
//!
//! Log lines are not trusted: the official PostgreSQL image prints "ready to accept
//! connections" twice, the first time for the temporary server it runs during initialisation
//! (which listens on no TCP port). And a TCP connect alone proves nothing either: the engine's
//! port proxy accepts connections before anything listens inside the container.

use std::future::Future;
use std::time::Duration;

use testcontainers::bollard::Docker;
use tokio_util::sync::CancellationToken;

use super::engine;
use crate::env::error::EnvError;

/// How long one probe may take before it counts as a failed attempt.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
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
