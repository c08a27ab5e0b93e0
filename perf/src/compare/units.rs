//! The samples a significance test compares: per-window (or per-block) values of a run, or
//! per-round values in A/B mode.
//!
//! # Why windows, and why blocks
//! A run's requests are not independent draws: a GC pause, a noisy neighbour or a vacuum slows
//! a stretch of them together. Testing per-request values would call such a stretch
//! "significant"; testing per-second values lets the run's own second-to-second variation be
//! the noise the change must stand out from.
//!
//! A window's percentile is only meaningful when enough requests lie above it. A window with
//! `n` requests has `n * (1 - q)` samples above its q-quantile; we want at least
//! [`TAIL_SAMPLES`] (5) of them, so a unit needs `ceil(5 / (1 - q))` requests: 10 for p50,
//! 100 for p95, 500 for p99. At 500 rps every 1-s window qualifies for p99. At 5 rps a 1-s
//! window's "p99" is simply its largest sample, so consecutive windows are pooled into blocks
//! of `ceil(500 / 5) = 100` windows. Windows carry percentiles, not histograms, so a block's
//! value is the request-weighted mean of its windows' percentiles: an approximation, but the
//! same approximation on both sides, because the block length (in windows) is chosen once
//! for both sides from the slower side's median window size. The test only decides whether
//! the change is real; its size comes from the whole-run histograms.
//!
//! When either side yields fewer than [`MIN_UNITS`] units (a short run, a slow endpoint's p99)
//! the metric cannot be tested and a change beyond the threshold is `noisy`. When a side has
//! no windows at all (older summaries), there is nothing to test: see [`Untestable::NoWindows`].

use crate::summary::EndpointWindow;

use super::model::Metric;

/// Samples wanted above a percentile for a unit's percentile to mean something.
pub const TAIL_SAMPLES: f64 = 5.0;
/// Fewer window units than this on a side: no test. With 5 against 5 the smallest one-sided
/// Mann-Whitney p-value is 1/252 = 0.004, so reaching alpha = 0.05 takes more than "every
/// unit of head above every unit of base" by luck (3 against 3 would make exactly that
/// pattern, p = 1/20, significant).
pub const MIN_UNITS: usize = 5;
/// Fewer rounds than this on a side (A/B mode): no test. Rounds are expensive, so 3 are
/// accepted; at 3 against 3 only complete separation is significant (p = 0.05), so 5 rounds
/// a side are the better choice.
pub const MIN_ROUNDS: usize = 3;

/// Why a metric could not be tested.
#[derive(Debug, Clone, PartialEq)]
pub enum Untestable {
    /// A side carries no per-window data (a summary from an older writer, or a run too short
    /// to close one window).
    NoWindows,
    /// Windows (or rounds) exist but too few units could be formed. `per_unit` is the
    /// requests a unit needs (1 for plain windows, 0 for rounds).
    TooFewUnits { base: usize, head: usize, per_unit: u64, needed: usize },
}

impl Untestable {
    pub fn describe(&self) -> String {
        match self {
            Untestable::NoWindows => "no per-window data to test".to_string(),
            Untestable::TooFewUnits { base, head, per_unit, needed } => {
                let what = match per_unit {
                    0 => "rounds".to_string(),
                    1 => "windows".to_string(),
                    n => format!("units of {n} requests"),
                };
                format!("too few {what} to test ({base} base, {head} head, {needed} needed)")
            }
        }
    }
}

/// Paired samples for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Units {
    pub base: Vec<f64>,
    pub head: Vec<f64>,
    /// Windows per unit (1 for plain windows; 0 for rounds).
    pub block: u32,
}

/// Requests a unit needs for its q-quantile to be meaningful.
pub fn min_requests(q: f64) -> u64 {
    (TAIL_SAMPLES / (1.0 - q)).ceil() as u64
}

fn window_value(w: &EndpointWindow, metric: Metric) -> Option<f64> {
    match metric {
        Metric::P50 => w.p50,
        Metric::P95 => w.p95,
        Metric::P99 => w.p99,
        Metric::Rps | Metric::ErrorRate => None,
    }
    .filter(|v| v.is_finite())
}

/// Units for a latency metric from the windows of both sides.
pub fn latency_units(base: &[EndpointWindow], head: &[EndpointWindow], metric: Metric) -> Result<Units, Untestable> {
    let q = metric.quantile().expect("latency metric");
    if base.is_empty() || head.is_empty() {
        return Err(Untestable::NoWindows);
    }
    let usable = |ws: &[EndpointWindow]| -> Vec<(u64, f64)> {
        let mut v: Vec<(u32, u64, f64)> =
            ws.iter().filter(|w| w.requests > 0).filter_map(|w| window_value(w, metric).map(|x| (w.t, w.requests, x))).collect();
        v.sort_by_key(|w| w.0);
        v.into_iter().map(|(_, n, x)| (n, x)).collect()
    };
    let (b, h) = (usable(base), usable(head));
    let need = min_requests(q);
    let median = |v: &[(u64, f64)]| crate::util::median(v.iter().map(|w| w.0 as f64)).map_or(0, |m| m as u64);
    let per_window = median(&b).min(median(&h));
    if per_window == 0 {
        return Err(Untestable::TooFewUnits { base: 0, head: 0, per_unit: need, needed: MIN_UNITS });
    }
    let block = need.div_ceil(per_window).max(1) as usize;
    let blocks = |ws: &[(u64, f64)]| -> Vec<f64> {
        ws.chunks(block)
            .filter_map(|c| {
                let n: u64 = c.iter().map(|w| w.0).sum();
                (n >= need).then(|| c.iter().map(|w| w.0 as f64 * w.1).sum::<f64>() / n as f64)
            })
            .collect()
    };
    let (bu, hu) = (blocks(&b), blocks(&h));
    if bu.len() < MIN_UNITS || hu.len() < MIN_UNITS {
        return Err(Untestable::TooFewUnits { base: bu.len(), head: hu.len(), per_unit: need, needed: MIN_UNITS });
    }
    Ok(Units { base: bu, head: hu, block: block as u32 })
}

