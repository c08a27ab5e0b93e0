//! The static site: `index.html` (every testbed, suite and endpoint, the regressions first)
//! and one page per endpoint (`<testbed>/<suite>/<endpoint>.html`): p50/p95/p99 and
//! throughput over the nights, change points marked and linked to their commits, and the
//! nights as a table. Pure: pages are returned, [`super::write_site`] writes them.
//!
//! Each page is self-contained (inline CSS, inline SVG charts drawn by the HTML report's
//! [`crate::render::charts`], no script, no fetch), and readable at a phone's width: charts
//! scale to the screen, wide tables scroll inside themselves.

use std::path::PathBuf;

use plotters::style::RGBColor;

use crate::render::charts::{self, Axes, Line, Marker};
use crate::render::format::{html as esc, ms, pct, rps, short};

use super::record::slug;
use super::trend::{CONFIRM_NIGHTS, ChangePoint, Direction, NightPoint, Pending, REFERENCE_NIGHTS, Trend};

/// How the site links and what it says.
#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    /// A commit's URL, `{sha}` standing for the full sha: for GitHub,
    /// `https://github.com/OWNER/NAME/commit/{sha}`. `None`: commits are shown, not linked.
    pub commit_url: Option<String>,
    /// Nights shown per endpoint (the trends already hold only those).
    pub last: usize,
}

impl SiteOptions {
    /// `https://github.com/{repo}/commit/{sha}` for `OWNER/NAME`.
    pub fn github(repo: &str) -> Result<String, String> {
        let parts: Vec<&str> = repo.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if parts.len() != 2 || !parts.iter().all(|p| ok(p)) {
            return Err(format!("{repo:?} is not a GitHub repository: expected OWNER/NAME"));
        }
        Ok(format!("https://github.com/{repo}/commit/{{sha}}"))
    }

    fn commit(&self, sha: &str) -> String {
        match &self.commit_url {
            Some(t) => format!("<a href=\"{}\"><code>{}</code></a>", esc(&t.replace("{sha}", sha)), esc(short(sha))),
            None => format!("<code>{}</code>", esc(short(sha))),
        }
    }
}

/// One file of the site.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Relative to the site's folder.
    pub path: PathBuf,
    pub html: String,
}

const SITE_CSS: &str = ".scroll{overflow-x:auto;max-width:100%}.reg{color:#cf222e;font-weight:600}.imp{color:#1a7f37;font-weight:600}\
nav{font-size:.9rem}";

/// The page of a trend, relative to the site's folder.
pub fn page_path(t: &Trend) -> PathBuf {
    PathBuf::from(slug(&t.testbed)).join(slug(&t.suite)).join(format!("{}.html", slug(&t.endpoint)))
}

/// Every page of the site for `trends`.
pub fn site(trends: &[Trend], opts: &SiteOptions) -> Vec<Page> {
    let mut pages = vec![Page { path: PathBuf::from("index.html"), html: index(trends, opts) }];
    pages.extend(trends.iter().map(|t| Page { path: page_path(t), html: endpoint_page(t, opts) }));
    pages
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{}{SITE_CSS}</style>\n</head>\n<body>\n",
        esc(title),
        crate::render::html::CSS
    )
}

