//! What a suite run gives back: everything it measured ([`SuiteResult`]), or why it could not
//! run at all ([`EngineError`]).

use std::time::Duration;

use super::stats::{EndpointResult, Window};
use crate::plan::{Executor, SloSpec, SuiteKind};

/// Why a suite could not be run at all. Failures of the load itself are counted, not raised.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("bad base url `{url}`: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("tls setup failed: {0}")]
    Tls(String),
    #[error("setup step `{step}` failed: {reason}")]
    Setup { step: String, reason: String },
    #[error("the run was cancelled during setup")]
    Cancelled,
}

/// Schedule keeping of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResult {
    pub name: String,
    pub executor: Executor,
    /// Iterations started in the measured part and completed.
    pub iterations: u64,
    /// Iterations whose rest was skipped because a step lacked a captured value.
    pub aborted_iterations: u64,
    /// Open model: measured scheduled starts never made.
    pub dropped_iterations: u64,
    /// Open model: measured starts made later than `late_after`.
    pub late_starts: u64,
    /// Iterations cut at the end of the graceful stop, or by cancellation.
    pub interrupted_iterations: u64,
    /// Open model: scheduled starts in the measured part (made or dropped).
    pub scheduled_starts: u64,
    /// Most users at once (open model: allocated).
    pub max_vus: u32,
}

/// Share of late plus dropped starts above which an open-model run is invalid.
pub const BEHIND_SCHEDULE_LIMIT: f64 = 0.01;
/// …and at least this many of them: in a run of thirty starts, one late start is a moment of
/// the machine's, not a run that fell behind.
pub const BEHIND_SCHEDULE_MIN: u64 = 3;

/// The words every behind-schedule reason holds (a side of an A/B run judges its segments'
/// schedule keeping again as a whole, and sets their own reasons aside by these words).
pub const BEHIND_SCHEDULE: &str = "fell behind schedule";

impl ScenarioResult {
    /// The reason an open-model scenario makes the run invalid: late plus dropped starts
    /// above [`BEHIND_SCHEDULE_LIMIT`] of its scheduled starts, and at least
    /// [`BEHIND_SCHEDULE_MIN`] of them.
    pub fn behind_schedule(&self, late_after: Duration) -> Option<String> {
        behind_schedule(&self.name, self.late_starts, self.dropped_iterations, self.scheduled_starts, Some(late_after))
    }
}

/// [`ScenarioResult::behind_schedule`]'s rule on counts: late and dropped starts of
/// `scheduled`, `late_after` named when known.
pub fn behind_schedule(name: &str, late: u64, dropped: u64, scheduled: u64, late_after: Option<Duration>) -> Option<String> {
    let behind = late + dropped;
    if scheduled == 0 || behind < BEHIND_SCHEDULE_MIN || (behind as f64) <= BEHIND_SCHEDULE_LIMIT * scheduled as f64 {
        return None;
    }
    let late_after = late_after.map(|d| format!(" (more than {} after schedule)", humantime::format_duration(d))).unwrap_or_default();
    Some(format!(
        "scenario `{name}` {BEHIND_SCHEDULE}: {late} of {scheduled} starts were late{late_after} and {dropped} were dropped, over the {}% limit",
        BEHIND_SCHEDULE_LIMIT * 100.0
    ))
}

/// Everything a suite run measured; [`crate::summary::build`] makes the summary from it.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub suite: String,
    /// The compiled suite's definition hash, carried into the summary.
    pub suite_hash: String,
    pub kind: SuiteKind,
    /// Wall-clock start of the measured part.
    pub started_at: jiff::Timestamp,
    pub warmup: Duration,
    /// From the measured start to the end of the last scenario (graceful stops included).
    pub measured: Duration,
    /// The endpoints the suite's scenarios exercise (even with no request), in plan order.
    pub endpoints: Vec<EndpointResult>,
    pub scenarios: Vec<ScenarioResult>,
    /// Whole-suite windows, one per measured second (the last may be partial).
    pub windows: Vec<Window>,
    /// The suite's SLOs (`None` is `"*"`).
    pub slo: Vec<(Option<String>, SloSpec)>,
    /// Why the run cannot be trusted; empty when it can.
    pub invalid_reasons: Vec<String>,
    pub cancelled: bool,
    /// `--shard K/N`: the part of the plan's load this run sent.
    pub shard: Option<crate::plan::Shard>,
}