/// Per-second request counts over the whole seconds of the measured part, gaps filled with
/// zero (a window the engine did not write had no requests).
fn per_second_counts(ws: &[EndpointWindow], duration_s: f64) -> Vec<f64> {
    let whole = (duration_s + 1e-6).floor().max(0.0) as usize;
    let mut counts = vec![0f64; whole];
    for w in ws {
        if let Some(c) = counts.get_mut(w.t as usize) {
            *c += w.requests as f64;
        }
    }
    counts
}

/// Units for throughput: requests per 1-s window.
pub fn rps_units(
    base: &[EndpointWindow],
    base_duration_s: f64,
    head: &[EndpointWindow],
    head_duration_s: f64,
) -> Result<Units, Untestable> {
    if base.is_empty() || head.is_empty() {
        return Err(Untestable::NoWindows);
    }
    let (b, h) = (per_second_counts(base, base_duration_s), per_second_counts(head, head_duration_s));
    if b.len() < MIN_UNITS || h.len() < MIN_UNITS {
        return Err(Untestable::TooFewUnits { base: b.len(), head: h.len(), per_unit: 1, needed: MIN_UNITS });
    }
    Ok(Units { base: b, head: h, block: 1 })
}

/// Units from per-round values (A/B mode): a round without a value (no samples) is skipped.
pub fn round_units(base: &[Option<f64>], head: &[Option<f64>]) -> Result<Units, Untestable> {
    let keep = |v: &[Option<f64>]| v.iter().flatten().copied().filter(|x| x.is_finite()).collect::<Vec<_>>();
    let (b, h) = (keep(base), keep(head));
    if b.len() < MIN_ROUNDS || h.len() < MIN_ROUNDS {
        return Err(Untestable::TooFewUnits { base: b.len(), head: h.len(), per_unit: 0, needed: MIN_ROUNDS });
    }
    Ok(Units { base: b, head: h, block: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(n: u32, requests: u64, p99: f64) -> Vec<EndpointWindow> {
        (0..n).map(|t| EndpointWindow { t, requests, errors: 0, p50: Some(p99 / 3.0), p95: Some(p99 / 1.5), p99: Some(p99) }).collect()
    }

    #[test]
    fn tail_requirements() {
        assert_eq!(min_requests(0.5), 10);
        assert_eq!(min_requests(0.95), 100);
        assert_eq!(min_requests(0.99), 500);
    }

    #[test]
    fn rich_windows_are_units_of_their_own() {
        let u = latency_units(&windows(30, 600, 9.0), &windows(30, 600, 9.0), Metric::P99).unwrap();
        assert_eq!((u.base.len(), u.head.len(), u.block), (30, 30, 1));
    }

    #[test]
    fn thin_windows_pool_into_equal_blocks_on_both_sides() {
        // 50 rps: p99 needs 500 requests, so blocks of 10 windows, from the slower side.
        let u = latency_units(&windows(60, 80, 9.0), &windows(60, 50, 9.0), Metric::P99).unwrap();
        assert_eq!(u.block, 10);
        assert_eq!((u.base.len(), u.head.len()), (6, 6));
        // p50 at the same rate needs no pooling.
        let u = latency_units(&windows(60, 80, 9.0), &windows(60, 50, 9.0), Metric::P50).unwrap();
        assert_eq!(u.block, 1);
    }

    #[test]
    fn too_thin_or_absent_windows_are_untestable() {
        let e = latency_units(&windows(30, 5, 9.0), &windows(30, 5, 9.0), Metric::P99).unwrap_err();
        assert_eq!(e, Untestable::TooFewUnits { base: 0, head: 0, per_unit: 500, needed: MIN_UNITS });
        assert_eq!(latency_units(&[], &windows(30, 5, 9.0), Metric::P50).unwrap_err(), Untestable::NoWindows);
        assert_eq!(rps_units(&windows(3, 5, 1.0), 3.0, &[], 3.0).unwrap_err(), Untestable::NoWindows);
    }

    #[test]
    fn rps_counts_fill_gaps_and_drop_the_partial_second() {
        let mut ws = windows(7, 10, 1.0);
        ws.remove(2);
        let u = rps_units(&ws, 6.5, &windows(7, 10, 1.0), 7.0).unwrap();
        assert_eq!(u.base, vec![10.0, 10.0, 0.0, 10.0, 10.0, 10.0]);
        assert_eq!(u.head.len(), 7);
    }
}
