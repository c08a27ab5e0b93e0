//! The evidence behind a change: each side's segments of one endpoint, resampled.
//!
//! # Why segments, and why resample them
//! A run's requests are not independent draws: a GC pause, a noisy neighbour or a vacuum slows
//! a stretch of them together. A test whose unit is the request would call such a stretch
//! "significant"; a test whose unit is a per-second value throws away most of what the
//! histograms hold (a 10 req/s endpoint's p99 is never testable per second). So each side's
//! measured part is cut into segments of a few seconds, each with the exact histogram of its
//! requests (`EndpointSummary::segments`), and the comparison resamples *segments* (a cluster
//! bootstrap): every resample pools the histograms of the segments it drew, so a percentile is
//! read from hundreds of requests, while a slow stretch still moves one unit, not hundreds.
//!
//! In A/B mode the segments are pairs: base and head ran back to back, in random order, so
//! whatever the machine did to one did it to the other, and a resample draws whole pairs
//! (paired bootstrap). Against a stored baseline the two sides ran at different times and are
//! resampled independently; what the machine did *between* the runs is not in either, which
//! is why that mode also has a floor from measured noise.
//!
//! Every metric comes from the same resamples: p50, p95, p99 (the log of head over base),
//! throughput (requests over seconds; log ratio) and the error rate (difference in points).
//! The interval is the change plus or minus `z` standard errors, the standard error being the
//! resampled statistic's spread, widened by `sqrt(n / (n - 1))` for the few units a run has
//! (the plain bootstrap's variance is short by that factor), and never less than what the
//! order statistics of the requests say of a percentile (a resample cannot see past the
//! largest request, so for a tail of few requests it alone is too sure), read from each side
//! and from both sides together, the head moved back by how far its median surely moved (so
//! that one side's tail, narrow by luck, is not read as a change, and a change of every request
//! is not read as spread). A percentile the
//! requests cannot bound from above (p99 of fewer than about 380) has no interval.
//! Resampling is seeded from the endpoint's name: the same inputs give the same verdict.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::summary::EndpointSegment;

use super::model::Metric;

/// Resamples drawn per endpoint.
pub const RESAMPLES: usize = 1000;
/// Fewer segments (or pairs) than this on a side: no interval (a bootstrap over three or four
/// clusters knows too little about how they vary).
pub const MIN_SEGMENTS: usize = 5;

/// Why the segments could not be resampled.
#[derive(Debug, Clone, PartialEq)]
pub enum NoSegments {
    /// A side carries none (a summary written before segments existed).
    Missing,
    /// Too few to resample: `base` and `head` segments (or pairs).
    TooFew { base: usize, head: usize },
    /// A histogram that does not decode.
    Unreadable(String),
    /// Most resamples held no value of this metric (too few timed requests in the segments).
    Sparse,
    /// Too few requests beyond a percentile to bound it from above: with `n` requests, the
    /// q-quantile's upper confidence limit is a rank past the last request unless
    /// `n >= z² q / (1 - q)` (about 380 for p99, 73 for p95).
    Tail { metric: Metric, base: u64, head: u64, needed: u64 },
}

impl NoSegments {
    pub fn describe(&self) -> String {
        match self {
            NoSegments::Missing => "no segment histograms (a summary written before they existed)".into(),
            NoSegments::TooFew { base, head } => {
                format!("too few segments to resample ({base} base, {head} head, {MIN_SEGMENTS} needed)")
            }
            NoSegments::Unreadable(why) => format!("a segment histogram does not decode: {why}"),
            NoSegments::Sparse => "too few timed requests in the segments to resample this metric".into(),
            NoSegments::Tail { metric, base, head, needed } => {
                format!("too few requests beyond {metric} to bound it ({base} base, {head} head; about {needed} a side needed)")
            }
        }
    }
}

/// One side's segments on the grid shared with the other side.
#[derive(Debug, Clone, Default)]
struct Side {
    /// Per segment, its cumulative count at each grid value: `cum[i][k]` requests of segment
    /// `i` took at most `grid[k]`. A resample's count at `k` is then a weighted sum over the
    /// segments, and a quantile a binary search over `k`: no histogram is ever added up.
    cum: Vec<Vec<u64>>,
    requests: Vec<u64>,
    errors: Vec<u64>,
    seconds: Vec<f64>,
}

