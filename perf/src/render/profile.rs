//! "Where the app's CPU went": the app's profiles compared ([`crate::compare::profile`]) as a
//! table for Markdown and HTML and a few lines for the terminal, and the differential flame
//! graph (`inferno::flamegraph`: red grew, blue shrank) that the run writes beside the report
//! as `<suite>.profile-diff.svg`. Shown for a regressed suite always (without a profile, one
//! line says why and how to get one), and for any compared suite whose CPU per request as
//! the profiler saw it moved by more than [`profile::TOTAL_MOVED`] and beyond sampling noise.
//! Only functions whose change is beyond sampling noise are listed.

use crate::compare::profile::{self, ProfileChange, ProfileComparison};
use crate::verdict::{Report, SuiteReport};

use super::table::{Align, Table, Text};

use Align::{Left as L, Right as R};

/// The title of the section.
pub(super) const TITLE: &str = "where the app spent its CPU";
/// Functions shown.
const SHOWN: usize = 5;
/// What makes a profile possible where there was none.
const HOW_TO_ENABLE: &str = "to profile the app, install perf (Debian: linux-perf; Ubuntu: linux-tools-generic) and run the gate as root or after `sudo sysctl kernel.perf_event_paranoid=1`; the app needs symbols (see the README's CPU profile paragraph)";

/// The comparison of one suite's profiles, when there is a baseline and something to say.
pub(super) fn of(s: &SuiteReport) -> Option<ProfileComparison> {
    let base = s.baseline_summary.as_ref()?;
    let c = profile::profiles(base, &s.summary)?;
    let regressed = s.comparison.as_ref().is_some_and(|c| c.has_regression());
    let moved = matches!(&c, ProfileComparison::Compared(p) if p.moved());
    (regressed || moved).then_some(c)
}

/// The file the differential flame graph of `suite` is written to, beside the report.
pub fn flame_graph_file(suite: &str) -> String {
    format!("{suite}.profile-diff.svg")
}

/// Every suite's differential flame graph (file name, SVG) for the suites whose section is
/// shown with a profile on both sides.
pub fn flame_graphs(report: &Report) -> Vec<(String, Vec<u8>)> {
    report
        .suites
        .iter()
        .filter(|s| matches!(of(s), Some(ProfileComparison::Compared(_))))
        .filter_map(|s| Some((flame_graph_file(&s.summary.suite), flame_graph(s)?)))
        .collect()
}

/// The differential flame graph of one suite: the run's stacks, coloured by their change
/// since the baseline per request.
fn flame_graph(s: &SuiteReport) -> Option<Vec<u8>> {
    let base = s.baseline_summary.as_ref()?;
    let folded = profile::differential_folded(base.profile.as_ref(), s.summary.profile.as_ref())?;
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!("{}: the app's CPU, this run against the baseline", s.summary.suite);
    opts.subtitle = Some("red: grew, blue: shrank, per request; widths: this run".into());
    opts.count_name = format!("samples per {} requests", profile::FLAME_PER as u64);
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, folded.lines(), &mut out).ok()?;
    Some(out)
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn signed(v: f64) -> String {
    if v >= 0.0 { format!("+{}", num(v)) } else { num(v) }
}

fn rel(base: f64, head: f64) -> String {
    if base > 0.0 { format!("{:+.0}%", (head - base) / base * 100.0) } else { "new".into() }
}

/// `12.3 → 45.6 ms CPU per 1000 requests (+270%)`.
fn total(p: &ProfileChange) -> String {
    format!(
        "{} → {} ms CPU per 1000 requests ({}; {} → {} samples per 1000 requests at {} Hz)",
        num(p.cpu_ms(p.base_per_1k)),
        num(p.cpu_ms(p.head_per_1k)),
        rel(p.base_per_1k, p.head_per_1k),
        num(p.base_per_1k),
        num(p.head_per_1k),
        p.hz
    )
}

fn why_missing(why: &str) -> String {
    format!("No CPU profile to compare: {why}. To get one, {HOW_TO_ENABLE}.")
}

/// The Markdown and HTML table (with the flame graph's file named in its note).
pub(super) fn table(c: &ProfileComparison, suite: &str) -> Table {
    let mut t = Table::new(&[("Function (self time)", L), ("Baseline", R), ("This run", R), ("Change", R)]);
    match c {
        ProfileComparison::Missing(why) => {
            t.row(vec![why_missing(why).into(), "".into(), "".into(), "".into()]);
        }
        ProfileComparison::Compared(p) => {
            for f in p.functions.iter().take(SHOWN) {
                let cell = |v: f64| format!("{} ms/1k req", num(p.cpu_ms(v)));
                let change = format!("{} ms/1k req ({})", signed(p.cpu_ms(f.delta())), rel(f.base, f.head));
                t.row(vec![f.function.clone().into(), cell(f.base).into(), cell(f.head).into(), Text::strong(change)]);
            }
            let mut note = format!(
                "The app's CPU as perf sampled it over the measured requests: {}. Functions by the change of their self time (samples whose stack ends in them) per 1000 requests, largest first. Differential flame graph: {} (red: grew, blue: shrank).",
                total(p),
                flame_graph_file(suite)
            );
            if p.functions.is_empty() {
                note.push_str(" No function's self time changed beyond what sampling alone could make.");
            }
            for n in &p.notes {
                note.push_str(&format!(" Note: {n}."));
            }
            t.note = Some(note);
        }
    }
    t
}

/// The terminal's lines (indented, under the suite's table).
pub(super) fn lines(c: &ProfileComparison, suite: &str) -> Vec<String> {
    match c {
        ProfileComparison::Missing(why) => vec![format!("  where the app spent its CPU: {}", why_missing(why))],
        ProfileComparison::Compared(p) => {
            let mut out = vec![format!("  where the app spent its CPU: {}", total(p))];
            for (i, f) in p.functions.iter().take(SHOWN).enumerate() {
                out.push(format!(
                    "    {}. {}: {} → {} ms/1k req ({} ms, {})",
                    i + 1,
                    f.function,
                    num(p.cpu_ms(f.base)),
                    num(p.cpu_ms(f.head)),
                    signed(p.cpu_ms(f.delta())),
                    rel(f.base, f.head)
                ));
            }
            out.push(format!("    differential flame graph: {}", flame_graph_file(suite)));
            out.extend(p.notes.iter().map(|n| format!("    {n}")));
            out
        }
    }
}
