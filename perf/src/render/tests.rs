//! Renderers on literal summaries and comparisons.

use scraper::{Html, Selector};

use crate::compare::compare_suite;
use crate::compare::testkit::{Gen, endpoint, one, summary};
use crate::plan::CompareRules;
use crate::summary::{Check, Event, SloResult, Summary, Window};

use super::*;
use crate::verdict::*;

fn suite_report(base: Option<Summary>, head: Summary, source: BaselineSource) -> SuiteReport {
    let comparison = Some(compare_suite(base.as_ref(), &head, &CompareRules::default()));
    SuiteReport { summary: head, comparison, baseline: source, baseline_summary: base, confirmation: Confirmation::NotRun, stored: None }
}

fn report(suites: Vec<SuiteReport>) -> Report {
    let facts = RunFacts::from_summary(&suites[0].summary);
    Report { facts, suites, invalid_reasons: Vec::new() }
}

fn committed() -> BaselineSource {
    BaselineSource::Committed { path: "results/baseline/baseline.json".into() }
}

fn slo(endpoint: &str, metric: &str, threshold: f64, actual: f64) -> SloResult {
    let passed = if metric == "min_rps" { actual >= threshold } else { actual <= threshold };
    SloResult { endpoint: endpoint.into(), metric: metric.into(), threshold, actual: Some(actual), passed, reason: None }
}

/// A regression of `get` (+30%) next to an unchanged `list`.
fn regressed() -> Report {
    let g = |median, seed| Gen::new(100, 60, median, seed);
    let base = summary("baseline", 60, vec![("get", endpoint(&g(10.0, 1))), ("list", endpoint(&g(5.0, 2)))]);
    let mut head = summary("baseline", 60, vec![("get", endpoint(&g(13.0, 3))), ("list", endpoint(&g(5.0, 4)))]);
    head.slo = vec![slo("get", "p99", 100.0, 30.0), slo("list", "error_rate", 0.01, 0.0)];
    report(vec![suite_report(Some(base), head, committed())])
}

fn passing() -> Report {
    let g = |seed| Gen::new(50, 30, 8.0, seed);
    report(vec![suite_report(Some(one("baseline", "get", &g(1))), one("baseline", "get", &g(2)), committed())])
}

#[test]
fn markdown_holds_the_headline_and_the_table_rows() {
    let md = markdown(&regressed(), &MarkdownOptions::default());
    assert!(md.starts_with("## Performance gate: regression\n"), "{md}");
    // The endpoint's biggest metric is named (here p99), the others counted.
    assert!(md.contains("**Verdict: regression.** Regression in 1 endpoint: baseline/get (p99 +"), "{md}");
    assert!(md.contains("; 2 more metrics)."), "{md}");
    let p50_row = md.lines().find(|l| l.starts_with("| get | p50 |")).expect("p50 row of get");
    assert!(p50_row.ends_with("| **regressed** |"), "{p50_row}");
    assert!(p50_row.contains(" ms | +"), "{p50_row}");
    for metric in ["p95", "p99", "rps", "errors"] {
        assert!(md.lines().any(|l| l.starts_with(&format!("|  | {metric} |"))), "{metric} row missing");
    }
    assert!(md.contains("| list | p50 |"));
    assert!(md.contains("Compared with: committed baseline results/baseline/baseline.json, recorded at 0123456789ab"));
    assert!(md.contains("SLOs: all 2 hold."));
    assert!(md.contains("### Run validity\n\nValid"));
    assert!(md.contains("| Backend | local |"));
    assert!(md.contains("<details><summary>baseline: tests and p-values</summary>"));
    assert!(md.contains("bootstrap over segments"), "{md}");

    let md = markdown(&passing(), &MarkdownOptions::default());
    assert!(md.starts_with("## Performance gate: pass\n"));
    assert!(md.contains("**Verdict: pass.** No regression."));
}

