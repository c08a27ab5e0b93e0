//! Step 1 of a gate run: everything the user gave is resolved and checked before anything
//! starts — the options, the plan (compiled for the selected suites), the backend and the
//! testbed, the baselines.

use std::path::{Path, PathBuf};

use crate::env::{BackendChoice, BackendKind};
use crate::plan::compiled::Compiled;
use crate::plan::{Link, Setup, SuiteKind};
use crate::summary::{self, Testbed};
use crate::verdict::BaselineSource;

use super::baseline::{self, Baselines};
use super::options::{GateError, GateOptions, Mode};

/// A validated run, before anything is started.
pub struct Prepared {
    pub compiled: Compiled,
    /// The compiled setup with this run's changes: `--app-env`, `PERF_*_IMAGE` (Docker).
    pub setup: Setup,
    /// SHA-256 of the plan file, recorded in every summary.
    pub plan_hash: String,
    pub baselines: Baselines,
    /// How reports name where the baselines came from (`None` when nothing is compared).
    pub baseline_source: BaselineSource,
    pub plan_dir: PathBuf,
    /// The backend this run uses (`auto` resolved).
    pub backend: BackendKind,
    /// Where this run measures: picks the baseline, recorded in every summary.
    pub testbed: Testbed,
}

impl Prepared {
    /// This run's testbed as it would be with `backend` (A/B mode runs both sides as local
    /// processes whatever `auto` found).
    pub fn testbed_for(&self, backend: BackendKind) -> Testbed {
        let t = &self.testbed;
        let runtime = if backend == BackendKind::Docker { t.runtime.clone() } else { None };
        let link = if backend == BackendKind::External { None } else { self.setup.environment.link };
        Testbed::new(backend.as_str(), t.cpus, t.cpu_model.clone(), t.memory_gib, runtime, t.quick, t.cpu_score).with_link(link)
    }
}

/// Step 1: reads and validates the plan, decides the backend and the testbed, and reads and
/// picks the baselines of `baseline` (a folder or a file, and how reports name it). Starts
/// nothing.
pub async fn prepare(opts: &GateOptions, baseline: Option<(PathBuf, BaselineSource)>) -> Result<Prepared, GateError> {
    let (backend, testbed) = resolve_testbed(opts).await?;
    prepare_on(opts, backend, testbed, baseline)
}

/// The backend this run will use (`auto` resolved by asking the Docker engine) and the testbed
/// it measures on, with the link to the databases the plan models (read from the plan, which
/// must therefore be valid there). Starts nothing; takes a fraction of a second (the CPU
/// calibration).
pub async fn resolve_testbed(opts: &GateOptions) -> Result<(BackendKind, Testbed), GateError> {
    let backend = opts.backend.resolve().await;
    let runtime = match backend {
        BackendKind::Docker => crate::env::docker::engine_version().await,
        BackendKind::Local | BackendKind::External => None,
    };
    let link = applied_link(opts, backend)?;
    Ok((backend, summary::testbed(backend.as_str(), opts.compile.quick, runtime).with_link(link)))
}

/// The plan's link to the databases as `backend` applies it: the external backend did not
/// start the databases and puts nothing between the app and them, so none.
fn applied_link(opts: &GateOptions, backend: BackendKind) -> Result<Option<Link>, GateError> {
    if backend == BackendKind::External {
        return Ok(None);
    }
    let setup = crate::plan::load(&opts.plan_path).and_then(|p| p.setup()).map_err(|e| GateError::Input(e.to_string()))?;
    Ok(setup.environment.link)
}

/// [`prepare`] with the backend and testbed already decided ([`resolve_testbed`]).
pub fn prepare_on(
    opts: &GateOptions,
    backend: BackendKind,
    testbed: Testbed,
    baseline: Option<(PathBuf, BaselineSource)>,
) -> Result<Prepared, GateError> {
    let loaded = crate::plan::load(&opts.plan_path).map_err(|e| GateError::Input(e.to_string()))?;
    let compiled = loaded.compile(&opts.compile).map_err(|e| GateError::Input(e.to_string()))?;
    let suites: Vec<(String, String)> = compiled.suites.iter().map(|s| (s.name.clone(), s.definition_hash.clone())).collect();
    let (baselines, baseline_source) = match baseline {
        None => (Baselines::default(), BaselineSource::None),
        Some((path, source)) => {
            (baseline::load(&path, baseline::Want { testbed: &testbed, suites: &suites, any_testbed: opts.any_testbed })?, source)
        }
    };
    let mut setup = compiled.setup.clone();
    setup.app.env.extend(opts.app_env.iter().cloned());
    if backend == BackendKind::Docker {
        crate::env::docker::apply_image_overrides(&mut setup, |k| std::env::var(k).ok());
    }
    backend.check_setup(&setup).map_err(|why| {
        let auto = match opts.backend {
            BackendChoice::Auto => format!(
                " (--backend auto chose {backend}: {})",
                if backend == BackendKind::Docker { "a Docker engine answers" } else { "no Docker engine answers" }
            ),
            _ => String::new(),
        };
        GateError::Input(format!("{}: {why}{auto}", opts.plan_path.display()))
    })?;
    // (Results measured elsewhere carry their own testbed, link included.)
    if let (BackendKind::External, Some(link), false) = (backend, setup.environment.link, matches!(opts.mode, Mode::Measured { .. })) {
        opts.notes.say(format!(
            "the plan's link_latency ({}) is not applied: the external backend did not start the databases, the app reaches them as it does",
            link.describe()
        ));
    }
    let plan_dir = plan_dir(&opts.plan_path)?;
    Ok(Prepared { setup, plan_hash: loaded.hash, compiled, baselines, baseline_source, plan_dir, backend, testbed })
}

impl Prepared {
    /// The noise an A/A run measured for `suite` on this testbed, recorded beside its stored
    /// baseline.
    pub fn noise(&self, suite: &str) -> Option<&crate::compare::Noise> {
        self.baselines.noise(suite)
    }

    /// Load suites that have no baseline to compare with (none at all, or none comparable).
    pub fn uncompared_suites(&self) -> Vec<&str> {
        self.compiled
            .suites
            .iter()
            .filter(|s| s.kind == SuiteKind::Load && self.baselines.get(&s.name).is_none())
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// The folder the plan's relative paths are resolved against.
pub fn plan_dir(plan_path: &Path) -> Result<PathBuf, GateError> {
    let dir = match plan_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.canonicalize().map_err(|e| GateError::Input(format!("{}: {e}", dir.display())))
}
