//! The verdict-quality experiment (`cargo xtask experiment`): how often the gate's decision is
//! right on this machine, with the gate's own rule (through [`judge_suite`], the one judge).
//!
//! Copies of the app run side by side (with the run's backend), identical except for CPU work
//! added to one route (`REFAPP_WORK`, the reference app's opt-in knob: a busy loop, as slower
//! code would be, in percent of each request's own time in the app, so that the machine's
//! speed at the moment does not change the share): the base; an identical copy (the same code
//! twice: any regression it is called is a false fail); copies whose route's median is slower
//! by 10%, 20%, 25% and 30%; and a copy whose route's p95 is 30% slower and its median barely
//! (work on one request in ten). The work is sized by a calibration pass in the trials' own
//! conditions: the route's distribution, and how much of a copy's server-side work shows in
//! the latency the load measures.
//!
//! Each trial measures the suite on every copy and judges each against the base:
//! - A/B mode: all copies take turns at each segment of the suite, in a random order, and each
//!   copy is compared with the base pair by pair, as `--against` compares a pull request, with
//!   its second pass: the copies whose first pass left a change undecided (under any of the
//!   thresholds judged) take turns with the base at every segment once more, and are judged
//!   over both passes where `--against` would have been;
//! - duet mode: the base and one copy at a time, both loaded at the same moments (the same
//!   requests leave for both at the same instants), compared pair by pair;
//! - stored mode: the base runs the whole suite twice, as the nightly does (`--measure-noise`:
//!   both runs are the baseline, their A/A the testbed's noise), then each copy does, judged
//!   against that baseline as a pull request against a stored baseline is: the noise as the
//!   floor, confirmation re-run included.
//!
//! Each comparison is judged with the plan's threshold and with the other thresholds asked
//! for (a team that wants 5%): the same measurements, another rule.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::compare::{Metric, Noise};
use crate::env::{Environment, StartOptions};
use crate::plan::CompareRules;
use crate::plan::compiled::Suite;
use crate::summary::{self, RunContext, Summary};

use super::context::run_context;
use super::judge::{Judging, judge_pairs, judge_suite, measured_twice, needs_another_pass, no_rerun, wants_confirmation};
use super::lifetime::{Spec, with_environments};
use super::measure::{Schedule, measure_in_turns, measure_suite};
use super::options::{GateError, GateOptions};
use super::prepare::Prepared;

/// How each trial compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// Interleaved segments, paired (`--against`).
    Ab,
    /// The base and one copy at a time loaded at the same moments, segment by segment, paired
    /// ([`Schedule::Duet`]).
    Duet,
    /// The whole suite on the base, then on each copy (a stored baseline).
    Stored,
}

impl Comparison {
    /// How a trial's copies share the segments.
    fn schedule(self) -> Schedule {
        if self == Comparison::Duet { Schedule::Duet } else { Schedule::Turns }
    }
}

#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    pub trials: u32,
    /// Route slowed down (a reference-app route label, also the plan's request name).
    pub route: String,
    pub comparison: Comparison,
    /// Thresholds to judge with besides the plan's (A/B mode).
    pub more_thresholds: Vec<f64>,
    /// An experiment kept in the output folder that these trials add to (`--more`): its copies
    /// as they were calibrated then, its trials kept and numbered on from its last.
    pub more: Option<ExperimentReport>,
}

/// One copy of the app: what was done to the route.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Arm {
    /// `same`, `p50+10%`, …, `p95+30%`.
    pub name: String,
    /// Work in percent of each slowed request's own time, and one request in how many gets
    /// it (0: no work).
    pub percent: u32,
    pub every: u64,
}

/// One comparison of a copy with the base, under one threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub trial: u32,
    pub arm: String,
    pub threshold: f64,
    /// Endpoints the gate called regressed.
    pub regressed: Vec<String>,
    /// The run was invalid (a busy machine, a run behind schedule): no verdict.
    pub invalid: bool,
    /// Head over base of the route's p50 and p95.
    pub p50_ratio: Option<f64>,
    pub p95_ratio: Option<f64>,
    /// Why the route's p50 and p95 got their verdicts (the rule's own words, interval included).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Passes of pairs the verdict rests on: 2 when the first left a change undecided and
    /// `--against` would have measured every pair once more (A/B mode).
    #[serde(default = "one_pass")]
    pub passes: u32,
}

fn one_pass() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentReport {
    pub suite: String,
    /// The suite's definition hash (the plan's suite with `--quick` or not): trials added later
    /// (`--more`) must measure the same definition. Empty in reports written before it was kept.
    #[serde(default)]
    pub suite_hash: String,
    /// The testbed the trials ran on (machine, backend, link): trials added later must run on
    /// the same. Empty in reports written before it was kept.
    #[serde(default)]
    pub testbed: String,
    pub route: String,
    pub comparison: Comparison,
    /// The route's own p50 and p95, measured once before the trials, ms.
    pub intrinsic_p50_ms: f64,
    pub intrinsic_p95_ms: f64,
    pub arms: Vec<Arm>,
    pub trials: Vec<Trial>,
    /// Seconds one trial took, on average.
    pub trial_seconds: f64,
}

impl ExperimentReport {
    /// Of the valid trials of `arm` judged with `threshold`: how many `hit` says yes to, of how
    /// many.
    pub fn count(&self, arm: &str, threshold: f64, hit: impl Fn(&Trial) -> bool) -> (usize, usize) {
        let t: Vec<&Trial> = self.trials.iter().filter(|t| t.arm == arm && (t.threshold - threshold).abs() < 1e-9 && !t.invalid).collect();
        (t.iter().filter(|t| hit(t)).count(), t.len())
    }

