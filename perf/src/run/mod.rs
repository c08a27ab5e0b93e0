//! Orchestration of one gate run (`cargo xtask perf`): everything between the command line and
//! the pure parts. [`gate`] owns a run from the options to the judged, written results.
//!
//! 1. Validate every input before anything starts (`prepare.rs`, `baseline.rs`): the plan
//!    (compiled for the selected suites), the backend and testbed, the baseline summaries. Bad
//!    input is [`GateError::Input`] (exit 2) and no load is sent.
//! 2. Start the environment (local, docker or external backend): [`lifetime`] owns every
//!    environment's lifetime, for the gate, A/B mode and the experiment alike, and stops each
//!    one on every path (errors and Ctrl-C included).
//! 3. Per suite (`measure.rs`): scrape the app's metrics, run the load while sampling the
//!    services' resource use every second, scrape again, build the summary.
//! 4. Judge each suite (`judge.rs`, the one judge of every mode): compare with the baseline;
//!    when something regressed, run the suite once more and keep the verdict only if the
//!    re-run regresses too; write `<out>/<suite>.json` atomically.
//! 5. Build the report, write it and the results for other tools ([`outputs`]); the caller
//!    prints and publishes it.
//!
//! This file only names the rooms: every item lives in the file of its step, and the files
//! import each other downwards only (`options.rs` at the bottom, `gate.rs` on top).

pub mod ab;
pub mod baseline;
mod context;
pub mod experiment;
mod gate;
mod judge;
pub mod lifetime;
mod measure;
pub mod measured;
mod options;
pub mod outputs;
mod prepare;
mod profile;
pub mod scrape;
mod stress;
mod suites;
mod underneath;

pub use crate::util::Notes;
pub use baseline::{Baselines, Pick};
pub use gate::{GateOutcome, JudgedRun, gate};
pub use judge::{Judged, Judging, judge_suite};
pub use measure::measure_suite;
pub use options::{BaselineChoice, GateError, GateOptions, GateRun, Mode};
pub use prepare::{Prepared, plan_dir, prepare, prepare_on, resolve_testbed};
