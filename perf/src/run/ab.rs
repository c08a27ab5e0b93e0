//! A/B mode (`--against REF`): the app at git ref REF (base) and the working tree (head) run
//! side by side in the same job, suites alternating between them round after round (ABBA…),
//! and are compared with each other instead of with a stored baseline. Machine drift during
//! the job hits both sides alike, which makes this the robust mode on noisy CI runners.
//!
//! The base is checked out with `git worktree add --detach` under `.work/ab/<sha>` (reused
//! while it stays at that commit) and built there by the plan's `app.local.build`. Only the
//! local backend builds an app from source, so A/B runs on it.

use std::path::{Path, PathBuf};

use crate::compare::compare_ab;
use crate::env::{BackendChoice, BackendKind, Environment, StartOptions};
use crate::summary::{self, RunContext, Summary};
use crate::util::git;
use crate::verdict::{BaselineSource, Confirmation, Report, RunFacts, SuiteReport};

use super::context::run_context;
use super::lifetime::{Spec, with_environments};
use super::measure::measure_suite;
use super::options::{GateError, GateOptions, GateRun};
use super::prepare::Prepared;

/// A resolved `--against`.
#[derive(Debug, Clone)]
pub struct AbTarget {
    /// As the user wrote it.
    pub git_ref: String,
    pub sha: String,
    /// Rounds per side.
    pub rounds: u32,
    /// The repository's top level.
    pub repo: PathBuf,
    /// The plan's folder relative to the top level.
    pub plan_subdir: PathBuf,
}

/// Checks `--against` before anything starts: the ref names a commit, the backend can build it.
pub fn resolve(opts: &GateOptions, prepared: &Prepared, git_ref: &str, rounds: u32) -> Result<AbTarget, GateError> {
    if rounds == 0 {
        return Err(GateError::Input("--rounds: at least 1 round per side".into()));
    }
    if !matches!(opts.backend, BackendChoice::Local | BackendChoice::Auto) || prepared.backend == BackendKind::External {
        return Err(GateError::Input("--against builds the app at another commit from source: it needs --backend local".into()));
    }
    BackendKind::Local.check_setup(&prepared.setup).map_err(|why| GateError::Input(format!("--against: {why}")))?;
    let repo = git(&prepared.plan_dir, &["rev-parse", "--show-toplevel"])
        .map_err(|e| GateError::Input(format!("--against: {} is not in a git repository: {e}", prepared.plan_dir.display())))?;
    let repo = PathBuf::from(repo);
    let sha = git(&repo, &["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")])
        .map_err(|_| GateError::Input(format!("--against: `{git_ref}` is not a commit of {}", repo.display())))?;
    let plan_subdir = prepared.plan_dir.strip_prefix(&repo).map(Path::to_path_buf).unwrap_or_default();
    Ok(AbTarget { git_ref: git_ref.to_string(), sha, rounds, repo, plan_subdir })
}

