//! The content of a report, independent of its format: per-suite tables, the sentence about
//! the baseline, and the folded detail sections with their priorities.

use std::collections::BTreeMap;

use crate::compare::{CompareMode, EndpointComparison, Metric, SuiteComparison, Verdict, fmt_p};
use crate::summary::Summary;

use super::format;
use super::table::{Align, Table, Text};
use crate::verdict::{BaselineSource, Confirmation, SuiteReport};

use Align::{Left as L, Right as R};

fn verdict(v: Verdict) -> Text {
    match v {
        Verdict::Regressed | Verdict::Missing => Text::strong(v.as_str()),
        _ => v.as_str().into(),
    }
}

/// One row per suite: what it was compared with, its verdict, its SLOs, its validity.
pub(super) fn overview(report: &crate::verdict::Report) -> Table {
    let mut t = Table::new(&[("Suite", L), ("Compared with", L), ("Endpoints", R), ("Verdict", L), ("SLOs", L), ("Run", L)]);
    for s in &report.suites {
        let sum = &s.summary;
        let failed = sum.slo.iter().filter(|x| !x.passed).count();
        let slos: Text = match (sum.slo.len(), failed) {
            (0, _) => "-".into(),
            (n, 0) => format!("{n} hold").into(),
            (n, f) => Text::strong(format!("{f} of {n} failed")),
        };
        let verdict: Text = match &s.comparison {
            Some(c) if c.verdict >= Verdict::Missing => Text::strong(c.verdict.as_str()),
            Some(c) => c.verdict.as_str().into(),
            None => "-".into(),
        };
        t.row(vec![
            sum.suite.clone().into(),
            s.baseline.to_string().into(),
            sum.endpoints.len().to_string().into(),
            verdict,
            slos,
            if sum.valid { "valid".into() } else { Text::strong("invalid") },
        ]);
    }
    t
}

/// The suite's main table: per endpoint and metric against the baseline, or plain values when
/// there is none. `compact` keeps only the endpoints that need attention.
pub(super) fn main_table(s: &SuiteReport, compact: bool) -> Table {
    match &s.comparison {
        Some(c) if c.mode != CompareMode::NoBaseline => comparison_table(c, compact),
        _ => plain_table(&s.summary, compact),
    }
}

