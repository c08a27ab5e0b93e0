//! Small helpers every part of the compiler uses: lists of names for messages, where a name
//! or a table is in the file, identifiers, and TOML values as JSON.

use std::ops::Range;

use crate::plan::loaded::LoadedPlan;
use crate::plan::model::SuiteSpec;

/// `a, b, c` for a message, or `none`.
pub(super) fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// Letters, digits and `_`, not starting with a digit.
pub(super) fn valid_ident(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A TOML value as JSON (a datetime becomes its text); a float JSON cannot hold is an error.
pub(super) fn toml_to_json(v: &toml::Value) -> Result<serde_json::Value, String> {
    Ok(match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map(serde_json::Value::Number).ok_or_else(|| format!("{f} cannot be written as JSON"))?
        }
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, v) in t {
                m.insert(k.clone(), toml_to_json(v)?);
            }
            serde_json::Value::Object(m)
        }
    })
}

/// Where the table `[section.name]` is in the file (its name, quoted or not, or failing that
/// the first place the name is written); the start of the file when it is nowhere.
pub(super) fn table_header(lp: &LoadedPlan, section: &str, name: &str) -> Range<usize> {
    let at = [format!("[{section}.{name}]"), format!("[{section}.\"{name}\"]")]
        .iter()
        .find_map(|h| lp.source.find(h.as_str()).map(|i| i + section.len() + 2))
        .or_else(|| lp.source.find(name))
        .unwrap_or(0);
    at..at + name.len()
}

/// Where a suite's scenarios begin (its first executor), for errors about the suite as a whole.
pub(super) fn scenarios_span(spec: &SuiteSpec) -> Range<usize> {
    spec.scenarios.values().next().map(|s| s.executor.span()).unwrap_or(0..0)
}
