//! Reports for people: terminal table, Markdown (report.md, the PR comment), HTML with charts.
//! Pure: each renderer takes a [`Report`] and returns a `String`; writing files and printing
//! belong to the orchestration.
//!
//! The orchestration builds one [`Report`] per invocation: per suite the current summary, the
//! comparison (if any), where the baseline came from and whether a re-run confirmed a
//! regression; plus run-level facts. [`Headline`] derives the verdict and [`Outcome::exit_code`]
//! maps it to the process exit code, so every renderer and the exit status agree.

pub(crate) mod charts;
pub(crate) mod format;
pub(crate) mod html;
mod markdown;
mod sections;
pub(crate) mod table;
mod terminal;
mod underneath;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::compare::{SuiteComparison, Verdict};
use crate::summary::{HostInfo, Summary};

pub use html::html;
pub use markdown::{MarkdownOptions, markdown};
pub use terminal::{TerminalOptions, terminal};

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
            backend: s.run.backend.clone(),
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
    /// A/B rounds against a git ref built in the same job.
    AbRef {
        git_ref: String,
        rounds: u32,
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
            BaselineSource::AbRef { git_ref, rounds } => write!(f, "A/B against {git_ref} ({rounds} rounds each)"),
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

/// The headline verdict, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    SloBreach,
    Regression,
    Invalid,
}

impl Outcome {
    /// 0 pass, 1 regression or SLO breach, 2 invalid run.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::SloBreach | Outcome::Regression => 1,
            Outcome::Invalid => 2,
        }
    }
}

/// A regressed endpoint, named for the headline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub suite: String,
    pub endpoint: String,
    /// The regressed metric that moved most, `p50 +202.0%`.
    pub biggest: String,
    /// The endpoint's other regressed metrics, `p95 +54.1%`.
    pub others: Vec<String>,
    /// The size of the move, in multiples of the metric's threshold (regressions are listed
    /// by it, largest first).
    pub effect: f64,
}

/// Suites that were not compared because no baseline of this run's testbed and suite
/// definition exists; grouped when the reason is the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotCompared {
    pub suites: Vec<String>,
    /// Why the closest baseline does not do.
    pub why: String,
    /// This run's testbed.
    pub testbed: String,
    /// Testbeds that have a baseline of these suites.
    pub available: Vec<String>,
}

/// Many endpoints of one suite slower at once: the service as a whole, not one route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovedTogether {
    pub suite: String,
    pub regressed: usize,
    /// Endpoints compared (present in both runs).
    pub compared: usize,
}

impl MovedTogether {
    /// At least three endpoints, and at least two thirds of those compared.
    fn of(c: &SuiteComparison) -> Option<MovedTogether> {
        let regressed = c.endpoints.iter().filter(|e| e.verdict == Verdict::Regressed).count();
        let compared = c.endpoints.iter().filter(|e| e.base_requests.is_some() && e.head_requests.is_some()).count();
        (regressed >= 3 && regressed * 3 >= compared * 2).then(|| MovedTogether { suite: c.suite.clone(), regressed, compared })
    }
}

/// What the report leads with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    pub outcome: Outcome,
    /// Largest effect first, across suites (then by suite and endpoint).
    pub regressions: Vec<Regression>,
    pub together: Vec<MovedTogether>,
    pub not_compared: Vec<NotCompared>,
    /// Suites compared with a baseline (or A/B).
    pub compared: usize,
    pub slo_failures: usize,
    pub slo_total: usize,
    pub failed_checks: usize,
    pub invalid_reasons: Vec<String>,
    /// Regressions a re-run did not reproduce, as `suite/endpoint`.
    pub unconfirmed: Vec<String>,
}

