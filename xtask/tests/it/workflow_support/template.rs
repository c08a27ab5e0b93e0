//! Where expressions sit in a workflow: strings holding `${{ … }}` (in `env:`, `with:`,
//! `outputs`, `name:`…) and `if:` conditions, written with or without `${{ }}`.
//!
//! A string that is exactly one `${{ expr }}` takes the expression's value and type (so
//! `${{ inputs.n }}` passed to a reusable workflow stays a number); text around expressions
//! makes a string, each expression turned into text (`null` is empty). An `if:` that calls no
//! status function is `success() && (condition)`.

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

use super::expr::{Scope, evaluate, parse, to_text, truthy};

/// Splits `text` into literal parts and expressions: `a ${{ x }} b` → `[Text("a "), Expr(" x "), Text(" b")]`.
enum Piece<'a> {
    Text(&'a str),
    Expr(&'a str),
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let body = &rest[start + 3..];
        let end = closing_braces(body).ok_or_else(|| anyhow!("`${{{{` without its `}}}}` in `{text}`"))?;
        out.push(Piece::Expr(&body[..end]));
        rest = &body[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The offset of the `}}` that closes an expression, skipping quoted strings.
fn closing_braces(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Evaluates a YAML value as GitHub does: strings holding `${{ }}` are templates (a string
/// that is exactly one expression keeps the expression's type, so `${{ inputs.n }}` stays a
/// number), mappings and sequences are evaluated item by item, other scalars stay as they are.
pub fn render(value: &Value, scope: &Scope<'_>) -> Result<Value> {
    match value {
        Value::String(s) => render_str(s, scope),
        Value::Array(items) => Ok(Value::Array(items.iter().map(|v| render(v, scope)).collect::<Result<_>>()?)),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), render(v, scope).map_err(|e| e.context(format!("in `{k}`")))?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn render_str(text: &str, scope: &Scope<'_>) -> Result<Value> {
    let parts = pieces(text)?;
    if let [Piece::Expr(src)] = parts.as_slice() {
        return evaluate(src, scope);
    }
    let mut out = String::new();
    for part in parts {
        match part {
            Piece::Text(t) => out.push_str(t),
            Piece::Expr(src) => out.push_str(&to_text(&evaluate(src, scope)?)),
        }
    }
    Ok(Value::String(out))
}

/// Renders a value and turns it into text (env values, step inputs).
pub fn render_text(value: &Value, scope: &Scope<'_>) -> Result<String> {
    Ok(to_text(&render(value, scope)?))
}

/// Evaluates an `if:` (job or step). Written with or without `${{ }}`; when it calls no status
/// function, GitHub evaluates `success() && (condition)`. A condition that mixes `${{ }}` with
/// other text would be a non-empty string on GitHub, always true: refused here.
pub fn condition(value: Option<&Value>, scope: &Scope<'_>) -> Result<bool> {
    let src = match value {
        None => return Ok(scope.status.success),
        Some(Value::Bool(b)) => return Ok(*b && scope.status.success),
        Some(Value::String(s)) => s.trim(),
        Some(other) => bail!("if: `{other}` is neither a string nor a boolean"),
    };
    let src = if src.contains("${{") {
        match pieces(src)?.as_slice() {
            [Piece::Expr(inner)] => *inner,
            _ => bail!("if: `{src}` mixes `${{{{ }}}}` with other text: GitHub would read it as a non-empty string, always true"),
        }
    } else {
        src
    };
    let expr = parse(src)?;
    let value = super::expr::eval(&expr, scope).map_err(|e| e.context(format!("if: `{src}`")))?;
    Ok(truthy(&value) && (expr.has_status_function() || scope.status.success))
}
