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

mod client;
mod closed;
mod h1;
mod io;
mod open;
mod progress;
mod run;
pub mod schedule;
mod shared;
mod stats;
mod vu;
mod ws;

use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::plan::compiled::{Compiled, Suite};
use crate::plan::{Executor, SloSpec, SuiteKind};

pub use progress::{PLAIN_EVERY, ProgressMode};
pub use stats::{EndpointResult, EndpointWindow, ErrorKind, Window, WindowReport};

/// How to run a suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `http://host:port` or `https://host:port`, optionally with a path prefix.
    pub base_url: String,
    /// Cancelling it stops the run promptly; the result says it was interrupted.
    pub cancel: CancellationToken,
    pub progress: ProgressMode,
    /// Seeds every virtual user's random draws (variables, think times, mixes).
    pub seed: u64,
    pub hooks: Hooks,
    /// Certificates trusted for https besides the system roots (a private CA).
    pub tls_roots: Vec<CertificateDer<'static>>,
    /// The suite's timeline starts no earlier than this wall-clock time (after its setup):
    /// shards started at different moments begin their load together (`--start-at`).
    pub start_at: Option<std::time::SystemTime>,
}

impl RunOptions {
    /// Options with a fresh cancellation token, automatic progress, seed 0 and no hooks.
    pub fn new(base_url: impl Into<String>) -> RunOptions {
        RunOptions {
            base_url: base_url.into(),
            cancel: CancellationToken::new(),
            progress: ProgressMode::Auto,
            seed: 0,
            hooks: Hooks::default(),
            tls_roots: Vec::new(),
            start_at: None,
        }
    }
}

/// Live observation of a run; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Set once, when the load starts.
    pub clock: Option<watch::Sender<Option<RunClock>>>,
    /// One report per measured second, sent with `try_send`.
    pub windows: Option<mpsc::Sender<WindowReport>>,
}

/// When a run's parts happen, for things scheduled beside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunClock {
    /// Start of the suite's timeline (after setup).
    pub suite_start: Instant,
    /// Start of the measured part (`suite_start + warmup`); window `t` starts `t` seconds later.
    pub measured_start: Instant,
    /// When the last scenario stops starting iterations (graceful stops come after).
    pub load_end: Instant,
    /// Wall-clock time of `measured_start`.
    pub measured_start_wall: jiff::Timestamp,
}

/// Why a suite could not be run at all. Failures of the load itself are counted, not raised.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("bad base url `{url}`: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("tls setup failed: {0}")]
    Tls(String),
    #[error("setup step `{step}` failed: {reason}")]
    Setup { step: String, reason: String },
    #[error("the run was cancelled during setup")]
    Cancelled,
}

/// Schedule keeping of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResult {
    pub name: String,
    pub executor: Executor,
    /// Iterations started in the measured part and completed.
    pub iterations: u64,
    /// Iterations whose rest was skipped because a step lacked a captured value.
    pub aborted_iterations: u64,
    /// Open model: measured scheduled starts never made.
    pub dropped_iterations: u64,
    /// Open model: measured starts made later than `late_after`.
    pub late_starts: u64,
    /// Iterations cut at the end of the graceful stop, or by cancellation.
    pub interrupted_iterations: u64,
    /// Open model: scheduled starts in the measured part (made or dropped).
    pub scheduled_starts: u64,
    /// Most users at once (open model: allocated).
    pub max_vus: u32,
}

/// Share of late plus dropped starts above which an open-model run is invalid.
pub const BEHIND_SCHEDULE_LIMIT: f64 = 0.01;

impl ScenarioResult {
    /// The reason an open-model scenario makes the run invalid: late plus dropped starts
    /// above [`BEHIND_SCHEDULE_LIMIT`] of its scheduled starts.
    pub fn behind_schedule(&self, late_after: Duration) -> Option<String> {
        let behind = self.late_starts + self.dropped_iterations;
        if self.scheduled_starts == 0 || (behind as f64) <= BEHIND_SCHEDULE_LIMIT * self.scheduled_starts as f64 {
            return None;
        }
        Some(format!(
            "scenario `{}` fell behind schedule: {} of {} starts were late (more than {} after schedule) and {} were dropped, over the {}% limit",
            self.name,
            self.late_starts,
            self.scheduled_starts,
            humantime::format_duration(late_after),
            self.dropped_iterations,
            BEHIND_SCHEDULE_LIMIT * 100.0
        ))
    }
}

/// Everything a suite run measured; [`crate::summary::build`] makes the summary from it.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub suite: String,
    /// The compiled suite's definition hash, carried into the summary.
    pub suite_hash: String,
    pub kind: SuiteKind,
    /// Wall-clock start of the measured part.
    pub started_at: jiff::Timestamp,
    pub warmup: Duration,
    /// From the measured start to the end of the last scenario (graceful stops included).
    pub measured: Duration,
    /// The endpoints the suite's scenarios exercise (even with no request), in plan order.
    pub endpoints: Vec<EndpointResult>,
    pub scenarios: Vec<ScenarioResult>,
    /// Whole-suite windows, one per measured second (the last may be partial).
    pub windows: Vec<Window>,
    /// The suite's SLOs (`None` is `"*"`).
    pub slo: Vec<(Option<String>, SloSpec)>,
    /// Why the run cannot be trusted; empty when it can.
    pub invalid_reasons: Vec<String>,
    pub cancelled: bool,
    /// `--shard K/N`: the part of the plan's load this run sent.
    pub shard: Option<crate::plan::Shard>,
}

/// Runs one suite of a compiled plan against `opts.base_url`.
pub async fn run_suite(compiled: &Compiled, suite: &Suite, opts: RunOptions) -> Result<SuiteResult, EngineError> {
    run::run_suite(compiled, suite, opts).await
}
