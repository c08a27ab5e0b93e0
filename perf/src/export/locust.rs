//! Locust's CSV files (`locust --csv PREFIX --csv-full-history`), one set per suite, with
//! Locust's own header rows column for column (taken from a real Locust 2.47 run, kept in
//! `fixtures/locust/`), so that scripts and notebooks written for Locust read ours unchanged.
//!
//! How our values fill Locust's columns:
//!
//! - **Type** (and the failures file's **Method**): the request's HTTP method when the caller
//!   passes it ([`Options::methods`], from the plan); the summaries do not record it, so
//!   without it every endpoint row says `HTTP`, Locust's "request type" for a request whose
//!   method is not known. The `Aggregated` row's Type is empty, as in Locust.
//! - **Name**: the endpoint, i.e. the plan's request name (Locust's `name=` grouping).
//! - **Request Count**, **Failure Count**: measured requests (after warm-up) and failed ones
//!   (transport errors and unexpected statuses).
//! - **Response times** (ms): from the endpoint's HDR histogram (microsecond resolution,
//!   written to 3 decimals; Locust writes whole milliseconds). Median, average, max and the
//!   50%, 90%, 95%, 99%, 99.9% and 100% columns are the summary's own values (the ones in our
//!   reports); Min and the 66%, 75%, 80%, 98% and 99.99% columns are read from the histogram.
//!   Latency is measured from the scheduled start under open-model executors (no coordinated
//!   omission), which Locust does not do: a slow service shows higher tails here than in
//!   Locust. With no timed response, Median/Average/Min/Max are 0 and the percentiles `N/A`,
//!   as Locust writes them.
//! - **Average Content Size**: `bytes_received / requests`. Lossy: our byte counts are what
//!   went over the wire, HTTP headers included, where Locust counts the body only.
//! - **Requests/s**, **Failures/s**: over the measured part of the run.
//! - The `Aggregated` row sums counts and rates; its response times come from the endpoints'
//!   histograms merged exactly.
//!
//! The history file has one row per endpoint and one `Aggregated` row per second, from the
//! summary's per-second windows: **Timestamp** is the end of that second (Unix seconds),
//! **User Count** the virtual users active in it, **Requests/s**/**Failures/s** its counts,
//! and of the percentiles only 50%, 95% and 99% are known per second (`N/A` in a second with no
//! timed response, as Locust writes it): the other percentile columns, and the running `Total`
//! response-time and content-size columns (which the summary keeps for the whole run only), are
//! empty. `Total Request Count` and `Total Failure Count` run up second by second.
//!
//! The failures file has one row per endpoint and kind of failure: `unexpected status 503`
//! (one row per status), `timeout`, `connect`, `body`, `capture`. **First Seen** and
//! **Last Seen** (the first and last second with a failure) are filled when the endpoint failed
//! in one way only: the per-second windows count failures, not their kinds.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::summary::{EndpointSummary, Summary};

use super::common::{ExportError, Options, round_us};

/// Locust's percentile columns, as fractions.
pub const PERCENTILES: [f64; 11] = [0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0];

// Positions in [`PERCENTILES`] of the values a summary keeps.
const P50: usize = 0;
const P90: usize = 4;
const P95: usize = 5;
const P99: usize = 7;
const P999: usize = 8;
const P100: usize = 10;

/// Header of `<prefix>_stats.csv`.
pub const STATS_HEADER: [&str; 22] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
];

/// Header of `<prefix>_stats_history.csv`.
pub const HISTORY_HEADER: [&str; 24] = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

/// Header of `<prefix>_failures.csv`.
pub const FAILURES_HEADER: [&str; 6] = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"];

/// The `Name` of the whole-suite row.
pub const AGGREGATED: &str = "Aggregated";

/// The Type (method) of an endpoint row when the caller did not say.
pub const UNKNOWN_METHOD: &str = "HTTP";

/// The three files of one suite, as (file name suffix, bytes): `_stats.csv`,
/// `_stats_history.csv`, `_failures.csv`.
pub fn files(summary: &Summary, options: &Options) -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
    Ok(vec![
        ("_stats.csv", stats_csv(summary, options)?),
        ("_stats_history.csv", history_csv(summary, options)?),
        ("_failures.csv", failures_csv(summary, options)?),
    ])
}

