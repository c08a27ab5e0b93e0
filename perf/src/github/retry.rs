//! Retrying GitHub API calls: server errors, rate limits and dropped connections.
//!
//! octocrab can retry on its own, but its policy retries server errors immediately (no
//! backoff) and waits as long as `x-ratelimit-reset` says, which can be most of an hour. A
//! perf gate must finish, so octocrab's retries are switched off (see `client.rs`) and this
//! loop does the job with exponential backoff for 5xx and transport errors, honours
//! `retry-after` / `x-ratelimit-reset` for rate limits, and is bounded both in attempts and in
//! total time: a wait that would overrun the budget is not started, the call fails at once.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::error::GithubError;

/// How API calls are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt after a 5xx or transport error; doubles each time.
    pub initial_backoff: Duration,
    /// Longest backoff between two attempts after a 5xx or transport error.
    pub max_backoff: Duration,
    /// Longest wait accepted from `retry-after` or `x-ratelimit-reset`.
    pub max_rate_limit_wait: Duration,
    /// Total time for one call, waits included; no wait starts that would overrun it.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, backoff 1 s then 2 s then 4 s, rate-limit waits up to 60 s, 2 minutes in all.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(60),
            budget: Duration::from_secs(120),
        }
    }
}

/// What to do with one failed attempt.
enum Verdict {
    /// Give up with this error.
    Fail(GithubError),
    /// Try again after `wait` (`None`: the backoff schedule decides); `error` is what the call
    /// returns if no attempt is left.
    Retry { wait: Option<Duration>, rate_limited: bool, error: GithubError },
}

/// What retrying needs from its caller: the policy, and how to mask secrets in messages.
/// [`GithubContext`](super::GithubContext) provides both.
pub(crate) trait RetryContext {
    fn retry_policy(&self) -> &RetryPolicy;
    /// `text` with every secret masked.
    fn redact(&self, text: &str) -> String;
}

/// Runs `call` until it succeeds, fails for good, or `ctx`'s retry policy's attempts or budget
/// run out. `operation` names the call in errors and logs ("list comments"). Error messages are
/// passed through [`RetryContext::redact`]: they quote GitHub, and we do not vouch for GitHub.
pub(crate) async fn with_retry<T, F, Fut>(ctx: &impl RetryContext, operation: &'static str, mut call: F) -> Result<T, GithubError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, octocrab::Error>>,
{
    let policy = ctx.retry_policy();
    let started = Instant::now();
    let mut backoff = policy.initial_backoff;
    let mut attempt = 1;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let (wait, rate_limited, error) = match classify(operation, &error) {
            Verdict::Fail(error) => return Err(redact(ctx, error)),
            Verdict::Retry { wait, rate_limited, error } => (wait, rate_limited, redact(ctx, error)),
        };
        if attempt >= policy.max_attempts.max(1) {
            return Err(error);
        }
        let wait = match wait {
            Some(asked) => asked,
            None => {
                let jittered = jitter(backoff);
                backoff = (backoff * 2).min(policy.max_backoff);
                jittered
            }
        };
        if rate_limited && wait > policy.max_rate_limit_wait || started.elapsed() + wait > policy.budget {
            return Err(if rate_limited { GithubError::RateLimited { operation, wait } } else { error });
        }
        tracing::warn!(
            "github {operation}: {error}; attempt {attempt} of {}, retrying in {}",
            policy.max_attempts,
            humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The error with the token masked in every message that quotes text from elsewhere.
fn redact(ctx: &impl RetryContext, error: GithubError) -> GithubError {
    match error {
        GithubError::Api { operation, status, message } => GithubError::Api { operation, status, message: ctx.redact(&message) },
        GithubError::Forbidden { operation, message } => GithubError::Forbidden { operation, message: ctx.redact(&message) },
        GithubError::Transport { operation, message } => GithubError::Transport { operation, message: ctx.redact(&message) },
        GithubError::Unexpected { operation, message } => GithubError::Unexpected { operation, message: ctx.redact(&message) },
        other => other,
    }
}

/// Sorts an octocrab error into retry-worthy or final, and turns it into our error.
fn classify(operation: &'static str, error: &octocrab::Error) -> Verdict {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let message = short(&source.message);
            let headers = source.headers.as_ref();
            let rate_limit_wait = headers.and_then(rate_limit_wait);
            let api = GithubError::Api { operation, status, message: message.clone() };
            match status {
                429 => Verdict::Retry { wait: rate_limit_wait, rate_limited: true, error: api },
                // A 403 is a rate limit only when GitHub says so in the headers; otherwise the
                // token may not do this (fork pull requests) and retrying cannot help.
                403 if rate_limit_wait.is_some() => Verdict::Retry { wait: rate_limit_wait, rate_limited: true, error: api },
                403 => Verdict::Fail(GithubError::Forbidden { operation, message }),
                500..=599 => Verdict::Retry { wait: None, rate_limited: false, error: api },
                _ => Verdict::Fail(api),
            }
        }
        // No response at all: the connection failed, was reset, or timed out.
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => Verdict::Retry {
            wait: None,
            rate_limited: false,
            error: GithubError::Transport { operation, message: short(&error.to_string()) },
        },
        // The response came but could not be decoded: retrying gets the same bytes.
        octocrab::Error::Serde { .. } | octocrab::Error::Json { .. } | octocrab::Error::InvalidUtf8 { .. } => {
            Verdict::Fail(GithubError::Unexpected { operation, message: short(&error.to_string()) })
        }
        _ => Verdict::Fail(GithubError::Transport { operation, message: short(&error.to_string()) }),
    }
}

/// The wait GitHub asks for: `retry-after` seconds, or until `x-ratelimit-reset` when
/// `x-ratelimit-remaining` is 0. `None` when the headers say nothing about rate limits.
pub(crate) fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    if number("x-ratelimit-remaining") == Some(0) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        // One extra second: the reset time is rounded down to whole seconds.
        let wait = number("x-ratelimit-reset").map_or(60, |reset| reset.saturating_sub(now) + 1);
        return Some(Duration::from_secs(wait));
    }
    None
}

/// Up to a quarter more than `d`, so parallel jobs do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 0.25)
}

/// First line of a message, at most 300 characters: GitHub error bodies can be long HTML.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn retry_after_wins_over_reset() {
        let h = headers(&[("retry-after", "7".into()), ("x-ratelimit-remaining", "0".into())]);
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(7)));
    }

    #[test]
    fn exhausted_quota_waits_until_reset() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let h = headers(&[("x-ratelimit-remaining", "0".into()), ("x-ratelimit-reset", (now + 30).to_string())]);
        let wait = rate_limit_wait(&h).unwrap();
        assert!((Duration::from_secs(29)..=Duration::from_secs(32)).contains(&wait), "{wait:?}");
    }

    #[test]
    fn remaining_quota_is_not_a_rate_limit() {
        let h = headers(&[("x-ratelimit-remaining", "4999".into()), ("x-ratelimit-reset", "1".into())]);
        assert_eq!(rate_limit_wait(&h), None);
    }

    #[test]
    fn short_keeps_the_first_line_only() {
        assert_eq!(short("Server Error\n<html>"), "Server Error");
        assert_eq!(short(&"x".repeat(400)).chars().count(), 301);
    }
}
