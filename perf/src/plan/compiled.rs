//! The plan after validation: what the engine executes.
//!
//! Names are resolved to indices, durations to [`Duration`]s, templates are parsed once.
//! The engine never sees TOML, spans or template syntax: it asks a [`Request`] to render
//! itself against a virtual user's [`VuVars`] and to capture values from a response body.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, header};
use serde_json::Value;

use super::options::Shard;
use super::setup::{CompareRules, Setup};
use super::template::{BodyTemplate, Capture, Template};
use super::values::{Executor, HttpVersion, SloSpec, SuiteKind, Think, parse_duration};

pub use super::values::Service;
use super::vars::VarTable;

pub use super::vars::{RenderError, SharedVars, VuVars};

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fault {
    /// Pass everything through.
    #[default]
    None,
    /// Hold every chunk for `delay` ± `jitter` (uniform), in both directions.
    Latency { delay: Duration, jitter: Duration },
    /// Lose each new connection and each chunk with probability `rate` (0..=1); a loss resets
    /// the connection.
    Loss { rate: f64 },
    /// Reset every connection, open or new.
    Reset,
    /// Accept, read and discard; never answer.
    Blackhole,
}

impl Fault {
    /// The plan's key: `latency`, `loss`, `reset`, `blackhole`; `none` for no fault.
    pub fn key(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Latency { .. } => "latency",
            Fault::Loss { .. } => "loss",
            Fault::Reset => "reset",
            Fault::Blackhole => "blackhole",
        }
    }

    /// Its parameters for people: `100ms ± 20ms`, `30%`; empty when it has none.
    pub fn params(&self) -> String {
        match self {
            Fault::Latency { delay, jitter } if jitter.is_zero() => humantime::format_duration(*delay).to_string(),
            Fault::Latency { delay, jitter } => {
                format!("{} ± {}", humantime::format_duration(*delay), humantime::format_duration(*jitter))
            }
            Fault::Loss { rate } => format!("{}%", (rate * 1000.0).round() / 10.0),
            Fault::None | Fault::Reset | Fault::Blackhole => String::new(),
        }
    }

    /// For people and event timelines: `latency 100ms ± 20ms`, `loss 30%`, `reset`,
    /// `blackhole`, `none`.
    pub fn describe(&self) -> String {
        match self.params() {
            p if p.is_empty() => self.key().to_string(),
            p => format!("{} {p}", self.key()),
        }
    }
}

/// Index into [`Compiled::requests`].
pub type RequestId = usize;

/// A validated plan, with `--quick` and `--tags` already applied: everything the later layers
/// need, as plain data.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub requests: Vec<Request>,
    /// Suites in the order they run.
    pub suites: Vec<Suite>,
    /// How to set up the app and its services.
    pub setup: Setup,
    /// The regression rule.
    pub compare: CompareRules,
    pub http: HttpVersion,
    /// A scheduled start later than this counts as late.
    pub late_after: Duration,
    /// `--shard K/N`: arrival-rate scenarios start every N-th scheduled iteration (from the
    /// K-th), so the shards' starts interleave evenly; closed-model users and sequence values
    /// are already split in the suites and variables.
    pub shard: Option<Shard>,
    pub(crate) vars: Arc<VarTable>,
}

impl Compiled {
    /// Fresh shared variable state (sequence counters, no globals) for one suite run.
    pub fn new_shared_vars(&self) -> Arc<SharedVars> {
        Arc::new(SharedVars::new(self.vars.clone()))
    }