impl Side {
    fn len(&self) -> usize {
        self.requests.len()
    }
}

/// Both sides' segments of one endpoint, ready to resample.
#[derive(Debug, Clone)]
pub struct Segmented {
    /// Every latency value (µs, a histogram bucket's highest equivalent value) either side
    /// recorded, ascending.
    grid: Vec<u64>,
    base: Side,
    head: Side,
    paired: bool,
}

impl Segmented {
    /// Reads both sides. `paired` (A/B): segment `i` of base and of head ran back to back, so
    /// resamples draw pairs; it needs as many segments on each side.
    pub fn of(base: &[EndpointSegment], head: &[EndpointSegment], paired: bool) -> Result<Segmented, NoSegments> {
        if base.is_empty() || head.is_empty() {
            return Err(NoSegments::Missing);
        }
        let paired = paired && base.len() == head.len();
        if base.len() < MIN_SEGMENTS || head.len() < MIN_SEGMENTS {
            return Err(NoSegments::TooFew { base: base.len(), head: head.len() });
        }
        let decode =
            |segs: &[EndpointSegment]| -> Result<Vec<Vec<(u64, u64)>>, NoSegments> { segs.iter().map(|s| sparse(&s.histogram)).collect() };
        let (b, h) = (decode(base)?, decode(head)?);
        let mut grid: Vec<u64> = b.iter().chain(&h).flatten().map(|(v, _)| *v).collect();
        grid.sort_unstable();
        grid.dedup();
        let side = |segs: &[EndpointSegment], hists: Vec<Vec<(u64, u64)>>| Side {
            cum: hists
                .into_iter()
                .map(|h| {
                    let mut cum = vec![0u64; grid.len()];
                    for (v, n) in h {
                        cum[grid.binary_search(&v).expect("every value is on the grid")] += n;
                    }
                    let mut running = 0;
                    cum.iter_mut().for_each(|c| {
                        running += *c;
                        *c = running;
                    });
                    cum
                })
                .collect(),
            requests: segs.iter().map(|s| s.requests).collect(),
            errors: segs.iter().map(|s| s.errors.min(s.requests)).collect(),
            seconds: segs.iter().map(|s| s.seconds.max(0.0)).collect(),
        };
        let (base, head) = (side(base, b), side(head, h));
        Ok(Segmented { grid, base, head, paired })
    }

    /// Segments on each side (pairs, in A/B mode).
    pub fn units(&self) -> (usize, usize) {
        (self.base.len(), self.head.len())
    }

    pub fn paired(&self) -> bool {
        self.paired
    }
}

/// A histogram's recorded values as `(value, count)`, ascending; empty for an empty string.
fn sparse(encoded: &str) -> Result<Vec<(u64, u64)>, NoSegments> {
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    let h = crate::summary::hist::decode(encoded).map_err(|e| NoSegments::Unreadable(e.to_string()))?;
    Ok(h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect())
}

/// One side's figures over a set of its segments.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Figures {
    /// p50, p95, p99 in µs; `None` without a timed request.
    q: [Option<f64>; 3],
    /// Requests per second; `None` without measured seconds.
    rps: Option<f64>,
    /// Failed requests in percent; `None` without requests.
    errors: Option<f64>,
}

const QUANTILES: [f64; 3] = [0.50, 0.95, 0.99];

/// The figures of `side` with segment `i` taken `weights[i]` times (a resample; all ones for
/// the side as it ran).
fn figures(side: &Side, weights: &[u32], grid: &[u64]) -> Figures {
    let picked: Vec<(usize, u64)> = weights.iter().enumerate().filter(|(_, w)| **w > 0).map(|(i, w)| (i, u64::from(*w))).collect();
    let sum = |f: &dyn Fn(usize) -> f64| picked.iter().map(|&(i, w)| f(i) * w as f64).sum::<f64>();
    let at = |k: usize| picked.iter().map(|&(i, w)| side.cum[i][k] * w).sum::<u64>();
    let mut q = [None; 3];
    if let Some(last) = grid.len().checked_sub(1) {
        let timed = at(last);
        for (slot, p) in q.iter_mut().zip(QUANTILES) {
            if timed == 0 {
                break;
            }
            // The same rank as HdrHistogram's `value_at_quantile`: the first value whose
            // cumulative count reaches ceil(q * n), at least 1.
            let target = ((p * timed as f64).ceil() as u64).max(1);
            let (mut lo, mut hi) = (0usize, last);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if at(mid) >= target { hi = mid } else { lo = mid + 1 }
            }
            *slot = Some(grid[lo] as f64);
        }
    }
    let (requests, errors, seconds) = (sum(&|i| side.requests[i] as f64), sum(&|i| side.errors[i] as f64), sum(&|i| side.seconds[i]));
    Figures { q, rps: (seconds > 0.0).then(|| requests / seconds), errors: (requests > 0.0).then(|| 100.0 * errors / requests) }
}

