//! The app's environment: `plan.app.env` values are templates over exactly four names,
//! which each backend fills in with its own addresses:
//!
//! | name              | local backend                     | docker backend                        |
//! |-------------------|-----------------------------------|---------------------------------------|
//! | `{{postgres.url}}`| `postgres://U:P@127.0.0.1:PORT/DB`| `postgres://U:P@postgres:5432/DB`     |
//! | `{{redis.url}}`   | `redis://127.0.0.1:PORT`          | `redis://redis:6379`                  |
//! | `{{app.listen}}`  | `127.0.0.1:PORT`                  | `0.0.0.0:PORT` (inside the container) |
//! | `{{app.port}}`    | the chosen free port              | `plan.app.docker.port`                |
//!
//! With fault proxies (chaos suites that set network faults) the two URLs name the proxies
//! instead: `127.0.0.1:PROXY_PORT` locally, `GATEWAY:PROXY_PORT` (the host's address on the
//! run's network) under Docker.
//!
//! The local backend's command and build step may also use `{{cargo.target_dir}}`: where cargo
//! puts its build output (`CARGO_TARGET_DIR`, `build.target-dir`, or `target/`), asked of
//! `cargo metadata` in the plan's folder, so that a plan names its binary wherever it is built.
//!
//! The values hold the database password: they go to the app's environment and nowhere else
//! (never into logs, errors or summaries).

use std::collections::BTreeMap;

use super::error::EnvError;
use crate::plan::template::{RawPart, parse};

/// The names a template may use.
pub const NAMES: [&str; 4] = ["postgres.url", "redis.url", "app.listen", "app.port"];

/// What the names resolve to for one start of the app.
#[derive(Clone)]
pub struct AppEnvValues {
    pub postgres_url: String,
    pub redis_url: String,
    pub app_listen: String,
    pub app_port: u16,
    /// `{{cargo.target_dir}}`: only for the local backend's command and build.
    pub cargo_target_dir: Option<String>,
}

impl std::fmt::Debug for AppEnvValues {
    /// Without the URLs: they hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppEnvValues").field("app_listen", &self.app_listen).field("app_port", &self.app_port).finish_non_exhaustive()
    }
}

impl AppEnvValues {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "postgres.url" => Some(self.postgres_url.clone()),
            "redis.url" => Some(self.redis_url.clone()),
            "app.listen" => Some(self.app_listen.clone()),
            "app.port" => Some(self.app_port.to_string()),
            "cargo.target_dir" => self.cargo_target_dir.clone(),
            _ => None,
        }
    }
}

/// Renders every `plan.app.env` value. An unknown name or a malformed template is an error
/// naming the key (`app.env.KEY`) and listing the names that exist.
pub fn resolve(env: &BTreeMap<String, String>, values: &AppEnvValues) -> Result<BTreeMap<String, String>, EnvError> {
    env.iter().map(|(key, template)| Ok((key.clone(), render(&format!("app.env.{key}"), template, values)?))).collect()
}

/// Renders one template; `field` names it in errors (`app.env.DATABASE_URL`,
/// `app.local.command[1]`). The one renderer of the app's templates for every backend.
pub fn render(field: &str, template: &str, values: &AppEnvValues) -> Result<String, EnvError> {
    let parts = parse(template).map_err(|e| EnvError::Other(format!("{field}: {} (at byte {})", e.message, e.offset)))?;
    let mut value = String::new();
    for part in parts {
        match part {
            RawPart::Lit(text) => value.push_str(&text),
            RawPart::Var { name, .. } => {
                let resolved = values.get(&name).ok_or_else(|| {
                    let mut known: Vec<String> = NAMES.map(|n| format!("{{{{{n}}}}}")).to_vec();
                    if values.cargo_target_dir.is_some() {
                        known.push("{{cargo.target_dir}}".into());
                    }
                    EnvError::Other(format!("{field}: unknown name `{{{{{name}}}}}`: expected one of {}", known.join(", ")))
                })?;
                value.push_str(&resolved);
            }
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> AppEnvValues {
        AppEnvValues {
            postgres_url: "postgres://perf:pw@postgres:5432/perf".into(),
            redis_url: "redis://redis:6379".into(),
            app_listen: "0.0.0.0:8080".into(),
            app_port: 8080,
            cargo_target_dir: None,
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn renders_every_name_and_keeps_literal_text() {
        let out = resolve(
            &env(&[
                ("DATABASE_URL", "{{postgres.url}}"),
                ("REDIS_URL", "{{ redis.url }}/0"),
                ("LISTEN_ADDR", "{{app.listen}}"),
                ("PORT", "port={{app.port}}"),
                ("RUST_LOG", "info"),
            ]),
            &values(),
        )
        .unwrap();
        assert_eq!(out["DATABASE_URL"], "postgres://perf:pw@postgres:5432/perf");
        assert_eq!(out["REDIS_URL"], "redis://redis:6379/0");
        assert_eq!(out["LISTEN_ADDR"], "0.0.0.0:8080");
        assert_eq!(out["PORT"], "port=8080");
        assert_eq!(out["RUST_LOG"], "info");
    }

    #[test]
    fn an_unknown_name_names_the_key_and_the_known_names() {
        let err = resolve(&env(&[("DB", "{{postgres.uri}}")]), &values()).unwrap_err().to_string();
        assert!(err.contains("app.env.DB"), "{err}");
        assert!(err.contains("postgres.uri"), "{err}");
        assert!(err.contains("{{postgres.url}}, {{redis.url}}, {{app.listen}}, {{app.port}}"), "{err}");
    }

    #[test]
    fn an_unclosed_template_names_the_key() {
        let err = resolve(&env(&[("X", "a{{app.port")]), &values()).unwrap_err().to_string();
        assert!(err.starts_with("app.env.X: "), "{err}");
    }

    #[test]
    fn debug_output_hides_the_urls() {
        let shown = format!("{:?}", values());
        assert!(!shown.contains("pw"), "{shown}");
    }
}
