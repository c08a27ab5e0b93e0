//! Open-model executors, constant-arrival-rate and ramping-arrival-rate: iteration `i` has a
//! scheduled start computed from the rate curve ([`super::schedule::Arrivals`]), whatever the
//! responses do.
//!
//! `pre_allocated_vus` users exist from the start; when none is free at a scheduled start,
//! another is added up to `max_vus`. When all `max_vus` are busy the start waits for the first
//! user to come back and is made late: its latency is still measured from the scheduled start,
//! so the queueing the server caused is in the numbers (coordinated omission), while service
//! time is measured from the actual start. Starts made more than `late_after` after their
//! schedule are counted as late; starts still waiting when the scenario ends are dropped.
//! A start begins on time to the tens of microseconds ([`OnTime`]; tokio's timer alone made
//! each one 0–2 ms late, and that lateness was in every latency).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::on_time::OnTime;
use super::schedule::Arrivals;
use super::shared::{ScenarioCounters, Shared};
use super::vu::{Ended, Vu, iteration};
use crate::plan::compiled::{Scenario, Shape};

/// Runs an open-model scenario from `start` to its end plus its graceful stop.
pub(crate) async fn run(
    shared: Arc<Shared>,
    scenario: Arc<Scenario>,
    counters: Arc<ScenarioCounters>,
    start: Instant,
    id_base: usize,
    cancel: CancellationToken,
) {
    let (mut arrivals, pre, max) = arrivals_of(&scenario.shape);
    let end = start + scenario.shape.duration();
    let graceful_stop = scenario.graceful_stop;
    let iterations = Iterations { shared: shared.clone(), scenario, counters: counters.clone(), cut: cancel.child_token() };
    let mut users = Users::new(&shared, &counters, pre, max, id_base);
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Vu>();
    let mut tasks = JoinSet::new();
    let late_after = shared.late_after;
    let on_time = OnTime::new();

    // `--shard K/N`: every N-th start of the whole schedule, from the K-th, so that the
    // shards' starts interleave into the plan's evenly spaced arrivals.
    let mine = |i: u64| shared.shard.is_none_or(|s| i % u64::from(s.count) == u64::from(s.index - 1));
    while let Some((i, offset)) = arrivals.next() {
        if !mine(i) {
            continue;
        }
        let scheduled = start + offset;
        let measured = scheduled >= shared.measured_start;
        tokio::select! {
            _ = on_time.until(scheduled) => {}
            _ = cancel.cancelled() => break,
        }
        while let Ok(vu) = back_rx.try_recv() {
            users.idle.push(vu);
        }
        while tasks.try_join_next().is_some() {}
        let vu = match users.free(&shared, &counters) {
            Some(vu) => vu,
            None => {
                // Every user is busy: this start waits for one, until the scenario ends.
                let got = tokio::select! {
                    vu = back_rx.recv() => vu,
                    _ = sleep_until(end) => None,
                    _ = cancel.cancelled() => None,
                };
                match got {
                    Some(vu) => vu,
                    None => {
                        if !cancel.is_cancelled() {
                            let rest = arrivals.by_ref().filter(|(_, o)| start + *o >= shared.measured_start).count();
                            let dropped = rest as u64 + measured as u64;
                            counters.dropped.fetch_add(dropped, Ordering::Relaxed);
                            counters.scheduled.fetch_add(dropped, Ordering::Relaxed);
                        }
                        break;
                    }
                }
            }
        };
        if measured {
            counters.scheduled.fetch_add(1, Ordering::Relaxed);
            if Instant::now().saturating_duration_since(scheduled) > late_after {
                counters.late.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (iterations, back) = (iterations.clone(), back_tx.clone());
        tasks.spawn(async move {
            let vu = iterations.run(vu, scheduled, measured).await;
            let _ = back.send(vu);
        });
    }
    drop(back_tx);
    stop(&mut tasks, end.max(Instant::now()) + graceful_stop, &cancel, &iterations.cut).await;
}

/// The arrivals of an open-model shape, with its `pre_allocated_vus` and `max_vus`.
fn arrivals_of(shape: &Shape) -> (Arrivals, u32, u32) {
    match shape {
        Shape::ConstantArrivalRate { rate, duration, pre_allocated_vus, max_vus } => {
            (Arrivals::constant(*rate, *duration), *pre_allocated_vus, *max_vus)
        }
        Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus, max_vus } => {
            (Arrivals::ramping(*start_rate, stages), *pre_allocated_vus, *max_vus)
        }
        _ => unreachable!("closed-model shape given to the open executor"),
    }
}

/// The scenario's users that are not running an iteration, and how many exist: the
/// pre-allocated ones at first, more up to `max` when a start finds none free.
struct Users {
    idle: Vec<Vu>,
    allocated: usize,
    max: usize,
    id_base: usize,
}

impl Users {
    fn new(shared: &Shared, counters: &ScenarioCounters, pre: u32, max: u32, id_base: usize) -> Users {
        let idle: Vec<Vu> = (0..pre as usize).map(|i| Vu::new(shared, id_base + i)).collect();
        counters.max_vus.fetch_max(idle.len() as u32, Ordering::Relaxed);
        Users { allocated: idle.len(), idle, max: max.max(pre).max(1) as usize, id_base }
    }

    /// An idle user, or a new one while fewer than `max` exist; `None` when all are busy.
    fn free(&mut self, shared: &Shared, counters: &ScenarioCounters) -> Option<Vu> {
        if let Some(vu) = self.idle.pop() {
            return Some(vu);
        }
        if self.allocated >= self.max {
            return None;
        }
        self.allocated += 1;
        counters.max_vus.fetch_max(self.allocated as u32, Ordering::Relaxed);
        Some(Vu::new(shared, self.id_base + self.allocated - 1))
    }
}

/// What every iteration task of the scenario needs; a clone is a few reference counts.
#[derive(Clone)]
struct Iterations {
    shared: Arc<Shared>,
    scenario: Arc<Scenario>,
    counters: Arc<ScenarioCounters>,
    /// Cancelled at the hard stop (end + graceful stop) or with the run: cuts the iterations
    /// in flight.
    cut: CancellationToken,
}

impl Iterations {
    /// Runs one iteration on `vu`, with latency from `scheduled`, counts how it ended (a cut
    /// always; a completed or aborted one when `measured`), and gives the user back.
    async fn run(self, mut vu: Vu, scheduled: Instant, measured: bool) -> Vu {
        self.shared.gauge.inc();
        let ended = tokio::select! {
            biased;
            _ = self.cut.cancelled() => None,
            e = iteration(&self.shared, &mut vu, &self.scenario.exec, Some(scheduled)) => Some(e),
        };
        self.shared.gauge.dec();
        match ended {
            None => {
                self.counters.interrupted.fetch_add(1, Ordering::Relaxed);
            }
            Some(Ended::Completed) if measured => {
                self.counters.iterations.fetch_add(1, Ordering::Relaxed);
            }
            Some(Ended::Aborted) if measured => {
                self.counters.aborted.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {}
        }
        vu
    }
}

/// Lets the iterations in flight finish until `hard` (or the run's cancellation), then cuts
/// the rest and waits for them to notice.
async fn stop(tasks: &mut JoinSet<()>, hard: Instant, cancel: &CancellationToken, cut: &CancellationToken) {
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
    cut.cancel();
    while tasks.join_next().await.is_some() {}
}
