//! Soak: least-squares trends of memory (per service) and of the per-second p95.
//!
//! Growth = slope × (last x − first x) / fitted value at the first x: the relative rise the
//! trend line shows over the run. A leak is flagged when the growth exceeds the limit AND the
//! slope is significantly above zero: one-sided t-test on the slope at 95% (t = slope / its
//! standard error, n − 2 degrees of freedom). Noise around a flat line therefore never fails,
//! however large its swings. A leak also *keeps* rising: when the last third of the series
//! has enough points, it must rise significantly too, at a rate that would itself pass the
//! limit over the whole run. A step followed by a plateau (PostgreSQL's memory when
//! autovacuum and the buffer cache warm up) is therefore not a leak. Series shorter than
//! [`MIN_POINTS`] are not judged (the check passes and says so): a soak verdict needs a
//! trend, not a handful of samples.

use super::verdict::{check, figure, num};
use crate::plan::compiled::SoakSpec;
use crate::summary::Summary;

/// Fewest points a trend is judged on.
pub const MIN_POINTS: usize = 10;

/// A least-squares line `y = intercept + slope × x` and the t statistic of its slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    /// slope / standard error; infinite for a perfect rising line, `0` for a flat one.
    pub t: f64,
    /// Degrees of freedom (n − 2).
    pub df: usize,
    pub first_x: f64,
    pub last_x: f64,
}

impl Fit {
    /// Relative rise of the fitted line over the x range; `None` when the line starts at or
    /// below zero (no meaningful ratio).
    pub fn growth(&self) -> Option<f64> {
        let start = self.intercept + self.slope * self.first_x;
        (start > 0.0).then(|| self.slope * (self.last_x - self.first_x) / start)
    }

    /// Whether the slope is significantly above zero (one-sided, 95%).
    pub fn rising(&self) -> bool {
        self.slope > 0.0 && self.t > t_critical_95(self.df)
    }
}

/// The least-squares fit of `points`; `None` with fewer than 3 points or no spread in x.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ssr: f64 = points.iter().map(|p| (p.1 - intercept - slope * p.0).powi(2)).sum();
    let se = (ssr / (nf - 2.0) / sxx).sqrt();
    // A residual that is rounding noise relative to the data counts as a perfect line.
    let t = if se > 1e-12 * (my.abs() + slope.abs() + 1.0) {
        slope / se
    } else if slope > 0.0 {
        f64::INFINITY
    } else if slope < 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    let first_x = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last_x = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    Some(Fit { slope, intercept, t, df: n - 2, first_x, last_x })
}

/// One-sided 95% quantile of Student's t with `df` degrees of freedom (Cornish-Fisher
/// expansion around the normal 1.645; within 0.5% of the table from df = 3).
fn t_critical_95(df: usize) -> f64 {
    let z: f64 = 1.644_853_6;
    let d = df.max(1) as f64;
    z + (z.powi(3) + z) / (4.0 * d) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
}

pub(super) fn evaluate(spec: &SoakSpec, summary: &mut Summary) {
    for service in &spec.services {
        let name = format!("soak.memory.{service}");
        let series = summary.resources.get(service.as_str()).map(|r| r.memory_series.clone()).unwrap_or_default();
        if series.len() < MIN_POINTS {
            check(summary, name, true, format!("not judged: {} memory samples of {service} (at least {MIN_POINTS} needed)", series.len()));
            continue;
        }
        let points: Vec<(f64, f64)> = series.iter().enumerate().map(|(i, b)| (i as f64, *b as f64)).collect();
        let Some(f) = fit(&points) else { continue };
        figure(summary, format!("memory_slope_bytes_per_s.{service}"), num(f.slope));
        let growth = f.growth();
        figure(summary, format!("memory_growth.{service}"), growth.map_or(serde_json::Value::Null, num));
        let (passed, detail) = verdict(
            &points,
            &f,
            growth,
            spec.max_memory_growth,
            &format!("memory of {service}"),
            &format!("{:.1} KiB/s", f.slope / 1024.0),
        );
        check(summary, name, passed, detail);
    }

    let points: Vec<(f64, f64)> = summary.windows.iter().filter_map(|w| w.p95.map(|p| (w.t as f64, p))).collect();
    if points.len() < MIN_POINTS {
        check(summary, "soak.p95", true, format!("not judged: {} windows with a p95 (at least {MIN_POINTS} needed)", points.len()));
        return;
    }
    let Some(f) = fit(&points) else { return };
    figure(summary, "p95_slope_ms_per_s", num(f.slope));
    let growth = f.growth();
    figure(summary, "p95_growth", growth.map_or(serde_json::Value::Null, num));
    let (passed, detail) = verdict(&points, &f, growth, spec.max_p95_growth, "p95", &format!("{:.4} ms/s", f.slope));
    check(summary, "soak.p95", passed, detail);
}

fn verdict(points: &[(f64, f64)], f: &Fit, growth: Option<f64>, limit: f64, what: &str, slope: &str) -> (bool, String) {
    let Some(g) = growth else {
        return (true, format!("not judged: the trend of {what} starts at or below zero"));
    };
    let rising = f.rising();
    let trend = if rising { "significant rise" } else { "no significant rise" };
    let mut detail = format!(
        "{what} trend {:+.1}% over {:.0} s (limit {:+.1}%), slope {slope}, {trend} (t = {:.1})",
        g * 100.0,
        f.last_x - f.first_x,
        limit * 100.0,
        f.t
    );
    let mut leak = g > limit && rising;
    if leak
        && let Some((still, tail_growth)) = still_rising(points, f, limit)
        && !still
    {
        detail.push_str(&format!(
            "; but the last third is flat ({:+.1}% over the run at its rate): a plateau, not a leak",
            tail_growth * 100.0
        ));
        leak = false;
    }
    (!leak, detail)
}

/// Whether the last third of `points` still rises significantly, at a rate that would pass
/// `limit` over the whole run (relative to the whole fit's start), and that growth; `None`
/// when the last third is too short to judge.
fn still_rising(points: &[(f64, f64)], whole: &Fit, limit: f64) -> Option<(bool, f64)> {
    let tail = &points[points.len() * 2 / 3..];
    if tail.len() < MIN_POINTS {
        return None;
    }
    let t = fit(tail)?;
    let start = whole.intercept + whole.slope * whole.first_x;
    if start <= 0.0 {
        return None;
    }
    let g = t.slope * (whole.last_x - whole.first_x) / start;
    Some((t.rising() && g > limit, g))
}