    /// Trials of `arm` under `threshold` where the slowed route was called regressed (for
    /// `same`: where anything was).
    pub fn called(&self, arm: &str, threshold: f64) -> (usize, usize) {
        if arm == "same" {
            self.count(arm, threshold, |t| !t.regressed.is_empty())
        } else {
            self.count(arm, threshold, |t| t.regressed.contains(&self.route))
        }
    }

    /// How much the route's p50 (or p95) reading varies from trial to trial: the sample
    /// standard deviation of the log of its ratio over the arm's valid trials judged with
    /// `threshold` (about a relative spread: 0.2 is ±20%); `None` under two trials. Read beside
    /// the median ratio, it says whether any threshold on that reading can tell two copies
    /// apart: a change caught 19 times in 20 and +10% almost never need about 3.6 spreads between
    /// them (1.645 + 1.96).
    pub fn spread(&self, arm: &str, p95: bool, threshold: f64) -> Option<f64> {
        use statrs::statistics::Statistics;
        let logs: Vec<f64> = self
            .trials
            .iter()
            .filter(|t| t.arm == arm && (t.threshold - threshold).abs() < 1e-9 && !t.invalid)
            .filter_map(|t| if p95 { t.p95_ratio } else { t.p50_ratio })
            .filter(|r| *r > 0.0)
            .map(f64::ln)
            .collect();
        (logs.len() >= 2).then(|| logs.std_dev())
    }

    /// The median of the route's p50 (or p95) ratio over an arm's trials.
    pub fn median_ratio(&self, arm: &str, p95: bool) -> Option<f64> {
        let ratios = self.trials.iter().filter(|t| t.arm == arm).filter_map(|t| if p95 { t.p95_ratio } else { t.p50_ratio });
        crate::util::median(ratios)
    }
}

fn ratio(base: &Summary, head: &Summary, route: &str, q: fn(&summary::Latency) -> Option<f64>) -> Option<f64> {
    let b = q(&base.endpoints.get(route)?.latency_ms)?;
    let h = q(&head.endpoints.get(route)?.latency_ms)?;
    (b > 0.0).then(|| (h / b * 1000.0).round() / 1000.0)
}

/// The work (percent of a request's own time) that makes the route's `q`-quantile `factor`
/// times what it is when one request in `every` does it: the quantile of the mixture of the
/// measured latencies `values` (`(µs, count)`) and the same latencies made slower by the
/// work, found by bisection. Proportional, so that the machine's speed does not change it.
/// Pure.
pub fn tail_percent(values: &[(u64, u64)], q: f64, factor: f64, every: u64) -> u32 {
    let quantile = |share: f64| {
        let slow = 1.0 / every as f64;
        let mut points: Vec<(f64, f64)> = values.iter().map(|(v, n)| (*v as f64, *n as f64 * (1.0 - slow))).collect();
        points.extend(values.iter().map(|(v, n)| (*v as f64 * (1.0 + share), *n as f64 * slow)));
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = points.iter().map(|p| p.1).sum();
        let mut seen = 0.0;
        for (v, n) in &points {
            seen += n;
            if seen >= q * total {
                return *v;
            }
        }
        points.last().map_or(0.0, |p| p.0)
    };
    let target = factor * quantile(0.0);
    if quantile(0.0) >= target {
        return 0;
    }
    let (mut lo, mut hi) = (0.0f64, 20.0f64);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if quantile(mid) < target { lo = mid } else { hi = mid }
    }
    (hi * 100.0 - 1e-6).ceil() as u32
}

/// What every step of an experiment works with.
struct Bench<'a> {
    opts: &'a GateOptions,
    prepared: &'a Prepared,
    exp: &'a ExperimentOptions,
    /// The suite each trial runs.
    suite: &'a Suite,
    ctx: RunContext,
}

impl Bench<'_> {
    /// The environment of one copy: the plan's, with the copy's work on the route.
    fn copy(&self, arm: &Arm) -> Spec {
        let (opts, prepared) = (self.opts, self.prepared);
        let mut setup = prepared.setup.clone();
        if arm.percent > 0 {
            setup.app.env.insert("REFAPP_WORK".into(), format!("{}:{}%@{}", self.exp.route, arm.percent, arm.every));
        }
        Spec {
            name: format!("app {}", arm.name),
            backend: prepared.backend,
            setup,
            start: StartOptions {
                plan_dir: prepared.plan_dir.clone(),
                logs_dir: opts.out_dir.join("logs").join(&arm.name),
                app_url: None,
                cancel: opts.cancel.clone(),
                fault_proxies: false,
                build_env: Vec::new(),
                notes: opts.notes.clone(),
            },
        }
    }

    /// The thresholds each comparison is judged with: the plan's, then the others asked for.
    fn thresholds(&self) -> Vec<f64> {
        std::iter::once(self.prepared.compiled.compare.threshold).chain(self.exp.more_thresholds.iter().copied()).collect()
    }

    /// Every copy's run context (one each, all the same).
    fn ctxs(&self, n: usize) -> Vec<RunContext> {
        vec![self.ctx.clone(); n]
    }
}

