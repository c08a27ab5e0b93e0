//! The one sticky pull-request comment.
//!
//! The comment is found again by a hidden HTML marker at the start of its body, so every push
//! updates the same comment instead of adding one. Listing follows GitHub's `Link` headers: on
//! a busy pull request the marker may be on page 2 or later.
//!
//! The marker is plain text: anyone who can comment can paste it. So a marked comment is ours
//! only when its author is the token's own identity (GraphQL's `viewer`: `github-actions[bot]`
//! for the `GITHUB_TOKEN` of Actions, `NAME[bot]` for another GitHub App's token, the user for
//! a personal token); someone else's marked comment is never edited. Who the token is is asked
//! once, and only when a marked comment turns up, so a pull request without one costs no
//! extra request.

use octocrab::models::issues::Comment;
use serde::Deserialize;

use super::client::{client, graphql_client};
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

/// Creates the sticky comment on pull request `pr`, or updates ours: the oldest comment that
/// carries the marker and was written by the token's own identity ([`token_login`]).
///
/// Every request is retried on 5xx, rate limits and transport errors (see [`super::retry`]).
/// A create that GitHub answered with 5xx is retried too; should GitHub have stored it anyway,
/// the next run finds and updates the oldest of ours, so at most one stray copy remains.
pub async fn upsert_comment(ctx: &GithubContext, pr: u64, markdown: &str) -> Result<CommentOutcome, GithubError> {
    const NEED: &str = "needed to post the pull request comment";
    let repo = ctx.repo(NEED)?;
    let crab = client(ctx, NEED)?;
    let body = comment_body(markdown);
    let (crab, body) = (&crab, body.as_str());
    let (owner, name) = (repo.owner.as_str(), repo.name.as_str());

    match find_our_comment(ctx, crab, owner, name, pr).await? {
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

/// The login GitHub shows as the author of what this token writes: GraphQL's
/// `query { viewer { login } }`. `github-actions[bot]` for the `GITHUB_TOKEN` of Actions,
/// `NAME[bot]` for another GitHub App's installation token, the user's login for a personal
/// token. REST's `GET /user` would not do: it refuses installation tokens ("Resource not
/// accessible by integration"), and a token's `ghs_` prefix says an app, not which one.
pub(crate) async fn token_login(ctx: &GithubContext) -> Result<String, GithubError> {
    const NEED: &str = "needed to tell our pull request comment from others";
    const OPERATION: &str = "ask who the token is (graphql viewer)";
    let crab = graphql_client(ctx, NEED)?;
    let path = url::Url::parse(&ctx.graphql_url).map(|u| u.path().to_owned()).unwrap_or_else(|_| "/graphql".to_owned());
    let query = serde_json::json!({ "query": "query { viewer { login } }" });
    let (crab, path, query) = (&crab, path.as_str(), &query);
    let answer: octocrab::GraphqlResponse<ViewerData> =
        with_retry(ctx, OPERATION, move || async move { crab.post(path, Some(query)).await }).await?;
    match answer {
        octocrab::GraphqlResponse::Ok(ok) => Ok(ok.data.viewer.login),
        octocrab::GraphqlResponse::Err(e) => match e.data {
            Some(data) => Ok(data.viewer.login),
            None => Err(GithubError::Unexpected {
                operation: OPERATION,
                message: ctx.redact(&e.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")),
            }),
        },
    }
}

/// `data` of the `viewer` query.
#[derive(Deserialize)]
struct ViewerData {
    viewer: Viewer,
}

#[derive(Deserialize)]
struct Viewer {
    login: String,
}

/// The oldest comment that starts with the marker and was written by the token's identity,
/// reading pages until one is found. Marked comments by anyone else are left alone.
async fn find_our_comment(
    ctx: &GithubContext,
    crab: &octocrab::Octocrab,
    owner: &str,
    name: &str,
    pr: u64,
) -> Result<Option<Comment>, GithubError> {
    let mut us: Option<String> = None;
    let mut page =
        with_retry(ctx, "list comments", move || async move { crab.issues(owner, name).list_comments(pr).per_page(PER_PAGE).send().await })
            .await?;
    for _ in 0..MAX_PAGES {
        for comment in std::mem::take(&mut page.items) {
            if !is_marked(&comment) {
                continue;
            }
            if us.is_none() {
                us = Some(token_login(ctx).await?);
            }
            let us = us.as_deref().unwrap_or_default();
            if written_by(&comment, us) {
                return Ok(Some(comment));
            }
            tracing::warn!(
                "comment {} on pull request {pr} carries the perf-gate marker but was written by {}, not by {us}: left alone",
                comment.id,
                comment.user.login
            );
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
    tracing::warn!("no perf-gate comment of ours in the first {MAX_PAGES} pages of comments; creating one");
    Ok(None)
}

fn is_marked(comment: &Comment) -> bool {
    comment.body.as_deref().is_some_and(|b| b.trim_start().starts_with(COMMENT_MARKER))
}

/// True when `login` wrote the comment (GitHub logins are case-insensitive).
fn written_by(comment: &Comment, login: &str) -> bool {
    comment.user.login.eq_ignore_ascii_case(login)
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
