//! `junit.xml`: the gate's verdicts as JUnit XML, for CI test reporters. Written with
//! `quick-junit` (the serializer cargo-nextest uses).
//!
//! - One `testsuite` per suite, named after it, with the run's facts as properties (kind,
//!   backend, testbed, git commit, baseline) and its measured length as `time`.
//! - `testcase`s, their `classname` saying which kind of verdict they hold:
//!   - `<suite>.run` `valid`: an `error` when the run is invalid (fell behind schedule,
//!     environment trouble), with the reasons;
//!   - `<suite>.endpoint` `<endpoint>`, one per endpoint compared (missing ones included): a
//!     `failure` when the gate counts a regression, its message naming each regressed metric,
//!     how much it moved and from what to what, its text the rule's reason per metric. With a
//!     confirming re-run, the other run's regression is a `rerunFailure` (it regressed twice)
//!     or, when the re-run did not reproduce it, a `flakyFailure` on a passing test case (not
//!     counted, as in the gate). Endpoints not compared (no baseline, not comparable, missing
//!     from this run) are `skipped` with the reason; the others pass, their verdict and values
//!     in `system-out`;
//!   - `<suite>.slo` `<endpoint> <metric>`, one per SLO: a `failure` when it breaks;
//!   - `<suite>.check` `<check>`, one per special-suite check: a `failure` when it fails.
//! - When the run as a whole is invalid (the environment did not start, the baseline could not
//!   be read), a `testsuite` named `(run)` holds one `error` test case with the reasons.
//!
//! A test reporter's counts thus follow the gate's exit code: failures for regressions, SLO
//! breaches and failed checks (exit 1), errors for invalid runs (exit 2).

use std::collections::BTreeSet;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestRerun, TestSuite};

use crate::compare::{EndpointComparison, Metric, MetricComparison, Verdict};
use crate::summary::{Check, SloResult, Summary};
use crate::verdict::{BaselineSource, Confirmation, Headline, Report, SuiteReport};

use super::common::{ExportError, JUNIT_FILE};

/// The name of the test suite holding run-level errors.
pub const RUN_SUITE: &str = "(run)";

/// The report as JUnit XML.
pub fn junit_xml(report: &Report) -> Result<String, ExportError> {
    let headline = Headline::of(report);
    let counted: BTreeSet<(&str, &str)> = headline.regressions.iter().map(|r| (r.suite.as_str(), r.endpoint.as_str())).collect();
    let mut out = quick_junit::Report::new("perf gate");
    if let Some(ts) = report.facts.started_at.as_deref().and_then(timestamp) {
        out.set_timestamp(ts);
    }
    out.set_time(seconds(report.suites.iter().map(|s| s.summary.run.duration_s).sum()));
    if !report.invalid_reasons.is_empty() {
        let mut suite = TestSuite::new(RUN_SUITE);
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(format!("the run cannot be trusted: {}", report.invalid_reasons.join("; "))).set_type("invalid-run");
        let mut case = TestCase::new("valid", status);
        case.set_classname(RUN_SUITE);
        suite.add_test_case(case);
        out.add_test_suite(suite);
    }
    for s in &report.suites {
        out.add_test_suite(suite(s, &counted));
    }
    out.to_string().map_err(|e| ExportError::Encode { file: JUNIT_FILE.to_string(), message: e.to_string() })
}

