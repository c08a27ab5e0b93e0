//! A/B mode (`--against REF`): the app at git ref REF (base) and the working tree (head) on
//! the same machine, both up and warm at once, the load taking turns between them in short
//! segments of each suite's timeline; each pair's order is drawn at random, so whatever the
//! machine does during the job (a neighbour, a warming cache, the CPU's clock) hits both
//! sides alike. The two sides' segments are then compared pair by pair (`compare::resample`,
//! paired), and every change comes with its confidence interval. A change the pairs leave
//! undecided (beyond the threshold, its interval not clear of the noise) has every pair
//! measured once more and is judged over both passes (`judge::judge_pairs`): a percentile's
//! interval narrows with the requests behind it, and the second pass costs time only where a
//! verdict needs it.
//!
//! The base costs seconds to build, not a second world: it is checked out with `git worktree
//! add --detach` under `.work/ab/<sha>` (removed when the run ends, however it ends) and built
//! there by its plan's `[app.local] build` with the head's cargo target folder, so the
//! compiled dependencies are shared; the binary its command runs is then copied to
//! `.work/ab/app-<sha>/` (so building the head cannot replace it), and a later run against the
//! same commit builds nothing. With Docker, the base's image is `PERF_APP_BASE_IMAGE`, or
//! built from the plan's `[app.docker] dockerfile` in the base's checkout as `<image>-ab-<sha>`.
//!
//! The base's plan is read at REF: a suite whose definition differs there (the pull request
//! changed its load) is not comparable and says so, before any load. The testbed is the
//! head's for both sides: the machine, and the plan's `link_latency` to the databases.
//! Special suites run on the head only and are judged by their checks, as in a
//! stored-baseline run.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::compare::{Context, compare_suite_with};
use crate::env::{BackendKind, Environment, StartOptions};
use crate::plan::compiled::Suite;
use crate::plan::slice::{segment_length, slice};
use crate::plan::{Setup, SuiteKind};
use crate::summary::{self, RunContext, Summary};
use crate::util::git;
use crate::verdict::{BaselineSource, Confirmation, Report, RunFacts, StoredOpinion, SuiteReport};

use super::baseline::Pick;
use super::context::run_context;
use super::judge::{Judging, judge_pairs};
use super::lifetime::{Spec, with_environments};
use super::measure::{Schedule, measure_in_turns, measure_suite};
use super::options::{GateError, GateOptions, GateRun};
use super::prepare::Prepared;

/// The image of the base's app for A/B with Docker, when it is not built from the plan's
/// Dockerfile at the base ref (for example the nightly's image of that commit).
pub const BASE_IMAGE_VAR: &str = "PERF_APP_BASE_IMAGE";

/// A resolved `--against`.
#[derive(Debug, Clone)]
pub struct AbTarget {
    /// As the user wrote it.
    pub git_ref: String,
    pub sha: String,
    /// The repository's top level.
    pub repo: PathBuf,
    /// The plan's folder relative to the top level.
    pub plan_subdir: PathBuf,
}

impl AbTarget {
    fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(12)]
    }
}

/// Checks `--against` before anything starts: the ref names a commit, the backend can build
/// or find the base's app.
pub fn resolve(prepared: &Prepared, git_ref: &str) -> Result<AbTarget, GateError> {
    if prepared.backend == BackendKind::External {
        return Err(GateError::Input(
            "--against runs the app at another commit beside this one: it needs --backend local or docker, not external".into(),
        ));
    }
    let repo = git(&prepared.plan_dir, &["rev-parse", "--show-toplevel"])
        .map_err(|e| GateError::Input(format!("--against: {} is not in a git repository: {e}", prepared.plan_dir.display())))?;
    let repo = PathBuf::from(repo);
    let sha = git(&repo, &["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")])
        .map_err(|_| GateError::Input(format!("--against: `{git_ref}` is not a commit of {}", repo.display())))?;
    let plan_subdir = prepared.plan_dir.strip_prefix(&repo).map(Path::to_path_buf).unwrap_or_default();
    if prepared.backend == BackendKind::Docker {
        let docker = prepared.setup.app.docker.as_ref();
        let base_image = std::env::var(BASE_IMAGE_VAR).ok().filter(|v| !v.trim().is_empty());
        if base_image.is_none() && docker.and_then(|d| d.dockerfile.as_ref()).is_none() {
            return Err(GateError::Input(format!(
                "--against with Docker needs the base's app image: set {BASE_IMAGE_VAR} to it, or give [app.docker] a `dockerfile` \
                 so that it is built at {git_ref}; or run A/B with --backend local"
            )));
        }
    }
    Ok(AbTarget { git_ref: git_ref.to_string(), sha, repo, plan_subdir })
}