#[test]
fn headline_and_exit_codes() {
    assert_eq!((Headline::of(&passing()).outcome, exit_code(&passing())), (Outcome::Pass, 0));
    assert_eq!((Headline::of(&regressed()).outcome, exit_code(&regressed())), (Outcome::Regression, 1));

    let mut breach = passing();
    breach.suites[0].summary.slo = vec![slo("get", "p95", 5.0, 9.5)];
    let h = Headline::of(&breach);
    assert_eq!((h.outcome, h.words(), h.outcome.exit_code()), (Outcome::SloBreach, "SLO breach", 1));
    assert!(h.sentences().contains(&"1 of 1 SLOs failed.".to_string()));
    assert!(terminal(&breach, TerminalOptions::default()).contains("SLO failed: get p95 9.50 ms, at most 5.00 ms"));

    let mut both = regressed();
    both.suites[0].summary.slo[0].passed = false;
    assert_eq!(Headline::of(&both).words(), "regression and SLO breach");

    let mut invalid = regressed();
    invalid.suites[0].summary.valid = false;
    invalid.suites[0].summary.invalid_reasons = vec!["fell behind schedule on 3% of requests".into()];
    let h = Headline::of(&invalid);
    assert_eq!((h.outcome, h.outcome.exit_code()), (Outcome::Invalid, 2));
    assert!(markdown(&invalid, &MarkdownOptions::default()).contains("baseline: fell behind schedule on 3% of requests"));

    let mut env_failed = passing();
    env_failed.invalid_reasons.push("postgres did not become ready".into());
    assert_eq!(exit_code(&env_failed), 2);

    // A regression a re-run did not reproduce is reported, not counted.
    let mut unconfirmed = regressed();
    unconfirmed.suites[0].confirmation = Confirmation::NotConfirmed { first_run: vec!["get".into()] };
    let h = Headline::of(&unconfirmed);
    assert_eq!(h.outcome, Outcome::Pass);
    assert_eq!(h.unconfirmed, vec!["baseline/get".to_string()]);
    let mut confirmed = regressed();
    confirmed.suites[0].confirmation = Confirmation::Confirmed;
    assert_eq!(exit_code(&confirmed), 1);
    assert!(markdown(&confirmed, &MarkdownOptions::default()).contains("The regression was confirmed by a re-run."));

    let mut failed_check = passing();
    failed_check.suites[0].summary.checks = vec![Check { name: "breaker opens".into(), passed: false, detail: "stayed CLOSED".into() }];
    assert_eq!(Headline::of(&failed_check).outcome, Outcome::SloBreach);
}

/// A tail surely worse, beyond the threshold but not surely beyond it (as a stored baseline
/// left a 10 req/s endpoint's p95 +50.8% in a measured trial): the run passes, and the headline
/// names it and says what would decide it; an interval reaching no change, one clear of the
/// margin (a `noisy` that regressed in the re-run only), an improvement, a change within the
/// threshold or one no interval could test is left to the tables.
#[test]
fn an_undecided_worsening_is_named_with_what_would_decide_it() {
    use crate::compare::{CompareMode, Metric, Verdict};
    let with = |mode: CompareMode, rel: f64, interval: Option<[f64; 2]>| {
        let mut r = passing();
        let c = r.suites[0].comparison.as_mut().unwrap();
        c.mode = mode;
        let m = c.endpoints[0].metrics.iter_mut().find(|m| m.metric == Metric::P95).unwrap();
        m.delta_rel = Some(rel);
        m.delta_abs = Some(rel * m.base.unwrap());
        m.interval = interval;
        m.level = Some(0.95);
        m.verdict = Verdict::Noisy;
        c.endpoints[0].verdict = Verdict::Noisy;
        r
    };
    let stored = with(CompareMode::Baseline, 0.508, Some([0.003, 1.266]));
    let h = Headline::of(&stored);
    assert_eq!((h.outcome, exit_code(&stored)), (Outcome::Pass, 0));
    let text = h.sentences().join(" ");
    assert!(
        text.contains("Slower, but not surely beyond the threshold, so not counted: baseline/get p95 +50.8% (95% CI +0.3 … +126.6%).")
            && text.contains("--against origin/main"),
        "{text}"
    );
    assert!(markdown(&stored, &MarkdownOptions::default()).contains("not counted: baseline/get p95 +50.8%"));
    assert!(terminal(&stored, TerminalOptions::default()).contains("not counted: baseline/get p95 +50.8%"));

    // Measured side by side already: no advice to do so.
    let text = Headline::of(&with(CompareMode::AB { pairs: 10 }, 0.508, Some([0.003, 1.266]))).sentences().join(" ");
    assert!(
        text.contains("beyond the threshold even side by side, so not counted: baseline/get p95 +50.8%") && !text.contains("--against"),
        "{text}"
    );

    // An interval just clear of no change never reads as reaching it: not `+0.0 … `.
    let text = Headline::of(&with(CompareMode::Baseline, 0.508, Some([0.0002, 1.266]))).sentences().join(" ");
    assert!(text.contains("p95 +50.8% (95% CI +0.02 … +126.6%)"), "{text}");

    for (rel, interval) in
        [(0.55, Some([-0.02, 1.3])), (0.55, Some([0.13, 1.3])), (-0.35, Some([-0.7, -0.05])), (0.15, Some([0.01, 0.4])), (0.9, None)]
    {
        let h = Headline::of(&with(CompareMode::Baseline, rel, interval));
        assert!(h.undecided.is_empty() && !h.sentences().join(" ").contains("not counted"), "{rel} {interval:?}: {:?}", h.sentences());
    }
}

