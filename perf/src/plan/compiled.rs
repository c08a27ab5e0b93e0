//! The plan after validation: what the engine executes.
//!
//! Names are resolved to indices, durations to [`Duration`]s, templates are parsed once.
//! The engine never sees TOML, spans or template syntax: it asks a [`Request`] to render
//! itself against a virtual user's [`VuVars`] and to capture values from a response body.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use super::model::{Executor, HttpVersion, SloSpec, SuiteKind, Think};
use super::template::{BodyTemplate, Capture, Template};
use super::vars::VarTable;

pub use super::vars::{SharedVars, VuVars};

/// Index into [`Compiled::requests`].
pub type RequestId = usize;

/// A validated plan, with `--quick` and `--tags` already applied.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub requests: Vec<Request>,
    /// Suites in the order they run.
    pub suites: Vec<Suite>,
    pub http: HttpVersion,
    /// A scheduled start later than this counts as late.
    pub late_after: Duration,
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
    RampingArrivalRate {
        start_rate: f64,
        stages: Vec<(Duration, f64)>,
        pre_allocated_vus: u32,
        max_vus: u32,
    },
}

impl Shape {
    /// Length of the scenario's timeline (warm-up included, graceful stop excluded).
    pub fn duration(&self) -> Duration {
        match self {
            Shape::ConstantVus { duration, .. } | Shape::ConstantArrivalRate { duration, .. } => {
                *duration
            }
            Shape::RampingVus { stages, .. } | Shape::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|(d, _)| *d).sum()
            }
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
    pub request: RequestId,
    pub think: Option<Think>,
}

/// One request, ready to render.
#[derive(Debug, Clone)]
pub struct Request {
    /// The name statistics are grouped by.
    pub name: String,
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

/// Why a request could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// A captured value the template needs has not been captured (an earlier step failed
    /// or answered without it). The engine skips the rest of the iteration.
    #[error("variable `{0}` has not been captured yet")]
    MissingCapture(String),
    #[error("rendered header `{name}` is not a valid header value")]
    BadHeader { name: String },
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
