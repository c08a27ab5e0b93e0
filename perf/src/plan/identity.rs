//! A suite's identity: the hash of everything that decides what its numbers mean.
//!
//! A baseline is compared with a run only while both measured the same thing. The whole plan
//! file's hash is too coarse (adding a chaos suite would mark every other suite as changed)
//! and the suite's name too loose (a new request in its mix changes every percentile). The
//! hash covers the suite's own table, the requests its scenarios and set-up send, the
//! workflows they go through, the variables those requests use, the `[defaults]` every
//! request inherits, the `[compare]` rules, and the command line's reshaping (`--quick`,
//! `--duration`, `--users`, `--tags`). Comments and formatting are not part of it: the TOML
//! is hashed as data, keys sorted.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use sha2::Digest;

use super::compiled::{Request, Suite};
use super::loaded::LoadedPlan;
use super::options::CompileOptions;

/// SHA-256 (hex) of `suite`'s definition in the plan `lp`, as reshaped by `opts`.
pub(super) fn suite_hash(lp: &LoadedPlan, requests: &[Request], suite: &Suite, opts: &CompileOptions) -> String {
    // The plan parsed already: parsing it again as plain data cannot fail.
    let table: toml::Table = lp.source.parse().unwrap_or_default();
    let section = |name: &str| table.get(name).and_then(toml::Value::as_table);
    let pick = |name: &str, keys: &BTreeSet<String>| -> Value {
        let mut out = Map::new();
        if let Some(t) = section(name) {
            for k in keys {
                out.insert(k.clone(), t.get(k).map_or(Value::Null, canonical));
            }
        }
        Value::Object(out)
    };
    let suite_table = section("suites").and_then(|s| s.get(&suite.name));

    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut ids = super::compiled::exercised(&suite.scenarios);
    ids.extend(suite.setup.iter().map(|s| s.request()));
    used.extend(ids.into_iter().filter_map(|id| requests.get(id)).map(|r| r.name.clone()));
    let workflows: BTreeSet<String> = suite_table
        .and_then(|t| t.get("scenarios"))
        .and_then(toml::Value::as_table)
        .map(|scenarios| scenarios.values().filter_map(|s| s.get("workflow").and_then(toml::Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default();
    let requests_json = pick("requests", &used);
    let workflows_json = pick("workflows", &workflows);
    let variables = template_names(&format!("{requests_json}{workflows_json}"));

    let identity = json!({
        "suite": suite_table.map_or(Value::Null, canonical),
        "requests": requests_json,
        "workflows": workflows_json,
        "variables": pick("variables", &variables),
        "defaults": table.get("defaults").map_or(Value::Null, canonical),
        "compare": table.get("compare").map_or(Value::Null, canonical),
        "reshape": {
            "quick": opts.quick,
            "duration_ms": opts.duration.map(|d| d.as_millis() as u64),
            "users": opts.users,
            "tags": opts.tags,
        },
    });
    hex::encode(sha2::Sha256::digest(identity.to_string().as_bytes()))
}

/// TOML as JSON with every table's keys sorted, whatever order the file (or a map type)
/// keeps them in.
fn canonical(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        toml::Value::Table(t) => {
            let mut keys: Vec<&String> = t.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&t[k]))).collect())
        }
    }
}

/// Names inside `{{ … }}` in `text`: the variables (and captures) templates refer to.
fn template_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        let name = rest[..end].trim();
        if !name.is_empty() {
            out.insert(name.to_string());
        }
        rest = &rest[end + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_are_found_in_any_text() {
        let names: Vec<String> = template_names(r#"{"path":"/p/{{ provider_id }}?d={{date}}","x":"{{"#).into_iter().collect();
        assert_eq!(names, ["date", "provider_id"]);
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let t: toml::Table = "b = 1\na = { d = 2, c = [3, \"x\"] }\n".parse().unwrap();
        assert_eq!(canonical(&toml::Value::Table(t)).to_string(), r#"{"a":{"c":[3,"x"],"d":2},"b":1}"#);
    }
}
