//! Summaries: the versioned JSON each suite run writes.
//!
//! - [`model`]: the contract, described by `schema/summary.schema.json`;
//! - [`build()`]: a [`Summary`] from an engine [`crate::engine::SuiteResult`] and a
//!   [`RunContext`], SLOs evaluated by [`slo::evaluate`];
//! - [`hist`]: histogram encoding so summaries merge exactly;
//! - [`io`]: atomic writes and validated reads;
//! - [`host_info`] and [`git_info`]: what the orchestrator puts in the [`RunContext`].

mod build;
pub mod hist;
mod host;
pub mod io;
pub mod model;
pub mod slo;
pub mod testbed;

pub use build::{RunContext, build, latency};
pub use host::{cpu_score, git_info, host_info, testbed};
pub use io::{SummaryError, read, write_atomic};
pub use model::*;
pub use testbed::Testbed;