impl Headline {
    pub fn of(report: &Report) -> Headline {
        let mut regressions = Vec::new();
        let mut together = Vec::new();
        let mut not_compared: Vec<NotCompared> = Vec::new();
        let mut compared = 0;
        let mut unconfirmed = Vec::new();
        let mut invalid_reasons = report.invalid_reasons.clone();
        let (mut slo_failures, mut slo_total, mut failed_checks) = (0, 0, 0);
        for s in &report.suites {
            if !s.summary.valid {
                if s.summary.invalid_reasons.is_empty() {
                    invalid_reasons.push(format!("{}: run marked invalid", s.summary.suite));
                }
                invalid_reasons.extend(s.summary.invalid_reasons.iter().map(|r| format!("{}: {r}", s.summary.suite)));
            }
            slo_total += s.summary.slo.len();
            slo_failures += s.summary.slo.iter().filter(|x| !x.passed).count();
            failed_checks += s.summary.checks.iter().filter(|c| !c.passed).count();
            if let BaselineSource::NotComparable { why, testbed, available } = &s.baseline {
                match not_compared.iter_mut().find(|n| &n.why == why && &n.available == available) {
                    Some(n) => n.suites.push(s.summary.suite.clone()),
                    None => not_compared.push(NotCompared {
                        suites: vec![s.summary.suite.clone()],
                        why: why.clone(),
                        testbed: testbed.clone(),
                        available: available.clone(),
                    }),
                }
            }
            if s.comparison.as_ref().is_some_and(|c| c.mode != crate::compare::CompareMode::NoBaseline) {
                compared += 1;
            }
            if let Confirmation::NotConfirmed { first_run } = &s.confirmation {
                unconfirmed.extend(first_run.iter().map(|e| format!("{}/{e}", s.summary.suite)));
                continue;
            }
            let Some(c) = &s.comparison else { continue };
            together.extend(MovedTogether::of(c));
            for e in c.regressions_by_effect() {
                let biggest = e.biggest_regression();
                let said = |m: &crate::compare::MetricComparison| format!("{} {}", m.metric, format::delta_short(m));
                regressions.push(Regression {
                    suite: c.suite.clone(),
                    endpoint: e.name.clone(),
                    biggest: biggest.map(said).unwrap_or_default(),
                    others: e.metrics.iter().filter(|m| m.verdict == Verdict::Regressed && Some(*m) != biggest).map(said).collect(),
                    effect: e.effect(),
                });
            }
        }
        // Stable: within one effect, suites keep their run order and endpoints their name order.
        regressions.sort_by(|a, b| b.effect.total_cmp(&a.effect));
        let outcome = if !invalid_reasons.is_empty() {
            Outcome::Invalid
        } else if !regressions.is_empty() {
            Outcome::Regression
        } else if slo_failures + failed_checks > 0 {
            Outcome::SloBreach
        } else {
            Outcome::Pass
        };
        Headline {
            outcome,
            regressions,
            together,
            not_compared,
            compared,
            slo_failures,
            slo_total,
            failed_checks,
            invalid_reasons,
            unconfirmed,
        }
    }

    /// The verdict in plain words: `pass`, `regression`, `SLO breach`, `regression and SLO
    /// breach`, `invalid run`.
    pub fn words(&self) -> &'static str {
        let breach = self.slo_failures + self.failed_checks > 0;
        match self.outcome {
            Outcome::Invalid => "invalid run",
            Outcome::Regression if breach => "regression and SLO breach",
            Outcome::Regression => "regression",
            Outcome::SloBreach => "SLO breach",
            Outcome::Pass => "pass",
        }
    }

    /// One sentence after the verdict, unescaped (renderers escape it).
    pub fn sentences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.invalid_reasons.is_empty() {
            out.push(format!("The run cannot be trusted: {}.", self.invalid_reasons.join("; ")));
        }
        if !self.regressions.is_empty() {
            let names: Vec<String> = self
                .regressions
                .iter()
                .map(|r| match r.others.len() {
                    0 => format!("{}/{} ({})", r.suite, r.endpoint, r.biggest),
                    n => format!("{}/{} ({}; {n} more metric{})", r.suite, r.endpoint, r.biggest, plural(n)),
                })
                .collect();
            let n = self.regressions.len();
            let order = if n > 1 { ", largest first" } else { "" };
            out.push(format!("Regression in {n} endpoint{}{order}: {}.", plural(n), names.join("; ")));
            for t in &self.together {
                out.push(format!(
                    "{} of {} endpoints of {} slower together: the whole service, not one route.",
                    t.regressed, t.compared, t.suite
                ));
            }
        } else if self.compared > 0 {
            out.push("No regression.".to_string());
        } else {
            out.push("Nothing was compared with a baseline.".to_string());
        }
        for n in &self.not_compared {
            let available = if n.available.is_empty() { "none".to_string() } else { n.available.join(", ") };
            out.push(format!(
                "Not comparable, so no verdict on regressions for {}: {}. Testbeds with a baseline: {available}. To compare here, record a baseline on this testbed ({}) with --update-baseline, or compare with the base branch on this machine with --against origin/main.",
                n.suites.join(", "),
                n.why,
                n.testbed
            ));
        }
        if !self.unconfirmed.is_empty() {
            out.push(format!("Not confirmed by a re-run, so not counted: {}.", self.unconfirmed.join(", ")));
        }
        if self.slo_failures > 0 {
            out.push(format!("{} of {} SLOs failed.", self.slo_failures, self.slo_total));
        } else if self.slo_total > 0 {
            out.push(format!("All {} SLOs hold.", self.slo_total));
        }
        if self.failed_checks > 0 {
            out.push(format!("{} check{} failed.", self.failed_checks, plural(self.failed_checks)));
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The process exit code for a report: 0 pass, 1 regression or SLO breach, 2 invalid run.
pub fn exit_code(report: &Report) -> i32 {
    Headline::of(report).outcome.exit_code()
}
