//! Reading the job's context: event payloads from fixtures, malformed variables and payloads,
//! and the pull-request number file handed from the pull-request run to the comment run.

use std::collections::HashMap;

use crate::github_support::*;
use perf::github::{GithubContext, GithubError, PR_NUMBER_FILE, read_pr_number, write_pr_number};

fn env_for(event: &str, file: &str) -> HashMap<String, String> {
    let mut env = pr_env("https://api.github.com");
    env.insert("GITHUB_EVENT_NAME".into(), event.into());
    env.insert("GITHUB_EVENT_PATH".into(), fixture_path(file).display().to_string());
    env
}

fn context(env: &HashMap<String, String>) -> Result<GithubContext, GithubError> {
    GithubContext::from_env(|k| env.get(k).cloned())
}

#[test]
fn pull_request_event_gives_number_and_head() {
    let ctx = context(&env_for("pull_request", "event_pull_request.json")).unwrap();
    assert_eq!(ctx.pr_number, Some(7));
    assert_eq!(ctx.head_sha.as_deref(), Some("9f0c2b7e4d1a6c3b8e5f2a7d0c9b4e1f6a3d8c52"));
    assert_eq!(ctx.repository.as_ref().unwrap().to_string(), "acme/shop");
    assert!(ctx.in_actions && ctx.has_token() && ctx.is_pull_request_event());
}

#[test]
fn workflow_run_of_a_fork_has_a_head_but_no_number() {
    let ctx = context(&env_for("workflow_run", "event_workflow_run_fork.json")).unwrap();
    assert_eq!(ctx.pr_number, None);
    assert_eq!(ctx.head_sha.as_deref(), Some("5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"));
}

#[test]
fn workflow_run_of_a_same_repository_pull_request_names_it() {
    let ctx = context(&env_for("workflow_run", "event_workflow_run_same_repo.json")).unwrap();
    assert_eq!(ctx.pr_number, Some(7));
}

#[test]
fn issue_comment_on_a_pull_request_names_it() {
    let ctx = context(&env_for("issue_comment", "event_issue_comment.json")).unwrap();
    assert_eq!(ctx.pr_number, Some(1));
}

#[test]
fn schedule_names_no_pull_request() {
    let ctx = context(&env_for("schedule", "event_schedule.json")).unwrap();
    assert_eq!(ctx.pr_number, None);
    assert_eq!(ctx.head_sha, None);
}

#[test]
fn nothing_set_is_a_laptop_not_an_error() {
    let ctx = GithubContext::from_env(|_| None).unwrap();
    assert_eq!(ctx.api_url, "https://api.github.com");
    assert!(ctx.repository.is_none() && ctx.pr_number.is_none() && !ctx.has_token() && !ctx.in_actions);
}

/// Writes `text` as the event payload and returns the error reading it as `event`.
fn payload_error(event: &str, text: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, text).unwrap();
    let mut env = pr_env("https://api.github.com");
    env.insert("GITHUB_EVENT_NAME".into(), event.into());
    env.insert("GITHUB_EVENT_PATH".into(), file.display().to_string());
    let err = context(&env).unwrap_err();
    assert!(matches!(err, GithubError::EventPayload { .. }), "{err:?}");
    (err.to_string(), file.display().to_string())
}

#[test]
fn wrong_type_names_file_line_and_field() {
    let text = "{\n  \"action\": \"opened\",\n  \"pull_request\": {\n    \"number\": \"7\",\n    \"head\": {\"sha\": \"abc\"}\n  }\n}\n";
    let (msg, file) = payload_error("pull_request", text);
    assert!(msg.contains(&file), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("field `pull_request.number`"), "{msg}");
    assert!(msg.contains("expected u64"), "{msg}");
}

#[test]
fn missing_field_names_its_parent() {
    let (msg, _) = payload_error("pull_request", "{\"pull_request\": {\"head\": {\"sha\": \"abc\"}}}");
    assert!(msg.contains("field `pull_request`"), "{msg}");
    assert!(msg.contains("missing field `number`"), "{msg}");
}

#[test]
fn truncated_payload_names_the_line() {
    let full = fixture("event_pull_request.json");
    let cut: String = full.lines().take(30).collect::<Vec<_>>().join("\n");
    let (msg, _) = payload_error("pull_request", &cut);
    assert!(msg.contains("line 30"), "{msg}");
    assert!(msg.contains("EOF"), "{msg}");
}

#[test]
fn unreadable_payload_names_the_file() {
    let mut env = pr_env("https://api.github.com");
    env.insert("GITHUB_EVENT_PATH".into(), "/nonexistent/event.json".into());
    let err = context(&env).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/event.json"), "{err}");
}

#[test]
fn malformed_variables_are_named() {
    for (name, value) in [
        ("GITHUB_REPOSITORY", "acme"),
        ("GITHUB_REPOSITORY", "acme/shop/../x"),
        ("GITHUB_API_URL", "api.github.com"),
        ("GITHUB_TOKEN", "two words"),
    ] {
        let mut env = pr_env("https://api.github.com");
        env.insert(name.into(), value.into());
        let err = context(&env).unwrap_err();
        assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
    }
}

#[test]
fn pr_number_file_round_trips_for_pull_requests_only() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let ctx = context(&env_for("pull_request", "event_pull_request.json")).unwrap();
    let written = write_pr_number(&results, &ctx).unwrap().expect("written on pull_request");
    assert_eq!(written, results.join(PR_NUMBER_FILE));
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "7\n");
    assert_eq!(read_pr_number(&results).unwrap(), 7);

    let other = tempfile::tempdir().unwrap();
    let nightly = context(&env_for("schedule", "event_schedule.json")).unwrap();
    assert_eq!(write_pr_number(other.path(), &nightly).unwrap(), None);
    assert!(!other.path().join(PR_NUMBER_FILE).exists());
}

#[test]
fn pr_number_file_from_an_untrusted_artifact_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["7; curl evil", "../8", "", "0", "00007", "7 7"] {
        std::fs::write(dir.path().join(PR_NUMBER_FILE), bad).unwrap();
        let err = read_pr_number(dir.path()).unwrap_err();
        assert!(matches!(err, GithubError::InvalidPrNumber { .. }), "{bad:?}: {err:?}");
    }
    std::fs::remove_file(dir.path().join(PR_NUMBER_FILE)).unwrap();
    assert!(read_pr_number(dir.path()).is_err(), "a missing file is an error");
}
