//! A suite's timeline cut into segments, for A/B mode: base and head take turns at short
//! stretches of the same timeline, so whatever the machine does during the job hits both.
//!
//! The suite's warm-up becomes a suite of its own (run once on each side, nothing measured);
//! the measured part is cut into segments of about `length`, each a suite of its own that
//! replays that stretch of every scenario (a ramp is cut where it stands: a segment in the
//! middle of a ramp from 0 to 200 users starts at the users the ramp had reached). Each
//! segment starts with a short unmeasured lead-in, so its first requests do not pay for
//! connections the run before it did not need. Pure: suites in, suites out.

use std::time::Duration;

use super::compiled::{Exec, Scenario, Shape, Suite};
use super::scale::timeline;

/// The unmeasured start of each segment: new virtual users open their connections in it.
pub const LEAD_IN: Duration = Duration::from_millis(500);
/// Longest time a segment waits for iterations still running at its end.
const SEGMENT_GRACEFUL_STOP: Duration = Duration::from_secs(1);

/// A suite cut for A/B.
#[derive(Debug, Clone)]
pub struct Sliced {
    /// The suite's warm-up, nothing measured; `None` when it has none.
    pub warmup: Option<Suite>,
    /// The measured part in order; each one's own warm-up is its lead-in.
    pub segments: Vec<Suite>,
    /// The measured length of each segment.
    pub length: Duration,
}

/// The segments a run records for the comparison against a stored baseline: a twelfth of its
/// measured part, at least 2 s, in whole seconds. About twelve units a side, whatever the
/// run's length, so that the memory they take does not grow with it.
pub fn recorded_segment(measured: Duration) -> u32 {
    ((measured.as_secs_f64() / 12.0).ceil() as u32).max(2)
}

/// The segment length A/B uses for `suite` when the plan does not set one: about a twelfth of
/// its measured part, at least 2 s; at least two rounds of its longest workflow's think time,
/// so that a segment sees every step, not only the first ones; at most a fifth of the
/// measured part (at least five pairs). Whole seconds.
pub fn segment_length(suite: &Suite) -> Duration {
    let measured = timeline(suite).saturating_sub(suite.warmup).as_secs_f64();
    let think = suite.scenarios.iter().map(|s| iteration_think(&s.exec)).fold(0.0, f64::max);
    let want = (measured / 12.0).max(2.0).max(2.0 * think);
    let most = (measured / 5.0).max(1.0);
    Duration::from_secs_f64(want.min(most).round().max(1.0))
}

/// The mean think time of one iteration of `exec`, seconds.
fn iteration_think(exec: &Exec) -> f64 {
    match exec {
        Exec::Workflow(steps) => steps.iter().filter_map(|s| s.think.as_ref()).map(|t| (t.min + t.max).as_secs_f64() / 2.0).sum(),
        Exec::Request(_) | Exec::Mix(_) => 0.0,
    }
}

/// Cuts `suite` into its warm-up and measured segments of `length` (a last piece shorter than
/// half of it joins the one before).
pub fn slice(suite: &Suite, length: Duration) -> Sliced {
    let end = timeline(suite);
    let start = suite.warmup.min(end);
    let warmup = (!start.is_zero()).then(|| window(suite, Duration::ZERO, start, start));
    let length = length.max(Duration::from_secs(1));
    let mut bounds = Vec::new();
    let mut a = start;
    while a < end {
        let b = (a + length).min(end);
        if b - a < length / 2
            && let Some(last) = bounds.last_mut()
        {
            let (_, last_end): &mut (Duration, Duration) = last;
            *last_end = b;
        } else {
            bounds.push((a, b));
        }
        a = b;
    }
    let segments = bounds
        .into_iter()
        .map(|(a, b)| {
            let lead = LEAD_IN.min(a);
            window(suite, a - lead, b, lead)
        })
        .collect();
    Sliced { warmup, segments, length }
}

