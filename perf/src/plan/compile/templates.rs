//! Templates in the plan's strings and bodies: parsed, every `{{name}}` resolved to a
//! variable, errors pointing at the name in the file.

use std::ops::Range;

use toml::Spanned;

use super::common::{names, toml_to_json};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::template::{self, BodyTemplate, Part, RawPart, Template};
use crate::plan::vars::VarTable;

/// The parts of a string template; a syntax error points inside the string.
pub(super) fn parse_template(lp: &LoadedPlan, value: &Spanned<String>, field: &str) -> Result<Vec<RawPart>, PlanError> {
    template::parse(value.get_ref()).map_err(|e| {
        // +1 skips the opening quote; exact for strings without escapes before the error.
        let at = value.span().start + 1 + e.offset;
        lp.error_at(at..at, field, e.message)
    })
}

/// Where `{{name` first appears inside `span`, for precise positions in strings and bodies.
pub(super) fn locate(lp: &LoadedPlan, span: Range<usize>, name: &str) -> Range<usize> {
    let text = &lp.source[span.clone()];
    let mut from = 0;
    while let Some(i) = text[from..].find("{{") {
        let start = from + i + 2;
        let rest = &text[start..];
        let trimmed = rest.trim_start();
        if trimmed.starts_with(name) {
            let at = span.start + start + (rest.len() - trimmed.len());
            return at..at;
        }
        from = start;
    }
    span
}

/// A string template with every name resolved to a variable; an unknown name points at itself.
pub(super) fn resolve(
    lp: &LoadedPlan,
    table: &VarTable,
    value: &Spanned<String>,
    span: Range<usize>,
    field: &str,
) -> Result<Template, PlanError> {
    let raw = parse_template(lp, value, field)?;
    resolve_parts(lp, table, raw, span, field)
}

fn resolve_parts(lp: &LoadedPlan, table: &VarTable, raw: Vec<RawPart>, span: Range<usize>, field: &str) -> Result<Template, PlanError> {
    let mut parts = Vec::with_capacity(raw.len());
    for p in raw {
        match p {
            RawPart::Lit(s) => parts.push(Part::Lit(s)),
            RawPart::Var { name, .. } => match table.lookup(&name) {
                Some(r) => parts.push(Part::Var(r)),
                None => {
                    let known: Vec<&String> = table.generated.iter().map(|(n, _)| n).chain(table.captures.iter()).collect();
                    return Err(lp.error_at(
                        locate(lp, span, &name),
                        field,
                        format!(
                            "undefined variable `{name}`: define it under [variables] or capture it from an earlier response with `capture = {{ {name} = \"/pointer\" }}` (defined: {})",
                            names(known.into_iter())
                        ),
                    ));
                }
            },
        }
    }
    Ok(Template { parts })
}

/// A JSON body template from any TOML value (strings are templates); constant subtrees are
/// folded into constants.
pub(super) fn body(lp: &LoadedPlan, table: &VarTable, v: &toml::Value, span: Range<usize>, field: &str) -> Result<BodyTemplate, PlanError> {
    let t = match v {
        toml::Value::String(s) => {
            let raw = template::parse(s).map_err(|e| lp.error_at(span.clone(), field, e.message))?;
            let t = resolve_parts(lp, table, raw, span.clone(), field)?;
            match t.sole_var() {
                Some(r) => BodyTemplate::Typed(r),
                None if t.parts.iter().all(|p| matches!(p, Part::Lit(_))) => BodyTemplate::Const(serde_json::Value::String(s.clone())),
                None => BodyTemplate::Text(t),
            }
        }
        toml::Value::Array(items) => {
            BodyTemplate::Array(items.iter().map(|i| body(lp, table, i, span.clone(), field)).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => BodyTemplate::Object(
            t.iter().map(|(k, v)| Ok((k.clone(), body(lp, table, v, span.clone(), &format!("{field}.{k}"))?))).collect::<Result<_, _>>()?,
        ),
        other => BodyTemplate::Const(toml_to_json(other).map_err(|m| lp.error_at(span.clone(), field, m))?),
    };
    // Fold constant subtrees so rendering only walks what changes.
    Ok(match t {
        BodyTemplate::Array(items) if items.iter().all(|i| matches!(i, BodyTemplate::Const(_))) => BodyTemplate::Const(
            serde_json::Value::Array(items.into_iter().map(|i| if let BodyTemplate::Const(v) = i { v } else { unreachable!() }).collect()),
        ),
        BodyTemplate::Object(fields) if fields.iter().all(|(_, i)| matches!(i, BodyTemplate::Const(_))) => {
            BodyTemplate::Const(serde_json::Value::Object(
                fields.into_iter().map(|(k, i)| if let BodyTemplate::Const(v) = i { (k, v) } else { unreachable!() }).collect(),
            ))
        }
        other => other,
    })
}
