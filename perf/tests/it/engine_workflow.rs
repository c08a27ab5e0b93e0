//! Workflows and failures: captures across steps, aborted iterations, expected non-2xx,
//! error kinds.

use std::time::Duration;

use crate::engine_support::{compile, endpoint, run, start};
use perf::engine::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_token_and_id_flow_into_later_steps() {
    let server = start().await;
    let compiled = compile(
        r#"
[variables]
n = { int = [1, 9] }
[requests.login]
method = "POST"
path = "/login"
body = { user = "u{{n}}" }
capture = { token = "/token" }
[requests.create]
method = "POST"
path = "/items"
headers = { authorization = "Bearer {{token}}" }
body = { name = "thing{{n}}" }
expect = [201]
capture = { item_id = "/id" }
[requests.read]
path = "/items/{{item_id}}"
headers = { authorization = "Bearer {{token}}" }
[workflows.w]
steps = [{ request = "login" }, { request = "create", think = "10ms" }, { request = "read" }]
[suites.s]
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 2
duration = "1500ms"
workflow = "w"
"#,
    );
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let (login, create, read) = (endpoint(&r, "login"), endpoint(&r, "create"), endpoint(&r, "read"));
    assert!(login.requests > 10, "{}", login.requests);
    // Without the token the server answers 401 and without the id the path would 404: every
    // request succeeding shows both captures flowed.
    for e in [login, create, read] {
        assert_eq!(e.errors(), 0, "{}: {:?} {:?}", e.name, e.errors_by_kind, e.statuses);
    }
    assert_eq!(create.statuses.get(&201), Some(&create.requests));
    assert_eq!(read.statuses.get(&200), Some(&read.requests));
    assert!(read.requests + 2 >= login.requests);
    assert_eq!(r.scenarios[0].aborted_iterations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_captures_abort_the_iteration_and_expected_409_is_no_error() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.login]
method = "POST"
path = "/login-without-token"
capture = { token = "/token" }
[requests.needs_token]
path = "/items/1234"
headers = { authorization = "Bearer {{token}}" }
[requests.good_login]
method = "POST"
path = "/login"
capture = { token2 = "/token" }
[requests.taken]
method = "POST"
path = "/items"
headers = { authorization = "Bearer {{token2}}" }
body = { name = "taken" }
expect = [201, 409]
capture = { id = "/id" }
[requests.after]
path = "/items/{{id}}"
headers = { authorization = "Bearer {{token2}}" }
[workflows.broken]
steps = [{ request = "login" }, { request = "needs_token" }]
[workflows.conflict]
steps = [{ request = "good_login" }, { request = "taken" }, { request = "after" }]
[suites.s]
[suites.s.scenarios.broken]
executor = "constant-vus"
vus = 1
duration = "1s"
workflow = "broken"
[suites.s.scenarios.conflict]
executor = "constant-vus"
vus = 1
duration = "1s"
workflow = "conflict"
[suites.s.slo]
"*" = { error_rate = 0.5 }
"#,
    );
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let login = endpoint(&r, "login");
    assert!(login.requests > 5);
    // A 200 without the captured field is a capture error...
    assert_eq!(login.errors_by_kind.get(&ErrorKind::Capture), Some(&login.requests));
    // ...and the next step, which needs it, never runs: it is listed with zero requests.
    assert_eq!(endpoint(&r, "needs_token").requests, 0);
    let broken = r.scenarios.iter().find(|s| s.name == "broken").unwrap();
    assert_eq!(broken.iterations, 0);
    assert!(broken.aborted_iterations >= login.requests - 1, "{broken:?}");

    // An expected 409 is neither an error nor a capture: the step after it is skipped.
    let taken = endpoint(&r, "taken");
    assert!(taken.requests > 5);
    assert_eq!(taken.errors(), 0);
    assert_eq!(taken.statuses.get(&409), Some(&taken.requests));
    assert_eq!(endpoint(&r, "after").requests, 0);
    let conflict = r.scenarios.iter().find(|s| s.name == "conflict").unwrap();
    assert!(conflict.aborted_iterations > 0);

    // The summary fails the SLO of the endpoint that was never measured.
    let s = perf::summary::build(&r, &perf::summary::RunContext::default());
    let after_slo = s.slo.iter().find(|x| x.endpoint == "after").unwrap();
    assert!(!after_slo.passed);
    assert_eq!(after_slo.actual, None);
    assert!(s.slo.iter().find(|x| x.endpoint == "taken").unwrap().passed);
    assert!(!s.slo.iter().find(|x| x.endpoint == "login").unwrap().passed, "capture errors count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_kind() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.teapot]
path = "/status/500"
[requests.slow]
path = "/slow/400"
timeout = "100ms"
[suites.s]
[suites.s.scenarios.status]
executor = "constant-vus"
vus = 1
duration = "1s"
request = "teapot"
[suites.s.scenarios.timeout]
executor = "constant-vus"
vus = 1
duration = "1s"
request = "slow"
"#,
    );
    let r = run(&compiled, &server.url, Duration::from_secs(20)).await;
    let teapot = endpoint(&r, "teapot");
    assert!(teapot.requests > 5);
    assert_eq!(teapot.errors_by_kind.get(&ErrorKind::Status), Some(&teapot.requests));
    assert_eq!(teapot.unexpected_statuses.get(&500), Some(&teapot.requests));
    assert_eq!(teapot.latency.len(), teapot.requests, "an unexpected status still has a latency");
    let slow = endpoint(&r, "slow");
    assert!((5..=12).contains(&slow.requests), "one timeout every 100 ms: {}", slow.requests);
    assert_eq!(slow.errors_by_kind.get(&ErrorKind::Timeout), Some(&slow.requests));
    assert_eq!(slow.latency.len(), 0, "a timeout has no latency");

    // Connection refused: a port that was just freed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let compiled = compile(
        r#"
[requests.ok]
path = "/ok"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-arrival-rate"
rate = 50
duration = "1s"
request = "ok"
"#,
    );
    let r = run(&compiled, &format!("http://127.0.0.1:{port}"), Duration::from_secs(20)).await;
    let ok = endpoint(&r, "ok");
    assert!(ok.requests >= 45, "{}", ok.requests);
    assert_eq!(ok.errors_by_kind.get(&ErrorKind::Connect), Some(&ok.requests));
    assert!(ok.statuses.is_empty());
}

/// On a one-thread runtime an iteration that aborts before any await must still let the
/// controller and the ticker run (the run ends on time instead of spinning forever).
#[tokio::test]
async fn iterations_that_abort_at_once_do_not_starve_a_single_thread() {
    let server = start().await;
    let compiled = compile(
        r#"
[requests.login]
method = "POST"
path = "/login"
capture = { token = "/token" }
[requests.needs_token]
path = "/items/1234"
headers = { authorization = "Bearer {{token}}" }
[suites.s]
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 2
duration = "1s"
request = "needs_token"
[suites.s.scenarios.b]
executor = "constant-vus"
vus = 1
duration = "1s"
request = "login"
"#,
    );
    let r = run(&compiled, &server.url, Duration::from_secs(10)).await;
    assert_eq!(endpoint(&r, "needs_token").requests, 0);
    assert!(r.scenarios[0].aborted_iterations > 100, "{:?}", r.scenarios[0]);
    assert!(endpoint(&r, "login").requests > 5, "the other scenario still ran");
}
