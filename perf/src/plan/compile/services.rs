//! The services a suite acts on or judges must be ones the run starts: a chaos action on
//! PostgreSQL, or a soak suite judging Redis's memory, in a plan that starts neither would
//! fail only once the environment is up (or judge nothing), so it is refused here with the
//! action's or the entry's place in the file. Which services a run starts is `Setup`'s rule
//! (`setup.rs`): a table, or a template of the app naming the service.

use crate::plan::compiled::Service;
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::setup::{EnvironmentSetup, not_started};

/// Every suite, selected or not: chaos actions and soak services name started services only.
/// Runs after the suites compiled, so every name here is a known service.
pub(super) fn check_services(lp: &LoadedPlan, env: &EnvironmentSetup) -> Result<(), PlanError> {
    let add = |s: Service| format!("add an [environment.{s}] table to start it");
    for (name, spec) in &lp.plan.suites {
        for (i, a) in spec.chaos.iter().flat_map(|c| c.get_ref().actions.iter().enumerate()) {
            for (key, service) in a.get_ref().verbs() {
                let Some(service) = Service::from_name(service).filter(|s| !env.starts(*s)) else { continue };
                return Err(lp.error_at(
                    a.span(),
                    &format!("suites.{name}.chaos.actions[{i}].{key}"),
                    format!("{}, so no chaos action can act on it: {}", not_started(service), add(service)),
                ));
            }
        }
        for (i, s) in spec.soak.iter().flat_map(|t| t.get_ref().services.iter().enumerate()) {
            let Some(service) = Service::from_name(s.get_ref()).filter(|s| !env.starts(*s)) else { continue };
            let at = if s.span().is_empty() { spec.soak.as_ref().map(|t| t.span()).unwrap_or_default() } else { s.span() };
            return Err(lp.error_at(
                at,
                &format!("suites.{name}.soak.services[{i}]"),
                format!("{}, so its memory cannot be judged: {}, or leave it out of `services`", not_started(service), add(service)),
            ));
        }
    }
    Ok(())
}
