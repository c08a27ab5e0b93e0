//! Getting the report in front of people without ever touching the gate's verdict.
//!
//! [`publish`] cannot fail: the job summary is written when the runner gives us one, the
//! comment is posted when asked and possible, and anything that goes wrong (a fork's read-only
//! token, GitHub down, no pull request number) becomes a warning in the [`PublishReport`]
//! that the caller prints. The exit code stays the verdict of the comparison.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::comment::{CommentOutcome, comment_body, upsert_comment};
use super::context::GithubContext;
use super::error::GithubError;

/// GitHub refuses a job summary step larger than this many bytes.
pub const STEP_SUMMARY_MAX_BYTES: u64 = 1024 * 1024;

/// What [`publish`] should do besides the job summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Create or update the pull request comment.
    pub comment: bool,
    /// Do not post: return the exact comment body instead (job summary still written).
    pub dry_run: bool,
}

/// What happened to the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentStatus {
    /// `comment` was false.
    NotRequested,
    /// Dry run: this is the exact body that would have been posted, marker included.
    DryRun { body: String },
    /// Posted.
    Posted(CommentOutcome),
    /// Not attempted (no pull request, no token); the reason is also in the warnings.
    Skipped { reason: String },
    /// Attempted and failed; the reason is also in the warnings.
    Failed { reason: String, forbidden: bool },
}

/// Everything [`publish`] did, for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// The job summary file the Markdown was appended to.
    pub step_summary: Option<PathBuf>,
    pub comment: CommentStatus,
    /// Things that went wrong; print each as a warning. Never contain the token.
    pub warnings: Vec<String>,
}

impl PublishReport {
    /// The body a dry run would have posted.
    pub fn dry_run_body(&self) -> Option<&str> {
        match &self.comment {
            CommentStatus::DryRun { body } => Some(body),
            _ => None,
        }
    }
}

/// Appends `markdown` to the job summary when there is one, and posts or updates the sticky
/// comment when `options.comment` is set and a pull request number is known. Never fails.
pub async fn publish(ctx: &GithubContext, markdown: &str, options: PublishOptions) -> PublishReport {
    let mut warnings = Vec::new();
    let step_summary = match &ctx.step_summary {
        Some(path) => match append_step_summary(path, markdown) {
            Ok(()) => Some(path.clone()),
            Err(e) => {
                warnings.push(format!("cannot write the job summary: {e}"));
                None
            }
        },
        None => None,
    };
    let fallback = if step_summary.is_some() { "the report is in the job summary" } else { "the report is in the results directory" };

    let comment = if !options.comment {
        CommentStatus::NotRequested
    } else if options.dry_run {
        CommentStatus::DryRun { body: comment_body(markdown) }
    } else {
        match postable_pr(ctx) {
            Err(reason) => {
                warnings.push(format!("pull request comment skipped: {reason}; {fallback}"));
                CommentStatus::Skipped { reason }
            }
            Ok(pr) => post(ctx, pr, markdown, fallback, &mut warnings).await,
        }
    };
    PublishReport { step_summary, comment, warnings }
}

async fn post(ctx: &GithubContext, pr: u64, markdown: &str, fallback: &str, warnings: &mut Vec<String>) -> CommentStatus {
    match upsert_comment(ctx, pr, markdown).await {
        Ok(outcome) => CommentStatus::Posted(outcome),
        Err(e) => {
            let forbidden = e.is_forbidden();
            let reason = ctx.redact(&e.to_string());
            let hint = if forbidden {
                " (a pull request from a fork gets a read-only token: the perf-comment workflow posts its comment)"
            } else {
                ""
            };
            warnings.push(format!("cannot post the pull request comment: {reason}{hint}; {fallback}"));
            CommentStatus::Failed { reason, forbidden }
        }
    }
}

/// The pull request to comment on, or why a comment cannot be attempted.
fn postable_pr(ctx: &GithubContext) -> Result<u64, String> {
    let Some(pr) = ctx.pr_number else {
        let event = ctx.event_name.as_deref().unwrap_or("none");
        return Err(format!("no pull request number in the event (GITHUB_EVENT_NAME: {event})"));
    };
    if !ctx.has_token() {
        return Err("GITHUB_TOKEN is not set".into());
    }
    if ctx.repository.is_none() {
        return Err("GITHUB_REPOSITORY is not set".into());
    }
    Ok(pr)
}

/// Appends `markdown` and a newline, cut so the file stays under GitHub's 1 MiB step limit.
pub fn append_step_summary(path: &Path, markdown: &str) -> Result<(), GithubError> {
    let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let room = STEP_SUMMARY_MAX_BYTES.saturating_sub(existing) as usize;
    const NOTE: &str = "\n\n> [!NOTE]\n> Report cut to fit the 1 MiB job summary limit; see the results artifact.\n";
    let text = if markdown.len() < room {
        format!("{markdown}\n")
    } else {
        let mut cut = room.saturating_sub(NOTE.len() + 1);
        while cut > 0 && !markdown.is_char_boundary(cut) {
            cut -= 1;
        }
        let kept = &markdown[..cut];
        let kept = kept.rfind('\n').map_or(kept, |i| &kept[..i]);
        format!("{kept}{NOTE}")
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| GithubError::io("cannot open job summary", path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| GithubError::io("cannot append to job summary", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_summary_is_appended_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier step\n").unwrap();
        append_step_summary(&path, "## perf").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier step\n## perf\n");
    }

    #[test]
    fn step_summary_stays_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        let big = "ü row of a big table\n".repeat(70_000);
        append_step_summary(&path, &big).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= STEP_SUMMARY_MAX_BYTES, "{len}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("1 MiB job summary limit"));
    }
}