/// The change of one metric, with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Head over base minus one (latency, throughput), or head minus base in points (errors).
    pub change: f64,
    /// The interval of `change` at the requested level.
    pub low: f64,
    pub high: f64,
    /// One-sided, in the direction of `change`: the share of resamples showing no change or
    /// the opposite one.
    pub p_value: f64,
    /// Standard error of the resampled statistic: of the log ratio (latency, throughput; about
    /// a relative error), of the difference in points (errors).
    pub se: f64,
}

impl Estimate {
    /// Half the interval's width in the statistic's own scale, for people: "±3.1%".
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }
}

/// Every metric's estimate for one endpoint, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimates {
    p50: Result<Estimate, NoSegments>,
    p95: Result<Estimate, NoSegments>,
    p99: Result<Estimate, NoSegments>,
    rps: Result<Estimate, NoSegments>,
    errors: Result<Estimate, NoSegments>,
}

impl Estimates {
    pub fn get(&self, metric: Metric) -> Result<Estimate, NoSegments> {
        match metric {
            Metric::P50 => self.p50.clone(),
            Metric::P95 => self.p95.clone(),
            Metric::P99 => self.p99.clone(),
            Metric::Rps => self.rps.clone(),
            Metric::ErrorRate => self.errors.clone(),
        }
    }
}

