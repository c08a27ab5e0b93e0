//! The verdict of one suite, whatever the mode: the comparison with its baseline, the
//! confirming re-run on a regression, the busy-machine rule and the notes that qualify it
//! ([`judge_suite`]); A/B's second pass of pairs when the first leaves a change undecided
//! ([`judge_pairs`]); then the summary written and its part of the report ([`record_suite`]).
//! The stored-baseline run, A/B, results measured elsewhere and the verdict-quality experiment
//! all decide here, so the experiment measures exactly the gate's rule.

use std::path::PathBuf;

use crate::compare::{Context, Noise, SuiteComparison, compare_suite_with};
use crate::plan::CompareRules;
use crate::summary::{self, Summary};
use crate::util::Notes;
use crate::verdict::{BaselineSource, Confirmation, SuiteReport};

use super::baseline::Pick;
use super::options::{GateError, GateOptions};
use super::prepare::Prepared;

/// A comparison with the baseline after the confirmation re-run, if one was needed.
pub struct Judged {
    /// The summary the verdict is about: the re-run's when there was one.
    pub summary: Summary,
    pub comparison: SuiteComparison,
    pub confirmation: Confirmation,
}

/// How a suite is judged, beyond its two summaries.
pub struct Judging<'a> {
    pub rules: &'a CompareRules,
    pub notes: &'a Notes,
    /// Run the suite again when it regressed, and keep only what regresses twice.
    pub confirm: bool,
    /// Why the baseline does not match this run's testbed, when `--baseline-any-testbed`
    /// forced it.
    pub across: Option<&'a str>,
    /// The summary was measured elsewhere (`--from-summaries`): nothing can run it again.
    pub measured_elsewhere: bool,
    /// A/B: the two summaries' segments ran in pairs, back to back. A busy machine then
    /// weighs on both sides alike and widens the interval instead of biasing the change, so
    /// the busy-machine rule (which protects a comparison across time) does not apply.
    pub paired: bool,
    /// The testbed's measured noise for this suite (the floor where the plan sets none).
    pub noise: Option<&'a Noise>,
}