fn comparison_table(c: &SuiteComparison, compact: bool) -> Table {
    let level = c.endpoints.iter().flat_map(|e| &e.metrics).find_map(|m| m.level).unwrap_or(0.95);
    let mut t = Table::new(&[
        ("Endpoint", L),
        ("Metric", L),
        ("Baseline", R),
        ("Current", R),
        ("Delta", R),
        ("Interval", R),
        ("Could see", R),
        ("Verdict", L),
    ]);
    // What moved most first: the regressions by effect size, then the rest by name.
    let regressed = c.regressions_by_effect();
    let rest = c.endpoints.iter().filter(|e| e.verdict != Verdict::Regressed && (!compact || e.verdict >= Verdict::Noisy));
    let shown: Vec<&EndpointComparison> = regressed.into_iter().chain(rest).collect();
    for e in &shown {
        for (i, m) in e.metrics.iter().enumerate() {
            t.row(vec![
                if i == 0 { e.name.clone().into() } else { Text::default() },
                m.metric.as_str().into(),
                format::value(m.metric, m.base).into(),
                format::value(m.metric, m.head).into(),
                m.delta_short().into(),
                m.interval_short().unwrap_or_else(|| "-".into()).into(),
                m.detectable_short().unwrap_or_else(|| "-".into()).into(),
                verdict(m.verdict),
            ]);
        }
    }
    let hidden = c.endpoints.len() - shown.len();
    let mut note = format!(
        "Interval: where the change lies, with {:.0}% confidence. Could see: the smallest change this comparison would have caught 4 times in 5.",
        level * 100.0
    );
    if hidden > 0 {
        note.push_str(&format!(" {hidden} more endpoint{} unchanged, improved or new.", plural(hidden)));
    }
    t.note = Some(note);
    t
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn plain_table(sum: &Summary, compact: bool) -> Table {
    let mut t = Table::new(&[("Endpoint", L), ("Requests", R), ("rps", R), ("p50", R), ("p95", R), ("p99", R), ("Errors", R)]);
    let failing = |name: &str| sum.slo.iter().any(|x| !x.passed && x.endpoint == name);
    let mut hidden = 0;
    for (name, e) in &sum.endpoints {
        if compact && !failing(name) && e.requests > 0 {
            hidden += 1;
            continue;
        }
        t.row(vec![
            name.clone().into(),
            e.requests.to_string().into(),
            format::rps(e.rps).into(),
            format::value(Metric::P50, e.latency_ms.p50).into(),
            format::value(Metric::P95, e.latency_ms.p95).into(),
            format::value(Metric::P99, e.latency_ms.p99).into(),
            format::pct(e.error_rate() * 100.0).into(),
        ]);
    }
    if hidden > 0 {
        t.note = Some(format!("{hidden} more endpoint{} within their SLOs.", plural(hidden)));
    }
    t
}

/// Where the baseline came from, when it was recorded, and what a re-run said. Raw text.
pub(super) fn source_sentence(s: &SuiteReport) -> String {
    let mut line = format!("Compared with: {}", s.baseline);
    if let Some(CompareMode::AB { pairs }) = s.comparison.as_ref().map(|c| &c.mode) {
        line.push_str(&format!(", {pairs} pairs of segments, each pair in a random order"));
    }
    if let (Some(b), BaselineSource::Committed { .. } | BaselineSource::Artifact { .. }) = (&s.baseline_summary, &s.baseline) {
        if let Some(sha) = &b.run.git.sha {
            line.push_str(&format!(", recorded at {}", format::short(sha)));
        }
        line.push_str(&format!(" on {}", b.run.started_at));
    }
    line.push('.');
    match &s.confirmation {
        Confirmation::Confirmed => line.push_str(" The regression was confirmed by a re-run."),
        Confirmation::NotConfirmed { first_run } => {
            line.push_str(&format!(" The first run regressed on {}; a re-run did not, so it is not counted.", first_run.join(", ")))
        }
        Confirmation::NotRun => {}
    }
    line
}

/// Failed SLOs, or `None` when all hold (or there are none).
pub(super) fn slo_failures(sum: &Summary) -> Option<Table> {
    let mut t = Table::new(&[("Endpoint", L), ("SLO", L), ("Limit", R), ("Actual", R), ("Reason", L)]);
    for s in sum.slo.iter().filter(|x| !x.passed) {
        t.row(vec![
            s.endpoint.clone().into(),
            s.metric.clone().into(),
            format::slo_value(&s.metric, s.threshold).into(),
            s.actual.map(|a| format::slo_value(&s.metric, a)).unwrap_or_else(|| "no data".into()).into(),
            s.reason.clone().unwrap_or_default().into(),
        ]);
    }
    (!t.is_empty()).then_some(t)
}

/// The sentence above the SLO table: `SLOs: all 8 hold.` / `SLOs: 2 of 8 failed.`
pub(super) fn slo_sentence(sum: &Summary) -> Option<(String, bool)> {
    if sum.slo.is_empty() {
        return None;
    }
    let failed = sum.slo.iter().filter(|x| !x.passed).count();
    Some(if failed == 0 {
        (format!("SLOs: all {} hold.", sum.slo.len()), false)
    } else {
        (format!("SLOs: {failed} of {} failed.", sum.slo.len()), true)
    })
}

/// Special suites' checks, all of them (they are few and each one matters).
pub(super) fn checks(sum: &Summary) -> Option<(String, bool, Table)> {
    if sum.checks.is_empty() {
        return None;
    }
    let failed = sum.checks.iter().filter(|c| !c.passed).count();
    let sentence = if failed == 0 {
        format!("Checks: all {} passed.", sum.checks.len())
    } else {
        format!("Checks: {failed} of {} failed.", sum.checks.len())
    };
    let mut t = Table::new(&[("Check", L), ("Result", L), ("Detail", L)]);
    for c in &sum.checks {
        t.row(vec![c.name.clone().into(), if c.passed { "passed".into() } else { Text::strong("failed") }, c.detail.clone().into()]);
    }
    Some((sentence, failed > 0, t))
}

/// A figure's JSON value as text: numbers and strings bare, anything else compact JSON.
pub(super) fn figure(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Figures shown in a section of their own, left out of the plain list of figures.
pub(super) const OWN_SECTION_FIGURES: &[&str] = &["capacity"];

/// A stress suite's capacity planning (`figures.capacity`), one sentence per line: the
/// highest rate one instance held and what ended the search, the app's CPU per request there,
/// what saturated first, and the instances for the plan's target.
pub(super) fn capacity(sum: &Summary) -> Option<Vec<String>> {
    let c = sum.figures.get("capacity")?.as_object()?;
    let f = |k: &str| c.get(k).and_then(serde_json::Value::as_f64);
    let held = f("held_rps")?;
    let ended = match c.get("search_end").and_then(|v| v.as_str()).unwrap_or("") {
        "service_broke" => "the service broke",
        "max_rate" => "the plan's max_rate was reached",
        "generator_limit" => "the load generator's limit (not the service's)",
        "step_limit" => "the extra-step budget was spent, every step held",
        "not_searched" => "no step past the planned ones was run",
        _ => "nothing was measured",
    };
    let measured = f("achieved_rps").map(|a| format!(" ({a:.0}/s measured)")).unwrap_or_default();
    let mut out = vec![format!("Highest rate one instance held within its SLOs: {held}/s{measured}; the search ended because {ended}.")];
    let cores = |k: &str| f(k).map_or("?".to_string(), |x| format!("{x:.2}"));
    out.push(match f("app_cpu_ms_per_request") {
        Some(ms) => format!(
            "App CPU per request at {held}/s: {ms:.3} ms (app {} cores, PostgreSQL {} cores).",
            cores("app_cores"),
            cores("postgres_cores")
        ),
        None => format!("App CPU per request at {held}/s: not measured (no CPU samples within the step)."),
    });
    let what = match c.get("saturated_first").and_then(|v| v.as_str()).unwrap_or("") {
        "app_cpu" => "app CPU",
        "postgres_cpu" => "PostgreSQL CPU",
        "errors" => "errors (no CPU saturated)",
        "latency" => "latency (no CPU of the app or PostgreSQL saturated)",
        "generator" => "the load generator, before the service",
        _ => "nothing",
    };
    let detail = c.get("saturated_detail").and_then(|v| v.as_str()).unwrap_or("");
    out.push(format!("Saturated first: {what}{}.", if detail.is_empty() { String::new() } else { format!(" ({detail})") }));
    if let (Some(target), Some(headroom)) = (f("target_rps"), f("headroom")) {
        let per = held * (1.0 - headroom);
        out.push(match c.get("instances").and_then(|v| v.as_u64()) {
            Some(n) => format!(
                "For {target}/s with {:.0}% headroom: {n} instance{} (each planned at {per:.0}/s).",
                headroom * 100.0,
                if n == 1 { "" } else { "s" }
            ),
            None => format!("For {target}/s: no instance count (nothing was held)."),
        });
    }
    Some(out)
}

/// Chaos timeline: what was done and when.
pub(super) fn events(sum: &Summary) -> Option<Table> {
    let mut t = Table::new(&[("#", R), ("At (s)", R), ("Event", L)]);
    for (i, e) in sum.events.iter().enumerate() {
        t.row(vec![(i + 1).to_string().into(), format!("{:.1}", e.t).into(), e.what.clone().into()]);
    }
    (!t.is_empty()).then_some(t)
}

/// The title of the section that says what changed in the databases and the app's resources.
pub(super) const UNDERNEATH: &str = "what changed underneath";

/// A folded section.
pub(super) struct Detail {
    /// Lower is kept first when space runs out.
    pub priority: u8,
    pub suite: String,
    pub title: &'static str,
    pub table: Table,
}

/// Every folded section of every suite, in display order.
pub(super) fn details(suites: &[SuiteReport]) -> Vec<Detail> {
    let mut out = Vec::new();
    for s in suites {
        let sum = &s.summary;
        let mut add = |priority: u8, title: &'static str, table: Option<Table>| {
            if let Some(table) = table.filter(|t| !t.is_empty()) {
                out.push(Detail { priority, suite: sum.suite.clone(), title, table });
            }
        };
        add(0, UNDERNEATH, super::underneath::of(s).map(|u| super::underneath::table(&u)));
        add(0, super::profile::TITLE, super::profile::of(s).map(|c| super::profile::table(&c, &sum.suite)));
        add(0, "tests and p-values", s.comparison.as_ref().map(tests));
        add(1, "all metrics", Some(metrics(sum)));
        add(2, "all SLOs", slos(sum));
        add(3, "errors", errors(sum));
        add(4, "scenarios", scenarios(sum));
        add(5, "resources", resources(sum));
        add(6, "event timeline", events(sum));
        add(7, "app metrics", app_metrics(sum));
    }
    out
}

fn tests(c: &SuiteComparison) -> Table {
    let mut t = Table::new(&[
        ("Endpoint", L),
        ("Metric", L),
        ("Delta", R),
        ("Threshold", R),
        ("Test", L),
        ("Units base/head", R),
        ("Interval", R),
        ("p-value", R),
        ("Verdict", L),
        ("Reason", L),
    ]);
    for e in &c.endpoints {
        for m in &e.metrics {
            let (test, n, p) = match &m.test {
                Some(x) => (x.method.to_string(), format!("{}/{}", x.n_base, x.n_head), fmt_p(x.p_value)),
                None if m.delta_abs.is_some() => ("untested".to_string(), "-".into(), "-".into()),
                None => ("-".to_string(), "-".into(), "-".into()),
            };
            let threshold = match m.delta_abs {
                Some(_) if m.overridden => format!("{} (override)", format::threshold(m)),
                Some(_) => format::threshold(m),
                None => "-".into(),
            };
            t.row(vec![
                e.name.clone().into(),
                m.metric.as_str().into(),
                m.delta_short().into(),
                threshold.into(),
                test.into(),
                n.into(),
                m.interval_short().unwrap_or_else(|| "-".into()).into(),
                p.into(),
                verdict(m.verdict),
                m.reason.clone().into(),
            ]);
        }
    }
    let r = &c.rules;
    let floor = match r.floor_ms {
        Some(f) => format!("{} ms", format::ms(f)),
        None => "the testbed's measured noise where recorded".to_string(),
    };
    t.note = Some(format!(
        "Rule: threshold {:.0}%, floor {floor}, error rate {:.2} points, at least {} samples. A change counts when it is beyond the threshold and its {:.0}% interval (from the segments resampled) leaves out every change up to {:.0}% of the threshold. p-values are one-sided, in the direction of the change.",
        r.threshold * 100.0,
        r.error_rate_points,
        r.min_samples,
        (1.0 - r.alpha) * 100.0,
        crate::compare::MARGIN * 100.0,
    ));
    t
}

/// The smallest change each percentile could have shown, four times in five, across the
/// endpoints: what a pass is worth. `None` when nothing was resampled.
pub(super) fn could_see(c: &SuiteComparison) -> Option<String> {
    let mut parts = Vec::new();
    for metric in [Metric::P50, Metric::P95, Metric::P99] {
        let sizes: Vec<(&str, f64)> = c.endpoints.iter().filter_map(|e| Some((e.name.as_str(), e.metric(metric)?.detectable?))).collect();
        if sizes.is_empty() {
            continue;
        }
        let lo = sizes.iter().map(|(_, d)| *d).fold(f64::INFINITY, f64::min);
        let (worst, hi) = sizes.iter().copied().fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let range = if (hi - lo) * 100.0 < 1.0 {
            format!("{:.0}%", lo * 100.0)
        } else {
            format!("{:.0}–{:.0}% ({worst})", lo * 100.0, hi * 100.0)
        };
        parts.push(format!("{metric} {range}"));
    }
    let unbounded: Vec<&str> = c
        .endpoints
        .iter()
        .filter(|e| e.metrics.iter().any(|m| m.metric.is_latency() && m.delta_abs.is_some() && m.interval.is_none()))
        .map(|e| e.name.as_str())
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut line = format!("smallest change it could see (4 times in 5): {}", parts.join(", "));
    if !unbounded.is_empty() {
        line.push_str(&format!("; some percentiles untested (too few requests): {}", unbounded.join(", ")));
    }
    Some(line)
}

/// In A/B mode, what the stored baseline of this testbed says of the head: a second opinion,
/// never the verdict.
pub(super) fn stored_opinion(s: &SuiteReport) -> Option<String> {
    let o = s.stored.as_ref()?;
    let c = &o.comparison;
    let moved: Vec<String> = c
        .regressions_by_effect()
        .into_iter()
        .filter_map(|e| e.biggest_regression().map(|m| format!("{} {} {}", e.name, m.metric, m.delta_short())))
        .collect();
    let said = if moved.is_empty() { format!("{}", c.verdict) } else { format!("slower on {}", moved.join(", ")) };
    Some(format!("against the stored baseline of this testbed ({}): {said} (a second opinion, not the verdict)", o.path))
}

fn metrics(sum: &Summary) -> Table {
    let mut t = Table::new(&[
        ("Endpoint", L),
        ("Requests", R),
        ("Errors", R),
        ("rps", R),
        ("p50", R),
        ("p90", R),
        ("p95", R),
        ("p99", R),
        ("p99.9", R),
        ("max", R),
        ("mean", R),
        ("service p50", R),
        ("service p99", R),
        ("received", R),
    ]);
    for (name, e) in &sum.endpoints {
        let l = &e.latency_ms;
        t.row(vec![
            name.clone().into(),
            e.requests.to_string().into(),
            e.errors.total.to_string().into(),
            format::rps(e.rps).into(),
            format::opt_ms(l.p50).into(),
            format::opt_ms(l.p90).into(),
            format::opt_ms(l.p95).into(),
            format::opt_ms(l.p99).into(),
            format::opt_ms(l.p999).into(),
            format::opt_ms(l.max).into(),
            format::opt_ms(l.mean).into(),
            format::opt_ms(e.service_ms.p50).into(),
            format::opt_ms(e.service_ms.p99).into(),
            format::bytes(e.bytes_received).into(),
        ]);
    }
    t.note = Some(
        "Latency in ms from the scheduled start (open model) or the actual start (closed model); service time from the actual start."
            .to_string(),
    );
    t
}

fn slos(sum: &Summary) -> Option<Table> {
    let mut t = Table::new(&[("Endpoint", L), ("SLO", L), ("Limit", R), ("Actual", R), ("Result", L)]);
    for s in &sum.slo {
        t.row(vec![
            s.endpoint.clone().into(),
            s.metric.clone().into(),
            format::slo_value(&s.metric, s.threshold).into(),
            s.actual.map(|a| format::slo_value(&s.metric, a)).unwrap_or_else(|| "no data".into()).into(),
            if s.passed { "passed".into() } else { Text::strong("failed") },
        ]);
    }
    Some(t)
}

fn list(m: &BTreeMap<String, u64>) -> String {
    m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

fn errors(sum: &Summary) -> Option<Table> {
    let mut t = Table::new(&[("Endpoint", L), ("Errors", R), ("By kind", L), ("Unexpected statuses", L)]);
    for (name, e) in sum.endpoints.iter().filter(|(_, e)| e.errors.total > 0) {
        t.row(vec![
            name.clone().into(),
            e.errors.total.to_string().into(),
            list(&e.errors.by_kind).into(),
            list(&e.errors.by_status).into(),
        ]);
    }
    Some(t)
}

fn scenarios(sum: &Summary) -> Option<Table> {
    let mut t = Table::new(&[
        ("Scenario", L),
        ("Executor", L),
        ("Iterations", R),
        ("Dropped", R),
        ("Late starts", R),
        ("Interrupted", R),
        ("Max VUs", R),
    ]);
    for (name, s) in &sum.scenarios {
        t.row(vec![
            name.clone().into(),
            s.executor.clone().into(),
            s.iterations.to_string().into(),
            s.dropped_iterations.to_string().into(),
            s.late_starts.to_string().into(),
            s.interrupted_iterations.to_string().into(),
            s.max_vus.to_string().into(),
        ]);
    }
    Some(t)
}

fn resources(sum: &Summary) -> Option<Table> {
    let mut t = Table::new(&[("Service", L), ("CPU seconds", R), ("Peak memory", R), ("Memory, first to last sample", L)]);
    for (name, r) in &sum.resources {
        let series = match (r.memory_series.first(), r.memory_series.last()) {
            (Some(a), Some(b)) => format!("{} to {}", format::bytes(*a), format::bytes(*b)),
            _ => "-".into(),
        };
        t.row(vec![name.clone().into(), format!("{:.2}", r.cpu_seconds).into(), format::bytes(r.peak_memory_bytes).into(), series.into()]);
    }
    Some(t)
}

fn app_metrics(sum: &Summary) -> Option<Table> {
    let m = sum.app_metrics.as_ref()?;
    let mut t = Table::new(&[("Series", L), ("Before", R), ("After", R), ("Change", R)]);
    let mut names: Vec<&String> = m.before.keys().chain(m.after.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let (b, a) = (m.before.get(n), m.after.get(n));
        let change = match (b, a) {
            (Some(b), Some(a)) => format!("{:+}", a - b),
            _ => "-".into(),
        };
        let v = |x: Option<&f64>| x.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        t.row(vec![n.clone().into(), v(b).into(), v(a).into(), change.into()]);
    }
    Some(t)
}
