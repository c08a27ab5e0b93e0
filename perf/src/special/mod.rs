//! Verdicts of the special suite kinds (spike, stress, soak, chaos), as pass/fail
//! [`Check`](crate::summary::Check)s and [`Summary::figures`]. Pure: a function of the compiled suite, the summary
//! the engine's results made, and what the orchestrator observed around the run.
//!
//! Times: plan times ([`Special`]) are measured from the suite's timeline start; summary
//! windows, events and metric samples from the measured start (after the warm-up). Every
//! evaluator converts by subtracting `summary.run.warmup_s`.
//!
//! One file per kind; [`Observations`] (what the orchestrator saw) in `observations`, and the
//! few ways a verdict is written into a summary in `verdict`.

mod chaos;
mod observations;
mod soak;
mod spike;
mod stress;
#[cfg(test)]
mod tests;
mod verdict;

use crate::plan::compiled::{Special, Suite};
use crate::summary::Summary;

pub use observations::Observations;
pub use soak::{Fit, fit};
pub use stress::{MAX_EXTRA_STEPS, Next, Outcome, SearchEnd, StressStep, instances_needed, measure_extra_step, measure_steps, next_step};

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