/// A table whose cells are HTML already; numeric columns right-aligned.
fn table(columns: &[(&str, bool)], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for (name, num) in columns {
        out.push_str(&format!("<th{}>{}</th>", if *num { " class=\"num\"" } else { "" }, esc(name)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let num = columns.get(i).is_some_and(|c| c.1);
            out.push_str(&format!("<td{}>{cell}</td>", if num { " class=\"num\"" } else { "" }));
        }
        out.push_str("</tr>\n");
    }
    out + "</tbody>\n</table></div>\n"
}

fn opt(v: Option<f64>) -> String {
    v.map(ms).unwrap_or_else(|| "-".into())
}

fn direction(d: Direction) -> String {
    match d {
        Direction::Regression => "<span class=\"reg\">regression</span>".into(),
        Direction::Improvement => "<span class=\"imp\">improvement</span>".into(),
    }
}

fn link_to(t: &Trend, from_index: bool) -> String {
    let path = page_path(t).to_string_lossy().replace('\\', "/");
    let href = if from_index { path } else { format!("../../{path}") };
    format!("<a href=\"{}\">{}/{}</a>", esc(&href), esc(&t.suite), esc(&t.endpoint))
}

fn index(trends: &[Trend], opts: &SiteOptions) -> String {
    let mut out = head("Performance over time");
    out.push_str("<h1>Performance over time</h1>\n");
    out.push_str(&index_intro(trends, opts));
    out.push_str(&regressions_section(trends, opts));
    out.push_str(&awaiting_section(trends));
    out.push_str(&endpoints_by_testbed(trends));
    out.push_str("</body>\n</html>\n");
    out
}

/// The index's first paragraph: which nights, on which testbeds, and how to read the pages.
fn index_intro(trends: &[Trend], opts: &SiteOptions) -> String {
    let days: Vec<&str> = trends.iter().flat_map(|t| t.nights.iter().map(|n| n.day())).collect();
    let (first, last) = (days.iter().min(), days.iter().max());
    let mut testbeds: Vec<&str> = trends.iter().map(|t| t.testbed.as_str()).collect();
    testbeds.dedup();
    match (first, last) {
        (Some(f), Some(l)) => format!(
            "<p>Nightly runs from {} to {} on testbed{} {}: up to the last {} nights of each endpoint. Each page shows p50, p95 and p99 latency and throughput night by night; a marked night is where the gate's own regression rule says the endpoint changed, confirmed by the nights after it.</p>\n",
            esc(f),
            esc(l),
            if testbeds.len() == 1 { "" } else { "s" },
            esc(&testbeds.join(", ")),
            opts.last
        ),
        _ => "<p>No nights recorded yet.</p>\n".to_string(),
    }
}

/// Every endpoint's regressions, newest first.
fn regressions_section(trends: &[Trend], opts: &SiteOptions) -> String {
    let mut regs: Vec<(&Trend, &ChangePoint)> = trends.iter().flat_map(|t| t.regressions().map(move |c| (t, c))).collect();
    regs.sort_by(|a, b| b.1.date.cmp(&a.1.date).then(a.0.suite.cmp(&b.0.suite)).then(a.0.endpoint.cmp(&b.0.endpoint)));
    let mut out = String::from("<h2>Regressions</h2>\n");
    if regs.is_empty() {
        out.push_str("<p>None in these nights.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = regs
            .iter()
            .map(|(t, c)| vec![esc(&c.date[..c.date.len().min(10)]), link_to(t, true), opts.commit(&c.sha), esc(&c.describe())])
            .collect();
        out.push_str(&table(&[("Night", false), ("Endpoint", false), ("Commit", false), ("What moved", false)], &rows));
    }
    out
}

/// The changes that later nights have still to confirm; nothing when there are none.
fn awaiting_section(trends: &[Trend]) -> String {
    let pending: Vec<&Trend> = trends.iter().filter(|t| t.pending.is_some()).collect();
    if pending.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2>Awaiting confirmation</h2>\n<ul>\n");
    for t in pending {
        let p = t.pending.as_ref().expect("filtered");
        let what: Vec<String> = p.moves.iter().map(|m| m.describe()).collect();
        out.push_str(&format!(
            "<li>{}: {} on {} ({}), {} more night{} to confirm</li>\n",
            link_to(t, true),
            esc(p.direction.as_str()),
            esc(&p.date[..p.date.len().min(10)]),
            esc(&what.join("; ")),
            p.nights_needed,
            if p.nights_needed == 1 { "" } else { "s" }
        ));
    }
    out.push_str("</ul>\n");
    out
}

/// A heading per testbed and per suite (the trends come sorted so), each suite's endpoints as
/// a table linking to their pages.
fn endpoints_by_testbed(trends: &[Trend]) -> String {
    let mut out = String::new();
    let mut current: Option<(&str, &str)> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let flush = |out: &mut String, rows: &mut Vec<Vec<String>>| {
        if !rows.is_empty() {
            let cols = [("Endpoint", false), ("Nights", true), ("p95 ms, first", true), ("p95 ms, last", true), ("Changes", false)];
            out.push_str(&table(&cols, rows));
            rows.clear();
        }
    };
    for t in trends {
        if current.map(|c| c.0) != Some(t.testbed.as_str()) {
            flush(&mut out, &mut rows);
            out.push_str(&format!("<h2>Testbed {}</h2>\n", esc(&t.testbed)));
            current = None;
        }
        if current.map(|c| c.1) != Some(t.suite.as_str()) {
            flush(&mut out, &mut rows);
            out.push_str(&format!("<h3>Suite {}</h3>\n", esc(&t.suite)));
        }
        current = Some((t.testbed.as_str(), t.suite.as_str()));
        let p95 = t.p95_series();
        let changes: Vec<String> =
            t.changes.iter().map(|c| format!("{} {}", direction(c.direction), esc(&c.date[..c.date.len().min(10)]))).collect();
        rows.push(vec![
            format!("<a href=\"{}\">{}</a>", esc(&page_path(t).to_string_lossy().replace('\\', "/")), esc(&t.endpoint)),
            t.nights.len().to_string(),
            opt(p95.first().copied()),
            opt(p95.last().copied()),
            if changes.is_empty() { "-".into() } else { changes.join(", ") },
        ]);
    }
    flush(&mut out, &mut rows);
    out
}

const PENDING: RGBColor = RGBColor(191, 135, 0);
const DEFINITION: RGBColor = RGBColor(120, 120, 120);
const REGRESSION: RGBColor = RGBColor(207, 34, 46);
const IMPROVEMENT: RGBColor = RGBColor(26, 127, 55);

/// The markers of a trend's charts: change points numbered 1, 2, … (as in the table), `?` for
/// a pending night, `d` where the suite's definition changed.
fn markers(t: &Trend) -> Vec<Marker> {
    let mut m: Vec<Marker> = t
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| Marker {
            x: c.night as f64,
            label: format!("{}", i + 1),
            color: if c.direction == Direction::Regression { REGRESSION } else { IMPROVEMENT },
        })
        .collect();
    if let Some(p) = &t.pending {
        m.push(Marker { x: p.night as f64, label: "?".into(), color: PENDING });
    }
    m.extend(t.definition_changes.iter().map(|&i| Marker { x: i as f64, label: "d".into(), color: DEFINITION }));
    m
}

fn figure(caption: &str, chart: Result<String, String>) -> String {
    match chart {
        Ok(svg) => format!("<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n", esc(caption)),
        Err(e) => format!("<p class=\"note\">{}: chart unavailable ({})</p>\n", esc(caption), esc(&e)),
    }
}

fn charts_of(t: &Trend) -> String {
    let n = t.nights.len().max(1);
    let days: Vec<String> = t.nights.iter().map(|p| p.day().get(5..).unwrap_or(p.day()).to_string()).collect();
    let label = |x: f64| -> String {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 { String::new() } else { days.get(i as usize).cloned().unwrap_or_default() }
    };
    let points = |pick: &dyn Fn(&NightPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        t.nights
            .iter()
            .enumerate()
            .filter(|(_, p)| p.valid)
            .filter_map(|(i, p)| pick(p).filter(|v| v.is_finite()).map(|v| (i as f64, v)))
            .collect()
    };
    let axes =
        |y_desc: &'static str| Axes { x_desc: "night", y_desc, x_range: -0.5..(n as f64 - 0.5), x_label: Some(&label), x_labels: n.min(8) };
    let marks = markers(t);
    let latency = [
        Line { label: "p50", points: points(&|p| p.p50), color: charts::P50, dashed: false },
        Line { label: "p95", points: points(&|p| p.p95), color: charts::P95, dashed: false },
        Line { label: "p99", points: points(&|p| p.p99), color: charts::P99, dashed: false },
    ];
    let throughput = [
        Line { label: "requests/s", points: points(&|p| Some(p.rps)), color: charts::REQS, dashed: false },
        Line { label: "errors/s", points: points(&|p| Some(p.errors_per_s())), color: charts::ERRS, dashed: false },
    ];
    let mut out = String::from("<h2>Latency</h2>\n");
    out.push_str(&figure(
        &format!("{}/{}: latency p50, p95 and p99 per night (markers: change points, numbered as in the table below)", t.suite, t.endpoint),
        charts::chart(&axes("latency (ms)"), &latency, &marks),
    ));
    out.push_str("<h2>Throughput</h2>\n");
    out.push_str(&figure(
        &format!("{}/{}: requests and errors per second per night", t.suite, t.endpoint),
        charts::chart(&axes("per second"), &throughput, &marks),
    ));
    out
}

fn endpoint_page(t: &Trend, opts: &SiteOptions) -> String {
    let title = format!("{}/{}: performance over time", t.suite, t.endpoint);
    let mut out = head(&title);
    out.push_str("<nav><a href=\"../../index.html\">All endpoints</a></nav>\n");
    out.push_str(&format!("<h1>{} / {}</h1>\n", esc(&t.suite), esc(&t.endpoint)));
    out.push_str(&page_intro(t));
    out.push_str(&page_verdict(t));
    if let Some(p) = &t.pending {
        out.push_str(&awaiting_note(p, opts));
    }
    out.push_str(&charts_of(t));
    if !t.changes.is_empty() {
        out.push_str("<h2>Change points</h2>\n");
        out.push_str(&change_points_table(t, opts));
    }
    out.push_str("<h2>Nights</h2>\n");
    out.push_str(&nights_table(t, opts));
    out.push_str(&how_marked());
    out.push_str("</body>\n</html>\n");
    out
}

/// The page's first paragraph: the testbed, the nights shown, and the last valid p95; nothing
/// without nights.
fn page_intro(t: &Trend) -> String {
    let (Some(f), Some(l)) = (t.nights.first(), t.nights.last()) else { return String::new() };
    let earlier = match t.earlier_nights {
        0 => String::new(),
        n => format!(" ({n} earlier night{} serve as reference)", if n == 1 { "" } else { "s" }),
    };
    let now = t.latest().map(|p| format!(" p95 on the last valid night: {} ms.", opt(p.p95))).unwrap_or_default();
    format!(
        "<p>Testbed {}: {} night{} from {} to {}{}.{}</p>\n",
        esc(&t.testbed),
        t.nights.len(),
        if t.nights.len() == 1 { "" } else { "s" },
        esc(f.day()),
        esc(l.day()),
        esc(&earlier),
        esc(&now)
    )
}

/// How many regressions and improvements the nights hold, as a verdict badge.
fn page_verdict(t: &Trend) -> String {
    let regs = t.regressions().count();
    let imps = t.changes.len() - regs;
    let sentence = match (regs, imps) {
        (0, 0) => "No change point in these nights.".to_string(),
        (r, i) => {
            format!("{r} regression{} and {i} improvement{} in these nights.", if r == 1 { "" } else { "s" }, if i == 1 { "" } else { "s" })
        }
    };
    let class = if regs > 0 { "fail" } else { "pass" };
    format!("<p><span class=\"verdict {class}\">{}</span></p>\n", esc(&sentence))
}

/// The change that later nights have still to confirm, in a sentence.
fn awaiting_note(p: &Pending, opts: &SiteOptions) -> String {
    let what: Vec<String> = p.moves.iter().map(|m| m.describe()).collect();
    format!(
        "<p><strong>Awaiting confirmation:</strong> the night of {} (commit {}) is a possible {} ({}); {} more night{} confirm or dismiss it.</p>\n",
        esc(p.day_str()),
        opts.commit(&p.sha),
        esc(p.direction.as_str()),
        esc(&what.join("; ")),
        p.nights_needed,
        if p.nights_needed == 1 { "" } else { "s" }
    )
}

/// The change points, numbered as the charts' markers.
fn change_points_table(t: &Trend, opts: &SiteOptions) -> String {
    let rows: Vec<Vec<String>> = t
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                (i + 1).to_string(),
                esc(&c.date[..c.date.len().min(10)]),
                opts.commit(&c.sha),
                direction(c.direction),
                esc(&c.describe()),
                format!("{} before, {} from it on", c.reference_nights, c.head_nights),
            ]
        })
        .collect();
    table(&[("#", true), ("Night", false), ("Commit", false), ("Change", false), ("What moved", false), ("Nights compared", false)], &rows)
}

