//! What the layers after the plan need besides the load: how to set up the app and its
//! services ([`Setup`], for the environment backends) and the regression rule
//! ([`CompareRules`], for the comparison). Plain data: no TOML, no spans, everything already
//! checked and defaulted by the compiler. A rule is built only by [`CompareRules::new`], so the
//! gate and `cargo perf history` refuse the same values.
//!
//! Which services a run starts besides the app is decided here, once, for every backend and
//! for `cargo perf up`: PostgreSQL when the plan has an `[environment.postgres]` table (even an
//! empty one) or when the app's templates (`[app.env]` values, `[app.local] command`) name one
//! of `{{postgres.*}}`; Redis likewise with `[environment.redis]` and `{{redis.*}}`. A service
//! named only by its templates gets the table's defaults, so plans written before the tables
//! were optional start what they always started. A plan with neither starts neither: no
//! server, no container, no statistics read, and no fault proxy in front of it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::model::{CompareSpec, Plan, PostgresSpec, RedisSpec};
use super::template::{RawPart, parse};
use super::values::{Link, MetricThresholds, Service};

/// The app under test and the services it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub environment: EnvironmentSetup,
    pub app: AppSetup,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentSetup {
    /// How long each service may take to become ready.
    pub startup_timeout: Duration,
    /// `None`: no PostgreSQL is started (the rule is in this module's documentation).
    pub postgres: Option<PostgresSetup>,
    /// `None`: no Redis is started.
    pub redis: Option<RedisSetup>,
    /// `link_latency` (and `link_jitter`): the backends that start the databases put a proxy
    /// between the app and each of them that holds every chunk this long, from the start of
    /// the environment on, for measured suites too. `None`: direct connections.
    pub link: Option<Link>,
}

impl EnvironmentSetup {
    /// Whether a run of this plan starts `service`. The app always (on the backends that start
    /// anything); PostgreSQL and Redis when the plan asks for them.
    pub fn starts(&self, service: Service) -> bool {
        match service {
            Service::App => true,
            Service::Postgres => self.postgres.is_some(),
            Service::Redis => self.redis.is_some(),
        }
    }

    /// The services a run starts, app first: what `Environment::services` lists once up.
    pub fn services(&self) -> Vec<Service> {
        Service::ALL.into_iter().filter(|s| self.starts(*s)).collect()
    }
}

/// Why `service` is absent, for every message that meets its absence (the gate's notes,
/// `cargo perf up`, a summary's `underneath`): `redis is not started: the plan has no
/// [environment.redis] table and its app's templates name no {{redis.*}}`.
pub fn not_started(service: Service) -> String {
    let s = service.as_str();
    format!("{s} is not started: the plan has no [environment.{s}] table and its app's templates name no {{{{{s}.*}}}}")
}

/// The service an app template's name belongs to: `postgres.url` and `postgres.port` to
/// PostgreSQL, `redis.url` to Redis; `None` for `app.*`, `cargo.*` and unknown names.
fn service_named(name: &str) -> Option<Service> {
    let (head, _) = name.split_once('.')?;
    Service::from_name(head).filter(|s| *s != Service::App)
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostgresSetup {
    /// Image for the docker backend, `name:tag`.
    pub image: String,
    pub database: String,
    pub user: String,
    /// Inside the docker network; a random one per run when `None`. Never printed.
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisSetup {
    pub image: String,
}

/// The names the app's environment templates (`[app.env]`, and `[app.local] command`) may
/// use; each backend gives every one a value ([`crate::env::appenv`] says which). The parts of
/// PostgreSQL's and Redis's addresses are there for apps that want another URL scheme
/// (`postgresql+asyncpg://`, `jdbc:postgresql://`) or the parts apart (Django's `HOST`,
/// `PORT`, `NAME`, `USER`, `PASSWORD`).
pub const APP_ENV_NAMES: &[&str] = &[
    "postgres.url",
    "postgres.host",
    "postgres.port",
    "postgres.user",
    "postgres.password",
    "postgres.database",
    "redis.url",
    "redis.host",
    "redis.port",
    "app.listen",
    "app.port",
];

#[derive(Debug, Clone, PartialEq)]
pub struct AppSetup {
    /// Readiness path: the app is ready when it answers 200 here. `None` when the plan names
    /// none: then the app is up once it answers anything at `/` but "not yet" (502, 503, 504).
    pub health: Option<String>,
    /// Prometheus text endpoint, scraped around each suite when set.
    pub metrics: Option<String>,
    /// Series recorded from it (prefix match on the metric name).
    pub metrics_series: Vec<String>,
    /// The app's environment: templates over [`APP_ENV_NAMES`] (`{{postgres.url}}`,
    /// `{{postgres.host}}`, `{{redis.url}}`, `{{app.listen}}`…), resolved by each backend.
    pub env: BTreeMap<String, String>,
    /// `[app.local]`: needed by the local backend only.
    pub local: Option<LocalAppSetup>,
    /// `[app.docker]`: needed by the docker backend only (or `PERF_APP_IMAGE`).
    pub docker: Option<DockerAppSetup>,
}

/// How the local backend builds and runs the app (argv lists, no shell).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAppSetup {
    pub build: Vec<String>,
    pub command: Vec<String>,
}

/// How the docker backend gets the app's image.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerAppSetup {
    /// `name:tag`.
    pub image: String,
    /// Built from this Dockerfile (relative to the plan) when the image is missing.
    pub dockerfile: Option<String>,
    /// Build context, relative to the plan (default: the plan's folder).
    pub context: Option<String>,
    /// Port the app listens on inside its container.
    pub port: u16,
}