/// The base's worktree, created or reused.
fn worktree(target: &AbTarget) -> Result<PathBuf, GateError> {
    let short = &target.sha[..target.sha.len().min(12)];
    let dir = target.repo.join(".work").join("ab").join(short);
    if dir.exists() {
        if git(&dir, &["rev-parse", "HEAD"]).as_deref() == Ok(target.sha.as_str()) {
            return Ok(dir);
        }
        let _ = git(&target.repo, &["worktree", "remove", "--force", &dir.display().to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = git(&target.repo, &["worktree", "prune"]);
    git(&target.repo, &["worktree", "add", "--detach", &dir.display().to_string(), &target.sha])
        .map_err(|e| GateError::Environment(format!("cannot check out {} in {}: {e}", target.git_ref, dir.display())))?;
    Ok(dir)
}

/// Runs every suite `rounds` times on each side, alternating, and compares the sides.
pub async fn run(opts: &GateOptions, prepared: &Prepared, target: &AbTarget) -> Result<GateRun, GateError> {
    let tree = worktree(target)?;
    let base_dir = if target.plan_subdir.as_os_str().is_empty() { tree.clone() } else { tree.join(&target.plan_subdir) };
    opts.notes.say(format!(
        "A/B: base is {} ({}) in {}; its app is built there (the first time takes minutes)",
        target.git_ref,
        &target.sha[..target.sha.len().min(12)],
        base_dir.display()
    ));
    // The base builds into a target folder of its own: with CARGO_TARGET_DIR set, both sides
    // would otherwise build (and start) the same binary path.
    let base_target = vec![("CARGO_TARGET_DIR".to_string(), tree.join("target").display().to_string())];
    let spec = |name: &str, plan_dir: PathBuf, build_env: Vec<(String, String)>| Spec {
        name: name.to_string(),
        backend: BackendChoice::Local,
        setup: prepared.setup.clone(),
        start: StartOptions {
            plan_dir,
            logs_dir: opts.out_dir.join("logs").join(name),
            app_url: None,
            cancel: opts.cancel.clone(),
            fault_proxies: false,
            build_env,
            notes: opts.notes.clone(),
        },
    };
    // Both sides run as local processes whatever `auto` found: the testbed says so.
    let local = prepared.testbed_for(BackendKind::Local);
    let (mut base_ctx, mut head_ctx) = (run_context(opts, prepared, &base_dir), run_context(opts, prepared, &prepared.plan_dir));
    for ctx in [&mut base_ctx, &mut head_ctx] {
        ctx.backend = BackendKind::Local.as_str().to_string();
        ctx.testbed = Some(local.clone());
    }
    let specs = vec![spec("base", base_dir.clone(), base_target), spec("head", prepared.plan_dir.clone(), Vec::new())];
    with_environments(&opts.notes, &opts.cancel, specs, async |envs: &mut [Environment]| {
        let [base_env, head_env] = envs else { unreachable!("two environments were started") };
        rounds(opts, prepared, target, (base_env, &base_ctx), (head_env, &head_ctx)).await
    })
    .await
}

async fn rounds(
    opts: &GateOptions,
    prepared: &Prepared,
    target: &AbTarget,
    base: (&mut Environment, &RunContext),
    head: (&mut Environment, &RunContext),
) -> Result<GateRun, GateError> {
    let mut reports = Vec::new();
    let mut written = Vec::new();
    for suite in &prepared.compiled.suites {
        let (mut base_runs, mut head_runs): (Vec<Summary>, Vec<Summary>) = (Vec::new(), Vec::new());
        for round in 0..target.rounds {
            // ABBA: each side goes first as often as the other, so a trend over the job
            // (a warming cache, a neighbour's load) does not favour one of them.
            let order = if round % 2 == 0 { [true, false] } else { [false, true] };
            for is_base in order {
                let (env, ctx, side) = if is_base { (&mut *base.0, base.1, "base") } else { (&mut *head.0, head.1, "head") };
                opts.notes.say(format!("A/B round {}/{} of {}: {side}", round + 1, target.rounds, suite.name));
                let s = measure_suite(opts, prepared, env, suite, ctx).await?;
                let file = opts.out_dir.join("ab").join(format!("{}-{side}-{}.json", suite.name, round + 1));
                summary::write_atomic(&file, &s).map_err(|e| GateError::Io(e.to_string()))?;
                if is_base { base_runs.push(s) } else { head_runs.push(s) }
            }
        }
        let comparison = compare_ab(&base_runs, &head_runs, &prepared.compiled.compare);
        let head_last = head_runs.pop().expect("at least one round");
        let base_last = base_runs.pop();
        let file = opts.out_dir.join(format!("{}.json", suite.name));
        summary::write_atomic(&file, &head_last).map_err(|e| GateError::Io(e.to_string()))?;
        written.push(file);
        reports.push(SuiteReport {
            summary: head_last,
            comparison: Some(comparison),
            baseline: BaselineSource::AbRef { git_ref: target.git_ref.clone(), rounds: target.rounds },
            baseline_summary: base_last,
            confirmation: Confirmation::NotRun,
        });
    }
    let Some(first) = reports.first() else {
        return Err(GateError::Input("no suite to run".into()));
    };
    let facts = RunFacts::from_summary(&first.summary);
    Ok(GateRun { report: Report { facts, suites: reports, invalid_reasons: Vec::new() }, written })
}
