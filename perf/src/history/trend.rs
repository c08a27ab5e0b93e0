//! Trends: per testbed, suite and endpoint, the nights in order, with the nights where the
//! endpoint changed marked. Pure.
//!
//! # Change points: the gate's own rule, nights as rounds
//! The **reference** of night `k` is up to [`REFERENCE_NIGHTS`] valid nights before it, none
//! before the last change point (nor before a change of the suite's definition). Night `k` is
//! a change point when, for one metric of the endpoint,
//! 1. night `k` and each of the [`CONFIRM_NIGHTS`]` - 1` nights after it, **each on its own**,
//!    is beyond the threshold and the floor against the reference, the same way; and
//! 2. the gate's A/B rule ([`crate::compare::compare_rounds`], the rule a pull request's A/B run
//!    is judged by), with the reference as the base side and those nights as the head side,
//!    each night one round, says `regressed` (or `improved`).
//!
//! So, as for a pull request: p50, p95 and p99 from the exact merge of the nights' HDR
//! histograms more than 20% worse (throughput 20% lower, errors 1 point higher: the plan's
//! `[compare]` table, overrides included), by more than the 1 ms floor, on at least 100
//! requests a side, and significant by a one-sided Mann-Whitney U over the nights' own values
//! (α = 0.05).
//!
//! Why this does not cry wolf on noise:
//! - a night is compared with several nights, never with one: one slow reference night cannot
//!   make the next night look fast, nor the reverse;
//! - one or two slow nights are never enough: three nights in a row must each be beyond the
//!   threshold (a merged p95 follows its slowest night, so merging alone would let one slow
//!   night through), and together stand apart from the reference (three nights above seven
//!   reference nights: p = 1/120);
//! - the threshold and the floor of the gate apply, so a significant 5% drift is no change
//!   point, and a CI machine's day-to-day drift of ±10% is not either (tested);
//! - after a change point the reference starts again from it, so one step is marked once, on
//!   its first night, not again on each night while the old nights leave the reference;
//! - nights are compared only within one testbed and one suite definition (a changed
//!   `run.suite_hash` starts a new reference and is shown as such, not as a change); invalid
//!   runs are shown but never compared.
//!
//! The price: a change is confirmed two nights after it happened (until then the newest
//! nights, when beyond the threshold, are [`Pending`]), and a step hardly larger than the
//! threshold can go unmarked when one of its first three nights falls back under it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::{EndpointComparison, Metric, MetricComparison, Verdict, compare_rounds, units::MIN_ROUNDS};
use crate::plan::CompareRules;
use crate::summary::{EndpointSummary, Errors, GitInfo, HostInfo, Latency, RunInfo, Summary};

use super::record::{EndpointRecord, NightRecord, order};

/// Nights before a candidate that it is compared with, at most.
pub const REFERENCE_NIGHTS: usize = 7;
/// Nights, from the candidate on, that must stand apart from the reference together (the A/B
/// rule's fewest rounds a side).
pub const CONFIRM_NIGHTS: usize = MIN_ROUNDS;

/// One night of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NightPoint {
    pub sha: String,
    /// RFC 3339 (the record's date).
    pub date: String,
    pub valid: bool,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    /// Seconds the suite measured.
    pub duration_s: f64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl NightPoint {
    /// The night's day, `2026-11-27`.
    pub fn day(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }

    /// Errors per second measured.
    pub fn errors_per_s(&self) -> f64 {
        if self.duration_s > 0.0 { self.errors as f64 / self.duration_s } else { 0.0 }
    }
}

/// Which way an endpoint moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Regression,
    Improvement,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Regression => "regression",
            Direction::Improvement => "improvement",
        }
    }
}

/// One metric that moved at a change point, as the rule judged it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricMove {
    pub metric: Metric,
    /// The reference's value and the confirming nights' value (merged), in the metric's unit.
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub delta_rel: Option<f64>,
    /// One-sided p-value of the test over the nights (none when untestable).
    pub p_value: Option<f64>,
    /// The rule's own sentence.
    pub reason: String,
}

