//! Summaries: the versioned JSON each suite run writes.
//!
//! - [`model`]: the contract, described by `schema/summary.schema.json`;
//! - [`build()`]: a [`Summary`] from an engine [`crate::engine::SuiteResult`] and a
//!   [`RunContext`], SLOs evaluated by [`slo::evaluate`];
//! - [`hist`]: histogram encoding so summaries merge exactly;
//! - [`io`]: atomic writes and validated reads;
//! - [`merge()`]: the summaries of a suite's shards as one, exactly where the data allows;
//! - [`concat()`]: consecutive runs of a suite (an A/B side's segments) as one, and
//!   [`concat_passes()`]: an A/B side's passes (or a suite's two runs with `--measure-noise`)
//!   as one, every pass's segments kept;
//! - [`host_info`] and [`git_info`]: what the orchestrator puts in the [`RunContext`].

mod build;
mod concat;
pub mod hist;
mod host;
pub mod io;
mod merge;
pub mod model;
pub mod slo;
pub mod testbed;

pub use build::{RunContext, build, latency};
pub use concat::{concat, concat_passes};
pub use host::{cpu_score, git_info, host_info, testbed};
pub use io::{SummaryError, read, read_folder, write_atomic};
pub use merge::{MergeError, merge};
pub use model::*;
pub use testbed::Testbed;