fn method<'a>(options: &'a Options, endpoint: &str) -> &'a str {
    options.methods.get(endpoint).map(String::as_str).unwrap_or(UNKNOWN_METHOD)
}

/// `<prefix>_stats.csv`: one row per endpoint (by name), then `Aggregated`.
pub fn stats_csv(summary: &Summary, options: &Options) -> Result<Vec<u8>, ExportError> {
    let file = format!("{}_stats.csv", summary.suite);
    let mut w = Writer::new(&file, &STATS_HEADER)?;
    let mut merged: Option<Histogram<u64>> = Some(Histogram::new(3).expect("3 significant digits is valid"));
    let mut any_timed = false;
    let (mut requests, mut failures, mut bytes, mut rps, mut fail_rps) = (0u64, 0u64, 0u64, 0.0, 0.0);
    for (name, e) in &summary.endpoints {
        let hist = decode(&e.histogram);
        let timed = Timed::of_endpoint(e, hist.as_ref());
        any_timed |= timed.any;
        w.row(stats_row(method(options, name), name, e.requests, e.errors.total, e.bytes_received, e.rps, failures_per_s(e), &timed))?;
        // The aggregate is exact only when every endpoint with timed responses has its histogram.
        merged = match (merged, hist) {
            (Some(mut m), Some(h)) => m.add(&h).ok().map(|_| m),
            (m, None) if e.latency_ms.p50.is_none() => m,
            _ => None,
        };
        requests += e.requests;
        failures += e.errors.total;
        bytes += e.bytes_received;
        rps += e.rps;
        fail_rps += failures_per_s(e);
    }
    let timed = match merged.filter(|m| !m.is_empty()) {
        Some(m) => Timed::of_hist(&m),
        // Some endpoint's histogram is missing: the whole-suite response times are not known.
        None => Timed { any: any_timed, ..Timed::default() },
    };
    w.row(stats_row("", AGGREGATED, requests, failures, bytes, rps, fail_rps, &timed))?;
    w.finish()
}

#[allow(clippy::too_many_arguments)]
fn stats_row(ty: &str, name: &str, requests: u64, failures: u64, bytes: u64, rps: f64, fail_rps: f64, t: &Timed) -> Vec<String> {
    // No timed response: Locust writes zeros. Timed responses whose value is not known: empty.
    let ms = |v: Option<f64>, zero: &str| match v {
        Some(v) => num(round_us(v)),
        None if t.any => String::new(),
        None => zero.to_string(),
    };
    // Locust's `avg_content_length` is an int 0 with no request, a float otherwise.
    let content = if requests == 0 { "0".to_string() } else { num(bytes as f64 / requests as f64) };
    let mut row = vec![
        ty.to_string(),
        name.to_string(),
        requests.to_string(),
        failures.to_string(),
        ms(t.median, "0"),
        ms(t.mean, "0.0"),
        ms(t.min, "0"),
        ms(t.max, "0"),
        content,
        num(rps),
        num(fail_rps),
    ];
    row.extend(t.percentile_fields());
    row
}

