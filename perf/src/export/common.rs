//! What every export format shares: the files' names, the error, the options the summaries do
//! not carry, and how latencies are rounded and spread.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::plan::Compiled;

/// The JUnit XML file's name.
pub const JUNIT_FILE: &str = "junit.xml";
/// The Bencher Metric Format file's name.
pub const BMF_FILE: &str = "bmf.json";
/// The github-action-benchmark file's name.
pub const GAB_FILE: &str = "benchmark.json";

/// Why the export files could not be made or written. Every variant names the path (or the
/// file) it is about.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: not a folder: the export files need a folder to be written into (--out)")]
    NotAFolder { path: PathBuf },
    #[error("{path}: cannot write into this folder: {source}")]
    NotWritable { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{file}: cannot encode: {message}")]
    Encode { file: String, message: String },
}

/// What the summaries do not carry but a format can use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// HTTP method by request (endpoint) name, from the plan.
    pub methods: BTreeMap<String, String>,
}

impl Options {
    /// The methods of the plan's requests.
    pub fn from_plan(plan: &Compiled) -> Self {
        Options { methods: plan.requests.iter().map(|r| (r.name.clone(), r.method.as_str().to_string())).collect() }
    }
}

/// A latency in milliseconds as CSV and JSON show it: rounded to the microsecond, the
/// histograms' resolution.
pub(super) fn round_us(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The population standard deviation of `values`, when there are at least two.
pub(super) fn stdev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    Some((values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}