/// Resamples `seg` `resamples` times and estimates every metric's change with an interval of
/// confidence `level` (0.95: a 95% interval). `seed` fixes the draws.
pub fn estimate(seg: &Segmented, level: f64, resamples: usize, seed: u64) -> Estimates {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (nb, nh) = seg.units();
    let point = (figures(&seg.base, &vec![1; nb], &seg.grid), figures(&seg.head, &vec![1; nh], &seg.grid));
    let (mut wb, mut wh) = (vec![0u32; nb], vec![0u32; nh]);
    let mut draws: Vec<(Figures, Figures)> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        wb.iter_mut().chain(wh.iter_mut()).for_each(|w| *w = 0);
        if seg.paired {
            for _ in 0..nb {
                let i = rng.random_range(0..nb);
                wb[i] += 1;
                wh[i] += 1;
            }
        } else {
            (0..nb).for_each(|_| wb[rng.random_range(0..nb)] += 1);
            (0..nh).for_each(|_| wh[rng.random_range(0..nh)] += 1);
        }
        draws.push((figures(&seg.base, &wb, &seg.grid), figures(&seg.head, &wh, &seg.grid)));
    }
    // The plain bootstrap's spread is short by sqrt((n - 1) / n) for n units.
    let n = nb.min(nh) as f64;
    let widen = (n / (n - 1.0)).sqrt();
    // Student's t with one degree of freedom less than the units of the smaller side: a run has
    // a dozen segments, not thousands, and a normal interval over so few is too narrow.
    let z = StudentsT::new(0.0, 1.0, (n - 1.0).max(1.0)).map_or(1.96, |t| t.inverse_cdf(1.0 - (1.0 - level) / 2.0));
    // How far the head's whole distribution surely moved: the log ratio of the medians, less
    // what their own order statistics leave uncertain (none when that covers it).
    let median_shift = match (point.0.q[0], point.1.q[0], rank_se(&seg.base, &seg.grid, 0.5), rank_se(&seg.head, &seg.grid, 0.5)) {
        (Some(b), Some(h), Ok(sb), Ok(sh)) if b > 0.0 && h > 0.0 => {
            let moved = (h / b).ln();
            moved.signum() * (moved.abs() - 1.96 * sb.hypot(sh)).max(0.0)
        }
        _ => 0.0,
    };
    let ratio = |pick: &dyn Fn(&Figures) -> Option<f64>, tail: Option<(Metric, f64)>| -> Result<Estimate, NoSegments> {
        let stat = |b: &Figures, h: &Figures| match (pick(b), pick(h)) {
            (Some(b), Some(h)) if b > 0.0 && h > 0.0 => Some((h / b).ln()),
            _ => None,
        };
        let at = stat(&point.0, &point.1).ok_or(NoSegments::Sparse)?;
        let reps: Vec<f64> = draws.iter().filter_map(|(b, h)| stat(b, h)).collect();
        // A percentile's own sampling error, read from the order statistics of each side as a
        // whole (distribution-free): the resamples cannot see beyond the largest request, so
        // for a tail percentile of few requests they are too sure of it. Read twice: from each
        // side's own requests, and from both sides' requests together (the distribution both
        // would share if nothing changed), each side's share scaled by its own count; the
        // larger counts. A side whose few slowest requests happened to bunch up reads a narrow
        // tail from its own order statistics, and so do the resamples of it: taken alone, that
        // luck would be read as a change (a copy of the same code was called 41% slower at
        // p95 on 300 requests a side that way).
        let floor = match tail {
            Some((metric, q)) => {
                let (b, h) = (rank_se(&seg.base, &seg.grid, q), rank_se(&seg.head, &seg.grid, q));
                match (b, h) {
                    (Ok(b), Ok(h)) => (b * b + h * h).sqrt().max(pooled_rank_se(seg, q, median_shift).unwrap_or(0.0)),
                    _ => {
                        let count = |side: &Side| figures_timed(side, &seg.grid);
                        let needed = (1.96f64 * 1.96 * q / (1.0 - q)).ceil() as u64;
                        return Err(NoSegments::Tail { metric, base: count(&seg.base), head: count(&seg.head), needed });
                    }
                }
            }
            None => 0.0,
        };
        let e = interval(at, reps, resamples, z, widen, floor).ok_or(NoSegments::Sparse)?;
        Ok(Estimate { change: e.change.exp_m1(), low: e.low.exp_m1(), high: e.high.exp_m1(), ..e })
    };
    let points = |b: &Figures, h: &Figures| Some(h.errors? - b.errors?);
    let errors = points(&point.0, &point.1)
        .and_then(|at| interval(at, draws.iter().filter_map(|(b, h)| points(b, h)).collect(), resamples, z, widen, 0.0))
        .ok_or(NoSegments::Sparse);
    Estimates {
        p50: ratio(&|f| f.q[0], Some((Metric::P50, QUANTILES[0]))),
        p95: ratio(&|f| f.q[1], Some((Metric::P95, QUANTILES[1]))),
        p99: ratio(&|f| f.q[2], Some((Metric::P99, QUANTILES[2]))),
        rps: ratio(&|f| f.rps, None),
        errors,
    }
}

/// Timed requests of a side as it ran.
fn figures_timed(side: &Side, grid: &[u64]) -> u64 {
    grid.len().checked_sub(1).map_or(0, |last| side.cum.iter().map(|c| c[last]).sum())
}

/// The standard error of the log of the q-quantile of a side's requests from their order
/// statistics: the ranks [`rank_window`] gives bound the quantile with 95% confidence whatever
/// the distribution; half the log of their ratio, over 1.96. `Err` when the upper rank lies past
/// the last request: the sample cannot bound the percentile from above.
fn rank_se(side: &Side, grid: &[u64], q: f64) -> Result<f64, ()> {
    let last = grid.len().checked_sub(1).ok_or(())?;
    let at = |k: usize| side.cum.iter().map(|c| c[k]).sum::<u64>();
    let (lo_rank, hi_rank) = rank_window(at(last), q)?;
    let value_at = |rank: u64| {
        let (mut lo, mut hi) = (0usize, last);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if at(mid) >= rank { hi = mid } else { lo = mid + 1 }
        }
        grid[lo] as f64
    };
    Ok((value_at(hi_rank) / value_at(lo_rank)).ln() / (2.0 * 1.96))
}