/// The one judge of a suite: compares `first` with `base` ([`compare_suite`]); on a
/// regression (with `confirm`, on a valid run) runs `rerun` once and keeps the regression
/// only on endpoints that regress in both runs; distrusts a regression measured on a busy
/// machine ([`distrust_busy_regression`]); and notes what qualifies the verdict.
pub async fn judge_suite<F, Fut>(base: &Summary, first: Summary, how: &Judging<'_>, rerun: F) -> Result<Judged, GateError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Summary, GateError>>,
{
    let confirm = how.confirm && !how.measured_elsewhere && !how.paired;
    let ctx = Context { paired: how.paired, noise: how.noise };
    let mut judged = judge(base, first, how.rules, ctx, confirm, how.notes, rerun).await?;
    if !how.paired {
        distrust_busy_regression(&mut judged);
    }
    if let Some(why) = how.across {
        judged.comparison.notes.insert(0, format!("compared across testbeds (--baseline-any-testbed): {why}"));
    }
    if how.measured_elsewhere && judged.comparison.has_regression() {
        judged.comparison.notes.push("judged from measured results (--from-summaries): not confirmed by a re-run".into());
    }
    Ok(judged)
}

/// A/B's one extra pass. When the first pass of pairs leaves a change undecided (a metric
/// beyond its threshold whose interval is not clear of the noise, or too few requests to
/// test it: [`SuiteComparison::undecided`]) and nothing regressed, `more` measures every pair
/// once more on both sides; the verdict is then over the pairs of both passes, whose segments
/// are put end to end ([`summary::concat_passes`]). A percentile's interval narrows with the
/// requests behind it, so a tail change a first pass of a 10 req/s endpoint could not tell from
/// the noise is decided by the second. At most one extra pass: a change the pairs of both
/// still cannot decide stays `noisy`. Returns the base the verdict is against (pooled when
/// there was a second pass) and the judged head.
pub async fn judge_pairs<F, Fut>(base: &Summary, head: Summary, how: &Judging<'_>, more: F) -> Result<(Summary, Judged), GateError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(Summary, Summary), GateError>>,
{
    let first = judge_suite(base, head, how, no_rerun).await?;
    if !needs_another_pass(&first.comparison) {
        return Ok((base.clone(), first));
    }
    let undecided = first.comparison.undecided();
    let pairs = first.summary.endpoints.values().map(|e| e.segments.len()).max().unwrap_or(0);
    how.notes.say(format!("{}: {pairs} pairs left {} undecided; measuring every pair once more", first.summary.suite, list(&undecided)));
    let (base_more, head_more) = more().await?;
    let pool = |a: Summary, b: Summary| summary::concat_passes(&[a, b]).map_err(|e| GateError::Io(format!("suite {}: {e}", base.suite)));
    let base = pool(base.clone(), base_more)?;
    let head = pool(first.summary, head_more)?;
    let mut judged = judge_suite(&base, head, how, no_rerun).await?;
    judged.comparison.notes.push(format!(
        "measured in two passes: the first {pairs} pairs left {} undecided, the verdict is over all {} pairs",
        list(&undecided),
        2 * pairs
    ));
    Ok((base, judged))
}

/// The re-run an A/B comparison is given: none (its pairs are the confirmation; a second pass is
/// [`judge_pairs`]' own).
pub async fn no_rerun() -> Result<Summary, GateError> {
    Err(GateError::Input("an A/B comparison is not run again".into()))
}

/// Whether [`judge_pairs`] measures a second pass after a first that judged `first`: a change
/// is undecided and nothing regressed (a regression is the verdict already).
pub fn needs_another_pass(first: &SuiteComparison) -> bool {
    !first.has_regression() && !first.undecided().is_empty()
}

/// Whether [`judge_suite`], confirming, runs the suite once more after `first` compared as
/// `comparison`: a valid run with a regression. Pure.
pub fn wants_confirmation(first: &Summary, comparison: &SuiteComparison) -> bool {
    first.valid && comparison.has_regression()
}

/// A suite measured twice on one environment (`--measure-noise`, and the base of the
/// verdict-quality experiment's stored trials): `first`, then `again`, the same code once more
/// (an A/A). Returns both runs as one summary ([`summary::concat_passes`]), what the suite is
/// judged and stored as, and the testbed's noise the A/A shows ([`aa_noise`]), the floor of
/// later comparisons with it. A baseline of both runs holds twice the requests: its
/// percentiles are less uncertain and one run the machine favoured weighs half (measured in
/// README, "Stored mode, quick suites": a p95 +30% copy caught 9 times in 20 instead of 0, no
/// more false fails). Pure.
pub fn measured_twice(first: Summary, again: Summary, rules: &CompareRules) -> Result<(Summary, Noise), GateError> {
    let noise = aa_noise(&first, &again, rules);
    let both = summary::concat_passes(&[first, again]).map_err(|e| GateError::Io(format!("suite {}: {e}", noise.suite)))?;
    Ok((both, noise))
}

/// The testbed's noise an A/A shows: `again`, the same suite run once more on the same
/// environment (and testbed, whose key it carries), compared with `first`. Pure.
fn aa_noise(first: &Summary, again: &Summary, rules: &CompareRules) -> Noise {
    let aa = crate::compare::compare_suite(Some(first), again, rules);
    let testbed = again.run.testbed.as_ref().map(|t| t.key.as_str()).unwrap_or_default();
    Noise::from_aa(&aa, testbed, &again.run.started_at)
}

/// `a, b and 3 more`.
fn list(items: &[String]) -> String {
    match items.len() {
        0..=3 => items.join(", "),
        n => format!("{} and {} more", items[..3].join(", "), n - 3),
    }
}

/// Writes a judged suite's summary as `<out>/<suite>.json` and makes its part of the report:
/// where its baseline came from (or why there was none to compare with).
pub fn record_suite(
    opts: &GateOptions,
    prepared: &Prepared,
    pick: Option<&Pick>,
    summary: Summary,
    comparison: Option<SuiteComparison>,
    confirmation: Confirmation,
) -> Result<(SuiteReport, PathBuf), GateError> {
    let file = opts.out_dir.join(format!("{}.json", summary.suite));
    summary::write_atomic(&file, &summary).map_err(|e| GateError::Io(e.to_string()))?;
    let (baseline_source, baseline_summary) = match (pick, &prepared.baseline_source) {
        (Some(Pick::Found { summary: b, path, .. }), source) => {
            let source = match source {
                BaselineSource::Committed { .. } => BaselineSource::Committed { path: crate::util::report_path(path) },
                other => other.clone(),
            };
            (source, Some((**b).clone()))
        }
        (Some(Pick::NotComparable { why, testbeds }), _) => {
            (BaselineSource::NotComparable { why: why.clone(), testbed: prepared.testbed.key.clone(), available: testbeds.clone() }, None)
        }
        _ => (BaselineSource::None, None),
    };
    Ok((SuiteReport { summary, comparison, baseline: baseline_source, baseline_summary, confirmation, stored: None }, file))
}

/// Compares `first` with `base`; when an endpoint regressed (and `confirm` is set and the run
/// is valid), runs `rerun` once and keeps the regression only on endpoints that regress in
/// both runs.
async fn judge<F, Fut>(
    base: &Summary,
    first: Summary,
    rules: &CompareRules,
    ctx: Context<'_>,
    confirm: bool,
    notes: &Notes,
    rerun: F,
) -> Result<Judged, GateError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Summary, GateError>>,
{
    let comparison = compare_suite_with(Some(base), &first, rules, ctx);
    if !(confirm && wants_confirmation(&first, &comparison)) {
        return Ok(Judged { summary: first, comparison, confirmation: Confirmation::NotRun });
    }
    let regressed: Vec<String> = comparison.regressed_endpoints().into_iter().map(str::to_string).collect();
    notes.say(format!("{}: regression on {}; running the suite once more to confirm", first.suite, regressed.join(", ")));
    let again = rerun().await?;
    let again_cmp = confirm_comparison(Some(base), &again, rules, ctx, &regressed);
    let confirmation =
        if again_cmp.has_regression() { Confirmation::Confirmed } else { Confirmation::NotConfirmed { first_run: regressed } };
    Ok(Judged { summary: again, comparison: again_cmp, confirmation })
}

/// The re-run's comparison. A regression stands only on endpoints that regressed in both
/// runs: an endpoint that regresses once in two runs is noise, not a change.
fn confirm_comparison(
    base: Option<&Summary>,
    again: &Summary,
    rules: &CompareRules,
    ctx: Context<'_>,
    first: &[String],
) -> SuiteComparison {
    use crate::compare::Verdict;
    let mut c = compare_suite_with(base, again, rules, ctx);
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
fn distrust_busy_regression(judged: &mut Judged) {
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

    fn judged(head_ms: f64, foreign: f64, backend: crate::plan::BackendKind) -> Judged {
        let base = one("baseline", "provider", &Gen::new(50, 30, 2.0, 1));
        let mut head = one("baseline", "provider", &Gen::new(50, 30, head_ms, 2));
        head.run.backend = backend;
        head.machine = Some(MachineLoad {
            cpus: 2,
            window_s: 30.0,
            busy_cores: 1.0 + foreign,
            run_cores: 1.0,
            foreign_cores: foreign,
            steal_cores: 0.0,
        });
        let comparison = crate::compare::compare_suite(Some(&base), &head, &CompareRules::default());
        Judged { summary: head, comparison, confirmation: Confirmation::NotRun }
    }

    /// One side of an A/B pass: 6 segments of 5 s at 10 req/s, a wide spread.
    fn pass(median_ms: f64, seed: u64) -> Summary {
        one("baseline", "slots", &Gen::new(10, 30, median_ms, seed).spread(0.5, 0.02).segments_of(5))
    }

    fn paired<'a>(rules: &'a CompareRules, notes: &'a Notes) -> Judging<'a> {
        Judging { rules, notes, confirm: false, across: None, measured_elsewhere: false, paired: true, noise: None }
    }

    #[test]
    fn a_suite_measured_twice_is_judged_and_stored_as_both_runs_with_their_aa_as_its_noise() {
        let rules = CompareRules::default();
        // The first run found the machine fast (p50 1.6 ms), the A/A slow (2.4 ms).
        let first = one("baseline", "slots", &Gen::new(10, 30, 1.6, 1));
        let again = one("baseline", "slots", &Gen::new(10, 30, 2.4, 2));
        let (both, noise) = measured_twice(first.clone(), again.clone(), &rules).unwrap();
        let e = &both.endpoints["slots"];
        assert_eq!(e.requests, first.endpoints["slots"].requests + again.endpoints["slots"].requests);
        let p50 = |s: &Summary| s.endpoints["slots"].latency_ms.p50.unwrap();
        assert!(p50(&first) < p50(&both) && p50(&both) < p50(&again), "{} {} {}", p50(&first), p50(&both), p50(&again));
        // The noise is the A/A's: the second run judged against the first.
        assert_eq!(noise, aa_noise(&first, &again, &rules));
        let moved = noise.get("slots", crate::compare::Metric::P50).unwrap();
        assert!((0.3..0.7).contains(&moved), "{moved}");
        // A head of 2.0 ms reads about +25% against the first run alone, and about no change
        // against both: one run the machine favoured weighs half.
        let head = one("baseline", "slots", &Gen::new(10, 30, 2.0, 3));
        let change = |base: &Summary| p50(&head) / p50(base) - 1.0;
        assert!(change(&first) > 0.15, "{}", change(&first));
        assert!(change(&both).abs() < 0.08, "{}", change(&both));
    }

    #[test]
    fn a_change_the_first_pass_left_undecided_is_decided_over_both_passes() {
        let (rules, notes) = (CompareRules::default(), Notes::to(|_| {}));
        // Seeds whose first pass reads p50 +25% as beyond 20% but not clear of the noise.
        let (base, head) = (pass(2.0, 11), pass(2.5, 12));
        let first = compare_suite_with(Some(&base), &head, &rules, Context { paired: true, noise: None });
        assert!(needs_another_pass(&first), "{:?}", first.endpoints[0].metrics);
        assert!(first.undecided().contains(&"slots p50".to_string()), "{:?}", first.undecided());
        let mut asked = 0;
        let more = || {
            asked += 1;
            async { Ok((pass(2.0, 13), pass(2.5, 14))) }
        };
        let (pooled, judged) = futures::executor::block_on(judge_pairs(&base, head, &paired(&rules, &notes), more)).unwrap();
        assert_eq!(asked, 1);
        assert_eq!(pooled.endpoints["slots"].segments.len(), 12, "the base's pairs of both passes");
        assert_eq!(judged.summary.endpoints["slots"].segments.len(), 12);
        assert_eq!(judged.summary.endpoints["slots"].requests, 600);
        let p50 = judged.comparison.endpoints[0].metrics.iter().find(|m| m.metric == crate::compare::Metric::P50).unwrap();
        assert_eq!(p50.verdict, crate::compare::Verdict::Regressed, "{}", p50.reason);
        assert!(
            judged.comparison.notes.iter().any(|n| n.starts_with("measured in two passes: the first 6 pairs left")),
            "{:?}",
            judged.comparison.notes
        );
    }

    #[test]
    fn a_first_pass_that_decides_measures_nothing_more() {
        let (rules, notes) = (CompareRules::default(), Notes::to(|_| {}));
        let more = || async { panic!("no second pass when the first decided") };
        // The same requests on both sides (nothing moved), and twice as slow (a regression is
        // the verdict already).
        for (head_ms, seed) in [(2.0, 1), (4.0, 2)] {
            let (base, head) = (pass(2.0, 1), pass(head_ms, seed));
            let (b, judged) = futures::executor::block_on(judge_pairs(&base, head, &paired(&rules, &notes), more)).unwrap();
            assert_eq!(b.endpoints["slots"].segments.len(), 6);
            assert_eq!(judged.comparison.has_regression(), head_ms > 3.0);
            assert!(judged.comparison.notes.iter().all(|n| !n.starts_with("measured in two passes")));
        }
    }

    #[test]
    fn a_regression_on_a_busy_machine_is_no_verdict_but_a_pass_stands() {
        let mut j = judged(3.0, 1.4, crate::plan::BackendKind::Local);
        assert!(j.comparison.has_regression());
        distrust_busy_regression(&mut j);
        assert!(!j.summary.valid);
        assert!(j.summary.invalid_reasons[0].contains("used 1.40 of its 2 CPUs"), "{:?}", j.summary.invalid_reasons);

        let mut quiet = judged(3.0, 0.1, crate::plan::BackendKind::Local);
        distrust_busy_regression(&mut quiet);
        assert!(quiet.summary.valid, "a regression on a quiet machine is the verdict");

        let mut pass = judged(2.0, 1.4, crate::plan::BackendKind::Docker);
        assert!(!pass.comparison.has_regression());
        distrust_busy_regression(&mut pass);
        assert!(pass.summary.valid, "a busy machine only slows a run down: a pass stands");

        let mut external = judged(3.0, 1.4, crate::plan::BackendKind::External);
        distrust_busy_regression(&mut external);
        assert!(external.summary.valid, "with an external target the app itself is foreign");
    }
}