const NASTY: &str = "<script>alert(1)</script>|x";

fn nasty() -> Report {
    let g = Gen::new(50, 20, 5.0, 1);
    let base = summary("baseline", 20, vec![(NASTY, endpoint(&g))]);
    let mut head = summary("baseline", 20, vec![(NASTY, endpoint(&Gen::new(50, 20, 9.0, 2)))]);
    head.slo = vec![SloResult {
        endpoint: NASTY.into(),
        metric: "p99".into(),
        threshold: 1.0,
        actual: None,
        passed: false,
        reason: Some("<b>no</b>".into()),
    }];
    report(vec![suite_report(Some(base), head, committed())])
}

#[test]
fn markdown_escapes_names() {
    let md = markdown(&nasty(), &MarkdownOptions::default());
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("<b>"));
    assert!(md.contains("| &lt;script&gt;alert(1)&lt;/script&gt;\\|x | p50 |"), "{md}");
}

#[test]
fn html_parses_cleanly_and_escapes_names() {
    let page = html(&nasty());
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    assert_eq!(doc.select(&Selector::parse("script").unwrap()).count(), 0);
    assert_eq!(doc.select(&Selector::parse("b").unwrap()).count(), 0);
    // The name survives as text.
    let h4: Vec<String> = doc.select(&Selector::parse("h4").unwrap()).map(|e| e.text().collect()).collect();
    assert_eq!(h4, vec![NASTY.to_string()]);
    let cells: Vec<String> = doc.select(&Selector::parse("td").unwrap()).map(|e| e.text().collect()).collect();
    assert!(cells.iter().any(|c| c == NASTY));
}

#[test]
fn html_holds_the_same_content_plus_charts() {
    let mut r = regressed();
    let s = &mut r.suites[0].summary;
    s.windows = (0..60)
        .map(|t| Window { t, requests: 200, errors: u64::from(t == 30), active_vus: 10, p50: Some(6.0), p95: Some(9.0), p99: Some(12.0) })
        .collect();
    s.events = vec![Event { t: 20.0, what: "stop postgres".into() }, Event { t: 40.0, what: "start postgres".into() }];
    let page = html(&r);
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    let svgs = doc.select(&Selector::parse("svg").unwrap()).count();
    // Whole suite, then latency and throughput for each of two endpoints.
    assert_eq!(svgs, 5);
    // Baseline windows exist: dashed baseline lines are drawn and named.
    assert!(page.contains("base p99"));
    assert!(page.contains("stroke-dasharray") || page.matches("<polyline").count() > 10);
    let title = doc.select(&Selector::parse("title").unwrap()).next().unwrap().text().collect::<String>();
    assert_eq!(title, "Performance gate: regression");
    assert!(page.contains("<td>stop postgres</td>"));
    // The same overview and tables as the Markdown report.
    assert!(page.contains("<th>Suite</th><th>Compared with</th>"));
    assert!(page.contains("<summary>tests and p-values</summary>"));
    assert!(page.contains("<h2>Environment</h2>"));
    assert!(page.contains("<strong>regressed</strong>"));
    // Self-contained: nothing is fetched (the only URL is the SVG namespace).
    assert!(!page.contains("src=") && !page.contains("href=") && !page.contains("<link") && !page.contains("@import"));
}

#[test]
fn special_suites_show_checks_events_and_figures() {
    let mut chaos = one("chaos-db-down", "book", &Gen::new(20, 30, 5.0, 1));
    chaos.kind = "chaos".into();
    chaos.checks = vec![
        Check { name: "503 not 500".into(), passed: true, detail: "0 responses with 500".into() },
        Check { name: "breaker closes again".into(), passed: false, detail: "still HALF_OPEN after 10 s".into() },
    ];
    chaos.events = vec![Event { t: 10.0, what: "stop postgres".into() }];
    chaos.figures.insert("recovery_s".into(), serde_json::json!(4.25));
    let r = report(vec![SuiteReport {
        summary: chaos,
        comparison: None,
        baseline: BaselineSource::None,
        baseline_summary: None,
        confirmation: Confirmation::NotRun,
        stored: None,
    }]);
    let md = markdown(&r, &MarkdownOptions::default());
    assert!(md.contains("**Checks: 1 of 2 failed.**"), "{md}");
    assert!(md.contains("| breaker closes again | **failed** | still HALF\\_OPEN after 10 s |"), "{md}");
    assert!(md.contains("- recovery\\_s: 4.250"));
    assert!(md.contains("<details><summary>chaos-db-down: event timeline</summary>"));
    assert!(md.contains("| 1 | 10.0 | stop postgres |"));
    assert!(md.contains("Compared with: no baseline."));
    assert!(md.contains("| book | 600 | 20.0 |"), "{md}");
    assert_eq!(exit_code(&r), 1);
    // The terminal lists every check, so a passing chaos run says what it verified.
    let term = terminal(&r, TerminalOptions::default());
    assert!(term.contains("  check passed: 503 not 500: 0 responses with 500\n"), "{term}");
    assert!(term.contains("  check failed: breaker closes again: still HALF_OPEN after 10 s\n"), "{term}");
}