pub async fn run(opts: &GateOptions, prepared: &Prepared, exp: &ExperimentOptions) -> Result<ExperimentReport, GateError> {
    let suite = prepared.compiled.suites.first().ok_or_else(|| GateError::Input("no suite selected".into()))?;
    if prepared.compiled.request(&exp.route).is_none() {
        return Err(GateError::Input(format!("--route: the plan has no request named `{}`", exp.route)));
    }
    let bench = Bench { opts, prepared, exp, suite, ctx: run_context(opts, prepared, &prepared.plan_dir) };
    let (arms, p50, p95, earlier) = start(&bench).await?;
    let first = earlier.iter().map(|t| t.trial).max().unwrap_or(0) + 1;
    let last = first + exp.trials - 1;
    // Another sitting draws other orders.
    let mut rng = SmallRng::seed_from_u64(opts.seed ^ u64::from(first));
    let report = |trials: Vec<Trial>, trial_seconds: f64| ExperimentReport {
        suite: suite.name.clone(),
        suite_hash: suite.definition_hash.clone(),
        testbed: prepared.testbed.key.clone(),
        route: exp.route.clone(),
        comparison: exp.comparison,
        intrinsic_p50_ms: p50,
        intrinsic_p95_ms: p95,
        arms: arms.iter().skip(1).cloned().collect(),
        trials: earlier.iter().cloned().chain(trials).collect(),
        trial_seconds,
    };

    let specs = arms.iter().map(|a| bench.copy(a)).collect();
    let started = std::time::Instant::now();
    let trials = with_environments(&opts.notes, &opts.cancel, specs, async |envs: &mut [Environment]| {
        let mut out = Vec::new();
        for trial in first..=last {
            let done = match exp.comparison {
                Comparison::Ab | Comparison::Duet => ab_trial(&bench, envs, &arms, trial, &mut rng).await?,
                Comparison::Stored => stored_trial(&bench, envs, &arms, trial, &mut rng).await?,
            };
            for t in &done {
                opts.notes.say(format!(
                    "trial {trial}/{last}: {} at {:.0}%: {}{} ({} p50 ×{})",
                    t.arm,
                    t.threshold * 100.0,
                    if t.regressed.is_empty() { "pass".to_string() } else { format!("regressed {}", t.regressed.join(", ")) },
                    if t.invalid { " [invalid]" } else { "" },
                    exp.route,
                    t.p50_ratio.map(|r| format!("{r:.3}")).unwrap_or("-".into())
                ));
            }
            out.extend(done);
            // What is known so far, so that the kept trials can be judged again (--rejudge)
            // before the last one ends.
            let so_far = report(out.clone(), started.elapsed().as_secs_f64() / f64::from(trial - first + 1));
            let json = serde_json::to_vec_pretty(&so_far).map_err(|e| GateError::Io(e.to_string()))?;
            crate::util::write_atomic(&opts.out_dir.join("trials").join("report.json"), &json).map_err(|e| GateError::Io(e.to_string()))?;
        }
        Ok(out)
    })
    .await?;
    Ok(report(trials, started.elapsed().as_secs_f64() / f64::from(exp.trials.max(1))))
}

/// Where the trials start from: the copies to measure (`base` first), the route's p50 and p95
/// without work, and the trials already taken. For `--more`, the kept experiment's copies and
/// trials, once it is shown to have measured the same thing; otherwise a new calibration.
async fn start(bench: &Bench<'_>) -> Result<(Vec<Arm>, f64, f64, Vec<Trial>), GateError> {
    let Bench { opts, prepared, exp, suite, .. } = *bench;
    let Some(kept) = &exp.more else {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let (arms, p50, p95) = calibrate(bench, &mut rng).await?;
        return Ok((arms, p50, p95, Vec::new()));
    };
    let now = ExperimentReport {
        suite: suite.name.clone(),
        suite_hash: suite.definition_hash.clone(),
        testbed: prepared.testbed.key.clone(),
        route: exp.route.clone(),
        comparison: exp.comparison,
        trials: Vec::new(),
        ..kept.clone()
    };
    same_experiment(kept, &now)?;
    let base = Arm { name: "base".into(), percent: 0, every: 1 };
    let arms = std::iter::once(base).chain(kept.arms.iter().cloned()).collect();
    Ok((arms, kept.intrinsic_p50_ms, kept.intrinsic_p95_ms, kept.trials.clone()))
}

/// Trials added to a kept experiment must measure what it measured: the same suite (by name and
/// definition), testbed, route and comparison. `now` is this run's report, without trials. Pure.
pub fn same_experiment(kept: &ExperimentReport, now: &ExperimentReport) -> Result<(), GateError> {
    let differs = |what: &str, kept: &str, now: &str| {
        Err(GateError::Input(format!(
            "--more: the kept experiment measured {what} `{kept}`, this run would measure `{now}`: start another --out"
        )))
    };
    let mode = |c: Comparison| format!("{c:?}").to_lowercase();
    if kept.suite != now.suite {
        differs("suite", &kept.suite, &now.suite)
    } else if !kept.suite_hash.is_empty() && kept.suite_hash != now.suite_hash {
        Err(GateError::Input(format!(
            "--more: suite `{}` is defined otherwise than when the kept trials ran (the plan, or --quick, changed): start another --out",
            now.suite
        )))
    } else if !kept.testbed.is_empty() && kept.testbed != now.testbed {
        differs("testbed", &kept.testbed, &now.testbed)
    } else if kept.route != now.route {
        differs("route", &kept.route, &now.route)
    } else if kept.comparison != now.comparison {
        differs("mode", &mode(kept.comparison), &mode(now.comparison))
    } else {
        Ok(())
    }
}

