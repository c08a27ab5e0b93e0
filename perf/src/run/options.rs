//! What a gate run is asked to do, and how it fails: the types every step of `run/` shares.
//! A leaf: it imports nothing from its siblings, so each of them can import from it.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::engine::ProgressMode;
use crate::env::BackendChoice;
use crate::github::GithubContext;
use crate::plan::CompileOptions;
use crate::util::Notes;
use crate::verdict::BaselineSource;

/// Why a gate run could not produce a verdict. Every variant is exit 2 except
/// [`GateError::Interrupted`] (130).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Bad input: plan, baseline, options. Nothing was started.
    #[error("{0}")]
    Input(String),
    /// The environment did not come up or broke.
    #[error("{0}")]
    Environment(String),
    #[error("{0}")]
    Io(String),
    #[error("interrupted")]
    Interrupted,
}

impl GateError {
    pub fn exit_code(&self) -> u8 {
        match self {
            GateError::Interrupted => 130,
            _ => 2,
        }
    }
}

/// Where the baseline comes from.
#[derive(Debug, Clone)]
pub enum BaselineChoice {
    /// No comparison at all.
    None,
    /// A folder of `<suite>.json` (the committed `results/baseline/` by default) or one file;
    /// `source` is how the report names it.
    Path { path: PathBuf, source: BaselineSource },
    /// The artifact `<name>-<testbed>` of the newest successful scheduled run of the nightly
    /// `workflow` (needs [`GateOptions::github`]); when it cannot be had, the stored baseline
    /// at `fallback`, and the run says why.
    Artifact { name: String, workflow: String, fallback: PathBuf },
}

/// Which of the gate's ways of reaching a verdict runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Measure here and compare with the stored baseline. `fallback_against`: compare with that
    /// git ref on this machine (A/B) instead when some load suite has no comparable baseline.
    Stored { fallback_against: Option<String> },
    /// A/B: the app at `git_ref` (base) and the working tree (head) measured on this machine.
    Ab { git_ref: String },
    /// Judge the summaries in `dir`, measured elsewhere (shards merged by `merge`): nothing is
    /// started, nothing can be run again.
    Measured { dir: PathBuf },
}

/// Everything one gate run needs, already resolved from the command line.
#[derive(Debug, Clone)]
pub struct GateOptions {
    pub plan_path: PathBuf,
    pub compile: CompileOptions,
    pub backend: BackendChoice,
    /// `external` backend: the app's URL.
    pub app_url: Option<String>,
    /// Results folder: `<suite>.json`, `logs/`, the reports.
    pub out_dir: PathBuf,
    pub baseline: BaselineChoice,
    pub mode: Mode,
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
    /// `--check`: resolve and validate everything, say what would run, start nothing.
    pub check: bool,
    /// Store the run's summaries as the baseline of its testbed under this path (a folder of
    /// testbeds, or a file's folder).
    pub update_baseline: Option<PathBuf>,
    /// Run each load suite a second time (an A/A): both runs are its summary (and so the
    /// baseline), and how far its endpoints moved is stored beside it (`<suite>.noise.json`):
    /// the testbed's noise, the floor of later comparisons.
    pub measure_noise: bool,
    /// The GitHub Actions context, when the gate runs in a workflow: the nightly artifact is
    /// downloaded through it and the run's testbed is set as a step output.
    pub github: Option<GithubContext>,
    /// Where the Markdown report tells its readers to find the full report.
    pub full_report_hint: Option<String>,
}

impl GateOptions {
    /// Options for a gate run of `plan_path` with everything else at its default: stored
    /// baseline mode with no baseline, confirmation on, progress off, results in `out_dir`.
    /// Front ends and tests change what they need.
    pub fn new(plan_path: PathBuf, out_dir: PathBuf) -> GateOptions {
        GateOptions {
            plan_path,
            compile: CompileOptions::default(),
            backend: BackendChoice::Auto,
            app_url: None,
            out_dir,
            baseline: BaselineChoice::None,
            mode: Mode::Stored { fallback_against: None },
            confirm: true,
            any_testbed: false,
            progress: ProgressMode::Off,
            cancel: CancellationToken::new(),
            seed: 1,
            start_at: None,
            app_env: Vec::new(),
            notes: Notes::default(),
            check: false,
            update_baseline: None,
            measure_noise: false,
            github: None,
            full_report_hint: None,
        }
    }
}

/// What one of the gate's modes produced: the judged report and the summaries it wrote.
pub struct GateRun {
    pub report: crate::verdict::Report,
    /// Summary files written, in suite order.
    pub written: Vec<PathBuf>,
    /// The noise an A/A of each load suite showed (`measure_noise`).
    pub noise: Vec<crate::compare::Noise>,
}
