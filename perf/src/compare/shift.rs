//! The suite's shared shift: against a stored baseline, how far the other endpoints of the run
//! moved together.
//!
//! A stored baseline was measured at another moment, often in another environment: between the
//! nightly's runs and a pull request's, minutes or hours apart, the machine's speed moves every
//! endpoint by a few percent at once (measured on a 2-core runner, eight trials of the default
//! suites: the median endpoint's p50 moved -8% … +10% from the baseline while the code was the
//! same; README, "Stored mode, default suites"). A change of the code to one route moves that
//! route alone. So each endpoint's latency is read beside the others': the shared shift for
//! endpoint `e` is the median, over every *other* endpoint measured on both sides, of the log
//! ratio head / base of the same percentile, and the rule ([`super::rule`]) judges `e`'s change
//! with that shift taken out.
//!
//! Only a shift the machine plausibly made is taken out: at most the plan's `shared_shift`
//! (10% by default) and never more than the metric's threshold, so that a change shared by the
//! whole suite that is beyond the threshold (a slower middleware on every route) is judged as
//! measured and fails. Fewer than [`MIN_OTHERS`] other endpoints: no shift (a median of two or
//! three can be a changed endpoint's). A/B never uses it: its pairs already cancel the moment.

use std::collections::BTreeMap;

use crate::util::median;

use super::model::Metric;
use super::rule::Aggregate;

/// The fewest other endpoints whose median is taken for the machine: with four or more, one
/// changed endpoint among them cannot be the median.
pub(crate) const MIN_OTHERS: usize = 4;

/// Per latency percentile, each endpoint's log ratio head / base (both sides with at least the
/// rule's `min_samples` requests and a positive value).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedShift {
    ratios: BTreeMap<Metric, Vec<(String, f64)>>,
}

impl SharedShift {
    /// The log ratios of `endpoints` (name, base, head).
    pub fn of<'a>(endpoints: impl IntoIterator<Item = (&'a str, &'a Aggregate, &'a Aggregate)>, min_samples: u64) -> Self {
        let mut ratios: BTreeMap<Metric, Vec<(String, f64)>> = BTreeMap::new();
        for (name, base, head) in endpoints {
            if base.requests < min_samples.max(1) || head.requests < min_samples.max(1) {
                continue;
            }
            for metric in [Metric::P50, Metric::P95, Metric::P99] {
                if let (Some(b), Some(h)) = (base.value(metric), head.value(metric))
                    && b > 0.0
                    && h > 0.0
                {
                    ratios.entry(metric).or_default().push((name.to_string(), (h / b).ln()));
                }
            }
        }
        SharedShift { ratios }
    }

    /// The shift of `metric` shared by every endpoint but `name`, as a fraction (`0.04`: the
    /// others' median is 4% slower), with how many endpoints it is the median of; `None` with
    /// fewer than [`MIN_OTHERS`].
    pub fn beside(&self, name: &str, metric: Metric) -> Option<(f64, usize)> {
        shared(self.ratios.get(&metric)?.iter().filter(|(n, _)| n != name).map(|(_, r)| *r).collect())
    }

    /// The shift of `metric` shared by the whole suite (every endpoint's median), for the
    /// report's note; `None` with fewer than [`MIN_OTHERS`] endpoints.
    pub fn overall(&self, metric: Metric) -> Option<(f64, usize)> {
        shared(self.ratios.get(&metric)?.iter().map(|(_, r)| *r).collect())
    }
}

/// The median of log ratios as a fraction, with their count; `None` under [`MIN_OTHERS`].
fn shared(ratios: Vec<f64>) -> Option<(f64, usize)> {
    let n = ratios.len();
    if n < MIN_OTHERS {
        return None;
    }
    Some((median(ratios)?.exp_m1(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(p50: f64) -> Aggregate {
        Aggregate { requests: 500, errors: 0, p50: Some(p50), p95: Some(p50 * 1.5), p99: Some(p50 * 2.0), rps: 10.0 }
    }

    #[test]
    fn the_shift_beside_an_endpoint_is_the_median_of_the_others_and_leaves_it_out() {
        let base: Vec<Aggregate> = (0..6).map(|_| agg(2.0)).collect();
        // Four endpoints 5% slower, one 10% slower, and `slow` 50% slower.
        let head = [agg(2.1), agg(2.1), agg(2.1), agg(2.1), agg(2.2), agg(3.0)];
        let names = ["a", "b", "c", "d", "e", "slow"];
        let s = SharedShift::of(names.iter().zip(base.iter().zip(head.iter())).map(|(n, (b, h))| (*n, b, h)), 100);
        let (shift, n) = s.beside("slow", Metric::P50).unwrap();
        assert!((shift - 0.05).abs() < 1e-9, "{shift}");
        assert_eq!(n, 5);
        // Beside `a`, its own 5% is left out; the others' median is still 5%.
        assert!((s.beside("a", Metric::P50).unwrap().0 - 0.05).abs() < 1e-9);
        // The tail too, from its own ratios.
        assert!((s.beside("slow", Metric::P99).unwrap().0 - 0.05).abs() < 1e-9);
        assert_eq!(s.overall(Metric::P50).unwrap().1, 6);
    }

    #[test]
    fn too_few_other_endpoints_or_too_few_requests_give_no_shift() {
        let (b, h) = (agg(2.0), agg(2.2));
        let four = SharedShift::of([("a", &b, &h), ("b", &b, &h), ("c", &b, &h), ("d", &b, &h)], 100);
        assert_eq!(four.beside("a", Metric::P50), None, "three others");
        assert!(four.overall(Metric::P50).is_some());
        let few = Aggregate { requests: 50, ..agg(2.0) };
        let thin = SharedShift::of([("a", &b, &h), ("b", &b, &h), ("c", &b, &h), ("d", &few, &h), ("e", &b, &h)], 100);
        assert_eq!(thin.beside("a", Metric::P50), None, "`d` has too few requests to count");
    }
}