/// The base's checkout, created or reused.
fn worktree(target: &AbTarget) -> Result<PathBuf, GateError> {
    let dir = target.repo.join(".work").join("ab").join(target.short());
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

/// The base's side: its folder, its app's setup, and the suites it cannot be compared on.
struct Base {
    dir: PathBuf,
    setup: Setup,
    /// Suites whose definition differs at the base ref, with why.
    not_comparable: Vec<(String, String)>,
}

/// Reads the base's plan at REF and readies its app: built once per commit (local) or found
/// or built as an image (Docker).
async fn prepare_base(opts: &GateOptions, prepared: &Prepared, target: &AbTarget) -> Result<Base, GateError> {
    let tree = worktree(target)?;
    let dir = if target.plan_subdir.as_os_str().is_empty() { tree.clone() } else { tree.join(&target.plan_subdir) };
    let plan_file = opts.plan_path.file_name().map_or_else(|| PathBuf::from("perf.toml"), PathBuf::from);
    let base_plan = dir.join(&plan_file);
    let (mut setup, not_comparable): (Setup, Vec<(String, String)>) = if base_plan.is_file() {
        let loaded =
            crate::plan::load(&base_plan).map_err(|e| GateError::Input(format!("--against {}: the base's plan: {e}", target.git_ref)))?;
        let compiled =
            loaded.compile(&opts.compile).map_err(|e| GateError::Input(format!("--against {}: the base's plan: {e}", target.git_ref)))?;
        let differs = prepared
            .compiled
            .suites
            .iter()
            .filter(|s| {
                s.kind == SuiteKind::Load
                    && compiled.suites.iter().find(|b| b.name == s.name).map(|b| &b.definition_hash) != Some(&s.definition_hash)
            })
            .map(|s| {
                (
                    s.name.clone(),
                    format!("the suite's definition differs at {} ({}): its load changed since", target.git_ref, target.short()),
                )
            })
            .collect();
        (compiled.setup.clone(), differs)
    } else {
        opts.notes.say(format!("A/B: {} has no {}: its app is started as this plan says", target.git_ref, plan_file.display()));
        (prepared.setup.clone(), Vec::new())
    };
    setup.app.env.extend(opts.app_env.iter().cloned());
    // The link to the databases is the testbed's, as the machine is: both sides run with the
    // head's, whatever the base's plan said (a pull request that sets `link_latency` would
    // otherwise be judged on the link, not on its code).
    setup.environment.link = prepared.setup.environment.link;
    let setup = match prepared.backend {
        BackendKind::Docker => base_image(prepared, target, setup),
        _ => base_binary(opts, prepared, target, &dir, setup).await?,
    };
    Ok(Base { dir, setup, not_comparable })
}

/// The local backend's base: built in its checkout with the head's cargo target folder (the
/// dependencies are shared), the binary kept in `.work/ab/app-<sha>/`; reused when it is there.
async fn base_binary(opts: &GateOptions, prepared: &Prepared, target: &AbTarget, dir: &Path, setup: Setup) -> Result<Setup, GateError> {
    crate::env::BackendKind::Local.check_setup(&setup).map_err(|why| GateError::Input(format!("--against {}: {why}", target.git_ref)))?;
    let kept = target.repo.join(".work").join("ab").join(format!("app-{}", target.short()));
    let marker = kept.join(".built");
    let program_file = kept.join("program");
    if let Ok(program) = std::fs::read_to_string(&program_file)
        && marker.is_file()
        && Path::new(program.trim()).is_file()
    {
        opts.notes.say(format!("A/B: base {} ({}) already built: {}", target.git_ref, target.short(), program.trim()));
        return Ok(with_program(setup, program.trim()));
    }
    // The head's cargo target folder, when the head is a cargo workspace: its compiled
    // dependencies are the base's too.
    let shared = crate::env::local::cargo_target_dir(&prepared.plan_dir, &[]).await.ok();
    let build_env: Vec<(String, String)> = shared.iter().map(|t| ("CARGO_TARGET_DIR".to_string(), t.clone())).collect();
    opts.notes.say(format!("A/B: building the base {} ({}) in {}", target.git_ref, target.short(), dir.display()));
    let started = std::time::Instant::now();
    let log = opts.out_dir.join("logs").join("base").join("build.log");
    let built = crate::env::local::build_app(&setup, dir, &build_env, &log, &opts.cancel).await.map_err(|e| match e {
        crate::env::EnvError::Interrupted => GateError::Interrupted,
        e => GateError::Environment(format!("the base {} ({}) does not build: {e}", target.git_ref, target.short())),
    })?;
    opts.notes.say(format!("A/B: base built in {:.0?}", started.elapsed()));
    let Some(target_dir) = built.cargo_target_dir.filter(|t| built.program.starts_with(t)) else {
        // Not a cargo build into the shared folder: the base runs from its own checkout.
        return Ok(setup);
    };
    let rel = built.program.strip_prefix(&target_dir).expect("checked above");
    let copy = kept.join(rel);
    let io = |e: std::io::Error| GateError::Io(format!("keeping the base's app in {}: {e}", kept.display()));
    std::fs::create_dir_all(copy.parent().expect("a file in a folder")).map_err(io)?;
    std::fs::copy(&built.program, &copy).map_err(io)?;
    crate::util::write_atomic(&program_file, copy.display().to_string().as_bytes()).map_err(io)?;
    crate::util::write_atomic(&marker, b"").map_err(io)?;
    Ok(with_program(setup, &copy.display().to_string()))
}

/// `setup` running `program` with the command's arguments, with nothing to build.
fn with_program(mut setup: Setup, program: &str) -> Setup {
    if let Some(local) = setup.app.local.as_mut() {
        if let Some(first) = local.command.first_mut() {
            *first = program.to_string();
        }
        local.build.clear();
    }
    setup
}

/// Docker's base: `PERF_APP_BASE_IMAGE`, or the plan's Dockerfile at the base ref, built
/// from the base's checkout when the environment starts, as `<image>:ab-<sha>` (a second run
/// finds it and builds nothing). PostgreSQL's and Redis's images are the head's (for the
/// services both sides start; each side starts what its own plan asks for).
fn base_image(prepared: &Prepared, target: &AbTarget, mut setup: Setup) -> Setup {
    if let (Some(base), Some(head)) = (setup.environment.postgres.as_mut(), prepared.setup.environment.postgres.as_ref()) {
        base.image = head.image.clone();
    }
    if let (Some(base), Some(head)) = (setup.environment.redis.as_mut(), prepared.setup.environment.redis.as_ref()) {
        base.image = head.image.clone();
    }
    let head = prepared.setup.app.docker.clone().expect("the docker backend's setup was checked");
    let docker = setup.app.docker.get_or_insert(head);
    match std::env::var(BASE_IMAGE_VAR).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        Some(image) => {
            docker.image = image;
            docker.dockerfile = None;
        }
        None => {
            let (name, _) = crate::env::docker::images::split_image(&docker.image);
            docker.image = format!("{name}:ab-{}", target.short());
        }
    }
    setup
}

