//! The plan's data model: exactly what a team writes in `perf.toml`.
//!
//! Every table denies unknown keys, so a typo is an error with its position instead of a
//! silently ignored setting. Values that are checked after parsing (templates, durations in
//! lists, names that refer to other tables) keep their byte span through [`toml::Spanned`] so
//! that the validator can point at the line and column. Nothing here does I/O. The small value
//! types the tables share with the compiled form (durations, kinds, SLO limits) are in `values.rs`.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::values::{Dur, Executor, FineDur, HttpVersion, MetricThresholds, SloSpec, SuiteKind, Think};

/// The whole plan file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Format version of the plan file; only `1` exists.
    pub version: Spanned<u32>,
    /// Suites run when no `--suite` is given (pull requests run these).
    #[serde(default)]
    pub default_suites: Vec<Spanned<String>>,
    #[serde(default)]
    pub environment: EnvironmentSpec,
    /// Needed only by the backends that start the app: `external` uses none of it.
    #[serde(default)]
    pub app: AppSpec,
    #[serde(default)]
    pub defaults: Defaults,
    /// Generated values usable in templates as `{{name}}`.
    #[serde(default)]
    pub variables: IndexMap<String, Spanned<VariableSpec>>,
    /// Requests by name; the name groups statistics (never the raw URL).
    pub requests: IndexMap<String, RequestSpec>,
    /// Ordered steps for virtual users.
    #[serde(default)]
    pub workflows: IndexMap<String, WorkflowSpec>,
    pub suites: IndexMap<String, SuiteSpec>,
    /// The regression rule used when comparing with a baseline.
    #[serde(default)]
    pub compare: CompareSpec,
    /// Sizes beyond which a value is taken for a typo and refused; raised here on purpose.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// `[limits]`: the largest load a plan may ask for before the gate refuses it as a mistake
/// (`vus = 100000000`, `duration = "999999h"`). A plan that means more says so here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Virtual users of one scenario (closed model: `vus`, `start_vus`, stage targets; open
    /// model: `pre_allocated_vus`, `max_vus`).
    #[serde(default = "defaults::max_vus")]
    pub max_vus: u32,
    /// Iterations per second of one arrival-rate scenario.
    #[serde(default = "defaults::max_rate")]
    pub max_rate: f64,
    /// Length of one suite's timeline (`--duration` included).
    #[serde(default = "defaults::max_duration")]
    pub max_duration: Dur,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec { max_vus: defaults::max_vus(), max_rate: defaults::max_rate(), max_duration: defaults::max_duration() }
    }
}

/// Services the app depends on and how to start them.
///
/// Each service is optional: `None` is a plan without its table. Whether a run starts it is
/// decided in `setup.rs` (`Setup::from`): when the table is there, or when the app's templates
/// name it (`{{postgres.url}}` in `[app.env]`, say) and the table's defaults then apply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// How long each service may take to become ready.
    #[serde(default = "defaults::startup_timeout")]
    pub startup_timeout: Dur,
    /// `[environment.postgres]`, even empty: PostgreSQL is started.
    #[serde(default)]
    pub postgres: Option<PostgresSpec>,
    /// `[environment.redis]`, even empty: Redis is started.
    #[serde(default)]
    pub redis: Option<RedisSpec>,
    /// The round trip between the app and its databases as production has it: each chunk of
    /// bytes, each way, is held this long by a proxy in between (`"0.5ms"`). Absent: the app
    /// connects to them directly.
    #[serde(default)]
    pub link_latency: Option<Spanned<FineDur>>,
    /// A uniform spread around `link_latency` (`"0.1ms"`: 0.4 to 0.6 ms each way).
    #[serde(default)]
    pub link_jitter: Option<Spanned<FineDur>>,
}

