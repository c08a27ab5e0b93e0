//! The verdict of one suite: the comparison with its baseline and, on a regression, the
//! confirming re-run. The gate, A/B mode and the verdict-quality experiment all decide here.

use crate::compare::{SuiteComparison, compare_suite};
use crate::plan::CompareRules;
use crate::render::Confirmation;
use crate::summary::Summary;

use super::{GateError, Notes};

/// A comparison with the baseline after the confirmation re-run, if one was needed.
pub struct Judged {
    /// The summary the verdict is about: the re-run's when there was one.
    pub summary: Summary,
    pub comparison: SuiteComparison,
    pub confirmation: Confirmation,
}

/// Compares `first` with `base`; when an endpoint regressed (and `confirm` is set and the run
/// is valid), runs `rerun` once and keeps the regression only on endpoints that regress in
/// both runs. The gate and the verdict-quality experiment both decide through this.
pub async fn judge<F, Fut>(
    base: &Summary,
    first: Summary,
    rules: &CompareRules,
    confirm: bool,
    notes: &Notes,
    rerun: F,
) -> Result<Judged, GateError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Summary, GateError>>,
{
    let comparison = compare_suite(Some(base), &first, rules);
    if !(confirm && first.valid && comparison.has_regression()) {
        return Ok(Judged { summary: first, comparison, confirmation: Confirmation::NotRun });
    }
    let regressed: Vec<String> = comparison.regressed_endpoints().into_iter().map(str::to_string).collect();
    notes.say(format!("{}: regression on {}; running the suite once more to confirm", first.suite, regressed.join(", ")));
    let again = rerun().await?;
    let again_cmp = confirm_comparison(Some(base), &again, rules, &regressed);
    let confirmation =
        if again_cmp.has_regression() { Confirmation::Confirmed } else { Confirmation::NotConfirmed { first_run: regressed } };
    Ok(Judged { summary: again, comparison: again_cmp, confirmation })
}

/// The re-run's comparison. A regression stands only on endpoints that regressed in both
/// runs: an endpoint that regresses once in two runs is noise, not a change.
fn confirm_comparison(base: Option<&Summary>, again: &Summary, rules: &CompareRules, first: &[String]) -> SuiteComparison {
    use crate::compare::Verdict;
    let mut c = compare_suite(base, again, rules);
    for e in c.endpoints.iter_mut() {
        if e.verdict == Verdict::Regressed && !first.contains(&e.name) {
            e.verdict = Verdict::Noisy;
            for m in e.metrics.iter_mut().filter(|m| m.verdict == Verdict::Regressed) {
                m.verdict = Verdict::Noisy;
                m.reason = format!("{} (regressed in the re-run only)", m.reason);
            }
        }
    }
    c.verdict = Verdict::worst(c.endpoints.iter().map(|e| e.verdict));
    c
}

/// A regression measured while the machine was busy with work the gate did not start is not a
/// verdict: the suite becomes invalid (exit 2) and says why, so that a compiler or a neighbour
/// beside the run never reads as a slower pull request. A passing suite stays as it is (a busy
/// machine only slows a run down). [`Summary::busy_machine`] says when (never for the
/// external backend).
pub fn distrust_busy_regression(judged: &mut Judged) {
    let Some(why) = judged.summary.busy_machine() else { return };
    if !judged.comparison.has_regression() {
        judged.comparison.notes.push(format!("{why}; no regression even so"));
        return;
    }
    judged.summary.valid = false;
    judged.summary.invalid_reasons.push(format!(
        "{why}; the regression it shows may be the machine's, not the code's: run again on a quiet machine (or compare with `--against REF`, which runs both sides alternately on the same machine)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::testkit::{Gen, one};
    use crate::util::machine::MachineLoad;

    fn judged(head_ms: f64, foreign: f64, backend: &str) -> Judged {
        let base = one("baseline", "provider", &Gen::new(50, 30, 2.0, 1));
        let mut head = one("baseline", "provider", &Gen::new(50, 30, head_ms, 2));
        head.run.backend = backend.to_string();
        head.machine = Some(MachineLoad {
            cpus: 2,
            window_s: 30.0,
            busy_cores: 1.0 + foreign,
            run_cores: 1.0,
            foreign_cores: foreign,
            steal_cores: 0.0,
        });
        let comparison = compare_suite(Some(&base), &head, &CompareRules::default());
        Judged { summary: head, comparison, confirmation: Confirmation::NotRun }
    }

    #[test]
    fn a_regression_on_a_busy_machine_is_no_verdict_but_a_pass_stands() {
        let mut j = judged(3.0, 1.4, "local");
        assert!(j.comparison.has_regression());
        distrust_busy_regression(&mut j);
        assert!(!j.summary.valid);
        assert!(j.summary.invalid_reasons[0].contains("used 1.40 of its 2 CPUs"), "{:?}", j.summary.invalid_reasons);

        let mut quiet = judged(3.0, 0.1, "local");
        distrust_busy_regression(&mut quiet);
        assert!(quiet.summary.valid, "a regression on a quiet machine is the verdict");

        let mut pass = judged(2.0, 1.4, "docker");
        assert!(!pass.comparison.has_regression());
        distrust_busy_regression(&mut pass);
        assert!(pass.summary.valid, "a busy machine only slows a run down: a pass stands");

        let mut external = judged(3.0, 1.4, "external");
        distrust_busy_regression(&mut external);
        assert!(external.summary.valid, "with an external target the app itself is foreign");
    }
}
