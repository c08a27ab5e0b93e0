//! A chaos suite's table: actions on the services at given times (each verb with its own
//! parameters, in an order that makes sense) and the expectations checked after the run.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

use crate::plan::compiled as c;
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::{ChaosActionSpec, ChaosSpec};

/// An action with where it is in the file, for errors found once the actions are in time order.
type Placed = (Range<usize>, String, c::ChaosAction);

/// The chaos table of suite `name`, whose scenarios end at `timeline`.
pub(super) fn chaos(lp: &LoadedPlan, name: &str, span: Range<usize>, v: &ChaosSpec, timeline: Duration) -> Result<c::ChaosSpec, PlanError> {
    if v.actions.is_empty() && v.expect.is_empty() {
        return Err(lp.error_at(
            span,
            &format!("suites.{name}.chaos"),
            "a chaos suite needs actions, like { at = \"10s\", stop = \"postgres\" }, or expectations, or both",
        ));
    }
    let mut actions = v.actions.iter().enumerate().map(|(i, a)| action(lp, name, i, a, timeline)).collect::<Result<Vec<_>, _>>()?;
    actions.sort_by_key(|(_, _, a)| a.at);
    check_order(lp, &actions)?;
    let actions: Vec<c::ChaosAction> = actions.into_iter().map(|(_, _, a)| a).collect();
    let expect = expectations(lp, name, v, &actions)?;
    Ok(c::ChaosSpec { actions, expect })
}

/// Action `i`: one verb on postgres or redis, within the suite's timeline.
fn action(lp: &LoadedPlan, name: &str, i: usize, a: &toml::Spanned<ChaosActionSpec>, timeline: Duration) -> Result<Placed, PlanError> {
    let field = format!("suites.{name}.chaos.actions[{i}]");
    let (aspan, spec) = (a.span(), a.get_ref());
    let verbs = spec.verbs();
    let [(key, service)] = verbs[..] else {
        return Err(lp.error_at(
            aspan,
            &field,
            "an action needs exactly one of `stop`, `start`, `latency`, `loss`, `reset`, `blackhole` and `heal`, like { at = \"10s\", stop = \"postgres\" }",
        ));
    };
    let Some(service) = c::Service::from_name(service).filter(|s| *s != c::Service::App) else {
        return Err(lp.error_at(aspan, &format!("{field}.{key}"), format!("unknown service `{service}`: expected postgres or redis")));
    };
    let verb = chaos_verb(key, spec).map_err(|(k, m)| lp.error_at(aspan.clone(), &format!("{field}.{k}"), m))?;
    if spec.at.0 >= timeline {
        return Err(lp.error_at(
            aspan,
            &format!("{field}.at"),
            format!(
                "at {} is not within the suite: its scenarios end at {}",
                humantime::format_duration(spec.at.0),
                humantime::format_duration(timeline)
            ),
        ));
    }
    Ok((aspan, field, c::ChaosAction { at: spec.at.0, service, verb }))
}

/// In time order: a service is stopped only when running and started only when stopped, and
/// `heal` follows a fault on the same service.
fn check_order(lp: &LoadedPlan, actions: &[Placed]) -> Result<(), PlanError> {
    let mut stopped = BTreeSet::new();
    let mut faulted = BTreeSet::new();
    for (aspan, field, a) in actions {
        let at = humantime::format_duration(a.at);
        let svc = a.service.as_str();
        let problem = match a.verb {
            c::ChaosVerb::Stop => (!stopped.insert(a.service)).then(|| format!("{svc} is already stopped at {at}")),
            c::ChaosVerb::Start => {
                (!stopped.remove(&a.service)).then(|| format!("{svc} is not stopped at {at}: only a stopped service can be started"))
            }
            c::ChaosVerb::Fault(_) => {
                faulted.insert(a.service);
                None
            }
            c::ChaosVerb::Heal => (!faulted.remove(&a.service))
                .then(|| format!("no fault is set on {svc} at {at}: `heal` clears a latency, loss, reset or blackhole set before")),
        };
        if let Some(msg) = problem {
            return Err(lp.error_at(aspan.clone(), field, msg));
        }
    }
    Ok(())
}

/// The expectations, each parsed and given the actions it needs to mean anything.
fn expectations(lp: &LoadedPlan, name: &str, v: &ChaosSpec, actions: &[c::ChaosAction]) -> Result<Vec<c::Expectation>, PlanError> {
    let has = |service: Option<c::Service>, f: fn(&c::ChaosVerb) -> bool| {
        actions.iter().any(|a| service.is_none_or(|s| s == a.service) && f(&a.verb))
    };
    let mut expect = Vec::new();
    for (i, e) in v.expect.iter().enumerate() {
        let field = format!("suites.{name}.chaos.expect[{i}]");
        let x = c::Expectation::parse(e.get_ref()).map_err(|m| lp.error_at(e.span(), &field, m))?;
        let needs = match x {
            c::Expectation::ErrorsStopWithin(_) => {
                (!has(None, c::ChaosVerb::recovers)).then_some("a `start` or `heal` action (errors are timed from the last one)")
            }
            c::Expectation::BreakerCycle => (!has(Some(c::Service::Postgres), c::ChaosVerb::breaks))
                .then_some("postgres to be stopped, or cut off by a loss, reset or blackhole"),
            c::Expectation::CacheRecovers => {
                (!has(Some(c::Service::Redis), c::ChaosVerb::recovers)).then_some("redis to be started again or healed")
            }
            _ => None,
        };
        if let Some(need) = needs {
            return Err(lp.error_at(e.span(), &field, format!("`{}` needs {need}", e.get_ref())));
        }
        expect.push(x);
    }
    Ok(expect)
}

/// The verb of one action with its parameters; the error names the offending key.
fn chaos_verb(key: &'static str, spec: &ChaosActionSpec) -> Result<c::ChaosVerb, (&'static str, String)> {
    let unused = |param: &'static str, given: bool, only: &str| {
        if given { Err((param, format!("`{param}` only goes with `{only}`"))) } else { Ok(()) }
    };
    if key != "latency" {
        unused("delay", spec.delay.is_some(), "latency")?;
        unused("jitter", spec.jitter.is_some(), "latency")?;
    }
    if key != "loss" {
        unused("rate", spec.rate.is_some(), "loss")?;
    }
    Ok(match key {
        "stop" => c::ChaosVerb::Stop,
        "start" => c::ChaosVerb::Start,
        "heal" => c::ChaosVerb::Heal,
        "reset" => c::ChaosVerb::Fault(c::Fault::Reset),
        "blackhole" => c::ChaosVerb::Fault(c::Fault::Blackhole),
        "latency" => {
            let delay = spec.delay.ok_or((
                "delay",
                "`latency` needs `delay`, like { at = \"10s\", latency = \"postgres\", delay = \"100ms\", jitter = \"20ms\" }".to_string(),
            ))?;
            c::ChaosVerb::Fault(c::Fault::Latency { delay: delay.0, jitter: spec.jitter.map_or(Duration::ZERO, |j| j.0) })
        }
        "loss" => {
            let rate = spec
                .rate
                .ok_or(("rate", "`loss` needs `rate`, the probability a connection or a chunk is lost, like rate = 0.2".to_string()))?;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(("rate", format!("{rate} is not a probability of loss: expected more than 0 and at most 1")));
            }
            c::ChaosVerb::Fault(c::Fault::Loss { rate })
        }
        other => unreachable!("verbs() yields only known keys, not {other}"),
    })
}
