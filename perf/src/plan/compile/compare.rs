//! `[compare]`: the regression rule, checked before the comparison uses it.

use super::common::names;
use crate::plan::loaded::{LoadedPlan, PlanError};

/// The rule's values in their ranges, and per-endpoint overrides for requests of the plan only.
pub(super) fn check_compare(lp: &LoadedPlan) -> Result<(), PlanError> {
    let c = &lp.plan.compare;
    if !(c.threshold > 0.0 && c.threshold.is_finite()) {
        return Err(lp.error("compare.threshold", format!("{} is not a relative change: expected a number > 0 (0.2 is 20%)", c.threshold)));
    }
    if !(c.alpha > 0.0 && c.alpha < 1.0) {
        return Err(lp.error("compare.alpha", format!("{} is not a significance level: expected 0 < alpha < 1", c.alpha)));
    }
    if !(c.error_rate_points >= 0.0 && c.error_rate_points.is_finite()) {
        return Err(lp.error("compare.error_rate_points", "expected a number of percentage points ≥ 0"));
    }
    for (name, t) in &c.endpoints {
        let field = format!("compare.endpoints.{name}");
        if !lp.plan.requests.contains_key(name) {
            return Err(lp.error_at(
                t.span(),
                &field,
                format!("unknown request `{name}` (the plan defines: {})", names(lp.plan.requests.keys())),
            ));
        }
        let v = t.get_ref();
        for (metric, value) in [("p50", v.p50), ("p95", v.p95), ("p99", v.p99), ("rps", v.rps), ("error_rate_points", v.error_rate_points)]
        {
            if let Some(x) = value
                && !(x >= 0.0 && x.is_finite())
            {
                return Err(lp.error_at(t.span(), &format!("{field}.{metric}"), format!("{x} is not a threshold: expected a number ≥ 0")));
            }
        }
    }
    Ok(())
}
