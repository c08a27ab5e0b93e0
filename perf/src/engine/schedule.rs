//! Load shapes as pure functions of time: how many virtual users a ramping-vus scenario
//! wants, and when an arrival-rate scenario starts each iteration.
//!
//! Nothing here sleeps or touches a clock; the executors turn these offsets into instants.
//! Keeping the arithmetic apart is what makes the schedules testable exactly.

use std::time::Duration;

/// The linear target of a staged shape at offset `t`: each stage ramps linearly from the
/// previous stage's target (or `start`) to its own over its duration. Past the last stage
/// the last target holds.
pub fn target_at(start: f64, stages: &[(Duration, f64)], t: Duration) -> f64 {
    let mut from = start;
    let mut offset = Duration::ZERO;
    for &(d, to) in stages {
        if t < offset + d {
            let frac = (t - offset).as_secs_f64() / d.as_secs_f64();
            return from + (to - from) * frac;
        }
        offset += d;
        from = to;
    }
    from
}

/// Number of virtual users a ramping-vus scenario runs at offset `t`: the largest integer
/// not above the linear target (so a ramp from 0 to 10 over 10 s adds one user per second).
pub fn vus_at(start_vus: u32, stages: &[(Duration, f64)], t: Duration) -> u32 {
    let target = target_at(start_vus as f64, stages, t);
    (target + 1e-9).floor().max(0.0) as u32
}

/// The instants (offsets) at which a ramping-vus scenario's user count changes, with the new
/// count: the first entry is `(0, start_vus)`. Within a stage the count changes each time
/// the linear target crosses an integer, so the list has one entry per user added or removed
/// (bounded by the plan, not by the run length).
pub fn vu_steps(start_vus: u32, stages: &[(Duration, f64)]) -> Vec<(Duration, u32)> {
    let mut steps = vec![(Duration::ZERO, start_vus)];
    let mut from = start_vus as f64;
    let mut offset = Duration::ZERO;
    let mut current = start_vus;
    for &(d, to) in stages {
        let to_n = (to + 1e-9).floor().max(0.0) as u32;
        if d.is_zero() {
            if to_n != current {
                steps.push((offset, to_n));
                current = to_n;
            }
        } else if to > from {
            // Rising: count k is reached when the target equals k.
            let mut k = current + 1;
            while (k as f64) <= to + 1e-9 {
                let frac = ((k as f64 - from) / (to - from)).clamp(0.0, 1.0);
                steps.push((offset + d.mul_f64(frac), k));
                current = k;
                k += 1;
            }
        } else if to < from {
            // Falling: count drops to k as soon as the target goes below k + 1.
            while current > to_n {
                let k = current - 1;
                let frac = ((from - (k as f64 + 1.0)) / (from - to)).clamp(0.0, 1.0);
                // The drop happens just after the target passes below k + 1.
                steps.push((offset + d.mul_f64(frac), k));
                current = k;
            }
        }
        offset += d;
        from = to;
    }
    // Collapse entries at the same instant so each offset appears once with its final count.
    let mut out: Vec<(Duration, u32)> = Vec::with_capacity(steps.len());
    for (t, n) in steps {
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 = n,
            _ => out.push((t, n)),
        }
    }
    out
}

/// Start offsets of an arrival-rate scenario, lazily (a long run never holds its schedule in
/// memory).
///
/// The rate is piecewise linear: `start_rate` ramping through `stages`; a constant rate is a
/// single stage from `rate` to `rate`. With `N(t)` the number of iterations due by `t`
/// (the integral of the rate), iteration `i` starts at the first `t` where `N(t) = i`, for
/// every `t` before the end. Iteration 0 starts at offset 0 when the rate there is positive;
/// when the shape starts at rate 0, numbering starts at 1 so that nothing is scheduled at an
/// instant where no load is wanted.
#[derive(Debug, Clone)]
pub struct Arrivals {
    stages: Vec<(Duration, f64, f64)>,
    /// Index of the stage being walked, its start offset and `N` at its start.
    stage: usize,
    stage_offset: f64,
    stage_n0: f64,
    next_i: u64,
}

impl Arrivals {
    /// Iterations at a constant `rate` per second for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Arrivals {
        Arrivals::ramping(rate, &[(duration, rate)])
    }

    /// Iterations at a rate ramping linearly from `start_rate` through `stages`.
    pub fn ramping(start_rate: f64, stages: &[(Duration, f64)]) -> Arrivals {
        let mut from = start_rate.max(0.0);
        let mut list = Vec::with_capacity(stages.len());
        for &(d, to) in stages {
            let to = to.max(0.0);
            list.push((d, from, to));
            from = to;
        }
        let first_rate = list.first().map(|s| s.1).unwrap_or(0.0);
        let next_i = if first_rate > 0.0 { 0 } else { 1 };
        Arrivals { stages: list, stage: 0, stage_offset: 0.0, stage_n0: 0.0, next_i }
    }

    /// Number of iterations the whole shape schedules (walks a copy of the schedule).
    pub fn total(&self) -> u64 {
        self.clone().count() as u64
    }
}

impl Iterator for Arrivals {
    /// `(iteration index, start offset)`.
    type Item = (u64, Duration);

