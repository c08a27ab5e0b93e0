//! The Markdown report: results/report.md, the CI job summary and the PR comment.
//!
//! Written for GitHub's renderer: plain-word verdicts (no emoji), tables with every
//! user-provided name escaped (`|` and HTML included), long material folded in `<details>`.
//! A PR comment holds at most 65536 characters, so the report fits a budget: details go first
//! (least useful first), then the per-suite tables shrink to the endpoints that need
//! attention, and only then is the text cut, with a note saying so.

use super::format::{self, html, md};
use super::sections::{self, Detail};
use super::table::{Align, Table};
use crate::verdict::{Headline, Report, SuiteReport};

/// Markdown rendering settings.
#[derive(Debug, Clone)]
pub struct MarkdownOptions {
    /// Upper bound on the output's length in bytes (so also in characters).
    pub max_chars: usize,
    /// Where the full reports live, named when details are left out (`results/report.html`).
    pub full_report_hint: Option<String>,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        // GitHub rejects comments over 65536 characters; leave room for a marker the caller
        // adds to find its sticky comment again.
        MarkdownOptions { max_chars: 60_000, full_report_hint: None }
    }
}

/// Renders the Markdown report within `opts.max_chars`.
pub fn markdown(report: &Report, opts: &MarkdownOptions) -> String {
    let headline = Headline::of(report);
    let budget = opts.max_chars;
    let tail = tail(report, &headline);
    let mut main = head(report, &headline) + &suites(report, false) + &tail;
    let mut notice = String::new();
    if main.len() > budget.saturating_sub(400) {
        main = head(report, &headline) + &suites(report, true) + &tail;
        notice.push_str("Tables show only the endpoints that need attention. ");
    }
    // Details, most useful first, as long as they fit.
    let details = sections::details(&report.suites);
    let blocks: Vec<String> = details.iter().map(fold).collect();
    let priorities: Vec<u8> = details.iter().map(|d| d.priority).collect();
    let mut room = budget.saturating_sub(main.len() + 600);
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| (priorities[i], i));
    let mut kept = vec![false; blocks.len()];
    for i in order {
        if blocks[i].len() <= room {
            room -= blocks[i].len();
            kept[i] = true;
        }
    }
    let dropped = kept.iter().filter(|k| !**k).count();
    if dropped > 0 {
        let s = if dropped == 1 { " was" } else { "s were" };
        notice.push_str(&format!("{dropped} detail section{s} left out to fit. "));
    }
    let mut out = main;
    if kept.iter().any(|k| *k) {
        out.push_str("\n### Details\n\n");
        for (b, _) in blocks.iter().zip(&kept).filter(|(_, k)| **k) {
            out.push_str(b);
        }
    }
    if !notice.is_empty() {
        if let Some(hint) = &opts.full_report_hint {
            notice.push_str(&format!("The full report is in {hint}."));
        }
        out.push_str(&format!("\n{}\n", md(notice.trim_end())));
    }
    if out.len() > budget {
        out = cut(&out, budget);
    }
    out
}

fn fold(d: &Detail) -> String {
    // The blank lines let GitHub render the Markdown table inside the HTML element.
    format!("<details><summary>{}: {}</summary>\n\n{}\n</details>\n\n", html(&d.suite), html(d.title), d.table.markdown())
}

/// Cuts at a line boundary and says so: the last resort for enormous plans.
fn cut(s: &str, budget: usize) -> String {
    let note = "\n\nThe report was cut to fit the comment limit.\n";
    let mut end = budget.saturating_sub(note.len()).min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let end = s[..end].rfind('\n').unwrap_or(0);
    format!("{}{note}", &s[..end])
}

fn head(report: &Report, h: &Headline) -> String {
    let mut out = format!("## Performance gate: {}\n\n", h.words());
    out.push_str(&format!("**Verdict: {}.** {}\n\n", h.words(), md(&h.sentences().join(" "))));
    out + &sections::overview(report).markdown()
}

fn suites(report: &Report, compact: bool) -> String {
    report.suites.iter().map(|s| suite(s, compact)).collect()
}

