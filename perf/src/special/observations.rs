//! What the orchestrator observed around a suite's run, besides what the engine measured: the
//! input of the verdicts next to the summary.

use std::collections::BTreeMap;

use super::stress::StressStep;
use crate::summary::Event;

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
