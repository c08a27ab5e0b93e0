//! A testbed's noise: how far each endpoint's metrics moved between two runs of the same code
//! on it (an A/A), recorded beside the stored baseline by the nightly (`--update-baseline
//! --measure-noise`). Against a stored baseline, a latency change no larger than what the A/A
//! showed never counts (the floor from measured noise), unless the plan sets its own floor.
//!
//! Resampling a run's segments sees the noise *within* each run; what changes *between* two
//! runs an hour apart (another neighbour, a warmer cache, the CPU's frequency) only an A/A
//! shows, which is why it is measured, not assumed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{Metric, SuiteComparison};

/// One suite's noise on one testbed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    pub suite: String,
    /// The testbed the A/A ran on (its key).
    pub testbed: String,
    /// RFC 3339 time of the A/A's second run.
    pub recorded_at: String,
    /// Per endpoint and metric, how far the second run moved from the first: a fraction for
    /// latency and throughput, percentage points for the error rate.
    pub endpoints: BTreeMap<String, BTreeMap<Metric, f64>>,
}

impl Noise {
    /// The noise an A/A comparison (the second run judged against the first) shows.
    pub fn from_aa(aa: &SuiteComparison, testbed: &str, recorded_at: &str) -> Noise {
        let endpoints = aa
            .endpoints
            .iter()
            .map(|e| {
                let moved = e
                    .metrics
                    .iter()
                    .filter_map(|m| {
                        let v = if m.metric == Metric::ErrorRate { m.delta_abs } else { m.delta_rel };
                        v.filter(|v| v.is_finite()).map(|v| (m.metric, (v.abs() * 1e4).round() / 1e4))
                    })
                    .collect();
                (e.name.clone(), moved)
            })
            .collect();
        Noise { suite: aa.suite.clone(), testbed: testbed.to_string(), recorded_at: recorded_at.to_string(), endpoints }
    }

    /// What the A/A showed for `metric` of `endpoint`, if it was measured.
    pub fn get(&self, endpoint: &str, metric: Metric) -> Option<f64> {
        self.endpoints.get(endpoint)?.get(&metric).copied()
    }
}