/// Removes the base's checkout when the run ends, whatever way it ends (its built app stays in
/// `.work/ab/app-<sha>`, or as an image): nothing of a run is left in the repository's
/// worktree list.
struct Checkout<'a>(&'a AbTarget);

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        let dir = self.0.repo.join(".work").join("ab").join(self.0.short());
        let _ = git(&self.0.repo, &["worktree", "remove", "--force", &dir.display().to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = git(&self.0.repo, &["worktree", "prune"]);
    }
}

/// Both sides up at once; every load suite taking turns between them; the report.
pub async fn run(opts: &GateOptions, prepared: &Prepared, target: &AbTarget) -> Result<GateRun, GateError> {
    let _checkout = Checkout(target);
    let base = prepare_base(opts, prepared, target).await?;
    let spec = |name: &str, setup: Setup, plan_dir: PathBuf| Spec {
        name: name.to_string(),
        backend: prepared.backend,
        setup,
        start: StartOptions {
            plan_dir,
            logs_dir: opts.out_dir.join("logs").join(name),
            app_url: None,
            cancel: opts.cancel.clone(),
            fault_proxies: false,
            build_env: Vec::new(),
            notes: opts.notes.clone(),
        },
    };
    let ctxs = [run_context(opts, prepared, &base.dir), run_context(opts, prepared, &prepared.plan_dir)];
    let specs = vec![spec("base", base.setup.clone(), base.dir.clone()), spec("head", prepared.setup.clone(), prepared.plan_dir.clone())];
    opts.notes.say(format!(
        "A/B: starting the base {} ({}) and the head side by side ({})",
        target.git_ref,
        target.short(),
        prepared.backend
    ));
    with_environments(&opts.notes, &opts.cancel, specs, async |envs: &mut [Environment]| {
        let mut reports = Vec::new();
        let mut written = Vec::new();
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        for suite in &prepared.compiled.suites {
            let why = base.not_comparable.iter().find(|(n, _)| *n == suite.name).map(|(_, w)| w.clone());
            let (report, file) = match (suite.kind, why) {
                (SuiteKind::Load, None) => ab_suite(opts, prepared, target, suite, envs, &ctxs, &mut rng).await?,
                (_, why) => head_only(opts, prepared, target, suite, &mut envs[1], &ctxs[1], why).await?,
            };
            written.push(file);
            reports.push(report);
        }
        let Some(first) = reports.first() else {
            return Err(GateError::Input("no suite to run".into()));
        };
        let facts = RunFacts::from_summary(&first.summary);
        Ok(GateRun { report: Report { facts, suites: reports, invalid_reasons: Vec::new() }, written, noise: Vec::new() })
    })
    .await
}

