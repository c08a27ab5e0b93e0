//! Closed-model executors, constant-vus and ramping-vus: a fixed or staged number of users,
//! each starting its next iteration when the previous one ends (think time included).
//!
//! The controller walks the user-count steps of the shape ([`super::schedule::vu_steps`]).
//! User `i` runs while `i` is below the current target; a user above the target finishes its
//! iteration and stops. At the scenario's end no iteration starts; running ones get
//! `graceful_stop` to finish, then they are cut and counted as interrupted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::schedule::vu_steps;
use super::shared::{ScenarioCounters, Shared};
use super::vu::{Ended, Vu, iteration};
use crate::plan::compiled::{Scenario, Shape};

struct Ctl {
    shared: Arc<Shared>,
    scenario: Arc<Scenario>,
    counters: Arc<ScenarioCounters>,
    target: AtomicU32,
    /// Set at the scenario's end: no new iteration starts.
    ending: AtomicBool,
    /// Cancelled at the hard stop (end + graceful stop) or when the run is cancelled.
    cut: CancellationToken,
    running: Vec<AtomicBool>,
    /// Users parked between runs keep their connection and captures.
    parked: Mutex<Vec<Option<Vu>>>,
    id_base: usize,
    alive: AtomicU32,
}

/// Runs a closed-model scenario from `start` to its end plus its graceful stop.
pub(crate) async fn run(
    shared: Arc<Shared>,
    scenario: Arc<Scenario>,
    counters: Arc<ScenarioCounters>,
    start: Instant,
    id_base: usize,
    cancel: CancellationToken,
) {
    let (steps, duration) = match &scenario.shape {
        Shape::ConstantVus { vus, duration } => (vec![(Duration::ZERO, *vus)], *duration),
        Shape::RampingVus { start_vus, stages } => (vu_steps(*start_vus, stages), scenario.shape.duration()),
        _ => unreachable!("open-model shape given to the closed executor"),
    };
    let max = steps.iter().map(|s| s.1).max().unwrap_or(0) as usize;
    let ctl = Arc::new(Ctl {
        shared,
        scenario: scenario.clone(),
        counters,
        target: AtomicU32::new(0),
        ending: AtomicBool::new(false),
        cut: cancel.child_token(),
        running: (0..max).map(|_| AtomicBool::new(false)).collect(),
        parked: Mutex::new((0..max).map(|_| None).collect()),
        id_base,
        alive: AtomicU32::new(0),
    });
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for (offset, n) in steps {
        if offset >= duration && !duration.is_zero() {
            break;
        }
        tokio::select! {
            _ = sleep_until(start + offset) => {}
            _ = cancel.cancelled() => break,
        }
        ctl.target.store(n, Ordering::Release);
        for i in 0..n as usize {
            spawn_if_idle(&ctl, i, &mut tasks);
        }
        while tasks.try_join_next().is_some() {}
    }
    tokio::select! {
        _ = sleep_until(end) => {}
        _ = cancel.cancelled() => {}
    }
    ctl.ending.store(true, Ordering::Release);
    let hard = end.max(Instant::now()) + scenario.graceful_stop;
    let finished = {
        let drained = async { while tasks.join_next().await.is_some() {} };
        tokio::select! {
            _ = drained => true,
            _ = sleep_until(hard) => false,
            _ = cancel.cancelled() => false,
        }
    };
    if finished {
        return;
    }
    ctl.cut.cancel();
    while tasks.join_next().await.is_some() {}
}

fn spawn_if_idle(ctl: &Arc<Ctl>, i: usize, tasks: &mut JoinSet<()>) {
    if ctl.running[i].compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        let ctl = ctl.clone();
        tasks.spawn(async move { user(ctl, i).await });
    }
}

/// Whether user `i` should start another iteration.
fn wanted(ctl: &Ctl, i: usize) -> bool {
    // A cut is noticed by the user's select on the token, which is polled first.
    !ctl.ending.load(Ordering::Acquire) && (i as u32) < ctl.target.load(Ordering::Acquire)
}

async fn user(ctl: Arc<Ctl>, i: usize) {
    let shared = &ctl.shared;
    let mut vu = ctl.parked.lock()[i].take().unwrap_or_else(|| Vu::new(shared, ctl.id_base + i));
    let alive = ctl.alive.fetch_add(1, Ordering::Relaxed) + 1;
    ctl.counters.max_vus.fetch_max(alive, Ordering::Relaxed);
    shared.gauge.inc();
    // Registered once: a fresh `cancelled()` per iteration would cost a lock each time.
    let cut = ctl.cut.cancelled();
    tokio::pin!(cut);
    'user: loop {
        while wanted(&ctl, i) {
            let began = Instant::now();
            let ended = tokio::select! {
                biased;
                _ = &mut cut => None,
                e = iteration(shared, &mut vu, &ctl.scenario.exec, None) => Some(e),
            };
            let measured = began >= shared.measured_start;
            match ended {
                None => {
                    ctl.counters.interrupted.fetch_add(1, Ordering::Relaxed);
                    ctl.running[i].store(false, Ordering::Release);
                    break 'user;
                }
                Some(Ended::Completed) if measured => {
                    ctl.counters.iterations.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ended::Aborted) if measured => {
                    ctl.counters.aborted.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
            }
            // An iteration that aborts at once never awaits: let the scheduler in.
            tokio::task::consume_budget().await;
        }
        ctl.running[i].store(false, Ordering::Release);
        // The target may have risen again between the check and the store: take the slot
        // back rather than leave it empty until the next step.
        let retake = wanted(&ctl, i)
            && !ctl.cut.is_cancelled()
            && ctl.running[i].compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if !retake {
            break;
        }
    }
    shared.gauge.dec();
    ctl.alive.fetch_sub(1, Ordering::Relaxed);
    ctl.parked.lock()[i] = Some(vu);
}