impl Default for EnvironmentSpec {
    fn default() -> Self {
        Self { startup_timeout: defaults::startup_timeout(), postgres: None, redis: None, link_latency: None, link_jitter: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// Image for the docker backend, `name:tag` (official image by default, pinned tag).
    #[serde(default = "defaults::postgres_image")]
    pub image: String,
    #[serde(default = "defaults::postgres_database")]
    pub database: String,
    #[serde(default = "defaults::postgres_user")]
    pub user: String,
    /// Password used inside the docker network. Never printed; a random one is generated
    /// for each run when absent.
    #[serde(default)]
    pub password: Option<String>,
}

impl Default for PostgresSpec {
    fn default() -> Self {
        Self { image: defaults::postgres_image(), database: defaults::postgres_database(), user: defaults::postgres_user(), password: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    #[serde(default = "defaults::redis_image")]
    pub image: String,
}

impl Default for RedisSpec {
    fn default() -> Self {
        Self { image: defaults::redis_image() }
    }
}

/// The app under test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Readiness path: the app is ready when it answers 200 here. Without one, any answer at
    /// `/` will do (see `env::procs::wait_http_ready`).
    #[serde(default)]
    pub health: Option<String>,
    /// Prometheus text endpoint, scraped before and after each suite when set.
    #[serde(default)]
    pub metrics: Option<String>,
    /// Series names recorded from the metrics endpoint (prefix match on the metric name).
    #[serde(default)]
    pub metrics_series: Vec<String>,
    /// Environment of the app. Values are templates over the names in
    /// [`crate::plan::APP_ENV_NAMES`] (`{{postgres.url}}`, its parts `{{postgres.host}}`…,
    /// `{{redis.url}}`, `{{app.listen}}`, `{{app.port}}`…), resolved by each backend.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// How the local backend builds and runs the app (needed by that backend only).
    #[serde(default)]
    pub local: Option<LocalAppSpec>,
    /// How the docker backend gets the app image.
    #[serde(default)]
    pub docker: Option<DockerAppSpec>,
}

impl Default for AppSpec {
    /// No `[app]` table: a plan for `--backend external` only.
    fn default() -> Self {
        AppSpec { health: None, metrics: None, metrics_series: Vec::new(), env: BTreeMap::new(), local: None, docker: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalAppSpec {
    /// Build command run once before the app starts (argv, no shell). Empty: no build.
    #[serde(default)]
    pub build: Vec<String>,
    /// Command that runs the app (argv, no shell), relative to the plan's directory.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAppSpec {
    /// `name:tag` of the app image.
    pub image: String,
    /// Dockerfile used to build the image when it is missing (relative to the plan).
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build context for `dockerfile`, relative to the plan. Default: the plan's directory.
    #[serde(default)]
    pub context: Option<String>,
    /// Port the app listens on inside its container.
    #[serde(default = "defaults::app_port")]
    pub port: u16,
}

/// Defaults applied to every request unless it says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "defaults::timeout")]
    pub timeout: Dur,
    #[serde(default)]
    pub http: HttpVersion,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// A scheduled start later than this counts as late (open-model executors).
    #[serde(default = "defaults::late_after")]
    pub late_after: Dur,
}

impl Default for Defaults {
    fn default() -> Self {
        Self { timeout: defaults::timeout(), http: HttpVersion::default(), headers: BTreeMap::new(), late_after: defaults::late_after() }
    }
}

/// A generated value. Drawn at most once per iteration: every use of the variable inside one
/// iteration sees the same value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum VariableSpec {
    /// Uniform random integer in `[low, high]`, both included.
    Int([i64; 2]),
    /// One of the listed values, uniformly.
    Choice(Vec<toml::Value>),
    /// Integers `low, low+1, …, high, low, …`, shared by all virtual users.
    Sequence([i64; 2]),
    /// Uniform random calendar date in `["YYYY-MM-DD", "YYYY-MM-DD"]`, both included.
    Date([String; 2]),
}

/// One request the load can send: HTTP (`path`), or a WebSocket (`ws`) that workflow steps
/// connect, send on, expect messages from and close.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "defaults::method")]
    pub method: Spanned<String>,
    /// Path and query template, for example `/api/providers/{{provider_id}}`.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// A WebSocket instead: path and query template of the upgrade request, for example
    /// `/ws/slots?provider_id={{provider_id}}` (`ws://`/`wss://` follow the base URL).
    #[serde(default)]
    pub ws: Option<Spanned<String>>,
    /// WebSocket: how long a connection lives, `iteration` (closed at the iteration's end,
    /// the default) or `vu` (kept for the virtual user's life; a later `ws_connect` reuses it).
    #[serde(default)]
    pub scope: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// JSON body template: any TOML value; a string that is exactly `{{name}}` becomes the
    /// variable's typed value, other strings are interpolated.
    #[serde(default)]
    pub body: Option<Spanned<toml::Value>>,
    /// Statuses that count as success. Default: any 2xx.
    #[serde(default)]
    pub expect: Vec<u16>,
    /// Values taken from a JSON response by JSON pointer, stored in the virtual user.
    #[serde(default)]
    pub capture: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Relative weight when the request is part of a `mix`.
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    #[serde(default)]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    pub steps: Vec<StepSpec>,
}

/// One step: exactly one verb. `request` sends an HTTP request; `ws_connect`, `ws_send`,
/// `ws_expect` and `ws_close` act on a WebSocket request's connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    #[serde(default)]
    pub request: Option<Spanned<String>>,
    /// Opens the WebSocket (a no-op when a `scope = "vu"` connection is already open).
    #[serde(default)]
    pub ws_connect: Option<Spanned<String>>,
    /// Sends `body` (JSON template) as a text message.
    #[serde(default)]
    pub ws_send: Option<Spanned<String>>,
    /// Waits up to `timeout` for a message whose values at the `match` JSON pointers equal
    /// the rendered templates; its latency runs from the end of the previous step.
    #[serde(default)]
    pub ws_expect: Option<Spanned<String>>,
    #[serde(default)]
    pub ws_close: Option<Spanned<String>>,
    /// `ws_send`: the message.
    #[serde(default)]
    pub body: Option<Spanned<toml::Value>>,
    /// `ws_expect`: JSON pointer → template the value there must equal.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, Spanned<String>>,
    /// `ws_expect`: how long to wait (default: the request's timeout).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Pause after the step: a duration, or `[min, max]` drawn uniformly.
    #[serde(default)]
    pub think: Option<Think>,
}

impl StepSpec {
    /// `(verb, request name)` of every verb given (a valid step has exactly one).
    pub fn verbs(&self) -> Vec<(&'static str, &Spanned<String>)> {
        [
            ("request", &self.request),
            ("ws_connect", &self.ws_connect),
            ("ws_send", &self.ws_send),
            ("ws_expect", &self.ws_expect),
            ("ws_close", &self.ws_close),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect()
    }
}

/// A suite: scenarios that run at the same time, SLOs, and what kind of verdict it gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default = "defaults::kind")]
    pub kind: Spanned<SuiteKind>,
    /// The first part of every scenario's timeline whose samples are not recorded.
    #[serde(default)]
    pub warmup: Option<Dur>,
    pub scenarios: IndexMap<String, ScenarioSpec>,
    /// SLOs by endpoint name; the key `"*"` applies to every endpoint.
    #[serde(default)]
    pub slo: IndexMap<String, Spanned<SloSpec>>,
    /// Setup steps run once before the load; their captures are visible to every user.
    #[serde(default)]
    pub setup: Vec<StepSpec>,
    /// `kind = "spike"`: when the jump happens and its limits.
    #[serde(default)]
    pub spike: Option<Spanned<SpikeSpec>>,
    /// `kind = "stress"`: the SLO each step of the ramping-arrival-rate scenario must hold.
    #[serde(default)]
    pub stress: Option<Spanned<StressSpec>>,
    /// `kind = "soak"`: growth limits of memory and latency.
    #[serde(default)]
    pub soak: Option<Spanned<SoakSpec>>,
    /// `kind = "chaos"`: what is done to the services, when, and what must hold.
    #[serde(default)]
    pub chaos: Option<Spanned<ChaosSpec>>,
}

/// `spike = { start = "20s", end = "30s", max_error_rate = 0.01, max_recovery = "10s" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeSpec {
    /// When the jump begins, from the suite's start (like scenario offsets).
    pub start: Dur,
    /// When the jump ends, from the suite's start.
    pub end: Dur,
    /// Largest acceptable fraction of failed requests during the jump.
    pub max_error_rate: f64,
    /// Longest acceptable time after `end` until p95 is back near its pre-spike value.
    pub max_recovery: Dur,
    /// "Back near": within this fraction of the pre-spike median p95 (default 0.2).
    #[serde(default = "defaults::recovery_tolerance")]
    pub recovery_tolerance: f64,
}

/// `stress = { slo_p95 = "100ms", max_error_rate = 0.01, min_breaking_rate = 50.0 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressSpec {
    /// Each step (hold) must keep its p95 at or under this.
    pub slo_p95: Dur,
    /// …and its error rate at or under this.
    pub max_error_rate: f64,
    /// The check fails when the breaking point (highest rate held) is below this.
    pub min_breaking_rate: f64,
    /// When every planned step held, extra steps go on (doubling, then bisecting) up to this
    /// rate at most (iterations per second); without it only the step budget bounds them.
    #[serde(default)]
    pub max_rate: Option<f64>,
    /// `capacity = { target_rps = 5000.0, headroom = 0.3 }`: how many instances a target
    /// rate needs, from the highest rate one instance held.
    #[serde(default)]
    pub capacity: Option<CapacitySpec>,
}

