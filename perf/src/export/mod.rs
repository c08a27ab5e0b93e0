//! Results in the formats other tools already read, so that a team keeps its notebooks, test
//! reporters and charts:
//!
//! | file | format | read by |
//! |---|---|---|
//! | `<suite>_stats.csv`, `<suite>_stats_history.csv`, `<suite>_failures.csv` | [Locust's CSV files](locust) | pandas notebooks and scripts written for Locust |
//! | `junit.xml` | [JUnit XML](junit) | CI test reporters (GitHub, GitLab, Jenkins, Buildkite) |
//! | `bmf.json` | [Bencher Metric Format](bmf) | `bencher run --adapter json --file results/bmf.json` |
//! | `benchmark.json` | [github-action-benchmark's `customSmallerIsBetter`](gab) | github-action-benchmark's gh-pages charts and alerts |
//!
//! Every format is a pure function of the gate's [`Report`] (each suite's summary, its
//! comparison with the baseline if any, its SLO results and special-suite checks):
//! [`render_all`] returns the files' names and bytes; [`write_all`] writes them, each one
//! atomically through [`write_atomic`], into an output folder it checks first.
//!
//! The summaries do not record each request's HTTP method (the plan does); [`Options::methods`]
//! carries it when the caller has the plan ([`Options::from_plan`]). Only Locust's `Type`
//! column uses it.
//!
//! The file names, [`ExportError`], [`Options`] and the number helpers every format shares live
//! in `common`; each format in its own file.

pub mod bmf;
mod common;
pub mod gab;
pub mod junit;
pub mod locust;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::write_atomic;
use crate::verdict::Report;

pub use common::{BMF_FILE, ExportError, GAB_FILE, JUNIT_FILE, Options};

/// One file to write: its name in the output folder and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every export file of `report`, in a stable order: per suite its three Locust files (in the
/// report's suite order), then `junit.xml`, `bmf.json` and `benchmark.json`. Pure.
pub fn render_all(report: &Report, options: &Options) -> Result<Vec<ExportFile>, ExportError> {
    let mut files = Vec::new();
    let mut stems: BTreeMap<String, usize> = BTreeMap::new();
    for suite in &report.suites {
        // Two suites whose names map to one file name must not overwrite each other.
        let mut stem = file_stem(&suite.summary.suite);
        let seen = stems.entry(stem.clone()).or_insert(0);
        *seen += 1;
        if *seen > 1 {
            stem = format!("{stem}_{seen}");
        }
        for (suffix, bytes) in locust::files(&suite.summary, options)? {
            files.push(ExportFile { name: format!("{stem}{suffix}"), bytes });
        }
    }
    files.push(ExportFile { name: JUNIT_FILE.to_string(), bytes: junit::junit_xml(report)?.into_bytes() });
    files.push(ExportFile { name: BMF_FILE.to_string(), bytes: json_bytes(BMF_FILE, &bmf::bmf(report))? });
    files.push(ExportFile { name: GAB_FILE.to_string(), bytes: json_bytes(GAB_FILE, &gab::benchmarks(report))? });
    Ok(files)
}

/// Writes every export file of `report` into `out_dir` (created if missing) and returns the
/// paths written, in [`render_all`]'s order.
///
/// Everything is rendered before anything is written, and the folder is checked first: a path
/// that is not a folder, or a folder this process cannot create a file in, is refused with an
/// error naming it, before any file is touched. Each file is written atomically (a temporary
/// file in the same folder, then a rename), so a reader sees either the previous file or the
/// new one whole, never a partial file; a failed write leaves no temporary file behind.
pub fn write_all(out_dir: &Path, report: &Report, options: &Options) -> Result<Vec<PathBuf>, ExportError> {
    let files = render_all(report, options)?;
    check_out_dir(out_dir)?;
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let path = out_dir.join(&f.name);
        write_atomic(&path, &f.bytes).map_err(|source| ExportError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}

/// Refuses a path that is not a folder or a folder no file can be created in; creates a
/// missing folder.
fn check_out_dir(dir: &Path) -> Result<(), ExportError> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(ExportError::NotAFolder { path: dir.to_path_buf() }),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|source| ExportError::NotWritable { path: dir.to_path_buf(), source })?;
        }
        Err(source) => return Err(ExportError::NotWritable { path: dir.to_path_buf(), source }),
    }
    // The permission bits do not tell (root ignores them; read-only mounts do not show in
    // them): try what the writes will do, a temporary file in the folder, removed at once.
    tempfile::Builder::new()
        .prefix(".perf-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|source| ExportError::NotWritable { path: dir.to_path_buf(), source })
}

/// A suite name as a file name: letters, digits, `-`, `_` and `.` are kept, anything else
/// (path separators included) becomes `_`.
fn file_stem(suite: &str) -> String {
    let stem: String = suite.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if stem.is_empty() || stem.chars().all(|c| c == '.') { format!("_{stem}") } else { stem }
}

fn json_bytes(file: &str, value: &impl serde::Serialize) -> Result<Vec<u8>, ExportError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ExportError::Encode { file: file.to_string(), message: e.to_string() })?;
    bytes.push(b'\n');
    Ok(bytes)
}