    /// The request with this name.
    pub fn request(&self, name: &str) -> Option<&Request> {
        self.requests.iter().find(|r| r.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub kind: SuiteKind,
    /// Samples from the first `warmup` of each scenario's timeline are not recorded.
    pub warmup: Duration,
    pub scenarios: Vec<Scenario>,
    /// SLOs by endpoint; `None` is the `"*"` entry that applies to every endpoint.
    pub slo: Vec<(Option<String>, SloSpec)>,
    /// Steps run once before the load; their captures become visible to every user.
    pub setup: Vec<Step>,
    /// What a special suite (spike, stress, soak, chaos) judges; `None` for `load`.
    pub special: Option<Special>,
    /// SHA-256 of the suite's own definition as run (see `plan::identity`): a baseline is
    /// comparable only while it is the same.
    pub definition_hash: String,
}

/// The kind-specific part of a special suite. Times are from the suite's timeline start
/// (like [`Scenario::start`]), not from the end of the warm-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Special {
    Spike(SpikeSpec),
    Stress(StressSpec),
    Soak(SoakSpec),
    Chaos(ChaosSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpikeSpec {
    /// When the jump begins and ends.
    pub start: Duration,
    pub end: Duration,
    /// Largest acceptable error rate during the jump (fraction).
    pub max_error_rate: f64,
    /// Longest acceptable recovery after `end` (not scaled by `--quick`).
    pub max_recovery: Duration,
    /// p95 is recovered when at most `(1 + recovery_tolerance) ×` the pre-spike median.
    pub recovery_tolerance: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StressSpec {
    /// The step SLO: merged p95 at or under this…
    pub slo_p95: Duration,
    /// …and error rate at or under this.
    pub max_error_rate: f64,
    /// The breaking point must be at least this rate (iterations per second).
    pub min_breaking_rate: f64,
    /// The ceiling of the search past the planned steps (iterations per second).
    pub max_rate: Option<f64>,
    /// The target the capacity section sizes instances for.
    pub capacity: Option<CapacityTarget>,
}

/// A stress suite's capacity target: `target_rps` over all instances, each planned at
/// `1 - headroom` of the highest rate one instance held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityTarget {
    /// > 0.
    pub target_rps: f64,
    /// In `0..1`.
    pub headroom: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SoakSpec {
    pub max_memory_growth: f64,
    pub max_p95_growth: f64,
    /// Services whose `memory_series` is judged.
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChaosSpec {
    /// In time order.
    pub actions: Vec<ChaosAction>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosAction {
    pub at: Duration,
    /// `Postgres` or `Redis` (the plan refuses the app).
    pub service: Service,
    pub verb: ChaosVerb,
}

/// What an action does to its service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChaosVerb {
    /// Stop the service, keeping its data.
    Stop,
    /// Start a stopped service again.
    Start,
    /// Set a fault on the proxy between the app and the service (replacing any other).
    Fault(Fault),
    /// Clear the fault on that proxy.
    Heal,
}

impl ChaosVerb {
    /// The plan's key: `stop`, `start`, `latency`, `loss`, `reset`, `blackhole`, `heal`.
    pub fn key(&self) -> &'static str {
        match self {
            ChaosVerb::Stop => "stop",
            ChaosVerb::Start => "start",
            ChaosVerb::Fault(Fault::None) | ChaosVerb::Heal => "heal",
            ChaosVerb::Fault(f) => f.key(),
        }
    }

    /// The service is back to normal after this action (`start`, `heal`): errors and cache
    /// recovery are timed from the last one.
    pub fn recovers(&self) -> bool {
        matches!(self, ChaosVerb::Start | ChaosVerb::Heal)
    }

    /// The action breaks the service for the app (stop, or a fault other than latency).
    pub fn breaks(&self) -> bool {
        matches!(self, ChaosVerb::Stop | ChaosVerb::Fault(Fault::Loss { .. } | Fault::Reset | Fault::Blackhole))
    }
}

impl ChaosAction {
    /// The event text the orchestrator records for this action: `stop postgres`,
    /// `latency postgres 100ms ± 20ms`, `heal redis`.
    pub fn what(&self) -> String {
        let params = match self.verb {
            ChaosVerb::Fault(f) => f.params(),
            _ => String::new(),
        };
        match params.as_str() {
            "" => format!("{} {}", self.verb.key(), self.service),
            p => format!("{} {} {p}", self.verb.key(), self.service),
        }
    }

    /// Needs the fault proxy between the app and the service.
    pub fn needs_proxy(&self) -> bool {
        matches!(self.verb, ChaosVerb::Fault(_) | ChaosVerb::Heal)
    }
}

impl ChaosSpec {
    /// Some action sets or clears a network fault: the app must reach its services through
    /// the fault proxies.
    pub fn needs_proxy(&self) -> bool {
        self.actions.iter().any(ChaosAction::needs_proxy)
    }
}

/// What must hold in a chaos suite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expectation {
    /// `no_errors`: no failed request at all.
    NoErrors,
    /// `no_5xx_except_503`: the only 5xx status answered is 503.
    No5xxExcept503,
    /// `errors_stop_within:5s`: no failed request later than this after the last `start` or
    /// `heal`.
    ErrorsStopWithin(Duration),
    /// `breaker_cycle`: `refapp_breaker_state` went open and was closed again by the end.
    BreakerCycle,
    /// `cache_recovers`: cache hits grow again after redis's last `start` or `heal`.
    CacheRecovers,
    /// `timeouts_hold:2s`: no request was served slower than this (its service time, so a
    /// queue in front of the app does not count): the app's timeouts bound every wait.
    TimeoutsHold(Duration),
    /// `one_winner_per_slot:N`: exactly N responses 201 (N slots raced for).
    OneWinnerPerSlot(u64),
}

impl Expectation {
    /// Parses the plan's spelling; the error says what is accepted.
    pub fn parse(s: &str) -> Result<Expectation, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let no_arg = |e: Expectation| match arg {
            None => Ok(e),
            Some(_) => Err(format!("`{name}` takes no argument")),
        };
        match name {
            "no_errors" => no_arg(Expectation::NoErrors),
            "no_5xx_except_503" => no_arg(Expectation::No5xxExcept503),
            "breaker_cycle" => no_arg(Expectation::BreakerCycle),
            "cache_recovers" => no_arg(Expectation::CacheRecovers),
            "timeouts_hold" => {
                let a = arg.ok_or("`timeouts_hold` needs a duration, like \"timeouts_hold:2s\"")?;
                Ok(Expectation::TimeoutsHold(parse_duration(a)?))
            }
            "errors_stop_within" => {
                let a = arg.ok_or("`errors_stop_within` needs a duration, like \"errors_stop_within:5s\"")?;
                Ok(Expectation::ErrorsStopWithin(parse_duration(a)?))
            }
            "one_winner_per_slot" => {
                let a = arg.ok_or("`one_winner_per_slot` needs the number of slots, like \"one_winner_per_slot:10\"")?;
                match a.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Expectation::OneWinnerPerSlot(n)),
                    _ => Err(format!("{a:?} is not a number of slots: expected a whole number ≥ 1")),
                }
            }
            _ => Err(format!(
                "unknown expectation {s:?}: expected one of no_errors, no_5xx_except_503, errors_stop_within:<duration>, timeouts_hold:<duration>, breaker_cycle, cache_recovers, one_winner_per_slot:<N>"
            )),
        }
    }

