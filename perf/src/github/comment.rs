//! The one sticky pull-request comment.
//!
//! The comment is found again by a hidden HTML marker at the start of its body, so every push
//! updates the same comment instead of adding one. Listing follows GitHub's `Link` headers: on
//! a busy pull request the marker may be on page 2 or later.

use octocrab::models::issues::Comment;

use super::client::client;
use super::context::GithubContext;
use super::error::GithubError;
use super::retry::with_retry;

/// Hidden marker that starts the gate's comment; GitHub renders HTML comments as nothing.
pub const COMMENT_MARKER: &str = "<!-- perf-gate:report -->";

/// GitHub rejects comment bodies longer than this many characters.
pub const COMMENT_MAX_CHARS: usize = 65_536;

/// Comments per page when listing (GitHub's maximum).
const PER_PAGE: u8 = 100;

/// Pages read at most while looking for the marker: 10,000 comments, and then we stop.
const MAX_PAGES: usize = 100;

/// What [`upsert_comment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    /// No comment carried the marker; a new one was created.
    Created { id: u64, url: String },
    /// The comment carrying the marker was updated in place.
    Updated { id: u64, url: String },
}

impl CommentOutcome {
    /// The comment's web address.
    pub fn url(&self) -> &str {
        match self {
            CommentOutcome::Created { url, .. } | CommentOutcome::Updated { url, .. } => url,
        }
    }
}

/// The exact body posted for `markdown`: the marker, then the report, cut to GitHub's limit.
///
/// A report that is too long is cut at a line boundary, an open code fence is closed, and a
/// note says how much was left out and where the full report is. A marker already at the start
/// of `markdown` is not doubled.
pub fn comment_body(markdown: &str) -> String {
    let markdown = markdown.strip_prefix(COMMENT_MARKER).map_or(markdown, |m| m.trim_start_matches('\n'));
    let head = format!("{COMMENT_MARKER}\n");
    let total = markdown.chars().count();
    if head.chars().count() + total <= COMMENT_MAX_CHARS {
        return head + markdown;
    }
    let note = |shown: usize| {
        format!(
            "\n\n> [!NOTE]\n> This report was cut to fit GitHub's {COMMENT_MAX_CHARS}-character comment limit \
             ({shown} of {total} characters shown). The full report is in the job summary and in the \
             results artifact.\n"
        )
    };
    // Room for the head, a closing fence and the note (its numbers at their widest).
    let reserve = head.chars().count() + "\n```".len() + note(total).chars().count();
    let budget = COMMENT_MAX_CHARS.saturating_sub(reserve);
    let cut = markdown.char_indices().nth(budget).map_or(markdown.len(), |(i, _)| i);
    let mut kept = &markdown[..cut];
    if let Some(newline) = kept.rfind('\n') {
        kept = &kept[..newline];
    }
    let mut body = head + kept;
    let fences = kept.lines().filter(|l| l.trim_start().starts_with("```")).count();
    if fences % 2 == 1 {
        body.push_str("\n```");
    }
    body.push_str(&note(kept.chars().count()));
    body
}

/// Creates the sticky comment on pull request `pr`, or updates it when one carries the marker.
///
/// Every request is retried on 5xx, rate limits and transport errors (see [`super::retry`]).
/// A create that GitHub answered with 5xx is retried too; should GitHub have stored it anyway,
/// the next run finds and updates the oldest marked comment, so at most one stray copy remains.
pub async fn upsert_comment(ctx: &GithubContext, pr: u64, markdown: &str) -> Result<CommentOutcome, GithubError> {
    const NEED: &str = "needed to post the pull request comment";
    let repo = ctx.repo(NEED)?;
    let crab = client(ctx, NEED)?;
    let body = comment_body(markdown);
    let (crab, body) = (&crab, body.as_str());
    let (owner, name) = (repo.owner.as_str(), repo.name.as_str());

    match find_marked_comment(ctx, crab, owner, name, pr).await? {
        Some(existing) => {
            let id = existing.id;
            let updated =
                with_retry(ctx, "update comment", move || async move { crab.issues(owner, name).update_comment(id, body).await }).await?;
            Ok(CommentOutcome::Updated { id: updated.id.0, url: updated.html_url.to_string() })
        }
        None => {
            let created =
                with_retry(ctx, "create comment", move || async move { crab.issues(owner, name).create_comment(pr, body).await }).await?;
            Ok(CommentOutcome::Created { id: created.id.0, url: created.html_url.to_string() })
        }
    }
}

