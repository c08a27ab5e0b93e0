//! Reshaping suites from the command line: `--quick` (at most 30 s per suite), a fixed
//! duration, or a number of users. Every time span of a suite is scaled by the same factor,
//! so its shape (warm-up share, ramp proportions, scenario offsets) stays as written.

use std::time::Duration;

use super::compiled::{Shape, Special, Suite};
use super::options::{CompileOptions, Shard};

/// Longest a suite may run with `--quick`.
pub const QUICK_LIMIT: Duration = Duration::from_secs(30);
/// Longest graceful stop with `--quick`.
const QUICK_GRACEFUL_STOP: Duration = Duration::from_secs(5);

/// The suite's timeline: the end of its last scenario (graceful stops excluded).
pub fn timeline(suite: &Suite) -> Duration {
    suite.scenarios.iter().map(|s| s.start + s.shape.duration()).max().unwrap_or_default()
}

pub(super) fn apply(mut suite: Suite, opts: &CompileOptions) -> Suite {
    let mut length = timeline(&suite);
    if let Some(d) = opts.duration {
        scale_time(&mut suite, d.as_secs_f64() / length.as_secs_f64());
        length = d;
    }
    if opts.quick {
        if length > QUICK_LIMIT {
            scale_time(&mut suite, QUICK_LIMIT.as_secs_f64() / length.as_secs_f64());
        }
        for s in &mut suite.scenarios {
            s.graceful_stop = s.graceful_stop.min(QUICK_GRACEFUL_STOP);
        }
    }
    if let Some(users) = opts.users {
        scale_users(&mut suite, users);
    }
    if let Some(shard) = opts.shard {
        split_users(&mut suite, shard);
    }
    suite
}

/// `--shard K/N`: closed-model scenarios run this shard's part of their users (remainders to
/// the lowest shards, so the parts add up to the plan's); open-model ones keep their rate
/// (the engine starts every N-th iteration of the whole schedule) with their users split.
fn split_users(suite: &mut Suite, shard: Shard) {
    let part = |n: &mut u32| *n = shard.share(*n);
    for s in &mut suite.scenarios {
        match &mut s.shape {
            Shape::ConstantVus { vus, .. } => part(vus),
            Shape::RampingVus { start_vus, stages } => {
                part(start_vus);
                stages.iter_mut().for_each(|(_, t)| *t = f64::from(shard.share(*t as u32)));
            }
            Shape::ConstantArrivalRate { pre_allocated_vus, max_vus, .. }
            | Shape::RampingArrivalRate { pre_allocated_vus, max_vus, .. } => {
                *pre_allocated_vus = (*pre_allocated_vus).div_ceil(shard.count).max(1);
                *max_vus = (*max_vus).div_ceil(shard.count).max(*pre_allocated_vus);
            }
        }
    }
}

fn scale_time(suite: &mut Suite, factor: f64) {
    let f = |d: &mut Duration| *d = Duration::from_secs_f64(d.as_secs_f64() * factor);
    f(&mut suite.warmup);
    for s in &mut suite.scenarios {
        f(&mut s.start);
        match &mut s.shape {
            Shape::ConstantVus { duration, .. } | Shape::ConstantArrivalRate { duration, .. } => f(duration),
            Shape::RampingVus { stages, .. } | Shape::RampingArrivalRate { stages, .. } => {
                stages.iter_mut().for_each(|(d, _)| f(d));
            }
        }
    }
    // Times on the suite's timeline move with it; limits (max_recovery, errors_stop_within)
    // stay as written: the app must recover as fast in a short run as in a long one.
    match &mut suite.special {
        Some(Special::Spike(s)) => {
            f(&mut s.start);
            f(&mut s.end);
        }
        Some(Special::Chaos(c)) => c.actions.iter_mut().for_each(|a| f(&mut a.at)),
        Some(Special::Stress(_) | Special::Soak(_)) | None => {}
    }
}

fn scale_users(suite: &mut Suite, users: u32) {
    for s in &mut suite.scenarios {
        match &mut s.shape {
            Shape::ConstantVus { vus, .. } => *vus = users.max(1),
            Shape::RampingVus { start_vus, stages } => {
                let peak = stages.iter().map(|(_, t)| *t).fold(*start_vus as f64, f64::max);
                if peak > 0.0 {
                    let k = users as f64 / peak;
                    *start_vus = (*start_vus as f64 * k).round() as u32;
                    stages.iter_mut().for_each(|(_, t)| *t = (*t * k).round());
                }
            }
            Shape::ConstantArrivalRate { .. } | Shape::RampingArrivalRate { .. } => {}
        }
    }
}
