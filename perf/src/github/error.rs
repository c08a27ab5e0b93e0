//! The one error type of the GitHub module.
//!
//! Messages are built only from things that are safe to print: environment variable *names*,
//! file paths, HTTP statuses and the `message` GitHub puts in its error bodies. The token is
//! never part of any variant, so no `Display` or `Debug` of an error can leak it.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to GitHub or reading what GitHub Actions hands us.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// A variable the operation needs is absent (for example `GITHUB_TOKEN` outside Actions).
    #[error("{name} is not set: {needed_for}")]
    MissingEnv { name: &'static str, needed_for: &'static str },

    /// A variable is present but malformed.
    #[error("{name} is invalid: {reason}")]
    InvalidEnv { name: &'static str, reason: String },

    /// The event payload file named by `GITHUB_EVENT_PATH` could not be read.
    #[error("cannot read event payload {}: {source}", path.display())]
    EventRead { path: PathBuf, source: std::io::Error },

    /// The event payload is not the JSON we expected; names the file, line, column and field.
    #[error("bad event payload {} line {line} column {column} field `{field}`: {message}", path.display())]
    EventPayload { path: PathBuf, line: usize, column: usize, field: String, message: String },

    /// A pull-request number that is not a plain positive decimal number.
    #[error("invalid pull request number {value:?} from {origin}: expected 1 to 10 decimal digits, not zero")]
    InvalidPrNumber { value: String, origin: String },

    /// The token may not do this: a fork's read-only token, or missing `pull-requests: write`.
    #[error("github refused {operation} (403 forbidden): {message}")]
    Forbidden { operation: &'static str, message: String },

    /// Rate limited, and waiting as GitHub asks would go beyond the retry budget.
    #[error("github rate limit hit during {operation}: github asks to wait {}, beyond the retry budget", humantime::format_duration(*wait))]
    RateLimited { operation: &'static str, wait: Duration },

    /// Any other answer from GitHub that is not a success, after retries where they apply.
    #[error("github {operation} failed with status {status}: {message}")]
    Api { operation: &'static str, status: u16, message: String },

    /// No answer at all (connection refused, timeout, TLS), after retries.
    #[error("github {operation} failed: {message}")]
    Transport { operation: &'static str, message: String },

    /// The response arrived but its content is not what the operation expects.
    #[error("github {operation} returned an unexpected response: {message}")]
    Unexpected { operation: &'static str, message: String },

    /// No successful scheduled run of the workflow on the branch carries the artifact.
    #[error(
        "no successful scheduled run of {workflow} on branch {branch} has an unexpired artifact named {artifact} (looked at {runs_checked} runs)"
    )]
    ArtifactNotFound { workflow: String, branch: String, artifact: String, runs_checked: usize },

    /// The artifact's zip holds an entry we refuse to unpack.
    #[error("artifact {artifact} holds an unsafe entry {entry:?}: {reason}")]
    UnsafeArchive { artifact: String, entry: String, reason: &'static str },

    /// The artifact is not a readable zip, or holds no summaries.
    #[error("artifact {artifact} is unusable: {message}")]
    BadArchive { artifact: String, message: String },

    /// A local file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

impl GithubError {
    /// True when GitHub said no because of permissions (the fork pull-request case).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, GithubError::Forbidden { .. })
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GithubError::Io { action, path: path.into(), source }
    }
}