fn suite(s: &SuiteReport, compact: bool) -> String {
    let sum = &s.summary;
    let title = match &s.comparison {
        Some(c) => format!("{}: {}", md(&sum.suite), c.verdict),
        None => md(&sum.suite),
    };
    let mut out = format!("\n### {title}\n\n{}\n\n", md(&sections::source_sentence(s)));
    if !sum.valid {
        out.push_str(&format!("**This run is invalid:** {}\n\n", md(&sum.invalid_reasons.join("; "))));
    }
    out.push_str(&sections::main_table(s, compact).markdown());
    for line in s.comparison.as_ref().and_then(sections::could_see).into_iter().chain(sections::stored_opinion(s)) {
        out.push_str(&format!("\n{}\n", md(&capitalize(&line))));
    }
    if let Some(c) = s.comparison.as_ref().filter(|c| !c.notes.is_empty()) {
        out.push_str("\nNotes on this comparison:\n\n");
        for n in &c.notes {
            out.push_str(&format!("- {}\n", md(n)));
        }
    }
    if let Some((sentence, failed)) = sections::slo_sentence(sum) {
        out.push_str(&format!("\n{}\n", strong_if(&sentence, failed)));
        if let Some(t) = sections::slo_failures(sum) {
            out.push('\n');
            out.push_str(&t.markdown());
        }
    }
    if let Some((sentence, failed, t)) = sections::checks(sum) {
        out.push_str(&format!("\n{}\n\n{}", strong_if(&sentence, failed), t.markdown()));
    }
    if let Some(lines) = sections::capacity(sum) {
        out.push_str("\nCapacity:\n\n");
        for l in &lines {
            out.push_str(&format!("- {}\n", md(l)));
        }
    }
    if !sum.figures.is_empty() {
        out.push_str("\nFigures:\n\n");
        for (k, v) in sum.figures.iter().filter(|(k, _)| !sections::OWN_SECTION_FIGURES.contains(&k.as_str())) {
            out.push_str(&format!("- {}: {}\n", md(k), md(&sections::figure(v))));
        }
    }
    out
}

fn strong_if(s: &str, strong: bool) -> String {
    if strong { format!("**{}**", md(s)) } else { md(s) }
}

/// Facts about the run, as label and raw value pairs (shared with the HTML report).
pub(super) fn environment(report: &Report) -> Vec<(String, String)> {
    let f = &report.facts;
    let mut rows = vec![("Backend".to_string(), f.backend.clone())];
    if let Some(t) = &f.testbed {
        rows.push(("Testbed".into(), t.clone()));
    }
    let model = f.host.cpu_model.as_deref().unwrap_or("unknown model");
    rows.push(("Host".into(), format!("{} cpus, {model}, {}", f.host.cpus, f.host.os)));
    rows.push(("Perf gate".into(), f.tool_version.clone()));
    let git = match &f.git_sha {
        Some(sha) => {
            let dirty = if f.git_dirty == Some(true) { " (uncommitted changes)" } else { "" };
            format!("{} on {}{dirty}", format::short(sha), f.git_branch.as_deref().unwrap_or("detached HEAD"))
        }
        None => "unknown".to_string(),
    };
    rows.push(("Git".into(), git));
    rows.push(("Plan".into(), format!("sha256 {}", format::short(&f.plan_hash))));
    if let Some(t) = &f.started_at {
        rows.push(("Started".into(), t.clone()));
    }
    rows.push(("Length".into(), if f.quick { "quick (CI smoke)".into() } else { "full".into() }));
    rows.extend(f.versions.iter().map(|(k, v)| (k.clone(), v.clone())));
    rows
}

/// The validity sentence and its reasons (shared with the HTML report).
pub(super) fn validity(h: &Headline) -> (String, &[String]) {
    if h.invalid_reasons.is_empty() {
        ("Valid: every suite kept its schedule and the environment held.".to_string(), &[])
    } else {
        ("Invalid run: the results cannot be trusted.".to_string(), &h.invalid_reasons)
    }
}

fn tail(report: &Report, h: &Headline) -> String {
    let (sentence, reasons) = validity(h);
    let mut out = format!("\n### Run validity\n\n{}\n", strong_if(&sentence, !reasons.is_empty()));
    if !reasons.is_empty() {
        out.push('\n');
        for r in reasons {
            out.push_str(&format!("- {}\n", md(r)));
        }
    }
    let mut t = Table::new(&[("Fact", Align::Left), ("Value", Align::Left)]);
    for (k, v) in environment(report) {
        t.row(vec![k.into(), v.into()]);
    }
    out + "\n### Environment\n\n" + &t.markdown()
}

/// `smallest change …` as the start of a sentence.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