/// A stress run whose search ended where the service broke, with a capacity target.
fn stress_with_capacity() -> Report {
    let mut stress = one("stress", "provider", &Gen::new(20, 30, 5.0, 1));
    stress.kind = "stress".into();
    stress.figures.insert("breaking_rate".into(), serde_json::json!(4800.0));
    stress.figures.insert(
        "capacity".into(),
        serde_json::json!({
            "held_rps": 4800.0, "achieved_rps": 4795.0, "app_cores": 1.2, "postgres_cores": 0.4,
            "app_cpu_ms_per_request": 0.25, "saturated_first": "app_cpu",
            "saturated_detail": "at 5600/s, broken by latency: app 1.50 cores, postgres 0.45 cores",
            "search_end": "service_broke", "target_rps": 20000.0, "headroom": 0.3, "instances": 6,
        }),
    );
    report(vec![SuiteReport {
        summary: stress,
        comparison: None,
        baseline: BaselineSource::None,
        baseline_summary: None,
        confirmation: Confirmation::NotRun,
        stored: None,
    }])
}

#[test]
fn the_capacity_section_is_in_all_three_reports() {
    let r = stress_with_capacity();
    let held = "Highest rate one instance held within its SLOs: 4800/s (4795/s measured); the search ended because the service broke.";
    let cpu = "App CPU per request at 4800/s: 0.250 ms (app 1.20 cores, PostgreSQL 0.40 cores).";
    let saturated = "Saturated first: app CPU (at 5600/s, broken by latency: app 1.50 cores, postgres 0.45 cores).";
    let instances = "For 20000/s with 30% headroom: 6 instances (each planned at 3360/s).";

    let term = terminal(&r, TerminalOptions::default());
    for line in [held, cpu, saturated, instances] {
        assert!(term.contains(&format!("  capacity: {line}\n")), "{line}\n{term}");
    }

    let md = markdown(&r, &MarkdownOptions::default());
    assert!(md.contains("\nCapacity:\n\n- Highest rate one instance held"), "{md}");
    for line in [cpu, saturated, instances] {
        assert!(md.contains(&format!("- {line}\n")), "{line}\n{md}");
    }
    // Shown once: not again as raw JSON among the figures.
    assert!(!md.contains("- capacity:"), "{md}");
    assert!(md.contains("- breaking\\_rate: 4800"), "{md}");

    let html = Html::parse_document(&html(&r));
    let h3: Vec<String> = html.select(&Selector::parse("h3").unwrap()).map(|e| e.text().collect()).collect();
    assert!(h3.iter().any(|t| t == "Capacity"), "{h3:?}");
    let items: Vec<String> = html.select(&Selector::parse("li").unwrap()).map(|e| e.text().collect()).collect();
    for line in [held, cpu, saturated, instances] {
        assert!(items.iter().any(|i| i == line), "{line}\n{items:?}");
    }
    assert!(!items.iter().any(|i| i.starts_with("capacity:")), "{items:?}");

    // A summary without the figure (older, or another kind) has no capacity section.
    let plain = passing();
    assert!(!terminal(&plain, TerminalOptions::default()).contains("capacity:"));
    assert!(!markdown(&plain, &MarkdownOptions::default()).contains("Capacity:"));
}

fn big_plan(endpoints: usize) -> Report {
    let names: Vec<String> = (0..endpoints).map(|i| format!("endpoint_with_a_long_descriptive_name_{i:04}")).collect();
    let mk = |median: f64, seed: u64| {
        let eps = names.iter().enumerate().map(|(i, n)| {
            let m = if i % 10 == 0 { median * 1.5 } else { median };
            (n.as_str(), endpoint(&Gen::new(20, 10, m, seed + i as u64)))
        });
        let mut s = summary("concurrent", 10, eps.collect());
        s.slo = names.iter().map(|n| slo(n, "p99", 50.0, 20.0)).collect();
        s
    };
    let base = mk(10.0, 1);
    let head = mk(10.0, 100_000);
    report(vec![suite_report(Some(base), head, committed())])
}

