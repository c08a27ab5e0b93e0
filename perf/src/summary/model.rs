//! The summary of one suite run: the published JSON contract, described by
//! `schema/summary.schema.json`.
//!
//! A summary is always usable as a baseline: it carries its own histograms and per-second
//! windows, and nothing about a comparison. Adding an optional field is a minor change;
//! removing or renaming one bumps [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the summary format written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// Minor version: optional fields added since the version came out. 1: WebSocket endpoints
/// (`kind`, `messages_received`, the `dropped` error kind) and shards (`run.shard`,
/// `run.merged_from`). 2: a merged run's testbed (`run.testbed.shards`). 3: per-endpoint
/// segment histograms (`endpoints.*.segments`). 4: the databases' counters over the measured
/// part only (`underneath.*.from_measured_start`) and the link to the databases a run modelled
/// (`run.testbed.link_latency_us`, `run.testbed.link_jitter_us`). 5: the app's CPU profile
/// over the measured part (`profile`: folded stacks and the requests they were sampled over).
pub const SCHEMA_MINOR: u32 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    /// Absent in files written before minor versions existed (read as 0).
    #[serde(default)]
    pub schema_minor: u32,
    pub suite: String,
    /// `load`, or the kind of a special suite (spike, stress, soak, chaos).
    pub kind: String,
    /// False when the run cannot be trusted (fell behind schedule, environment trouble).
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_reasons: Vec<String>,
    pub run: RunInfo,
    /// Per request name.
    pub endpoints: BTreeMap<String, EndpointSummary>,
    /// Per executor scenario: schedule keeping.
    pub scenarios: BTreeMap<String, ScenarioSummary>,
    /// Whole-suite per-second windows, from the end of the warm-up.
    pub windows: Vec<Window>,
    pub slo: Vec<SloResult>,
    /// Resource use of the app and its services during the suite, by service name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ResourceUsage>,
    /// Series scraped from the app's Prometheus endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_metrics: Option<AppMetrics>,
    /// Pass/fail assertions of special suites (chaos, spike, stress, soak).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// What was done to the environment and when (chaos): seconds from the measured start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Kind-specific figures (breaking point, recovery time, trend slopes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, serde_json::Value>,
    /// What the databases did during the suite: PostgreSQL's statements and Redis's commands,
    /// so that a slower run can say which of them got slower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underneath: Option<Underneath>,
    /// How busy the machine was with work the gate did not start while the suite was
    /// measured: a regression measured on a busy machine is not a verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<crate::util::machine::MachineLoad>,
    /// The app's CPU sampled by `perf` over the measured part of a load suite (or why not):
    /// what a slower run's report reads "where the app spent its CPU" from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

impl Summary {
    /// A valid summary of `suite` (of `kind`: `load` or a special kind) run as `run`, in this
    /// build's schema, that holds nothing yet: no endpoint, scenario, window, SLO, resource,
    /// check, event or figure. Callers fill in what they measured, or write
    /// `Summary { endpoints, ..Summary::new(suite, kind, run) }`.
    pub fn new(suite: impl Into<String>, kind: impl Into<String>, run: RunInfo) -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            schema_minor: SCHEMA_MINOR,
            suite: suite.into(),
            kind: kind.into(),
            valid: true,
            invalid_reasons: Vec::new(),
            run,
            endpoints: BTreeMap::new(),
            scenarios: BTreeMap::new(),
            windows: Vec::new(),
            slo: Vec::new(),
            resources: BTreeMap::new(),
            app_metrics: None,
            checks: Vec::new(),
            events: Vec::new(),
            figures: BTreeMap::new(),
            underneath: None,
            machine: None,
            profile: None,
        }
    }
}

/// The app's CPU over the measured part of a suite, sampled by `perf record` at `hz` with call
/// graphs: folded stacks (`root;caller;…;leaf`, as `inferno` collapses them) with their
/// sample counts, and the measured requests they were sampled over, so that a reader
/// normalises to samples per 1000 requests (counts and requests add up exactly when the runs
/// of an A/B side are put together). Bounded: at most [`Profile::MAX_STACKS`] stacks, the
/// smallest left out and counted. Without a profile (no `perf`, no permission, an app the run
/// does not own) only `unavailable` says why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Samples per second of each CPU the app ran on.
    #[serde(default)]
    pub hz: u32,
    /// Measured requests of the suite while the samples were taken.
    #[serde(default)]
    pub requests: u64,
    /// Every sample taken of the app, those of the stacks left out included.
    #[serde(default)]
    pub samples: u64,
    /// Folded stack → samples.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stacks: BTreeMap<String, u64>,
    /// Stacks left out to keep the summary bounded (the least sampled), and their samples.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stacks_left_out: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub samples_left_out: u64,
    /// Why there is no profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Profile {
    /// Distinct stacks a summary keeps.
    pub const MAX_STACKS: usize = 5000;

    /// No profile, and why.
    pub fn unavailable(why: impl Into<String>) -> Profile {
        Profile { unavailable: Some(why.into()), ..Profile::default() }
    }

    /// Keeps the [`Profile::MAX_STACKS`] most sampled stacks, counting the rest as left out.
    pub fn bound(&mut self) {
        if self.stacks.len() <= Self::MAX_STACKS {
            return;
        }
        let mut all: Vec<(String, u64)> = std::mem::take(&mut self.stacks).into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (_, n) in all.drain(Self::MAX_STACKS..) {
            self.stacks_left_out += 1;
            self.samples_left_out += n;
        }
        self.stacks = all.into_iter().collect();
    }
}

