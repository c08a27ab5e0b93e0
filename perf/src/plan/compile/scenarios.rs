//! A suite's scenarios: each executor's shape (the keys it takes and needs, users and rates
//! within reason) and what one iteration does (a request, a mix or a workflow).

use std::time::Duration;

use toml::Spanned;

use super::common::names;
use super::requests::request_id;
use crate::plan::compiled::{Exec, RequestId, Scenario, Shape, Step};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::ScenarioSpec;
use crate::plan::values::{Dur, Executor};

/// Default time given to running iterations after a scenario ends.
const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(10);

/// The scenario `name` of a suite; `field` is its place, `suites.<suite>.scenarios.<name>`.
pub(super) fn scenario(
    lp: &LoadedPlan,
    workflows: &[(String, Vec<Step>)],
    field: &str,
    name: &str,
    s: &ScenarioSpec,
) -> Result<Scenario, PlanError> {
    let check = Check { lp, field, s };
    let shape = check.shape()?;
    let exec = check.exec(workflows)?;
    Ok(Scenario {
        name: name.to_string(),
        executor: check.executor(),
        start: s.start.map(|d| d.0).unwrap_or_default(),
        shape,
        exec,
        graceful_stop: s.graceful_stop.map(|d| d.0).unwrap_or(DEFAULT_GRACEFUL_STOP),
    })
}

/// One scenario being checked: its errors point at its executor.
struct Check<'a> {
    lp: &'a LoadedPlan,
    field: &'a str,
    s: &'a ScenarioSpec,
}