#[test]
fn the_report_for_a_big_plan_stays_under_the_comment_limit() {
    // 300 endpoints: the main tables alone are over the limit, so they shrink and details go.
    let r = big_plan(300);
    let md = markdown(&r, &MarkdownOptions { full_report_hint: Some("results/report.html".into()), ..Default::default() });
    assert!(md.len() < 65_536, "{} bytes", md.len());
    assert!(md.len() <= 60_000);
    assert!(md.starts_with("## Performance gate:"));
    assert!(md.contains("### Run validity"), "the tail survives");
    assert!(md.contains("left out to fit"));
    assert!(md.contains("The full report is in results/report.html."));

    // 40 endpoints: the tables fit, only details are dropped (least useful first).
    let r = big_plan(40);
    let full = markdown(&r, &MarkdownOptions { max_chars: 1_000_000, ..Default::default() });
    let limited = markdown(&r, &MarkdownOptions { max_chars: full.len() - 2_000, ..Default::default() });
    assert!(limited.len() <= full.len() - 2_000);
    assert!(limited.contains("| endpoint\\_with\\_a\\_long\\_descriptive\\_name\\_0039 | p50 |"), "main table intact");
    assert!(limited.contains("tests and p-values"), "the most useful detail stays");
    assert!(limited.contains("left out to fit"));

    // Thousands of endpoints: cut, and said so.
    let r = big_plan(3000);
    let md = markdown(&r, &MarkdownOptions::default());
    assert!(md.len() <= 60_000, "{}", md.len());
    assert!(md.ends_with("The report was cut to fit the comment limit.\n"));
}

#[test]
fn terminal_table_with_and_without_colour() {
    let plain = terminal(&regressed(), TerminalOptions::default());
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(plain.contains("Suite baseline (committed baseline results/baseline/baseline.json): regressed"));
    let get = plain.lines().find(|l| l.contains(" get ")).expect("row of get");
    assert!(get.contains("regressed") && get.contains("(+"), "{get}");
    assert!(plain.trim_end().lines().last().unwrap().starts_with("Verdict: REGRESSION. Regression in 1 endpoint"));
    let colour = terminal(&regressed(), TerminalOptions { color: true, width: None });
    assert!(colour.contains("\x1b["));
    let narrow = terminal(&regressed(), TerminalOptions { color: false, width: Some(60) });
    assert!(narrow.lines().all(|l| l.chars().count() <= 60 || l.starts_with("Verdict") || l.starts_with("Suite")), "{narrow}");
}

#[test]
fn ab_reports_name_the_ref_and_the_paired_test() {
    let (b, h) = (one("baseline", "get", &Gen::new(40, 20, 10.0, 1)), one("baseline", "get", &Gen::new(40, 20, 10.0, 10)));
    let ctx = crate::compare::Context { paired: true, noise: None };
    let comparison = Some(crate::compare::compare_suite_with(Some(&b), &h, &CompareRules::default(), ctx));
    let r = report(vec![SuiteReport {
        summary: h.clone(),
        comparison,
        baseline: BaselineSource::AbRef { git_ref: "origin/main".into(), sha: "0123456789ab".into() },
        baseline_summary: Some(b.clone()),
        confirmation: Confirmation::NotRun,
        stored: None,
    }]);
    let md = markdown(&r, &MarkdownOptions::default());
    assert!(
        md.contains(
            "Compared with: A/B against origin/main (0123456789ab) on this machine, 10 pairs of segments, each pair in a random order."
        ),
        "{md}"
    );
    assert!(md.contains("paired bootstrap over segments"), "{md}");
    assert_eq!(exit_code(&r), 0);
}

/// Seven of nine endpoints slower, by different amounts: the headline lists them largest
/// first, each with its biggest metric, says they moved together, and the tables lead with
/// them.
#[test]
fn what_moved_most_comes_first_and_a_whole_service_move_is_named() {
    let g = |median, seed| Gen::new(100, 60, median, seed);
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    // Slowdown per endpoint: b the most, then f, then the others; h and i unchanged.
    let factor = [1.5, 3.0, 1.5, 1.5, 1.5, 2.2, 1.5, 1.0, 1.0];
    let base = summary("baseline", 60, names.iter().enumerate().map(|(i, n)| (*n, endpoint(&g(10.0, i as u64)))).collect());
    let head =
        summary("baseline", 60, names.iter().enumerate().map(|(i, n)| (*n, endpoint(&g(10.0 * factor[i], 100 + i as u64)))).collect());
    let r = report(vec![suite_report(Some(base), head, committed())]);
    let h = Headline::of(&r);
    let order: Vec<&str> = h.regressions.iter().map(|r| r.endpoint.as_str()).collect();
    assert_eq!(order.len(), 7, "{order:?}");
    assert_eq!(&order[..2], ["b", "f"], "largest first: {order:?}");
    assert!(h.regressions.windows(2).all(|w| w[0].effect >= w[1].effect));
    let text = h.sentences().join(" ");
    assert!(text.contains("Regression in 7 endpoints, largest first: baseline/b (p"), "{text}");
    assert!(text.contains("7 of 9 endpoints of baseline slower together: the whole service, not one route."), "{text}");

    let plain = terminal(&r, TerminalOptions::default());
    let first_rows: Vec<&str> = plain.lines().filter(|l| l.starts_with('│') && !l.contains("Endpoint")).take(2).collect();
    assert!(first_rows[0].contains(" b ") && first_rows[1].contains(" f "), "{plain}");
    let md = markdown(&r, &MarkdownOptions::default());
    let b = md.find("| b | p50 |").expect("b's row");
    let a = md.find("| a | p50 |").expect("a's row");
    assert!(b < a, "b moved most, so it comes before a");
}