impl DockerAppSetup {
    /// The port an app image listens on when the plan does not say.
    pub const DEFAULT_PORT: u16 = 8080;
}

impl AppSetup {
    /// Every name the app's templates use, with the field it is written in: `[app.env]` values
    /// (`app.env.KEY`) in key order, then `[app.local] command` (`app.local.command[i]`). A
    /// malformed template gives nothing here: the compiler refuses it with its position.
    pub fn template_names(&self) -> Vec<(String, String)> {
        let env = self.env.iter().map(|(k, v)| (format!("app.env.{k}"), v));
        let command = self.local.iter().flat_map(|l| l.command.iter().enumerate()).map(|(i, a)| (format!("app.local.command[{i}]"), a));
        let mut out = Vec::new();
        for (field, template) in env.chain(command) {
            for part in parse(template).unwrap_or_default() {
                if let RawPart::Var { name, .. } = part {
                    out.push((field.clone(), name));
                }
            }
        }
        out
    }
}

impl Setup {
    /// Refuses a template of the app that names a service this setup does not start: its
    /// field (`app.env.DATABASE_URL`) and the name, before anything starts. A plan's own
    /// templates start what they name, so this meets only templates added after the plan was
    /// read (`--app-env DATABASE_URL={{postgres.url}}` for a plan without PostgreSQL).
    pub fn check_services(&self) -> Result<(), String> {
        for (field, name) in self.app.template_names() {
            if let Some(service) = service_named(&name).filter(|s| !self.environment.starts(*s)) {
                let s = service.as_str();
                return Err(format!(
                    "{field}: `{{{{{name}}}}}` names {s}, which this run does not start: add an [environment.{s}] table to the plan \
                     (the plan's own [app.env] or [app.local] command naming {{{{{s}.*}}}} starts it too)"
                ));
            }
        }
        Ok(())
    }
}

/// The regression rule, with per-endpoint overrides. The fields are public to read; the only
/// way to make one is [`CompareRules::new`] (or [`CompareRules::default`], which goes through it).
// `#[non_exhaustive]` would bind other crates only: the private field binds this one too.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRules {
    /// Relative change that counts as a regression (0.20 = 20%).
    pub threshold: f64,
    /// Latency changes no larger than this never count; `None`: the testbed's measured noise
    /// (see `compare::Noise`), or no floor without one.
    pub floor: Option<Duration>,
    /// Error-rate increase, in percentage points, that counts as a regression.
    pub error_rate_points: f64,
    /// Fewer measured requests than this on either side: the verdict is `noisy`.
    pub min_samples: u64,
    /// One minus the confidence of the changes' intervals (0.05: 95% intervals).
    pub alpha: f64,
    /// Against a stored baseline, the most of a latency change shared by the run's other
    /// endpoints that is taken for the machine's (a fraction; 0: none). See `compare::shift`.
    pub shared_shift: f64,
    /// Per-endpoint, per-metric threshold overrides.
    pub endpoints: BTreeMap<String, MetricThresholds>,
    /// Private, so that no one builds a rule without the checks of `new`.
    checked: (),
}

/// A `[compare]` value the comparison cannot use: which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareRulesError {
    /// The field as the plan writes it: `compare.threshold`, `compare.alpha`,
    /// `compare.error_rate_points`, `compare.endpoints.<name>` or `compare.endpoints.<name>.<metric>`.
    pub field: String,
    /// The endpoint whose override is refused, when it is one (the plan points at its entry).
    pub endpoint: Option<String>,
    pub message: String,
}

impl fmt::Display for CompareRulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for CompareRulesError {}

