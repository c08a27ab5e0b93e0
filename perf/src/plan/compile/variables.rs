//! `[variables]` and the requests' captures: the names templates may use, and how each
//! generated value is drawn.

use toml::Spanned;

use super::common::{toml_to_json, valid_ident};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::VariableSpec;
use crate::plan::options::Shard;
use crate::plan::vars::{Generator, VarTable};

/// Every generated variable, then every captured name (in the order of the requests).
pub(super) fn variables(lp: &LoadedPlan) -> Result<VarTable, PlanError> {
    let mut table = VarTable::default();
    for (name, spec) in &lp.plan.variables {
        let generator = generator(lp, name, spec)?;
        table.generated.push((name.clone(), generator));
    }
    captures(lp, &mut table)?;
    Ok(table)
}

/// How one `[variables]` entry is drawn; a reversed range or a bad value is an error.
fn generator(lp: &LoadedPlan, name: &str, spec: &Spanned<VariableSpec>) -> Result<Generator, PlanError> {
    let field = format!("variables.{name}");
    let span = spec.span();
    if !valid_ident(name) {
        return Err(lp.error_at(span, &field, format!("`{name}` is not a valid variable name: use letters, digits and `_`")));
    }
    Ok(match spec.get_ref() {
        VariableSpec::Int([low, high]) | VariableSpec::Sequence([low, high]) if low > high => {
            return Err(lp.error_at(span, &field, format!("range [{low}, {high}] is reversed")));
        }
        VariableSpec::Int([low, high]) => Generator::Int { low: *low, high: *high },
        VariableSpec::Sequence([low, high]) => Generator::Sequence { low: *low, high: *high },
        VariableSpec::Choice(values) => {
            if values.is_empty() {
                return Err(lp.error_at(span, &field, "`choice` needs at least one value"));
            }
            let json = values.iter().map(toml_to_json).collect::<Result<Vec<_>, _>>().map_err(|m| lp.error_at(span.clone(), &field, m))?;
            Generator::Choice(json)
        }
        VariableSpec::Date([a, b]) => {
            let parse = |s: &str| {
                s.parse::<jiff::civil::Date>()
                    .map_err(|_| lp.error_at(span.clone(), &field, format!("{s:?} is not a date: expected YYYY-MM-DD")))
            };
            let (first, last) = (parse(a)?, parse(b)?);
            if first > last {
                return Err(lp.error_at(span, &field, format!("date range [{a}, {b}] is reversed")));
            }
            let span_days = (last - first).get_days() as i64;
            Generator::Date { first, span_days }
        }
    })
}

/// The names captured from responses: valid, not a generated variable's, at a JSON pointer.
/// A name captured by several requests has one slot.
fn captures(lp: &LoadedPlan, table: &mut VarTable) -> Result<(), PlanError> {
    for (rname, r) in &lp.plan.requests {
        for (var, pointer) in &r.capture {
            let field = format!("requests.{rname}.capture.{var}");
            if !valid_ident(var) {
                return Err(lp.error_at(
                    pointer.span(),
                    &field,
                    format!("`{var}` is not a valid variable name: use letters, digits and `_`"),
                ));
            }
            if lp.plan.variables.contains_key(var) {
                return Err(lp.error_at(
                    pointer.span(),
                    &field,
                    format!("`{var}` is already a generated variable under [variables]: pick another name"),
                ));
            }
            let p = pointer.get_ref();
            if !p.is_empty() && !p.starts_with('/') {
                return Err(lp.error_at(
                    pointer.span(),
                    &field,
                    format!("{p:?} is not a JSON pointer: expected \"\" or a path like \"/token\" or \"/slots/0/id\""),
                ));
            }
            if !table.captures.contains(var) {
                table.captures.push(var.clone());
            }
        }
    }
    Ok(())
}

/// `--shard K/N`: each sequence is split between the shards, so each needs at least N values.
pub(super) fn split_sequences(lp: &LoadedPlan, table: &mut VarTable, shard: Shard) -> Result<(), PlanError> {
    for (name, g) in &table.generated {
        if let Generator::Sequence { low, high } = g
            && ((*high - *low) as u64) + 1 < u64::from(shard.count)
        {
            return Err(lp.error_at(
                lp.plan.variables[name].span(),
                &format!("variables.{name}"),
                format!(
                    "the sequence has {} values, fewer than the {} shards of --shard {shard}: each shard needs values of its own",
                    high - low + 1,
                    shard.count
                ),
            ));
        }
    }
    table.shard = Some(shard);
    Ok(())
}