impl MetricMove {
    fn of(m: &MetricComparison) -> MetricMove {
        MetricMove {
            metric: m.metric,
            before: m.base,
            after: m.head,
            delta_rel: m.delta_rel,
            p_value: m.test.as_ref().map(|t| t.p_value),
            reason: m.reason.clone(),
        }
    }

    /// `p95 +45.2% (3.10 → 4.50 ms)`.
    pub fn describe(&self) -> String {
        use crate::render::format::{ms, pct, rps};
        let v = |x: Option<f64>| match (self.metric, x) {
            (_, None) => "-".to_string(),
            (Metric::Rps, Some(x)) => rps(x),
            (Metric::ErrorRate, Some(x)) => pct(x),
            (_, Some(x)) => ms(x),
        };
        let change = match (self.metric, self.delta_rel, self.before.zip(self.after)) {
            (Metric::ErrorRate, _, Some((b, a))) => format!("{:+.2} pt", a - b),
            (_, Some(r), _) => format!("{:+.1}%", r * 100.0),
            _ => "changed".to_string(),
        };
        let unit = match self.metric {
            Metric::Rps => " req/s",
            Metric::ErrorRate => "",
            _ => " ms",
        };
        format!("{} {change} ({} → {}{unit})", self.metric, v(self.before), v(self.after))
    }
}

/// A night where the endpoint changed, confirmed by the nights after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePoint {
    /// Index into [`Trend::nights`].
    pub night: usize,
    pub sha: String,
    pub date: String,
    pub direction: Direction,
    /// The metrics that moved that way, in report order.
    pub moves: Vec<MetricMove>,
    /// Nights in the reference (before) and on the head side (the night and its confirmers).
    pub reference_nights: usize,
    pub head_nights: usize,
}

impl ChangePoint {
    /// `p95 +45.2% (3.10 → 4.50 ms); p99 +40.1% (…)`.
    pub fn describe(&self) -> String {
        self.moves.iter().map(MetricMove::describe).collect::<Vec<_>>().join("; ")
    }
}

/// The newest nights moved beyond the threshold, but too few nights have followed to confirm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pending {
    pub night: usize,
    pub sha: String,
    pub date: String,
    pub direction: Direction,
    /// The night on its own against the reference.
    pub moves: Vec<MetricMove>,
    /// Nights still needed to confirm or dismiss it.
    pub nights_needed: usize,
}

/// The nights of one endpoint of one suite on one testbed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub testbed: String,
    pub suite: String,
    pub endpoint: String,
    /// The last nights asked for, oldest first (invalid runs included, marked).
    pub nights: Vec<NightPoint>,
    /// Nights of this endpoint before the ones shown (still used as the reference).
    pub earlier_nights: usize,
    /// Change points among the nights shown, oldest first.
    pub changes: Vec<ChangePoint>,
    pub pending: Option<Pending>,
    /// Nights (indices into `nights`) whose suite definition differs from the night before.
    pub definition_changes: Vec<usize>,
}

impl Trend {
    pub fn regressions(&self) -> impl Iterator<Item = &ChangePoint> {
        self.changes.iter().filter(|c| c.direction == Direction::Regression)
    }

    /// The newest valid night.
    pub fn latest(&self) -> Option<&NightPoint> {
        self.nights.iter().rev().find(|n| n.valid)
    }

    /// The valid nights' p95, oldest first.
    pub fn p95_series(&self) -> Vec<f64> {
        self.nights.iter().filter(|n| n.valid).filter_map(|n| n.p95).collect()
    }
}

/// One night of one endpoint, as the detector sees it.
struct Entry<'a> {
    point: NightPoint,
    suite_hash: Option<&'a str>,
    record: &'a EndpointRecord,
}

