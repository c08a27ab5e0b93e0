//! Stored-baseline mode: the suites measured here, each judged against the stored baseline
//! of this testbed.
//!
//! One environment serves every measured suite; suites that set network faults run last, in
//! an environment of their own whose app reaches PostgreSQL and Redis through the fault
//! proxies. With the plan's `link_latency`, both environments put the proxies in, modelling
//! the link (the chaos suites' faults on top of it). Special suites (spike, stress, soak, chaos) are judged by their own checks: their
//! numbers are shaped by what was done to the app, so they are never compared.

use crate::compare::Noise;
use crate::env::{BackendChoice, BackendKind, Environment, StartOptions};
use crate::plan::compiled::Suite;
use crate::plan::{Service, SuiteKind, not_started};
use crate::summary::RunContext;
use crate::verdict::{Confirmation, Report, RunFacts, SuiteReport};

use super::baseline::Pick;
use super::context::{needs_proxies, run_context};
use super::judge::{Judging, judge_suite, measured_twice, record_suite};
use super::lifetime::{Spec, with_environment};
use super::measure::measure_suite;
use super::options::{GateError, GateOptions, GateRun};
use super::prepare::Prepared;

/// Steps 2 to 5 of a stored-baseline run: environments, load, summaries, verdicts.
pub async fn run(opts: &GateOptions, prepared: &Prepared) -> Result<GateRun, GateError> {
    let (direct, proxied): (Vec<&Suite>, Vec<&Suite>) = prepared.compiled.suites.iter().partition(|s| !needs_proxies(s));
    let mut run = GateRun {
        report: Report { facts: RunFacts::default(), suites: Vec::new(), invalid_reasons: Vec::new() },
        written: Vec::new(),
        noise: Vec::new(),
    };
    for (suites, fault_proxies) in [(direct, false), (proxied, true)] {
        if suites.is_empty() {
            continue;
        }
        run_in_environment(opts, prepared, &suites, fault_proxies, &mut run).await?;
    }
    let Some(facts) = run.report.suites.first().map(|r| RunFacts::from_summary(&r.summary)) else {
        return Err(GateError::Input("no suite to run".into()));
    };
    run.report.facts = facts;
    Ok(run)
}

/// Starts an environment, runs `suites` in it and stops it.
async fn run_in_environment(
    opts: &GateOptions,
    prepared: &Prepared,
    suites: &[&Suite],
    fault_proxies: bool,
    run: &mut GateRun,
) -> Result<(), GateError> {
    let start = StartOptions {
        plan_dir: prepared.plan_dir.clone(),
        logs_dir: opts.out_dir.join("logs"),
        app_url: opts.app_url.clone(),
        cancel: opts.cancel.clone(),
        fault_proxies,
        build_env: Vec::new(),
        notes: opts.notes.clone(),
    };
    let environment = &prepared.setup.environment;
    let databases: Vec<&str> =
        [Service::Postgres, Service::Redis].into_iter().filter(|s| environment.starts(*s)).map(Service::as_str).collect();
    let databases = databases.join(" and ");
    let link = environment.link.filter(|_| prepared.backend != BackendKind::External);
    let proxied = match (fault_proxies, link) {
        _ if databases.is_empty() => String::new(),
        (true, None) => format!(", the app reaching {databases} through fault proxies"),
        (true, Some(l)) => format!(", the app reaching {databases} through fault proxies over a link of {}", l.describe()),
        (false, Some(l)) => format!(", the app reaching {databases} over a link of {} (proxies)", l.describe()),
        (false, None) => String::new(),
    };
    opts.notes.say(format!("starting the environment ({}{proxied})", backend_words(opts.backend, prepared.backend)));
    let spec = Spec { name: String::new(), backend: prepared.backend, setup: prepared.setup.clone(), start };
    with_environment(&opts.notes, &opts.cancel, spec, async |env: &mut Environment| {
        for s in env.services() {
            opts.notes.say(format!("  {}: {}", s.service.as_str(), s.url));
        }
        if env.kind() != BackendKind::External {
            for s in [Service::Postgres, Service::Redis].into_iter().filter(|s| !environment.starts(*s)) {
                opts.notes.say(format!("  {}", not_started(s)));
            }
        }
        let ctx = run_context(opts, prepared, &prepared.plan_dir);
        for &suite in suites {
            let (report, file, noise) = measure_and_judge(opts, prepared, env, suite, &ctx).await?;
            run.noise.extend(noise);
            run.written.push(file);
            run.report.suites.push(report);
        }
        Ok(())
    })
    .await
}

