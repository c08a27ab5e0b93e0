//! Step 1 of a gate run: everything the user gave is resolved and checked before anything
//! starts — the options, the plan (compiled for the selected suites), the backend and the
//! testbed, the baselines.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::engine::ProgressMode;
use crate::env::{BackendChoice, BackendKind};
use crate::plan::CompileOptions;
use crate::plan::compiled::Compiled;
use crate::plan::{Setup, SuiteKind};
use crate::render::BaselineSource;
use crate::summary::{self, Testbed};
use crate::util::Notes;

use super::{Baselines, GateError, baseline};

/// Where the baseline comes from.
#[derive(Debug, Clone)]
pub enum BaselineChoice {
    /// No comparison at all.
    None,
    /// A folder of `<suite>.json` (the committed `results/baseline/` by default) or one file;
    /// `source` is how the report names it.
    Path { path: PathBuf, source: BaselineSource },
}

/// Everything one gate run needs, already resolved from the command line.
#[derive(Debug, Clone)]
pub struct GateOptions {
    pub plan_path: PathBuf,
    pub compile: CompileOptions,
    pub backend: BackendChoice,
    /// `external` backend: the app's URL.
    pub app_url: Option<String>,
    /// Results folder: `<suite>.json`, `logs/`.
    pub out_dir: PathBuf,
    pub baseline: BaselineChoice,
    /// Re-run a suite once when it regressed, and fail only if the re-run regresses too.
    pub confirm: bool,
    /// Compare with the closest baseline even when it is of another testbed or an older suite
    /// definition (`--baseline-any-testbed`); the report marks it.
    pub any_testbed: bool,
    pub progress: ProgressMode,
    pub cancel: CancellationToken,
    /// Seed of every virtual user's random draws: the same requests in the same order on
    /// every run, which removes one source of noise between baseline and head.
    pub seed: u64,
    /// `--start-at`: no suite's load starts before this.
    pub start_at: Option<std::time::SystemTime>,
    /// Environment variables added to the app's (`KEY=VALUE`), e.g. an experiment's knob.
    pub app_env: Vec<(String, String)>,
    /// Where progress lines go.
    pub notes: Notes,
}

/// A validated run, before anything is started.
pub struct Prepared {
    pub compiled: Compiled,
    /// The compiled setup with this run's changes: `--app-env`, `PERF_*_IMAGE` (Docker).
    pub setup: Setup,
    /// SHA-256 of the plan file, recorded in every summary.
    pub plan_hash: String,
    pub baselines: Baselines,
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
        Testbed::new(backend.as_str(), t.cpus, t.cpu_model.clone(), t.memory_gib, runtime, t.quick, t.cpu_score)
    }
}

/// Step 1: reads and validates the plan, decides the backend and the testbed, and reads and
/// picks the baselines. Starts nothing.
pub async fn prepare(opts: &GateOptions) -> Result<Prepared, GateError> {
    let (backend, testbed) = resolve_testbed(opts).await;
    prepare_on(opts, backend, testbed)
}

/// The backend this run will use (`auto` resolved by asking the Docker engine) and the testbed
/// it measures on. Starts nothing; takes a fraction of a second (the CPU calibration).
pub async fn resolve_testbed(opts: &GateOptions) -> (BackendKind, Testbed) {
    let backend = opts.backend.resolve().await;
    let runtime = match backend {
        BackendKind::Docker => crate::env::docker::engine_version().await,
        BackendKind::Local | BackendKind::External => None,
    };
    (backend, summary::testbed(backend.as_str(), opts.compile.quick, runtime))
}

/// [`prepare`] with the backend and testbed already decided ([`resolve_testbed`]).
pub fn prepare_on(opts: &GateOptions, backend: BackendKind, testbed: Testbed) -> Result<Prepared, GateError> {
    let loaded = crate::plan::load(&opts.plan_path).map_err(|e| GateError::Input(e.to_string()))?;
    let compiled = loaded.compile(&opts.compile).map_err(|e| GateError::Input(e.to_string()))?;
    let suites: Vec<(String, String)> = compiled.suites.iter().map(|s| (s.name.clone(), s.definition_hash.clone())).collect();
    let baselines = match &opts.baseline {
        BaselineChoice::None => Baselines::default(),
        BaselineChoice::Path { path, .. } => {
            baseline::load(path, baseline::Want { testbed: &testbed, suites: &suites, any_testbed: opts.any_testbed })?
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
    let plan_dir = plan_dir(&opts.plan_path)?;
    Ok(Prepared { setup, plan_hash: loaded.hash, compiled, baselines, plan_dir, backend, testbed })
}

impl Prepared {
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
