//! How the evaluators write a verdict into a summary: a pass/fail [`Check`], a named figure,
//! a float as JSON, and the per-second windows that lie inside a span of the run.

use crate::summary::{Check, Summary, Window};

pub(super) fn check(summary: &mut Summary, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
    summary.checks.push(Check { name: name.into(), passed, detail: detail.into() });
}

pub(super) fn figure(summary: &mut Summary, key: impl Into<String>, value: impl Into<serde_json::Value>) {
    summary.figures.insert(key.into(), value.into());
}

/// A float as JSON; non-finite values (which JSON cannot hold) become `null`.
pub(super) fn num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Windows lying entirely within `[from, to)` seconds of the measured part.
pub(super) fn windows_within(windows: &[Window], from: f64, to: f64) -> impl Iterator<Item = &Window> {
    windows.iter().filter(move |w| w.t as f64 >= from && w.t as f64 + 1.0 <= to)
}
