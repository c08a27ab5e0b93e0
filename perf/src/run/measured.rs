//! `--from-summaries DIR`: the gate on results measured elsewhere, starting nothing.
//!
//! The load of a distributed run is sent by N shard processes (`--shard K/N`), each writing
//! its own results folder; `cargo perf merge` adds them up into one summary per suite. This
//! module gives such a folder the verdict a single run gets: each suite is compared with the
//! baseline of its testbed (a merged run's testbed names its shard count, so three machines
//! are compared with three machines), and the caller reports, comments and exits as usual.
//! Any results folder works the same way, e.g. a run judged again against another baseline.
//!
//! Checked before anything is judged, naming the file: a suite the folder lacks, a shard that
//! was not merged, a summary measured with another definition of its suite than the plan's
//! now (the plan changed, or the shards ran with other `--quick`/`--duration`/`--users`/
//! `--tags`), and summaries of different testbeds. A regression cannot be confirmed by running
//! the suite again (nothing here can run it): the first comparison is the verdict, and a
//! regression measured on a busy machine is distrusted as in a normal run.

use std::path::{Path, PathBuf};

use crate::plan::SuiteKind;
use crate::summary::{Summary, Testbed};
use crate::util::display_path;
use crate::verdict::{Confirmation, Report, RunFacts};

use super::baseline::Pick;
use super::judge::{Judging, judge_suite, record_suite};
use super::options::{GateError, GateOptions, GateRun};
use super::prepare::Prepared;

/// The summaries of a results folder, read and validated (`(file, summary)`, by file name).
pub struct Measured {
    pub dir: PathBuf,
    pub files: Vec<(PathBuf, Summary)>,
}

impl Measured {
    /// Reads every summary in `dir`. An empty folder, or one that is not there, is bad input.
    pub fn read(dir: &Path) -> Result<Measured, GateError> {
        let files = crate::summary::read_folder(dir).map_err(|e| GateError::Input(format!("--from-summaries: {e}")))?;
        if files.is_empty() {
            return Err(GateError::Input(format!("--from-summaries {}: no summaries (*.json) in this folder", dir.display())));
        }
        Ok(Measured { dir: dir.to_path_buf(), files })
    }

    /// The suites found, in file order.
    pub fn suites(&self) -> Vec<String> {
        self.files.iter().map(|(_, s)| s.suite.clone()).collect()
    }

    /// The testbed the summaries were measured on: the baseline must be of this one. They
    /// must all agree (one run, or one merge).
    pub fn testbed(&self) -> Result<Testbed, GateError> {
        let mut found: Option<(&PathBuf, &Testbed)> = None;
        for (path, s) in &self.files {
            let Some(t) = &s.run.testbed else {
                return Err(GateError::Input(format!(
                    "{}: no testbed recorded (written before testbeds): it cannot be matched with a baseline",
                    display_path(path)
                )));
            };
            match found {
                Some((first, ft)) if ft.key != t.key => {
                    return Err(GateError::Input(format!(
                        "{} was measured on testbed {} but {} on {}: gate the results of one run at a time",
                        display_path(first),
                        ft.key,
                        display_path(path),
                        t.key
                    )));
                }
                Some(_) => {}
                None => found = Some((path, t)),
            }
        }
        Ok(found.map(|(_, t)| t.clone()).expect("at least one summary was read"))
    }

    /// The summary of each suite of the prepared run, checked against the plan: present, not
    /// an unmerged shard, measured with the suite's definition as compiled now.
    pub fn for_suites(&self, prepared: &Prepared, plan: &Path) -> Result<Vec<Summary>, GateError> {
        let mut out = Vec::new();
        for suite in &prepared.compiled.suites {
            let Some((path, s)) = self.files.iter().find(|(_, s)| s.suite == suite.name) else {
                return Err(GateError::Input(format!(
                    "--from-summaries {}: no summary of suite `{}` (the folder has {})",
                    self.dir.display(),
                    suite.name,
                    self.suites().join(", ")
                )));
            };
            let file = display_path(path);
            if let Some(shard) = s.run.shard {
                return Err(GateError::Input(format!(
                    "{file}: shard {shard} of suite `{}`, one part of the load: merge the shards first (`cargo perf merge DIR... --out DIR`) and gate the merged folder",
                    suite.name
                )));
            }
            if s.run.suite_hash.as_deref() != Some(suite.definition_hash.as_str()) {
                return Err(GateError::Input(format!(
                    "{file}: suite `{}` was measured with another definition than {} has now, or with other --quick, --duration, --users or --tags than these: give the plan and the flags the run had",
                    suite.name,
                    display_path(plan)
                )));
            }
            out.push(s.clone());
        }
        Ok(out)
    }
}

/// Judges `summaries` (from [`Measured::for_suites`]) against the prepared baselines, writes
/// them to the results folder and builds the report. Starts nothing.
pub async fn run(opts: &GateOptions, prepared: &Prepared, summaries: Vec<Summary>) -> Result<GateRun, GateError> {
    let mut reports = Vec::new();
    let mut written = Vec::new();
    for (suite, first) in prepared.compiled.suites.iter().zip(summaries) {
        let pick = if suite.kind == SuiteKind::Load { prepared.baselines.pick(&suite.name) } else { None };
        let (summary, comparison, confirmation) = match pick {
            Some(Pick::Found { summary: base, across, .. }) => {
                let how = Judging {
                    rules: &prepared.compiled.compare,
                    notes: &opts.notes,
                    confirm: false,
                    across: across.as_deref(),
                    measured_elsewhere: true,
                    paired: false,
                    noise: prepared.noise(&suite.name),
                };
                let cannot = || async { Err(GateError::Input("a measured run cannot be run again".into())) };
                let judged = judge_suite(base, first, &how, cannot).await?;
                (judged.summary, Some(judged.comparison), judged.confirmation)
            }
            _ => (first, None, Confirmation::NotRun),
        };
        let (report, file) = record_suite(opts, prepared, pick, summary, comparison, confirmation)?;
        written.push(file);
        reports.push(report);
    }
    let Some(facts) = reports.first().map(|r| RunFacts::from_summary(&r.summary)) else {
        return Err(GateError::Input("no suite to judge".into()));
    };
    Ok(GateRun { report: Report { facts, suites: reports, invalid_reasons: Vec::new() }, written, noise: Vec::new() })
}
