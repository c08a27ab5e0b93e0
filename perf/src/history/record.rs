//! One night's record: what the history keeps of a nightly run's summaries. Pure.
//!
//! Per suite: when it started, how long it measured, whether the run was valid, its definition
//! hash; per endpoint: requests, errors, throughput, p50/p95/p99 latency, and the HDR
//! histogram of latency exactly as the summary carries it (so nights merge exactly and the
//! gate's own rule can compare them). Not kept: per-second windows, service-time histograms,
//! statuses, resources, SLOs, checks: a summary's detail is the artifact's business; the
//! history keeps what a trend needs.
//!
//! # Size
//! Serialized as compact JSON, a record takes 0.5 to 0.8 KiB per endpoint, nearly all of it
//! the histogram (a summary keeps about 20 times more). Measured by this module's
//! `record_size_of_the_reference_plan` test on the committed summaries of the reference plan:
//! the `baseline` suite (9 endpoints) is 4.2 KiB from a `--quick` run
//! (`fixtures/summaries/v1-baseline-quick.json`) and 5.7 KiB from a full one
//! (`results/baseline/<testbed>/baseline.json`); `concurrent` (7 endpoints) is 5.4 KiB. A night of the
//! default suites is about 11 KiB; of all ten suites (46 endpoints), about 32 KiB, so a year
//! of nights is about 12 MiB.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::summary::{EndpointSummary, Summary};

/// Version of the record format written by this build. Older records stay readable; newer
/// ones are refused with a clear message.
pub const RECORD_VERSION: u32 = 1;

/// One night: every suite of one run, of one commit, on one testbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightRecord {
    pub record_version: u32,
    /// The commit measured (`run.git.sha`).
    pub sha: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The working tree had uncommitted changes (never in CI).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    /// RFC 3339, UTC, whole seconds: the start of the night's first suite (`run.started_at`).
    pub date: String,
    /// The testbed's key (`run.testbed.key`): only nights of one testbed are compared. For
    /// summaries written before testbeds: `<backend>-<cpus>cpu-unknown[-quick]`.
    pub testbed: String,
    /// Version of the gate that measured.
    pub tool_version: String,
    /// Per suite name.
    pub suites: BTreeMap<String, SuiteRecord>,
}

/// One suite of a night.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRecord {
    /// `load`, or the kind of a special suite.
    pub kind: String,
    /// RFC 3339 start of the measured part.
    pub started_at: String,
    /// Seconds measured (throughput is requests over these).
    pub duration_s: f64,
    /// False when the run could not be trusted: such a night is shown, never compared.
    pub valid: bool,
    /// The suite's definition hash (`run.suite_hash`): when it changes, the nights before and
    /// after measured different things and are not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_hash: Option<String>,
    pub endpoints: BTreeMap<String, EndpointRecord>,
}

/// One endpoint of one suite of a night.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub requests: u64,
    pub errors: u64,
    /// Requests per second, to 3 decimals.
    pub rps: f64,
    /// Latency percentiles, ms (none without samples).
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// HDR histogram of latency in microseconds, V2 deflate, base64: the summary's own.
    pub histogram: String,
}

/// Why summaries do not make one night's record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("no summaries: a night needs at least one suite")]
    Empty,
    #[error("summary of suite {suite} has no git sha (run.git.sha): a night is keyed by its commit")]
    NoSha { suite: String },
    #[error("summaries of more than one commit: {0} and {1}; a night is one run of one commit")]
    MixedCommits(String, String),
    #[error("summaries of more than one testbed: {0} and {1}; a night is one run on one testbed")]
    MixedTestbeds(String, String),
    #[error("suite {0} appears twice")]
    DuplicateSuite(String),
    #[error("suite {suite}: run.started_at {value:?} is not an RFC 3339 time")]
    BadDate { suite: String, value: String },
}

impl NightRecord {
    /// The record of one night's summaries (one per suite, all of one run).
    pub fn from_summaries(summaries: &[Summary]) -> Result<NightRecord, RecordError> {
        let first = summaries.first().ok_or(RecordError::Empty)?;
        let sha_of =
            |s: &Summary| s.run.git.sha.clone().filter(|x| !x.is_empty()).ok_or_else(|| RecordError::NoSha { suite: s.suite.clone() });
        let sha = sha_of(first)?;
        let testbed = testbed_key(first);
        let mut suites = BTreeMap::new();
        let mut earliest: Option<jiff::Timestamp> = None;
        for s in summaries {
            let this = sha_of(s)?;
            if this != sha {
                return Err(RecordError::MixedCommits(sha, this));
            }
            let tb = testbed_key(s);
            if tb != testbed {
                return Err(RecordError::MixedTestbeds(testbed, tb));
            }
            let started = parse_time(&s.run.started_at)
                .ok_or_else(|| RecordError::BadDate { suite: s.suite.clone(), value: s.run.started_at.clone() })?;
            earliest = Some(earliest.map_or(started, |e| e.min(started)));
            if suites.insert(s.suite.clone(), SuiteRecord::of(s)).is_some() {
                return Err(RecordError::DuplicateSuite(s.suite.clone()));
            }
        }
        let date = earliest.expect("at least one summary").strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        Ok(NightRecord {
            record_version: RECORD_VERSION,
            sha,
            branch: first.run.git.branch.clone(),
            dirty: summaries.iter().any(|s| s.run.git.dirty == Some(true)),
            date,
            testbed,
            tool_version: first.run.tool_version.clone(),
            suites,
        })
    }

