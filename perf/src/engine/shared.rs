//! What the tasks of one suite run share: the requests, the target, the variables, the
//! recorder, and each scenario's counters. The run ([`super::run`]) makes them; the executors
//! ([`super::closed`], [`super::open`]) and the users ([`super::vu`]) read and update them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use tokio::time::Instant;

use super::client::Target;
use super::stats::{Gauge, Recorder};
use crate::plan::compiled::{Request, SharedVars};

/// What every task of a run shares.
pub(crate) struct Shared {
    pub requests: Vec<Request>,
    pub target: Arc<Target>,
    pub vars: Arc<SharedVars>,
    pub recorder: Recorder,
    pub gauge: Gauge,
    /// Requests that start before this are warm-up: not recorded.
    pub measured_start: Instant,
    pub late_after: Duration,
    pub seed: u64,
    /// `--shard K/N`: which of the schedule's starts are this run's.
    pub shard: Option<crate::plan::Shard>,
}

/// Counters one scenario's users and dispatcher update.
#[derive(Debug, Default)]
pub(crate) struct ScenarioCounters {
    pub iterations: AtomicU64,
    pub aborted: AtomicU64,
    pub interrupted: AtomicU64,
    pub dropped: AtomicU64,
    pub late: AtomicU64,
    /// Open model: scheduled starts in the measured part (made, late or dropped).
    pub scheduled: AtomicU64,
    pub max_vus: AtomicU32,
}
