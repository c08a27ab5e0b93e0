//! The one owner of a gate run: from the options to the judged, written results, whatever
//! the mode. The command line maps its flags to [`GateOptions`], calls [`gate`], then prints
//! and publishes what it returns; nothing between those two ends is decided anywhere else.
//!
//! 1. Validate every input before anything starts: the testbed (or the measured results'
//!    own), the baseline (the nightly artifact when asked, else the stored one), the plan
//!    compiled for the selected suites, and for A/B the git ref. `--check` stops here.
//! 2. Run the mode: stored baseline ([`suites`]), A/B ([`ab`]) or results measured elsewhere
//!    ([`measured`]); each judges every suite through [`super::judge::judge_suite`].
//! 3. Write the reports and the results for other tools; store the baseline when asked.

use std::path::PathBuf;

use crate::env::BackendKind;
use crate::util::display_path;
use crate::verdict::{Headline, Report};

use super::baseline::{Pick, resolve as resolve_baseline};
use super::measured::Measured;
use super::options::{BaselineChoice, GateError, GateOptions, Mode};
use super::outputs::{Reports, update_baseline, write_reports};
use super::prepare::{Prepared, prepare_on, resolve_testbed};
use super::{ab, measured, suites};

/// What a gate run left behind.
pub enum GateOutcome {
    /// `--check`: everything was valid and nothing was started; what would have run was said.
    Checked,
    /// A judged run.
    Judged(Box<JudgedRun>),
}

/// A judged run: the report, and every file written.
pub struct JudgedRun {
    pub report: Report,
    /// Summary files written, in suite order.
    pub written: Vec<PathBuf>,
    /// `report.md`, `report.html` and the results for other tools.
    pub reports: Reports,
    /// The stored baseline's files written (`--update-baseline`), or why they were not.
    pub baseline_update: Option<Result<Vec<PathBuf>, GateError>>,
}

impl JudgedRun {
    /// The process exit code: the report's (0 pass, 1 regression or SLO breach, 2 invalid),
    /// at least 2 when the baseline could not be stored.
    pub fn exit_code(&self) -> u8 {
        let code = Headline::of(&self.report).outcome.exit_code();
        let code = if matches!(self.baseline_update, Some(Err(_))) { code.max(2) } else { code };
        code.clamp(0, 255) as u8
    }
}

/// Runs the gate as `opts` asks. Errors are runs that produced no verdict (bad input, an
/// environment that failed, Ctrl-C); everything else, including regressions, is a
/// [`GateOutcome`].
pub async fn gate(mut opts: GateOptions) -> Result<GateOutcome, GateError> {
    let measured = match &opts.mode {
        Mode::Measured { dir } => Some(Measured::read(dir)?),
        _ => None,
    };
    let (backend, testbed) = match &measured {
        Some(m) => {
            if opts.compile.suites.is_empty() {
                opts.compile.suites = m.suites();
            }
            (BackendKind::External, m.testbed()?)
        }
        None => resolve_testbed(&opts).await?,
    };
    if let Some(shard) = opts.compile.shard {
        opts.notes.say(format!(
            "shard {shard}: part of the load, compared with no baseline; merge the shards' results (`merge`) and gate the merged run"
        ));
    }
    // A/B keeps the stored baseline too: its opinion is the report's second line.
    let choice = if opts.compile.shard.is_some() { BaselineChoice::None } else { opts.baseline.clone() };
    let baseline = resolve_baseline(&choice, opts.github.as_ref(), &testbed, &opts.out_dir, &opts.notes).await;
    let prepared = prepare_on(&opts, backend, testbed, baseline)?;
    let measured = measured.map(|m| m.for_suites(&prepared, &opts.plan_path)).transpose()?;
    if let Some(ctx) = &opts.github
        && let Err(e) = ctx.set_output("testbed", &prepared.testbed.key)
    {
        opts.notes.say(format!("warning: {e}"));
    }
    say_what_runs(&opts, &prepared);

    let ab_target = match ab_ref(&opts, &prepared) {
        Some(git_ref) => Some(ab::resolve(&prepared, &git_ref)?),
        None => None,
    };
    if opts.check {
        let names = suite_names(&prepared).join(", ");
        match &ab_target {
            Some(t) => opts.notes.say(format!(
                "check: would run A/B against {} ({}) on this machine, the stored baseline as a second opinion",
                t.git_ref,
                &t.sha[..t.sha.len().min(12)]
            )),
            None if measured.is_some() => opts.notes.say(format!("check: would judge {names} from the results given")),
            None => opts.notes.say(format!("check: would run {names} on the {} backend", prepared.backend)),
        }
        opts.notes.say("check: everything is valid; nothing was started");
        return Ok(GateOutcome::Checked);
    }

    let run = match (ab_target, measured) {
        (_, Some(summaries)) => measured::run(&opts, &prepared, summaries).await?,
        (Some(target), None) => ab::run(&opts, &prepared, &target).await?,
        (None, None) => suites::run(&opts, &prepared).await?,
    };
    let mut run = run;
    for noise in &run.noise {
        // Beside the summary, so that a results folder used as a baseline (the nightly's
        // artifact) carries the noise of its testbed.
        let file = super::baseline::noise_file(&opts.out_dir.join(format!("{}.json", noise.suite)), &noise.suite);
        let json = serde_json::to_vec_pretty(noise).map_err(|e| GateError::Io(format!("encoding {}: {e}", file.display())))?;
        crate::util::write_atomic(&file, &json).map_err(|e| GateError::Io(format!("writing {}: {e}", file.display())))?;
        run.written.push(file);
    }
    let hint = opts.full_report_hint.clone();
    let markdown = crate::render::MarkdownOptions { full_report_hint: hint, ..Default::default() };
    let reports = write_reports(&run.report, &prepared.compiled, &opts.out_dir, &markdown)?;
    let baseline_update = opts.update_baseline.as_deref().map(|path| update_baseline(&run.report, &run.noise, path, &prepared.testbed.key));
    Ok(GateOutcome::Judged(Box::new(JudgedRun { report: run.report, written: run.written, reports, baseline_update })))
}