    /// The name used for the check in `summary.checks`: the plan's spelling.
    pub fn name(&self) -> String {
        match self {
            Expectation::NoErrors => "no_errors".into(),
            Expectation::No5xxExcept503 => "no_5xx_except_503".into(),
            Expectation::ErrorsStopWithin(d) => format!("errors_stop_within:{}", humantime::format_duration(*d)),
            Expectation::TimeoutsHold(d) => format!("timeouts_hold:{}", humantime::format_duration(*d)),
            Expectation::BreakerCycle => "breaker_cycle".into(),
            Expectation::CacheRecovers => "cache_recovers".into(),
            Expectation::OneWinnerPerSlot(n) => format!("one_winner_per_slot:{n}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub executor: Executor,
    /// Offset from the suite's start.
    pub start: Duration,
    pub shape: Shape,
    pub exec: Exec,
    /// Time running iterations get to finish after the scenario's end.
    pub graceful_stop: Duration,
}

/// The load shape, one variant per executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    ConstantVus { vus: u32, duration: Duration },
    RampingVus { start_vus: u32, stages: Vec<(Duration, f64)> },
    ConstantArrivalRate { rate: f64, duration: Duration, pre_allocated_vus: u32, max_vus: u32 },
    RampingArrivalRate { start_rate: f64, stages: Vec<(Duration, f64)>, pre_allocated_vus: u32, max_vus: u32 },
}

/// A held step of a ramping-arrival-rate scenario: a stage whose target equals the previous
/// rate. A stress suite's steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hold {
    pub rate: f64,
    /// From the scenario's start.
    pub start: Duration,
    pub duration: Duration,
}

impl Shape {
    /// The held steps of a ramping-arrival-rate shape (none for other shapes).
    pub fn holds(&self) -> Vec<Hold> {
        let Shape::RampingArrivalRate { start_rate, stages, .. } = self else { return Vec::new() };
        let mut out = Vec::new();
        let (mut prev, mut offset) = (*start_rate, Duration::ZERO);
        for (d, target) in stages {
            if *target == prev && !d.is_zero() && *target > 0.0 {
                out.push(Hold { rate: *target, start: offset, duration: *d });
            }
            prev = *target;
            offset += *d;
        }
        out
    }

