//! The headline: the one verdict of a run (pass, SLO breach, regression, invalid), decided
//! once from a [`Report`] for every renderer and the exit code.

use serde::Serialize;

use crate::compare::{SuiteComparison, Verdict};

use super::report::{BaselineSource, Confirmation, Report};

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

/// A metric surely worse (its interval leaves out no change) and worse beyond its threshold,
/// but not surely beyond it (the interval reaches the rule's margin): not counted, but named,
/// so that a pass does not hide it. An interval that reaches no change is noise as far as the
/// run can tell, and a `noisy` one clear of the margin (regressed in the re-run only) is not
/// undecided; the tables show both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Undecided {
    pub suite: String,
    pub endpoint: String,
    /// `p95 +61.9% (95% CI +4.2 … +151.6%)`.
    pub change: String,
    /// Judged against a stored baseline (another run, at another time); otherwise A/B pairs or
    /// rounds measured side by side.
    pub stored: bool,
}

impl Undecided {
    /// The comparison's `noisy` metrics worse beyond their threshold whose interval lies between
    /// no change and the rule's margin ([`crate::compare::MARGIN`] of the threshold), on the
    /// worse side.
    fn of(c: &SuiteComparison) -> Vec<Undecided> {
        let stored = c.mode == crate::compare::CompareMode::Baseline;
        let undecided = |m: &crate::compare::MetricComparison| {
            let margin = crate::compare::MARGIN * m.threshold;
            match (m.metric, m.interval) {
                (crate::compare::Metric::Rps, Some([_, high])) => high < 0.0 && high >= -margin,
                (_, Some([low, _])) => low > 0.0 && low <= margin,
                (_, None) => false,
            }
        };
        c.endpoints
            .iter()
            .flat_map(|e| {
                e.metrics.iter().filter(move |m| m.verdict == Verdict::Noisy && m.worsening() > 1.0 && undecided(m)).map(move |m| {
                    let level = m.level.map_or(String::new(), |l| format!("{:.0}% ", l * 100.0));
                    Undecided {
                        suite: c.suite.clone(),
                        endpoint: e.name.clone(),
                        change: format!("{} {} ({level}CI {})", m.metric, m.delta_short(), m.interval_short().unwrap_or_default()),
                        stored,
                    }
                })
            })
            .collect()
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
    /// Surely worse, beyond the threshold but not surely beyond it ([`Undecided`]): not
    /// counted, named.
    pub undecided: Vec<Undecided>,
}

impl Headline {
    pub fn of(report: &Report) -> Headline {
        let mut regressions = Vec::new();
        let mut together = Vec::new();
        let mut not_compared: Vec<NotCompared> = Vec::new();
        let mut compared = 0;
        let mut unconfirmed = Vec::new();
        let mut undecided = Vec::new();
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
            undecided.extend(Undecided::of(c));
            for e in c.regressions_by_effect() {
                let biggest = e.biggest_regression();
                let said = |m: &crate::compare::MetricComparison| format!("{} {}", m.metric, m.delta_short());
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
            undecided,
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
        let named = |stored: bool| -> Vec<String> {
            self.undecided.iter().filter(|u| u.stored == stored).map(|u| format!("{}/{} {}", u.suite, u.endpoint, u.change)).collect()
        };
        let stored = named(true);
        if !stored.is_empty() {
            out.push(format!(
                "Slower, but not surely beyond the threshold, so not counted: {}. A stored baseline is another run, at another time, and its noise hides how much; to decide it, compare with the base branch on this machine (--against origin/main).",
                stored.join("; ")
            ));
        }
        let side_by_side = named(false);
        if !side_by_side.is_empty() {
            out.push(format!(
                "Slower, but not surely beyond the threshold even side by side, so not counted: {}; a longer suite would decide it.",
                side_by_side.join("; ")
            ));
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