/// One slow route out of nine: no "whole service" sentence.
#[test]
fn one_slow_route_is_not_a_whole_service_move() {
    let g = |median, seed| Gen::new(100, 60, median, seed);
    let names = ["a", "b", "c", "d"];
    let base = summary("baseline", 60, names.iter().enumerate().map(|(i, n)| (*n, endpoint(&g(10.0, i as u64)))).collect());
    let head = summary(
        "baseline",
        60,
        names.iter().enumerate().map(|(i, n)| (*n, endpoint(&g(if i == 2 { 20.0 } else { 10.0 }, 100 + i as u64)))).collect(),
    );
    let h = Headline::of(&report(vec![suite_report(Some(base), head, committed())]));
    assert_eq!(h.regressions.len(), 1);
    assert!(h.together.is_empty());
    assert!(!h.sentences().join(" ").contains("together"));
}

/// No baseline of this testbed: no verdict on regressions, exit 0, and the report says which
/// testbeds have one and the two ways forward.
#[test]
fn a_suite_without_a_comparable_baseline_passes_and_says_why() {
    let head = one("baseline", "get", &Gen::new(50, 30, 8.0, 2));
    let source = BaselineSource::NotComparable {
        why: "the baseline was recorded on testbed local-2cpu-epyc-24g, this run is on docker-2cpu-epyc-24g".into(),
        testbed: "docker-2cpu-epyc-24g".into(),
        available: vec!["local-2cpu-epyc-24g".into()],
    };
    let r = report(vec![SuiteReport {
        summary: head,
        comparison: None,
        baseline: source,
        baseline_summary: None,
        confirmation: Confirmation::NotRun,
        stored: None,
    }]);
    assert_eq!(exit_code(&r), 0);
    let h = Headline::of(&r);
    let text = h.sentences().join(" ");
    assert!(text.contains("Nothing was compared with a baseline."), "{text}");
    assert!(text.contains("Not comparable, so no verdict on regressions for baseline"), "{text}");
    assert!(text.contains("Testbeds with a baseline: local-2cpu-epyc-24g."), "{text}");
    assert!(text.contains("--update-baseline") && text.contains("--against origin/main"), "{text}");
    let md = markdown(&r, &MarkdownOptions::default());
    assert!(md.contains("not comparable: no baseline of testbed docker-2cpu-epyc-24g"), "{md}");
    let html = html(&r);
    assert!(html.contains("Not comparable, so no verdict"), "the HTML headline says it too");
}

/// The regressed report, with statement statistics on both sides: the `get` statement 8×
/// slower and its plan moved from an index scan to a sequential scan.
fn regressed_underneath() -> Report {
    use crate::summary::{Statement, Statements, Underneath};
    let mut r = regressed();
    let stmt = |mean: f64, scan: &str| Statement {
        query: "SELECT id FROM items WHERE owner = $1".into(),
        calls: 6000,
        total_ms: mean * 6000.0,
        mean_ms: mean,
        rows: 6000,
        shared_blks_hit: 6000 * 4,
        plan: vec![scan.to_string()],
        seen_under: [("app:get".to_string(), 40)].into(),
        ..Statement::default()
    };
    let with = |s: &mut Summary, st: Statement| {
        let total = st.total_ms;
        s.underneath = Some(Underneath {
            postgres: Some(Statements {
                top: vec![st],
                total_calls: 6000,
                total_exec_ms: total,
                count: 1,
                activity_samples: 40,
                from_measured_start: true,
            }),
            ..Underneath::default()
        });
    };
    let suite = &mut r.suites[0];
    with(suite.baseline_summary.as_mut().unwrap(), stmt(0.3, "Index Scan using items_owner on items"));
    with(&mut suite.summary, stmt(2.4, "Seq Scan on items"));
    r
}