/// The ranks that bound the q-quantile of `n` requests with 95% confidence, whatever the
/// distribution (binomial): `k ± 1.96 sqrt(n q (1 - q))` around `k = ceil(q n)`. `Err` when
/// there is no request, or the upper rank lies past the last one.
fn rank_window(n: u64, q: f64) -> Result<(u64, u64), ()> {
    if n == 0 {
        return Err(());
    }
    let k = (q * n as f64).ceil();
    let d = 1.96 * (n as f64 * q * (1.0 - q)).sqrt();
    let (lo_rank, hi_rank) = ((k - d).floor().max(1.0) as u64, (k + d).ceil() as u64);
    if hi_rank > n {
        return Err(());
    }
    Ok((lo_rank, hi_rank))
}

/// The standard error of the log ratio of the two sides' q-quantiles if both drew from one
/// distribution: the order statistics ([`rank_window`]'s ranks) of both sides' requests together
/// (`n` of them), each side's share scaled up to its own count `n_s` (a quantile's variance
/// goes as one over the count): `se_pooled · sqrt(n / n_base + n / n_head)`. The head's
/// requests are first moved back by `shift`, how far its whole distribution surely moved (the
/// log ratio of the medians, less what their order statistics leave uncertain), so that a
/// change of every request does not read as spread: two sides far apart, put together unmoved,
/// have their median in the gap between them, and the ranks around it reach from one side to
/// the other (a route made 6 times slower read "noisy" that way). Medians that may not have
/// moved (and a change of the tail alone) leave the sides pooled as they are.
fn pooled_rank_se(seg: &Segmented, q: f64, shift: f64) -> Result<f64, ()> {
    let totals = |side: &Side| -> Vec<u64> {
        (0..seg.grid.len()).map(|k| side.cum.iter().map(|c| c[k] - if k == 0 { 0 } else { c[k - 1] }).sum()).collect()
    };
    let scale = (-shift).exp();
    let mut values: Vec<(f64, u64)> = seg.grid.iter().zip(totals(&seg.base)).map(|(v, n)| (*v as f64, n)).collect();
    values.extend(seg.grid.iter().zip(totals(&seg.head)).map(|(v, n)| (*v as f64 * scale, n)));
    values.retain(|(_, n)| *n > 0);
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (nb, nh) = (figures_timed(&seg.base, &seg.grid), figures_timed(&seg.head, &seg.grid));
    if nb == 0 || nh == 0 {
        return Err(());
    }
    let (lo_rank, hi_rank) = rank_window(nb + nh, q)?;
    let value_at = |rank: u64| {
        let mut seen = 0;
        values.iter().find(|(_, c)| {
            seen += c;
            seen >= rank
        })
    };
    let (lo, hi) = (value_at(lo_rank).ok_or(())?.0, value_at(hi_rank).ok_or(())?.0);
    let se = (hi / lo).ln() / (2.0 * 1.96);
    let (nb, nh) = (nb as f64, nh as f64);
    let n = nb + nh;
    Ok(se * (n / nb + n / nh).sqrt())
}

/// The interval around `at`, `at ± t se` (`z` is Student's quantile for the units), where `se`
/// is the resamples' spread (widened for the few units a run has) or `floor`, whichever is
/// larger; the p-value is the normal one of `at / se` (the share of resamples without a value must stay small: a metric most resamples
/// cannot compute is not estimated).
fn interval(at: f64, reps: Vec<f64>, resamples: usize, z: f64, widen: f64, floor: f64) -> Option<Estimate> {
    if reps.len() * 10 < resamples * 9 || reps.len() < 2 {
        return None;
    }
    let mean = reps.iter().sum::<f64>() / reps.len() as f64;
    let spread = widen * (reps.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (reps.len() - 1) as f64).sqrt();
    let se = spread.max(floor);
    let p_value = if se > 0.0 {
        Normal::standard().cdf(-at.abs() / se)
    } else if at == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(Estimate { change: at, low: at - z * se, high: at + z * se, p_value, se })
}

