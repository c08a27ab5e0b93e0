//! What a finished run leaves behind, written by the library so that every front end (the
//! gate's CLI, an adopter's own xtask) writes the same files: the Markdown and HTML reports,
//! the results for other tools ([`crate::export`]) and, when asked, the stored baseline.
//! Every file goes through [`crate::util::write_atomic`].

use std::path::{Path, PathBuf};

use crate::compare::Noise;
use crate::plan::compiled::Compiled;
use crate::render::{self, MarkdownOptions};
use crate::verdict::Report;

use super::options::GateError;

/// The report files of one run, and the Markdown (also the pull-request comment's body).
pub struct Reports {
    pub markdown: String,
    pub markdown_path: PathBuf,
    pub html_path: PathBuf,
    /// The results for other tools: Locust CSV, JUnit XML, BMF, github-action-benchmark.
    pub exported: Vec<PathBuf>,
}

/// Writes `<out>/report.md`, `<out>/report.html`, the results for other tools and the
/// differential flame graphs of the suites whose CPU profile is compared
/// (`<suite>.profile-diff.svg`, listed with the results).
pub fn write_reports(report: &Report, compiled: &Compiled, out_dir: &Path, markdown: &MarkdownOptions) -> Result<Reports, GateError> {
    let md = render::markdown(report, markdown);
    let html = render::html(report);
    let markdown_path = out_dir.join("report.md");
    let html_path = out_dir.join("report.html");
    for (path, text) in [(&markdown_path, &md), (&html_path, &html)] {
        crate::util::write_atomic(path, text.as_bytes()).map_err(|e| GateError::Io(format!("writing {}: {e}", path.display())))?;
    }
    let mut exported = crate::export::write_all(out_dir, report, &crate::export::Options::from_plan(compiled))
        .map_err(|e| GateError::Io(format!("{e:#}")))?;
    // The differential flame graphs the reports link to.
    for (name, svg) in render::flame_graphs(report) {
        let path = out_dir.join(name);
        crate::util::write_atomic(&path, &svg).map_err(|e| GateError::Io(format!("writing {}: {e}", path.display())))?;
        exported.push(path);
    }
    Ok(Reports { markdown: md, markdown_path, html_path, exported })
}

/// Stores the run's summaries as the baseline of `testbed`, and the noise an A/A measured
/// beside them: in `<baseline>/<testbed>/` when `baseline` is the folder of stored baselines,
/// or beside it when it names a file. Refused (nothing written) when a suite's run was invalid.
pub fn update_baseline(report: &Report, noise: &[Noise], baseline: &Path, testbed: &str) -> Result<Vec<PathBuf>, GateError> {
    let summaries: Vec<_> = report.suites.iter().map(|s| s.summary.clone()).collect();
    super::baseline::update(&super::baseline::update_folder(baseline, testbed), &summaries, noise)
}