#[test]
fn what_changed_underneath_is_in_all_three_reports_for_a_regressed_suite() {
    let r = regressed_underneath();
    let term = terminal(&r, TerminalOptions::default());
    let lines: Vec<&str> = term.lines().collect();
    let first = lines.iter().position(|l| l.contains("1. statement")).unwrap_or_else(|| panic!("{term}"));
    assert!(lines[first].contains("SELECT id FROM items WHERE owner = $1"), "{term}");
    assert!(term.contains("plan: Index Scan using items_owner on items → Seq Scan on items"), "{term}");
    assert!(term.contains("issued by: get (100%)"), "{term}");
    // Seen under `app:get`: one call per request of get, before and after.
    assert!(lines[first + 1].trim() == "1 → 1 calls per request of get", "{term}");
    let md = markdown(&r, &MarkdownOptions::default());
    let folded = md.split("<summary>baseline: what changed underneath</summary>").nth(1).unwrap_or_else(|| panic!("{md}"));
    assert!(folded.contains("**Index Scan using items\\_owner on items → Seq Scan on items**"), "{folded}");
    let doc = Html::parse_document(&html(&r));
    let open = Selector::parse("details[open]").unwrap();
    let section = doc.select(&open).next().expect("an open section").text().collect::<String>();
    assert!(section.starts_with("what changed underneath") && section.contains("Seq Scan on items"), "{section}");

    // The same suite without statistics in the baseline says why, and nothing underneath moved.
    let mut r = regressed_underneath();
    r.suites[0].baseline_summary.as_mut().unwrap().underneath = None;
    let term = terminal(&r, TerminalOptions::default());
    assert!(term.contains("no statement changed beyond noise") && term.contains("baseline: no statement statistics recorded"), "{term}");
    // A passing suite with nothing underneath shows no section.
    assert!(!terminal(&passing(), TerminalOptions::default()).contains("what changed underneath"));
}

/// [`regressed_underneath`] with a loop of queries added in this run (16 cheap calls per
/// request of get) and Redis called three times per request instead of once.
fn regressed_with_a_loop() -> Report {
    use crate::summary::{RedisCommand, RedisStats, Statement};
    let mut r = regressed_underneath();
    let suite = &mut r.suites[0];
    let item = Statement {
        query: "SELECT name FROM tags WHERE item = $1".into(),
        calls: 16 * 6000,
        total_ms: 0.02 * 16.0 * 6000.0,
        mean_ms: 0.02,
        rows: 16 * 6000,
        shared_blks_hit: 16 * 6000 * 2,
        seen_under: [("app:get".to_string(), 3)].into(),
        ..Statement::default()
    };
    let redis = |calls: u64| RedisStats {
        commands: [("get".to_string(), RedisCommand { calls, usec: calls * 2 })].into(),
        keyspace_hits: 10,
        keyspace_misses: 0,
        from_measured_start: true,
    };
    let head = suite.summary.underneath.as_mut().unwrap();
    let pg = head.postgres.as_mut().unwrap();
    pg.top.push(item);
    pg.count = 2;
    head.redis = Some(redis(36_000));
    suite.baseline_summary.as_mut().unwrap().underneath.as_mut().unwrap().redis = Some(redis(12_000));
    r
}

#[test]
fn a_loop_of_queries_comes_first_in_all_three_reports_with_its_calls_per_request() {
    let r = regressed_with_a_loop();
    let term = terminal(&r, TerminalOptions::default());
    let lines: Vec<&str> = term.lines().collect();
    let first = lines.iter().position(|l| l.contains("1. loop of queries: statement")).unwrap_or_else(|| panic!("{term}"));
    assert!(lines[first].contains("SELECT name FROM tags WHERE item = $1"), "{term}");
    assert_eq!(lines[first + 1].trim(), "0 → 16 calls per request of get", "{term}");
    assert!(term.contains("2. statement") && term.contains("SELECT id FROM items WHERE owner = $1"), "the slower one second: {term}");
    // Redis: 12 000 and 36 000 calls over the suite's 12 000 requests (get and list).
    assert!(term.contains("(1 → 3 calls per request of the suite)"), "{term}");

    let md = markdown(&r, &MarkdownOptions::default());
    let folded = md.split("<summary>baseline: what changed underneath</summary>").nth(1).unwrap_or_else(|| panic!("{md}"));
    assert!(folded.contains("| Calls per request |"), "{folded}");
    let loop_row = folded.lines().find(|l| l.contains("loop of queries")).unwrap_or_else(|| panic!("{folded}"));
    assert!(loop_row.starts_with("| **loop of queries: statement: SELECT name FROM tags WHERE item = $1** |"), "{loop_row}");
    assert!(loop_row.contains("| **0 → 16 calls per request of get** |"), "{loop_row}");
    let loop_at = folded.find("loop of queries").unwrap();
    assert!(loop_at < folded.find("FROM items WHERE").unwrap(), "the loop first: {folded}");
    assert!(folded.contains("1 → 3 calls per request of the suite"), "{folded}");

    let doc = Html::parse_document(&html(&r));
    let open = Selector::parse("details[open]").unwrap();
    let section = doc.select(&open).next().expect("an open section").text().collect::<String>();
    assert!(
        section.contains("loop of queries: statement: SELECT name FROM tags") && section.contains("0 → 16 calls per request of get"),
        "{section}"
    );
}

