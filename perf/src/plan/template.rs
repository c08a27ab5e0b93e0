//! `{{name}}` templates: parsed once at compile time, rendered per request.
//!
//! The syntax is deliberately tiny: literal text and `{{name}}` (spaces inside the braces
//! are allowed). A name is a generated variable or a captured value; both resolve to a slot
//! at compile time, so rendering never looks a name up.

use serde_json::Value;

use super::vars::{RenderError, VarRef, VuVars};

/// A template before names are resolved: what the validator checks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawPart {
    Lit(String),
    /// A variable reference and the byte offset of its name in the template string.
    Var {
        name: String,
        offset: usize,
    },
}

/// A syntax error at a byte offset of the template string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Splits a template string into literal text and variable references.
pub(crate) fn parse(s: &str) -> Result<Vec<RawPart>, SyntaxError> {
    let mut parts = Vec::new();
    let mut rest = s;
    let mut base = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(RawPart::Lit(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(SyntaxError { offset: base + open, message: "`{{` is not closed by `}}`".into() });
        };
        let inner = &after[..close];
        let name = inner.trim();
        let lead = inner.len() - inner.trim_start().len();
        let offset = base + open + 2 + lead;
        if !valid_name(name) {
            return Err(SyntaxError {
                offset,
                message: format!("`{{{{{inner}}}}}` is not a variable reference: expected a name of letters, digits, `_` and `.`"),
            });
        }
        parts.push(RawPart::Var { name: name.to_string(), offset });
        let consumed = open + 2 + close + 2;
        rest = &rest[consumed..];
        base += consumed;
    }
    if !rest.is_empty() {
        parts.push(RawPart::Lit(rest.to_string()));
    }
    Ok(parts)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Lit(String),
    Var(VarRef),
}

/// A resolved string template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub parts: Vec<Part>,
}

impl Template {
    /// The variable when the template is exactly one reference and nothing else.
    pub fn sole_var(&self) -> Option<VarRef> {
        match self.parts.as_slice() {
            [Part::Var(v)] => Some(*v),
            _ => None,
        }
    }

    pub fn render_into(&self, vars: &mut VuVars, out: &mut String) -> Result<(), RenderError> {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => {
                    let value = vars.get(*v)?;
                    push_value(out, &value);
                }
            }
        }
        Ok(())
    }

    pub fn render(&self, vars: &mut VuVars) -> Result<String, RenderError> {
        let mut out = String::new();
        self.render_into(vars, &mut out)?;
        Ok(out)
    }
}

/// Writes a value into text: strings raw, numbers and booleans as written, other JSON as JSON.
fn push_value(out: &mut String, value: &Value) {
    use std::fmt::Write;
    match value {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Null => out.push_str("null"),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON body template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BodyTemplate {
    /// A value with no template in it.
    Const(Value),
    /// A string that is exactly `{{name}}`: the variable's typed value.
    Typed(VarRef),
    /// A string with text around references: interpolated.
    Text(Template),
    Array(Vec<BodyTemplate>),
    Object(Vec<(String, BodyTemplate)>),
}

impl BodyTemplate {
    pub fn render(&self, vars: &mut VuVars) -> Result<Value, RenderError> {
        Ok(match self {
            BodyTemplate::Const(v) => v.clone(),
            BodyTemplate::Typed(r) => vars.get(*r)?,
            BodyTemplate::Text(t) => Value::String(t.render(vars)?),
            BodyTemplate::Array(items) => Value::Array(items.iter().map(|i| i.render(vars)).collect::<Result<_, _>>()?),
            BodyTemplate::Object(fields) => {
                let mut map = serde_json::Map::with_capacity(fields.len());
                for (k, v) in fields {
                    map.insert(k.clone(), v.render(vars)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// A value captured from a JSON response into a virtual user's slot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Capture {
    pub var: String,
    pub pointer: String,
    pub slot: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, offset: usize) -> RawPart {
        RawPart::Var { name: name.into(), offset }
    }

    #[test]
    fn parses_text_and_references() {
        assert_eq!(
            parse("/api/slots?provider_id={{ pid }}&date={{date}}").unwrap(),
            vec![RawPart::Lit("/api/slots?provider_id=".into()), var("pid", 26), RawPart::Lit("&date=".into()), var("date", 40),]
        );
        assert_eq!(parse("plain").unwrap(), vec![RawPart::Lit("plain".into())]);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("{{a}}{{b.c}}").unwrap(), vec![var("a", 2), var("b.c", 7)]);
    }

    #[test]
    fn rejects_unclosed_and_bad_names() {
        let e = parse("/x/{{id").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("not closed"));
        let e = parse("/x/{{ 1id }}").unwrap_err();
        assert_eq!(e.offset, 6);
        let e = parse("{{}}").unwrap_err();
        assert!(e.message.contains("not a variable reference"), "{}", e.message);
    }
}