/// One load suite, interleaved and judged pair by pair; the stored baseline's opinion beside.
async fn ab_suite(
    opts: &GateOptions,
    prepared: &Prepared,
    target: &AbTarget,
    suite: &Suite,
    envs: &mut [Environment],
    ctxs: &[RunContext; 2],
    rng: &mut SmallRng,
) -> Result<(SuiteReport, PathBuf), GateError> {
    let pairs = slice(suite, segment_length(suite));
    let n = pairs.segments.len();
    opts.notes.say(format!("A/B {}: {n} pairs of {:.0?} segments, each pair in a random order", suite.name, pairs.length));
    let say = |done: usize, of: usize| {
        if done.is_multiple_of(4) || done == of {
            opts.notes.say(format!("A/B {}: {done}/{of} pairs", suite.name));
        }
    };
    let two = |sides: Vec<Summary>| -> Result<(Summary, Summary), GateError> {
        let [base, head]: [Summary; 2] = sides.try_into().map_err(|_| GateError::Io("A/B measured other than two sides".into()))?;
        Ok((base, head))
    };
    let (base, head) = two(measure_in_turns(opts, prepared, suite, envs, ctxs, rng, Schedule::Turns, true, say).await?)?;
    let rules = &prepared.compiled.compare;
    let how = Judging { rules, notes: &opts.notes, confirm: false, across: None, measured_elsewhere: false, paired: true, noise: None };
    // A change the pairs left undecided: every pair once more, the warm sides not warmed again.
    let more = move || async move { two(measure_in_turns(opts, prepared, suite, envs, ctxs, rng, Schedule::Turns, false, say).await?) };
    let (base, judged) = judge_pairs(&base, head, &how, more).await?;
    let side = opts.out_dir.join("ab").join(format!("{}-base.json", suite.name));
    summary::write_atomic(&side, &base).map_err(|e| GateError::Io(e.to_string()))?;
    let stored = match prepared.baselines.pick(&suite.name) {
        Some(Pick::Found { summary: stored, path, across: None }) => Some(StoredOpinion {
            path: crate::util::report_path(path),
            comparison: compare_suite_with(
                Some(stored),
                &judged.summary,
                rules,
                Context { paired: false, noise: prepared.noise(&suite.name) },
            ),
        }),
        _ => None,
    };
    let file = opts.out_dir.join(format!("{}.json", suite.name));
    summary::write_atomic(&file, &judged.summary).map_err(|e| GateError::Io(e.to_string()))?;
    let report = SuiteReport {
        summary: judged.summary,
        comparison: Some(judged.comparison),
        baseline: BaselineSource::AbRef { git_ref: target.git_ref.clone(), sha: target.short().to_string() },
        baseline_summary: Some(base),
        confirmation: Confirmation::NotRun,
        stored,
    };
    Ok((report, file))
}

/// A suite measured on the head only: a special suite (judged by its checks) or a load suite
/// that cannot be compared with the base (`why`).
async fn head_only(
    opts: &GateOptions,
    prepared: &Prepared,
    target: &AbTarget,
    suite: &Suite,
    head: &mut Environment,
    ctx: &RunContext,
    why: Option<String>,
) -> Result<(SuiteReport, PathBuf), GateError> {
    let summary = measure_suite(opts, prepared, head, suite, ctx).await?;
    let file = opts.out_dir.join(format!("{}.json", suite.name));
    summary::write_atomic(&file, &summary).map_err(|e| GateError::Io(e.to_string()))?;
    let baseline = match why {
        Some(why) => BaselineSource::NotComparable { why, testbed: prepared.testbed.key.clone(), available: vec![target.git_ref.clone()] },
        None => BaselineSource::None,
    };
    Ok((
        SuiteReport { summary, comparison: None, baseline, baseline_summary: None, confirmation: Confirmation::NotRun, stored: None },
        file,
    ))
}
