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

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

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
    let (mut arrivals, pre, max) = match &scenario.shape {
        Shape::ConstantArrivalRate { rate, duration, pre_allocated_vus, max_vus } => {
            (Arrivals::constant(*rate, *duration), *pre_allocated_vus, *max_vus)
        }
        Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus, max_vus } => {
            (Arrivals::ramping(*start_rate, stages), *pre_allocated_vus, *max_vus)
        }
        _ => unreachable!("closed-model shape given to the open executor"),
    };
    let max = max.max(pre).max(1) as usize;
    let end = start + scenario.shape.duration();
    let cut = cancel.child_token();
    let mut idle: Vec<Vu> = (0..pre as usize).map(|i| Vu::new(&shared, id_base + i)).collect();
    let mut allocated = idle.len();
    counters.max_vus.fetch_max(allocated as u32, Ordering::Relaxed);
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Vu>();
    let mut tasks = JoinSet::new();
    let late_after = shared.late_after;

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
            _ = sleep_until(scheduled) => {}
            _ = cancel.cancelled() => break,
        }
        while let Ok(vu) = back_rx.try_recv() {
            idle.push(vu);
        }
        while tasks.try_join_next().is_some() {}
        let vu = match idle.pop() {
            Some(vu) => vu,
            None if allocated < max => {
                allocated += 1;
                counters.max_vus.fetch_max(allocated as u32, Ordering::Relaxed);
                Vu::new(&shared, id_base + allocated - 1)
            }
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
        let (shared, scenario, counters, cut, back) = (shared.clone(), scenario.clone(), counters.clone(), cut.clone(), back_tx.clone());
        tasks.spawn(async move {
            let mut vu = vu;
            shared.gauge.inc();
            let ended = tokio::select! {
                biased;
                _ = cut.cancelled() => None,
                e = iteration(&shared, &mut vu, &scenario.exec, Some(scheduled)) => Some(e),
            };
            shared.gauge.dec();
            match ended {
                None => {
                    counters.interrupted.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ended::Completed) if measured => {
                    counters.iterations.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ended::Aborted) if measured => {
                    counters.aborted.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
            }
            let _ = back.send(vu);
        });
    }
    drop(back_tx);
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
    cut.cancel();
    while tasks.join_next().await.is_some() {}
}