/// What PostgreSQL and Redis did during one suite (counters reset at the end of its warm-up,
/// or, in summaries written before minor 4, when its load started). Either side may be absent
/// with the reason (`postgres_unavailable`): an external database, one without
/// `pg_stat_statements`, or one the run did not start (a plan without it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Underneath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Statements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_unavailable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_unavailable: Option<String>,
}

/// `pg_stat_statements` over a suite, the app's database only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statements {
    /// The statements that took most execution time, most first (at most
    /// [`Statements::MAX_KEPT`]).
    pub top: Vec<Statement>,
    /// Calls and execution time of every statement, the ones left out of `top` included.
    pub total_calls: u64,
    pub total_exec_ms: f64,
    /// How many statements ran in all.
    pub count: u64,
    /// Samples of `pg_stat_activity` taken while the suite ran (for `seen_under`).
    #[serde(default)]
    pub activity_samples: u64,
    /// The counters were reset at the end of the warm-up, so they cover the measured requests
    /// and nothing else: a statement's calls over the endpoints' requests is its calls per
    /// request. False when the reset could not be done then, and in summaries written before
    /// minor 4: their counters include the warm-up's requests too. Since minor 4.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_measured_start: bool,
}

impl Statements {
    /// Statements kept per suite.
    pub const MAX_KEPT: usize = 25;
    /// Characters of a statement's text kept.
    pub const MAX_TEXT: usize = 400;
}

/// One normalized statement: constants and parameters are `$1`, `$2`…, never values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The normalized text, whitespace collapsed, cut at [`Statements::MAX_TEXT`] characters.
    pub query: String,
    pub calls: u64,
    pub total_ms: f64,
    pub mean_ms: f64,
    /// Rows returned or affected, over all calls.
    pub rows: u64,
    pub shared_blks_hit: u64,
    pub shared_blks_read: u64,
    /// Temporary blocks read and written (sorts and hashes spilled to disk).
    pub temp_blks: u64,
    /// Its generic plan (`EXPLAIN`, no ANALYZE, no parameter values), one node per line,
    /// indented by depth; absent when it could not be explained (the reason instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_unavailable: Option<String>,
    /// `application_name` of the connections seen running it (samples of `pg_stat_activity`
    /// during the suite), with how often: an app that names its connections after the route
    /// being served tells which endpoints issue the statement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seen_under: BTreeMap<String, u64>,
}

/// Redis over a suite (`CONFIG RESETSTAT` at its start, `INFO` at its end).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisStats {
    /// By command (lower case): calls and microseconds spent.
    pub commands: BTreeMap<String, RedisCommand>,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// As [`Statements::from_measured_start`]: reset at the end of the warm-up. Since minor 4.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_measured_start: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisCommand {
    pub calls: u64,
    pub usec: u64,
}