/// `<prefix>_stats_history.csv`: per second, one row per endpoint (by name) then `Aggregated`.
pub fn history_csv(summary: &Summary, options: &Options) -> Result<Vec<u8>, ExportError> {
    let file = format!("{}_stats_history.csv", summary.suite);
    let mut w = Writer::new(&file, &HISTORY_HEADER)?;
    let start = summary.run.started_at.parse::<jiff::Timestamp>().ok();
    let suite_windows: BTreeMap<u32, &crate::summary::Window> = summary.windows.iter().map(|w| (w.t, w)).collect();
    let endpoint_windows: Vec<(&String, BTreeMap<u32, &crate::summary::EndpointWindow>)> =
        summary.endpoints.iter().map(|(n, e)| (n, e.windows.iter().map(|w| (w.t, w)).collect())).collect();
    let seconds: std::collections::BTreeSet<u32> =
        suite_windows.keys().copied().chain(endpoint_windows.iter().flat_map(|(_, ws)| ws.keys().copied())).collect();
    let mut totals = vec![(0u64, 0u64); endpoint_windows.len()];
    let mut suite_total = (0u64, 0u64);
    for t in seconds {
        // Locust stamps a row when it writes it, at the end of the interval it covers.
        let timestamp = match start {
            Some(s) => (s.as_second() + i64::from(t) + 1).to_string(),
            None => (i64::from(t) + 1).to_string(),
        };
        let users = suite_windows.get(&t).map(|w| w.active_vus).unwrap_or(0).to_string();
        let (mut all_requests, mut all_errors, mut any_timed) = (0, 0, false);
        for ((name, ws), total) in endpoint_windows.iter().zip(&mut totals) {
            let (requests, errors, p) = match ws.get(&t) {
                Some(w) => (w.requests, w.errors, [w.p50, w.p95, w.p99]),
                None => (0, 0, [None; 3]),
            };
            all_requests += requests;
            all_errors += errors;
            any_timed |= p.iter().any(Option::is_some);
            *total = (total.0 + requests, total.1 + errors);
            w.row(history_row(&timestamp, &users, method(options, name), name, requests, errors, Some(p), *total))?;
        }
        let (requests, errors, p) = match suite_windows.get(&t) {
            Some(w) => (w.requests, w.errors, Some([w.p50, w.p95, w.p99])),
            // No whole-suite window: the endpoints' counts add up, their percentiles do not.
            None => (all_requests, all_errors, if any_timed { None } else { Some([None; 3]) }),
        };
        suite_total = (suite_total.0 + requests, suite_total.1 + errors);
        w.row(history_row(&timestamp, &users, "", AGGREGATED, requests, errors, p, suite_total))?;
    }
    w.finish()
}

#[allow(clippy::too_many_arguments)]
fn history_row(
    timestamp: &str,
    users: &str,
    ty: &str,
    name: &str,
    requests: u64,
    errors: u64,
    percentiles: Option<[Option<f64>; 3]>,
    (total_requests, total_errors): (u64, u64),
) -> Vec<String> {
    // Locust formats the current rates with `f"{rate:2f}"`: six decimals.
    let mut row = vec![
        timestamp.to_string(),
        users.to_string(),
        ty.to_string(),
        name.to_string(),
        format!("{:.6}", requests as f64),
        format!("{:.6}", errors as f64),
    ];
    match percentiles {
        // Not known for this second.
        None => row.extend(std::iter::repeat_n(String::new(), PERCENTILES.len())),
        // No timed response in this second.
        Some([None, None, None]) => row.extend(std::iter::repeat_n("N/A".to_string(), PERCENTILES.len())),
        Some([p50, p95, p99]) => {
            for i in 0..PERCENTILES.len() {
                let value = match i {
                    P50 => p50,
                    P95 => p95,
                    P99 => p99,
                    _ => None,
                };
                row.push(value.map(|v| num(round_us(v))).unwrap_or_default());
            }
        }
    }
    row.extend([total_requests.to_string(), total_errors.to_string()]);
    row.extend(std::iter::repeat_n(String::new(), 5));
    row
}

/// `<prefix>_failures.csv`: per endpoint (by name), one row per kind of failure.
pub fn failures_csv(summary: &Summary, options: &Options) -> Result<Vec<u8>, ExportError> {
    let file = format!("{}_failures.csv", summary.suite);
    let mut w = Writer::new(&file, &FAILURES_HEADER)?;
    let start = summary.run.started_at.parse::<jiff::Timestamp>().ok();
    for (name, e) in &summary.endpoints {
        let rows = failure_rows(e);
        let (first, last) = if rows.len() == 1 { seen(e, start) } else { (String::new(), String::new()) };
        for (error, n) in rows {
            w.row(vec![method(options, name).to_string(), name.clone(), error, n.to_string(), first.clone(), last.clone()])?;
        }
    }
    w.finish()
}

/// The endpoint's failures by kind; unexpected statuses one row each. Their occurrences add up
/// to the endpoint's failure count.
fn failure_rows(e: &EndpointSummary) -> Vec<(String, u64)> {
    let mut rows = Vec::new();
    let mut by_status = 0;
    for (status, n) in &e.errors.by_status {
        rows.push((format!("unexpected status {status}"), *n));
        by_status += n;
    }
    for (kind, n) in &e.errors.by_kind {
        let n = if kind == "status" { n.saturating_sub(by_status) } else { *n };
        if n > 0 {
            rows.push((if kind == "status" { "unexpected status".to_string() } else { kind.clone() }, n));
        }
    }
    let counted: u64 = rows.iter().map(|(_, n)| n).sum();
    if e.errors.total > counted {
        rows.push(("unclassified".to_string(), e.errors.total - counted));
    }
    rows
}