    fn next(&mut self) -> Option<(u64, Duration)> {
        let target = self.next_i as f64;
        while let Some(&(d, a, b)) = self.stages.get(self.stage) {
            let secs = d.as_secs_f64();
            let stage_total = (a + b) / 2.0 * secs;
            let x = target - self.stage_n0;
            // Tolerate rounding: an iteration due within a nanosecond of the stage end
            // belongs to the next stage (or is past the end).
            if secs > 0.0 && x < stage_total - 1e-9 {
                let k = (b - a) / secs;
                // Solve a·τ + k·τ²/2 = x for τ in a form that is stable when k is near 0.
                let disc = (a * a + 2.0 * k * x).max(0.0);
                let denom = a + disc.sqrt();
                let tau = if denom > 0.0 { 2.0 * x / denom } else { 0.0 };
                let tau = tau.clamp(0.0, secs);
                self.next_i += 1;
                return Some((self.next_i - 1, Duration::from_secs_f64(self.stage_offset + tau)));
            }
            self.stage_offset += secs;
            self.stage_n0 += stage_total;
            self.stage += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    fn offsets(a: Arrivals) -> Vec<f64> {
        a.map(|(_, t)| (t.as_secs_f64() * 1e6).round() / 1e6).collect()
    }

    #[test]
    fn constant_rate_starts_evenly_from_zero() {
        assert_eq!(offsets(Arrivals::constant(4.0, s(1.0))), vec![0.0, 0.25, 0.5, 0.75]);
        let a = Arrivals::constant(100.0, s(10.0));
        assert_eq!(a.total(), 1000);
        let idx: Vec<u64> = Arrivals::constant(2.0, s(2.0)).map(|(i, _)| i).collect();
        assert_eq!(idx, vec![0, 1, 2, 3]);
    }

    #[test]
    fn ramp_from_zero_follows_the_integral() {
        // Rate 0 -> 10/s over 2 s: N(t) = 2.5 t², so iteration i starts at sqrt(i / 2.5).
        let got = offsets(Arrivals::ramping(0.0, &[(s(2.0), 10.0)]));
        let want: Vec<f64> = (1..10).map(|i| ((i as f64 / 2.5).sqrt() * 1e6).round() / 1e6).collect();
        assert_eq!(got, want);
        // 10 iterations are due in total; the 10th would start exactly at the end: excluded.
        assert_eq!(Arrivals::ramping(0.0, &[(s(2.0), 10.0)]).total(), 9);
    }

    #[test]
    fn ramp_hold_and_down_total_matches_the_area() {
        // 0 -> 100/s in 10 s (500), hold 20 s (2000), 100 -> 0 in 10 s (500).
        let a = Arrivals::ramping(0.0, &[(s(10.0), 100.0), (s(20.0), 100.0), (s(10.0), 0.0)]);
        let starts: Vec<(u64, Duration)> = a.collect();
        let n = starts.len() as i64;
        assert!((n - 3000).abs() <= 1, "{n}");
        assert!(starts.windows(2).all(|w| w[0].1 <= w[1].1), "starts are ordered");
        assert!(starts.last().unwrap().1 < s(40.0));
        // In the hold the spacing is 10 ms.
        let hold: Vec<_> = starts.iter().filter(|(_, t)| *t > s(12.0) && *t < s(28.0)).collect();
        for w in hold.windows(2) {
            let gap = (w[1].1 - w[0].1).as_secs_f64();
            assert!((gap - 0.01).abs() < 1e-6, "{gap}");
        }
    }

    #[test]
    fn zero_rate_schedules_nothing() {
        assert_eq!(Arrivals::constant(0.0, s(5.0)).total(), 0);
        assert_eq!(Arrivals::ramping(0.0, &[(s(5.0), 0.0)]).total(), 0);
        assert_eq!(Arrivals::ramping(1.0, &[]).total(), 0);
    }

    #[test]
    fn ramping_vus_targets_over_time() {
        let stages = [(s(10.0), 10.0), (s(5.0), 10.0), (s(5.0), 0.0)];
        assert_eq!(vus_at(0, &stages, s(0.0)), 0);
        assert_eq!(vus_at(0, &stages, s(0.99)), 0);
        assert_eq!(vus_at(0, &stages, s(1.0)), 1);
        assert_eq!(vus_at(0, &stages, s(5.5)), 5);
        assert_eq!(vus_at(0, &stages, s(12.0)), 10);
        assert_eq!(vus_at(0, &stages, s(17.5)), 5);
        assert_eq!(vus_at(0, &stages, s(30.0)), 0);
        assert_eq!(vus_at(3, &[], s(1.0)), 3);
    }

    #[test]
    fn vu_steps_agree_with_vus_at() {
        let stages = [(s(10.0), 10.0), (s(5.0), 10.0), (s(4.0), 2.0), (s(0.0), 6.0), (s(3.0), 0.0)];
        let steps = vu_steps(1, &stages);
        assert_eq!(steps[0], (Duration::ZERO, 1));
        assert_eq!(steps[1], (s(1.0 / 9.0 * 10.0), 2));
        // At every probe the count from the step list equals the pure function.
        let mut t = 0.0;
        while t < 23.0 {
            let at = s(t);
            let from_steps = steps.iter().rev().find(|(o, _)| *o <= at).unwrap().1;
            assert_eq!(from_steps, vus_at(1, &stages, at), "at {t}");
            t += 0.0137;
        }
        assert_eq!(steps.last().unwrap().1, 0);
    }
}
