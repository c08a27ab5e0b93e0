//! The token never shows: not in `Debug`, not in any error, warning or dry-run body, even when
//! GitHub's own error message quotes it.

use crate::github_support::*;
use perf::github::{GithubContext, PublishOptions, download_baseline_artifact, publish, read_pr_number, upsert_comment};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} shows the token: {text}");
    assert!(!text.contains("NEVERprintMe"), "{what} shows part of the token: {text}");
}

#[tokio::test]
async fn token_never_appears_in_debug_errors_or_warnings() {
    let server = MockServer::start().await;
    // A hostile or buggy server echoing the credential back in its error message.
    let echo = serde_json::json!({ "message": format!("Bad credentials: Bearer {TOKEN}") });
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/issues/7/comments"))
        .respond_with(ResponseTemplate::new(401).set_body_json(&echo))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop"))
        .respond_with(ResponseTemplate::new(403).set_body_json(&echo))
        .mount(&server)
        .await;
    let ctx = pr_ctx(&server);
    let mut seen = Vec::new();

    seen.push(("context debug", format!("{ctx:?}")));
    let err = upsert_comment(&ctx, 7, "report").await.unwrap_err();
    seen.push(("comment error", format!("{err} / {err:?}")));
    let work = tempfile::tempdir().unwrap();
    let err = download_baseline_artifact(&ctx, "perf-baseline", "perf-nightly.yml", &work.path().join("a")).await.unwrap_err();
    seen.push(("artifact error", format!("{err} / {err:?}")));
    let report = publish(&ctx, "report", PublishOptions { comment: true, dry_run: false }).await;
    seen.push(("publish report", format!("{report:?}")));
    let report = publish(&ctx, "report", PublishOptions { comment: true, dry_run: true }).await;
    seen.push(("dry run", format!("{report:?}")));

    // Nothing listens on this port any more: a transport error.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut env = pr_env(&format!("http://{closed}"));
    env.insert("GITHUB_REPOSITORY".into(), "acme/shop".into());
    let offline = ctx_from(&env);
    let err = upsert_comment(&offline, 7, "report").await.unwrap_err();
    seen.push(("transport error", format!("{err} / {err:?}")));

    let mut bad = pr_env(&server.uri());
    bad.insert("GITHUB_API_URL".into(), "not a url".into());
    let err = GithubContext::from_env(|k| bad.get(k).cloned()).unwrap_err();
    seen.push(("config error", format!("{err} / {err:?}")));
    let err = read_pr_number(work.path()).unwrap_err();
    seen.push(("pr number error", format!("{err:?}")));

    for (what, text) in &seen {
        assert_clean(what, text);
    }
    // The masking did happen (the echo was there to be masked).
    assert!(seen[1].1.contains("Bearer ***"), "{}", seen[1].1);
}

#[test]
fn a_token_with_a_newline_is_refused_without_quoting_it() {
    let mut env = pr_env("https://api.github.com");
    env.insert("GITHUB_TOKEN".into(), format!("{TOKEN}\nX-Injected: 1"));
    let err = GithubContext::from_env(|k| env.get(k).cloned()).unwrap_err();
    assert_clean("token error", &format!("{err} / {err:?}"));
    assert!(err.to_string().starts_with("GITHUB_TOKEN is invalid"), "{err}");
}
