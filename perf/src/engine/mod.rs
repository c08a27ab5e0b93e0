//! The load engine: executors, HTTP, statistics, progress.
//!
//! [`run_suite`] runs one compiled suite against a base URL and returns a [`SuiteResult`]:
//! per-endpoint HDR histograms and counts, per-second windows, schedule keeping per scenario.
//! [`crate::summary::build`] turns it into the published [`crate::summary::Summary`].
//!
//! # Model
//! - Each virtual user owns one HTTP connection: plain `http://` with HTTP/1.1 (the default)
//!   through `h1.rs` (one keep-alive exchange at a time on the user's own socket, the request's
//!   bytes built into a reused buffer, httparse for the response head); HTTP/2 or https through
//!   hyper's low-level client, with rustls and the system roots plus
//!   [`RunOptions::tls_roots`]. A user reconnects when the server closes its connection.
//! - Executors use k6's names and meanings: `constant-vus` and `ramping-vus` (closed model),
//!   `constant-arrival-rate` and `ramping-arrival-rate` (open model: latency from the
//!   scheduled start, service time from the actual start; late and dropped starts counted).
//! - The suite's timeline starts after its setup steps. Requests that start in its first
//!   `warmup` are not recorded; the measured part begins at `start + warmup` and windows are
//!   whole seconds from there.
//! - Memory is fixed by the plan: histograms and counters per endpoint, a few numbers per
//!   second for windows, never a list of requests.
//!
//! # Hooks for the orchestrator
//! Things that run beside a suite (resource sampling, chaos actions, scrapes) get:
//! - [`Hooks::clock`]: a `watch` sender that receives a [`RunClock`] as soon as the load
//!   starts (after setup), with the `Instant` the measured part begins and when the load ends;
//! - [`Hooks::windows`]: an `mpsc` sender that receives a [`WindowReport`] each time a
//!   measured second closes. The engine never waits for the receiver (`try_send`): a receiver
//!   that falls more than the channel's capacity behind misses windows; the summary still
//!   has them all.
//!
//! ```no_run
//! # async fn demo(compiled: &perf::plan::Compiled) -> Result<(), perf::engine::EngineError> {
//! use perf::engine::{Hooks, RunOptions, run_suite};
//! let (clock_tx, mut clock_rx) = tokio::sync::watch::channel(None);
//! let (win_tx, mut win_rx) = tokio::sync::mpsc::channel(64);
//! let mut opts = RunOptions::new("http://127.0.0.1:8080");
//! opts.hooks = Hooks { clock: Some(clock_tx), windows: Some(win_tx) };
//! let sampler = async move {
//!     let clock = clock_rx.wait_for(|c| c.is_some()).await.map(|c| c.clone());
//!     while let Some(w) = win_rx.recv().await { let _ = (&clock, w.suite.requests); }
//! };
//! let (result, ()) = tokio::join!(run_suite(compiled, &compiled.suites[0], opts), sampler);
//! let _ = result?;
//! # Ok(()) }
//! ```
//!
//! Cancelling [`RunOptions::cancel`] stops the run promptly: in-flight requests are abandoned
//! (their iterations count as interrupted) and the result has `cancelled` set and an invalid
//! reason.
//!
//! # Files
//! What goes in ([`RunOptions`], [`Hooks`], [`RunClock`]) is in `options`, what comes out
//! ([`SuiteResult`], [`EngineError`]) in `result`; `run` drives a suite, `closed` and `open`
//! are the two models' executors (`on_time` begins the open model's starts on time), `vu` a
//! virtual user, `client`, `h1` and `ws` the protocols, `stats` the recording, `progress` the
//! live line.

mod client;
mod closed;
mod h1;
mod io;
mod on_time;
mod open;
mod options;
mod progress;
mod result;
mod run;
pub mod schedule;
mod shared;
mod stats;
mod vu;
mod ws;

use crate::plan::compiled::{Compiled, Suite};

pub use options::{Hooks, RunClock, RunOptions};
pub use progress::{PLAIN_EVERY, ProgressMode};
pub use result::{BEHIND_SCHEDULE, BEHIND_SCHEDULE_LIMIT, EngineError, ScenarioResult, SuiteResult, behind_schedule};
pub use stats::{EndpointResult, EndpointWindow, ErrorKind, Segment, Window, WindowReport};

/// Runs one suite of a compiled plan against `opts.base_url`.
pub async fn run_suite(compiled: &Compiled, suite: &Suite, opts: RunOptions) -> Result<SuiteResult, EngineError> {
    run::run_suite(compiled, suite, opts).await
}
