//! `[suites]`: a suite's scenarios, warm-up, SLOs, setup steps and kind-specific table.

use toml::Spanned;

use super::common::scenarios_span;
use super::scenarios::scenario;
use super::special::special;
use super::steps::steps;
use crate::plan::compiled::{Request, Scenario, Step, Suite, exercised};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::SuiteSpec;
use crate::plan::values::SloSpec;
use crate::plan::vars::VarTable;

/// The suite `name`, as written (the command line reshapes it later).
pub(super) fn suite(
    lp: &LoadedPlan,
    table: &VarTable,
    requests: &[Request],
    workflows: &[(String, Vec<Step>)],
    name: &str,
    spec: &SuiteSpec,
) -> Result<Suite, PlanError> {
    if spec.scenarios.is_empty() {
        return Err(lp.error(&format!("suites.{name}.scenarios"), "a suite needs at least one scenario"));
    }
    let mut scenarios = Vec::new();
    for (sname, s) in &spec.scenarios {
        scenarios.push(scenario(lp, workflows, &format!("suites.{name}.scenarios.{sname}"), sname, s)?);
    }
    let timeline = scenarios.iter().map(|s| s.start + s.shape.duration()).max().unwrap_or_default();
    let warmup = spec.warmup.map(|d| d.0).unwrap_or_default();
    if warmup >= timeline {
        return Err(lp.error_at(
            scenarios_span(spec),
            &format!("suites.{name}.warmup"),
            format!(
                "warm-up ({}) leaves nothing to measure: the suite's scenarios last {}",
                humantime::format_duration(warmup),
                humantime::format_duration(timeline)
            ),
        ));
    }
    let slo = slos(lp, requests, name, spec, &scenarios)?;
    let special = special(lp, name, spec, &scenarios, warmup, timeline)?;
    Ok(Suite {
        name: name.to_string(),
        kind: *spec.kind.get_ref(),
        warmup,
        scenarios,
        slo,
        setup: steps(lp, table, requests, &format!("suites.{name}.setup"), &spec.setup, false)?,
        special,
        definition_hash: String::new(),
    })
}

/// The suite's SLOs by endpoint (`None` for `"*"`): each names an endpoint the suite sends.
fn slos(
    lp: &LoadedPlan,
    requests: &[Request],
    name: &str,
    spec: &SuiteSpec,
    scenarios: &[Scenario],
) -> Result<Vec<(Option<String>, SloSpec)>, PlanError> {
    let exercised = exercised(scenarios);
    let mut slo = Vec::new();
    for (key, limits) in &spec.slo {
        let field = format!("suites.{name}.slo.{key}");
        check_slo(lp, limits, &field)?;
        if key == "*" {
            slo.push((None, limits.get_ref().clone()));
            continue;
        }
        let Some(id) = requests.iter().position(|r| &r.name == key) else {
            return Err(lp.error_at(limits.span(), &field, format!("unknown request `{key}` (use `\"*\"` for every endpoint)")));
        };
        if !exercised.contains(&id) {
            return Err(lp.error_at(
                limits.span(),
                &field,
                format!("no scenario of suite `{name}` sends `{key}`, so this SLO could never pass"),
            ));
        }
        slo.push((Some(key.clone()), limits.get_ref().clone()));
    }
    Ok(slo)
}

/// One SLO entry: at least one limit, an error rate that is a fraction, a rate ≥ 0.
fn check_slo(lp: &LoadedPlan, limits: &Spanned<SloSpec>, field: &str) -> Result<(), PlanError> {
    let l = limits.get_ref();
    let any = [l.p50, l.p90, l.p95, l.p99, l.p999, l.max].iter().any(Option::is_some) || l.error_rate.is_some() || l.min_rps.is_some();
    if !any {
        return Err(lp.error_at(
            limits.span(),
            field,
            "an SLO entry needs at least one limit: p50, p90, p95, p99, p999, max, error_rate or min_rps",
        ));
    }
    if let Some(e) = l.error_rate
        && !(0.0..=1.0).contains(&e)
    {
        return Err(lp.error_at(
            limits.span(),
            &format!("{field}.error_rate"),
            format!("{e} is not a fraction: expected 0..=1 (0.01 is 1%)"),
        ));
    }
    if let Some(r) = l.min_rps
        && !(r >= 0.0 && r.is_finite())
    {
        return Err(lp.error_at(
            limits.span(),
            &format!("{field}.min_rps"),
            format!("{r} is not a rate: expected a number of requests per second ≥ 0"),
        ));
    }
    Ok(())
}