/// `capacity = { target_rps = 5000.0, headroom = 0.3 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// The rate the service must sustain over all instances, in the steps' unit: the stress
    /// scenario's iterations per second (requests per second when an iteration is one
    /// request, rounds per second for a workflow).
    pub target_rps: f64,
    /// The share of each instance's held rate kept free (0.3 plans each at 70%).
    #[serde(default = "defaults::headroom")]
    pub headroom: f64,
}

/// `soak = { max_memory_growth = 0.2, max_p95_growth = 0.2, services = ["app"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoakSpec {
    /// Largest acceptable relative memory growth over the run (0.2 = +20%).
    pub max_memory_growth: f64,
    /// Largest acceptable relative growth of the per-second p95 over the run.
    pub max_p95_growth: f64,
    /// Services whose memory is judged: `app`, `postgres`, `redis`.
    #[serde(default = "defaults::soak_services")]
    pub services: Vec<Spanned<String>>,
}

/// `chaos = { actions = [{ at = "10s", stop = "postgres" }, { at = "20s", start = "postgres" }],
/// expect = ["no_5xx_except_503", "errors_stop_within:5s", "breaker_cycle"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosSpec {
    /// May be empty: a suite that only asserts (a write race) is a chaos suite without actions.
    #[serde(default)]
    pub actions: Vec<Spanned<ChaosActionSpec>>,
    /// Expectations, checked after the run: `no_errors`, `no_5xx_except_503`,
    /// `errors_stop_within:<duration>`, `breaker_cycle`, `cache_recovers`,
    /// `one_winner_per_slot:<N>`.
    #[serde(default)]
    pub expect: Vec<Spanned<String>>,
}

