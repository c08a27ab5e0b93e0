//! GitHub: the sticky pull-request comment, the job summary, the baseline from the nightly run.
//!
//! This is the part of the orchestration layer that talks to GitHub, through octocrab:
//!
//! - [`GithubContext::from_env`] reads what Actions tells a job (`GITHUB_TOKEN`,
//!   `GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_GRAPHQL_URL`, the event payload...).
//! - [`publish`] appends the report to the job summary and creates or updates one pull-request
//!   comment ([`upsert_comment`]), found by [`COMMENT_MARKER`] and its author: the token's own
//!   identity (GraphQL's `viewer`), so a marker someone else pasted is never edited. It never
//!   fails: problems come back as warnings, because a comment that cannot be posted must not
//!   change the verdict.
//! - [`download_baseline_artifact`] fetches the nightly run's summaries to compare against.
//! - [`write_pr_number`] / [`read_pr_number`] carry a fork pull request's number to the trusted
//!   `workflow_run` job that comments for it.
//!
//! Every API call goes through one retry loop (see [`RetryPolicy`]). The token lives in a
//! `secrecy::SecretString` and is never formatted into any message.

mod artifact;
mod client;
mod comment;
mod context;
mod error;
mod pr_number;
mod publish;
mod retry;

pub use artifact::{download_baseline_artifact, unpack_zip};
pub use comment::{COMMENT_MARKER, COMMENT_MAX_CHARS, CommentOutcome, comment_body, pull_request_head_sha, upsert_comment};
pub use context::{DEFAULT_API_URL, GithubContext, RepoSlug};
pub use error::GithubError;
pub use pr_number::{PR_NUMBER_FILE, parse_pr_number, read_pr_number, write_pr_number};
pub use publish::{CommentStatus, PublishOptions, PublishReport, STEP_SUMMARY_MAX_BYTES, append_step_summary, publish};
pub use retry::RetryPolicy;

/// The artifact the nightly workflow uploads and pull requests compare against.
pub const BASELINE_ARTIFACT: &str = "perf-baseline";

/// The nightly workflow's file name, whose runs carry [`BASELINE_ARTIFACT`].
pub const NIGHTLY_WORKFLOW: &str = "perf-nightly.yml";
