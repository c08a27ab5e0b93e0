//! `[environment]`: the link between the app and its databases that the plan models
//! (`link_latency`, `link_jitter`), within bounds that keep it a link.
//!
//! On a test machine the app reaches PostgreSQL and Redis over loopback, tens of microseconds
//! a round trip; in production they are other machines, 0.2 to 1 ms away. A change that adds
//! round trips (a query per item of a list) therefore looks 5 to 20 times smaller here than it
//! will be. `link_latency` makes the backends hold every chunk of bytes that long each way, so
//! the gate measures round trips at production's price.

use std::time::Duration;

use toml::Spanned;

use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::values::{FineDur, Link};

/// The smallest link modelled: less than this is less than the loopback itself costs.
const MIN_LINK: Duration = Duration::from_micros(10);
/// The largest: beyond it the databases are not across a network but unreachable for a while,
/// which a chaos suite's `latency` action models.
const MAX_LINK: Duration = Duration::from_millis(100);

/// `link_latency` within [`MIN_LINK`] and [`MAX_LINK`] in whole microseconds (the testbed's key
/// counts them), and `link_jitter` only beside it and no larger than it.
pub(crate) fn check_environment(lp: &LoadedPlan) -> Result<(), PlanError> {
    let env = &lp.plan.environment;
    let whole_us = |field: &str, v: &Spanned<FineDur>| {
        let d = v.get_ref().0;
        if !d.subsec_nanos().is_multiple_of(1000) {
            return Err(lp.error_at(
                v.span(),
                field,
                format!("{} is finer than a microsecond: the testbed's key counts whole microseconds", humantime::format_duration(d)),
            ));
        }
        Ok(d)
    };
    let latency = match &env.link_latency {
        None => None,
        Some(v) => {
            let field = "environment.link_latency";
            let d = whole_us(field, v)?;
            let problem = if d.is_zero() {
                Some("a link of 0 is no link: leave link_latency out and the app connects to its databases directly".to_string())
            } else if d < MIN_LINK {
                Some(format!(
                    "{} is less than the loopback itself costs: expected at least {} (production's links between machines are 0.2 to 1 ms)",
                    show(d),
                    show(MIN_LINK)
                ))
            } else if d > MAX_LINK {
                Some(format!(
                    "{} is not a link between an app and its databases but an outage: expected at most {} (a chaos suite's `latency` action models more)",
                    show(d),
                    show(MAX_LINK)
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(lp.error_at(v.span(), field, message));
            }
            Some(d)
        }
    };
    if let Some(v) = &env.link_jitter {
        let field = "environment.link_jitter";
        let jitter = whole_us(field, v)?;
        match latency {
            None => return Err(lp.error_at(v.span(), field, "link_jitter spreads link_latency, which the plan does not set: set both")),
            Some(latency) if jitter > latency => {
                return Err(lp.error_at(
                    v.span(),
                    field,
                    format!(
                        "{} is more than link_latency ({}): a chunk would be due before it was sent; at most the latency",
                        show(jitter),
                        show(latency)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `0.5ms`, `10us`, `100ms`: the value as a plan would write it.
fn show(d: Duration) -> String {
    let part = Link::key_part(d);
    match part.strip_suffix("us").and_then(|us| us.parse::<u64>().ok()) {
        Some(us) if us >= 100 => format!("{}ms", us as f64 / 1000.0),
        _ => part,
    }
}