/// One action: exactly one verb naming `postgres` or `redis`. `stop`/`start` stop and start
/// the service; `latency` (with `delay`, optional `jitter`), `loss` (with `rate`), `reset`
/// and `blackhole` set a fault on the proxy between the app and the service; `heal` clears it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosActionSpec {
    /// When, from the suite's start.
    pub at: Dur,
    #[serde(default)]
    pub stop: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub latency: Option<String>,
    #[serde(default)]
    pub loss: Option<String>,
    #[serde(default)]
    pub reset: Option<String>,
    #[serde(default)]
    pub blackhole: Option<String>,
    #[serde(default)]
    pub heal: Option<String>,
    /// `latency`: added to every chunk, each way.
    #[serde(default)]
    pub delay: Option<Dur>,
    /// `latency`: ± this much, uniformly (default 0).
    #[serde(default)]
    pub jitter: Option<Dur>,
    /// `loss`: the probability (0 to 1) that a connection or a chunk is lost.
    #[serde(default)]
    pub rate: Option<f64>,
}

impl ChaosActionSpec {
    /// `(key, service)` of every verb given.
    pub fn verbs(&self) -> Vec<(&'static str, &str)> {
        [
            ("stop", &self.stop),
            ("start", &self.start),
            ("latency", &self.latency),
            ("loss", &self.loss),
            ("reset", &self.reset),
            ("blackhole", &self.blackhole),
            ("heal", &self.heal),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// One executor and what each of its iterations does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub executor: Spanned<Executor>,
    /// Offset of this scenario from the start of the suite.
    #[serde(default)]
    pub start: Option<Dur>,
    /// constant-vus, constant-arrival-rate: how long.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// constant-vus: number of virtual users.
    #[serde(default)]
    pub vus: Option<u32>,
    /// ramping-vus: users at the start (default 0).
    #[serde(default)]
    pub start_vus: Option<u32>,
    /// constant-arrival-rate: iterations started per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// ramping-arrival-rate: iterations per second at the start (default 0).
    #[serde(default)]
    pub start_rate: Option<f64>,
    /// Ramping executors: linear ramps to `target` over `duration`, one after another.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Open model: virtual users allocated up front, and the most it may grow to.
    #[serde(default)]
    pub pre_allocated_vus: Option<u32>,
    #[serde(default)]
    pub max_vus: Option<u32>,
    /// Closed model: time given to running iterations to finish after the end.
    #[serde(default)]
    pub graceful_stop: Option<Dur>,
    /// What one iteration does: exactly one of these three.
    #[serde(default)]
    pub request: Option<Spanned<String>>,
    #[serde(default)]
    pub mix: Vec<Spanned<String>>,
    #[serde(default)]
    pub workflow: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: Dur,
    /// Users (ramping-vus) or iterations per second (ramping-arrival-rate) at the stage's end.
    pub target: f64,
}

/// The regression rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSpec {
    /// Relative change that counts as a regression (0.20 = 20%).
    #[serde(default = "defaults::threshold")]
    pub threshold: f64,
    /// Latency changes no larger than this never count. Unset (the default): the floor is the
    /// noise an A/A run of the testbed measured, where one is recorded, and none otherwise.
    #[serde(default)]
    pub floor: Option<Dur>,
    /// Error-rate increase, in percentage points, that counts as a regression.
    #[serde(default = "defaults::error_rate_points")]
    pub error_rate_points: f64,
    /// Fewer measured requests than this on either side: the verdict is `noisy`.
    #[serde(default = "defaults::min_samples")]
    pub min_samples: u64,
    /// Significance level of the test over per-window values.
    #[serde(default = "defaults::alpha")]
    pub alpha: f64,
    /// Against a stored baseline, the most of a change shared by the run's other endpoints
    /// that is taken for the machine's moment rather than the code (a fraction; 0 turns it
    /// off). Never more than the threshold.
    #[serde(default = "defaults::shared_shift")]
    pub shared_shift: f64,
    /// Per-endpoint, per-metric threshold overrides: `{ "health" = { p99 = 0.5 } }`.
    #[serde(default)]
    pub endpoints: IndexMap<String, Spanned<MetricThresholds>>,
}

impl Default for CompareSpec {
    fn default() -> Self {
        Self {
            threshold: defaults::threshold(),
            floor: None,
            error_rate_points: defaults::error_rate_points(),
            min_samples: defaults::min_samples(),
            alpha: defaults::alpha(),
            shared_shift: defaults::shared_shift(),
            endpoints: IndexMap::new(),
        }
    }
}

mod defaults {
    use std::time::Duration;