/// First and last second with a failure, as Locust writes them (`%Y-%m-%dT%H:%M:%SZ`).
fn seen(e: &EndpointSummary, start: Option<jiff::Timestamp>) -> (String, String) {
    let Some(start) = start else { return (String::new(), String::new()) };
    let failing: Vec<u32> = e.windows.iter().filter(|w| w.errors > 0).map(|w| w.t).collect();
    let at = |t: Option<&u32>| {
        t.and_then(|t| jiff::Timestamp::from_second(start.as_second() + i64::from(*t)).ok())
            .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    (at(failing.first()), at(failing.last()))
}

fn failures_per_s(e: &EndpointSummary) -> f64 {
    if e.requests == 0 { 0.0 } else { e.rps * e.errors.total as f64 / e.requests as f64 }
}

/// Response times of one row, in ms.
#[derive(Debug, Default)]
struct Timed {
    /// There were timed responses (the values may still be unknown).
    any: bool,
    median: Option<f64>,
    mean: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// At [`PERCENTILES`]; all `None` when there was no timed response.
    percentiles: [Option<f64>; PERCENTILES.len()],
}

impl Timed {
    fn of_hist(h: &Histogram<u64>) -> Timed {
        let ms = |us: u64| us as f64 / 1000.0;
        Timed {
            any: true,
            median: Some(ms(h.value_at_quantile(0.5))),
            mean: Some(h.mean() / 1000.0),
            min: Some(ms(h.min())),
            max: Some(ms(h.max())),
            percentiles: PERCENTILES.map(|q| Some(ms(h.value_at_quantile(q)))),
        }
    }

    /// The summary's values where it has them, the histogram's for the rest.
    fn of_endpoint(e: &EndpointSummary, hist: Option<&Histogram<u64>>) -> Timed {
        let l = &e.latency_ms;
        if l.p50.is_none() {
            return Timed::default();
        }
        let from_hist = hist.filter(|h| !h.is_empty()).map(Timed::of_hist).unwrap_or_default();
        let percentiles = std::array::from_fn(|i| {
            let own = match i {
                P50 => l.p50,
                P90 => l.p90,
                P95 => l.p95,
                P99 => l.p99,
                P999 => l.p999,
                P100 => l.max,
                _ => None,
            };
            own.or(from_hist.percentiles[i])
        });
        Timed { any: true, median: l.p50, mean: l.mean, min: from_hist.min, max: l.max, percentiles }
    }

    fn percentile_fields(&self) -> Vec<String> {
        if !self.any {
            return vec!["N/A".to_string(); PERCENTILES.len()];
        }
        self.percentiles.iter().map(|p| p.map(|v| num(round_us(v))).unwrap_or_default()).collect()
    }
}

fn decode(encoded: &str) -> Option<Histogram<u64>> {
    if encoded.is_empty() { None } else { crate::summary::hist::decode(encoded).ok() }
}

/// A number as Python's `str(float)` shows it, as in Locust's files: the shortest form that
/// reads back exactly, `.0` on whole numbers (`15.0`). Our values stay far from the range where
/// Python switches to an exponent.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let s = format!("{v}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// A CSV writer: the `csv` crate in Locust's dialect (Python's `csv.writer` defaults: comma,
/// `"` quoting only when needed, rows ended by `\r\n`).
struct Writer<'a> {
    file: &'a str,
    inner: csv::Writer<Vec<u8>>,
}

impl<'a> Writer<'a> {
    fn new(file: &'a str, header: &[&str]) -> Result<Self, ExportError> {
        let inner = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        let mut w = Writer { file, inner };
        w.row(header.iter().map(|h| h.to_string()).collect())?;
        Ok(w)
    }

    fn row(&mut self, fields: Vec<String>) -> Result<(), ExportError> {
        self.inner.write_record(&fields).map_err(|e| self.error(e.to_string()))
    }

    fn finish(self) -> Result<Vec<u8>, ExportError> {
        let file = self.file.to_string();
        self.inner.into_inner().map_err(|e| ExportError::Encode { file, message: e.to_string() })
    }

    fn error(&self, message: String) -> ExportError {
        ExportError::Encode { file: self.file.to_string(), message }
    }
}