impl RedisStats {
    /// Hits over lookups, `None` without lookups.
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.keyspace_hits + self.keyspace_misses;
        (lookups > 0).then(|| self.keyspace_hits as f64 / lookups as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// RFC 3339 start of the measured part.
    pub started_at: String,
    /// Seconds measured (warm-up excluded).
    pub duration_s: f64,
    pub warmup_s: f64,
    pub git: GitInfo,
    /// `local`, `docker` or `external`.
    pub backend: crate::plan::BackendKind,
    pub host: HostInfo,
    /// Version of the perf gate that wrote the summary.
    pub tool_version: String,
    /// SHA-256 of the plan file's bytes.
    pub plan_hash: String,
    /// SHA-256 of this suite's own definition: its scenarios, the requests, workflows and
    /// variables they use, the defaults, the compare rules and the command line's reshaping
    /// (`--quick`, `--duration`, `--users`, `--tags`). A baseline is comparable only while it
    /// is the same. Absent in summaries written before testbeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_hash: Option<String>,
    /// Where the run measured (backend, host class, suite length): a baseline is compared
    /// only with runs of its own testbed. Absent in summaries written before testbeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testbed: Option<super::testbed::Testbed>,
    pub quick: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The part of the plan's load this run sent (`--shard K/N`). Absent for a whole run.
    /// Since minor 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// A merged summary (`cargo perf merge`): the shards it was made of, by index. Since minor 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
}

pub use crate::plan::Shard;

/// One shard of a merged summary, as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    pub index: u32,
    pub started_at: String,
    pub duration_s: f64,
    pub host: HostInfo,
    pub valid: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitInfo {
    pub sha: Option<String>,
    pub branch: Option<String>,
    pub dirty: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub cpus: u32,
    pub cpu_model: Option<String>,
    pub os: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSummary {
    /// Requests measured (after warm-up), whatever their outcome.
    pub requests: u64,
    pub errors: Errors,
    /// Responses by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Measured requests per second.
    pub rps: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Latency: from the scheduled start (open model) or the actual start (closed model)
    /// to the end of the response body. Transport errors are not in it.
    pub latency_ms: Latency,
    /// Service time: from the actual start to the end of the response body.
    pub service_ms: Latency,
    /// HDR histogram of latency in microseconds, V2 deflate, base64: merges exactly.
    pub histogram: String,
    /// The same for service time.
    pub service_histogram: String,
    pub windows: Vec<EndpointWindow>,
    /// `ws_connect` (a WebSocket's connections: latency through the upgrade; `dropped`
    /// errors) or `ws_message` (its expected messages: latency from the step before the
    /// expectation; `timeout` and `dropped` errors). Absent for HTTP. Since minor 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `ws_connect`: messages its connections received, matched or not. Since minor 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_received: Option<u64>,
    /// The measured part cut into a few equal stretches of time, each with the exact
    /// histogram of its requests: the units the comparison resamples, so that a tail
    /// percentile is tested with every request while a slow stretch of the run (a pause, a
    /// neighbour) still counts as one unit, not as hundreds of independent requests. In A/B
    /// mode, one per interleaved segment, in pair order. Since minor 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<EndpointSegment>,
}

/// One stretch of an endpoint's measured part ([`EndpointSummary::segments`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSegment {
    /// Seconds from the measured start to the segment's start.
    pub t: f64,
    /// Seconds it covers.
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    /// HDR histogram of its latencies in microseconds (V2 deflate, base64); empty when no
    /// request of the segment was timed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub histogram: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    pub total: u64,
    /// `connect`, `timeout`, `body`, `status` (unexpected status), `capture`.
    pub by_kind: BTreeMap<String, u64>,
    /// Unexpected statuses only.
    pub by_status: BTreeMap<String, u64>,
}

/// Percentiles in milliseconds. All `None` when there were no samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub stdev: Option<f64>,
}

/// One second of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointWindow {
    /// Seconds from the measured start to the window's start.
    pub t: u32,
    pub requests: u64,
    pub errors: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One second of the whole suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub t: u32,
    pub requests: u64,
    pub errors: u64,
    pub active_vus: u32,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub executor: String,
    /// Iterations completed in the measured part.
    pub iterations: u64,
    /// Open model: scheduled starts never made (no free user, or the run ended first).
    pub dropped_iterations: u64,
    /// Open model: starts made later than `late_after`.
    pub late_starts: u64,
    /// Iterations cut short at the end of the run.
    pub interrupted_iterations: u64,
    /// Iterations whose remaining steps were skipped because a step needed a value an
    /// earlier step did not capture (added in format 1; absent in older files means 0).
    #[serde(default)]
    pub aborted_iterations: u64,
    pub max_vus: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    /// Endpoint name.
    pub endpoint: String,
    /// `p50`..`p999`, `max` (ms), `error_rate` (fraction), `min_rps`.
    pub metric: String,
    pub threshold: f64,
    /// None when there was nothing to measure (which fails).
    pub actual: Option<f64>,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    pub cpu_seconds: f64,
    pub peak_memory_bytes: u64,
    /// Memory samples (bytes) per window, for leak trends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_series: Vec<u64>,
    /// CPU seconds used since the suite started, sampled about every second: `[t, cpu]` with
    /// `t` in seconds from the measured start (negative in the warm-up). Stress suites read
    /// each step's CPU from it. Absent in older summaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_series: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppMetrics {
    /// Series value before the suite, by series (name plus labels).
    pub before: BTreeMap<String, f64>,
    pub after: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds from the measured start.
    pub t: f64,
    pub what: String,
}

impl Summary {
    /// Keeps `profile` as the app's CPU over this run, counted against the run's measured
    /// requests (its samples per request are what compares).
    pub fn set_profile(&mut self, mut profile: Profile) {
        profile.requests = self.endpoints.values().map(|e| e.requests).sum();
        self.profile = Some(profile);
    }

    /// True when every SLO and every check passed.
    pub fn slos_hold(&self) -> bool {
        self.slo.iter().all(|s| s.passed) && self.checks.iter().all(|c| c.passed)
    }

    /// Why this suite was measured on a machine too busy to judge, or `None`. Never for the
    /// external backend: there the app under test is one of the processes the gate did not
    /// start, so its figures are recorded but judge nothing.
    pub fn busy_machine(&self) -> Option<String> {
        if self.run.backend == crate::plan::BackendKind::External {
            return None;
        }
        self.machine.as_ref()?.busy()
    }
}

impl EndpointSummary {
    /// Failed requests as a fraction of all requests; 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors.total as f64 / self.requests as f64 }
    }
}
