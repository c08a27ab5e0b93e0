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
//! A service the run does not start has no values: its names are refused, with the field
//! they are in, before anything starts ([`AppEnvValues::placeholders`]). A plan's own
//! templates never meet this (naming a service starts it: `plan::Setup`'s rule); templates
//! added later (`--app-env`) can.
//!
//! The local backend's command and build step may also use `{{cargo.target_dir}}`: where cargo
//! puts its build output (`CARGO_TARGET_DIR`, `build.target-dir`, or `target/`), asked of
//! `cargo metadata` in the plan's folder, so that a plan names its binary wherever it is built.
//!
//! The values hold the database password: they go to the app's environment and nowhere else
//! (never into logs, errors or summaries; `Debug` leaves it out).

use std::collections::BTreeMap;

use super::error::EnvError;
use crate::plan::template::{RawPart, parse};
use crate::plan::{APP_ENV_NAMES, Service, Setup};

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
#[derive(Clone, Debug, Default)]
pub struct AppEnvValues {
    /// `None` when the run starts no PostgreSQL. Its `Debug` leaves the password out.
    pub postgres: Option<PostgresAddr>,
    /// `None` when the run starts no Redis.
    pub redis: Option<RedisAddr>,
    pub app_listen: String,
    pub app_port: u16,
    /// `{{cargo.target_dir}}`: only for the local backend's command and build.
    pub cargo_target_dir: Option<String>,
}

/// Why a name has no value.
enum Missing {
    /// Not a name of the app's templates (or `{{cargo.target_dir}}` where it has none).
    Unknown,
    /// A name of a service this run does not start.
    NotStarted(Service),
}

impl AppEnvValues {
    /// Stand-ins for the check made before anything starts: an empty address for each service
    /// `setup` starts and none for the others, so rendering every template with them refuses
    /// an unknown name, or a name of a service the run does not start, with its field, before
    /// a server, a container or a build begins.
    pub fn placeholders(setup: &Setup, cargo_target_dir: Option<String>) -> AppEnvValues {
        let env = &setup.environment;
        AppEnvValues {
            postgres: env.postgres.as_ref().map(|_| PostgresAddr::default()),
            redis: env.redis.as_ref().map(|_| RedisAddr::default()),
            cargo_target_dir,
            ..AppEnvValues::default()
        }
    }

    fn get(&self, name: &str) -> Result<String, Missing> {
        let pg = || self.postgres.as_ref().ok_or(Missing::NotStarted(Service::Postgres));
        let redis = || self.redis.as_ref().ok_or(Missing::NotStarted(Service::Redis));
        Ok(match name {
            "postgres.url" => pg()?.url(),
            "postgres.host" => pg()?.host.clone(),
            "postgres.port" => pg()?.port.to_string(),
            "postgres.user" => pg()?.user.clone(),
            "postgres.password" => pg()?.password.clone(),
            "postgres.database" => pg()?.database.clone(),
            "redis.url" => redis()?.url(),
            "redis.host" => redis()?.host.clone(),
            "redis.port" => redis()?.port.to_string(),
            "app.listen" => self.app_listen.clone(),
            "app.port" => self.app_port.to_string(),
            "cargo.target_dir" => self.cargo_target_dir.clone().ok_or(Missing::Unknown)?,
            _ => return Err(Missing::Unknown),
        })
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
                let resolved = values.get(&name).map_err(|missing| match missing {
                    Missing::NotStarted(service) => EnvError::Other(format!(
                        "{field}: `{{{{{name}}}}}` names {service}, which this run does not start: add an [environment.{service}] \
                         table to the plan"
                    )),
                    Missing::Unknown => {
                        let mut known: Vec<String> = APP_ENV_NAMES.iter().map(|n| format!("{{{{{n}}}}}")).collect();
                        if values.cargo_target_dir.is_some() {
                            known.push("{{cargo.target_dir}}".into());
                        }
                        EnvError::Other(format!("{field}: unknown name `{{{{{name}}}}}`: expected one of {}", known.join(", ")))
                    }
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
            postgres: Some(PostgresAddr {
                host: "postgres".into(),
                port: 5432,
                user: "perf".into(),
                password: "pw".into(),
                database: "perf".into(),
            }),
            redis: Some(RedisAddr { host: "redis".into(), port: 6379 }),
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
        let v = AppEnvValues { postgres: Some(odd), ..values() };
        assert_eq!(render("f", "{{postgres.password}}", &v).unwrap(), "p@ss:w/rd");
        // An IPv6 host is bracketed in a URL only.
        let six = RedisAddr { host: "fd00::1".into(), port: 7000 };
        assert_eq!(six.url(), "redis://[fd00::1]:7000");
        let v = AppEnvValues { redis: Some(six), ..values() };
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
    fn a_service_the_run_does_not_start_has_no_values() {
        let v = AppEnvValues { postgres: None, ..values() };
        let err = resolve(&env(&[("DATABASE_URL", "{{postgres.url}}")]), &v).unwrap_err().to_string();
        assert!(err.starts_with("app.env.DATABASE_URL: "), "{err}");
        assert!(err.contains("`{{postgres.url}}` names postgres, which this run does not start"), "{err}");
        assert!(err.contains("[environment.postgres]"), "{err}");
        for name in ["postgres.host", "postgres.port", "postgres.user", "postgres.password", "postgres.database"] {
            assert!(render("f", &format!("{{{{{name}}}}}"), &v).is_err(), "{name}");
        }
        // The other service and the app's own names still render; an unknown name is unknown.
        assert_eq!(render("f", "{{redis.url}} {{app.port}}", &v).unwrap(), "redis://redis:6379 8080");
        let err = render("app.env.X", "{{postgres.uri}}", &v).unwrap_err().to_string();
        assert!(err.contains("unknown name `{{postgres.uri}}`"), "{err}");
        let v = AppEnvValues { redis: None, ..values() };
        let err = render("app.local.command[1]", "--cache={{redis.host}}:{{redis.port}}", &v).unwrap_err().to_string();
        assert!(err.starts_with("app.local.command[1]: `{{redis.host}}` names redis"), "{err}");
    }

    #[test]
    fn placeholders_stand_for_the_services_the_setup_starts() {
        let setup = |tables: &str, env: &str| {
            let text = format!(
                "version = 1\n{tables}\n[app.env]\n{env}\n\
                 [requests.r]\npath = \"/\"\n[suites.s.scenarios.a]\nexecutor = \"constant-vus\"\nrequest = \"r\"\n"
            );
            crate::plan::parse(std::path::Path::new("perf.toml"), text).unwrap().setup().unwrap()
        };
        // Named by a template: started, so a placeholder renders.
        let s = setup("", "DB = \"{{postgres.url}}\"");
        let v = AppEnvValues::placeholders(&s, None);
        assert!(v.postgres.is_some() && v.redis.is_none());
        assert!(resolve(&s.app.env, &v).is_ok());
        // Added after the plan was read (as --app-env does): refused before anything starts.
        let mut s = setup("[environment.redis]", "LISTEN = \"{{app.listen}}\"");
        s.app.env.insert("DATABASE_URL".into(), "{{postgres.url}}".into());
        let v = AppEnvValues::placeholders(&s, None);
        assert!(v.postgres.is_none() && v.redis.is_some());
        let err = resolve(&s.app.env, &v).unwrap_err().to_string();
        assert!(err.starts_with("app.env.DATABASE_URL: "), "{err}");
        assert_eq!(s.check_services().unwrap_err().split(':').next(), Some("app.env.DATABASE_URL"));
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
