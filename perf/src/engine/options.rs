//! What a suite run is given: where to send the load, how to report progress, the seed, and
//! the hooks through which the orchestrator watches the run.

use std::time::Instant;

use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::progress::ProgressMode;
use super::stats::WindowReport;

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

/// Live observation of a run; see "Hooks for the orchestrator" in [the engine's documentation](crate::engine).
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
