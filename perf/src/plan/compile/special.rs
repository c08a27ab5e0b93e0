//! The kind-specific table of a suite (`spike`, `stress`, `soak`; `chaos` in `chaos.rs`):
//! present exactly when `kind` asks for it, and consistent with the suite's timeline.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::chaos::chaos;
use super::common::scenarios_span;
use crate::plan::compiled::{self as c, Scenario, Special};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::{CapacitySpec, SoakSpec, SpikeSpec, StressSpec, SuiteSpec};
use crate::plan::values::SuiteKind;

/// The suite's kind-specific part: `None` for a load suite.
pub(super) fn special(
    lp: &LoadedPlan,
    name: &str,
    spec: &SuiteSpec,
    scenarios: &[Scenario],
    warmup: Duration,
    timeline: Duration,
) -> Result<Option<Special>, PlanError> {
    check_tables(lp, name, spec)?;
    let present = "check_tables found the kind's table";
    Ok(match *spec.kind.get_ref() {
        SuiteKind::Load => None,
        SuiteKind::Spike => Some(Special::Spike(spike(lp, name, spec.spike.as_ref().expect(present), warmup, timeline)?)),
        SuiteKind::Stress => Some(Special::Stress(stress(lp, name, spec.stress.as_ref().expect(present), scenarios)?)),
        SuiteKind::Soak => Some(Special::Soak(soak(lp, name, spec.soak.as_ref().expect(present))?)),
        SuiteKind::Chaos => {
            let t = spec.chaos.as_ref().expect(present);
            Some(Special::Chaos(chaos(lp, name, t.span(), t.get_ref(), timeline)?))
        }
    })
}

/// A kind's table only on a suite of that kind, and always on one.
fn check_tables(lp: &LoadedPlan, name: &str, spec: &SuiteSpec) -> Result<(), PlanError> {
    let kind = *spec.kind.get_ref();
    let tables = [
        ("spike", SuiteKind::Spike, spec.spike.as_ref().map(|t| t.span())),
        ("stress", SuiteKind::Stress, spec.stress.as_ref().map(|t| t.span())),
        ("soak", SuiteKind::Soak, spec.soak.as_ref().map(|t| t.span())),
        ("chaos", SuiteKind::Chaos, spec.chaos.as_ref().map(|t| t.span())),
    ];
    for (table, k, span) in &tables {
        if let Some(span) = span
            && *k != kind
        {
            return Err(lp.error_at(
                span.clone(),
                &format!("suites.{name}.{table}"),
                format!("a `{table}` table only applies to a suite with kind = \"{table}\" (this suite's kind is \"{}\")", kind.name()),
            ));
        }
        if span.is_none() && *k == kind {
            let at = if spec.kind.span().is_empty() { scenarios_span(spec) } else { spec.kind.span() };
            return Err(lp.error_at(
                at,
                &format!("suites.{name}.{table}"),
                format!("a {table} suite needs a `{table}` table ({})", example(*k)),
            ));
        }
    }
    Ok(())
}

/// `spike`: the jump within the measured part of the suite, with time after it to recover.
fn spike(lp: &LoadedPlan, name: &str, t: &Spanned<SpikeSpec>, warmup: Duration, timeline: Duration) -> Result<c::SpikeSpec, PlanError> {
    let (span, v) = (t.span(), t.get_ref());
    let field = |f: &str| format!("suites.{name}.spike.{f}");
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    let (start, end) = (v.start.0, v.end.0);
    if start <= warmup {
        return Err(lp.error_at(
            span,
            &field("start"),
            format!(
                "the spike starts at {} but the warm-up lasts {}: the pre-spike p95 needs measured windows before the spike",
                fmt(start),
                fmt(warmup)
            ),
        ));
    }
    if end <= start {
        return Err(lp.error_at(span, &field("end"), format!("the spike ends ({}) before it starts ({})", fmt(end), fmt(start))));
    }
    if end >= timeline {
        return Err(lp.error_at(
            span,
            &field("end"),
            format!(
                "the spike ends at {} but the suite's scenarios end at {}: nothing is left to measure the recovery",
                fmt(end),
                fmt(timeline)
            ),
        ));
    }
    let max_error_rate = fraction(lp, span.clone(), &field("max_error_rate"), v.max_error_rate)?;
    if !(v.recovery_tolerance > 0.0 && v.recovery_tolerance.is_finite()) {
        return Err(lp.error_at(
            span,
            &field("recovery_tolerance"),
            format!("{} is not a tolerance: expected a number > 0 (0.2 is 20%)", v.recovery_tolerance),
        ));
    }
    Ok(c::SpikeSpec { start, end, max_error_rate, max_recovery: v.max_recovery.0, recovery_tolerance: v.recovery_tolerance })
}