/// Calibration, in the trials' own conditions (segments taken in turns): the route's own
/// distribution, and how much of a copy's server-side work shows in the latency the load sees
/// (the rest is the client's and the network's share), from a probe doing 100% more work.
/// Returns the arms to try (`base` first), sized so that each shows the change its name says,
/// and the route's p50 and p95 without work, ms.
async fn calibrate(bench: &Bench<'_>, rng: &mut SmallRng) -> Result<(Vec<Arm>, f64, f64), GateError> {
    let Bench { opts, prepared, exp, suite, .. } = *bench;
    let bare = Arm { name: "calibration".into(), percent: 0, every: 1 };
    let probe = Arm { name: "probe".into(), percent: 100, every: 1 };
    let specs = vec![bench.copy(&bare), bench.copy(&probe)];
    let sides = with_environments(&opts.notes, &opts.cancel, specs, async |envs: &mut [Environment]| {
        measure_in_turns(opts, prepared, suite, envs, &bench.ctxs(2), rng, exp.comparison.schedule(), true, |_, _| {}).await
    })
    .await?;
    let route = sides[0].endpoints.get(&exp.route).ok_or_else(|| GateError::Input(format!("the suite never sent `{}`", exp.route)))?;
    let values: Vec<(u64, u64)> = summary::hist::decode(&route.histogram)
        .map(|h| h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect())
        .unwrap_or_default();
    let (p50, p95) = (route.latency_ms.p50.unwrap_or(0.0), route.latency_ms.p95.unwrap_or(0.0));
    let shows = ratio(&sides[0], &sides[1], &exp.route, |l| l.p50).map_or(1.0, |r| (r - 1.0).clamp(0.05, 1.0));
    let server = |client_share: f64| (client_share * 100.0 / shows).round() as u32;
    let mut arms = vec![Arm { name: "base".into(), percent: 0, every: 1 }, Arm { name: "same".into(), percent: 0, every: 1 }];
    for pct in [10u32, 20, 25, 30] {
        arms.push(Arm { name: format!("p50+{pct}%"), percent: server(f64::from(pct) / 100.0), every: 1 });
    }
    let tail = f64::from(tail_percent(&values, 0.95, 1.30, 10)) / 100.0;
    arms.push(Arm { name: "p95+30%".into(), percent: server(tail), every: 10 });
    let work: Vec<String> = arms.iter().skip(2).map(|a| format!("{} +{}% 1 in {}", a.name, a.percent, a.every)).collect();
    opts.notes.say(format!(
        "experiment: {} p50 {p50:.2} ms, p95 {p95:.2} ms without work; {:.0}% of the server's work shows in its latency; work: {}",
        exp.route,
        shows * 100.0,
        work.join(", ")
    ));

    Ok((arms, p50, p95))
}

/// Rules with another threshold: the plan's rule otherwise.
fn with_threshold(rules: &CompareRules, threshold: f64) -> CompareRules {
    let mut r = rules.clone();
    r.threshold = threshold;
    r
}

/// One A/B trial, each copy judged against the base pair by pair, with each threshold. A/B
/// mode: every copy takes a turn at each segment, in a random order. Duet mode: the base and
/// one copy at a time, loaded at the same moments.
async fn ab_trial(
    bench: &Bench<'_>,
    envs: &mut [Environment],
    arms: &[Arm],
    trial: u32,
    rng: &mut SmallRng,
) -> Result<Vec<Trial>, GateError> {
    let Bench { opts, prepared, exp, suite, .. } = *bench;
    let ctxs = bench.ctxs(envs.len());
    // Each copy's measurement and the base's it is compared with.
    let mut pairs: Vec<(Summary, Summary)> = Vec::new();
    if exp.comparison == Comparison::Duet {
        // The base beside one copy at a time, as `--against` runs two sides, the copies in an
        // order drawn for the trial: each copy is swapped in next to the base for its turn,
        // and back.
        let mut order: Vec<usize> = (1..envs.len()).collect();
        order.shuffle(rng);
        let mut measured: Vec<Option<(Summary, Summary)>> = vec![None; envs.len()];
        for i in order {
            envs.swap(1, i);
            let sides = measure_in_turns(opts, prepared, suite, &mut envs[..2], &ctxs[..2], rng, Schedule::Duet, true, |_, _| {}).await;
            envs.swap(1, i);
            let [base, head]: [Summary; 2] = sides?.try_into().map_err(|_| GateError::Io("a duet measured other than two sides".into()))?;
            keep(opts, trial, &format!("{}.base", arms[i].name), &base)?;
            measured[i] = Some((base, head));
        }
        pairs.extend(measured.into_iter().flatten());
    } else {
        let mut sides = measure_in_turns(opts, prepared, suite, envs, &ctxs, rng, Schedule::Turns, true, |_, _| {}).await?;
        keep(opts, trial, "base", &sides[0])?;
        let base = sides.remove(0);
        pairs.extend(sides.into_iter().map(|s| (base.clone(), s)));
    }
    for ((_, head), arm) in pairs.iter().zip(arms.iter().skip(1)) {
        keep(opts, trial, &arm.name, head)?;
    }
    let thresholds = bench.thresholds();
    // A duet is a study and has no second pass.
    let more = if exp.comparison == Comparison::Ab {
        second_pass(bench, envs, arms, trial, rng, &pairs, &thresholds).await?
    } else {
        vec![None; pairs.len()]
    };
    let mut out = Vec::new();
    for (((base, head), arm), more) in pairs.iter().zip(arms.iter().skip(1)).zip(&more) {
        for &threshold in &thresholds {
            out.push(
                judge_copy(&opts.notes, trial, arm, threshold, (base, head), more.as_ref(), &prepared.compiled.compare, &exp.route).await?,
            );
        }
    }
    Ok(out)
}