/// One suite: measured (a load suite twice with `--measure-noise`: [`measure_twice`]), judged
/// against its baseline (when it is a load suite that has a comparable one), written; with the
/// noise the A/A showed, when there was one.
async fn measure_and_judge(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    suite: &Suite,
    ctx: &RunContext,
) -> Result<(SuiteReport, std::path::PathBuf, Option<Noise>), GateError> {
    let pick = if suite.kind == SuiteKind::Load { prepared.baselines.pick(&suite.name) } else { None };
    let (first, noise) = if opts.measure_noise && suite.kind == SuiteKind::Load {
        let (both, noise) = measure_twice(opts, prepared, env, suite, ctx).await?;
        (both, Some(noise))
    } else {
        (measure_suite(opts, prepared, env, suite, ctx).await?, None)
    };
    let (summary, comparison, confirmation) = match pick {
        Some(Pick::Found { summary: base, across, .. }) => {
            let how = Judging {
                rules: &prepared.compiled.compare,
                notes: &opts.notes,
                confirm: opts.confirm,
                across: across.as_deref(),
                measured_elsewhere: false,
                paired: false,
                noise: prepared.noise(&suite.name),
            };
            let rerun = move || {
                let env = env;
                measure_suite(opts, prepared, env, suite, ctx)
            };
            let judged = judge_suite(base, first, &how, rerun).await?;
            (judged.summary, Some(judged.comparison), judged.confirmation)
        }
        _ => (first, None, Confirmation::NotRun),
    };
    let (report, file) = record_suite(opts, prepared, pick, summary, comparison, confirmation)?;
    Ok((report, file, noise))
}

/// The suite twice on the same environment (`--measure-noise`): how far the same code moves
/// from one run to the next on this testbed (an A/A), and both runs as the one summary the
/// suite is judged and stored as ([`measured_twice`]).
async fn measure_twice(
    opts: &GateOptions,
    prepared: &Prepared,
    env: &mut Environment,
    suite: &Suite,
    ctx: &RunContext,
) -> Result<(crate::summary::Summary, Noise), GateError> {
    let first = measure_suite(opts, prepared, env, suite, ctx).await?;
    opts.notes.say(format!("{}: measuring this testbed's noise: the suite once more (A/A); both runs are its summary", suite.name));
    let again = measure_suite(opts, prepared, env, suite, ctx).await?;
    let (both, noise) = measured_twice(first, again, &prepared.compiled.compare)?;
    let most = |m: crate::compare::Metric| noise.endpoints.values().filter_map(|e| e.get(&m)).fold(0.0f64, |a, b| a.max(*b));
    opts.notes.say(format!(
        "{}: A/A moved p50 by up to {:.1}%, p95 by up to {:.1}%, p99 by up to {:.1}%",
        suite.name,
        most(crate::compare::Metric::P50) * 100.0,
        most(crate::compare::Metric::P95) * 100.0,
        most(crate::compare::Metric::P99) * 100.0
    ));
    Ok((both, noise))
}

fn backend_words(choice: BackendChoice, resolved: BackendKind) -> &'static str {
    match (choice, resolved) {
        (BackendChoice::Auto, BackendKind::Docker) => "auto: a Docker engine answers, so Docker",
        (BackendChoice::Auto, _) => "auto: no Docker engine answers, so local processes",
        (_, BackendKind::Local) => "local processes",
        (_, BackendKind::Docker) => "Docker",
        (_, BackendKind::External) => "external: nothing started",
    }
}
