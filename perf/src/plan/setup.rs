//! What the layers after the plan need besides the load: how to set up the app and its
//! services ([`Setup`], for the environment backends) and the regression rule
//! ([`CompareRules`], for the comparison). Plain data: no TOML, no spans, everything already
//! checked and defaulted by the compiler.

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::{CompareSpec, Plan};
use super::values::MetricThresholds;

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
    pub postgres: PostgresSetup,
    pub redis: RedisSetup,
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

#[derive(Debug, Clone, PartialEq)]
pub struct AppSetup {
    /// Readiness path: the app is ready when it answers 200 here.
    pub health: String,
    /// Prometheus text endpoint, scraped around each suite when set.
    pub metrics: Option<String>,
    /// Series recorded from it (prefix match on the metric name).
    pub metrics_series: Vec<String>,
    /// The app's environment: templates over `{{postgres.url}}`, `{{redis.url}}`,
    /// `{{app.listen}}`, `{{app.port}}`, resolved by each backend.
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

/// The regression rule, with per-endpoint overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRules {
    /// Relative change that counts as a regression (0.20 = 20%).
    pub threshold: f64,
    /// Latency changes smaller than this never count.
    pub floor: Duration,
    /// Error-rate increase, in percentage points, that counts as a regression.
    pub error_rate_points: f64,
    /// Fewer measured requests than this on either side: the verdict is `noisy`.
    pub min_samples: u64,
    /// Significance level of the tests.
    pub alpha: f64,
    /// Per-endpoint, per-metric threshold overrides.
    pub endpoints: BTreeMap<String, MetricThresholds>,
}

impl Default for CompareRules {
    /// The plan's defaults: 20%, 1 ms, 1 point, 100 samples, α = 0.05.
    fn default() -> Self {
        CompareRules::from(&CompareSpec::default())
    }
}

impl From<&CompareSpec> for CompareRules {
    fn from(spec: &CompareSpec) -> Self {
        CompareRules {
            threshold: spec.threshold,
            floor: spec.floor.0,
            error_rate_points: spec.error_rate_points,
            min_samples: spec.min_samples,
            alpha: spec.alpha,
            endpoints: spec.endpoints.iter().map(|(k, v)| (k.clone(), v.get_ref().clone())).collect(),
        }
    }
}

impl From<&Plan> for Setup {
    fn from(plan: &Plan) -> Self {
        let (env, app) = (&plan.environment, &plan.app);
        Setup {
            environment: EnvironmentSetup {
                startup_timeout: env.startup_timeout.0,
                postgres: PostgresSetup {
                    image: env.postgres.image.clone(),
                    database: env.postgres.database.clone(),
                    user: env.postgres.user.clone(),
                    password: env.postgres.password.clone(),
                },
                redis: RedisSetup { image: env.redis.image.clone() },
            },
            app: AppSetup {
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
            },
        }
    }
}