/// The second pass `--against` would measure for each copy whose first pass (`pairs`, in
/// `arms`' order after the base) left a change undecided under any of `thresholds`: the base
/// and those copies take turns at every segment once more. Per copy, its second pass and the
/// base's beside it, or `None`.
async fn second_pass(
    bench: &Bench<'_>,
    envs: &mut [Environment],
    arms: &[Arm],
    trial: u32,
    rng: &mut SmallRng,
    pairs: &[(Summary, Summary)],
    thresholds: &[f64],
) -> Result<Vec<Option<(Summary, Summary)>>, GateError> {
    let Bench { opts, prepared, suite, .. } = *bench;
    let mut more: Vec<Option<(Summary, Summary)>> = vec![None; pairs.len()];
    let need: Vec<usize> = pairs
        .iter()
        .enumerate()
        .filter(|(_, (base, head))| thresholds.iter().any(|t| needs_another_pass(&first_pass(base, head, &prepared.compiled.compare, *t))))
        .map(|(i, _)| i + 1)
        .collect();
    if need.is_empty() {
        return Ok(more);
    }
    // The copies that need it next to the base, in `need`'s order (ascending, so each swap
    // moves only copies already placed or not needed), and back afterwards.
    let ctxs = bench.ctxs(need.len() + 1);
    let swaps: Vec<(usize, usize)> = need.iter().enumerate().map(|(k, &i)| (k + 1, i)).collect();
    swaps.iter().for_each(|&(a, b)| envs.swap(a, b));
    let measured = measure_in_turns(opts, prepared, suite, &mut envs[..=need.len()], &ctxs, rng, Schedule::Turns, false, |_, _| {}).await;
    swaps.iter().rev().for_each(|&(a, b)| envs.swap(a, b));
    let mut sides = measured?;
    keep(opts, trial, &format!("{MORE}/base"), &sides[0])?;
    let base = sides.remove(0);
    for (&i, head) in need.iter().zip(sides) {
        keep(opts, trial, &format!("{MORE}/{}", arms[i].name), &head)?;
        more[i - 1] = Some((base.clone(), head));
    }
    Ok(more)
}

/// Where a trial's second passes are kept: `trials/<n>/more/<arm>.json`, the base's as
/// `more/base.json`.
const MORE: &str = "more";

/// A copy's first pass compared with the base's under `threshold`, as the one judge compares
/// an A/B pair (the notes aside).
fn first_pass(base: &Summary, head: &Summary, rules: &CompareRules, threshold: f64) -> crate::compare::SuiteComparison {
    let ctx = crate::compare::Context { paired: true, noise: None };
    crate::compare::compare_suite_with(Some(base), head, &with_threshold(rules, threshold), ctx)
}

/// One copy judged against the base under `threshold` by the gate's A/B judge
/// ([`judge_pairs`]), with the second pass kept for it (`more`) when there is one. A copy the
/// judge wants a second pass for and has none (trials kept before second passes existed, a
/// duet) keeps its first pass's verdict.
#[allow(clippy::too_many_arguments)] // a trial's figures, passed down once
async fn judge_copy(
    notes: &crate::util::Notes,
    trial: u32,
    arm: &Arm,
    threshold: f64,
    (base, head): (&Summary, &Summary),
    more: Option<&(Summary, Summary)>,
    rules: &CompareRules,
    route: &str,
) -> Result<Trial, GateError> {
    let rules = with_threshold(rules, threshold);
    let how = Judging { rules: &rules, notes, confirm: false, across: None, measured_elsewhere: false, paired: true, noise: None };
    let first = first_pass(base, head, &rules, threshold);
    let passes = if needs_another_pass(&first) && more.is_some() { 2 } else { 1 };
    let (base, judged) = match more {
        Some(m) if passes == 2 => judge_pairs(base, head.clone(), &how, || async { Ok(m.clone()) }).await?,
        _ => (base.clone(), judge_suite(base, head.clone(), &how, no_rerun).await?),
    };
    let mut t = trial_of(trial, arm, threshold, &base, &judged.summary, judged.comparison.regressed_endpoints(), route);
    t.passes = passes;
    t.reasons = reasons(&judged.comparison, route);
    Ok(t)
}

/// Why the route's p50 and p95 got their verdicts, in the rule's words.
fn reasons(c: &crate::compare::SuiteComparison, route: &str) -> Vec<String> {
    c.endpoint(route)
        .map(|e| {
            e.metrics
                .iter()
                .filter(|m| matches!(m.metric, Metric::P50 | Metric::P95))
                .map(|m| format!("{} {}: {}", m.metric, m.verdict, m.reason))
                .collect()
        })
        .unwrap_or_default()
}

