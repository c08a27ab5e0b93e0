//! The HTML report (results/report.html): one self-contained file, inline CSS and inline SVG
//! charts, no script and no network. The same content as the Markdown report, plus charts:
//! latency p50/p95/p99 over time per endpoint (baseline dashed when it has windows),
//! throughput and errors over time, the whole suite over time, and numbered event markers
//! matching the event timeline (chaos).

use crate::compare::Verdict;

use super::charts;
use super::format::html as esc;
use super::markdown::{environment, validity};
use super::sections;
use super::table::{Align, Table};
use crate::verdict::{Headline, Outcome, Report, SuiteReport};

/// Endpoint charts per suite; beyond this the report names the endpoints left out (a plan with
/// hundreds of endpoints would otherwise make a file nobody opens).
const MAX_ENDPOINT_CHARTS: usize = 40;

pub(crate) const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1b1f24;line-height:1.45;overflow-wrap:break-word}\
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}h3{margin-top:1.5rem}\
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem;display:block;max-width:100%;overflow-x:auto}th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
.verdict{padding:.1rem .5rem;border-radius:.3rem}.pass{background:#dafbe1}.fail{background:#ffebe9}.invalid{background:#fff8c5}\
.note{color:#57606a;font-size:.9rem}details{margin:.6rem 0}summary{cursor:pointer;font-weight:600}\
figure{margin:.5rem 0}figcaption{font-size:.85rem;color:#57606a}svg{max-width:100%;height:auto}";

/// Renders the HTML report.
pub fn html(report: &Report) -> String {
    let h = Headline::of(report);
    let class = match h.outcome {
        Outcome::Pass => "pass",
        Outcome::Invalid => "invalid",
        Outcome::Regression | Outcome::SloBreach => "fail",
    };
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>Performance gate: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n", esc(h.words())));
    out.push_str(&format!(
        "<h1>Performance gate: <span class=\"verdict {class}\">{}</span></h1>\n<p>{}</p>\n",
        esc(h.words()),
        esc(&h.sentences().join(" "))
    ));
    out.push_str(&sections::overview(report).html());
    for s in &report.suites {
        out.push_str(&suite(s));
    }
    let (sentence, reasons) = validity(&h);
    out.push_str(&format!("<h2>Run validity</h2>\n<p>{}</p>\n", esc(&sentence)));
    if !reasons.is_empty() {
        out.push_str(&list(reasons));
    }
    let mut env = Table::new(&[("Fact", Align::Left), ("Value", Align::Left)]);
    for (k, v) in environment(report) {
        env.row(vec![k.into(), v.into()]);
    }
    out.push_str("<h2>Environment</h2>\n");
    out.push_str(&env.html());
    out.push_str("</body>\n</html>\n");
    out
}

fn list(items: &[String]) -> String {
    let mut out = String::from("<ul>\n");
    for i in items {
        out.push_str(&format!("<li>{}</li>\n", esc(i)));
    }
    out + "</ul>\n"
}

fn figure(caption: &str, chart: Result<String, String>) -> String {
    match chart {
        Ok(svg) => format!("<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n", esc(caption)),
        Err(e) => format!("<p class=\"note\">{}: chart unavailable ({})</p>\n", esc(caption), esc(&e)),
    }
}

fn suite(s: &SuiteReport) -> String {
    let sum = &s.summary;
    let verdict = s.comparison.as_ref().map(|c| format!(": {}", c.verdict)).unwrap_or_default();
    let mut out = format!("<section>\n<h2>Suite {}{}</h2>\n", esc(&sum.suite), esc(&verdict));
    out.push_str(&format!("<p>{}</p>\n", esc(&sections::source_sentence(s))));
    if !sum.valid {
        out.push_str(&format!("<p><strong>This run is invalid:</strong> {}</p>\n", esc(&sum.invalid_reasons.join("; "))));
    }
    out.push_str(&sections::main_table(s, false).html());
    for line in s.comparison.as_ref().and_then(sections::could_see).into_iter().chain(sections::stored_opinion(s)) {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(&line)));
    }
    if let Some(c) = s.comparison.as_ref().filter(|c| !c.notes.is_empty()) {
        out.push_str("<p>Notes on this comparison:</p>\n");
        out.push_str(&list(&c.notes));
    }
    if let Some((sentence, failed)) = sections::slo_sentence(sum) {
        out.push_str(&strong_p(&sentence, failed));
        if let Some(t) = sections::slo_failures(sum) {
            out.push_str(&t.html());
        }
    }
    if let Some((sentence, failed, t)) = sections::checks(sum) {
        out.push_str(&strong_p(&sentence, failed));
        out.push_str(&t.html());
    }
    if let Some(lines) = sections::capacity(sum) {
        out.push_str("<h3>Capacity</h3>\n");
        out.push_str(&list(&lines));
    }
    if !sum.figures.is_empty() {
        let items: Vec<String> = sum
            .figures
            .iter()
            .filter(|(k, _)| !sections::OWN_SECTION_FIGURES.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}: {}", sections::figure(v)))
            .collect();
        out.push_str("<p>Figures:</p>\n");
        out.push_str(&list(&items));
    }
    out.push_str(&charts_section(s));
    for d in sections::details(std::slice::from_ref(s)) {
        // What changed underneath is why a run got slower: open from the start.
        let open = if d.title == sections::UNDERNEATH || d.title == super::profile::TITLE { " open" } else { "" };
        let graph = if d.title == super::profile::TITLE && d.table.note.is_some() {
            // The differential flame graph the run wrote beside this report (a file of its
            // own: inferno's SVG carries its own script for zoom and search).
            let file = esc(&super::profile::flame_graph_file(&sum.suite));
            format!(
                "<p><a href=\"{file}\">differential flame graph</a> (red: grew, blue: shrank)</p>\n<object type=\"image/svg+xml\" data=\"{file}\" style=\"width:100%\"></object>\n"
            )
        } else {
            String::new()
        };
        out.push_str(&format!("<details{open}><summary>{}</summary>\n{}{graph}</details>\n", esc(d.title), d.table.html()));
    }
    out.push_str("</section>\n");
    out
}

fn strong_p(sentence: &str, strong: bool) -> String {
    if strong { format!("<p><strong>{}</strong></p>\n", esc(sentence)) } else { format!("<p>{}</p>\n", esc(sentence)) }
}

fn charts_section(s: &SuiteReport) -> String {
    let sum = &s.summary;
    let base = s.baseline_summary.as_ref();
    let mut out = String::from("<h3>Over time</h3>\n");
    if let Some(t) = sections::events(sum) {
        out.push_str("<p>Events (numbered markers on the charts):</p>\n");
        out.push_str(&t.html());
    }
    if !sum.windows.is_empty() {
        let b = base.map(|b| b.windows.as_slice());
        out.push_str(&figure(
            "whole suite: requests, errors and active virtual users per second",
            charts::suite(&sum.windows, b, &sum.events),
        ));
    }
    // Endpoints that need attention first, then by name.
    let verdict_of = |name: &str| s.comparison.as_ref().and_then(|c| c.endpoint(name)).map(|e| e.verdict).unwrap_or(Verdict::Unchanged);
    let mut names: Vec<&String> = sum.endpoints.keys().filter(|n| !sum.endpoints[*n].windows.is_empty()).collect();
    names.sort_by(|a, b| verdict_of(b).cmp(&verdict_of(a)).then(a.cmp(b)));
    let left_out = names.len().saturating_sub(MAX_ENDPOINT_CHARTS);
    for name in names.into_iter().take(MAX_ENDPOINT_CHARTS) {
        let head = &sum.endpoints[name].windows;
        let b = base.and_then(|b| b.endpoints.get(name)).map(|e| e.windows.as_slice());
        let dashed = if b.is_some_and(|w| !w.is_empty()) { " (baseline dashed)" } else { "" };
        out.push_str(&format!("<h4>{}</h4>\n", esc(name)));
        out.push_str(&figure(&format!("{name}: latency p50/p95/p99 per second{dashed}"), charts::latency(head, b, &sum.events)));
        out.push_str(&figure(&format!("{name}: requests and errors per second{dashed}"), charts::throughput(head, b, &sum.events)));
    }
    if left_out > 0 {
        out.push_str(&format!("<p class=\"note\">{left_out} more endpoints have no chart here, to keep the file small.</p>\n"));
    }
    out
}