#[test]
fn calls_per_request_say_whose_requests_and_why_the_whole_suite() {
    use crate::compare::underneath::CallsPerRequest;
    let c = |endpoints: &[&str], base, at_most, head, why: Option<&str>| CallsPerRequest {
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
        suite_because: why.map(str::to_string),
        base,
        base_at_most: at_most,
        head,
    };
    assert_eq!(
        super::underneath::calls_per_request(&c(&["slots"], Some(0.0), false, Some(16.0), None)),
        "0 → 16 calls per request of slots"
    );
    assert_eq!(
        super::underneath::calls_per_request(&c(&["book", "cancel", "slots"], Some(2.0), true, Some(2.5), None)),
        "at most 2 → 2.50 calls per request of book, cancel and slots"
    );
    assert_eq!(
        super::underneath::calls_per_request(&c(
            &[],
            None,
            false,
            Some(0.25),
            Some("never seen running in the samples of pg_stat_activity")
        )),
        "– → 0.25 calls per request of the suite (not told to endpoints: never seen running in the samples of pg_stat_activity)"
    );
}

/// The regressed report, with CPU profiles on both sides: `busy` new in the run (40 samples
/// per 1000 requests), `parse` unchanged, `query` halved (over 10,000 requests a side: enough
/// samples for the changes to be beyond sampling noise).
fn regressed_profile() -> Report {
    use crate::summary::Profile;
    let mut r = regressed();
    let profile = |stacks: &[(&str, u64)]| {
        let stacks: std::collections::BTreeMap<String, u64> = stacks.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        Profile { hz: 99, requests: 10_000, samples: stacks.values().sum(), stacks, ..Profile::default() }
    };
    let suite = &mut r.suites[0];
    suite.baseline_summary.as_mut().unwrap().profile = Some(profile(&[("app;main;parse", 200), ("app;main;query", 100)]));
    suite.summary.profile = Some(profile(&[("app;main;parse", 200), ("app;main;query", 50), ("app;main;track;busy", 400)]));
    r
}

#[test]
fn where_the_app_spent_its_cpu_is_in_all_three_reports_with_its_flame_graph() {
    let r = regressed_profile();
    let term = terminal(&r, TerminalOptions::default());
    let lines: Vec<&str> = term.lines().collect();
    let head = lines.iter().position(|l| l.contains("where the app spent its CPU:")).unwrap_or_else(|| panic!("{term}"));
    assert!(lines[head].contains("303 → 657 ms CPU per 1000 requests (+117%"), "{term}");
    assert_eq!(lines[head + 1].trim(), "1. busy: 0.00 → 404 ms/1k req (+404 ms, new)", "{term}");
    assert_eq!(lines[head + 2].trim(), "2. query: 101 → 50.5 ms/1k req (-50.5 ms, -50%)", "{term}");
    assert!(lines[head + 3].contains("baseline.profile-diff.svg"), "{term}");
    let md = markdown(&r, &MarkdownOptions::default());
    let folded = md.split("<summary>baseline: where the app spent its CPU</summary>").nth(1).unwrap_or_else(|| panic!("{md}"));
    assert!(folded.contains("| busy | 0.00 ms/1k req | 404 ms/1k req | **+404 ms/1k req (new)** |"), "{folded}");
    assert!(folded.contains("baseline.profile-diff.svg"), "{folded}");
    let page = html(&r);
    assert!(page.contains("<a href=\"baseline.profile-diff.svg\">"), "the HTML report links the flame graph");
    let graphs = flame_graphs(&r);
    assert_eq!(graphs.len(), 1);
    assert_eq!(graphs[0].0, "baseline.profile-diff.svg");
    let svg = String::from_utf8(graphs[0].1.clone()).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("busy"), "{svg}");

    // A baseline without a profile: one line says why and how to get one; no flame graph.
    let mut r = regressed_profile();
    r.suites[0].baseline_summary.as_mut().unwrap().profile = Some(crate::summary::Profile::unavailable("perf is not installed"));
    let term = terminal(&r, TerminalOptions::default());
    assert!(term.contains("No CPU profile to compare: the baseline has no CPU profile: perf is not installed"), "{term}");
    assert!(term.contains("perf_event_paranoid"), "{term}");
    assert!(flame_graphs(&r).is_empty());
    // Neither side profiled (older summaries): no section.
    assert!(!terminal(&regressed(), TerminalOptions::default()).contains("where the app spent its CPU"));
}
