//! Workflow files, read with `yaml-rust2` into JSON values, and the keys the harness knows.
//!
//! The YAML is turned into `serde_json::Value` at once (mapping order kept), so the rest of the
//! harness works on one kind of value, the same one the expressions produce. YAML 1.2 reads
//! `on:` as the string "on", as GitHub does. A key the harness does not know at the job or step
//! level is an error: GitHub rejects most of them, and the rest would be silently ignored here.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Keys of a job that runs steps. `strategy`, `container`, `services` and `defaults` are
/// GitHub keys this harness cannot run: they are refused rather than ignored.
const STEPS_JOB_KEYS: &[&str] = &[
    "name",
    "needs",
    "if",
    "runs-on",
    "permissions",
    "environment",
    "concurrency",
    "outputs",
    "env",
    "steps",
    "timeout-minutes",
    "continue-on-error",
    "cache-mode",
];

/// Keys of a job that calls a reusable workflow (GitHub allows no others there).
const CALL_JOB_KEYS: &[&str] = &["name", "needs", "if", "uses", "with", "secrets", "permissions", "concurrency", "cache-mode"];

const STEP_KEYS: &[&str] =
    &["id", "name", "if", "uses", "run", "shell", "with", "env", "continue-on-error", "timeout-minutes", "working-directory"];

/// A workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file name, `perf-nightly.yml`.
    pub file: String,
    pub name: String,
    /// `on:`: the triggers.
    pub on: Value,
    pub env: Map<String, Value>,
    /// The workflow's `permissions:` (null when it has none).
    pub permissions: Value,
    /// Jobs in file order.
    pub jobs: Vec<(String, Map<String, Value>)>,
}

impl Workflow {
    /// Reads `dir/file`.
    pub fn load(dir: &Path, file: &str) -> Result<Workflow> {
        let root = read(dir, file)?;
        let on = root.get("on").cloned().ok_or_else(|| anyhow!("{file}: no `on:`"))?;
        let mut jobs = Vec::new();
        for (id, job) in object(root.get("jobs"), "jobs").with_context(|| file.to_string())? {
            let job = job.as_object().ok_or_else(|| anyhow!("{file}: job `{id}` is not a mapping"))?;
            let allowed = if job.contains_key("uses") { CALL_JOB_KEYS } else { STEPS_JOB_KEYS };
            check_keys(job, allowed).with_context(|| format!("{file}: job `{id}`"))?;
            for (i, step) in job.get("steps").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let step = step.as_object().ok_or_else(|| anyhow!("{file}: job `{id}` step {i} is not a mapping"))?;
                check_keys(step, STEP_KEYS).with_context(|| format!("{file}: job `{id}` step {}", i + 1))?;
            }
            jobs.push((id.clone(), job.clone()));
        }
        Ok(Workflow {
            file: file.to_string(),
            name: root.get("name").and_then(Value::as_str).unwrap_or(file).to_string(),
            on,
            env: object(root.get("env"), "env")?,
            permissions: root.get("permissions").cloned().unwrap_or(Value::Null),
            jobs,
        })
    }

    /// `on.<event>` as a mapping (`on: [a, b]` and `on: a` give an empty one); `None` when
    /// the workflow does not run on `event`.
    pub fn trigger(&self, event: &str) -> Option<Map<String, Value>> {
        match &self.on {
            Value::String(s) if s == event => Some(Map::new()),
            Value::Array(items) if items.iter().any(|i| i.as_str() == Some(event)) => Some(Map::new()),
            Value::Object(map) => map.get(event).map(|v| v.as_object().cloned().unwrap_or_default()),
            _ => None,
        }
    }
}

/// The `name:` of `dir/file` (its file name when it has none), without checking the rest.
pub fn workflow_name(dir: &Path, file: &str) -> Result<String> {
    Ok(read(dir, file)?.get("name").and_then(Value::as_str).unwrap_or(file).to_string())
}

/// The YAML document of `dir/file`, as a JSON mapping.
fn read(dir: &Path, file: &str) -> Result<Map<String, Value>> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let docs = YamlLoader::load_from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let [doc] = docs.as_slice() else { bail!("{}: expected one YAML document, found {}", path.display(), docs.len()) };
    match to_json(doc).with_context(|| path.display().to_string())? {
        Value::Object(map) => Ok(map),
        _ => bail!("{}: not a mapping", path.display()),
    }
}

/// A mapping, or an empty one when absent; an error when it is something else.
pub fn object(value: Option<&Value>, what: &str) -> Result<Map<String, Value>> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(other) => bail!("`{what}` should be a mapping, found {other}"),
    }
}

fn check_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => bail!("the harness does not know (or cannot run) the key `{key}`; it knows {}", allowed.join(", ")),
        None => Ok(()),
    }
}

fn to_json(yaml: &Yaml) -> Result<Value> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(text) => {
            let f: f64 = text.parse().with_context(|| format!("`{text}` is not a number"))?;
            super::expr::number_value(f)
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_>>()?),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => bail!("unsupported mapping key {other:?}"),
                };
                if map.insert(key.clone(), to_json(v)?).is_some() {
                    bail!("duplicate key `{key}`");
                }
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => bail!("YAML aliases are not supported by the harness"),
    })
}
