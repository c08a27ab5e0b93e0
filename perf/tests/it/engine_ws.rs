//! WebSocket steps against a WebSocket server in the test process (tokio-tungstenite, on
//! 127.0.0.1:0), one path per behaviour:
//! - `/echo`: sends every text message back;
//! - `/drop`: says hello, then closes the connection 300 ms later;
//! - `/silent`: accepts and never sends a thing;
//! - `/refuse`: answers the upgrade with 403.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use perf::engine::ErrorKind;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use crate::engine_support::{compile, endpoint, run};

struct WsServer {
    url: String,
    /// Connections accepted (upgrades completed).
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> WsServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut path = String::new();
                // tungstenite's callback type: its error is a whole response.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                    path = req.uri().path().to_string();
                    if path == "/refuse" {
                        let mut refused = ErrorResponse::new(Some("no".into()));
                        *refused.status_mut() = http::StatusCode::FORBIDDEN;
                        return Err(refused);
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
                counter.fetch_add(1, Ordering::Relaxed);
                match path.as_str() {
                    "/echo" => {
                        while let Some(Ok(m)) = ws.next().await {
                            if m.is_text() && ws.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                    "/drop" => {
                        let _ = ws.send(Message::text(r#"{"hello":1}"#)).await;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let _ = ws.close(None).await;
                    }
                    _ => while let Some(Ok(_)) = ws.next().await {},
                }
            });
        }
    });
    WsServer { url, accepted, task }
}

fn plan(path: &str, scope: &str, steps: &str) -> String {
    format!(
        r#"
[variables]
n = {{ int = [1, 1000000] }}
[requests.live]
ws = "{path}"
scope = "{scope}"
timeout = "2s"
[workflows.w]
steps = [{steps}]
[suites.s]
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 2
duration = "1500ms"
workflow = "w"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_messages_are_matched_and_timed_and_the_others_counted() {
    let server = start().await;
    // Each iteration sends a decoy and then its own id; only the second matches.
    let compiled = compile(&plan(
        "/echo",
        "iteration",
        r#"{ ws_connect = "live" },
           { ws_send = "live", body = { id = "decoy" } },
           { ws_send = "live", body = { id = "{{n}}", n = "{{n}}" } },
           { ws_expect = "live", match = { "/id" = "{{n}}", "/n" = "{{n}}" }, timeout = "1s" },
           { ws_close = "live" }"#,
    ));
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let (connect, message) = (endpoint(&r, "live"), endpoint(&r, "live.message"));
    assert_eq!(connect.kind, Some("ws_connect"));
    assert_eq!(message.kind, Some("ws_message"));
    assert!(connect.requests >= 10, "{}", connect.requests);
    assert_eq!(connect.errors(), 0, "{:?}", connect.errors_by_kind);
    assert_eq!(connect.statuses.get(&101), Some(&connect.requests), "every upgrade answered 101");
    assert!(connect.bytes_received > 0 && connect.bytes_sent > 0);
    // One expectation per connection, each met, each timed well under its timeout.
    assert_eq!(message.errors(), 0, "{:?}", message.errors_by_kind);
    assert!(message.requests + 2 >= connect.requests && message.requests <= connect.requests, "{} {}", message.requests, connect.requests);
    assert_eq!(message.latency.len(), message.requests);
    assert!(message.latency.max() < 500_000, "max {} µs", message.latency.max());
    // The decoys came back too: counted, not matched.
    assert!(connect.ws_messages >= 2 * message.requests, "{} messages for {} expectations", connect.ws_messages, message.requests);
    // `scope = "iteration"`: a new connection each iteration.
    assert!(server.accepted.load(Ordering::Relaxed) >= connect.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_drops_fails_its_expectation_at_once() {
    let server = start().await;
    let compiled = compile(&plan(
        "/drop",
        "iteration",
        r#"{ ws_connect = "live" }, { ws_expect = "live", match = { "/never" = "x" }, timeout = "2s" }"#,
    ));
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let (connect, message) = (endpoint(&r, "live"), endpoint(&r, "live.message"));
    // Each connection was dropped by the server: an error of the connection, not a request.
    assert!(connect.requests >= 2, "{}", connect.requests);
    let dropped = connect.errors_by_kind.get(&ErrorKind::Dropped).copied().unwrap_or(0);
    assert!(dropped + 2 >= connect.requests && dropped <= connect.requests, "{dropped} drops of {} connections", connect.requests);
    // The waiting expectation ended with the drop (300 ms), not with its 2 s timeout: with
    // 2 users over 1.5 s, waiting out the timeouts would allow 2 iterations at most.
    assert!(message.requests >= 4, "{} expectations", message.requests);
    assert_eq!(message.errors_by_kind.get(&ErrorKind::Dropped), Some(&message.requests), "{:?}", message.errors_by_kind);
    assert!(message.latency.is_empty());
    assert_eq!(connect.ws_messages, connect.requests, "one hello per connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_never_comes_is_a_timeout_and_closing_is_no_drop() {
    let server = start().await;
    let compiled = compile(&plan(
        "/silent",
        "iteration",
        r#"{ ws_connect = "live" }, { ws_expect = "live", match = { "/id" = "{{n}}" }, timeout = "200ms" }"#,
    ));
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let (connect, message) = (endpoint(&r, "live"), endpoint(&r, "live.message"));
    assert!(message.requests >= 6, "{}", message.requests);
    assert_eq!(message.errors_by_kind.get(&ErrorKind::Timeout), Some(&message.requests), "{:?}", message.errors_by_kind);
    assert_eq!(connect.errors(), 0, "the user closed its connections: {:?}", connect.errors_by_kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_is_a_status_error_and_its_expectations_are_not_waited_for() {
    let server = start().await;
    let compiled = compile(&plan(
        "/refuse",
        "iteration",
        r#"{ ws_connect = "live" }, { ws_expect = "live", match = { "/id" = "{{n}}" }, timeout = "1s", think = "50ms" }"#,
    ));
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let (connect, message) = (endpoint(&r, "live"), endpoint(&r, "live.message"));
    assert!(connect.requests >= 4, "{}", connect.requests);
    assert_eq!(connect.errors_by_kind.get(&ErrorKind::Status), Some(&connect.requests));
    assert_eq!(connect.unexpected_statuses.get(&403), Some(&connect.requests));
    assert_eq!(message.requests, 0, "no connection, nothing to expect on it");
    assert_eq!(server.accepted.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vu_scoped_connection_is_opened_once_per_user() {
    let server = start().await;
    let compiled = compile(&plan(
        "/echo",
        "vu",
        r#"{ ws_connect = "live" },
           { ws_send = "live", body = { id = "{{n}}" } },
           { ws_expect = "live", match = { "/id" = "{{n}}" }, timeout = "1s", think = "20ms" }"#,
    ));
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let (connect, message) = (endpoint(&r, "live"), endpoint(&r, "live.message"));
    assert_eq!(connect.requests, 2, "one connection per user for its whole life");
    assert_eq!(server.accepted.load(Ordering::Relaxed), 2);
    assert!(message.requests >= 20, "{}", message.requests);
    assert_eq!(message.errors(), 0, "{:?}", message.errors_by_kind);
}