/// The suite's stretch `[from, to)` of its timeline, with `warmup` of it unmeasured.
fn window(suite: &Suite, from: Duration, to: Duration, warmup: Duration) -> Suite {
    let mut out = suite.clone();
    out.warmup = warmup;
    out.scenarios = suite.scenarios.iter().filter_map(|s| cut(s, from, to)).collect();
    out
}

/// The part of scenario `s` inside `[from, to)` of the suite's timeline, shifted to start at
/// `from`; `None` when it does not run then.
fn cut(s: &Scenario, from: Duration, to: Duration) -> Option<Scenario> {
    let (s0, s1) = (s.start, s.start + s.shape.duration());
    let (a, b) = (s0.max(from), s1.min(to));
    if a >= b {
        return None;
    }
    let (ra, rb) = (a - s0, b - s0);
    let shape = match &s.shape {
        Shape::ConstantVus { vus, .. } => Shape::ConstantVus { vus: *vus, duration: b - a },
        Shape::ConstantArrivalRate { rate, pre_allocated_vus, max_vus, .. } => {
            Shape::ConstantArrivalRate { rate: *rate, duration: b - a, pre_allocated_vus: *pre_allocated_vus, max_vus: *max_vus }
        }
        Shape::RampingVus { start_vus, stages } => {
            let (start, stages) = cut_stages(f64::from(*start_vus), stages, ra, rb);
            Shape::RampingVus { start_vus: start.round() as u32, stages }
        }
        Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus, max_vus } => {
            let (start_rate, stages) = cut_stages(*start_rate, stages, ra, rb);
            Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus: *pre_allocated_vus, max_vus: *max_vus }
        }
    };
    let mut out = s.clone();
    out.start = a - from;
    out.shape = shape;
    out.graceful_stop = s.graceful_stop.min(SEGMENT_GRACEFUL_STOP);
    Some(out)
}

