//! The trends in the terminal: one row per endpoint with its p95 over the nights as a
//! sparkline, then the change points with their commits, and one line to end on.

use comfy_table::{Cell, CellAlignment, Color};

use crate::render::TerminalOptions;
use crate::render::format::{ms, short};
use crate::render::table::terminal_table;

use super::trend::{Direction, Trend};

/// At most this many nights in a sparkline (the newest).
const SPARK_NIGHTS: usize = 30;

/// `▁▂▅█`: values scaled between their smallest and largest; a flat series is a flat line.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                BARS[3]
            } else {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

fn day(date: &str) -> &str {
    date.get(..10).unwrap_or(date)
}

/// Renders the trends; `commit_url` (with `{sha}`) turns commits into links.
pub fn terminal(trends: &[Trend], commit_url: Option<&str>, opts: TerminalOptions) -> String {
    if trends.is_empty() {
        return "History: no nights recorded yet.\n".to_string();
    }
    let mut out = trends_table(trends, opts);
    out.push('\n');
    let (regressions, improvements) = change_lines(&mut out, trends, commit_url);
    out.push_str(&closing_line(trends, regressions, improvements));
    out
}

/// The table: one row per trend, with the testbed only when the trends span several.
fn trends_table(trends: &[Trend], opts: TerminalOptions) -> String {
    let mut t = terminal_table(opts.color, opts.width);
    let several_testbeds = trends.windows(2).any(|w| w[0].testbed != w[1].testbed);
    let mut header = vec!["Suite", "Endpoint", "Nights", "p95 ms first", "p95 ms last", "p95 per night", "Changes"];
    if several_testbeds {
        header.insert(0, "Testbed");
    }
    t.set_header(header);
    for tr in trends {
        let p95 = tr.p95_series();
        let spark = sparkline(&p95[p95.len().saturating_sub(SPARK_NIGHTS)..]);
        let num = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        let mut row = vec![
            Cell::new(&tr.suite),
            Cell::new(&tr.endpoint),
            num(tr.nights.len().to_string()),
            num(p95.first().map(|v| ms(*v)).unwrap_or_else(|| "-".into())),
            num(p95.last().map(|v| ms(*v)).unwrap_or_else(|| "-".into())),
            Cell::new(spark),
            changes_cell(tr, opts.color),
        ];
        if several_testbeds {
            row.insert(0, Cell::new(&tr.testbed));
        }
        t.add_row(row);
    }
    t.to_string()
}

/// A trend's change points and pending change, one a line; red when one is a regression,
/// green when all are improvements (with `color`).
fn changes_cell(tr: &Trend, color: bool) -> Cell {
    let changes: Vec<String> = tr
        .changes
        .iter()
        .map(|c| format!("{} {} {}", c.direction.as_str(), day(&c.date), short(&c.sha)))
        .chain(tr.pending.iter().map(|p| format!("pending {} {}", p.direction.as_str(), day(&p.date))))
        .collect();
    let cell = Cell::new(if changes.is_empty() { "-".to_string() } else { changes.join("\n") });
    if !color {
        cell
    } else if tr.regressions().next().is_some() {
        cell.fg(Color::Red)
    } else if !tr.changes.is_empty() {
        cell.fg(Color::Green)
    } else {
        cell
    }
}

/// Appends a line per change point and per change awaiting confirmation; returns how many
/// regressions and improvements there were.
fn change_lines(out: &mut String, trends: &[Trend], commit_url: Option<&str>) -> (usize, usize) {
    let link = |sha: &str| match commit_url {
        Some(u) => u.replace("{sha}", sha),
        None => short(sha).to_string(),
    };
    let mut regressions = 0;
    let mut improvements = 0;
    for tr in trends {
        for c in &tr.changes {
            match c.direction {
                Direction::Regression => regressions += 1,
                Direction::Improvement => improvements += 1,
            }
            out.push_str(&format!(
                "{} {}/{} on {} at commit {}: {}\n",
                if c.direction == Direction::Regression { "Regression:" } else { "Improvement:" },
                tr.suite,
                tr.endpoint,
                day(&c.date),
                link(&c.sha),
                c.describe()
            ));
        }
        if let Some(p) = &tr.pending {
            let what: Vec<String> = p.moves.iter().map(|m| m.describe()).collect();
            out.push_str(&format!(
                "Awaiting confirmation: {}/{} on {} at commit {}, a possible {} ({}); {} more night{} to confirm.\n",
                tr.suite,
                tr.endpoint,
                day(&p.date),
                link(&p.sha),
                p.direction.as_str(),
                what.join("; "),
                p.nights_needed,
                if p.nights_needed == 1 { "" } else { "s" }
            ));
        }
    }
    (regressions, improvements)
}

/// The line to end on: how many nights, over which days, and what changed.
fn closing_line(trends: &[Trend], regressions: usize, improvements: usize) -> String {
    let days: Vec<&str> = trends.iter().flat_map(|t| t.nights.iter().map(|n| day(&n.date))).collect();
    let nights = trends.iter().map(|t| t.nights.len()).max().unwrap_or(0);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "History: {nights} night{} from {} to {}, {} endpoint{}: {regressions} regression{}, {improvements} improvement{}.\n",
        plural(nights),
        days.iter().min().copied().unwrap_or("-"),
        days.iter().max().copied().unwrap_or("-"),
        trends.len(),
        plural(trends.len()),
        plural(regressions),
        plural(improvements)
    )
}
