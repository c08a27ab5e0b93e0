//! "What changed underneath": the statements, Redis commands and resources that moved since
//! the baseline ([`crate::compare::underneath`]), as one table for Markdown and HTML and as a
//! few lines for the terminal. Shown for a regressed suite always (even to say that nothing
//! underneath moved), and for any compared suite where something did.
//!
//! Each statement and command says how many times one request runs it, before and after
//! (`0 → 16 calls per request of slots`), over the endpoints that issue it or, when they
//! cannot be told, over every request of the suite with the reason; a loop of queries comes
//! first and is named so.

use crate::compare::underneath::{self, CallsPerRequest, CommandChange, ResourceChange, StatementChange, Underneath};

use super::format;
use super::table::{Align, Table, Text};
use crate::verdict::SuiteReport;

use Align::{Left as L, Right as R};

/// Characters of a statement shown in the terminal.
const TERMINAL_TEXT: usize = 110;

/// The comparison underneath one suite, when there is a baseline and something to say.
pub(super) fn of(s: &SuiteReport) -> Option<Underneath> {
    let base = s.baseline_summary.as_ref()?;
    let u = underneath::underneath(base, &s.summary);
    let regressed = s.comparison.as_ref().is_some_and(|c| c.has_regression());
    (regressed || !u.is_quiet()).then_some(u)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn rel(base: f64, head: f64) -> String {
    if base > 0.0 { format!("{:+.0}%", (head - base) / base * 100.0) } else { "new".into() }
}

/// `Index Scan using i on t → Seq Scan on t`, or empty.
pub(super) fn plan_change(s: &StatementChange) -> String {
    if s.plan_before.is_empty() && s.plan_after.is_empty() {
        return String::new();
    }
    let side = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    format!("{} → {}", side(&s.plan_before), side(&s.plan_after))
}

/// Calls per request: whole numbers without decimals (`16`), others with two figures.
fn calls(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 { format!("{v:.0}") } else { num(v) }
}

/// Whose requests the calls are counted over: `slots`, `slots and book`, `the suite`.
fn per_request_of(c: &CallsPerRequest) -> String {
    match c.endpoints.as_slice() {
        [] => "the suite".to_string(),
        [one] => one.clone(),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
    }
}

/// `0 → 16 calls per request of slots`, `at most 2 → 16 …`, `– → 3 …` (no such request in
/// the baseline), and for the whole suite the reason in brackets.
pub(super) fn calls_per_request(c: &CallsPerRequest) -> String {
    let side = |v: Option<f64>| v.map_or_else(|| "–".to_string(), calls);
    let base = if c.base_at_most { format!("at most {}", side(c.base)) } else { side(c.base) };
    let mut out = format!("{base} → {} calls per request of {}", side(c.head), per_request_of(c));
    if let Some(why) = &c.suite_because {
        out.push_str(&format!(" (not told to endpoints: {why})"));
    }
    out
}

/// A Redis command's calls per request of the suite (Redis cannot tell routes).
fn command_calls(c: &CommandChange) -> String {
    let (b, h) = c.calls_per_request();
    format!("{} → {} calls per request of the suite", calls(b), calls(h))
}

/// `loop of queries: ` before a statement that is one, else nothing.
fn loop_label(s: &StatementChange) -> &'static str {
    if s.is_loop { "loop of queries: " } else { "" }
}

fn issued_by(s: &StatementChange) -> String {
    s.issued_by.iter().take(3).map(|(r, share)| format!("{r} ({:.0}%)", share * 100.0)).collect::<Vec<_>>().join(", ")
}

/// One sentence per statement: time per 1000 requests, per call, data touched per call.
fn statement_figures(s: &StatementChange) -> (String, String, String) {
    let side = |f: Option<&underneath::StatementFigures>| match f {
        Some(f) => format!(
            "{} ms/1k req, {} ms × {} calls/1k req, {} rows and {} blocks per call",
            num(f.ms_per_1k),
            num(f.mean_ms),
            num(f.calls_per_1k),
            num(f.rows_per_call),
            num(f.blocks_per_call)
        ),
        None => "absent".into(),
    };
    let change = match (&s.base, &s.head) {
        (Some(b), Some(h)) => format!("{:+.1} ms/1k req ({})", s.delta_ms_per_1k, rel(b.ms_per_1k, h.ms_per_1k)),
        _ => format!("{:+.1} ms/1k req", s.delta_ms_per_1k),
    };
    (side(s.base.as_ref()), side(s.head.as_ref()), change)
}

fn resource_value(r: &ResourceChange, v: f64) -> String {
    if r.figure == "peak memory" { format::bytes(v as u64) } else { format!("{v:.3}") }
}