/// Ramping stages (linear from the previous target to each stage's target) restricted to
/// `[from, to)` of the scenario: the value reached at `from`, and the stages from there, the
/// ones cut ending at the value reached where they are cut.
fn cut_stages(start: f64, stages: &[(Duration, f64)], from: Duration, to: Duration) -> (f64, Vec<(Duration, f64)>) {
    let mut out = Vec::new();
    let (mut t, mut value, mut at_from) = (Duration::ZERO, start, None);
    for &(d, target) in stages {
        let (t0, t1) = (t, t + d);
        let at = |x: Duration| if d.is_zero() { target } else { value + (target - value) * (x - t0).as_secs_f64() / d.as_secs_f64() };
        if t1 > from && t0 < to {
            let (a, b) = (t0.max(from), t1.min(to));
            if at_from.is_none() {
                at_from = Some(at(a));
            }
            out.push((b - a, at(b)));
        }
        value = target;
        t = t1;
    }
    (at_from.unwrap_or(value), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::compiled::Exec;
    use crate::plan::{Executor, SuiteKind};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn suite(warmup: u64, scenarios: Vec<Scenario>) -> Suite {
        Suite {
            name: "s".into(),
            kind: SuiteKind::Load,
            warmup: secs(warmup),
            scenarios,
            slo: Vec::new(),
            setup: Vec::new(),
            special: None,
            definition_hash: "h".into(),
        }
    }

    fn scenario(start: u64, shape: Shape) -> Scenario {
        Scenario {
            name: "x".into(),
            executor: Executor::ConstantArrivalRate,
            start: secs(start),
            shape,
            exec: Exec::Request(0),
            graceful_stop: secs(30),
        }
    }

    #[test]
    fn the_measured_part_is_cut_into_segments_with_a_lead_in_each() {
        let s =
            suite(10, vec![scenario(0, Shape::ConstantArrivalRate { rate: 10.0, duration: secs(70), pre_allocated_vus: 2, max_vus: 5 })]);
        let cut = slice(&s, secs(5));
        let w = cut.warmup.expect("a warm-up");
        assert_eq!((w.warmup, w.scenarios[0].shape.duration()), (secs(10), secs(10)), "the warm-up is measured nowhere");
        assert_eq!(cut.segments.len(), 12);
        for seg in &cut.segments {
            assert_eq!(seg.warmup, LEAD_IN);
            assert_eq!(seg.scenarios[0].shape.duration(), secs(5) + LEAD_IN);
            assert_eq!(seg.scenarios[0].graceful_stop, secs(1));
        }
        // Every measured second is in exactly one segment.
        let measured: Duration = cut.segments.iter().map(|s| timeline(s) - s.warmup).sum();
        assert_eq!(measured, secs(60));
    }

    #[test]
    fn a_short_last_piece_joins_the_segment_before_it() {
        let s = suite(0, vec![scenario(0, Shape::ConstantVus { vus: 3, duration: secs(12) })]);
        let cut = slice(&s, secs(5));
        assert!(cut.warmup.is_none());
        let lengths: Vec<Duration> = cut.segments.iter().map(|s| timeline(s) - s.warmup).collect();
        assert_eq!(lengths, vec![secs(5), secs(7)]);
        assert_eq!(cut.segments[0].warmup, Duration::ZERO, "nothing before the timeline's start to lead in with");
    }

    #[test]
    fn ramps_are_cut_where_they_stand() {
        // 0 -> 200 users over 20 s, 200 for 40 s, down to 0 over 10 s.
        let stages = vec![(secs(20), 200.0), (secs(40), 200.0), (secs(10), 0.0)];
        let (start, cut) = cut_stages(0.0, &stages, secs(10), secs(30));
        assert_eq!(start, 100.0, "half way up the ramp");
        assert_eq!(cut, vec![(secs(10), 200.0), (secs(10), 200.0)]);
        let (start, cut) = cut_stages(0.0, &stages, secs(62), secs(70));
        assert!((start - 160.0).abs() < 1e-9);
        assert_eq!(cut, vec![(secs(8), 0.0)]);
    }

    #[test]
    fn scenarios_outside_a_segment_are_left_out_and_late_ones_shifted() {
        let a = scenario(0, Shape::ConstantArrivalRate { rate: 1.0, duration: secs(10), pre_allocated_vus: 1, max_vus: 1 });
        let b = scenario(20, Shape::ConstantArrivalRate { rate: 1.0, duration: secs(10), pre_allocated_vus: 1, max_vus: 1 });
        let s = suite(0, vec![a, b]);
        let cut = slice(&s, secs(10));
        assert_eq!(cut.segments.len(), 3);
        assert_eq!(cut.segments[0].scenarios.len(), 1);
        // From 10 s to 20 s nothing runs but the first scenario's last half second, in the
        // lead-in (unmeasured).
        assert_eq!(cut.segments[1].scenarios.len(), 1);
        assert_eq!(cut.segments[1].scenarios[0].shape.duration(), LEAD_IN);
        // The second scenario starts where the segment's lead-in ends, at 20 s of the timeline.
        let late = &cut.segments[2].scenarios[0];
        assert_eq!((late.start, late.shape.duration()), (LEAD_IN, secs(10)));
    }

    #[test]
    fn segment_length_leaves_room_for_a_workflow_and_at_least_five_pairs() {
        let s =
            suite(10, vec![scenario(0, Shape::ConstantArrivalRate { rate: 10.0, duration: secs(70), pre_allocated_vus: 2, max_vus: 5 })]);
        assert_eq!(segment_length(&s), secs(5));
        let quick =
            suite(4, vec![scenario(0, Shape::ConstantArrivalRate { rate: 10.0, duration: secs(30), pre_allocated_vus: 2, max_vus: 5 })]);
        // 26 s measured: a twelfth is 2.2 s, 2 s in whole seconds (13 pairs).
        assert_eq!(segment_length(&quick), secs(2));
        let short =
            suite(2, vec![scenario(0, Shape::ConstantArrivalRate { rate: 10.0, duration: secs(9), pre_allocated_vus: 2, max_vus: 5 })]);
        assert_eq!(segment_length(&short), secs(1), "7 s measured: a fifth, so that five pairs fit");
    }
}
