//! The history on synthetic nights made with the comparison's testkit (consistent histograms,
//! figures and windows from one simulation per endpoint and night).

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::compare::Metric;
use crate::compare::testkit::{Gen, endpoint, summary};
use crate::plan::CompareRules;
use crate::render::TerminalOptions;
use crate::summary::Summary;

use super::*;

/// The night (1-based) from which `book` is 50% slower.
const STEP_NIGHT: usize = 17;
const NIGHTS: usize = 32;

fn sha(night: usize) -> String {
    format!("{:040x}", 0x00c0_ffee_0000_u64 + night as u64 * 7919)
}

fn date(night: usize) -> String {
    let first: jiff::Timestamp = "2026-10-01T02:00:00Z".parse().unwrap();
    first.checked_add(jiff::SignedDuration::from_hours(24 * night as i64)).unwrap().to_string()
}

/// Night `n` (1-based): three endpoints, each night a little faster or slower as a whole (a
/// CI machine's day-to-day drift, up to about ±10%), `book` 50% slower from `step` on.
fn night_with(n: usize, step: Option<(usize, f64)>, suite_hash: &str) -> Summary {
    let mut rng = StdRng::seed_from_u64(1000 + n as u64);
    let mut drift = || 1.0 + (rng.random::<f64>() - 0.5) * 0.16;
    let book = 20.0 * step.filter(|(s, _)| n >= *s).map_or(1.0, |(_, f)| f);
    let seed = n as u64 * 10;
    let mut s = summary(
        "baseline",
        60,
        vec![
            ("get", endpoint(&Gen::new(50, 60, 8.0 * drift(), seed + 1))),
            ("book", endpoint(&Gen::new(20, 60, book * drift(), seed + 2))),
            ("list", endpoint(&Gen::new(40, 60, 4.0 * drift(), seed + 3))),
        ],
    );
    s.run.git.sha = Some(sha(n));
    s.run.started_at = date(n);
    s.run.suite_hash = Some(suite_hash.to_string());
    s
}

fn night(n: usize) -> Summary {
    night_with(n, Some((STEP_NIGHT, 1.5)), "5u17e")
}

fn records(summaries: impl IntoIterator<Item = Summary>) -> Vec<NightRecord> {
    summaries.into_iter().map(|s| NightRecord::from_summaries(&[s]).unwrap()).collect()
}

fn rules() -> CompareRules {
    CompareRules::default()
}

fn trend<'a>(ts: &'a [Trend], endpoint: &str) -> &'a Trend {
    ts.iter().find(|t| t.endpoint == endpoint).unwrap_or_else(|| panic!("no trend of {endpoint}"))
}

/// Writes one folder of summaries per night, as a nightly job leaves them.
fn write_nights(root: &Path, nights: impl IntoIterator<Item = Summary>) -> Vec<PathBuf> {
    nights
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let dir = root.join(format!("night-{:02}", i + 1));
            crate::summary::write_atomic(&dir.join(format!("{}.json", s.suite)), &s).unwrap();
            dir
        })
        .collect()
}