/// The commit pull request `pr` points at now. The `workflow_run` job compares it with the
/// commit it was triggered for, so a number taken from an untrusted artifact cannot steer the
/// comment onto some other pull request.
pub async fn pull_request_head_sha(ctx: &GithubContext, pr: u64) -> Result<String, GithubError> {
    const NEED: &str = "needed to check the pull request";
    let repo = ctx.repo(NEED)?;
    let crab = client(ctx, NEED)?;
    let (crab, owner, name) = (&crab, repo.owner.as_str(), repo.name.as_str());
    let pull = with_retry(ctx, "get pull request", move || async move { crab.pulls(owner, name).get(pr).await }).await?;
    Ok(pull.head.sha)
}

/// The oldest comment whose body starts with the marker, reading pages until one is found.
async fn find_marked_comment(
    ctx: &GithubContext,
    crab: &octocrab::Octocrab,
    owner: &str,
    name: &str,
    pr: u64,
) -> Result<Option<Comment>, GithubError> {
    let mut page =
        with_retry(ctx, "list comments", move || async move { crab.issues(owner, name).list_comments(pr).per_page(PER_PAGE).send().await })
            .await?;
    for _ in 0..MAX_PAGES {
        if let Some(found) = page.items.iter().position(is_marked) {
            return Ok(Some(page.items.swap_remove(found)));
        }
        let Some(next) = page.next.take() else {
            return Ok(None);
        };
        let next = Some(next);
        let following = with_retry(ctx, "list comments", || crab.get_page::<Comment>(&next)).await?;
        match following {
            Some(p) => page = p,
            None => return Ok(None),
        }
    }
    tracing::warn!("no perf-gate comment in the first {MAX_PAGES} pages of comments; creating one");
    Ok(None)
}

fn is_marked(comment: &Comment) -> bool {
    comment.body.as_deref().is_some_and(|b| b.trim_start().starts_with(COMMENT_MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_report_gets_the_marker_and_nothing_else() {
        assert_eq!(comment_body("## perf\nok\n"), format!("{COMMENT_MARKER}\n## perf\nok\n"));
    }

    #[test]
    fn marker_is_not_doubled() {
        let once = comment_body("hello");
        assert_eq!(comment_body(&once), once);
    }

    #[test]
    fn long_report_is_cut_to_the_limit_with_a_note_and_closed_fence() {
        let mut md = String::from("# report\n```text\n");
        while md.chars().count() < 100_000 {
            md.push_str("é line of a long code block\n");
        }
        let body = comment_body(&md);
        assert!(body.chars().count() <= COMMENT_MAX_CHARS, "{}", body.chars().count());
        assert!(body.starts_with(COMMENT_MARKER));
        assert!(body.contains("characters shown"));
        let fences = body.lines().filter(|l| l.starts_with("```")).count();
        assert_eq!(fences % 2, 0, "open code fence left in the comment");
        // The cut falls on a line boundary: the last kept line is whole.
        let before_fence = body.split("\n```\n").next().unwrap();
        assert!(before_fence.ends_with("é line of a long code block"), "{}", &before_fence[before_fence.len() - 40..]);
    }

    #[test]
    fn report_exactly_at_the_limit_is_not_cut() {
        let md = "a".repeat(COMMENT_MAX_CHARS - COMMENT_MARKER.len() - 1);
        let body = comment_body(&md);
        assert_eq!(body.chars().count(), COMMENT_MAX_CHARS);
        assert!(!body.contains("characters shown"));
    }
}
