//! Child processes and readiness waits shared by the backends.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::EnvError;

/// Polls `url` until it answers 200, the timeout passes, or `cancel` fires. `log_tail` is
/// called on failure to put the end of the service's log into the error, and may report that
/// the service has exited (an `Err`), which ends the wait at once.
pub async fn wait_http_ok(
    service: &'static str,
    url: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    mut log_tail: impl FnMut() -> Result<String, EnvError>,
) -> Result<(), EnvError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| EnvError::Other(format!("http client: {e}")))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match client.get(url).send().await {
            Ok(resp) if resp.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                format!("GET {url} answered {status}: {}", body.chars().take(300).collect::<String>())
            }
            Err(e) => format!("GET {url}: {}", error_chain(&e)),
        };
        let tail = log_tail()?;
        if tokio::time::Instant::now() >= deadline {
            return Err(EnvError::NotReady { service, timeout, detail: last, log_tail: tail });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(EnvError::Interrupted),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}
