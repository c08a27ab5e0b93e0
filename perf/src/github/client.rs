//! Building the octocrab client from a [`GithubContext`].

use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;

use super::context::GithubContext;
use super::error::GithubError;

/// An authenticated client for `ctx.api_url`.
///
/// octocrab's own retries are off: [`super::retry::with_retry`] owns retrying, so every
/// request the tests count is one we decided to send. Timeouts bound a silent server.
pub(crate) fn client(ctx: &GithubContext, needed_for: &'static str) -> Result<Octocrab, GithubError> {
    client_at(ctx, "GITHUB_API_URL", &ctx.api_url, needed_for)
}

/// An authenticated client for `ctx.graphql_url`; post to the URL's own path. (octocrab puts
/// its base URL's path in front of any path that does not start with it, so a client for
/// `https://ghe.example.com/api/v3` could not reach `/api/graphql`.)
pub(crate) fn graphql_client(ctx: &GithubContext, needed_for: &'static str) -> Result<Octocrab, GithubError> {
    client_at(ctx, "GITHUB_GRAPHQL_URL", &ctx.graphql_url, needed_for)
}

/// An authenticated client for `base`, which the variable `variable` gave.
fn client_at(ctx: &GithubContext, variable: &'static str, base: &str, needed_for: &'static str) -> Result<Octocrab, GithubError> {
    let token = ctx.token(needed_for)?.clone();
    let invalid = |e: octocrab::Error| GithubError::InvalidEnv { name: variable, reason: e.to_string() };
    Octocrab::builder()
        .base_uri(base)
        .map_err(invalid)?
        .personal_token(token)
        .add_retry_config(RetryConfig::None)
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(60)))
        .set_write_timeout(Some(Duration::from_secs(60)))
        .build()
        .map_err(|e| GithubError::Transport { operation: "client setup", message: e.to_string() })
}
