//! The export formats checked against their real references: Locust's own CSV files
//! (`fixtures/locust/`, from a real Locust run), a JUnit XML reader (`junit-parser`), and the
//! documented shapes of Bencher's BMF and github-action-benchmark's custom format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::compare::compare_suite;
use crate::compare::testkit::{Gen, endpoint, summary};
use crate::plan::CompareRules;
use crate::summary::{Check, SloResult, Summary};
use crate::verdict::{BaselineSource, Confirmation, Report, RunFacts, SuiteReport};

use super::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The real summary of a quick `baseline` run.
fn real_summary() -> Summary {
    crate::summary::read(&repo().join("fixtures/summaries/v1-baseline-quick.json")).expect("fixture summary")
}

fn suite_report(base: Option<Summary>, head: Summary, baseline: BaselineSource) -> SuiteReport {
    let comparison = Some(compare_suite(base.as_ref(), &head, &CompareRules::default()));
    SuiteReport { summary: head, comparison, baseline, baseline_summary: base, confirmation: Confirmation::NotRun, stored: None }
}

fn report(suites: Vec<SuiteReport>) -> Report {
    Report { facts: RunFacts::from_summary(&suites[0].summary), suites, invalid_reasons: Vec::new() }
}

/// The real summary with no baseline.
fn real_report() -> Report {
    report(vec![suite_report(None, real_summary(), BaselineSource::None)])
}

/// `get` 30% slower than its baseline next to an unchanged `list`; one SLO breaks.
fn regressed() -> Report {
    let g = |median, seed| Gen::new(100, 60, median, seed);
    let base = summary("baseline", 60, vec![("get", endpoint(&g(10.0, 1))), ("list", endpoint(&g(5.0, 2)))]);
    let mut head = summary("baseline", 60, vec![("get", endpoint(&g(13.0, 3))), ("list", endpoint(&g(5.0, 4)))]);
    let p95 = head.endpoints["get"].latency_ms.p95.unwrap();
    head.slo = vec![
        SloResult { endpoint: "get".into(), metric: "p95".into(), threshold: 15.0, actual: Some(p95), passed: p95 <= 15.0, reason: None },
        SloResult { endpoint: "list".into(), metric: "error_rate".into(), threshold: 0.01, actual: Some(0.0), passed: true, reason: None },
    ];
    let committed = BaselineSource::Committed { path: "results/baseline/baseline.json".into() };
    report(vec![suite_report(Some(base), head, committed)])
}

// ---------------------------------------------------------------- Locust CSV

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().from_reader(bytes)
}

fn header_of(bytes: &[u8]) -> Vec<String> {
    csv_reader(bytes).headers().expect("a header row").iter().map(str::to_string).collect()
}

/// The first line, its terminator included.
fn first_line(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|b| *b == b'\n').expect("a line") + 1;
    &bytes[..end]
}

fn locust_fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("fixtures/locust").join(name)).unwrap_or_else(|e| panic!("fixtures/locust/{name}: {e}"))
}

