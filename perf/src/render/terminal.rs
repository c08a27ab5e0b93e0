//! The terminal report: one compact table per suite, SLO failures, and the headline last (the
//! line a person sees when the command ends).

use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table, presets};

use crate::compare::{EndpointComparison, Metric, SuiteComparison, Verdict};
use crate::summary::EndpointSummary;

use super::format;
use crate::verdict::{Headline, Outcome, Report};

/// How the terminal is: the caller knows, the renderer does not ask.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalOptions {
    /// Colour the verdicts (only when stdout is a terminal and NO_COLOR is unset).
    pub color: bool,
    /// Wrap tables to this many columns; `None` leaves them at their natural width.
    pub width: Option<u16>,
}

fn verdict_color(v: Verdict) -> Option<Color> {
    match v {
        Verdict::Regressed => Some(Color::Red),
        Verdict::Improved => Some(Color::Green),
        Verdict::Noisy | Verdict::Missing => Some(Color::Yellow),
        Verdict::New | Verdict::Unchanged => None,
    }
}

fn verdict_cell(v: Verdict, opts: TerminalOptions) -> Cell {
    let cell = Cell::new(v.as_str());
    match verdict_color(v).filter(|_| opts.color) {
        Some(c) => cell.fg(c),
        None => cell,
    }
}

fn new_table(opts: TerminalOptions) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    if opts.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    if let Some(w) = opts.width {
        t.set_width(w).set_content_arrangement(ContentArrangement::Dynamic);
    }
    t
}

/// `5.30 (+29.3% ±4.1%)` with a comparison (the change and its interval's half-width),
/// `5.30` without.
fn metric_cell(value: String, cmp: Option<&EndpointComparison>, metric: Metric) -> Cell {
    let text = match cmp.and_then(|c| c.metric(metric)).filter(|m| m.delta_abs.is_some()) {
        Some(m) => match m.noise_short() {
            Some(noise) => format!("{value} ({} {noise})", m.delta_short()),
            None => format!("{value} ({})", m.delta_short()),
        },
        None => value,
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

fn suite_table(ep_rows: &[(&str, Option<&EndpointSummary>, Option<&EndpointComparison>)], compared: bool, opts: TerminalOptions) -> Table {
    let mut t = new_table(opts);
    let mut header = vec!["Endpoint", "Requests", "rps", "p50 ms", "p95 ms", "p99 ms", "Errors"];
    if compared {
        header.push("Verdict");
    }
    t.set_header(header);
    for (name, ep, cmp) in ep_rows {
        let (req, rps, p50, p95, p99, err) = match ep {
            Some(e) => (
                e.requests.to_string(),
                format::rps(e.rps),
                format::opt_ms(e.latency_ms.p50),
                format::opt_ms(e.latency_ms.p95),
                format::opt_ms(e.latency_ms.p99),
                format::pct(e.error_rate() * 100.0),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        let mut row = vec![
            Cell::new(name),
            Cell::new(req).set_alignment(CellAlignment::Right),
            metric_cell(rps, *cmp, Metric::Rps),
            metric_cell(p50, *cmp, Metric::P50),
            metric_cell(p95, *cmp, Metric::P95),
            metric_cell(p99, *cmp, Metric::P99),
            metric_cell(err, *cmp, Metric::ErrorRate),
        ];
        if compared {
            row.push(cmp.map(|c| verdict_cell(c.verdict, opts)).unwrap_or_else(|| Cell::new("-")));
        }
        t.add_row(row);
    }
    t
}

/// Endpoint rows in name order: every current endpoint, then the missing ones.
fn rows<'a>(
    summary: &'a crate::summary::Summary,
    cmp: Option<&'a SuiteComparison>,
) -> Vec<(&'a str, Option<&'a EndpointSummary>, Option<&'a EndpointComparison>)> {
    let mut names: Vec<&str> = summary.endpoints.keys().map(String::as_str).collect();
    if let Some(c) = cmp {
        names.extend(c.endpoints.iter().map(|e| e.name.as_str()).filter(|n| !summary.endpoints.contains_key(*n)));
    }
    names.sort_unstable();
    // What moved most first: the regressions by effect size, then the rest by name.
    if let Some(c) = cmp {
        let regressed: Vec<&str> = c.regressions_by_effect().into_iter().map(|e| e.name.as_str()).collect();
        names.retain(|n| !regressed.contains(n));
        names.splice(0..0, regressed);
    }
    names.into_iter().map(|n| (n, summary.endpoints.get(n), cmp.and_then(|c| c.endpoint(n)))).collect()
}

/// Renders the terminal report.
pub fn terminal(report: &Report, opts: TerminalOptions) -> String {
    let mut out = String::new();
    for s in &report.suites {
        let sum = &s.summary;
        let cmp = s.comparison.as_ref();
        let validity = if sum.valid { String::new() } else { " [INVALID RUN]".to_string() };
        let verdict = cmp.map(|c| format!(": {}", c.verdict)).unwrap_or_default();
        out.push_str(&format!("Suite {} ({}){verdict}{validity}\n", sum.suite, s.baseline));
        out.push_str(&suite_table(&rows(sum, cmp), cmp.is_some(), opts).to_string());
        out.push('\n');
        for r in &sum.invalid_reasons {
            out.push_str(&format!("  invalid: {r}\n"));
        }
        for slo in sum.slo.iter().filter(|x| !x.passed) {
            out.push_str(&format!("  SLO failed: {} {}\n", slo.endpoint, format::slo_sentence(slo)));
        }
        // Special suites are judged by their checks: show each, failed or passed.
        for c in &sum.checks {
            out.push_str(&format!("  check {}: {}: {}\n", if c.passed { "passed" } else { "failed" }, c.name, c.detail));
        }
        for line in super::sections::capacity(sum).unwrap_or_default() {
            out.push_str(&format!("  capacity: {line}\n"));
        }
        for line in cmp.and_then(super::sections::could_see).into_iter().chain(super::sections::stored_opinion(s)) {
            out.push_str(&wrap(&line, opts.width));
        }
        for n in cmp.map(|c| c.notes.as_slice()).unwrap_or_default() {
            out.push_str(&format!("  note: {n}\n"));
        }
        if let Some(u) = super::underneath::of(s) {
            for line in super::underneath::lines(&u, opts.width) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        if let Some(c) = super::profile::of(s) {
            for line in super::profile::lines(&c, &sum.suite) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    let h = Headline::of(report);
    let word = h.words().to_uppercase();
    let word = match (opts.color, h.outcome) {
        (false, _) => word,
        (true, Outcome::Pass) => format!("\x1b[32m{word}\x1b[0m"),
        (true, _) => format!("\x1b[31m{word}\x1b[0m"),
    };
    out.push_str(&format!("Verdict: {word}. {}\n", h.sentences().join(" ")));
    out
}

/// `line` indented by two spaces and, on a terminal of `width` columns, wrapped at spaces.
fn wrap(line: &str, width: Option<u16>) -> String {
    let width = width.map_or(usize::MAX, |w| usize::from(w).max(20));
    let mut out = String::from(" ");
    let mut col = 1;
    for word in line.split(' ') {
        if col + 1 + word.chars().count() > width && col > 2 {
            out.push_str("\n   ");
            col = 3;
        }
        out.push(' ');
        out.push_str(word);
        col += 1 + word.chars().count();
    }
    out.push('\n');
    out
}
