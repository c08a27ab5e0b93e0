//! Shared pieces of the GitHub tests: fixtures, a context pointed at a local wiremock server,
//! and a responder that records when each request arrived.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use perf::github::{GithubContext, RetryPolicy};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

/// A token shaped like a real installation token; every test checks it never leaks.
pub const TOKEN: &str = "ghs_Zq3TESTtokenNEVERprintMe0123456789";

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/github").join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A JSON response with a fixture body, as GitHub sends it.
pub fn json_response(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json; charset=utf-8")
}

/// Retries that keep tests quick: tiny backoff, rate-limit waits up to 5 s.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_rate_limit_wait: Duration::from_secs(5),
        budget: Duration::from_secs(20),
    }
}

/// The environment of a `pull_request` job on acme/shop #7, with the API at `api_url`.
pub fn pr_env(api_url: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (k, v) in [
        ("GITHUB_TOKEN", TOKEN.to_owned()),
        ("GITHUB_REPOSITORY", "acme/shop".to_owned()),
        ("GITHUB_API_URL", api_url.to_owned()),
        ("GITHUB_EVENT_NAME", "pull_request".to_owned()),
        ("GITHUB_EVENT_PATH", fixture_path("event_pull_request.json").display().to_string()),
        ("GITHUB_ACTIONS", "true".to_owned()),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}

pub fn ctx_from(env: &HashMap<String, String>) -> GithubContext {
    let mut ctx = GithubContext::from_env(|k| env.get(k).cloned()).expect("context from test env");
    ctx.retry = quick_retry();
    ctx
}

/// Context for a pull-request job whose API is the mock server.
pub fn pr_ctx(server: &MockServer) -> GithubContext {
    ctx_from(&pr_env(&server.uri()))
}

/// Serves `responses` in order (the last one repeats) and records when each request came.
#[derive(Clone)]
pub struct Sequence {
    responses: Arc<Vec<ResponseTemplate>>,
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Sequence {
    pub fn new(responses: Vec<ResponseTemplate>) -> Sequence {
        assert!(!responses.is_empty());
        Sequence { responses: Arc::new(responses), arrivals: Arc::default() }
    }

    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

impl Respond for Sequence {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(Instant::now());
        let i = (arrivals.len() - 1).min(self.responses.len() - 1);
        self.responses[i].clone()
    }
}

/// Requests the server received for `method` on `path`.
pub async fn requests_to(server: &MockServer, method: &str, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.url.path() == path)
        .collect()
}

/// The bearer header every API request must carry.
pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}