/// Every trend in `records` (any order), keeping the last `last` nights of each; change
/// points are found over the whole history with `rules` (the plan's `[compare]` table).
/// Sorted by testbed, suite and endpoint.
pub fn trends(records: &[NightRecord], rules: &CompareRules, last: usize) -> Vec<Trend> {
    let mut sorted: Vec<&NightRecord> = records.iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let mut series: BTreeMap<(&str, &str, &str), Vec<Entry<'_>>> = BTreeMap::new();
    for r in sorted {
        for (suite, s) in &r.suites {
            for (name, e) in &s.endpoints {
                series.entry((r.testbed.as_str(), suite.as_str(), name.as_str())).or_default().push(Entry {
                    point: NightPoint {
                        sha: r.sha.clone(),
                        date: r.date.clone(),
                        valid: s.valid,
                        requests: e.requests,
                        errors: e.errors,
                        rps: e.rps,
                        duration_s: s.duration_s,
                        p50: e.p50,
                        p95: e.p95,
                        p99: e.p99,
                    },
                    suite_hash: s.suite_hash.as_deref(),
                    record: e,
                });
            }
        }
    }
    series.into_iter().map(|((testbed, suite, endpoint), entries)| trend(testbed, suite, endpoint, &entries, rules, last)).collect()
}

fn trend(testbed: &str, suite: &str, endpoint: &str, entries: &[Entry<'_>], rules: &CompareRules, last: usize) -> Trend {
    let found = detect(suite, endpoint, entries, rules, true);
    let cut = entries.len().saturating_sub(last.max(1));
    let shown = |i: usize| i.checked_sub(cut);
    Trend {
        testbed: testbed.to_string(),
        suite: suite.to_string(),
        endpoint: endpoint.to_string(),
        nights: entries[cut..].iter().map(|e| e.point.clone()).collect(),
        earlier_nights: cut,
        changes: found
            .changes
            .into_iter()
            .filter_map(|mut c| {
                c.night = shown(c.night)?;
                Some(c)
            })
            .collect(),
        pending: found.pending.and_then(|mut p| {
            p.night = shown(p.night)?;
            Some(p)
        }),
        definition_changes: found.definition_changes.into_iter().filter_map(shown).collect(),
    }
}

#[derive(Debug, Default, PartialEq)]
struct Found {
    changes: Vec<ChangePoint>,
    pending: Option<Pending>,
    definition_changes: Vec<usize>,
}

/// The change points of one endpoint's nights (indices into `entries`).
/// `prefilter`: skip the nights [`Thresholds::may_have_moved`] rules out (always, but in the
/// test that shows it changes nothing).
fn detect(suite: &str, endpoint: &str, entries: &[Entry<'_>], rules: &CompareRules, prefilter: bool) -> Found {
    let mut found = Found::default();
    // Only valid nights are compared; `at[k]` is the k-th valid night's index in `entries`.
    let at: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].point.valid).collect();
    let rounds: Vec<Summary> = at.iter().map(|&i| round(suite, endpoint, &entries[i])).collect();
    let hash = |k: usize| entries[at[k]].suite_hash;
    let limits = Thresholds::of(rules, endpoint);
    let mut start = 0;
    for k in 0..at.len() {
        if k > 0 && hash(k) != hash(k - 1) {
            start = k;
            found.definition_changes.push(at[k]);
            continue;
        }
        let lo = start.max(k.saturating_sub(REFERENCE_NIGHTS));
        if k - lo < MIN_ROUNDS {
            continue;
        }
        let reference: Vec<&Entry<'_>> = at[lo..k].iter().map(|&i| &entries[i]).collect();
        if prefilter && !limits.may_have_moved(&reference, &entries[at[k]]) {
            continue;
        }
        // Each night from k on, alone against the reference: the metrics beyond the threshold
        // that way on every one of them.
        let alone = |j: usize| endpoint_of(&compare_rounds(&rounds[lo..k], &rounds[j..=j], rules), endpoint);
        let Some(first) = alone(k) else { continue };
        let mut worse: Vec<Metric> = moved(&first, true);
        let mut better: Vec<Metric> = moved(&first, false);
        let mut end = k + 1;
        while (!worse.is_empty() || !better.is_empty()) && end < at.len() && end - k < CONFIRM_NIGHTS && hash(end) == hash(k) {
            let Some(next) = alone(end) else { break };
            worse.retain(|m| moved(&next, true).contains(m));
            better.retain(|m| moved(&next, false).contains(m));
            end += 1;
        }
        if worse.is_empty() && better.is_empty() {
            continue;
        }
        let night = &entries[at[k]].point;
        if end - k < CONFIRM_NIGHTS {
            if end == at.len() && found.pending.is_none() {
                let (direction, metrics) = if worse.is_empty() { (Direction::Improvement, better) } else { (Direction::Regression, worse) };
                found.pending = Some(Pending {
                    night: at[k],
                    sha: night.sha.clone(),
                    date: night.date.clone(),
                    direction,
                    moves: first.metrics.iter().filter(|m| metrics.contains(&m.metric)).map(MetricMove::of).collect(),
                    nights_needed: CONFIRM_NIGHTS - (end - k),
                });
            }
            continue;
        }
        let Some(together) = endpoint_of(&compare_rounds(&rounds[lo..k], &rounds[k..end], rules), endpoint) else { continue };
        let confirmed = |verdict: Verdict, metrics: &[Metric]| -> Vec<MetricMove> {
            together.metrics.iter().filter(|m| m.verdict == verdict && metrics.contains(&m.metric)).map(MetricMove::of).collect()
        };
        let (direction, moves) = match confirmed(Verdict::Regressed, &worse) {
            r if !r.is_empty() => (Direction::Regression, r),
            _ => match confirmed(Verdict::Improved, &better) {
                i if !i.is_empty() => (Direction::Improvement, i),
                _ => continue,
            },
        };
        found.changes.push(ChangePoint {
            night: at[k],
            sha: night.sha.clone(),
            date: night.date.clone(),
            direction,
            moves,
            reference_nights: k - lo,
            head_nights: end - k,
        });
        start = k;
    }
    found
}