/// One stored-baseline trial, as the nightly and a pull request make one: the base's whole
/// suite twice (the nightly's `--measure-noise`: both runs are the baseline, and their A/A the
/// testbed's noise, the floor a stored comparison has where the plan sets none), then each copy's,
/// judged against the baseline with that noise as the gate judges a pull request, its
/// confirmation re-run included (measured once when any threshold asks for it, and kept), with
/// each threshold. The copies run in an order drawn for the trial, so that none is always the
/// furthest from the baseline.
async fn stored_trial(
    bench: &Bench<'_>,
    envs: &mut [Environment],
    arms: &[Arm],
    trial: u32,
    rng: &mut SmallRng,
) -> Result<Vec<Trial>, GateError> {
    let Bench { opts, prepared, exp, suite, ref ctx } = *bench;
    let base = measure_suite(opts, prepared, &mut envs[0], suite, ctx).await?;
    keep(opts, trial, "base", &base)?;
    let aa = measure_suite(opts, prepared, &mut envs[0], suite, ctx).await?;
    keep(opts, trial, &format!("{AA}/base"), &aa)?;
    let rules = &prepared.compiled.compare;
    let (base, noise) = measured_twice(base, aa, rules)?;
    let thresholds = bench.thresholds();
    let mut order: Vec<usize> = (1..arms.len()).collect();
    order.shuffle(rng);
    let mut out = Vec::new();
    for i in order {
        let arm = &arms[i];
        let head = measure_suite(opts, prepared, &mut envs[i], suite, ctx).await?;
        keep(opts, trial, &arm.name, &head)?;
        let again = if thresholds.iter().any(|&t| wants_rerun(&base, &head, &noise, rules, t)) {
            let again = measure_suite(opts, prepared, &mut envs[i], suite, ctx).await?;
            keep(opts, trial, &format!("{AGAIN}/{}", arm.name), &again)?;
            Some(again)
        } else {
            None
        };
        for &threshold in &thresholds {
            let pair = (&base, &head);
            out.push(judge_stored(&opts.notes, trial, arm, threshold, pair, again.as_ref(), &noise, rules, &exp.route).await?);
        }
        // Let the copies' connections settle between runs.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(out)
}

/// Where a stored trial keeps the base's A/A run (`trials/<n>/aa/base.json`) and each copy's
/// confirmation re-run (`trials/<n>/again/<arm>.json`).
const AA: &str = "aa";
const AGAIN: &str = "again";

/// Whether the gate would run the suite once more to confirm a stored comparison under
/// `threshold` ([`wants_confirmation`]). Pure.
fn wants_rerun(base: &Summary, head: &Summary, noise: &Noise, rules: &CompareRules, threshold: f64) -> bool {
    let ctx = crate::compare::Context { paired: false, noise: Some(noise) };
    wants_confirmation(head, &crate::compare::compare_suite_with(Some(base), head, &with_threshold(rules, threshold), ctx))
}

/// One copy judged against the stored baseline under `threshold` by the gate's judge
/// ([`judge_suite`]), with the testbed's `noise` and the confirmation re-run kept for it
/// (`again`). A copy the judge wants a re-run for and has none (trials kept before re-runs
/// were) keeps its first run's verdict.
#[allow(clippy::too_many_arguments)] // a trial's figures, passed down once
async fn judge_stored(
    notes: &crate::util::Notes,
    trial: u32,
    arm: &Arm,
    threshold: f64,
    (base, head): (&Summary, &Summary),
    again: Option<&Summary>,
    noise: &Noise,
    rules: &CompareRules,
    route: &str,
) -> Result<Trial, GateError> {
    let rules = with_threshold(rules, threshold);
    let how = Judging {
        rules: &rules,
        notes,
        confirm: again.is_some(),
        across: None,
        measured_elsewhere: false,
        paired: false,
        noise: Some(noise),
    };
    let rerun = || async { again.cloned().ok_or_else(|| GateError::Input("no re-run kept".into())) };
    let judged = judge_suite(base, head.clone(), &how, rerun).await?;
    let mut t = trial_of(trial, arm, threshold, base, &judged.summary, judged.comparison.regressed_endpoints(), route);
    t.passes = if judged.confirmation == crate::verdict::Confirmation::NotRun { 1 } else { 2 };
    t.reasons = reasons(&judged.comparison, route);
    Ok(t)
}

/// Keeps a trial's summary of one copy as `<out>/trials/<trial>/<arm>.json`, so that the
/// measurements can be judged again by another rule without being run again
/// ([`rejudge`]).
fn keep(opts: &GateOptions, trial: u32, arm: &str, s: &Summary) -> Result<(), GateError> {
    let file = opts.out_dir.join("trials").join(trial.to_string()).join(format!("{arm}.json"));
    summary::write_atomic(&file, s).map_err(|e| GateError::Io(e.to_string()))
}

/// Judges the trials kept in `dir` (`trials/<n>/<arm>.json`, A/B's second passes in
/// `trials/<n>/more/`, a stored trial's A/A of the base in `aa/` and re-runs in `again/`) again
/// with `rules`: the same measurements, today's rule (an A/B copy by the gate's A/B judge, its
/// kept second pass taken where the judge asks for one; a stored copy by the gate's judge
/// against its base and the base's A/A together, their noise as the floor, with its kept
/// re-run). Pure but for reading the files.
pub fn rejudge(
    dir: &std::path::Path,
    report: &ExperimentReport,
    rules: &CompareRules,
    thresholds: &[f64],
) -> Result<Vec<Trial>, GateError> {
    let paired = report.comparison != Comparison::Stored;
    let notes = crate::util::Notes::to(|_| {});
    let mut out = Vec::new();
    let mut trial = 1u32;
    loop {
        let folder = dir.join("trials").join(trial.to_string());
        // The last trial may have been cut short (Ctrl-C) before every copy ran: not judged.
        if !folder.is_dir() || report.arms.iter().any(|a| !folder.join(format!("{}.json", a.name)).is_file()) {
            break;
        }
        let read = |arm: &str| summary::read(&folder.join(format!("{arm}.json"))).map_err(|e| GateError::Input(e.to_string()));
        let shared = if report.comparison == Comparison::Duet { None } else { Some(read("base")?) };
        let more_base = if folder.join(MORE).join("base.json").is_file() { Some(read(&format!("{MORE}/base"))?) } else { None };
        // A stored trial's baseline: the base and its A/A as the nightly stores them, the A/A's
        // noise the floor (the base alone and no floor in trials kept before the A/A was).
        let (shared, noise) = match (shared, folder.join(AA).join("base.json").is_file()) {
            (Some(base), true) if !paired => {
                let (both, noise) = measured_twice(base, read(&format!("{AA}/base"))?, rules)?;
                (Some(both), noise)
            }
            (shared, _) => (shared, Noise::default()),
        };
        for arm in &report.arms {
            let head = read(&arm.name)?;
            let base = match &shared {
                Some(b) => b.clone(),
                None => read(&format!("{}.base", arm.name))?,
            };
            let more = match &more_base {
                Some(b) if folder.join(MORE).join(format!("{}.json", arm.name)).is_file() => {
                    Some((b.clone(), read(&format!("{MORE}/{}", arm.name))?))
                }
                _ => None,
            };
            let again = match folder.join(AGAIN).join(format!("{}.json", arm.name)).is_file() {
                true => Some(read(&format!("{AGAIN}/{}", arm.name))?),
                false => None,
            };
            for &threshold in thresholds {
                let judged = if paired {
                    futures::executor::block_on(judge_copy(
                        &notes,
                        trial,
                        arm,
                        threshold,
                        (&base, &head),
                        more.as_ref(),
                        rules,
                        &report.route,
                    ))
                } else {
                    let judged = judge_stored(&notes, trial, arm, threshold, (&base, &head), again.as_ref(), &noise, rules, &report.route);
                    futures::executor::block_on(judged)
                };
                out.push(judged?);
            }
        }
        trial += 1;
    }
    Ok(out)
}

fn trial_of(trial: u32, arm: &Arm, threshold: f64, base: &Summary, head: &Summary, regressed: Vec<&str>, route: &str) -> Trial {
    Trial {
        trial,
        arm: arm.name.clone(),
        threshold,
        regressed: regressed.into_iter().map(str::to_string).collect(),
        invalid: !head.valid || !base.valid,
        p50_ratio: ratio(base, head, route, |l| l.p50),
        p95_ratio: ratio(base, head, route, |l| l.p95),
        reasons: Vec::new(),
        passes: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::testkit::{Gen, one};

    #[test]
    fn the_spread_is_of_the_log_ratio_over_one_thresholds_valid_trials() {
        let mut r = kept(Comparison::Stored, &["same"]);
        let trial = |n, threshold, ratio: f64, invalid| Trial {
            trial: n,
            arm: "same".into(),
            threshold,
            regressed: Vec::new(),
            invalid,
            p50_ratio: Some(1.0),
            p95_ratio: Some(ratio),
            reasons: Vec::new(),
            passes: 1,
        };
        // e^-0.2, e^0 and e^0.2 at 20%: a sample standard deviation of 0.2; the invalid trial
        // and the other threshold's are not counted.
        r.trials = vec![
            trial(1, 0.2, (-0.2f64).exp(), false),
            trial(2, 0.2, 1.0, false),
            trial(3, 0.2, 0.2f64.exp(), false),
            trial(4, 0.2, 5.0, true),
            trial(1, 0.05, 3.0, false),
        ];
        assert!((r.spread("same", true, 0.2).unwrap() - 0.2).abs() < 1e-9, "{:?}", r.spread("same", true, 0.2));
        assert_eq!(r.spread("same", false, 0.2), Some(0.0));
        assert_eq!(r.spread("same", true, 0.05), None, "one trial has no spread");
    }

    /// Keeps a made-up run of route `slots` as `trials/1/<name>.json` in `dir`.
    fn put_run(dir: &std::path::Path, name: &str, g: Gen) {
        summary::write_atomic(&dir.join("trials/1").join(format!("{name}.json")), &one("baseline", "slots", &g)).unwrap()
    }

    /// A kept experiment of the `baseline` suite on route `slots` with these copies (their
    /// work does not matter to judging them), before any trial.
    fn kept(comparison: Comparison, arms: &[&str]) -> ExperimentReport {
        ExperimentReport {
            suite: "baseline".into(),
            suite_hash: String::new(),
            testbed: String::new(),
            route: "slots".into(),
            comparison,
            intrinsic_p50_ms: 2.0,
            intrinsic_p95_ms: 4.0,
            arms: arms.iter().map(|name| Arm { name: (*name).into(), percent: 0, every: 1 }).collect(),
            trials: Vec::new(),
            trial_seconds: 1.0,
        }
    }

    #[test]
    fn tail_work_is_sized_from_the_measured_distribution() {
        // 1 ms to 3 ms, evenly.
        let values: Vec<(u64, u64)> = (1000..=3000).step_by(10).map(|v| (v, 1)).collect();
        // On every request, 30% more work makes every quantile 30% slower.
        assert_eq!(tail_percent(&values, 0.5, 1.30, 1), 30);
        // On one request in ten, p95 (2.9 ms) must grow 30%, to 3.77 ms: the slowed tenth must
        // reach past it, so each of them does more than 30% more.
        let pct = tail_percent(&values, 0.95, 1.30, 10);
        assert!(pct > 30 && pct < 300, "{pct}");
        assert_eq!(tail_percent(&values, 0.5, 1.0, 1), 0);
    }

    #[test]
    fn an_ab_copy_left_undecided_is_judged_again_over_its_kept_second_pass() {
        let dir = tempfile::tempdir().unwrap();
        // Six pairs of 5 s at 10 req/s, p50 +25%: seeds whose first pass leaves it undecided
        // (as `run::judge`'s test of the same pass shows), decided over both passes.
        let put = |name: &str, median_ms: f64, seed: u64| {
            put_run(dir.path(), name, Gen::new(10, 30, median_ms, seed).spread(0.5, 0.02).segments_of(5))
        };
        put("base", 2.0, 11);
        put("slower", 2.5, 12);
        let report = kept(Comparison::Ab, &["slower"]);
        let judged = || rejudge(dir.path(), &report, &CompareRules::default(), &[0.2]).unwrap().remove(0);
        // Kept before second passes existed: the first pass's verdict stands.
        let first = judged();
        assert_eq!((first.passes, first.regressed.len()), (1, 0), "{:?}", first.reasons);
        assert!(first.reasons[0].starts_with("p50 noisy"), "{:?}", first.reasons);
        put("more/base", 2.0, 13);
        put("more/slower", 2.5, 14);
        let both = judged();
        assert_eq!((both.passes, both.regressed), (2, vec!["slots".to_string()]), "{:?}", both.reasons);
    }

    #[test]
    fn a_stored_copy_is_judged_with_its_bases_aa_as_the_floor_and_its_kept_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let put = |name: &str, median_ms: f64, seed: u64| put_run(dir.path(), name, Gen::new(20, 60, median_ms, seed));
        let gone = |name: &str| std::fs::remove_file(dir.path().join(format!("trials/1/{name}.json"))).unwrap();
        // A copy 40% slower than the baseline on 1200 requests a side: plainly regressed.
        put("base", 2.0, 1);
        put("slower", 2.8, 2);
        let report = kept(Comparison::Stored, &["slower"]);
        // A second trial stopped by Ctrl-C after its baseline: not judged.
        summary::write_atomic(&dir.path().join("trials/2/base.json"), &one("baseline", "slots", &Gen::new(20, 60, 2.0, 9))).unwrap();
        assert_eq!(rejudge(dir.path(), &report, &CompareRules::default(), &[0.2]).unwrap().len(), 1);
        let judged = || rejudge(dir.path(), &report, &CompareRules::default(), &[0.2]).unwrap().remove(0);
        // Kept before A/A runs and re-runs were: the first run's verdict, no floor.
        let first = judged();
        assert_eq!((first.passes, first.regressed.clone()), (1, vec!["slots".to_string()]), "{:?}", first.reasons);
        // The re-run, as slow: confirmed, over two runs.
        put("again/slower", 2.8, 3);
        let confirmed = judged();
        assert_eq!((confirmed.passes, confirmed.regressed), (2, vec!["slots".to_string()]), "{:?}", confirmed.reasons);
        // A re-run as fast as the baseline: the first run's regression was not confirmed.
        put("again/slower", 2.0, 4);
        let unconfirmed = judged();
        assert_eq!((unconfirmed.passes, unconfirmed.regressed.len()), (2, 0), "{:?}", unconfirmed.reasons);
        gone("again/slower");
        // The nightly's A/A moved this testbed's p50 by 50%: a 40% change is within its noise,
        // and the baseline is both runs, so the copy reads about +12% against it, not +40%.
        put("aa/base", 3.0, 5);
        let floored = judged();
        assert_eq!((floored.passes, floored.regressed.len()), (1, 0), "{:?}", floored.reasons);
        assert!(floored.reasons[0].starts_with("p50 unchanged"), "{:?}", floored.reasons);
        assert!((first.p50_ratio.unwrap() - 1.4).abs() < 0.1, "{:?}", first.p50_ratio);
        assert!((1.0..1.25).contains(&floored.p50_ratio.unwrap()), "{:?}", floored.p50_ratio);
    }

    #[test]
    fn a_duet_is_judged_again_against_the_base_measured_beside_each_copy() {
        let dir = tempfile::tempdir().unwrap();
        let put = |name: &str, median_ms: f64, seed: u64| put_run(dir.path(), name, Gen::new(20, 60, median_ms, seed));
        // Each copy ran beside a base of its own: the base beside the second copy was as slow
        // as the copy (a slow stretch of the machine). Against its own base neither copy
        // changed; against the first duet's base the second would read +60%.
        put("base", 2.0, 1);
        put("same.base", 2.0, 2);
        put("same", 2.0, 3);
        put("late.base", 3.2, 4);
        put("late", 3.2, 5);
        let mut report = kept(Comparison::Duet, &["same", "late"]);
        let regressed = |report: &ExperimentReport| -> Vec<(String, Vec<String>)> {
            rejudge(dir.path(), report, &CompareRules::default(), &[0.2]).unwrap().into_iter().map(|t| (t.arm, t.regressed)).collect()
        };
        assert_eq!(regressed(&report), vec![("same".to_string(), vec![]), ("late".to_string(), vec![])]);
        // In A/B mode every copy took turns with the one base.
        report.comparison = Comparison::Ab;
        assert_eq!(regressed(&report), vec![("same".to_string(), vec![]), ("late".to_string(), vec!["slots".to_string()])]);
    }

    #[test]
    fn more_trials_only_add_to_an_experiment_that_measured_the_same_thing() {
        let kept = ExperimentReport { suite_hash: "h1".into(), testbed: "local-2cpu-epyc-24g".into(), ..kept(Comparison::Ab, &["same"]) };
        assert!(same_experiment(&kept, &kept).is_ok());
        let err = |now: ExperimentReport| same_experiment(&kept, &now).unwrap_err().to_string();
        assert!(err(ExperimentReport { suite: "concurrent".into(), ..kept.clone() }).contains("suite `baseline`"));
        assert!(err(ExperimentReport { suite_hash: "h2".into(), ..kept.clone() }).contains("--quick"));
        assert!(
            err(ExperimentReport { route: "provider".into(), ..kept.clone() }).contains("route `slots`, this run would measure `provider`")
        );
        assert!(
            err(ExperimentReport { comparison: Comparison::Stored, ..kept.clone() }).contains("mode `ab`, this run would measure `stored`")
        );
        // A report written before the definition and testbed were kept: the names are all there
        // is to check.
        let old = ExperimentReport { suite_hash: String::new(), testbed: String::new(), ..kept.clone() };
        assert!(same_experiment(&old, &ExperimentReport { suite_hash: "h2".into(), testbed: "docker".into(), ..kept.clone() }).is_ok());
    }
}