/// Rows as maps from Locust's column names to the fields.
fn rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut r = csv_reader(bytes);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records().map(|rec| header.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

fn f(row: &BTreeMap<String, String>, column: &str) -> f64 {
    let v = &row[column];
    v.parse().unwrap_or_else(|e| panic!("{column} = {v:?} in {row:?}: {e}"))
}

#[test]
fn locust_headers_equal_locusts_own_column_for_column() {
    let files = locust::files(&real_summary(), &Options::default()).unwrap();
    let theirs = ["locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"];
    for ((suffix, ours), fixture) in files.iter().zip(theirs) {
        let locust = locust_fixture(fixture);
        assert!(fixture.ends_with(suffix), "{fixture} vs {suffix}");
        // Column for column, and byte for byte, terminator included.
        assert_eq!(header_of(ours), header_of(&locust), "{suffix}");
        assert_eq!(first_line(ours), first_line(&locust), "{suffix}");
    }
    assert_eq!(header_of(&locust_fixture("locust_stats.csv")), locust::STATS_HEADER);
    assert_eq!(header_of(&locust_fixture("locust_stats_history.csv")), locust::HISTORY_HEADER);
    assert_eq!(header_of(&locust_fixture("locust_failures.csv")), locust::FAILURES_HEADER);
}

#[test]
fn locust_stats_read_back_with_a_csv_reader() {
    let s = real_summary();
    let bytes = locust::stats_csv(&s, &Options::default()).unwrap();
    let rows = rows(&bytes);
    assert_eq!(rows.len(), s.endpoints.len() + 1);
    let (last, endpoints) = rows.split_last().unwrap();
    // Locust's order: endpoints by name, then the Aggregated row with no Type.
    let names: Vec<&str> = endpoints.iter().map(|r| r["Name"].as_str()).collect();
    assert_eq!(names, s.endpoints.keys().map(String::as_str).collect::<Vec<_>>());
    assert_eq!((last["Type"].as_str(), last["Name"].as_str()), ("", locust::AGGREGATED));

    for row in endpoints {
        let e = &s.endpoints[&row["Name"]];
        assert_eq!(row["Type"], locust::UNKNOWN_METHOD);
        assert_eq!(f(row, "Request Count"), e.requests as f64);
        assert_eq!(f(row, "Failure Count"), e.errors.total as f64);
        assert_eq!(f(row, "Median Response Time"), e.latency_ms.p50.unwrap());
        assert_eq!(f(row, "50%"), e.latency_ms.p50.unwrap());
        assert_eq!(f(row, "95%"), e.latency_ms.p95.unwrap());
        assert_eq!(f(row, "99%"), e.latency_ms.p99.unwrap());
        assert_eq!(f(row, "Max Response Time"), e.latency_ms.max.unwrap());
        assert_eq!(f(row, "100%"), e.latency_ms.max.unwrap());
        assert!((f(row, "Average Response Time") - e.latency_ms.mean.unwrap()).abs() < 0.001);
        assert!((f(row, "Average Content Size") - e.bytes_received as f64 / e.requests as f64).abs() < 1e-9);
        assert!((f(row, "Requests/s") - e.rps).abs() < 1e-9);
        assert_eq!(f(row, "Failures/s"), 0.0);
        let min = f(row, "Min Response Time");
        assert!(min > 0.0 && min <= f(row, "Median Response Time"), "{row:?}");
        // Every percentile column parses and they never go down.
        let p: Vec<f64> = locust::STATS_HEADER[11..].iter().map(|c| f(row, c)).collect();
        assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
    }

    // The Aggregated row sums the endpoints.
    let sum = |c: &str| endpoints.iter().map(|r| f(r, c)).sum::<f64>();
    assert_eq!(f(last, "Request Count"), sum("Request Count"));
    assert_eq!(f(last, "Request Count"), s.endpoints.values().map(|e| e.requests).sum::<u64>() as f64);
    assert_eq!(f(last, "Failure Count"), sum("Failure Count"));
    assert!((f(last, "Requests/s") - sum("Requests/s")).abs() < 1e-9);
    // Its response times are the merged histograms': within the endpoints' range.
    let max = endpoints.iter().map(|r| f(r, "Max Response Time")).fold(0.0, f64::max);
    let min = endpoints.iter().map(|r| f(r, "Min Response Time")).fold(f64::INFINITY, f64::min);
    assert_eq!(f(last, "Max Response Time"), max);
    assert_eq!(f(last, "Min Response Time"), min);
    let lo = endpoints.iter().map(|r| f(r, "Median Response Time")).fold(f64::INFINITY, f64::min);
    let hi = endpoints.iter().map(|r| f(r, "Median Response Time")).fold(0.0, f64::max);
    assert!((lo..=hi).contains(&f(last, "Median Response Time")));
    let bytes: u64 = s.endpoints.values().map(|e| e.bytes_received).sum();
    assert!((f(last, "Average Content Size") - bytes as f64 / f(last, "Request Count")).abs() < 1e-9);
}

#[test]
fn locust_rows_have_as_many_fields_as_locusts_rows() {
    // Readers that index columns by position need every row as wide as Locust's.
    let files = locust::files(&real_summary(), &Options::default()).unwrap();
    for (suffix, bytes) in &files {
        let width = header_of(bytes).len();
        for rec in csv_reader(bytes).records() {
            assert_eq!(rec.unwrap().len(), width, "{suffix}");
        }
    }
    // And Locust's own data rows, which our parsing relies on, are as wide as its headers.
    for fixture in ["locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"] {
        let bytes = locust_fixture(fixture);
        let width = header_of(&bytes).len();
        assert!(csv_reader(&bytes).records().all(|r| r.unwrap().len() == width), "{fixture}");
    }
}

#[test]
fn locust_history_has_one_row_per_endpoint_and_second() {
    let s = real_summary();
    let bytes = locust::history_csv(&s, &Options::default()).unwrap();
    let rows = rows(&bytes);
    assert_eq!(rows.len(), s.windows.len() * (s.endpoints.len() + 1));
    let start = s.run.started_at.parse::<jiff::Timestamp>().unwrap().as_second();
    for (i, second) in rows.chunks(s.endpoints.len() + 1).enumerate() {
        let w = &s.windows[i];
        let aggregated = second.last().unwrap();
        assert_eq!(aggregated["Name"], locust::AGGREGATED);
        for row in second {
            // The end of the second, in Unix seconds, as Locust stamps its rows.
            assert_eq!(f(row, "Timestamp"), (start + i64::from(w.t) + 1) as f64);
            assert_eq!(f(row, "User Count"), f64::from(w.active_vus));
        }
        assert_eq!(f(aggregated, "Requests/s"), w.requests as f64);
        assert_eq!(f(aggregated, "50%"), w.p50.unwrap());
        assert_eq!(f(aggregated, "99%"), w.p99.unwrap());
        // Not kept per second: empty, not made up.
        assert_eq!(aggregated["66%"], "");
        assert_eq!(aggregated["Total Median Response Time"], "");
        // Locust's number format for the current rates.
        assert!(aggregated["Requests/s"].ends_with(".000000"), "{:?}", aggregated["Requests/s"]);
    }
    // The running totals end at each endpoint's request count.
    let last_second = &rows[rows.len() - s.endpoints.len() - 1..];
    for row in &last_second[..s.endpoints.len()] {
        assert_eq!(f(row, "Total Request Count"), s.endpoints[&row["Name"]].requests as f64);
        assert_eq!(f(row, "Total Failure Count"), 0.0);
    }
    let total: u64 = s.windows.iter().map(|w| w.requests).sum();
    assert_eq!(f(last_second.last().unwrap(), "Total Request Count"), total as f64);
}

/// The real summary with failures: `book` 3 × 503 and 2 timeouts in seconds 2 and 5,
/// `provider` 4 connection failures in seconds 3 and 7.
fn failing_summary() -> Summary {
    let mut s = real_summary();
    let e = s.endpoints.get_mut("book").unwrap();
    e.errors.by_kind = BTreeMap::from([("status".into(), 3), ("timeout".into(), 2)]);
    e.errors.by_status = BTreeMap::from([("503".into(), 3)]);
    e.errors.total = 5;
    e.windows[2].errors = 2;
    e.windows[5].errors = 3;
    let p = s.endpoints.get_mut("provider").unwrap();
    p.errors.by_kind = BTreeMap::from([("connect".into(), 4)]);
    p.errors.total = 4;
    p.windows[3].errors = 1;
    p.windows[7].errors = 3;
    // The whole suite's seconds count them too.
    for (i, n) in [(2, 2), (3, 1), (5, 3), (7, 3)] {
        s.windows[i].errors += n;
    }
    s
}

#[test]
fn locust_failures_add_up_to_the_failure_count() {
    let s = failing_summary();
    let options = Options { methods: BTreeMap::from([("book".to_string(), "POST".to_string())]) };
    let rows = rows(&locust::failures_csv(&s, &options).unwrap());
    let got: Vec<(&str, &str, &str, f64)> =
        rows.iter().map(|r| (r["Method"].as_str(), r["Name"].as_str(), r["Error"].as_str(), f(r, "Occurrences"))).collect();
    assert_eq!(
        got,
        [
            ("POST", "book", "unexpected status 503", 3.0),
            ("POST", "book", "timeout", 2.0),
            (locust::UNKNOWN_METHOD, "provider", "connect", 4.0),
        ]
    );
    // Failing in two ways, the seconds cannot be told apart per kind: left empty.
    assert_eq!((rows[0]["First Seen"].as_str(), rows[0]["Last Seen"].as_str()), ("", ""));
    // One way: the first and last failing second, in the format of Locust's own file.
    let start = s.run.started_at.parse::<jiff::Timestamp>().unwrap().as_second();
    let at = |t: i64| jiff::Timestamp::from_second(start + t).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!((rows[2]["First Seen"].clone(), rows[2]["Last Seen"].clone()), (at(3), at(7)));
    let locust = rows_of_fixture("locust_failures.csv");
    let theirs = &locust[0]["First Seen"];
    assert_eq!(theirs.len(), rows[2]["First Seen"].len(), "{theirs}");
    assert!(jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%SZ", theirs).is_ok(), "{theirs}");

    // The stats file agrees with the failures file.
    let stats = self::rows(&locust::stats_csv(&s, &options).unwrap());
    let book = stats.iter().find(|r| r["Name"] == "book").unwrap();
    assert_eq!((book["Type"].as_str(), f(book, "Failure Count")), ("POST", 5.0));
    assert!(f(book, "Failures/s") > 0.0);
    assert_eq!(f(stats.last().unwrap(), "Failure Count"), 9.0);
}

fn rows_of_fixture(name: &str) -> Vec<BTreeMap<String, String>> {
    rows(&locust_fixture(name))
}

#[test]
fn locust_writes_na_for_an_endpoint_without_timed_responses() {
    let mut s = summary("baseline", 10, vec![("down", endpoint(&Gen::new(10, 10, 5.0, 1).errors(1.0)))]);
    s.windows = Vec::new();
    let rows = rows(&locust::stats_csv(&s, &Options::default()).unwrap());
    for row in &rows {
        assert_eq!(f(row, "Request Count"), 100.0);
        assert_eq!(f(row, "Failure Count"), 100.0);
        // Locust's zeros and N/A for "no response time", not made-up latencies.
        assert_eq!((row["Median Response Time"].as_str(), row["Max Response Time"].as_str()), ("0", "0"));
        assert!(locust::STATS_HEADER[11..].iter().all(|c| row[*c] == "N/A"), "{row:?}");
    }
    let history = self::rows(&locust::history_csv(&s, &Options::default()).unwrap());
    assert_eq!(history.len(), 20);
    assert_eq!(history[0]["50%"], "N/A");
    assert_eq!(history[1]["50%"], "N/A");
    // Without whole-suite windows, the Aggregated rows add the endpoints up.
    assert_eq!(f(&history[1], "Failures/s"), 10.0);
}

#[test]
fn methods_come_from_the_plan() {
    let plan = crate::plan::load(&repo().join("perf.toml")).unwrap().compile(&Default::default()).unwrap();
    let options = Options::from_plan(&plan);
    assert_eq!(options.methods["book"], "POST");
    assert_eq!(options.methods["cancel"], "DELETE");
    assert_eq!(options.methods["provider"], "GET");
    let rows = rows(&locust::stats_csv(&real_summary(), &options).unwrap());
    let types: BTreeMap<&str, &str> = rows.iter().map(|r| (r["Name"].as_str(), r["Type"].as_str())).collect();
    assert_eq!((types["login"], types["slots"], types[locust::AGGREGATED]), ("POST", "GET", ""));
}

/// Runs `fixtures/readers/<script>` with python3 and returns the JSON it prints.
fn python(script: &str, args: &[&Path]) -> serde_json::Value {
    let path = repo().join("fixtures/readers").join(script);
    let out = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 {}: {e} (the export tests need python3)", path.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python3 {script} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("python3 {script}: {e}: {stderr}"))
}

/// The row of `rows` (Python's reading) named `name`.
fn py_row<'a>(rows: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rows.as_array().unwrap().iter().find(|r| r["Name"] == name).unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn locust_files_read_back_with_pythons_csv_module() {
    // Written as the gate writes them, then read as a notebook written for Locust reads them.
    let s = failing_summary();
    let down = summary("down", 10, vec![("down", endpoint(&Gen::new(10, 10, 5.0, 1).errors(1.0)))]);
    let r = report(vec![suite_report(None, s.clone(), BaselineSource::None), suite_report(None, down, BaselineSource::None)]);
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::plan::load(&repo().join("perf.toml")).unwrap().compile(&Default::default()).unwrap();
    write_all(dir.path(), &r, &Options::from_plan(&plan)).unwrap();
    let fixtures = repo().join("fixtures/locust");
    // The reader also checks that each header is Locust's own and every row as wide.
    let py = python("locust_csv.py", &[dir.path(), Path::new("baseline"), &fixtures]);

    let stats = &py["stats"];
    assert_eq!(stats.as_array().unwrap().len(), s.endpoints.len() + 1);
    for (name, e) in &s.endpoints {
        let row = py_row(stats, name);
        assert_eq!(row["Type"], plan.request(name).unwrap().method.as_str());
        assert_eq!(row["Request Count"], e.requests as f64);
        assert_eq!(row["Failure Count"], e.errors.total as f64);
        assert_eq!(row["Median Response Time"], e.latency_ms.p50.unwrap());
        assert_eq!(row["95%"], e.latency_ms.p95.unwrap());
        assert_eq!(row["99%"], e.latency_ms.p99.unwrap());
        assert_eq!(row["100%"], e.latency_ms.max.unwrap());
        assert!((row["Requests/s"].as_f64().unwrap() - e.rps).abs() < 1e-9, "{row}");
        let failures_per_s = e.rps * e.errors.total as f64 / e.requests as f64;
        assert!((row["Failures/s"].as_f64().unwrap() - failures_per_s).abs() < 1e-9, "{row}");
    }
    let all = py_row(stats, locust::AGGREGATED);
    assert_eq!(all["Type"], "");
    assert_eq!(all["Request Count"], s.endpoints.values().map(|e| e.requests).sum::<u64>() as f64);
    assert_eq!(all["Failure Count"], 9.0);

    // History: per second, the endpoints then Aggregated; the running totals end at the counts.
    let history = py["stats_history"].as_array().unwrap();
    assert_eq!(history.len(), s.windows.len() * (s.endpoints.len() + 1));
    let last = &history[history.len() - s.endpoints.len() - 1..];
    for row in &last[..s.endpoints.len()] {
        let e = &s.endpoints[row["Name"].as_str().unwrap()];
        assert_eq!(row["Total Request Count"], e.requests as f64, "{row}");
        assert_eq!(row["Total Failure Count"], e.errors.total as f64, "{row}");
        // Not kept per second: read as missing (pandas' NaN), not as a made-up number.
        assert!(row["66%"].is_null() && row["Total Median Response Time"].is_null(), "{row}");
    }

    assert_eq!(last[s.endpoints.len()]["Name"], locust::AGGREGATED);
    assert_eq!(last[s.endpoints.len()]["Total Failure Count"], 9.0);

    // Failures: one row per endpoint and kind, adding up to the failure counts.
    let failures = py["failures"].as_array().unwrap();
    let got: Vec<(&str, &str, &str, f64)> = failures
        .iter()
        .map(|r| {
            let t = |k: &str| r[k].as_str().unwrap();
            (t("Method"), t("Name"), t("Error"), r["Occurrences"].as_f64().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [("POST", "book", "unexpected status 503", 3.0), ("POST", "book", "timeout", 2.0), ("GET", "provider", "connect", 4.0),]
    );

    // A suite with no timed response: Locust's zeros and N/A, which pandas reads as NaN.
    let down = python("locust_csv.py", &[dir.path(), Path::new("down"), &fixtures]);
    let row = py_row(&down["stats"], "down");
    assert_eq!((row["Request Count"].as_f64(), row["Failure Count"].as_f64()), (Some(100.0), Some(100.0)));
    assert_eq!(row["Median Response Time"], 0.0);
    assert!(locust::STATS_HEADER[11..].iter().all(|c| row[*c].is_null()), "{row}");
}

// ---------------------------------------------------------------- JUnit XML

fn parse_junit(report: &Report) -> junit_parser::TestSuites {
    let xml = junit::junit_xml(report).unwrap();
    junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

fn case<'a>(suite: &'a junit_parser::TestSuite, classname: &str, name: &str) -> &'a junit_parser::TestCase {
    suite
        .cases
        .iter()
        .find(|c| c.classname.as_deref() == Some(classname) && c.original_name == name)
        .unwrap_or_else(|| panic!("no test case {classname} {name} in {:#?}", suite.cases))
}

#[test]
fn junit_regressions_and_breaches_are_failures_a_reader_sees() {
    let parsed = parse_junit(&regressed());
    assert_eq!(parsed.suites.len(), 1);
    let suite = &parsed.suites[0];
    assert_eq!(suite.name, "baseline");
    // valid + 2 endpoints + 2 SLOs.
    assert_eq!((suite.tests, suite.failures, suite.errors, suite.skipped), (5, 2, 0, 0));
    assert_eq!(suite.time, 60.0);
    let props: BTreeMap<&str, &str> = suite.properties.vec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(props["baseline"], "committed baseline results/baseline/baseline.json");
    assert_eq!(props["backend"], "local");

    let get = case(suite, "baseline.endpoint", "get");
    assert!(get.status.is_failure());
    let failure = get.status.failure_as_ref();
    assert_eq!(failure.failure_type, "regression");
    // What moved, by how much, from what to what.
    assert!(failure.message.starts_with("regressed: p50 +"), "{}", failure.message);
    assert!(failure.message.contains(" ms → "), "{}", failure.message);
    assert!(failure.text.contains("beyond 20%"), "{}", failure.text);
    let list = case(suite, "baseline.endpoint", "list");
    assert!(list.status.is_success());
    assert!(list.system_out.as_deref().unwrap().starts_with("unchanged\np50 "), "{:?}", list.system_out);

    let slo = case(suite, "baseline.slo", "get p95");
    assert!(slo.status.is_failure());
    assert!(slo.status.failure_as_ref().message.contains("at most 15.00 ms"), "{:?}", slo.status);
    assert!(case(suite, "baseline.slo", "list error_rate").status.is_success());
    assert!(case(suite, "baseline.run", "valid").status.is_success());
    assert_eq!((parsed.tests, parsed.failures, parsed.errors), (5, 2, 0));
}

#[test]
fn junit_invalid_runs_are_errors() {
    let mut r = regressed();
    r.suites[0].summary.valid = false;
    r.suites[0].summary.invalid_reasons = vec!["fell behind schedule on 3% of requests".into()];
    r.invalid_reasons = vec!["postgres did not become ready".into()];
    let parsed = parse_junit(&r);
    assert_eq!(parsed.suites.len(), 2);
    let run = &parsed.suites[0];
    assert_eq!((run.name.as_str(), run.errors), (junit::RUN_SUITE, 1));
    assert!(run.cases[0].status.error_as_ref().message.contains("postgres did not become ready"));
    let valid = case(&parsed.suites[1], "baseline.run", "valid");
    assert!(valid.status.is_error());
    assert_eq!(valid.status.error_as_ref().error_type, "invalid-run");
    assert!(valid.status.error_as_ref().message.contains("fell behind schedule on 3% of requests"));
    assert_eq!(parsed.errors, 2);
}

#[test]
fn junit_shows_a_confirming_rerun() {
    let mut confirmed = regressed();
    confirmed.suites[0].confirmation = Confirmation::Confirmed;
    let parsed = parse_junit(&confirmed);
    let get = case(&parsed.suites[0], "baseline.endpoint", "get");
    assert!(get.status.is_failure());
    assert_eq!(get.reruns.len(), 1);
    assert!(matches!(get.reruns[0].kind, junit_parser::RerunOrFlakyKind::RerunFailure), "{:?}", get.reruns[0].kind);

    // A regression the re-run did not reproduce is not counted, as in the gate: a passing
    // test case with a flaky failure.
    let mut unconfirmed = regressed();
    unconfirmed.suites[0].confirmation = Confirmation::NotConfirmed { first_run: vec!["get".into()] };
    let parsed = parse_junit(&unconfirmed);
    let get = case(&parsed.suites[0], "baseline.endpoint", "get");
    assert!(get.status.is_success(), "{:?}", get.status);
    assert_eq!(get.reruns.len(), 1);
    assert!(matches!(get.reruns[0].kind, junit_parser::RerunOrFlakyKind::FlakyFailure), "{:?}", get.reruns[0].kind);
    assert_eq!(parsed.suites[0].failures, 1, "only the SLO");
}

#[test]
fn junit_without_a_baseline_skips_endpoints_and_judges_slos_and_checks() {
    let mut r = real_report();
    r.suites[0].summary.checks = vec![
        Check { name: "breaker opens".into(), passed: false, detail: "stayed CLOSED".into() },
        Check { name: "errors stop".into(), passed: true, detail: "within 2 s".into() },
    ];
    let s = &r.suites[0].summary;
    let (endpoints, slos) = (s.endpoints.len() as u64, s.slo.len() as u64);
    let parsed = parse_junit(&r);
    let suite = &parsed.suites[0];
    assert_eq!(suite.tests, 1 + endpoints + slos + 2);
    assert_eq!((suite.skipped, suite.failures, suite.errors), (endpoints, 1, 0));
    let provider = case(suite, "baseline.endpoint", "provider");
    assert_eq!(provider.status.skipped_as_ref().message, "not compared: no baseline");
    let check = case(suite, "baseline.check", "breaker opens");
    assert_eq!(check.status.failure_as_ref().message, "check failed: stayed CLOSED");
    assert!(case(suite, "baseline.slo", "appointment p95").status.is_success());
    assert!(suite.timestamp.is_some());

    // Not comparable: skipped, saying why.
    let mut nc = real_report();
    nc.suites[0].baseline = BaselineSource::NotComparable {
        why: "the baseline was recorded on testbed a, this run is on b".into(),
        testbed: "b".into(),
        available: vec!["a".into()],
    };
    let parsed = parse_junit(&nc);
    let msg = &case(&parsed.suites[0], "baseline.endpoint", "login").status.skipped_as_ref().message;
    assert!(msg.starts_with("not comparable, so not compared: the baseline was recorded"), "{msg}");
    // As the gate leaves it when it does not compare at all: the same words.
    nc.suites[0].comparison = None;
    let parsed = parse_junit(&nc);
    let msg = &case(&parsed.suites[0], "baseline.endpoint", "login").status.skipped_as_ref().message;
    assert!(msg.starts_with("not comparable, so not compared: the baseline was recorded"), "{msg}");
}

#[test]
fn junit_names_are_escaped() {
    let nasty = "<b>\"&'</b>\u{1b}[31m";
    let mut r = regressed();
    r.suites[0].summary.checks = vec![Check { name: nasty.into(), passed: false, detail: nasty.into() }];
    let parsed = parse_junit(&r);
    // XML-escaped, and the terminal colour code dropped (quick-junit strips ANSI escapes).
    let c = case(&parsed.suites[0], "baseline.check", "<b>\"&'</b>");
    assert!(c.status.failure_as_ref().message.contains("<b>\"&'</b>"));
}

#[test]
fn junit_reads_as_test_reporters_need_it() {
    // Every kind of test case at once: a counted regression, a passing endpoint, a broken and
    // a kept SLO, a failed check, an invalid suite and a run-level error.
    let mut r = regressed();
    r.suites[0].summary.checks = vec![Check { name: "breaker opens".into(), passed: false, detail: "stayed CLOSED".into() }];
    let mut invalid = real_report().suites.remove(0);
    invalid.summary.suite = "soak".into();
    invalid.summary.valid = false;
    invalid.summary.invalid_reasons = vec!["fell behind schedule on 3% of requests".into()];
    r.suites.push(invalid);
    r.invalid_reasons = vec!["the baseline could not be read".into()];
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &r, &Options::default()).unwrap();
    // The reader checks the counts, names, classnames and outcomes reporters rely on.
    let py = python("junit_xml.py", &[&dir.path().join(JUNIT_FILE)]);

    let outcome = |suite: &str, case: &str| -> (String, String) {
        let o = &py[suite][case];
        assert!(o.is_array(), "no test case {case:?} in {suite}: {}", py[suite]);
        (o[0].as_str().unwrap().to_string(), o[1].as_str().unwrap_or_default().to_string())
    };
    let (kind, message) = outcome("baseline", "baseline.endpoint get");
    assert_eq!(kind, "failure");
    // What moved and by how much.
    assert!(message.starts_with("regressed: p50 +") && message.contains(" ms → "), "{message}");
    assert_eq!(outcome("baseline", "baseline.endpoint list").0, "passed");
    let (kind, message) = outcome("baseline", "baseline.slo get p95");
    assert_eq!((kind.as_str(), message.contains("at most 15.00 ms")), ("failure", true), "{message}");
    assert_eq!(outcome("baseline", "baseline.slo list error_rate").0, "passed");
    assert_eq!(outcome("baseline", "baseline.check breaker opens"), ("failure".into(), "check failed: stayed CLOSED".into()));
    let (kind, message) = outcome("soak", "soak.run valid");
    assert_eq!(kind, "error");
    assert!(message.contains("fell behind schedule on 3% of requests"), "{message}");
    assert_eq!(outcome("soak", "soak.endpoint book").0, "skipped");
    let (kind, message) = outcome(junit::RUN_SUITE, "(run) valid");
    assert_eq!((kind.as_str(), message.contains("the baseline could not be read")), ("error", true));
}

// ---------------------------------------------------------------- Bencher Metric Format

#[test]
fn bmf_follows_bencher_metric_format() {
    let r = real_report();
    let s = &r.suites[0].summary;
    let v: serde_json::Value = serde_json::from_slice(&json_bytes(BMF_FILE, &bmf::bmf(&r)).unwrap()).unwrap();
    // Bencher's published BMF JSON Schema (bencher.dev/docs/reference/bencher-metric-format),
    // as documented.
    let schema = serde_json::json!({
        "$id": "https://bencher.dev/bmf.json",
        "$schema": "http://json-schema.org/draft-07/schema",
        "type": "object",
        "patternProperties": { ".+": {
            "type": "object",
            "patternProperties": { ".+": {
                "type": "object",
                "properties": {
                    "value": { "type": "number" },
                    "lower_value": { "type": "number" },
                    "upper_value": { "type": "number" }
                },
                "required": ["value"]
            }}
        }}
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&v), "{:?}", validator.iter_errors(&v).map(|e| e.to_string()).collect::<Vec<_>>());
    // Stricter than the schema: no other field (Bencher ignores them; a typo would go unseen),
    // and every bound on the right side of its value.
    for measures in v.as_object().unwrap().values() {
        for (measure, metric) in measures.as_object().unwrap() {
            let m = metric.as_object().unwrap();
            assert!(m.keys().all(|k| ["value", "lower_value", "upper_value"].contains(&k.as_str())), "{measure}: {m:?}");
            let value = m["value"].as_f64().unwrap();
            assert!(m.get("lower_value").is_none_or(|l| l.as_f64().unwrap() <= value), "{measure}: {m:?}");
            assert!(m.get("upper_value").is_none_or(|u| u.as_f64().unwrap() >= value), "{measure}: {m:?}");
        }
    }

    let benchmarks = v.as_object().unwrap();
    assert_eq!(benchmarks.len(), s.endpoints.len());
    for (name, e) in &s.endpoints {
        let key = format!("baseline/{name}");
        let measures = benchmarks[&key].as_object().unwrap();
        assert!(key.len() <= 1024, "Bencher's limit for a benchmark name");
        assert_eq!(measures.keys().collect::<Vec<_>>(), ["latency", "throughput"]);
        // Bencher's built-in latency measure is in nanoseconds.
        let latency = &measures["latency"];
        assert_eq!(latency["value"], (e.latency_ms.p50.unwrap() * 1e6).round());
        assert_eq!(latency["upper_value"], (e.latency_ms.p95.unwrap() * 1e6).round());
        assert!(latency.get("lower_value").is_none());
        // Throughput in operations (requests) per second, banded by the whole seconds.
        let t = &measures["throughput"];
        assert_eq!(t["value"], e.rps);
        let (lo, hi) = (t["lower_value"].as_f64().unwrap(), t["upper_value"].as_f64().unwrap());
        assert!(lo <= e.rps && e.rps <= hi, "{t}");
        let whole = &e.windows[..e.windows.len() - 1];
        // The slowest and fastest whole second (the last, partial one left out), widened to
        // the value when the average sits outside them.
        assert_eq!(lo, (whole.iter().map(|w| w.requests).min().unwrap() as f64).min(e.rps));
        assert_eq!(hi, (whole.iter().map(|w| w.requests).max().unwrap() as f64).max(e.rps));
    }
}

#[test]
fn bmf_leaves_out_latency_without_timed_responses() {
    let s = summary("baseline", 10, vec![("down", endpoint(&Gen::new(10, 10, 5.0, 1).errors(1.0)))]);
    let b = bmf::bmf(&report(vec![suite_report(None, s, BaselineSource::None)]));
    assert_eq!(b["baseline/down"].keys().copied().collect::<Vec<_>>(), [bmf::THROUGHPUT]);
}

// ---------------------------------------------------------------- github-action-benchmark

#[test]
fn benchmark_json_is_github_action_benchmarks_custom_format() {
    let r = regressed();
    let v: serde_json::Value = serde_json::from_slice(&json_bytes(GAB_FILE, &gab::benchmarks(&r)).unwrap()).unwrap();
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 2 * 3);
    let mut names = std::collections::BTreeSet::new();
    for entry in entries {
        let o = entry.as_object().unwrap();
        // The action's fields (name, unit, value required; range, extra optional strings) and
        // nothing else.
        assert!(o.keys().all(|k| ["name", "unit", "value", "range", "extra"].contains(&k.as_str())), "{o:?}");
        assert!(o["name"].is_string() && o["value"].is_number());
        assert_eq!(o["unit"], "ms");
        assert!(names.insert(o["name"].as_str().unwrap().to_string()), "one chart per name");
        // The action reads a range with `/(\+-|±)\s*(\d.+)/` and `Number()` of the second
        // group (src/extractRangeInfo.ts): a sign, spaces, then a digit and at least one more
        // character, all of it a number.
        let range = o["range"].as_str().unwrap();
        let number = range.strip_prefix('±').unwrap_or_else(|| panic!("{range}")).trim_start();
        assert!(number.len() >= 2 && number.starts_with(|c: char| c.is_ascii_digit()), "{range}");
        assert!(number.parse::<f64>().unwrap() >= 0.0, "{range}");
        assert!(o["extra"].is_string());
    }
    let get_p50 = entries.iter().find(|e| e["name"] == "baseline/get p50").unwrap();
    let s = &r.suites[0].summary;
    assert_eq!(get_p50["value"], s.endpoints["get"].latency_ms.p50.unwrap());
    let extra = get_p50["extra"].as_str().unwrap();
    assert!(extra.contains("requests: 6000, errors: 0 (0.00%), 100.0 req/s"), "{extra}");
    assert!(extra.contains("gate: regressed (+"), "{extra}");
    assert!(names.contains("baseline/list p99"));
}