    /// Length of the scenario's timeline (warm-up included, graceful stop excluded).
    pub fn duration(&self) -> Duration {
        match self {
            Shape::ConstantVus { duration, .. } | Shape::ConstantArrivalRate { duration, .. } => *duration,
            Shape::RampingVus { stages, .. } | Shape::RampingArrivalRate { stages, .. } => stages.iter().map(|(d, _)| *d).sum(),
        }
    }
}

/// What one iteration does.
#[derive(Debug, Clone)]
pub enum Exec {
    Request(RequestId),
    /// One request per iteration, chosen by weight.
    Mix(Vec<(RequestId, u32)>),
    Workflow(Vec<Step>),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    pub think: Option<Think>,
}

/// What a workflow step does. The `RequestId` of a WebSocket action is its connection's
/// (the `ws` request's) id.
#[derive(Debug, Clone)]
pub enum Action {
    /// Sends an HTTP request.
    Http(RequestId),
    /// Opens the connection (kept when a `scope = "vu"` connection is already open).
    WsConnect(RequestId),
    /// Sends a JSON text message.
    WsSend(WsSend),
    /// Waits for a matching message; recorded under the connection's message endpoint.
    WsExpect(WsExpect),
    /// Closes the connection.
    WsClose(RequestId),
}

/// `ws_send`: a JSON text message on connection `ws`.
#[derive(Debug, Clone)]
pub struct WsSend {
    pub ws: RequestId,
    pub(crate) body: BodyTemplate,
}

impl WsSend {
    /// The message for one send.
    pub fn render(&self, vars: &mut VuVars) -> Result<String, RenderError> {
        Ok(self.body.render(vars)?.to_string())
    }
}

/// `ws_expect`: the first message on `ws` whose value at each JSON pointer equals the
/// rendered template (a string as is; a number, boolean or null when the text reads as the
/// same JSON value), within `timeout`.
#[derive(Debug, Clone)]
pub struct WsExpect {
    pub ws: RequestId,
    /// The endpoint the expectation is recorded under.
    pub message: RequestId,
    pub timeout: Duration,
    pub(crate) matches: Vec<(String, Template)>,
}

impl WsExpect {
    /// The `(JSON pointer, value)` pairs for one expectation.
    pub fn render(&self, vars: &mut VuVars) -> Result<Vec<(String, String)>, RenderError> {
        self.matches.iter().map(|(p, t)| Ok((p.clone(), t.render(vars)?))).collect()
    }
}

/// Whether a message carries every `(pointer, value)` pair.
pub fn message_matches(message: &Value, wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|(pointer, value)| match message.pointer(pointer) {
        Some(Value::String(s)) => s == value,
        Some(other) => serde_json::from_str::<Value>(value).is_ok_and(|v| v == *other),
        None => false,
    })
}

impl Step {
    /// The endpoints this step records into (none for `ws_send` and `ws_close`).
    pub fn endpoint(&self) -> Option<RequestId> {
        match &self.action {
            Action::Http(id) | Action::WsConnect(id) => Some(*id),
            Action::WsExpect(e) => Some(e.message),
            Action::WsSend { .. } | Action::WsClose(_) => None,
        }
    }

    /// The request the step names in the plan (a WebSocket action's connection).
    pub fn request(&self) -> RequestId {
        match &self.action {
            Action::Http(id) | Action::WsConnect(id) | Action::WsClose(id) => *id,
            Action::WsSend(WsSend { ws, .. }) | Action::WsExpect(WsExpect { ws, .. }) => *ws,
        }
    }
}

/// How a request talks to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Request and response.
    Http,
    /// A WebSocket connection: its endpoint is the connect (through the upgrade); `message`
    /// is the endpoint its expected messages are recorded under.
    WsConnect { scope: WsScope, message: RequestId },
    /// The messages expected on connection `connect`: latency from the end of the step
    /// before the expectation to the matching message.
    WsMessage { connect: RequestId },
}

