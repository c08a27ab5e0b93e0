//! The verdict-quality experiment (`cargo xtask experiment`): how often the gate's decision is
//! right on this machine, with the gate's own rule and confirmation re-run.
//!
//! Three copies of the app run side by side (with the run's backend: local processes or
//! Docker, so the figures describe the verdicts users get where they run it), identical except for a fixed delay
//! on one route (`REFAPP_DELAY`, the reference app's opt-in knob): the base, one slower by 10%
//! and one slower by 25%. The delays are calibrated so that the route's median latency, not
//! just the added delay, grows by those fractions. Each pair runs the suite on the base (the
//! baseline), then on the base again (same code), then on the 25% and the 10% copies, each
//! judged against that baseline exactly as the gate judges a pull request.

use std::time::Duration;

use serde::Serialize;

use crate::env::{Environment, StartOptions};
use crate::plan::compiled::Suite;
use crate::summary::{self, RunContext, Summary};

use super::context::run_context;
use super::judge::{Judging, judge_suite};
use super::lifetime::{Spec, with_environment, with_environments};
use super::measure::measure_suite;
use super::options::{GateError, GateOptions};
use super::prepare::Prepared;

#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    pub pairs: u32,
    /// Route slowed down (a reference-app route label, also the plan's request name).
    pub route: String,
    /// Delay added to the route on every copy, so that a relative slowdown is measurable.
    pub base_delay_ms: u64,
}

/// One judged pair.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub pair: u32,
    /// `same`, `slower-10%`, `slower-25%`.
    pub condition: String,
    /// Endpoints the gate called regressed after its confirmation re-run.
    pub regressed: Vec<String>,
    /// Whether a re-run happened and what it said.
    pub confirmation: String,
    /// Head p50 / baseline p50 of the slowed route.
    pub p50_ratio: Option<f64>,
    pub p99_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub suite: String,
    pub route: String,
    /// Route median without the delay, measured once before the pairs.
    pub intrinsic_p50_ms: f64,
    /// Delay of each copy, ms: base, 10%, 25%.
    pub delays_ms: [u64; 3],
    pub trials: Vec<Trial>,
}

impl ExperimentReport {
    fn count(&self, condition: &str, f: impl Fn(&Trial) -> bool) -> (usize, usize) {
        let t: Vec<&Trial> = self.trials.iter().filter(|t| t.condition == condition).collect();
        (t.iter().filter(|t| f(t)).count(), t.len())
    }

    /// Same code: pairs that passed (nothing regressed).
    pub fn same_passed(&self) -> (usize, usize) {
        self.count("same", |t| t.regressed.is_empty())
    }
    /// 25% slower: pairs that failed and named the route.
    pub fn slow25_detected(&self) -> (usize, usize) {
        self.count("slower-25%", |t| t.regressed.contains(&self.route))
    }
    /// 10% slower: pairs where the route was called regressed (must be 0).
    pub fn slow10_flagged(&self) -> (usize, usize) {
        self.count("slower-10%", |t| t.regressed.contains(&self.route))
    }
    /// Pairs of any condition where an endpoint other than the route was called regressed.
    pub fn other_endpoints_flagged(&self) -> usize {
        self.trials.iter().filter(|t| t.regressed.iter().any(|e| e != &self.route)).count()
    }
}

fn ratio(base: &Summary, head: &Summary, route: &str, q: fn(&summary::Latency) -> Option<f64>) -> Option<f64> {
    let b = q(&base.endpoints.get(route)?.latency_ms)?;
    let h = q(&head.endpoints.get(route)?.latency_ms)?;
    (b > 0.0).then(|| (h / b * 1000.0).round() / 1000.0)
}

/// Delay that makes the route's median `factor` times the base copy's: the base median is
/// `intrinsic + base_delay`, the slowed one must be `factor` times that.
pub fn delay_for(factor: f64, base_delay_ms: u64, intrinsic_ms: f64) -> u64 {
    let target = factor * (base_delay_ms as f64 + intrinsic_ms) - intrinsic_ms;
    target.round().max(0.0) as u64
}