/// Every night, newest first, with its figures and what marks it.
fn nights_table(t: &Trend, opts: &SiteOptions) -> String {
    let rows: Vec<Vec<String>> = t
        .nights
        .iter()
        .enumerate()
        .rev()
        .map(|(i, p)| {
            vec![
                esc(p.day()),
                opts.commit(&p.sha),
                p.requests.to_string(),
                rps(p.rps),
                opt(p.p50),
                opt(p.p95),
                opt(p.p99),
                pct(if p.requests == 0 { 0.0 } else { p.errors as f64 / p.requests as f64 * 100.0 }),
                night_marks(t, i, p),
            ]
        })
        .collect();
    table(
        &[
            ("Night", false),
            ("Commit", false),
            ("Requests", true),
            ("req/s", true),
            ("p50 ms", true),
            ("p95 ms", true),
            ("p99 ms", true),
            ("Errors", true),
            ("Mark", false),
        ],
        &rows,
    )
}

/// What marks night `i`: a change point (its number), a pending change, a changed suite
/// definition, an invalid run.
fn night_marks(t: &Trend, i: usize, p: &NightPoint) -> String {
    let mut mark: Vec<String> = Vec::new();
    if let Some((n, c)) = t.changes.iter().enumerate().find(|(_, c)| c.night == i) {
        mark.push(format!("{} {}", n + 1, direction(c.direction)));
    }
    if t.pending.as_ref().is_some_and(|x| x.night == i) {
        mark.push("awaiting confirmation".into());
    }
    if t.definition_changes.contains(&i) {
        mark.push("suite definition changed".into());
    }
    if !p.valid {
        mark.push("invalid run (not compared)".into());
    }
    mark.join(", ")
}

/// The method in a paragraph, under every endpoint's nights.
fn how_marked() -> String {
    format!(
        "<h2>How a night is marked</h2>\n<p class=\"note\">With the gate's own A/B rule, the nights as rounds: the night and the {} after it against up to {} nights before it (none before the previous change point). p50, p95 and p99 from the merged histograms more than the threshold worse (20% by default), by more than the floor (1 ms), throughput more than the threshold lower or errors more than the points higher; at least the minimum samples a side, and significant over the nights (one-sided Mann-Whitney U). The night on its own must already be beyond the threshold, so the mark falls on the first night of a step. One or two slow nights are not enough.</p>\n",
        CONFIRM_NIGHTS - 1,
        REFERENCE_NIGHTS
    )
}

impl Pending {
    fn day_str(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }
}
