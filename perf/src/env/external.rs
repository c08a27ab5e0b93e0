//! The external backend: nothing is started; the app already runs at a URL the user gave.

use super::error::EnvError;
use super::types::{ServiceInfo, StartOptions};
use crate::plan::{Service, Setup};

pub struct ExternalEnv {
    app_url: String,
}

impl ExternalEnv {
    /// Checks that the URL is an http(s) URL and that the app's health check answers 200.
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
        let health = format!("{app_url}{}", setup.app.health);
        super::procs::wait_http_ok("app", &health, setup.environment.startup_timeout, &opts.cancel, &opts.notes, || Ok(String::new()))
            .await?;
        Ok(ExternalEnv { app_url })
    }

    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        vec![ServiceInfo { service: Service::App, url: self.app_url.clone() }]
    }
}
