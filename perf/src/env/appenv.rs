//! The app's environment: `plan.app.env` values are templates over the names in
//! [`crate::plan::APP_ENV_NAMES`], which each backend fills in with the addresses the app sees:
//!
//! | name                    | local backend                     | docker backend                    |
//! |-------------------------|-----------------------------------|-----------------------------------|
//! | `{{postgres.url}}`      | `postgres://U@127.0.0.1:PORT/DB`  | `postgres://U:P@postgres:5432/DB` |
//! | `{{postgres.host}}`     | `127.0.0.1`                       | `postgres`                        |
//! | `{{postgres.port}}`     | PostgreSQL's port                 | `5432`                            |
//! | `{{postgres.user}}`     | `[environment.postgres] user`     | the same                          |
//! | `{{postgres.password}}` | empty: trust on loopback          | the plan's or a random one        |
//! | `{{postgres.database}}` | `[environment.postgres] database` | the same                          |
//! | `{{redis.url}}`         | `redis://127.0.0.1:PORT`          | `redis://redis:6379`              |
//! | `{{redis.host}}`        | `127.0.0.1`                       | `redis`                           |
//! | `{{redis.port}}`        | Redis's port                      | `6379`                            |
//! | `{{app.listen}}`        | `127.0.0.1:PORT`                  | `0.0.0.0:PORT` (in the container) |
//! | `{{app.port}}`          | the chosen free port              | `plan.app.docker.port`            |
//!
//! The URLs are made from the parts ([`PostgresAddr::url`], [`RedisAddr::url`]), so the two
//! always agree. With fault proxies (chaos suites that set network faults) the hosts and ports
//! are the proxies': `127.0.0.1:PROXY_PORT` locally, `GATEWAY:PROXY_PORT` (the host's address
//! on the run's network) under Docker.
//!
//! The parts are the raw values: the URLs percent-encode the user, password and database, but
//! a URL a plan writes itself from `{{postgres.password}}` gets the password as it is (the
//! Docker backend's random password is letters and digits; a password set in the plan is the
//! plan's own).
//!
//! The local backend's command and build step may also use `{{cargo.target_dir}}`: where cargo
//! puts its build output (`CARGO_TARGET_DIR`, `build.target-dir`, or `target/`), asked of
//! `cargo metadata` in the plan's folder, so that a plan names its binary wherever it is built.
//!
//! The values hold the database password: they go to the app's environment and nowhere else
//! (never into logs, errors or summaries; `Debug` leaves it out).

use std::collections::BTreeMap;

use super::error::EnvError;
use crate::plan::APP_ENV_NAMES;
use crate::plan::template::{RawPart, parse};

/// Where the app finds PostgreSQL, and as whom it connects.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PostgresAddr {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Empty when the server trusts the app without one (the local backend, on loopback).
    /// Never printed.
    pub password: String,
    pub database: String,
}

impl PostgresAddr {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (without `:PASSWORD` when it is empty),
    /// the user, password and database percent-encoded.
    pub fn url(&self) -> String {
        let password = if self.password.is_empty() { String::new() } else { format!(":{}", url_escape(&self.password)) };
        format!("postgres://{}{password}@{}/{}", url_escape(&self.user), host_port(&self.host, self.port), url_escape(&self.database))
    }
}

impl std::fmt::Debug for PostgresAddr {
    /// Without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Where the app finds Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisAddr {
    pub host: String,
    pub port: u16,
}

impl RedisAddr {
    /// `redis://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", host_port(&self.host, self.port))
    }
}

/// `HOST:PORT`, an IPv6 address in brackets as a URL wants it.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Percent-encodes what cannot stand in the user-info or path of a URL.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the names resolve to for one start of the app.
#[derive(Clone, Debug)]
pub struct AppEnvValues {
    /// Its `Debug` leaves the password out.
    pub postgres: PostgresAddr,
    pub redis: RedisAddr,
    pub app_listen: String,
    pub app_port: u16,
    /// `{{cargo.target_dir}}`: only for the local backend's command and build.
    pub cargo_target_dir: Option<String>,
}