impl Check<'_> {
    fn executor(&self) -> Executor {
        *self.s.executor.get_ref()
    }

    /// An error about the scenario's key `f`.
    fn err(&self, f: &str, m: String) -> PlanError {
        self.lp.error_at(self.s.executor.span(), &format!("{}.{f}", self.field), m)
    }

    /// A key the executor does not take.
    fn forbid(&self, present: bool, f: &str) -> Result<(), PlanError> {
        if present { Err(self.err(f, format!("`{f}` does not apply to the {} executor", self.executor().name()))) } else { Ok(()) }
    }

    /// A duration the executor needs, longer than zero.
    fn positive_dur(&self, d: Option<Dur>, f: &str) -> Result<Duration, PlanError> {
        match d {
            Some(d) if !d.0.is_zero() => Ok(d.0),
            Some(_) => Err(self.err(f, format!("`{f}` must be longer than zero"))),
            None => Err(self.err(f, format!("the {} executor needs `{f}`", self.executor().name()))),
        }
    }

    /// The stages of a ramping executor: targets that are numbers of `target_kind` (whole
    /// numbers of users for ramping-vus), lasting some time in all.
    fn stages(&self, target_kind: &str) -> Result<Vec<(Duration, f64)>, PlanError> {
        let s = self.s;
        if s.stages.is_empty() {
            let ename = self.executor().name();
            return Err(self.err("stages", format!("the {ename} executor needs `stages`, like [{{ duration = \"30s\", target = 10 }}]")));
        }
        let mut out = Vec::new();
        for (i, st) in s.stages.iter().enumerate() {
            if !(st.target >= 0.0 && st.target.is_finite()) {
                return Err(self.err(&format!("stages[{i}].target"), format!("{} is not a valid {target_kind}", st.target)));
            }
            if self.executor() == Executor::RampingVus && st.target.fract() != 0.0 {
                return Err(self.err(&format!("stages[{i}].target"), format!("{} is not a whole number of users", st.target)));
            }
            out.push((st.duration.0, st.target));
        }
        if out.iter().all(|(d, _)| d.is_zero()) {
            return Err(self.err("stages", "the stages last no time at all".into()));
        }
        Ok(out)
    }

    /// An open model's users: allocated up front and at most, defaults following the peak rate.
    fn open_vus(&self, peak: f64) -> Result<(u32, u32), PlanError> {
        let s = self.s;
        let pre = s.pre_allocated_vus.unwrap_or_else(|| ((peak / 10.0).ceil() as u32).max(2));
        // The default headroom stays within the plan's limit; a value written out is checked.
        let max = s.max_vus.unwrap_or_else(|| pre.max(((peak * 2.0).ceil() as u32).max(100).min(self.lp.plan.limits.max_vus)));
        if pre == 0 {
            return Err(self.err("pre_allocated_vus", "must be at least 1".into()));
        }
        if max < pre {
            return Err(self.err("max_vus", format!("max_vus ({max}) is less than pre_allocated_vus ({pre})")));
        }
        Ok((pre, max))
    }

    fn shape(&self) -> Result<Shape, PlanError> {
        match self.executor() {
            Executor::ConstantVus => self.constant_vus(),
            Executor::RampingVus => self.ramping_vus(),
            Executor::ConstantArrivalRate => self.constant_arrival_rate(),
            Executor::RampingArrivalRate => self.ramping_arrival_rate(),
        }
    }

    fn constant_vus(&self) -> Result<Shape, PlanError> {
        let s = self.s;
        self.forbid(s.rate.is_some(), "rate")?;
        self.forbid(s.start_rate.is_some(), "start_rate")?;
        self.forbid(!s.stages.is_empty(), "stages")?;
        self.forbid(s.start_vus.is_some(), "start_vus")?;
        self.forbid(s.pre_allocated_vus.is_some(), "pre_allocated_vus")?;
        self.forbid(s.max_vus.is_some(), "max_vus")?;
        let vus = s.vus.ok_or_else(|| self.err("vus", "the constant-vus executor needs `vus`".into()))?;
        if vus == 0 {
            return Err(self.err("vus", "must be at least 1".into()));
        }
        Ok(Shape::ConstantVus { vus, duration: self.positive_dur(s.duration, "duration")? })
    }

    fn ramping_vus(&self) -> Result<Shape, PlanError> {
        let s = self.s;
        self.forbid(s.rate.is_some(), "rate")?;
        self.forbid(s.start_rate.is_some(), "start_rate")?;
        self.forbid(s.vus.is_some(), "vus")?;
        self.forbid(s.duration.is_some(), "duration")?;
        self.forbid(s.pre_allocated_vus.is_some(), "pre_allocated_vus")?;
        self.forbid(s.max_vus.is_some(), "max_vus")?;
        Ok(Shape::RampingVus { start_vus: s.start_vus.unwrap_or(0), stages: self.stages("number of users")? })
    }

    fn constant_arrival_rate(&self) -> Result<Shape, PlanError> {
        let s = self.s;
        self.forbid(s.vus.is_some(), "vus")?;
        self.forbid(s.start_vus.is_some(), "start_vus")?;
        self.forbid(s.start_rate.is_some(), "start_rate")?;
        self.forbid(!s.stages.is_empty(), "stages")?;
        let rate =
            s.rate.ok_or_else(|| self.err("rate", "the constant-arrival-rate executor needs `rate` (iterations per second)".into()))?;
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(self.err("rate", format!("{rate} is not a rate: expected iterations per second > 0")));
        }
        let (pre_allocated_vus, max_vus) = self.open_vus(rate)?;
        Ok(Shape::ConstantArrivalRate { rate, duration: self.positive_dur(s.duration, "duration")?, pre_allocated_vus, max_vus })
    }

    fn ramping_arrival_rate(&self) -> Result<Shape, PlanError> {
        let s = self.s;
        self.forbid(s.vus.is_some(), "vus")?;
        self.forbid(s.start_vus.is_some(), "start_vus")?;
        self.forbid(s.rate.is_some(), "rate")?;
        self.forbid(s.duration.is_some(), "duration")?;
        let start_rate = s.start_rate.unwrap_or(0.0);
        if !(start_rate >= 0.0 && start_rate.is_finite()) {
            return Err(self.err("start_rate", format!("{start_rate} is not a rate")));
        }
        let stages = self.stages("rate")?;
        let peak = stages.iter().map(|(_, t)| *t).fold(start_rate, f64::max);
        let (pre_allocated_vus, max_vus) = self.open_vus(peak)?;
        Ok(Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus, max_vus })
    }

    /// What one iteration does: exactly one of `request`, `mix` (HTTP requests only) or
    /// `workflow`.
    fn exec(&self, workflows: &[(String, Vec<Step>)]) -> Result<Exec, PlanError> {
        let (lp, s, field) = (self.lp, self.s, self.field);
        let chosen = [s.request.is_some(), !s.mix.is_empty(), s.workflow.is_some()].iter().filter(|b| **b).count();
        if chosen != 1 {
            return Err(self.err("request", "say what one iteration does with exactly one of `request`, `mix` or `workflow`".into()));
        }
        Ok(if let Some(r) = &s.request {
            Exec::Request(self.http_id(r, &format!("{field}.request"))?)
        } else if let Some(w) = &s.workflow {
            let steps = workflows.iter().find(|(n, _)| n == w.get_ref()).map(|(_, st)| st.clone()).ok_or_else(|| {
                lp.error_at(
                    w.span(),
                    &format!("{field}.workflow"),
                    format!("unknown workflow `{}` (the plan defines: {})", w.get_ref(), names(workflows.iter().map(|(n, _)| n))),
                )
            })?;
            Exec::Workflow(steps)
        } else {
            let mut items = Vec::new();
            for (i, r) in s.mix.iter().enumerate() {
                let id = self.http_id(r, &format!("{field}.mix[{i}]"))?;
                items.push((id, lp.plan.requests[id].weight));
            }
            Exec::Mix(items)
        })
    }

    /// A request a scenario sends by itself: an HTTP one.
    fn http_id(&self, r: &Spanned<String>, f: &str) -> Result<RequestId, PlanError> {
        let id = request_id(self.lp, r, f)?;
        if self.lp.plan.requests[id].ws.is_some() {
            return Err(self.lp.error_at(
                r.span(),
                f,
                format!(
                    "`{}` is a WebSocket request: use it in a workflow, with `ws_connect`, `ws_expect` and the other `ws_` steps",
                    r.get_ref()
                ),
            ));
        }
        Ok(id)
    }
}
