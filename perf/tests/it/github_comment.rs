//! The sticky comment against a local fake GitHub (wiremock) serving real payload shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::github_support::*;
use perf::github::{COMMENT_MARKER, CommentOutcome, GithubError, comment_body, upsert_comment};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const COMMENTS: &str = "/repos/acme/shop/issues/7/comments";
const REPORT: &str = "## Perf gate: pass\n\n| suite | endpoint | p95 base | p95 head | change |\n";

/// The one GraphQL query the comment sends: who the token is.
fn viewer_query(at: &str) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(at))
        .and(header("authorization", bearer().as_str()))
        .and(body_json(serde_json::json!({ "query": "query { viewer { login } }" })))
}

/// Matches the GET of the first page of comments.
fn first_page() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("page"))
        .and(header("authorization", bearer().as_str()))
}

#[tokio::test]
async fn creates_the_comment_when_none_carries_the_marker() {
    let server = MockServer::start().await;
    first_page().respond_with(json_response(200, "issue_comments_page1.json")).expect(1).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .and(header("authorization", bearer().as_str()))
        .and(body_json(serde_json::json!({ "body": comment_body(REPORT) })))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;
    // No update of any existing comment.
    Mock::given(method("POST"))
        .and(path("/repos/acme/shop/issues/comments/2210000104"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    // No marked comment: no need to ask who the token is.
    Mock::given(method("POST")).and(path("/graphql")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;

    let outcome = upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("comment created");
    assert_eq!(
        outcome,
        CommentOutcome::Created { id: 2210000199, url: "https://github.com/acme/shop/pull/7#issuecomment-2210000199".into() }
    );
}

#[tokio::test]
async fn updates_the_marked_comment_found_on_page_two() {
    let server = MockServer::start().await;
    let next = format!("{}{COMMENTS}?per_page=100&page=2", server.uri());
    let link = format!(r#"<{next}>; rel="next", <{next}>; rel="last""#);
    first_page()
        .respond_with(json_response(200, "issue_comments_page1.json").insert_header("link", link.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    // Page 2 must be authenticated too (on GitHub Enterprise a private repository needs it).
    let prev = format!("{}{COMMENTS}?per_page=100&page=1", server.uri());
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .and(query_param("page", "2"))
        .and(header("authorization", bearer().as_str()))
        .respond_with(
            json_response(200, "issue_comments_page2.json")
                .insert_header("link", format!(r#"<{prev}>; rel="prev", <{prev}>; rel="first""#).as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    // The marked comment is the bot's: the token is asked who it is, once.
    viewer_query("/graphql").respond_with(json_response(200, "graphql_viewer_actions.json")).expect(1).mount(&server).await;
    // octocrab 0.54 sends the update as POST (GitHub accepts POST for PATCH endpoints).
    Mock::given(method("POST"))
        .and(path("/repos/acme/shop/issues/comments/2210000104"))
        .and(body_json(serde_json::json!({ "body": comment_body(REPORT) })))
        .respond_with(json_response(200, "issue_comment_updated.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(COMMENTS)).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;

    let outcome = upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("comment updated");
    // Comment 2210000103 quotes the marker but does not start with it: not ours.
    assert!(matches!(outcome, CommentOutcome::Updated { id: 2210000104, .. }), "{outcome:?}");
}

/// Mounts the update of comment `id`, expected `times` times.
async fn mount_update(server: &MockServer, id: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path(format!("/repos/acme/shop/issues/comments/{id}")))
        .respond_with(json_response(200, "issue_comment_updated.json"))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_marked_comment_by_someone_else_is_never_edited() {
    // Comment 2210000106, by the user mallory-dev, starts with our marker; 2210000104 is the
    // bot's. The token is the GITHUB_TOKEN of Actions: github-actions[bot].
    let server = MockServer::start().await;
    first_page().respond_with(json_response(200, "issue_comments_planted.json")).expect(1).mount(&server).await;
    viewer_query("/graphql").respond_with(json_response(200, "graphql_viewer_actions.json")).expect(1).mount(&server).await;
    mount_update(&server, 2210000106, 0).await;
    mount_update(&server, 2210000104, 1).await;
    Mock::given(method("POST")).and(path(COMMENTS)).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;

    let outcome = upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("our comment updated");
    assert!(matches!(outcome, CommentOutcome::Updated { id: 2210000104, .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_personal_token_takes_only_its_own_comment() {
    // The same comments, a personal token of carol-maintainer: neither marked comment is hers,
    // so a new one is created and neither is edited.
    let server = MockServer::start().await;
    first_page().respond_with(json_response(200, "issue_comments_planted.json")).expect(1).mount(&server).await;
    viewer_query("/graphql").respond_with(json_response(200, "graphql_viewer_user.json")).expect(1).mount(&server).await;
    mount_update(&server, 2210000106, 0).await;
    mount_update(&server, 2210000104, 0).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .and(body_json(serde_json::json!({ "body": comment_body(REPORT) })))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;

    let outcome = upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("comment created");
    assert!(matches!(outcome, CommentOutcome::Created { id: 2210000199, .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_graphql_error_is_not_taken_for_an_identity() {
    // GitHub's GraphQL answers 200 with `errors` and no `data`: nothing is edited or created.
    let server = MockServer::start().await;
    first_page().respond_with(json_response(200, "issue_comments_planted.json")).mount(&server).await;
    let errors = serde_json::json!({ "errors": [{ "type": "RATE_LIMITED", "message": "API rate limit exceeded for installation ID 1." }] });
    viewer_query("/graphql").respond_with(ResponseTemplate::new(200).set_body_json(&errors)).expect(1).mount(&server).await;
    mount_update(&server, 2210000106, 0).await;
    mount_update(&server, 2210000104, 0).await;
    Mock::given(method("POST")).and(path(COMMENTS)).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;

    let err = upsert_comment(&pr_ctx(&server), 7, REPORT).await.unwrap_err();
    assert!(err.to_string().contains("API rate limit exceeded"), "{err}");
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    let listing = Sequence::new(vec![json_response(500, "error_500.json"), json_response(200, "issue_comments_page1.json")]);
    first_page().respond_with(listing.clone()).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;

    upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("comment created after a retry");
    assert_eq!(listing.arrivals().len(), 2, "one failed listing, one retry");
    assert_eq!(requests_to(&server, "GET", COMMENTS).await.len(), 2);
}

#[tokio::test]
async fn server_errors_give_up_after_the_attempt_limit() {
    let server = MockServer::start().await;
    first_page().respond_with(json_response(502, "error_500.json")).expect(4).mount(&server).await;

    let err = upsert_comment(&pr_ctx(&server), 7, REPORT).await.unwrap_err();
    assert!(matches!(err, GithubError::Api { status: 502, .. }), "{err:?}");
    assert!(err.to_string().contains("list comments failed with status 502"), "{err}");
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let server = MockServer::start().await;
    let listing = Sequence::new(vec![
        json_response(429, "error_429_secondary_rate_limit.json").insert_header("retry-after", "1"),
        json_response(200, "issue_comments_page1.json"),
    ]);
    first_page().respond_with(listing.clone()).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;

    upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("comment created after the wait");
    let arrivals = listing.arrivals();
    assert_eq!(arrivals.len(), 2);
    let gap = arrivals[1] - arrivals[0];
    assert!(gap >= Duration::from_secs(1), "second request came {gap:?} after the first, before retry-after");
}

#[tokio::test]
async fn a_403_with_an_exhausted_quota_waits_for_the_reset() {
    let server = MockServer::start().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let listing = Sequence::new(vec![
        json_response(403, "error_403_rate_limit.json")
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", (now + 1).to_string().as_str()),
        json_response(200, "issue_comments_page1.json"),
    ]);
    first_page().respond_with(listing.clone()).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;

    upsert_comment(&pr_ctx(&server), 7, REPORT).await.expect("comment created after the reset");
    let arrivals = listing.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(1), "retried before the reset");
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_budget_fails_at_once() {
    let server = MockServer::start().await;
    first_page()
        .respond_with(json_response(429, "error_429_secondary_rate_limit.json").insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;

    // One request, no hour-long sleep: the call comes back with the wait GitHub asked for.
    let err = upsert_comment(&pr_ctx(&server), 7, REPORT).await.unwrap_err();
    assert!(matches!(err, GithubError::RateLimited { wait, .. } if wait == Duration::from_secs(3600)), "{err:?}");
}

#[tokio::test]
async fn a_plain_403_is_forbidden_and_not_retried() {
    let server = MockServer::start().await;
    first_page().respond_with(json_response(200, "issue_comments_page1.json")).expect(1).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(json_response(403, "error_403_integration.json"))
        .expect(1)
        .mount(&server)
        .await;

    let err = upsert_comment(&pr_ctx(&server), 7, REPORT).await.unwrap_err();
    assert!(err.is_forbidden(), "{err:?}");
    assert!(err.to_string().contains("Resource not accessible by integration"), "{err}");
}

#[tokio::test]
async fn the_posted_body_starts_with_the_marker() {
    let server = MockServer::start().await;
    first_page().respond_with(json_response(200, "issue_comments_page1.json")).mount(&server).await;
    Mock::given(method("POST")).and(path(COMMENTS)).respond_with(json_response(201, "issue_comment_created.json")).mount(&server).await;

    upsert_comment(&pr_ctx(&server), 7, REPORT).await.unwrap();
    let posts = requests_to(&server, "POST", COMMENTS).await;
    let body: serde_json::Value = posts[0].body_json().unwrap();
    let text = body["body"].as_str().unwrap();
    assert!(text.starts_with(COMMENT_MARKER), "{text}");
    assert!(text.ends_with(REPORT));
}

#[tokio::test]
async fn github_enterprise_api_path_is_kept() {
    let server = MockServer::start().await;
    let mut env = pr_env(&format!("{}/api/v3/", server.uri()));
    env.insert("GITHUB_REPOSITORY".into(), "acme/shop".into());
    let ctx = ctx_from(&env);
    Mock::given(method("GET"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .and(header("authorization", bearer().as_str()))
        .respond_with(json_response(200, "issue_comments_page1.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;

    upsert_comment(&ctx, 7, REPORT).await.expect("comment created on the enterprise path");
}

#[tokio::test]
async fn github_enterprise_answers_graphql_beside_the_rest_api() {
    // REST under /api/v3, GraphQL at /api/graphql (no GITHUB_GRAPHQL_URL: derived).
    let server = MockServer::start().await;
    let ctx = ctx_from(&pr_env(&format!("{}/api/v3", server.uri())));
    Mock::given(method("GET"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .respond_with(json_response(200, "issue_comments_planted.json"))
        .expect(1)
        .mount(&server)
        .await;
    viewer_query("/api/graphql").respond_with(json_response(200, "graphql_viewer_actions.json")).expect(1).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/acme/shop/issues/comments/2210000104"))
        .respond_with(json_response(200, "issue_comment_updated.json"))
        .expect(1)
        .mount(&server)
        .await;

    let outcome = upsert_comment(&ctx, 7, REPORT).await.expect("our comment updated on the enterprise path");
    assert!(matches!(outcome, CommentOutcome::Updated { id: 2210000104, .. }), "{outcome:?}");
}
