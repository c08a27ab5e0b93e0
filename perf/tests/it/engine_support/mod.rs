//! A small HTTP server for engine tests, on 127.0.0.1:0 in the test process, plus helpers to
//! compile plan text. Every route is cheap and deterministic except the ones meant to be slow.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use parking_lot::Mutex;
use perf::plan::{CompileOptions, Compiled, parse};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Shared state: what the server saw, and when it should stall.
#[derive(Default)]
pub struct Seen {
    pub requests: AtomicU64,
    /// Arrival instants of requests to `/ok` (bounded by the tests' short runs).
    pub arrivals: Mutex<Vec<Instant>>,
    /// Requests to `/stall` arriving in `[from, until)` are held until `until`.
    pub stall: Mutex<Option<(Instant, Instant)>>,
    next_id: AtomicU64,
}

pub struct TestServer {
    pub url: String,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ok(State(s): State<Arc<Seen>>) -> &'static str {
    s.requests.fetch_add(1, Ordering::Relaxed);
    s.arrivals.lock().push(Instant::now());
    "ok"
}

async fn login(State(s): State<Arc<Seen>>) -> Json<Value> {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    Json(json!({ "token": format!("tok-{n}") }))
}

async fn login_without_token(State(s): State<Arc<Seen>>) -> Json<Value> {
    s.requests.fetch_add(1, Ordering::Relaxed);
    Json(json!({ "user": "nobody" }))
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer tok-"))
}

async fn create(State(s): State<Arc<Seen>>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    s.requests.fetch_add(1, Ordering::Relaxed);
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "no token" })));
    }
    if body.get("name").and_then(Value::as_str) == Some("taken") {
        return (StatusCode::CONFLICT, Json(json!({ "error": "taken" })));
    }
    let id = 1000 + s.next_id.fetch_add(1, Ordering::Relaxed);
    (StatusCode::CREATED, Json(json!({ "id": id, "name": body.get("name") })))
}

async fn item(State(s): State<Arc<Seen>>, headers: HeaderMap, UrlPath(id): UrlPath<u64>) -> (StatusCode, String) {
    s.requests.fetch_add(1, Ordering::Relaxed);
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    if id >= 1000 { (StatusCode::OK, format!("item {id}")) } else { (StatusCode::NOT_FOUND, String::new()) }
}

async fn status(UrlPath(code): UrlPath<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

async fn slow(UrlPath(ms): UrlPath<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow"
}

async fn stall(State(s): State<Arc<Seen>>) -> &'static str {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let until = match *s.stall.lock() {
        Some((from, until)) if now >= from && now < until => Some(until),
        _ => None,
    };
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
    "ok"
}

/// Starts the server on 127.0.0.1:0; it stops when the value is dropped.
pub async fn start() -> TestServer {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/ok", get(ok))
        .route("/login", post(login))
        .route("/login-without-token", post(login_without_token))
        .route("/items", post(create))
        .route("/items/{id}", get(item))
        .route("/status/{code}", get(status))
        .route("/slow/{ms}", get(slow))
        .route("/stall", get(stall))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestServer { url, seen, task }
}

/// The plan header every test plan needs.
pub const HEADER: &str = r#"
version = 1
[app.local]
command = ["app"]
"#;

/// Compiles plan text (after [`HEADER`]) with default options.
pub fn compile(body: &str) -> Compiled {
    let text = format!("{HEADER}\n{body}");
    let lp = parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    lp.compile(&CompileOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the plan's first suite against `url` with progress off, bounded by `limit`.
pub async fn run(compiled: &Compiled, url: &str, limit: Duration) -> perf::engine::SuiteResult {
    let mut opts = perf::engine::RunOptions::new(url);
    opts.progress = perf::engine::ProgressMode::Off;
    run_with(compiled, opts, limit).await
}

pub async fn run_with(compiled: &Compiled, opts: perf::engine::RunOptions, limit: Duration) -> perf::engine::SuiteResult {
    tokio::time::timeout(limit, perf::engine::run_suite(compiled, &compiled.suites[0], opts))
        .await
        .expect("the run ends within its bound")
        .expect("the run starts")
}

/// The endpoint named `name` in a result.
pub fn endpoint<'a>(r: &'a perf::engine::SuiteResult, name: &str) -> &'a perf::engine::EndpointResult {
    r.endpoints.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no endpoint `{name}` in the result"))
}