impl CompareRules {
    /// The one way to build a rule, so that the gate and `cargo perf history` accept the same
    /// rules. Refuses, in this order: a threshold that is not > 0, an alpha outside
    /// 0 < alpha < 1, error-rate points below 0, then, endpoint by endpoint in the order given,
    /// an override of a name that is not in `requests` (the plan's requests) or with a
    /// threshold below 0. NaN and infinities are refused too.
    pub fn new(
        threshold: f64,
        floor: Option<Duration>,
        error_rate_points: f64,
        min_samples: u64,
        alpha: f64,
        endpoints: Vec<(String, MetricThresholds)>,
        requests: &[&str],
    ) -> Result<CompareRules, CompareRulesError> {
        let refuse = |field: &str, endpoint: Option<&str>, message: String| CompareRulesError {
            field: format!("compare.{field}"),
            endpoint: endpoint.map(str::to_string),
            message,
        };
        if !(threshold > 0.0 && threshold.is_finite()) {
            return Err(refuse("threshold", None, format!("{threshold} is not a relative change: expected a number > 0 (0.2 is 20%)")));
        }
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(refuse("alpha", None, format!("{alpha} is not a significance level: expected 0 < alpha < 1")));
        }
        if !(error_rate_points >= 0.0 && error_rate_points.is_finite()) {
            return Err(refuse("error_rate_points", None, "expected a number of percentage points ≥ 0".into()));
        }
        for (name, t) in &endpoints {
            if !requests.contains(&name.as_str()) {
                let defined = if requests.is_empty() { "none".to_string() } else { requests.join(", ") };
                let message = format!("unknown request `{name}` (the plan defines: {defined})");
                return Err(refuse(&format!("endpoints.{name}"), Some(name), message));
            }
            for (metric, value) in
                [("p50", t.p50), ("p95", t.p95), ("p99", t.p99), ("rps", t.rps), ("error_rate_points", t.error_rate_points)]
            {
                if let Some(x) = value
                    && !(x >= 0.0 && x.is_finite())
                {
                    return Err(refuse(
                        &format!("endpoints.{name}.{metric}"),
                        Some(name),
                        format!("{x} is not a threshold: expected a number ≥ 0"),
                    ));
                }
            }
        }
        let endpoints = endpoints.into_iter().collect();
        let shared_shift = CompareSpec::default().shared_shift;
        Ok(CompareRules { threshold, floor, error_rate_points, min_samples, alpha, shared_shift, endpoints, checked: () })
    }

    /// The rule with `share` as its shared shift (`compare.shared_shift`): refused unless
    /// 0 <= share < 1.
    pub fn with_shared_shift(mut self, share: f64) -> Result<CompareRules, CompareRulesError> {
        if !(0.0..1.0).contains(&share) {
            return Err(CompareRulesError {
                field: "compare.shared_shift".into(),
                endpoint: None,
                message: format!("{share} is not a share of the latency: expected 0 <= shared_shift < 1 (0.1 is 10%, 0 turns it off)"),
            });
        }
        self.shared_shift = share;
        Ok(self)
    }
}

impl Default for CompareRules {
    /// The plan's defaults: 20%, no floor of its own (the measured noise), 1 point, 100
    /// samples, 95% intervals.
    fn default() -> Self {
        let d = CompareSpec::default();
        CompareRules::new(d.threshold, d.floor.map(|f| f.0), d.error_rate_points, d.min_samples, d.alpha, Vec::new(), &[])
            .and_then(|r| r.with_shared_shift(d.shared_shift))
            .expect("the plan's defaults are a valid rule")
    }
}

impl From<&Plan> for Setup {
    /// The plan's environment and app, with the services it starts decided by the rule in this
    /// module's documentation: a table, or a template that names the service.
    fn from(plan: &Plan) -> Self {
        let (env, app) = (&plan.environment, &plan.app);
        let app = AppSetup {
            health: app.health.clone(),
            metrics: app.metrics.clone(),
            metrics_series: app.metrics_series.clone(),
            env: app.env.iter().map(|(k, v)| (k.clone(), v.get_ref().clone())).collect(),
            local: app.local.as_ref().map(|l| LocalAppSetup { build: l.build.clone(), command: l.command.clone() }),
            docker: app.docker.as_ref().map(|d| DockerAppSetup {
                image: d.image.clone(),
                dockerfile: d.dockerfile.clone(),
                context: d.context.clone(),
                port: d.port,
            }),
        };
        let names = app.template_names();
        let named = |service: Service| names.iter().any(|(_, n)| service_named(n) == Some(service));
        let postgres = env.postgres.clone().or_else(|| named(Service::Postgres).then(PostgresSpec::default));
        let redis = env.redis.clone().or_else(|| named(Service::Redis).then(RedisSpec::default));
        Setup {
            environment: EnvironmentSetup {
                startup_timeout: env.startup_timeout.0,
                postgres: postgres.map(|p| PostgresSetup { image: p.image, database: p.database, user: p.user, password: p.password }),
                redis: redis.map(|r| RedisSetup { image: r.image }),
                link: env
                    .link_latency
                    .as_ref()
                    .map(|l| Link { latency: l.get_ref().0, jitter: env.link_jitter.as_ref().map_or(Duration::ZERO, |j| j.get_ref().0) }),
            },
            app,
        }
    }
}