fn endpoint_of(c: &crate::compare::SuiteComparison, endpoint: &str) -> Option<EndpointComparison> {
    c.endpoint(endpoint).cloned()
}

/// The metrics of a one-night comparison beyond the threshold and floor, worse or better.
/// With one head night the rule cannot test, so "beyond" shows as `noisy` (or, for errors,
/// already as regressed or improved); within the threshold or under the floor it is
/// `unchanged`.
fn moved(c: &EndpointComparison, worse: bool) -> Vec<Metric> {
    c.metrics
        .iter()
        .filter(|m| matches!(m.verdict, Verdict::Noisy | Verdict::Regressed | Verdict::Improved))
        .filter(|m| {
            let up = m.delta_abs.is_some_and(|d| d > 0.0);
            let down = m.delta_abs.is_some_and(|d| d < 0.0);
            let got_worse = if m.metric == Metric::Rps { down } else { up };
            let got_better = if m.metric == Metric::Rps { up } else { down };
            if worse { got_worse } else { got_better }
        })
        .map(|m| m.metric)
        .collect()
}

/// One night of one endpoint as a one-endpoint summary: a round for [`compare_rounds`].
fn round(suite: &str, endpoint: &str, e: &Entry<'_>) -> Summary {
    let r = e.record;
    let latency = Latency { p50: r.p50, p95: r.p95, p99: r.p99, ..Latency::default() };
    let ep = EndpointSummary {
        requests: r.requests,
        errors: Errors { total: r.errors, ..Errors::default() },
        statuses: BTreeMap::new(),
        rps: r.rps,
        bytes_sent: 0,
        bytes_received: 0,
        latency_ms: latency.clone(),
        service_ms: latency,
        histogram: r.histogram.clone(),
        service_histogram: String::new(),
        windows: Vec::new(),
        kind: None,
        messages_received: None,
        segments: Vec::new(),
    };
    let run = RunInfo {
        started_at: e.point.date.clone(),
        duration_s: e.point.duration_s,
        warmup_s: 0.0,
        git: GitInfo { sha: Some(e.point.sha.clone()), branch: None, dirty: None },
        backend: crate::plan::BackendKind::External,
        host: HostInfo::default(),
        tool_version: String::new(),
        plan_hash: String::new(),
        suite_hash: e.suite_hash.map(str::to_string),
        testbed: None,
        quick: false,
        tags: Vec::new(),
        shard: None,
        merged_from: Vec::new(),
    };
    Summary { endpoints: BTreeMap::from([(endpoint.to_string(), ep)]), ..Summary::new(suite, "load", run) }
}

