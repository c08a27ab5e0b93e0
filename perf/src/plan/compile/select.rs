//! The command line's choice among the plan's suites: `--suite`, `--tags`, and which suites
//! `--shard` can split.

use std::collections::BTreeSet;

use super::common::names;
use crate::plan::compiled::{Exec, Request, RequestId, Suite, exercised};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::options::CompileOptions;
use crate::plan::values::SuiteKind;

/// The suites to run: `--suite` (names, kinds, `all`), else the plan's `default_suites`, else
/// all of them.
pub(super) fn select(lp: &LoadedPlan, opts: &CompileOptions, all: Vec<Suite>) -> Result<Vec<Suite>, PlanError> {
    let wanted: Vec<String> = if opts.suites.iter().any(|s| s == "all") && !lp.plan.suites.contains_key("all") {
        // `--suite all` (PERF_SUITES=all in the nightly workflow): every suite of the plan.
        return Ok(all);
    } else if !opts.suites.is_empty() {
        opts.suites.clone()
    } else if !lp.plan.default_suites.is_empty() {
        lp.plan.default_suites.iter().map(|s| s.get_ref().clone()).collect()
    } else {
        return Ok(all);
    };
    let mut out: Vec<Suite> = Vec::new();
    for w in wanted {
        // A suite's name, or a kind (`chaos`, `spike`, …) that no suite is named after: every
        // suite of that kind, in the plan's order.
        let matching: Vec<&Suite> = match all.iter().find(|s| s.name == w) {
            Some(s) => vec![s],
            None => all.iter().filter(|s| s.kind.name() == w).collect(),
        };
        if matching.is_empty() {
            return Err(lp.error(
                "--suite",
                format!(
                    "unknown suite `{w}` (the plan defines: {}; a kind such as `chaos` selects every suite of that kind)",
                    names(lp.plan.suites.keys())
                ),
            ));
        }
        for s in matching {
            if !out.iter().any(|o| o.name == s.name) {
                out.push(s.clone());
            }
        }
    }
    Ok(out)
}

/// `--tags`: only the scenarios (and the SLOs of endpoints) that send a request with one of
/// the tags; a suite left with no scenario is dropped.
pub(super) fn filter_tags(
    lp: &LoadedPlan,
    requests: &[Request],
    opts: &CompileOptions,
    suites: Vec<Suite>,
) -> Result<Vec<Suite>, PlanError> {
    if opts.tags.is_empty() {
        return Ok(suites);
    }
    let known: BTreeSet<&String> = requests.iter().flat_map(|r| r.tags.iter()).collect();
    for t in &opts.tags {
        if !known.contains(t) {
            return Err(lp.error("--tags", format!("no request is tagged `{t}` (tags in the plan: {})", names(known.iter().copied()))));
        }
    }
    let tagged = |id: &RequestId| requests[*id].tags.iter().any(|t| opts.tags.contains(t));
    let mut out = Vec::new();
    for mut suite in suites {
        suite.scenarios.retain_mut(|s| match &mut s.exec {
            Exec::Request(id) => tagged(id),
            Exec::Mix(items) => {
                items.retain(|(id, _)| tagged(id));
                !items.is_empty()
            }
            // A workflow runs whole (later steps need earlier captures) when any step matches.
            Exec::Workflow(steps) => steps.iter().any(|st| tagged(&st.request())),
        });
        if suite.scenarios.is_empty() {
            continue;
        }
        let kept = exercised(&suite.scenarios);
        suite.slo.retain(|(endpoint, _)| {
            endpoint.as_ref().is_none_or(|e| requests.iter().position(|r| &r.name == e).is_some_and(|id| kept.contains(&id)))
        });
        out.push(suite);
    }
    if out.is_empty() {
        return Err(lp.error("--tags", format!("no scenario of the selected suites sends a request tagged {}", opts.tags.join(", "))));
    }
    Ok(out)
}

/// `--shard` splits load suites only: a special suite's checks judge one machine's run.
pub(super) fn check_shard(lp: &LoadedPlan, opts: &CompileOptions, selected: &[Suite]) -> Result<(), PlanError> {
    if let Some(shard) = opts.shard
        && let Some(special) = selected.iter().find(|s| s.kind != SuiteKind::Load)
    {
        return Err(lp.error(
            "--shard",
            format!(
                "suite `{}` is a {} suite: --shard {shard} splits load suites only (a special suite's checks judge one machine's run)",
                special.name,
                special.kind.name()
            ),
        ));
    }
    Ok(())
}
