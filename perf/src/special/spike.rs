//! Spike: errors during the jump, and the time p95 takes to come back afterwards.

use super::verdict::{check, figure, num, windows_within};
use crate::plan::compiled::SpikeSpec;
use crate::summary::Summary;
use crate::util::median;

/// Consecutive windows p95 must stay recovered for.
pub(super) const RECOVERED_WINDOWS: usize = 3;
/// Smallest excess over the pre-spike p95 that still counts as not recovered, in ms: on a
/// route that answers in 2 ms, 20% is 0.4 ms, less than one second's p95 varies by itself
/// (the same absolute floor as the regression rule's default).
pub(super) const RECOVERY_FLOOR_MS: f64 = 1.0;

pub(super) fn evaluate(spec: &SpikeSpec, summary: &mut Summary, warmup: f64) {
    let start = spec.start.as_secs_f64() - warmup;
    let end = spec.end.as_secs_f64() - warmup;

    // Errors of every window that overlaps the jump.
    let (requests, errors) = summary
        .windows
        .iter()
        .filter(|w| w.t as f64 + 1.0 > start && (w.t as f64) < end)
        .fold((0u64, 0u64), |(r, e), w| (r + w.requests, e + w.errors));
    let error_rate = if requests == 0 { 0.0 } else { errors as f64 / requests as f64 };
    figure(summary, "spike_error_rate", num(error_rate));
    let (passed, detail) = if requests == 0 {
        (false, "no request was measured during the spike".to_string())
    } else {
        (
            error_rate <= spec.max_error_rate,
            format!(
                "{errors} of {requests} requests failed during the spike ({:.2}%, limit {:.2}%)",
                error_rate * 100.0,
                spec.max_error_rate * 100.0
            ),
        )
    };
    check(summary, "spike.errors", passed, detail);

    let pre = median(windows_within(&summary.windows, f64::NEG_INFINITY, start).filter_map(|w| w.p95));
    figure(summary, "pre_spike_p95_ms", pre.map_or(serde_json::Value::Null, num));
    let Some(pre) = pre else {
        figure(summary, "recovery_s", serde_json::Value::Null);
        check(summary, "spike.recovery", false, "no measured window before the spike: the pre-spike p95 is unknown");
        return;
    };
    let limit = (pre * (1.0 + spec.recovery_tolerance)).max(pre + RECOVERY_FLOOR_MS);
    let after: Vec<_> = summary.windows.iter().filter(|w| w.t as f64 >= end).collect();
    let ok = |i: usize| after[i].p95.is_some_and(|p| p <= limit);
    let recovery = (0..after.len().saturating_sub(RECOVERED_WINDOWS - 1))
        .find(|&i| (i..i + RECOVERED_WINDOWS).all(ok))
        .map(|i| (after[i].t as f64 - end).max(0.0));
    figure(summary, "recovery_s", recovery.map_or(serde_json::Value::Null, num));
    let max = spec.max_recovery.as_secs_f64();
    let (passed, detail) = match recovery {
        Some(r) => (
            r <= max,
            format!(
                "p95 back within {:.0}% (at least {RECOVERY_FLOOR_MS} ms) of the pre-spike {pre:.1} ms (≤ {limit:.1} ms) {r:.0} s after the spike (limit {max:.0} s)",
                spec.recovery_tolerance * 100.0
            ),
        ),
        None => (
            false,
            format!(
                "p95 never came back within {:.0}% (at least {RECOVERY_FLOOR_MS} ms) of the pre-spike {pre:.1} ms (≤ {limit:.1} ms) for {RECOVERED_WINDOWS} consecutive seconds",
                spec.recovery_tolerance * 100.0
            ),
        ),
    };
    check(summary, "spike.recovery", passed, detail);
}