/// One figure of a night.
type Pick<'a> = &'a dyn Fn(&NightPoint) -> Option<f64>;

/// The thresholds of one endpoint, for a cheap test that saves decoding histograms on the
/// nights nothing happened.
struct Thresholds {
    latency: [f64; 3],
    rps: f64,
    error_points: f64,
}

impl Thresholds {
    fn of(rules: &CompareRules, endpoint: &str) -> Thresholds {
        let o = rules.endpoints.get(endpoint);
        let t = rules.threshold;
        Thresholds {
            latency: [o.and_then(|o| o.p50).unwrap_or(t), o.and_then(|o| o.p95).unwrap_or(t), o.and_then(|o| o.p99).unwrap_or(t)],
            rps: o.and_then(|o| o.rps).unwrap_or(t),
            error_points: o.and_then(|o| o.error_rate_points).unwrap_or(rules.error_rate_points),
        }
    }

    /// False only when the night cannot be beyond a threshold against the reference: the
    /// reference's merged value (a quantile of the merged histograms, a weighted mean of
    /// rates) lies between its nights' smallest and largest values, so a night within the
    /// threshold of both ends is within it of the merge. A 2% margin covers the histograms'
    /// bucket widths.
    fn may_have_moved(&self, reference: &[&Entry<'_>], night: &Entry<'_>) -> bool {
        const MARGIN: f64 = 0.98;
        let range = |pick: Pick| -> Option<(f64, f64, f64)> {
            let v = pick(&night.point)?;
            let vals: Option<Vec<f64>> = reference.iter().map(|e| pick(&e.point)).collect();
            let vals = vals?;
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Some((v, lo, hi))
        };
        let beyond = |t: f64, r: Option<(f64, f64, f64)>| match r {
            None => true,
            Some((v, lo, hi)) => lo <= 0.0 || v > lo * (1.0 + t) * MARGIN || v < hi * (1.0 - t) * (2.0 - MARGIN),
        };
        let picks: [Pick; 3] = [&|n| n.p50, &|n| n.p95, &|n| n.p99];
        if picks.iter().zip(self.latency).any(|(p, t)| beyond(t, range(*p))) {
            return true;
        }
        if beyond(self.rps, range(&|n| Some(n.rps))) {
            return true;
        }
        let rate = |n: &NightPoint| if n.requests == 0 { 0.0 } else { n.errors as f64 / n.requests as f64 * 100.0 };
        let (v, lo, hi) = reference
            .iter()
            .map(|e| rate(&e.point))
            .fold((rate(&night.point), f64::INFINITY, f64::NEG_INFINITY), |(v, lo, hi), x| (v, lo.min(x), hi.max(x)));
        v - lo > self.error_points * MARGIN || hi - v > self.error_points * MARGIN
    }
}

#[cfg(test)]
pub(super) fn changes_without_prefilter(records: &[NightRecord], rules: &CompareRules) -> Vec<(String, Vec<String>, bool)> {
    let with = trends(records, rules, usize::MAX);
    with.iter()
        .map(|t| {
            let entries: Vec<Entry<'_>> = records
                .iter()
                .filter(|r| r.testbed == t.testbed)
                .filter_map(|r| {
                    let s = r.suites.get(&t.suite)?;
                    let e = s.endpoints.get(&t.endpoint)?;
                    let point = NightPoint {
                        sha: r.sha.clone(),
                        date: r.date.clone(),
                        valid: s.valid,
                        requests: e.requests,
                        errors: e.errors,
                        rps: e.rps,
                        duration_s: s.duration_s,
                        p50: e.p50,
                        p95: e.p95,
                        p99: e.p99,
                    };
                    Some(Entry { point, suite_hash: s.suite_hash.as_deref(), record: e })
                })
                .collect();
            let a = detect(&t.suite, &t.endpoint, &entries, rules, false);
            let b = detect(&t.suite, &t.endpoint, &entries, rules, true);
            (t.endpoint.clone(), a.changes.iter().map(|c| c.sha.clone()).collect(), a == b)
        })
        .collect()
}