    /// The file this record is stored in: `<date>-<sha 12>-<testbed>.json`, with the date as
    /// `2026-11-27T024913Z` (no colons: artifact uploads and some file systems refuse them),
    /// so that file names sort by date.
    pub fn file_name(&self) -> String {
        let when = parse_time(&self.date).map(|t| t.strftime("%Y-%m-%dT%H%M%SZ").to_string()).unwrap_or_else(|| slug(&self.date));
        let sha: String = self.sha.chars().take(12).collect();
        format!("{when}-{}-{}.json", slug(&sha), slug(&self.testbed))
    }

    /// The record as stored: compact JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a record serializes");
        bytes.push(b'\n');
        bytes
    }

    /// The night's time, parsed (validated records always have one).
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        parse_time(&self.date)
    }

    /// Checks what serde cannot: the version, the date, a non-empty commit and testbed, and
    /// that every histogram decodes. The message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.record_version == 0 {
            return Err("record_version: 0 is not a record format version (the first is 1)".into());
        }
        if self.record_version > RECORD_VERSION {
            return Err(format!(
                "record_version {} is newer than this build understands (up to {RECORD_VERSION}): update the perf gate to read it",
                self.record_version
            ));
        }
        if self.sha.trim().is_empty() {
            return Err("sha: empty: a night is keyed by its commit".into());
        }
        if self.testbed.trim().is_empty() {
            return Err("testbed: empty".into());
        }
        if self.timestamp().is_none() {
            return Err(format!("date: {:?} is not an RFC 3339 time", self.date));
        }
        for (suite, s) in &self.suites {
            if !(s.duration_s.is_finite() && s.duration_s >= 0.0) {
                return Err(format!("suites.{suite}.duration_s: {} is not a duration in seconds", s.duration_s));
            }
            for (name, e) in &s.endpoints {
                if !e.histogram.is_empty()
                    && let Err(err) = crate::summary::hist::decode(&e.histogram)
                {
                    return Err(format!("suites.{suite}.endpoints.{name}.histogram: {err}"));
                }
                if e.errors > e.requests {
                    return Err(format!("suites.{suite}.endpoints.{name}: {} errors out of {} requests", e.errors, e.requests));
                }
            }
        }
        Ok(())
    }
}

/// Nights in order: by time, then commit and testbed (two records of one second).
pub(crate) fn order(a: &NightRecord, b: &NightRecord) -> Ordering {
    a.timestamp().cmp(&b.timestamp()).then_with(|| a.sha.cmp(&b.sha)).then_with(|| a.testbed.cmp(&b.testbed))
}

pub(crate) fn sort(records: &mut [NightRecord]) {
    records.sort_by(order);
}

impl SuiteRecord {
    fn of(s: &Summary) -> SuiteRecord {
        SuiteRecord {
            kind: s.kind.clone(),
            started_at: s.run.started_at.clone(),
            duration_s: round_to(s.run.duration_s, 3),
            valid: s.valid,
            suite_hash: s.run.suite_hash.clone(),
            endpoints: s.endpoints.iter().map(|(n, e)| (n.clone(), EndpointRecord::of(e))).collect(),
        }
    }
}

impl EndpointRecord {
    fn of(e: &EndpointSummary) -> EndpointRecord {
        EndpointRecord {
            requests: e.requests,
            errors: e.errors.total,
            rps: round_to(e.rps, 3),
            p50: e.latency_ms.p50,
            p95: e.latency_ms.p95,
            p99: e.latency_ms.p99,
            histogram: e.histogram.clone(),
        }
    }

    /// Failed requests as a fraction of all requests; 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }
}

/// The summary's testbed key, or one made of what older summaries do record.
fn testbed_key(s: &Summary) -> String {
    match &s.run.testbed {
        Some(t) => t.key.clone(),
        None => format!("{}-{}cpu-unknown{}", s.run.backend, s.run.host.cpus, if s.run.quick { "-quick" } else { "" }),
    }
}

pub(crate) fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok()
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    if v.is_finite() { (v * f).round() / f } else { v }
}

/// A name safe in a file or URL path: ASCII letters, digits, `.`, `_` and `-`; anything else
/// becomes `_`, and a leading dot too (no hidden files, no `..`).
pub(crate) fn slug(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    if out.is_empty() { "_".into() } else { out }
}