fn suite(s: &SuiteReport, counted: &BTreeSet<(&str, &str)>) -> TestSuite {
    let sum = &s.summary;
    let mut suite = TestSuite::new(sum.suite.as_str());
    if let Some(ts) = timestamp(&sum.run.started_at) {
        suite.set_timestamp(ts);
    }
    suite.set_time(seconds(sum.run.duration_s));
    suite.add_property(Property::new("kind", sum.kind.as_str()));
    suite.add_property(Property::new("backend", sum.run.backend.as_str()));
    if let Some(t) = &sum.run.testbed {
        suite.add_property(Property::new("testbed", t.key.as_str()));
    }
    if let Some(sha) = &sum.run.git.sha {
        suite.add_property(Property::new("git.sha", sha.as_str()));
    }
    suite.add_property(Property::new("baseline", s.baseline.to_string()));

    suite.add_test_case(validity(sum));
    let first_run: &[String] = match &s.confirmation {
        Confirmation::NotConfirmed { first_run } => first_run,
        _ => &[],
    };
    match &s.comparison {
        Some(c) => {
            for e in &c.endpoints {
                let regressed = counted.contains(&(sum.suite.as_str(), e.name.as_str()));
                suite.add_test_case(endpoint(sum, e, &s.baseline, regressed, &s.confirmation, first_run));
            }
        }
        None => {
            let why = match &s.baseline {
                BaselineSource::NotComparable { why, .. } => format!("not comparable, so not compared: {why}"),
                BaselineSource::None => "not compared: no baseline".to_string(),
                other => format!("not compared: {other}"),
            };
            for name in sum.endpoints.keys() {
                suite.add_test_case(not_compared(sum, name, &why));
            }
        }
    }
    for slo in &sum.slo {
        suite.add_test_case(slo_case(sum, slo));
    }
    for check in &sum.checks {
        suite.add_test_case(check_case(sum, check));
    }
    suite
}

fn validity(sum: &Summary) -> TestCase {
    let status = if sum.valid {
        TestCaseStatus::success()
    } else {
        let reasons = if sum.invalid_reasons.is_empty() { "run marked invalid".to_string() } else { sum.invalid_reasons.join("; ") };
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_message(format!("the run cannot be trusted: {reasons}")).set_type("invalid-run");
        st
    };
    let mut case = TestCase::new("valid", status);
    case.set_classname(format!("{}.run", sum.suite));
    case
}

fn endpoint(
    sum: &Summary,
    e: &EndpointComparison,
    baseline: &BaselineSource,
    regressed: bool,
    confirmation: &Confirmation,
    first_run: &[String],
) -> TestCase {
    let values = e.metrics.iter().map(value_line).collect::<Vec<_>>().join("\n");
    let mut case = match e.verdict {
        Verdict::Regressed if regressed => {
            let worst: Vec<&MetricComparison> = e.metrics.iter().filter(|m| m.verdict == Verdict::Regressed).collect();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(format!("regressed: {}", worst.iter().map(|m| moved(m)).collect::<Vec<_>>().join("; ")))
                .set_type("regression")
                .set_description(worst.iter().map(|m| format!("{}: {}", m.metric, m.reason)).collect::<Vec<_>>().join("\n"));
            if *confirmation == Confirmation::Confirmed {
                let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                rerun.set_message("the other run regressed too: confirmed by a re-run").set_type("regression");
                status.add_rerun(rerun);
            }
            let mut case = TestCase::new(e.name.as_str(), status);
            case.set_system_out(values);
            case
        }
        Verdict::Missing => {
            return not_compared(sum, &e.name, "missing: measured in the baseline, not in this run");
        }
        Verdict::New => {
            let why = match baseline {
                BaselineSource::NotComparable { why, .. } => format!("not comparable, so not compared: {why}"),
                BaselineSource::None => "not compared: no baseline".to_string(),
                _ => "not compared: the baseline has no such endpoint".to_string(),
            };
            let mut case = not_compared(sum, &e.name, &why);
            case.set_system_out(values);
            return case;
        }
        v => {
            let mut status = TestCaseStatus::success();
            if first_run.contains(&e.name) {
                let mut flaky = TestRerun::new(NonSuccessKind::Failure);
                flaky.set_message("regressed in the first run, not in the confirming re-run: not counted").set_type("regression");
                status.add_rerun(flaky);
            }
            let mut case = TestCase::new(e.name.as_str(), status);
            case.set_system_out(format!("{}\n{values}", v.as_str()));
            case
        }
    };
    case.set_classname(format!("{}.endpoint", sum.suite));
    case
}

