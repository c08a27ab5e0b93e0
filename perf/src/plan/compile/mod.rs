//! From a parsed plan to the [`Compiled`] form: every reference resolved, every shape
//! checked, every template parsed. Errors point at the offending value in the file.
//!
//! One file per part of the plan, in the order they are compiled: `app.rs` (`[app]`),
//! `variables.rs` (`[variables]` and captures), `requests.rs` (`[requests]`, with
//! `templates.rs` for paths, headers and bodies), `steps.rs` (`[workflows]` and setup steps),
//! `compare.rs` (`[compare]`), `suites.rs` (`[suites]`: `scenarios.rs` for executors,
//! `special.rs` and `chaos.rs` for each kind's table; `services.rs`: what they act on is
//! started), then the command line's part:
//! `select.rs` (`--suite`, `--tags`, `--shard`) and `limits.rs` (`[limits]`, on the suites as
//! they will run). `environment.rs` checks `[environment]`'s link to the databases first.
//! `common.rs` holds the helpers they share; no file here imports this one.

mod app;
mod chaos;
mod common;
mod compare;
mod environment;
mod limits;
mod requests;
mod scenarios;
mod select;
mod services;
mod special;
mod steps;
mod suites;
mod templates;
mod variables;

use std::sync::Arc;

use crate::plan::compiled::{Compiled, Request, Suite};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::options::CompileOptions;
use crate::plan::setup::Setup;
use crate::plan::{identity, scale};
use common::names;

pub(super) use compare::rules as compare_rules;
pub(super) use environment::check_environment;

/// Validates the plan and produces what the engine runs: the suites `opts` selects, reshaped
/// as it says.
pub(super) fn compile(lp: &LoadedPlan, opts: &CompileOptions) -> Result<Compiled, PlanError> {
    let plan = &lp.plan;
    check_version(lp)?;
    environment::check_environment(lp)?;
    app::check_app(lp)?;
    let setup = Setup::from(plan);
    let mut table = variables::variables(lp)?;
    if let Some(shard) = opts.shard {
        variables::split_sequences(lp, &mut table, shard)?;
    }
    let table = Arc::new(table);
    let requests = requests::requests(lp, &table)?;
    let workflows = steps::workflows(lp, &table, &requests)?;
    check_default_suites(lp)?;
    let compare = compare::rules(lp)?;

    // Every suite is checked, selected or not: a broken suite is a broken plan.
    let all = plan
        .suites
        .iter()
        .map(|(name, spec)| suites::suite(lp, &table, &requests, &workflows, name, spec))
        .collect::<Result<Vec<_>, _>>()?;
    services::check_services(lp, &setup.environment)?;
    let selected = select::select(lp, opts, all)?;
    let selected = select::filter_tags(lp, &requests, opts, selected)?;
    select::check_shard(lp, opts, &selected)?;
    let suites = selected.into_iter().map(|s| as_run(lp, &requests, opts, s)).collect::<Result<_, PlanError>>()?;
    Ok(Compiled {
        requests,
        suites,
        setup,
        compare,
        http: plan.defaults.http,
        late_after: plan.defaults.late_after.0,
        shard: opts.shard,
        vars: table,
    })
}

/// Only version 1 exists.
fn check_version(lp: &LoadedPlan) -> Result<(), PlanError> {
    let version = &lp.plan.version;
    if *version.get_ref() != 1 {
        return Err(lp.error_at(
            version.span(),
            "version",
            format!("unsupported plan version {}: this build reads version 1", version.get_ref()),
        ));
    }
    Ok(())
}

/// `default_suites` names suites of the plan.
fn check_default_suites(lp: &LoadedPlan) -> Result<(), PlanError> {
    let plan = &lp.plan;
    for s in &plan.default_suites {
        if !plan.suites.contains_key(s.get_ref()) {
            return Err(lp.error_at(
                s.span(),
                "default_suites",
                format!("unknown suite `{}` (the plan defines: {})", s.get_ref(), names(plan.suites.keys())),
            ));
        }
    }
    Ok(())
}

/// A selected suite as it will run: reshaped by the command line, within `[limits]`, with the
/// hash of its definition.
fn as_run(lp: &LoadedPlan, requests: &[Request], opts: &CompileOptions, suite: Suite) -> Result<Suite, PlanError> {
    let mut s = scale::apply(suite, opts);
    limits::check_limits(lp, &s)?;
    s.definition_hash = identity::suite_hash(lp, requests, &s, opts);
    Ok(s)
}