    use toml::Spanned;

    use crate::plan::values::{Dur, SuiteKind};

    pub fn kind() -> Spanned<SuiteKind> {
        Spanned::new(0..0, SuiteKind::Load)
    }
    pub fn recovery_tolerance() -> f64 {
        0.2
    }
    pub fn headroom() -> f64 {
        0.3
    }
    pub fn soak_services() -> Vec<Spanned<String>> {
        vec![Spanned::new(0..0, "app".into())]
    }

    pub fn startup_timeout() -> Dur {
        Dur(Duration::from_secs(60))
    }
    pub fn postgres_image() -> String {
        "postgres:15.8-bookworm".into()
    }
    pub fn postgres_database() -> String {
        "perf".into()
    }
    pub fn postgres_user() -> String {
        "perf".into()
    }
    pub fn redis_image() -> String {
        "redis:7.2.5-bookworm".into()
    }
    pub fn max_vus() -> u32 {
        10_000
    }
    pub fn max_rate() -> f64 {
        100_000.0
    }
    pub fn max_duration() -> Dur {
        Dur(Duration::from_secs(24 * 3600))
    }
    pub fn app_port() -> u16 {
        8080
    }
    pub fn timeout() -> Dur {
        Dur(Duration::from_secs(10))
    }
    pub fn late_after() -> Dur {
        Dur(Duration::from_millis(10))
    }
    pub fn method() -> Spanned<String> {
        Spanned::new(0..0, "GET".into())
    }
    pub fn weight() -> u32 {
        1
    }
    pub fn threshold() -> f64 {
        0.20
    }
    pub fn error_rate_points() -> f64 {
        1.0
    }
    pub fn min_samples() -> u64 {
        100
    }
    pub fn alpha() -> f64 {
        0.05
    }
    pub fn shared_shift() -> f64 {
        0.10
    }
}