impl AppEnvValues {
    fn get(&self, name: &str) -> Option<String> {
        let (pg, redis) = (&self.postgres, &self.redis);
        match name {
            "postgres.url" => Some(pg.url()),
            "postgres.host" => Some(pg.host.clone()),
            "postgres.port" => Some(pg.port.to_string()),
            "postgres.user" => Some(pg.user.clone()),
            "postgres.password" => Some(pg.password.clone()),
            "postgres.database" => Some(pg.database.clone()),
            "redis.url" => Some(redis.url()),
            "redis.host" => Some(redis.host.clone()),
            "redis.port" => Some(redis.port.to_string()),
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
/// `app.local.command[1]`). The one renderer of the app's templates for every backend. Errors
/// name the template's names, never a value.
pub fn render(field: &str, template: &str, values: &AppEnvValues) -> Result<String, EnvError> {
    let parts = parse(template).map_err(|e| EnvError::Other(format!("{field}: {} (at byte {})", e.message, e.offset)))?;
    let mut value = String::new();
    for part in parts {
        match part {
            RawPart::Lit(text) => value.push_str(&text),
            RawPart::Var { name, .. } => {
                let resolved = values.get(&name).ok_or_else(|| {
                    let mut known: Vec<String> = APP_ENV_NAMES.iter().map(|n| format!("{{{{{n}}}}}")).collect();
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

    /// What the Docker backend gives an app without fault proxies.
    fn values() -> AppEnvValues {
        AppEnvValues {
            postgres: PostgresAddr {
                host: "postgres".into(),
                port: 5432,
                user: "perf".into(),
                password: "pw".into(),
                database: "perf".into(),
            },
            redis: RedisAddr { host: "redis".into(), port: 6379 },
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
    fn every_name_the_plan_accepts_has_a_value() {
        for name in APP_ENV_NAMES {
            assert!(render("f", &format!("{{{{{name}}}}}"), &values()).is_ok(), "{name}");
        }
    }

    #[test]
    fn the_parts_of_the_addresses_render_apart() {
        let v = values();
        let one = |t: &str| render("app.env.X", t, &v).unwrap();
        assert_eq!(one("{{postgres.host}}"), "postgres");
        assert_eq!(one("{{postgres.port}}"), "5432");
        assert_eq!(one("{{postgres.user}}"), "perf");
        assert_eq!(one("{{postgres.password}}"), "pw");
        assert_eq!(one("{{postgres.database}}"), "perf");
        assert_eq!(one("{{redis.host}}"), "redis");
        assert_eq!(one("{{redis.port}}"), "6379");
    }

    #[test]
    fn other_schemes_are_written_from_the_parts() {
        let v = values();
        let one = |t: &str| render("app.env.X", t, &v).unwrap();
        assert_eq!(
            one("postgresql+asyncpg://{{postgres.user}}:{{postgres.password}}@{{postgres.host}}:{{postgres.port}}/{{postgres.database}}"),
            "postgresql+asyncpg://perf:pw@postgres:5432/perf"
        );
        assert_eq!(
            one("jdbc:postgresql://{{postgres.host}}:{{postgres.port}}/{{postgres.database}}"),
            "jdbc:postgresql://postgres:5432/perf"
        );
    }

    #[test]
    fn the_urls_are_made_from_the_parts() {
        // The local backend: no password, so no `:` after the user.
        let local =
            PostgresAddr { host: "127.0.0.1".into(), port: 5433, user: "perf".into(), password: String::new(), database: "app".into() };
        assert_eq!(local.url(), "postgres://perf@127.0.0.1:5433/app");
        // What a URL cannot hold as it is, is percent-encoded; the parts stay raw.
        let odd = PostgresAddr { password: "p@ss:w/rd".into(), user: "me@corp".into(), database: "my db".into(), ..local.clone() };
        assert_eq!(odd.url(), "postgres://me%40corp:p%40ss%3Aw%2Frd@127.0.0.1:5433/my%20db");
        let v = AppEnvValues { postgres: odd, ..values() };
        assert_eq!(render("f", "{{postgres.password}}", &v).unwrap(), "p@ss:w/rd");
        // An IPv6 host is bracketed in a URL only.
        let six = RedisAddr { host: "fd00::1".into(), port: 7000 };
        assert_eq!(six.url(), "redis://[fd00::1]:7000");
        let v = AppEnvValues { redis: six, ..values() };
        assert_eq!(render("f", "{{redis.host}}", &v).unwrap(), "fd00::1");
    }

    #[test]
    fn an_unknown_name_names_the_key_and_the_known_names() {
        let err = resolve(&env(&[("DB", "{{postgres.uri}}")]), &values()).unwrap_err().to_string();
        assert!(err.starts_with("app.env.DB: "), "{err}");
        assert!(err.contains("postgres.uri"), "{err}");
        assert!(err.contains("{{postgres.url}}, {{postgres.host}}, {{postgres.port}}, {{postgres.user}}"), "{err}");
        assert!(err.contains("{{redis.port}}, {{app.listen}}, {{app.port}}"), "{err}");
        assert!(!err.contains("pw"), "no value in an error: {err}");
        let err = resolve(&env(&[("DB_NAME", "{{postgres.name}}")]), &values()).unwrap_err().to_string();
        assert!(err.contains("app.env.DB_NAME") && err.contains("postgres.name"), "{err}");
    }

    #[test]
    fn an_unclosed_template_names_the_key() {
        let err = resolve(&env(&[("X", "a{{app.port")]), &values()).unwrap_err().to_string();
        assert!(err.starts_with("app.env.X: "), "{err}");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", values());
        assert!(!shown.contains("pw"), "{shown}");
        assert!(shown.contains("postgres") && shown.contains("5432"), "the rest is shown: {shown}");
    }

    #[test]
    fn url_escape_keeps_unreserved_and_encodes_the_rest() {
        assert_eq!(url_escape("perf"), "perf");
        assert_eq!(url_escape("a b@c:d/e%"), "a%20b%40c%3Ad%2Fe%25");
    }
}
