//! The external backend: nothing is started; the app already runs at a URL the user gave.

use super::error::EnvError;
use super::types::{ServiceInfo, StartOptions};
use crate::plan::{Service, Setup};

pub struct ExternalEnv {
    app_url: String,
}

impl ExternalEnv {
    /// Checks that the URL is an http(s) URL and waits until the app is up: its health path
    /// answers 200, or, when the plan names none (a plan without `[app]`), anything answers at
    /// the URL's root ([`super::procs::wait_http_ready`]).
    pub async fn start(setup: &Setup, opts: &StartOptions) -> Result<ExternalEnv, EnvError> {
        let raw = opts
            .app_url
            .as_deref()
            .ok_or_else(|| EnvError::Other("the external backend needs the app's URL: pass --app-url http://HOST:PORT".into()))?;
        let parsed = url::Url::parse(raw).map_err(|e| EnvError::Other(format!("--app-url {raw:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(EnvError::Other(format!("--app-url {raw:?}: expected http://HOST:PORT or https://HOST:PORT")));
        }
        let app_url = raw.trim_end_matches('/').to_string();
        let health = setup.app.health.as_deref();
        let timeout = setup.environment.startup_timeout;
        super::procs::wait_http_ready("app", &app_url, health, timeout, &opts.cancel, &opts.notes, || Ok(String::new())).await?;
        Ok(ExternalEnv { app_url })
    }

    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        vec![ServiceInfo { service: Service::App, url: self.app_url.clone() }]
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use axum::http::StatusCode;
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// A service that answers 404 to everything but `/items`, like an app without a health
    /// check; stops with the test's runtime.
    async fn service_without_health() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/items", axum::routing::get(|| async { "[]" })).fallback(|| async { StatusCode::NOT_FOUND });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }

    fn setup(app_table: &str) -> Setup {
        let suite = "[suites.smoke.scenarios.one]\nexecutor = \"constant-vus\"\nvus = 1\nduration = \"2s\"\nrequest = \"list\"\n";
        let text = format!("version = 1\n{app_table}\n[requests.list]\npath = \"/items\"\n{suite}");
        crate::plan::parse(Path::new("perf.toml"), text).unwrap_or_else(|e| panic!("{e}")).setup().unwrap_or_else(|e| panic!("{e}"))
    }

    fn options(app_url: &str) -> StartOptions {
        StartOptions {
            plan_dir: PathBuf::from("."),
            logs_dir: PathBuf::from("results/logs"),
            app_url: Some(app_url.to_string()),
            cancel: CancellationToken::new(),
            fault_proxies: false,
            build_env: Vec::new(),
            notes: crate::util::Notes::to(|_| {}),
        }
    }

    #[tokio::test]
    async fn a_plan_without_an_app_table_starts_as_soon_as_the_service_answers() {
        let url = service_without_health().await;
        let started = Instant::now();
        let env = ExternalEnv::start(&setup(""), &options(&url)).await.expect("up: it answers at /, with a 404");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(env.app_url(), url);
    }

    #[tokio::test]
    async fn a_named_health_path_that_answers_404_is_named_promptly() {
        let url = service_without_health().await;
        let started = Instant::now();
        let err = match ExternalEnv::start(&setup("[app]\nhealth = \"/health\""), &options(&url)).await {
            Ok(_) => panic!("the health path does not exist"),
            Err(e) => e.to_string(),
        };
        assert!(started.elapsed() < Duration::from_secs(10), "not the whole 60 s: {:?}", started.elapsed());
        assert!(err.contains(&format!("GET {url}/health answered 404 Not Found")), "{err}");
        assert!(err.contains("[app] health = \"/your/health\""), "{err}");
    }
}
