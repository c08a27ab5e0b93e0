//! The perf gate's library.
//!
//! The core is pure: [`plan`] parsing, statistics, [`compare`] and [`render`] are functions of
//! their inputs. Only the orchestration layer ([`env`], [`engine`]'s network side, [`github`])
//! touches processes, containers, sockets, files and GitHub.

pub mod cli;
pub mod compare;
pub mod engine;
pub mod env;
pub mod export;
pub mod faults;
pub mod github;
pub mod history;
pub mod plan;
pub mod render;
pub mod run;
pub mod special;
pub mod summary;
pub mod util;
pub mod verdict;

/// Version of the tool, recorded in every summary.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests_fuzz;
