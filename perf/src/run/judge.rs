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