/// A seed for one endpoint's resamples: its name, hashed (FNV-1a), so verdicts repeat.
pub fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    fn segment(values_us: &[u64], errors: u64, seconds: f64) -> EndpointSegment {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in values_us {
            h.record(*v).unwrap();
        }
        let histogram = if h.is_empty() { String::new() } else { crate::summary::hist::encode(&h) };
        EndpointSegment { t: 0.0, seconds, requests: values_us.len() as u64 + errors, errors, histogram }
    }

    #[test]
    fn figures_read_quantiles_as_hdrhistogram_does() {
        let values: Vec<u64> = (1..=1000).map(|v| v * 7).collect();
        let segs: Vec<EndpointSegment> = values.chunks(100).map(|c| segment(c, 0, 1.0)).collect();
        let seg = Segmented::of(&segs, &segs, false).unwrap();
        let f = figures(&seg.base, &[1; 10], &seg.grid);
        let mut whole = Histogram::<u64>::new(3).unwrap();
        values.iter().for_each(|v| whole.record(*v).unwrap());
        for (i, q) in QUANTILES.iter().enumerate() {
            assert_eq!(f.q[i], Some(whole.value_at_quantile(*q) as f64), "quantile {q}");
        }
        assert_eq!(f.rps, Some(100.0));
        // Twice every segment is the same distribution.
        assert_eq!(figures(&seg.base, &[2; 10], &seg.grid).q, f.q);
    }

    #[test]
    fn too_few_or_no_segments_are_said() {
        let one = vec![segment(&[1000], 0, 1.0)];
        assert_eq!(Segmented::of(&[], &one, false).unwrap_err(), NoSegments::Missing);
        let four = vec![segment(&[1000], 0, 1.0); 4];
        assert_eq!(Segmented::of(&four, &four, false).unwrap_err(), NoSegments::TooFew { base: 4, head: 4 });
    }

    #[test]
    fn a_tail_narrow_by_luck_on_one_side_is_not_read_as_a_change() {
        // Measured: the same code twice, 300 requests a side; the base's slowest requests
        // bunched up, so its p95 read 41% under the copy's, and its own order statistics and its
        // resamples said its tail was narrow. Read from both sides together, the tail is as
        // wide as it is, and the interval reaches well under the 12% a 20% threshold needs
        // cleared (rule.rs's MARGIN).
        #[derive(serde::Deserialize)]
        struct Pair {
            base: Vec<EndpointSegment>,
            head: Vec<EndpointSegment>,
        }
        let pair: Pair = serde_json::from_str(include_str!("../../../fixtures/summaries/ab-same-code-narrow-tail.json")).unwrap();
        let seg = Segmented::of(&pair.base, &pair.head, true).unwrap();
        let p95 = estimate(&seg, 0.95, RESAMPLES, seed_for("login")).get(Metric::P95).unwrap();
        assert!(p95.change > 0.35, "the change as measured: {p95:?}");
        assert!(p95.low < 0.0, "the interval reaches no change: {p95:?}");
        // Each side's own order statistics alone were sure of it.
        let own = rank_se(&seg.base, &seg.grid, 0.95).unwrap().hypot(rank_se(&seg.head, &seg.grid, 0.95).unwrap());
        assert!(own < p95.se / 1.5, "own {own}, taken {}", p95.se);
    }

    #[test]
    fn a_route_made_many_times_slower_is_clear_of_the_noise() {
        // Measured: a statement made non-sargable took a 2 ms route to 14 ms; 85 requests a
        // side in five segments, no request of one side near the other's. Both sides put
        // together unmoved have their median in the gap between them, and the ranks around it
        // reach from 2 ms to 14 ms: the change read "noisy", +529% ± 3309%.
        let side = |from: u64, step: u64| -> Vec<EndpointSegment> {
            (0..5).map(|i| segment(&(0..17).map(|j| from + step * ((j * 7 + i * 3) % 17)).collect::<Vec<_>>(), 0, 2.0)).collect()
        };
        let (base, head) = (side(1800, 30), side(12_000, 250));
        let seg = Segmented::of(&base, &head, false).unwrap();
        let est = estimate(&seg, 0.95, RESAMPLES, seed_for("slots"));
        for metric in [Metric::P50, Metric::P95] {
            let e = est.get(metric).unwrap();
            assert!(e.change > 5.0 && e.low > 4.0, "{metric:?}: {e:?}");
        }
        // Unmoved, the pooled ranks would have said so.
        assert!(pooled_rank_se(&seg, 0.5, 0.0).unwrap() > 0.5);
    }

    #[test]
    fn resamples_repeat_for_the_same_seed() {
        let segs: Vec<EndpointSegment> = (0..8).map(|i| segment(&[1000 + i * 10, 1100, 1300 + i], 0, 1.0)).collect();
        let seg = Segmented::of(&segs, &segs, true).unwrap();
        assert_eq!(estimate(&seg, 0.95, 200, 7), estimate(&seg, 0.95, 200, 7));
    }
}
