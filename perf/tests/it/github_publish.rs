//! `publish`: job summary always, comment when asked, failures as warnings only.

use crate::github_support::*;
use perf::github::{COMMENT_MARKER, CommentStatus, PublishOptions, comment_body, publish};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

const COMMENTS: &str = "/repos/acme/shop/issues/7/comments";
const REPORT: &str = "## Perf gate: regression\n\n`GET /products` p95 +31% (12.1 ms → 15.9 ms)\n";

fn with_summary(server: &MockServer, summary: &std::path::Path) -> perf::github::GithubContext {
    let mut env = pr_env(&server.uri());
    env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
    ctx_from(&env)
}

#[tokio::test]
async fn forbidden_comment_falls_back_to_the_job_summary() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(COMMENTS)).respond_with(json_response(200, "issue_comments_page1.json")).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(json_response(403, "error_403_integration.json"))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    std::fs::write(&summary, "## Build\nok\n").unwrap();

    let report = publish(&with_summary(&server, &summary), REPORT, PublishOptions { comment: true, dry_run: false }).await;

    assert!(matches!(report.comment, CommentStatus::Failed { forbidden: true, .. }), "{:?}", report.comment);
    assert_eq!(report.step_summary.as_deref(), Some(summary.as_path()));
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), format!("## Build\nok\n{REPORT}\n"));
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let warning = &report.warnings[0];
    assert!(warning.contains("Resource not accessible by integration"), "{warning}");
    assert!(warning.contains("the report is in the job summary"), "{warning}");
    assert!(warning.contains("perf-comment workflow"), "{warning}");
}

#[tokio::test]
async fn github_down_is_a_warning_not_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(COMMENTS)).respond_with(json_response(503, "error_500.json")).expect(4).mount(&server).await;

    let report = publish(&pr_ctx(&server), REPORT, PublishOptions { comment: true, dry_run: false }).await;
    assert!(matches!(report.comment, CommentStatus::Failed { forbidden: false, .. }), "{:?}", report.comment);
    assert!(report.warnings[0].contains("status 503"), "{:?}", report.warnings);
    assert!(report.warnings[0].contains("the report is in the results directory"), "{:?}", report.warnings);
}

#[tokio::test]
async fn posts_when_asked_and_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(COMMENTS)).respond_with(json_response(200, "issue_comments_page1.json")).mount(&server).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(json_response(201, "issue_comment_created.json"))
        .expect(1)
        .mount(&server)
        .await;

    let report = publish(&pr_ctx(&server), REPORT, PublishOptions { comment: true, dry_run: false }).await;
    assert!(matches!(report.comment, CommentStatus::Posted(_)), "{:?}", report.comment);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[tokio::test]
async fn summary_is_written_even_when_no_comment_is_asked() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");

    let report = publish(&with_summary(&server, &summary), REPORT, PublishOptions::default()).await;
    assert_eq!(report.comment, CommentStatus::NotRequested);
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), format!("{REPORT}\n"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn dry_run_returns_the_exact_body_and_posts_nothing() {
    let server = MockServer::start().await;
    let report = publish(&pr_ctx(&server), REPORT, PublishOptions { comment: true, dry_run: true }).await;
    let body = report.dry_run_body().expect("dry run body");
    assert_eq!(body, comment_body(REPORT));
    assert!(body.starts_with(COMMENT_MARKER));
    assert!(server.received_requests().await.unwrap().is_empty(), "a dry run sent requests");
}

#[tokio::test]
async fn dry_run_works_on_a_laptop_with_no_github_variables() {
    let ctx = perf::github::GithubContext::from_env(|_| None).unwrap();
    let report = publish(&ctx, REPORT, PublishOptions { comment: true, dry_run: true }).await;
    assert!(report.dry_run_body().unwrap().starts_with(COMMENT_MARKER));
    assert!(report.warnings.is_empty());
}

#[tokio::test]
async fn no_pull_request_means_skipped_with_a_warning() {
    let server = MockServer::start().await;
    let mut env = pr_env(&server.uri());
    env.insert("GITHUB_EVENT_NAME".into(), "schedule".into());
    env.insert("GITHUB_EVENT_PATH".into(), fixture_path("event_schedule.json").display().to_string());

    let report = publish(&ctx_from(&env), REPORT, PublishOptions { comment: true, dry_run: false }).await;
    assert!(matches!(report.comment, CommentStatus::Skipped { .. }), "{:?}", report.comment);
    assert!(report.warnings[0].contains("GITHUB_EVENT_NAME: schedule"), "{:?}", report.warnings);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unwritable_summary_is_a_warning() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("no-such-dir").join("step_summary.md");
    let report = publish(&with_summary(&server, &summary), REPORT, PublishOptions::default()).await;
    assert_eq!(report.step_summary, None);
    assert!(report.warnings[0].starts_with("cannot write the job summary"), "{:?}", report.warnings);
}