#[test]
fn a_step_at_night_17_is_marked_at_its_commit_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = write_nights(&tmp.path().join("summaries"), (1..=NIGHTS).map(night));
    let history = tmp.path().join("history");
    for d in &dirs {
        let added = append(&history, d).unwrap();
        assert!(!added.replaced);
    }
    // Appending a night again replaces its file.
    assert!(append(&history, &dirs[3]).unwrap().replaced);
    let loaded = load(&history).unwrap();
    assert_eq!(loaded.len(), NIGHTS);
    assert_eq!(loaded[STEP_NIGHT - 1].sha, sha(STEP_NIGHT));

    let ts = trends(&loaded, &rules(), 30);
    assert_eq!(ts.len(), 3);
    let book = trend(&ts, "book");
    assert_eq!(book.nights.len(), 30);
    assert_eq!(book.earlier_nights, 2);
    assert_eq!(book.changes.len(), 1, "{:#?}", book.changes);
    let c = &book.changes[0];
    assert_eq!(c.sha, sha(STEP_NIGHT));
    assert_eq!(c.direction, Direction::Regression);
    assert_eq!(book.nights[c.night].sha, sha(STEP_NIGHT));
    assert!(c.moves.iter().any(|m| m.metric == Metric::P95), "{c:#?}");
    let p95 = c.moves.iter().find(|m| m.metric == Metric::P95).unwrap();
    assert!(p95.delta_rel.unwrap() > 0.3, "{p95:?}");
    assert!(p95.p_value.unwrap() <= 0.05);
    for t in &ts {
        assert!(t.pending.is_none(), "{}: {:?}", t.endpoint, t.pending);
        assert!(t.definition_changes.is_empty());
        if t.endpoint != "book" {
            assert!(t.changes.is_empty(), "{}: {:#?}", t.endpoint, t.changes);
        }
    }

    // The site: the endpoint's page marks the step and links its commit.
    let url = SiteOptions::github("acme/shop").unwrap();
    let pages = site(&ts, &SiteOptions { commit_url: Some(url), last: 30 });
    assert_eq!(pages.len(), 4);
    let page = |p: &str| pages.iter().find(|x| x.path == Path::new(p)).unwrap_or_else(|| panic!("no page {p}"));
    let book_page = &page("local-2cpu-test-8g/baseline/book.html").html;
    let link = format!("<a href=\"https://github.com/acme/shop/commit/{}\">", sha(STEP_NIGHT));
    let changes = book_page.split("<h2>Change points</h2>").nth(1).expect("a change point table");
    let changes = changes.split("</table>").next().unwrap();
    assert!(changes.contains(&link), "{changes}");
    assert!(changes.contains("regression"), "{changes}");
    assert_eq!(changes.matches("<tr>").count(), 2, "one change point: {changes}");
    assert!(book_page.contains("1 regression and 0 improvements"), "{book_page}");
    assert!(book_page.matches("<svg").count() == 2);
    let index = &page("index.html").html;
    let regs = index.split("<h2>Regressions</h2>").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(regs.contains(&link) && regs.contains("baseline/book.html"), "{regs}");
    assert_eq!(regs.matches("<tr>").count(), 2, "{regs}");
    for other in ["get", "list"] {
        let html = &page(&format!("local-2cpu-test-8g/baseline/{other}.html")).html;
        assert!(html.contains("No change point in these nights."), "{other}");
        assert!(!html.contains("<h2>Change points</h2>"));
    }
    let dir = tmp.path().join("site");
    write_site(&dir, &pages).unwrap();
    assert!(dir.join("local-2cpu-test-8g/baseline/book.html").is_file());

    // The terminal says the same.
    let text = terminal(&ts, Some("https://github.com/acme/shop/commit/{sha}"), TerminalOptions::default());
    let line = format!(
        "Regression: baseline/book on {} at commit https://github.com/acme/shop/commit/{}: ",
        &date(STEP_NIGHT)[..10],
        sha(STEP_NIGHT)
    );
    assert!(text.contains(&line), "{text}");
    assert_eq!(text.matches("Regression:").count(), 1, "{text}");
    assert!(text.contains("30 nights") && text.contains("1 regression, 0 improvements"), "{text}");
}

#[test]
fn day_to_day_noise_alone_is_never_a_change() {
    for run in 0..3 {
        let nights: Vec<Summary> = (1..=30)
            .map(|n| {
                let mut s = night_with(n + run * 100, None, "h");
                s.run.started_at = date(n);
                s
            })
            .collect();
        let ts = trends(&records(nights), &rules(), 30);
        for t in &ts {
            assert!(t.changes.is_empty() && t.pending.is_none(), "run {run} {}: {:#?} {:#?}", t.endpoint, t.changes, t.pending);
        }
    }
}

#[test]
fn one_or_two_slow_nights_are_not_a_change() {
    for slow in [vec![12], vec![12, 13]] {
        let nights: Vec<Summary> = (1..=20).map(|n| night_with(n, slow.contains(&n).then_some((n, 1.6)), "h")).collect();
        let ts = trends(&records(nights), &rules(), 30);
        let book = trend(&ts, "book");
        assert!(book.changes.is_empty(), "slow nights {slow:?}: {:#?}", book.changes);
    }
}

#[test]
fn the_newest_nights_wait_for_confirmation() {
    // Slower from night 19 of 20: beyond the threshold, two nights short of confirmation.
    let nights: Vec<Summary> = (1..=20).map(|n| night_with(n, Some((19, 1.5)), "h")).collect();
    let ts = trends(&records(nights), &rules(), 30);
    let book = trend(&ts, "book");
    assert!(book.changes.is_empty(), "{:#?}", book.changes);
    let p = book.pending.as_ref().expect("pending");
    assert_eq!((p.sha.as_str(), p.direction, p.nights_needed), (sha(19).as_str(), Direction::Regression, 1));
    assert!(p.moves.iter().any(|m| m.metric == Metric::P95));
    let text = terminal(&ts, None, TerminalOptions::default());
    assert!(text.contains("Awaiting confirmation: baseline/book"), "{text}");
}

