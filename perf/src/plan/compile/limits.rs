//! `[limits]`: the largest load a plan may ask for before the gate takes it for a typo.

use std::time::Duration;

use super::common::scenarios_span;
use crate::plan::compiled::{Shape, Suite};
use crate::plan::loaded::{LoadedPlan, PlanError};

/// Values no one means (a typo's extra zeros, a unit mixed up) are refused unless the plan
/// raises its `[limits]`. Checked on the suite as it will run, `--duration` and `--users`
/// applied.
pub(super) fn check_limits(lp: &LoadedPlan, suite: &Suite) -> Result<(), PlanError> {
    let limits = &lp.plan.limits;
    let Some(spec) = lp.plan.suites.get(&suite.name) else { return Ok(()) };
    let raise = |what: &str, value: String| format!("to mean it, raise the plan's limit: [limits] {what} = {value}");
    for sc in &suite.scenarios {
        let at = spec.scenarios.get(&sc.name).map_or_else(|| scenarios_span(spec), |s| s.executor.span());
        let field = |f: &str| format!("suites.{}.scenarios.{}.{f}", suite.name, sc.name);
        // The rate first: an open model's default VUs follow from it.
        let rate = match &sc.shape {
            Shape::ConstantArrivalRate { rate, .. } => Some((*rate, "rate")),
            Shape::RampingArrivalRate { start_rate, stages, .. } => {
                Some((stages.iter().map(|(_, t)| *t).fold(*start_rate, f64::max), "stages"))
            }
            _ => None,
        };
        if let Some((rate, rate_field)) = rate
            && rate > limits.max_rate
        {
            return Err(lp.error_at(
                at,
                &field(rate_field),
                format!(
                    "{rate} iterations per second is more than the limit of {} (a typo?); {}",
                    limits.max_rate,
                    raise("max_rate", rate.ceil().to_string())
                ),
            ));
        }
        let (users, users_field) = match &sc.shape {
            Shape::ConstantVus { vus, .. } => (*vus, "vus"),
            Shape::RampingVus { start_vus, stages } => (stages.iter().map(|(_, t)| *t as u32).fold(*start_vus, u32::max), "stages"),
            Shape::ConstantArrivalRate { pre_allocated_vus, max_vus, .. }
            | Shape::RampingArrivalRate { pre_allocated_vus, max_vus, .. } => ((*pre_allocated_vus).max(*max_vus), "max_vus"),
        };
        if users > limits.max_vus {
            return Err(lp.error_at(
                at,
                &field(users_field),
                format!(
                    "{users} virtual users is more than the limit of {} for one scenario (a typo?); {}",
                    limits.max_vus,
                    raise("max_vus", users.to_string())
                ),
            ));
        }
        let end = sc.start + sc.shape.duration();
        if end > limits.max_duration.0 {
            let fmt = |d: Duration| humantime::format_duration(d).to_string();
            return Err(lp.error_at(
                at,
                &field("duration"),
                format!(
                    "the scenario runs until {} into the suite, longer than the limit of {} (a typo, or --duration?); {}",
                    fmt(end),
                    fmt(limits.max_duration.0),
                    raise("max_duration", format!("\"{}\"", fmt(end)))
                ),
            ));
        }
    }
    Ok(())
}