/// `stress`: a ramping-arrival-rate scenario whose holds are the steps, each step's limits,
/// how far extra steps may go, and the capacity target.
fn stress(lp: &LoadedPlan, name: &str, t: &Spanned<StressSpec>, scenarios: &[Scenario]) -> Result<c::StressSpec, PlanError> {
    let (span, v) = (t.span(), t.get_ref());
    let field = |f: &str| format!("suites.{name}.stress.{f}");
    if !scenarios.iter().any(|s| !s.shape.holds().is_empty()) {
        return Err(lp.error_at(span, &format!("suites.{name}.scenarios"), "a stress suite needs a ramping-arrival-rate scenario whose stages hold a rate (a stage whose target equals the previous one): those holds are the steps"));
    }
    if v.slo_p95.0.is_zero() {
        return Err(lp.error_at(span, &field("slo_p95"), "must be longer than zero"));
    }
    let max_error_rate = fraction(lp, span.clone(), &field("max_error_rate"), v.max_error_rate)?;
    if !(v.min_breaking_rate >= 0.0 && v.min_breaking_rate.is_finite()) {
        return Err(lp.error_at(
            span,
            &field("min_breaking_rate"),
            format!("{} is not a rate: expected iterations per second ≥ 0", v.min_breaking_rate),
        ));
    }
    let planned_top = scenarios.iter().flat_map(|s| s.shape.holds()).map(|h| h.rate).fold(0.0, f64::max);
    let max_rate = match v.max_rate {
        None => None,
        Some(m) if m.is_finite() && m >= planned_top => Some(m),
        Some(m) => {
            return Err(lp.error_at(
                span,
                &field("max_rate"),
                format!("{m} is not a ceiling above the planned steps: expected a rate ≥ the highest step ({planned_top}/s)"),
            ));
        }
    };
    let capacity = match &v.capacity {
        None => None,
        Some(cap) => Some(capacity(lp, span, name, cap)?),
    };
    Ok(c::StressSpec { slo_p95: v.slo_p95.0, max_error_rate, min_breaking_rate: v.min_breaking_rate, max_rate, capacity })
}

/// `stress.capacity`: a target rate > 0 and a headroom in 0..1.
fn capacity(lp: &LoadedPlan, span: Range<usize>, name: &str, cap: &CapacitySpec) -> Result<c::CapacityTarget, PlanError> {
    let field = |f: &str| format!("suites.{name}.stress.capacity.{f}");
    if !(cap.target_rps > 0.0 && cap.target_rps.is_finite()) {
        return Err(lp.error_at(
            span,
            &field("target_rps"),
            format!("{} is not a target rate: expected requests per second > 0", cap.target_rps),
        ));
    }
    if !(0.0..1.0).contains(&cap.headroom) {
        return Err(lp.error_at(
            span,
            &field("headroom"),
            format!("{} is not a headroom: expected 0 ≤ headroom < 1 (0.3 keeps 30% of each instance free)", cap.headroom),
        ));
    }
    Ok(c::CapacityTarget { target_rps: cap.target_rps, headroom: cap.headroom })
}

/// `soak`: growth limits ≥ 0 and known services, each once.
fn soak(lp: &LoadedPlan, name: &str, t: &Spanned<SoakSpec>) -> Result<c::SoakSpec, PlanError> {
    let (span, v) = (t.span(), t.get_ref());
    let field = |f: &str| format!("suites.{name}.soak.{f}");
    let max_memory_growth = growth_limit(lp, span.clone(), &field("max_memory_growth"), v.max_memory_growth)?;
    let max_p95_growth = growth_limit(lp, span.clone(), &field("max_p95_growth"), v.max_p95_growth)?;
    let mut services = Vec::new();
    for (i, s) in v.services.iter().enumerate() {
        let Some(service) = c::Service::from_name(s.get_ref()) else {
            let at = if s.span().is_empty() { span.clone() } else { s.span() };
            let known: Vec<&str> = c::Service::ALL.iter().map(|s| s.as_str()).collect();
            return Err(lp.error_at(
                at,
                &field(&format!("services[{i}]")),
                format!("unknown service `{}`: expected one of {}", s.get_ref(), known.join(", ")),
            ));
        };
        if !services.contains(&service) {
            services.push(service);
        }
    }
    Ok(c::SoakSpec { max_memory_growth, max_p95_growth, services })
}

fn fraction(lp: &LoadedPlan, span: Range<usize>, field: &str, v: f64) -> Result<f64, PlanError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(lp.error_at(span, field, format!("{v} is not a fraction: expected 0..=1 (0.01 is 1%)")))
    }
}

fn growth_limit(lp: &LoadedPlan, span: Range<usize>, field: &str, v: f64) -> Result<f64, PlanError> {
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(lp.error_at(span, field, format!("{v} is not a relative growth: expected a number ≥ 0 (0.2 is +20%)")))
    }
}

/// How the table of `kind` is written, for the error that asks for it.
fn example(kind: SuiteKind) -> &'static str {
    match kind {
        SuiteKind::Load => "",
        SuiteKind::Spike => "like spike = { start = \"20s\", end = \"30s\", max_error_rate = 0.01, max_recovery = \"10s\" }",
        SuiteKind::Stress => "like stress = { slo_p95 = \"100ms\", max_error_rate = 0.01, min_breaking_rate = 50.0 }",
        SuiteKind::Soak => "like soak = { max_memory_growth = 0.2, max_p95_growth = 0.2, services = [\"app\"] }",
        SuiteKind::Chaos => {
            "like chaos = { actions = [{ at = \"10s\", stop = \"postgres\" }, { at = \"20s\", start = \"postgres\" }], expect = [\"no_5xx_except_503\"] }"
        }
    }
}
