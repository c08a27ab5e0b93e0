//! A judged run's report: the run's facts and, per suite, its summary, comparison, baseline
//! source and confirmation.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::compare::SuiteComparison;
use crate::summary::{HostInfo, Summary};

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub facts: RunFacts,
    pub suites: Vec<SuiteReport>,
    /// Why the run as a whole is unusable (environment failed, baseline unreadable, bad
    /// config), beyond the suites' own `invalid_reasons`.
    pub invalid_reasons: Vec<String>,
}

/// Facts about the run as a whole.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunFacts {
    /// `local`, `docker` or `external`.
    pub backend: String,
    /// The testbed's key, when the summaries name one.
    pub testbed: Option<String>,
    pub tool_version: String,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_dirty: Option<bool>,
    /// SHA-256 of the plan file.
    pub plan_hash: String,
    pub host: HostInfo,
    /// RFC 3339 start of the first suite.
    pub started_at: Option<String>,
    pub quick: bool,
    /// Other versions worth knowing, by name: `postgres`, `redis`, `app`, `rustc`.
    pub versions: BTreeMap<String, String>,
}

impl RunFacts {
    /// The facts recorded in a summary (all suites of a run share them).
    pub fn from_summary(s: &Summary) -> Self {
        RunFacts {
            backend: s.run.backend.to_string(),
            testbed: s.run.testbed.as_ref().map(|t| t.key.clone()),
            tool_version: s.run.tool_version.clone(),
            git_sha: s.run.git.sha.clone(),
            git_branch: s.run.git.branch.clone(),
            git_dirty: s.run.git.dirty,
            plan_hash: s.run.plan_hash.clone(),
            host: s.run.host.clone(),
            started_at: Some(s.run.started_at.clone()),
            quick: s.run.quick,
            versions: BTreeMap::new(),
        }
    }
}

/// One suite in the report.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The current run (in A/B mode: one head round, or the head rounds merged).
    pub summary: Summary,
    /// The comparison that decides; after a confirmation re-run, the re-run's.
    pub comparison: Option<SuiteComparison>,
    pub baseline: BaselineSource,
    /// The baseline summary, when there is one: its windows are drawn beside the current ones.
    pub baseline_summary: Option<Summary>,
    pub confirmation: Confirmation,
    /// In A/B mode, the same head against the stored baseline of this testbed: a second
    /// opinion (drift since the nightly, a slow creep A/B cannot see), never the verdict.
    pub stored: Option<StoredOpinion>,
}

/// What the stored baseline says of an A/B run's head.
#[derive(Debug, Clone, Serialize)]
pub struct StoredOpinion {
    /// The stored baseline's file, from the repository's root.
    pub path: String,
    pub comparison: SuiteComparison,
}

/// Where the baseline came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BaselineSource {
    None,
    /// A summary committed in the repository.
    Committed {
        path: String,
    },
    /// A CI artifact (for example the nightly run's).
    Artifact {
        name: String,
    },
    /// A/B: the app at a git ref, run beside the head in the same job.
    AbRef {
        git_ref: String,
        /// The commit, shortened.
        sha: String,
    },
    /// Baselines exist, but none of this run's testbed and suite definition: no comparison.
    NotComparable {
        /// Why the closest baseline does not do.
        why: String,
        /// This run's testbed key.
        testbed: String,
        /// Testbeds that have a baseline of this suite.
        available: Vec<String>,
    },
}

impl fmt::Display for BaselineSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaselineSource::None => f.write_str("no baseline"),
            BaselineSource::Committed { path } => write!(f, "committed baseline {path}"),
            BaselineSource::Artifact { name } => write!(f, "artifact {name}"),
            BaselineSource::AbRef { git_ref, sha } => write!(f, "A/B against {git_ref} ({sha}) on this machine"),
            BaselineSource::NotComparable { testbed, .. } => write!(f, "not comparable: no baseline of testbed {testbed}"),
        }
    }
}

/// What a confirmation re-run said about a regression.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Confirmation {
    /// No re-run (nothing regressed, or A/B mode, which needs none).
    #[default]
    NotRun,
    /// The re-run regressed too: the regression stands.
    Confirmed,
    /// The first run regressed on these endpoints, the re-run did not: no regression.
    NotConfirmed { first_run: Vec<String> },
}