/// The Markdown and HTML table.
pub(super) fn table(u: &Underneath) -> Table {
    let mut t = Table::new(&[
        ("What", L),
        ("Baseline", L),
        ("This run", L),
        ("Change", R),
        ("Calls per request", L),
        ("Plan", L),
        ("Issued by", L),
    ]);
    for s in &u.statements {
        let (b, h, change) = statement_figures(s);
        let what = match &s.base_query {
            Some(was) => format!("{}statement (edited): {}; in the baseline: {was}", loop_label(s), s.query),
            None => format!("{}statement: {}", loop_label(s), s.query),
        };
        let what = if s.is_loop { Text::strong(what) } else { what.into() };
        let calls = calls_per_request(&s.calls_per_request);
        let calls = if s.is_loop { Text::strong(calls) } else { calls.into() };
        t.row(vec![what, b.into(), h.into(), Text::strong(change), calls, Text::strong(plan_change(s)), issued_by(s).into()]);
    }
    for c in &u.commands {
        t.row(vec![
            format!("redis {}", c.command).into(),
            format!("{} ms/1k req, {} calls/1k req", num(c.base_ms_per_1k), num(c.base_calls_per_1k)).into(),
            format!("{} ms/1k req, {} calls/1k req", num(c.head_ms_per_1k), num(c.head_calls_per_1k)).into(),
            rel(c.base_ms_per_1k, c.head_ms_per_1k).into(),
            command_calls(c).into(),
            "".into(),
            "".into(),
        ]);
    }
    if let Some((b, h)) = u.hit_ratio {
        let pct = |x: Option<f64>| x.map(|x| format::pct(x * 100.0)).unwrap_or_else(|| "-".into());
        t.row(vec!["redis cache hit ratio".into(), pct(b).into(), pct(h).into(), "".into(), "".into(), "".into(), "".into()]);
    }
    for r in &u.resources {
        let change = rel(r.base, r.head);
        t.row(vec![
            format!("{}: {}", r.service, r.figure).into(),
            resource_value(r, r.base).into(),
            resource_value(r, r.head).into(),
            if r.grew { Text::strong(change) } else { change.into() },
            "".into(),
            "".into(),
            "".into(),
        ]);
    }
    let mut note = format!(
        "Per 1000 measured requests of the suite. A statement counts as changed when its time grew by more than {:.0}% and by at least {:.0}% of all the baseline's statement time; {} statements matched by text. Calls per request are over the requests of the endpoints seen issuing the statement (connections named after them), else over every request of the suite; a statement whose calls per request grew by more than {} is a loop of queries, listed first: each call is a round trip to the database, which costs far more in production than on this machine's loopback.",
        underneath::STATEMENT_GROWTH * 100.0,
        underneath::STATEMENT_SHARE * 100.0,
        u.statements_compared,
        underneath::LOOP_GROWTH
    );
    if u.statements.is_empty() {
        note.push_str(" No statement changed beyond that.");
    }
    for n in &u.notes {
        note.push_str(&format!(" {n}."));
    }
    t.note = Some(note);
    t
}

/// The terminal's lines (indented, under the suite's table), each cut to `width` when given.
pub(super) fn lines(u: &Underneath, width: Option<u16>) -> Vec<String> {
    let mut out = raw_lines(u);
    if let Some(w) = width {
        let w = usize::from(w).max(20);
        for l in &mut out {
            if l.chars().count() > w {
                *l = cut(l, w - 1);
            }
        }
    }
    out
}

fn raw_lines(u: &Underneath) -> Vec<String> {
    let mut out = vec!["  what changed underneath, per 1000 requests, against the baseline:".to_string()];
    for (i, s) in u.statements.iter().take(5).enumerate() {
        let (_, _, change) = statement_figures(s);
        out.push(format!("    {}. {}statement {change}: {}", i + 1, loop_label(s), cut(&s.query, TERMINAL_TEXT)));
        if let Some(was) = &s.base_query {
            out.push(format!("       edited; in the baseline: {}", cut(was, TERMINAL_TEXT)));
        }
        out.push(format!("       {}", calls_per_request(&s.calls_per_request)));
        if let (Some(b), Some(h)) = (&s.base, &s.head) {
            out.push(format!(
                "       per call {} → {} ms, {} → {} blocks, {} → {} rows",
                num(b.mean_ms),
                num(h.mean_ms),
                num(b.blocks_per_call),
                num(h.blocks_per_call),
                num(b.rows_per_call),
                num(h.rows_per_call)
            ));
        }
        let plan = plan_change(s);
        if !plan.is_empty() {
            out.push(format!("       plan: {plan}"));
        }
        let by = issued_by(s);
        if !by.is_empty() {
            out.push(format!("       issued by: {by}"));
        }
    }
    if u.statements.is_empty() {
        out.push("    no statement changed beyond noise".into());
    }
    for c in &u.commands {
        out.push(format!(
            "    redis {}: {} → {} ms, {} → {} calls ({})",
            c.command,
            num(c.base_ms_per_1k),
            num(c.head_ms_per_1k),
            num(c.base_calls_per_1k),
            num(c.head_calls_per_1k),
            command_calls(c)
        ));
    }
    for r in u.resources.iter().filter(|r| r.grew) {
        out.push(format!(
            "    {} {}: {} → {} ({})",
            r.service,
            r.figure,
            resource_value(r, r.base),
            resource_value(r, r.head),
            rel(r.base, r.head)
        ));
    }
    for n in &u.notes {
        out.push(format!("    {n}"));
    }
    out
}