fn not_compared(sum: &Summary, name: &str, why: &str) -> TestCase {
    let mut status = TestCaseStatus::skipped();
    status.set_message(why);
    let mut case = TestCase::new(name, status);
    case.set_classname(format!("{}.endpoint", sum.suite));
    case
}

fn slo_case(sum: &Summary, slo: &SloResult) -> TestCase {
    let sentence = slo_sentence(slo);
    let status = if slo.passed {
        TestCaseStatus::success()
    } else {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_message(format!("SLO broken: {} {sentence}", slo.endpoint)).set_type("slo-breach");
        st
    };
    let mut case = TestCase::new(format!("{} {}", slo.endpoint, slo.metric), status);
    case.set_classname(format!("{}.slo", sum.suite));
    case.set_system_out(sentence);
    case
}

fn check_case(sum: &Summary, check: &Check) -> TestCase {
    let status = if check.passed {
        TestCaseStatus::success()
    } else {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_message(format!("check failed: {}", check.detail)).set_type("check-failed");
        st
    };
    let mut case = TestCase::new(check.name.as_str(), status);
    case.set_classname(format!("{}.check", sum.suite));
    case.set_system_out(check.detail.as_str());
    case
}

/// What moved and by how much: `p95 +54.1% (10.20 ms → 15.72 ms)`, `rps -25.0% (20.0 → 15.0
/// req/s)`, `errors +4.90 pt (0.10% → 5.00%)`; the rule's reason when a side has no value.
fn moved(m: &MetricComparison) -> String {
    match (m.base, m.head, m.delta_abs) {
        (Some(b), Some(h), Some(d)) => {
            let change = match (m.metric, m.delta_rel) {
                (Metric::ErrorRate, _) => format!("{d:+.2} pt"),
                (_, Some(r)) => format!("{:+.1}%", r * 100.0),
                (_, None) => format!("{} from 0", value(m.metric, d)),
            };
            format!("{} {change} ({} → {})", m.metric, value(m.metric, b), value(m.metric, h))
        }
        _ => format!("{} {}", m.metric, m.reason),
    }
}

/// One metric's line in `system-out`: `p50 2.55 ms → 2.68 ms (+5.1%): unchanged`.
fn value_line(m: &MetricComparison) -> String {
    let show = |v: Option<f64>| v.map(|v| value(m.metric, v)).unwrap_or_else(|| "-".to_string());
    let change = match (m.metric, m.delta_abs, m.delta_rel) {
        (Metric::ErrorRate, Some(d), _) => format!(" ({d:+.2} pt)"),
        (_, Some(_), Some(r)) => format!(" ({:+.1}%)", r * 100.0),
        _ => String::new(),
    };
    format!("{} {} → {}{change}: {}", m.metric, show(m.base), show(m.head), m.verdict)
}

fn value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Rps => format!("{v:.1} req/s"),
        Metric::ErrorRate => format!("{v:.2}%"),
        _ => format!("{v:.2} ms"),
    }
}

/// `p95 9.50 ms, at most 5.00 ms` for an SLO.
fn slo_sentence(s: &SloResult) -> String {
    let show = |v: f64| match s.metric.as_str() {
        "error_rate" => format!("{:.2}%", v * 100.0),
        "min_rps" => format!("{v:.1} req/s"),
        _ => format!("{v:.2} ms"),
    };
    let actual = s.actual.map(show).unwrap_or_else(|| "no data".to_string());
    let limit = if s.metric == "min_rps" { "at least" } else { "at most" };
    let mut line = format!("{} {actual}, {limit} {}", s.metric, show(s.threshold));
    if let Some(r) = &s.reason {
        line.push_str(&format!(" ({r})"));
    }
    line
}

fn timestamp(rfc3339: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok()
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}