impl Protocol {
    /// The summary's `kind` of the endpoint: `None` for HTTP.
    pub fn kind(self) -> Option<&'static str> {
        match self {
            Protocol::Http => None,
            Protocol::WsConnect { .. } => Some("ws_connect"),
            Protocol::WsMessage { .. } => Some("ws_message"),
        }
    }
}

/// How long a WebSocket connection lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsScope {
    /// Closed when the iteration ends.
    Iteration,
    /// Kept for the virtual user's life.
    Vu,
}

/// One request, ready to render.
#[derive(Debug, Clone)]
pub struct Request {
    /// The name statistics are grouped by.
    pub name: String,
    pub protocol: Protocol,
    pub method: Method,
    pub tags: Vec<String>,
    pub timeout: Duration,
    /// Expected statuses; empty means any 2xx.
    pub expect: Vec<u16>,
    pub(crate) path: Template,
    pub(crate) headers: Vec<(HeaderName, Template)>,
    pub(crate) body: Option<BodyTemplate>,
    pub(crate) captures: Vec<Capture>,
}

/// A request rendered for one send.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Path and query, starting with `/`.
    pub path_and_query: String,
    /// Default headers merged with the request's; `content-type: application/json` when
    /// there is a body.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
}

/// Why a capture failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaptureError {
    #[error("response body is not JSON")]
    NotJson,
    #[error("no value at JSON pointer `{pointer}` for `{var}`")]
    Missing { var: String, pointer: String },
}

impl Request {
    /// Whether `status` is what the plan expects for this request.
    pub fn is_expected(&self, status: u16) -> bool {
        if self.expect.is_empty() { (200..300).contains(&status) } else { self.expect.contains(&status) }
    }

    /// True when the response body must be kept to capture values from it.
    pub fn captures_anything(&self) -> bool {
        !self.captures.is_empty()
    }
}

/// Requests the scenarios can send: the endpoints a suite's summary lists. (Mix weights are
/// at least 1, so every request of a mix counts.)
pub fn exercised(scenarios: &[Scenario]) -> BTreeSet<RequestId> {
    let mut out = BTreeSet::new();
    for s in scenarios {
        match &s.exec {
            Exec::Request(id) => {
                out.insert(*id);
            }
            Exec::Mix(items) => out.extend(items.iter().map(|(id, _)| *id)),
            Exec::Workflow(steps) => out.extend(steps.iter().filter_map(Step::endpoint)),
        }
    }
    out
}

impl Suite {
    /// Requests this suite's scenarios can send: the endpoints its summary lists.
    pub fn exercised(&self) -> BTreeSet<RequestId> {
        exercised(&self.scenarios)
    }
}

impl Request {
    /// Renders the request for one send. Captures this request makes are cleared first, so
    /// a response that does not carry them leaves them unset rather than stale.
    pub fn render(&self, vars: &mut VuVars) -> Result<Rendered, RenderError> {
        let mut path_and_query = String::with_capacity(64);
        self.path.render_into(vars, &mut path_and_query)?;
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, t) in &self.headers {
            let text = t.render(vars)?;
            let value = HeaderValue::from_str(&text).map_err(|_| RenderError::BadHeader { name: name.as_str().to_string() })?;
            headers.push((name.clone(), value));
        }
        let body = match &self.body {
            Some(b) => {
                let value = b.render(vars)?;
                if !headers.iter().any(|(n, _)| n == header::CONTENT_TYPE) {
                    headers.push((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
                }
                Some(Bytes::from(serde_json::to_vec(&value).expect("a JSON value serializes")))
            }
            None => None,
        };
        for c in &self.captures {
            vars.clear_capture(c.slot);
        }
        Ok(Rendered { path_and_query, headers, body })
    }

    /// Stores the values this request captures from a JSON response body.
    pub fn capture(&self, body: &[u8], vars: &mut VuVars) -> Result<(), CaptureError> {
        if self.captures.is_empty() {
            return Ok(());
        }
        let json: Value = serde_json::from_slice(body).map_err(|_| CaptureError::NotJson)?;
        for c in &self.captures {
            let value = json.pointer(&c.pointer).ok_or_else(|| CaptureError::Missing { var: c.var.clone(), pointer: c.pointer.clone() })?;
            vars.set_capture(c.slot, value.clone());
        }
        Ok(())
    }
}
