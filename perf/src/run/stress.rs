//! The stress suite's search past its planned steps: when every planned step held, extra
//! steps run one at a time, each a run of its own (a ramp from the highest held rate, then a
//! hold as long as the last planned one), at the rates `special::next_step` decides, until a
//! step breaks, `max_rate` or the load generator's limit is reached, or
//! [`crate::special::MAX_EXTRA_STEPS`] were run.

use std::time::Duration;

use crate::env::Environment;
use crate::plan::compiled::{Shape, StressSpec, Suite};
use crate::special::{Next, Observations, Outcome, StressStep, measure_extra_step, measure_steps, next_step};
use crate::summary::Summary;
use crate::util::Notes;

use super::options::GateError;

/// The shortest ramp (left out as warm-up) before an extra step's hold.
const MIN_RAMP: Duration = Duration::from_secs(1);
/// Virtual users of an extra step grow with its rate, up to this many.
const MAX_VUS: u32 = 4000;

/// Runs the extra steps the search asks for after `summary` (the planned run) and returns
/// them measured, in the order they ran. `measure` runs one step's suite in `env` (the
/// caller's one-run measurement, so this module needs nothing of how a suite is measured).
pub(super) async fn search(
    notes: &Notes,
    env: &mut Environment,
    suite: &Suite,
    spec: &StressSpec,
    summary: &Summary,
    measure: impl AsyncFn(&mut Environment, &Suite) -> Result<(Summary, Observations), GateError>,
) -> Result<Vec<StressStep>, GateError> {
    let planned = measure_steps(spec, suite, summary);
    let mut extra: Vec<StressStep> = Vec::new();
    loop {
        let tried: Vec<_> = planned.iter().chain(&extra).map(|s| (s.rate, s.outcome(), s.extra)).collect();
        let Next::Step(rate) = next_step(&tried, spec.max_rate) else { break };
        let from = tried.iter().filter(|(r, o, _)| *o == Outcome::Held && *r < rate).map(|(r, _, _)| *r).fold(0.0, f64::max);
        let Some(step_suite) = extra_step_suite(suite, from, rate) else { break };
        if extra.is_empty() {
            notes.say(format!("stress {}: every planned step held; searching past them", suite.name));
        }
        let (run, _) = measure(env, &step_suite).await?;
        let Some(step) = measure_extra_step(spec, &step_suite, &run) else {
            notes.say(format!("stress {}: the extra step at {rate}/s measured no window; the search stops", suite.name));
            break;
        };
        let said = match step.failure {
            None => "held".to_string(),
            Some("generator") => format!("not sent in full by the load generator ({:.0}/s)", step.achieved_rps),
            Some(how) => format!("broke by {how}"),
        };
        notes.say(format!("stress {}: extra step {rate}/s {said}", suite.name));
        extra.push(step);
    }
    Ok(extra)
}

/// A one-step suite: the stress scenario ramping from `from` to `rate`, then holding it as
/// long as the last planned hold; the ramp is the warm-up. Virtual users scale with the rate
/// from the planned top step's. `None` when the suite has no steps.
fn extra_step_suite(suite: &Suite, from: f64, rate: f64) -> Option<Suite> {
    let scenario = suite.scenarios.iter().find(|s| !s.shape.holds().is_empty())?;
    let Shape::RampingArrivalRate { stages, pre_allocated_vus, max_vus, .. } = &scenario.shape else { return None };
    let holds = scenario.shape.holds();
    let last = holds.last()?;
    let top = holds.iter().map(|h| h.rate).fold(0.0, f64::max);
    // The ramp into the last planned hold: the stage just before it.
    let ramp_index = stages.iter().scan(Duration::ZERO, |t, (d, _)| {
        let start = *t;
        *t += *d;
        Some(start)
    });
    let ramp =
        ramp_index.zip(stages.iter()).take_while(|(start, _)| *start < last.start).last().map_or(MIN_RAMP, |(_, (d, _))| *d).max(MIN_RAMP);
    let scale = |vus: u32| ((vus as f64 * rate / top.max(1.0)).ceil() as u32).clamp(vus, MAX_VUS.max(vus));
    let mut s = scenario.clone();
    s.start = Duration::ZERO;
    s.shape = Shape::RampingArrivalRate {
        start_rate: from,
        stages: vec![(ramp, rate), (last.duration, rate)],
        pre_allocated_vus: scale(*pre_allocated_vus),
        max_vus: scale(*max_vus),
    };
    let mut out = suite.clone();
    out.warmup = ramp;
    out.scenarios = vec![s];
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::compiled::{Exec, Scenario, Special};
    use crate::plan::{Executor, SuiteKind};

    #[test]
    fn an_extra_step_ramps_from_the_held_rate_and_holds_as_long_as_the_last_planned_step() {
        let secs = Duration::from_secs;
        let stages = vec![(secs(2), 50.0), (secs(13), 50.0), (secs(2), 100.0), (secs(13), 100.0)];
        let scenario = Scenario {
            name: "provider".into(),
            executor: Executor::RampingArrivalRate,
            start: secs(3),
            shape: Shape::RampingArrivalRate { start_rate: 0.0, stages, pre_allocated_vus: 50, max_vus: 400 },
            exec: Exec::Request(0),
            graceful_stop: secs(1),
        };
        let spec = StressSpec {
            slo_p95: Duration::from_millis(100),
            max_error_rate: 0.01,
            min_breaking_rate: 0.0,
            max_rate: None,
            capacity: None,
        };
        let suite = Suite {
            name: "stress".into(),
            kind: SuiteKind::Stress,
            warmup: secs(2),
            scenarios: vec![scenario],
            slo: Vec::new(),
            setup: Vec::new(),
            special: Some(Special::Stress(spec)),
            definition_hash: String::new(),
        };
        let s = extra_step_suite(&suite, 100.0, 200.0).unwrap();
        assert_eq!(s.warmup, secs(2));
        assert_eq!(s.scenarios[0].start, Duration::ZERO);
        let Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus, max_vus } = &s.scenarios[0].shape else { panic!() };
        assert_eq!((*start_rate, stages.as_slice()), (100.0, [(secs(2), 200.0), (secs(13), 200.0)].as_slice()));
        // Twice the planned top rate: twice the users, within the cap.
        assert_eq!((*pre_allocated_vus, *max_vus), (100, 800));
        let Shape::RampingArrivalRate { max_vus, .. } = &extra_step_suite(&suite, 100.0, 100_000.0).unwrap().scenarios[0].shape else {
            panic!()
        };
        assert_eq!(*max_vus, MAX_VUS);
        // Its one hold is the step the search measures.
        assert_eq!(s.scenarios[0].shape.holds().len(), 1);
    }
}