pub async fn run(opts: &GateOptions, prepared: &Prepared, exp: &ExperimentOptions) -> Result<ExperimentReport, GateError> {
    let suite = prepared.compiled.suites.first().ok_or_else(|| GateError::Input("no suite selected".into()))?;
    if prepared.compiled.request(&exp.route).is_none() {
        return Err(GateError::Input(format!("--route: the plan has no request named `{}`", exp.route)));
    }
    let ctx = run_context(opts, prepared, &prepared.plan_dir);
    let copy = |delay_ms: u64| {
        let mut setup = prepared.setup.clone();
        setup.app.env.insert("REFAPP_DELAY".into(), format!("{}:{delay_ms}", exp.route));
        Spec {
            name: format!("app-delayed-{delay_ms}ms"),
            backend: prepared.backend,
            setup,
            start: StartOptions {
                plan_dir: prepared.plan_dir.clone(),
                logs_dir: opts.out_dir.join("logs").join(format!("delay-{delay_ms}")),
                app_url: None,
                cancel: opts.cancel.clone(),
                fault_proxies: false,
                build_env: Vec::new(),
                notes: opts.notes.clone(),
            },
        }
    };

    // Calibration: the route's own median, without any delay.
    let calibration = with_environment(&opts.notes, &opts.cancel, copy(0), async |bare: &mut Environment| {
        measure_suite(opts, prepared, bare, suite, &ctx).await
    })
    .await?;
    let intrinsic = calibration
        .endpoints
        .get(&exp.route)
        .and_then(|e| e.latency_ms.p50)
        .ok_or_else(|| GateError::Input(format!("the suite never sent `{}`", exp.route)))?;
    let delays = [exp.base_delay_ms, delay_for(1.10, exp.base_delay_ms, intrinsic), delay_for(1.25, exp.base_delay_ms, intrinsic)];
    opts.notes.say(format!(
        "experiment: {} median without delay {intrinsic:.2} ms; delays: base {} ms, +10% {} ms, +25% {} ms",
        exp.route, delays[0], delays[1], delays[2]
    ));
    let specs = delays.iter().map(|&d| copy(d)).collect();
    let trials = with_environments(&opts.notes, &opts.cancel, specs, async |envs: &mut [Environment]| {
        pairs(opts, prepared, exp, suite, &ctx, envs).await
    })
    .await?;
    Ok(ExperimentReport { suite: suite.name.clone(), route: exp.route.clone(), intrinsic_p50_ms: intrinsic, delays_ms: delays, trials })
}

async fn pairs(
    opts: &GateOptions,
    prepared: &Prepared,
    exp: &ExperimentOptions,
    suite: &Suite,
    ctx: &RunContext,
    envs: &mut [Environment],
) -> Result<Vec<Trial>, GateError> {
    let rules = &prepared.compiled.compare;
    let mut trials = Vec::new();
    for pair in 1..=exp.pairs {
        let base = measure_suite(opts, prepared, &mut envs[0], suite, ctx).await?;
        for (condition, i) in [("same", 0), ("slower-25%", 2), ("slower-10%", 1)] {
            let env = &mut envs[i];
            let head = measure_suite(opts, prepared, env, suite, ctx).await?;
            let p50_ratio = ratio(&base, &head, &exp.route, |l| l.p50);
            let p99_ratio = ratio(&base, &head, &exp.route, |l| l.p99);
            let how =
                Judging { rules, notes: &opts.notes, confirm: true, across: None, measured_elsewhere: false, paired: false, noise: None };
            let judged = judge_suite(&base, head, &how, move || measure_suite(opts, prepared, env, suite, ctx)).await?;
            let regressed: Vec<String> = judged.comparison.regressed_endpoints().into_iter().map(str::to_string).collect();
            let confirmation = match &judged.confirmation {
                crate::verdict::Confirmation::NotRun => "no re-run".to_string(),
                crate::verdict::Confirmation::Confirmed => "re-run confirmed".to_string(),
                crate::verdict::Confirmation::NotConfirmed { first_run } => format!("re-run cleared {}", first_run.join(", ")),
            };
            opts.notes.say(format!(
                "pair {pair}/{}: {condition}: {} ({confirmation}; {} p50 ×{})",
                exp.pairs,
                if regressed.is_empty() { "pass".to_string() } else { format!("regressed {}", regressed.join(", ")) },
                exp.route,
                p50_ratio.map(|r| format!("{r:.3}")).unwrap_or("-".into())
            ));
            trials.push(Trial { pair, condition: condition.to_string(), regressed, confirmation, p50_ratio, p99_ratio });
        }
        // Let the copies' connections settle between pairs.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(trials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_scale_the_whole_median_not_only_the_added_delay() {
        // 40 ms added on a route that takes 2 ms by itself: the base median is 42 ms.
        assert_eq!(delay_for(1.25, 40, 2.0), 51); // 1.25 × 42 − 2 = 50.5
        assert_eq!(delay_for(1.10, 40, 2.0), 44); // 1.10 × 42 − 2 = 44.2
        assert_eq!(delay_for(1.0, 40, 2.0), 40);
        assert_eq!(delay_for(0.01, 1, 5.0), 0, "never negative");
    }
}