#[test]
fn an_improvement_is_marked_as_one_and_a_new_suite_definition_restarts_the_reference() {
    let nights: Vec<Summary> = (1..=20).map(|n| night_with(n, Some((10, 0.5)), "h")).collect();
    let ts = trends(&records(nights), &rules(), 30);
    let book = trend(&ts, "book");
    assert_eq!(book.changes.len(), 1, "{:#?}", book.changes);
    assert_eq!((book.changes[0].sha.clone(), book.changes[0].direction), (sha(10), Direction::Improvement));

    // The same step, but the suite was redefined that night: not comparable, not a change.
    let nights: Vec<Summary> = (1..=20).map(|n| night_with(n, Some((10, 1.5)), if n >= 10 { "new" } else { "old" })).collect();
    let ts = trends(&records(nights), &rules(), 30);
    for t in &ts {
        assert!(t.changes.is_empty(), "{}: {:#?}", t.endpoint, t.changes);
        assert_eq!(t.definition_changes, vec![9]);
    }
}

#[test]
fn invalid_nights_are_shown_but_never_compared() {
    let nights: Vec<Summary> = (1..=20)
        .map(|n| {
            let mut s = night_with(n, (n == 12 || n == 13 || n == 14).then_some((n, 2.0)), "h");
            s.valid = !(12..=14).contains(&n);
            s
        })
        .collect();
    let ts = trends(&records(nights), &rules(), 30);
    let book = trend(&ts, "book");
    assert!(book.changes.is_empty(), "{:#?}", book.changes);
    assert_eq!(book.nights.iter().filter(|n| !n.valid).count(), 3);
    let pages = site(&ts, &SiteOptions { commit_url: None, last: 30 });
    assert!(pages.iter().any(|p| p.html.contains("invalid run (not compared)")));
}

#[test]
fn a_record_is_keyed_by_commit_date_and_testbed() {
    let mut other = night(2);
    let r = NightRecord::from_summaries(&[night(1)]).unwrap();
    assert_eq!(r.sha, sha(1));
    assert_eq!(r.date, "2026-10-02T02:00:00Z");
    assert_eq!(r.testbed, "local-2cpu-test-8g");
    assert_eq!(r.file_name(), format!("2026-10-02T020000Z-{}-local-2cpu-test-8g.json", &sha(1)[..12]));
    assert_eq!(r.suites["baseline"].endpoints.len(), 3);
    let e = &r.suites["baseline"].endpoints["book"];
    assert!(e.histogram.starts_with("HISTFAAA") && e.p95.is_some() && e.requests == 1200);
    r.validate().unwrap();

    assert_eq!(NightRecord::from_summaries(&[]), Err(RecordError::Empty));
    assert!(matches!(NightRecord::from_summaries(&[night(1), other.clone()]), Err(RecordError::MixedCommits(..))));
    other.run.git.sha = None;
    assert!(matches!(NightRecord::from_summaries(&[other]), Err(RecordError::NoSha { .. })));
    assert!(matches!(NightRecord::from_summaries(&[night(1), night(1)]), Err(RecordError::DuplicateSuite(_))));

    // Two suites: the night starts with the earlier one.
    let mut later = night(1);
    later.suite = "concurrent".into();
    later.run.started_at = "2026-10-02T02:05:00.5Z".into();
    let r2 = NightRecord::from_summaries(&[later, night(1)]).unwrap();
    assert_eq!((r2.date.as_str(), r2.suites.len()), ("2026-10-02T02:00:00Z", 2));
}

