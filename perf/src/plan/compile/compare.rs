//! `[compare]`: the regression rule, built by [`CompareRules::new`] (which `cargo perf
//! history` goes through too); its errors point at the plan.

use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::setup::CompareRules;

/// The plan's rule. A refused value is reported on its field; a refused per-endpoint override
/// points at its entry in the file.
pub(in crate::plan) fn rules(lp: &LoadedPlan) -> Result<CompareRules, PlanError> {
    let c = &lp.plan.compare;
    let endpoints = c.endpoints.iter().map(|(name, t)| (name.clone(), t.get_ref().clone())).collect();
    let requests: Vec<&str> = lp.plan.requests.keys().map(String::as_str).collect();
    CompareRules::new(c.threshold, c.floor.map(|d| d.0), c.error_rate_points, c.min_samples, c.alpha, endpoints, &requests)
        .and_then(|r| r.with_shared_shift(c.shared_shift))
        .map_err(|e| match e.endpoint.as_ref().and_then(|name| c.endpoints.get(name)) {
            Some(entry) => lp.error_at(entry.span(), &e.field, e.message),
            None => lp.error(&e.field, e.message),
        })
}