// ---------------------------------------------------------------- writing

/// Files in `dir` the gate's atomic writer uses as temporaries (or the probe).
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".perf-"))
        .collect()
}

#[test]
fn write_all_writes_every_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let r = real_report();
    let written = write_all(&out, &r, &Options::default()).unwrap();
    let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["baseline_stats.csv", "baseline_stats_history.csv", "baseline_failures.csv", JUNIT_FILE, BMF_FILE, GAB_FILE]);
    for (path, file) in written.iter().zip(render_all(&r, &Options::default()).unwrap()) {
        assert_eq!(path, &out.join(&file.name));
        assert_eq!(std::fs::read(path).unwrap(), file.bytes, "{}", path.display());
    }
    assert!(temporaries(&out).is_empty());
    // Again: replaced whole.
    let again = write_all(&out, &regressed(), &Options::default()).unwrap();
    assert_eq!(again.len(), 6);
    assert!(std::fs::read_to_string(out.join(JUNIT_FILE)).unwrap().contains("name=\"get\""));
    assert!(temporaries(&out).is_empty());
}

#[test]
fn write_all_refuses_a_file_as_the_out_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results");
    std::fs::write(&file, "not a folder").unwrap();
    let e = write_all(&file, &real_report(), &Options::default()).unwrap_err();
    assert!(matches!(e, ExportError::NotAFolder { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}: not a folder", file.display())), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");

    // Below a file: cannot be created.
    let below = file.join("out");
    let e = write_all(&below, &real_report(), &Options::default()).unwrap_err();
    assert!(matches!(e, ExportError::NotWritable { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}: cannot write into this folder", below.display())), "{e}");
}

#[test]
fn write_all_refuses_a_folder_it_cannot_write_into() {
    // Permission bits do not stop root, so the folder for everybody is one of /proc's, where
    // no file can be created; a read-only folder too, when not root.
    let mut dirs = vec![PathBuf::from("/proc/self")];
    let tmp = tempfile::tempdir().unwrap();
    if !nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        let ro = tmp.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        dirs.push(ro);
    }
    for dir in dirs {
        let e = write_all(&dir, &real_report(), &Options::default()).unwrap_err();
        assert!(matches!(e, ExportError::NotWritable { .. }), "{e}");
        assert!(e.to_string().starts_with(&format!("{}: cannot write into this folder: ", dir.display())), "{e}");
    }
}

#[test]
fn a_failed_write_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    // `junit.xml` is taken by a folder: that one file cannot be written.
    std::fs::create_dir(dir.path().join(JUNIT_FILE)).unwrap();
    let e = write_all(dir.path(), &real_report(), &Options::default()).unwrap_err();
    let ExportError::Write { path, .. } = &e else { panic!("{e}") };
    assert_eq!(path, &dir.path().join(JUNIT_FILE));
    assert!(e.to_string().starts_with(&dir.path().join(JUNIT_FILE).display().to_string()), "{e}");
    assert!(dir.path().join(JUNIT_FILE).is_dir());
    assert!(temporaries(dir.path()).is_empty(), "{:?}", temporaries(dir.path()));
    // What was written before is whole.
    let stats = std::fs::read(dir.path().join("baseline_stats.csv")).unwrap();
    assert_eq!(stats, locust::stats_csv(&real_summary(), &Options::default()).unwrap());
    assert!(!dir.path().join(BMF_FILE).exists());
}

#[test]
fn suite_names_become_safe_file_names() {
    assert_eq!(file_stem("chaos_db"), "chaos_db");
    assert_eq!(file_stem("a/b c"), "a_b_c");
    assert_eq!(file_stem(".."), "_..");
    assert_eq!(file_stem(""), "_");
    let g = Gen::new(10, 5, 1.0, 1);
    let r = report(vec![
        suite_report(None, summary("a/b", 5, vec![("x", endpoint(&g))]), BaselineSource::None),
        suite_report(None, summary("a_b", 5, vec![("x", endpoint(&g))]), BaselineSource::None),
    ]);
    let names: Vec<String> = render_all(&r, &Options::default()).unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(
        &names[..6],
        ["a_b_stats.csv", "a_b_stats_history.csv", "a_b_failures.csv", "a_b_2_stats.csv", "a_b_2_stats_history.csv", "a_b_2_failures.csv"]
    );
}