#[test]
fn a_bad_record_is_an_error_naming_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let good = NightRecord::from_summaries(&[night(1)]).unwrap();
    std::fs::write(tmp.path().join(good.file_name()), good.to_bytes()).unwrap();
    std::fs::write(tmp.path().join("README.md"), "not a record").unwrap();
    std::fs::write(tmp.path().join(".perf-x.tmp"), "half").unwrap();
    assert_eq!(load(tmp.path()).unwrap(), vec![good.clone()]);
    assert!(load(&tmp.path().join("absent")).unwrap().is_empty());

    let cases = [
        ("a.json", "{ oops".to_string(), "a.json:1:3: not a history record"),
        (
            "b.json",
            String::from_utf8(good.to_bytes()).unwrap().replace("\"requests\":1200", "\"requests\":\"many\""),
            "field `suites.baseline.endpoints.book.requests`",
        ),
        (
            "c.json",
            String::from_utf8(good.to_bytes()).unwrap().replace("\"record_version\":1", "\"record_version\":9"),
            "record_version 9 is newer than this build understands",
        ),
        ("d.json", String::from_utf8(good.to_bytes()).unwrap().replace("\"date\":\"2026", "\"date\":\"yesterday"), "date: \"yesterday"),
        (
            "e.json",
            String::from_utf8(good.to_bytes()).unwrap().replacen("\"histogram\":\"HISTFAAA", "\"histogram\":\"!!", 1),
            ".histogram: histogram is not valid base64",
        ),
    ];
    for (name, text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let msg = load(dir.path()).unwrap_err().to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(want), "{name}: {msg}");
    }
    // A summaries folder that is not one.
    let empty = tempfile::tempdir().unwrap();
    assert!(append(tmp.path(), empty.path()).unwrap_err().to_string().contains("no summaries (*.json) in this folder"));
    // A gate's results folder: the summaries beside the files written for other tools
    // (Bencher's bmf.json, github-action-benchmark's benchmark.json), which are not summaries.
    let results = tempfile::tempdir().unwrap();
    crate::summary::write_atomic(&results.path().join("baseline.json"), &night(1)).unwrap();
    std::fs::write(results.path().join("bmf.json"), r#"{"baseline/book":{"latency":{"value":1.0}}}"#).unwrap();
    std::fs::write(results.path().join("benchmark.json"), r#"[{"name":"baseline/book p95","unit":"ms","value":1.0}]"#).unwrap();
    let added = append(tmp.path(), results.path()).unwrap();
    assert_eq!(added.record.suites.keys().collect::<Vec<_>>(), ["baseline"]);
    // A truncated summary is still an error naming it.
    std::fs::write(results.path().join("concurrent.json"), r#"{"schema_version":1,"suite":"#).unwrap();
    let err = append(tmp.path(), results.path()).unwrap_err().to_string();
    assert!(err.contains("concurrent.json"), "{err}");
}

/// Sizes quoted in `record.rs`: `cargo nextest run -p perf --lib record_size -- --nocapture`.
#[test]
fn record_size_of_the_reference_plan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut total = 0;
    for file in [
        "fixtures/summaries/v1-baseline-quick.json",
        "results/baseline/local-2cpu-epyc-24g-link500us/baseline.json",
        "results/baseline/local-2cpu-epyc-24g-link500us/concurrent.json",
    ] {
        let mut s = crate::summary::read(&root.join(file)).unwrap();
        s.run.git.sha.get_or_insert_with(|| "0".repeat(40));
        let r = NightRecord::from_summaries(std::slice::from_ref(&s)).unwrap();
        let size = r.to_bytes().len();
        let summary = std::fs::metadata(root.join(file)).unwrap().len();
        println!("{file}: {} endpoints, record {size} bytes (summary {summary} bytes)", s.endpoints.len());
        assert!(size < 900 * s.endpoints.len() + 400, "{file}: {size} bytes");
        total += size;
    }
    println!("total {total} bytes");
}

#[test]
fn sparklines_scale_between_the_smallest_and_largest() {
    assert_eq!(terminal::sparkline(&[1.0, 2.0, 3.0]), "▁▅█");
    assert_eq!(terminal::sparkline(&[2.0, 2.0]), "▄▄");
    assert_eq!(terminal::sparkline(&[]), "");
    assert_eq!(terminal(&[], None, TerminalOptions::default()), "History: no nights recorded yet.\n");
}

#[test]
fn the_cheap_prefilter_changes_nothing() {
    let mut cases: Vec<Vec<Summary>> = vec![(1..=NIGHTS).map(night).collect()];
    cases.push((1..=20).map(|n| night_with(n, Some((10, 0.5)), "h")).collect());
    cases.push((1..=20).map(|n| night_with(n, [12, 13].contains(&n).then_some((n, 1.6)), "h")).collect());
    cases.push((1..=20).map(|n| night_with(n, Some((10, 1.25)), "h")).collect());
    for (i, nights) in cases.into_iter().enumerate() {
        for (endpoint, _, same) in super::trend::changes_without_prefilter(&records(nights), &rules()) {
            assert!(same, "case {i}, {endpoint}");
        }
    }
}