/// The git ref A/B runs against: the one asked for, or the fallback when some load suite has
/// no comparable baseline (said, with the suites).
fn ab_ref(opts: &GateOptions, prepared: &Prepared) -> Option<String> {
    match &opts.mode {
        Mode::Ab { git_ref } => Some(git_ref.clone()),
        Mode::Stored { fallback_against: Some(git_ref) } => {
            let uncompared = prepared.uncompared_suites();
            if uncompared.is_empty() {
                return None;
            }
            opts.notes.say(format!(
                "  no comparable stored baseline for {}: comparing with {git_ref} on this machine instead (A/B)",
                uncompared.join(", ")
            ));
            Some(git_ref.clone())
        }
        Mode::Stored { fallback_against: None } | Mode::Measured { .. } => None,
    }
}

fn suite_names(prepared: &Prepared) -> Vec<&str> {
    prepared.compiled.suites.iter().map(|s| s.name.as_str()).collect()
}

/// The run's first lines: the plan, the suites, the testbed, and what each suite is
/// compared with.
fn say_what_runs(opts: &GateOptions, prepared: &Prepared) {
    let notes = &opts.notes;
    let names = suite_names(prepared);
    let quick = if opts.compile.quick { " (--quick)" } else { "" };
    notes.say(format!("perf gate: plan {}, suites {}{quick}", display_path(&opts.plan_path), names.join(", ")));
    notes.say(format!("  testbed: {}", prepared.testbed.key));
    if let Mode::Measured { dir } = &opts.mode {
        notes.say(format!("  judging the results in {}: nothing is started", display_path(dir)));
    }
    let ab = matches!(opts.mode, Mode::Ab { .. });
    for name in names.into_iter().filter(|_| !ab) {
        match prepared.baselines.pick(name) {
            Some(Pick::Found { path, across: None, .. }) => notes.say(format!("  {name}: stored baseline {}", display_path(path))),
            Some(Pick::Found { path, across: Some(why), .. }) => {
                notes.say(format!("  {name}: stored baseline {} (forced across testbeds: {why})", display_path(path)))
            }
            Some(Pick::NotComparable { why, .. }) => notes.say(format!("  {name}: not comparable, no verdict on regressions ({why})")),
            None => notes.say(format!("  {name}: no stored baseline (nothing to compare with)")),
        }
    }
}
