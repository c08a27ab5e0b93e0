//! Verdicts of the special suite kinds (spike, stress, soak, chaos), as pass/fail
//! [`Check`]s and [`Summary::figures`]. Pure: a function of the compiled suite, the summary
//! the engine's results made, and what the orchestrator observed around the run.
//!
//! Times: plan times ([`Special`]) are measured from the suite's timeline start; summary
//! windows, events and metric samples from the measured start (after the warm-up). Every
//! evaluator converts by subtracting `summary.run.warmup_s`.

mod chaos;
mod soak;
mod spike;
mod stress;
#[cfg(test)]
mod tests;

use crate::util::median;
use std::collections::BTreeMap;

use crate::plan::compiled::{Special, Suite};
use crate::summary::{Check, Event, Summary, Window};

pub use soak::{Fit, fit};
pub use stress::{MAX_EXTRA_STEPS, Next, Outcome, SearchEnd, StressStep, instances_needed, measure_extra_step, measure_steps, next_step};

/// What the orchestrator saw during a suite's run, besides what the engine measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// What was done to the environment and when (seconds from the measured start), for
    /// example `Event { t: 5.0, what: "stop postgres" }` (see `ChaosAction::what`).
    pub events: Vec<Event>,
    /// Per-second scrapes of the app's Prometheus series: (seconds from the measured start,
    /// series as written with its labels → value), in time order.
    pub metrics: Vec<(f64, BTreeMap<String, f64>)>,
    /// The run's warm-up in seconds (the same as `summary.run.warmup_s`, which is the one
    /// used for conversions).
    pub warmup_s: f64,
    /// A stress suite's extra steps, run after the planned ones by the search for the
    /// breaking point (each measured in a run of its own), in the order they ran.
    pub stress_extra: Vec<StressStep>,
}

/// Appends the checks and figures of the suite's kind to `summary` and copies the observed
/// events into `summary.events` (callers should not copy them too). Nothing happens for
/// `load` suites. Call it once per summary, after `summary::build` and after the resources
/// (`summary.resources`, used by soak) are filled in.
pub fn evaluate(suite: &Suite, summary: &mut Summary, obs: &Observations) {
    let Some(special) = &suite.special else { return };
    summary.events.extend(obs.events.iter().cloned());
    summary.events.sort_by(|a, b| a.t.total_cmp(&b.t));
    let warmup = summary.run.warmup_s;
    match special {
        Special::Spike(s) => spike::evaluate(s, summary, warmup),
        Special::Stress(s) => stress::evaluate(s, suite, summary, &obs.stress_extra),
        Special::Soak(s) => soak::evaluate(s, summary),
        Special::Chaos(s) => chaos::evaluate(s, summary, obs, warmup),
    }
}

fn check(summary: &mut Summary, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
    summary.checks.push(Check { name: name.into(), passed, detail: detail.into() });
}

fn figure(summary: &mut Summary, key: impl Into<String>, value: impl Into<serde_json::Value>) {
    summary.figures.insert(key.into(), value.into());
}

/// A float as JSON; non-finite values (which JSON cannot hold) become `null`.
fn num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Windows lying entirely within `[from, to)` seconds of the measured part.
fn windows_within(windows: &[Window], from: f64, to: f64) -> impl Iterator<Item = &Window> {
    windows.iter().filter(move |w| w.t as f64 >= from && w.t as f64 + 1.0 <= to)
}
