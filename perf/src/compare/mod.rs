//! Comparison of a run with a baseline: the regression rule. Pure: functions of summaries.
//!
//! Per suite and per endpoint, five metrics are compared: latency p50, p95 and p99 (more than
//! `threshold` worse is a regression), throughput (more than `threshold` lower), and the error
//! rate (more than `error_rate_points` percentage points higher: a ratio on zero means
//! nothing). A change counts only when it is beyond the threshold, larger than the absolute
//! floor (latency), measured on at least `min_samples` requests on both sides, and significant
//! at `alpha` by a one-sided test. [`rule`] states the order of these checks; [`units`] says
//! which samples the tests compare and why.
//!
//! Entry points:
//! - [`compare_suite_with`] (and [`compare_suite`]): a run against a stored summary, or A/B's
//!   head against its base (paired segments). One rule for both: every latency percentile is
//!   read from every request, and its change comes with a confidence interval from the
//!   segments resampled (`resample.rs`);
//! - [`compare_rounds`]: the nightly history's change points, whole runs (nights) as units.

mod hist;
mod model;
mod noise;
pub mod profile;
pub mod resample;
mod rounds;
mod rule;
mod shift;
pub mod stats;
mod suite;
pub mod underneath;
pub mod units;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rounds;
#[cfg(test)]
mod tests_shift;
#[cfg(test)]
mod tests_sim;

pub use model::*;
pub use noise::Noise;
pub use rounds::compare_rounds;
pub use rule::{MARGIN, describe_change, describe_interval, fmt_p};
pub use suite::{Context, compare_suite, compare_suite_with};
