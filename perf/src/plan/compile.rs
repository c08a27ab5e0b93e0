//! From a parsed [`Plan`] to the [`Compiled`] form: every reference resolved, every shape
//! checked, every template parsed. Errors point at the offending value in the file.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};
use toml::Spanned;

use super::compiled::{self as c, Compiled, Exec, Request, RequestId, Scenario, Shape, Special, Step, Suite, exercised};
use super::loaded::{LoadedPlan, PlanError};
use super::model::{LocalAppSpec, RequestSpec, ScenarioSpec, StepSpec, SuiteSpec, VariableSpec};
use super::options::CompileOptions;
use super::setup::{CompareRules, Setup};
use super::template::{self, BodyTemplate, Capture, Part, RawPart, Template};
use super::values::{Dur, Executor, SloSpec, SuiteKind};
use super::vars::{Generator, VarTable};
use super::{identity, scale};

/// Names the app's environment templates may use; each backend resolves them.
pub const APP_ENV_NAMES: &[&str] = &["postgres.url", "redis.url", "app.listen", "app.port"];

/// Default time given to running iterations after a scenario ends.
const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(10);

pub(super) fn compile(lp: &LoadedPlan, opts: &CompileOptions) -> Result<Compiled, PlanError> {
    let plan = &lp.plan;
    if *plan.version.get_ref() != 1 {
        return Err(lp.error_at(
            plan.version.span(),
            "version",
            format!("unsupported plan version {}: this build reads version 1", plan.version.get_ref()),
        ));
    }
    check_app(lp)?;
    let mut table = variables(lp)?;
    if let Some(shard) = opts.shard {
        for (name, g) in &table.generated {
            if let Generator::Sequence { low, high } = g
                && ((*high - *low) as u64) + 1 < u64::from(shard.count)
            {
                return Err(lp.error_at(
                    plan.variables[name].span(),
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
    }
    let table = Arc::new(table);
    let mut requests = plan.requests.iter().map(|(name, spec)| request(lp, &table, name, spec)).collect::<Result<Vec<_>, _>>()?;
    add_message_endpoints(lp, &mut requests)?;
    let workflows = plan
        .workflows
        .iter()
        .map(|(name, w)| {
            if w.steps.is_empty() {
                return Err(lp.error(&format!("workflows.{name}.steps"), "a workflow needs at least one step"));
            }
            let steps = steps(lp, &table, &requests, &format!("workflows.{name}.steps"), &w.steps, true)?;
            Ok((name.clone(), steps))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for s in &plan.default_suites {
        if !plan.suites.contains_key(s.get_ref()) {
            return Err(lp.error_at(
                s.span(),
                "default_suites",
                format!("unknown suite `{}` (the plan defines: {})", s.get_ref(), names(plan.suites.keys())),
            ));
        }
    }
    check_compare(lp)?;

    // Every suite is checked, selected or not: a broken suite is a broken plan.
    let mut all = Vec::new();
    for (name, spec) in &plan.suites {
        all.push(suite(lp, &table, &requests, &workflows, name, spec)?);
    }
    let selected = select(lp, opts, all)?;
    let selected = filter_tags(lp, &requests, opts, selected)?;
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
    let suites = selected
        .into_iter()
        .map(|s| {
            let mut s = scale::apply(s, opts);
            check_limits(lp, &s)?;
            s.definition_hash = identity::suite_hash(lp, &requests, &s, opts);
            Ok(s)
        })
        .collect::<Result<_, PlanError>>()?;
    Ok(Compiled {
        requests,
        suites,
        setup: Setup::from(plan),
        compare: CompareRules::from(&plan.compare),
        http: plan.defaults.http,
        late_after: plan.defaults.late_after.0,
        shard: opts.shard,
        vars: table,
    })
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn valid_ident(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn check_app(lp: &LoadedPlan) -> Result<(), PlanError> {
    let app = &lp.plan.app;
    if !app.health.starts_with('/') {
        return Err(lp.error("app.health", format!("{:?} must be a path starting with `/`", app.health)));
    }
    let empty = LocalAppSpec { build: Vec::new(), command: Vec::new() };
    let local = app.local.as_ref().unwrap_or(&empty);
    if app.local.is_some() && local.command.is_empty() {
        return Err(
            lp.error("app.local.command", "the command that runs the app is empty: expected an argv list like [\"target/debug/myapp\"]")
        );
    }
    // The command may also name where cargo builds; the build step only that.
    let command_names: Vec<&str> = APP_ENV_NAMES.iter().copied().chain(["cargo.target_dir"]).collect();
    for (table, argv, allowed) in
        [("command", &local.command, command_names.as_slice()), ("build", &local.build, &["cargo.target_dir"][..])]
    {
        for (i, arg) in argv.iter().enumerate() {
            let field = format!("app.local.{table}[{i}]");
            let parts = template::parse(arg).map_err(|e| lp.error(&field, e.message))?;
            for part in parts {
                if let RawPart::Var { name, .. } = part
                    && !allowed.contains(&name.as_str())
                {
                    return Err(
                        lp.error(&field, format!("unknown name `{name}` in the app's {table}: expected one of {}", allowed.join(", ")))
                    );
                }
            }
        }
    }
    for (key, value) in &app.env {
        let field = format!("app.env.{key}");
        for part in parse_template(lp, value, &field)? {
            if let RawPart::Var { name, .. } = part
                && !APP_ENV_NAMES.contains(&name.as_str())
            {
                return Err(lp.error_at(
                    locate(lp, value.span(), &name),
                    &field,
                    format!("unknown name `{name}` in the app's environment: expected one of {}", APP_ENV_NAMES.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

fn variables(lp: &LoadedPlan) -> Result<VarTable, PlanError> {
    let mut table = VarTable::default();
    for (name, spec) in &lp.plan.variables {
        let field = format!("variables.{name}");
        let span = spec.span();
        if !valid_ident(name) {
            return Err(lp.error_at(span, &field, format!("`{name}` is not a valid variable name: use letters, digits and `_`")));
        }
        let generator = match spec.get_ref() {
            VariableSpec::Int([low, high]) | VariableSpec::Sequence([low, high]) if low > high => {
                return Err(lp.error_at(span, &field, format!("range [{low}, {high}] is reversed")));
            }
            VariableSpec::Int([low, high]) => Generator::Int { low: *low, high: *high },
            VariableSpec::Sequence([low, high]) => Generator::Sequence { low: *low, high: *high },
            VariableSpec::Choice(values) => {
                if values.is_empty() {
                    return Err(lp.error_at(span, &field, "`choice` needs at least one value"));
                }
                let json =
                    values.iter().map(toml_to_json).collect::<Result<Vec<_>, _>>().map_err(|m| lp.error_at(span.clone(), &field, m))?;
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
        };
        table.generated.push((name.clone(), generator));
    }
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
    Ok(table)
}

fn toml_to_json(v: &toml::Value) -> Result<serde_json::Value, String> {
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

fn parse_template(lp: &LoadedPlan, value: &Spanned<String>, field: &str) -> Result<Vec<RawPart>, PlanError> {
    template::parse(value.get_ref()).map_err(|e| {
        // +1 skips the opening quote; exact for strings without escapes before the error.
        let at = value.span().start + 1 + e.offset;
        lp.error_at(at..at, field, e.message)
    })
}

/// Where `{{name` first appears inside `span`, for precise positions in strings and bodies.
fn locate(lp: &LoadedPlan, span: Range<usize>, name: &str) -> Range<usize> {
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

fn resolve(lp: &LoadedPlan, table: &VarTable, value: &Spanned<String>, span: Range<usize>, field: &str) -> Result<Template, PlanError> {
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

/// Where the table `[section.name]` is in the file (its name, quoted or not, or failing that
/// the first place the name is written); the start of the file when it is nowhere.
fn table_header(lp: &LoadedPlan, section: &str, name: &str) -> Range<usize> {
    let at = [format!("[{section}.{name}]"), format!("[{section}.\"{name}\"]")]
        .iter()
        .find_map(|h| lp.source.find(h.as_str()).map(|i| i + section.len() + 2))
        .or_else(|| lp.source.find(name))
        .unwrap_or(0);
    at..at + name.len()
}

/// Gives each WebSocket request its message endpoint, `<name>.message`, appended after the
/// plan's requests (whose ids stay their index in the plan).
fn add_message_endpoints(lp: &LoadedPlan, requests: &mut Vec<Request>) -> Result<(), PlanError> {
    for id in 0..requests.len() {
        let c::Protocol::WsConnect { scope, .. } = requests[id].protocol else { continue };
        let name = format!("{}.message", requests[id].name);
        if lp.plan.requests.contains_key(&name) {
            return Err(lp.error_at(
                table_header(lp, "requests", &name),
                &format!("requests.{name}"),
                format!("`{name}` is the name of the WebSocket request `{}`'s messages: rename this request", requests[id].name),
            ));
        }
        let message = requests.len();
        let mut m = requests[id].clone();
        m.name = name;
        m.protocol = c::Protocol::WsMessage { connect: id };
        m.headers.clear();
        requests.push(m);
        requests[id].protocol = c::Protocol::WsConnect { scope, message };
    }
    Ok(())
}

fn request(lp: &LoadedPlan, table: &VarTable, name: &str, spec: &RequestSpec) -> Result<Request, PlanError> {
    let field = |f: &str| format!("requests.{name}.{f}");
    let (target, target_field) = match (&spec.path, &spec.ws) {
        (Some(p), None) => (p, "path"),
        (None, Some(w)) => (w, "ws"),
        (Some(_), Some(w)) => {
            return Err(lp.error_at(
                w.span(),
                &field("ws"),
                "a request is HTTP (`path`) or a WebSocket (`ws`), not both: make two requests",
            ));
        }
        (None, None) => {
            return Err(lp.error_at(
                table_header(lp, "requests", name),
                &format!("requests.{name}"),
                "the request needs `path` (HTTP, like \"/api/providers\") or `ws` (a WebSocket, like \"/ws/slots?provider_id={{provider_id}}\")",
            ));
        }
    };
    if name == "*" || name.is_empty() {
        return Err(lp.error_at(target.span(), &format!("requests.{name}"), "`*` and the empty string cannot name a request"));
    }
    let protocol = match &spec.ws {
        None => {
            if let Some(scope) = &spec.scope {
                return Err(lp.error_at(scope.span(), &field("scope"), "`scope` applies to WebSocket (`ws`) requests only"));
            }
            c::Protocol::Http
        }
        Some(_) => {
            let not_ws = |present: bool, f: &str, why: &str| {
                if present {
                    Err(lp.error_at(target.span(), &field(f), format!("`{f}` does not apply to a WebSocket request: {why}")))
                } else {
                    Ok(())
                }
            };
            not_ws(spec.method.span() != (0..0), "method", "the upgrade is always a GET")?;
            not_ws(spec.body.is_some(), "body", "send messages with a `ws_send` step")?;
            not_ws(!spec.expect.is_empty(), "expect", "the upgrade must answer 101")?;
            not_ws(!spec.capture.is_empty(), "capture", "match messages with a `ws_expect` step")?;
            not_ws(spec.weight != 1, "weight", "WebSocket requests are used by workflow steps, never in a mix")?;
            let scope = match spec.scope.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
                None | Some(("iteration", _)) => c::WsScope::Iteration,
                Some(("vu", _)) => c::WsScope::Vu,
                Some((other, span)) => {
                    return Err(lp.error_at(span, &field("scope"), format!("{other:?} is not a scope: expected \"iteration\" or \"vu\"")));
                }
            };
            // The message endpoint's id is set once every request has one.
            c::Protocol::WsConnect { scope, message: usize::MAX }
        }
    };
    let m = spec.method.get_ref();
    let method = match m.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Method::from_bytes(m.as_bytes()).expect("a standard method parses")
        }
        _ => {
            return Err(lp.error_at(
                spec.method.span(),
                &field("method"),
                format!("{m:?} is not a method: expected GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"),
            ));
        }
    };
    if !target.get_ref().starts_with('/') {
        return Err(lp.error_at(
            target.span(),
            &field(target_field),
            format!("{:?} must start with `/` (the app's base URL is prepended)", target.get_ref()),
        ));
    }
    let path = resolve(lp, table, target, target.span(), &field(target_field))?;
    let mut headers: Vec<(HeaderName, Template)> = Vec::new();
    for (hname, value, f) in lp
        .plan
        .defaults
        .headers
        .iter()
        .map(|(k, v)| (k, v, format!("defaults.headers.{k}")))
        .chain(spec.headers.iter().map(|(k, v)| (k, v, field(&format!("headers.{k}")))))
    {
        let header = HeaderName::from_bytes(hname.to_ascii_lowercase().as_bytes())
            .map_err(|_| lp.error_at(value.span(), &f, format!("`{hname}` is not a valid header name")))?;
        let t = resolve(lp, table, value, value.span(), &f)?;
        headers.retain(|(h, _)| *h != header);
        headers.push((header, t));
    }
    let body = match &spec.body {
        Some(b) => Some(body(lp, table, b.get_ref(), b.span(), &field("body"))?),
        None => None,
    };
    for status in &spec.expect {
        if !(100..=599).contains(status) {
            return Err(lp.error_at(target.span(), &field("expect"), format!("{status} is not an HTTP status: expected 100..=599")));
        }
    }
    if spec.weight == 0 {
        return Err(lp.error_at(target.span(), &field("weight"), "weight must be at least 1"));
    }
    let captures = spec
        .capture
        .iter()
        .map(|(var, pointer)| {
            let slot = table.captures.iter().position(|c| c == var).expect("captures were collected from every request");
            Capture { var: var.clone(), pointer: pointer.get_ref().clone(), slot }
        })
        .collect();
    Ok(Request {
        name: name.to_string(),
        protocol,
        method,
        tags: spec.tags.clone(),
        timeout: spec.timeout.unwrap_or(lp.plan.defaults.timeout).0,
        expect: spec.expect.clone(),
        path,
        headers,
        body,
        captures,
    })
}

fn body(lp: &LoadedPlan, table: &VarTable, v: &toml::Value, span: Range<usize>, field: &str) -> Result<BodyTemplate, PlanError> {
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

fn request_id(lp: &LoadedPlan, name: &Spanned<String>, field: &str) -> Result<RequestId, PlanError> {
    lp.plan.requests.get_index_of(name.get_ref()).ok_or_else(|| {
        lp.error_at(
            name.span(),
            field,
            format!("unknown request `{}` (the plan defines: {})", name.get_ref(), names(lp.plan.requests.keys())),
        )
    })
}

/// Compiles a workflow's (`ws` true) or a setup's steps. A WebSocket step must follow a
/// `ws_connect` of its request in the same list; setup steps are HTTP only.
fn steps(
    lp: &LoadedPlan,
    table: &VarTable,
    requests: &[Request],
    field: &str,
    specs: &[StepSpec],
    ws: bool,
) -> Result<Vec<Step>, PlanError> {
    let mut out = Vec::new();
    let mut connected: BTreeSet<RequestId> = BTreeSet::new();
    for (i, s) in specs.iter().enumerate() {
        let at = |verb: &str| format!("{field}[{i}].{verb}");
        let (verb, name) = match s.verbs().as_slice() {
            [one] => *one,
            [] => {
                return Err(
                    lp.error(&format!("{field}[{i}]"), "a step needs one of `request`, `ws_connect`, `ws_send`, `ws_expect` or `ws_close`")
                );
            }
            [(a, _), (b, second), ..] => {
                return Err(lp.error_at(second.span(), &at(b), format!("a step does one thing: `{a}` or `{b}`, not both")));
            }
        };
        let id = request_id(lp, name, &at(verb))?;
        let protocol = requests[id].protocol;
        let is_ws = matches!(protocol, c::Protocol::WsConnect { .. });
        let misplaced = |key: &str, present: bool| {
            if present {
                Err(lp.error_at(name.span(), &format!("{field}[{i}].{key}"), format!("`{key}` does not apply to a `{verb}` step")))
            } else {
                Ok(())
            }
        };
        misplaced("body", s.body.is_some() && verb != "ws_send")?;
        misplaced("match", !s.matches.is_empty() && verb != "ws_expect")?;
        misplaced("timeout", s.timeout.is_some() && verb != "ws_expect")?;
        if verb == "request" {
            if is_ws {
                return Err(lp.error_at(
                    name.span(),
                    &at(verb),
                    format!("`{}` is a WebSocket request: use it with `ws_connect`, `ws_send`, `ws_expect` and `ws_close`", name.get_ref()),
                ));
            }
            out.push(Step { action: c::Action::Http(id), think: s.think });
            continue;
        }
        if !ws {
            return Err(lp.error_at(name.span(), &at(verb), "setup steps send HTTP requests only: WebSocket steps belong in a workflow"));
        }
        if !is_ws {
            return Err(lp.error_at(
                name.span(),
                &at(verb),
                format!("`{}` is not a WebSocket request (it has `path`, not `ws`)", name.get_ref()),
            ));
        }
        if verb != "ws_connect" && !connected.contains(&id) {
            return Err(lp.error_at(
                name.span(),
                &at(verb),
                format!("`{verb}` on `{}` comes before any `ws_connect = {:?}` in this list of steps", name.get_ref(), name.get_ref()),
            ));
        }
        let action = match verb {
            "ws_connect" => {
                connected.insert(id);
                c::Action::WsConnect(id)
            }
            "ws_send" => {
                let b = s.body.as_ref().ok_or_else(|| {
                    lp.error_at(name.span(), &format!("{field}[{i}].body"), "`ws_send` needs a `body`: the JSON message to send")
                })?;
                c::Action::WsSend(c::WsSend { ws: id, body: body(lp, table, b.get_ref(), b.span(), &format!("{field}[{i}].body"))? })
            }
            "ws_expect" => {
                if s.matches.is_empty() {
                    return Err(lp.error_at(
                        name.span(),
                        &format!("{field}[{i}].match"),
                        "`ws_expect` needs `match`: JSON pointers and the values expected there, like { \"/slot_id\" = \"{{slot_id}}\" }",
                    ));
                }
                let mut matches = Vec::new();
                for (pointer, value) in &s.matches {
                    let f = format!("{field}[{i}].match.{pointer}");
                    if !pointer.starts_with('/') {
                        return Err(lp.error_at(
                            value.span(),
                            &f,
                            format!("{pointer:?} is not a JSON pointer: expected a path like \"/slot_id\""),
                        ));
                    }
                    matches.push((pointer.clone(), resolve(lp, table, value, value.span(), &f)?));
                }
                let timeout = match s.timeout {
                    Some(t) if t.0.is_zero() => {
                        return Err(lp.error_at(name.span(), &format!("{field}[{i}].timeout"), "`timeout` must be longer than zero"));
                    }
                    Some(t) => t.0,
                    None => requests[id].timeout,
                };
                let c::Protocol::WsConnect { message, .. } = protocol else { unreachable!("checked above") };
                c::Action::WsExpect(c::WsExpect { ws: id, message, timeout, matches })
            }
            "ws_close" => {
                connected.remove(&id);
                c::Action::WsClose(id)
            }
            _ => unreachable!("verbs() names these five"),
        };
        out.push(Step { action, think: s.think });
    }
    Ok(out)
}

fn suite(
    lp: &LoadedPlan,
    table: &VarTable,
    requests: &[Request],
    workflows: &[(String, Vec<Step>)],
    name: &str,
    spec: &SuiteSpec,
) -> Result<Suite, PlanError> {
    if spec.scenarios.is_empty() {
        return Err(lp.error(&format!("suites.{name}.scenarios"), "a suite needs at least one scenario"));
    }
    let mut scenarios = Vec::new();
    for (sname, s) in &spec.scenarios {
        scenarios.push(scenario(lp, workflows, &format!("suites.{name}.scenarios.{sname}"), sname, s)?);
    }
    let timeline = scenarios.iter().map(|s| s.start + s.shape.duration()).max().unwrap_or_default();
    let warmup = spec.warmup.map(|d| d.0).unwrap_or_default();
    if warmup >= timeline {
        return Err(lp.error_at(
            scenarios_span(spec),
            &format!("suites.{name}.warmup"),
            format!(
                "warm-up ({}) leaves nothing to measure: the suite's scenarios last {}",
                humantime::format_duration(warmup),
                humantime::format_duration(timeline)
            ),
        ));
    }
    let exercised = exercised(&scenarios);
    let mut slo = Vec::new();
    for (key, limits) in &spec.slo {
        let field = format!("suites.{name}.slo.{key}");
        check_slo(lp, limits, &field)?;
        if key == "*" {
            slo.push((None, limits.get_ref().clone()));
            continue;
        }
        let Some(id) = requests.iter().position(|r| &r.name == key) else {
            return Err(lp.error_at(limits.span(), &field, format!("unknown request `{key}` (use `\"*\"` for every endpoint)")));
        };
        if !exercised.contains(&id) {
            return Err(lp.error_at(
                limits.span(),
                &field,
                format!("no scenario of suite `{name}` sends `{key}`, so this SLO could never pass"),
            ));
        }
        slo.push((Some(key.clone()), limits.get_ref().clone()));
    }
    let special = special(lp, name, spec, &scenarios, warmup, timeline)?;
    Ok(Suite {
        name: name.to_string(),
        kind: *spec.kind.get_ref(),
        warmup,
        scenarios,
        slo,
        setup: steps(lp, table, requests, &format!("suites.{name}.setup"), &spec.setup, false)?,
        special,
        definition_hash: String::new(),
    })
}

fn fraction(lp: &LoadedPlan, span: Range<usize>, field: &str, v: f64) -> Result<f64, PlanError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(lp.error_at(span, field, format!("{v} is not a fraction: expected 0..=1 (0.01 is 1%)")))
    }
}

fn growth_limit(lp: &LoadedPlan, span: Range<usize>, field: &str, v: f64) -> Result<f64, PlanError> {
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(lp.error_at(span, field, format!("{v} is not a relative growth: expected a number ≥ 0 (0.2 is +20%)")))
    }
}

/// The kind-specific table of a suite: present exactly when `kind` asks for it, and consistent
/// with the suite's timeline.
fn special(
    lp: &LoadedPlan,
    name: &str,
    spec: &SuiteSpec,
    scenarios: &[Scenario],
    warmup: Duration,
    timeline: Duration,
) -> Result<Option<Special>, PlanError> {
    let kind = *spec.kind.get_ref();
    let tables = [
        ("spike", SuiteKind::Spike, spec.spike.as_ref().map(|t| t.span())),
        ("stress", SuiteKind::Stress, spec.stress.as_ref().map(|t| t.span())),
        ("soak", SuiteKind::Soak, spec.soak.as_ref().map(|t| t.span())),
        ("chaos", SuiteKind::Chaos, spec.chaos.as_ref().map(|t| t.span())),
    ];
    for (table, k, span) in &tables {
        if let Some(span) = span
            && *k != kind
        {
            return Err(lp.error_at(
                span.clone(),
                &format!("suites.{name}.{table}"),
                format!("a `{table}` table only applies to a suite with kind = \"{table}\" (this suite's kind is \"{}\")", kind.name()),
            ));
        }
        if span.is_none() && *k == kind {
            let at = if spec.kind.span().is_empty() { scenarios_span(spec) } else { spec.kind.span() };
            return Err(lp.error_at(
                at,
                &format!("suites.{name}.{table}"),
                format!("a {table} suite needs a `{table}` table ({})", example(*k)),
            ));
        }
    }
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    Ok(match kind {
        SuiteKind::Load => None,
        SuiteKind::Spike => {
            let t = spec.spike.as_ref().expect("checked above");
            let (span, v) = (t.span(), t.get_ref());
            let field = |f: &str| format!("suites.{name}.spike.{f}");
            let (start, end) = (v.start.0, v.end.0);
            if start <= warmup {
                return Err(lp.error_at(
                    span,
                    &field("start"),
                    format!(
                        "the spike starts at {} but the warm-up lasts {}: the pre-spike p95 needs measured windows before the spike",
                        fmt(start),
                        fmt(warmup)
                    ),
                ));
            }
            if end <= start {
                return Err(lp.error_at(span, &field("end"), format!("the spike ends ({}) before it starts ({})", fmt(end), fmt(start))));
            }
            if end >= timeline {
                return Err(lp.error_at(
                    span,
                    &field("end"),
                    format!(
                        "the spike ends at {} but the suite's scenarios end at {}: nothing is left to measure the recovery",
                        fmt(end),
                        fmt(timeline)
                    ),
                ));
            }
            let max_error_rate = fraction(lp, span.clone(), &field("max_error_rate"), v.max_error_rate)?;
            if !(v.recovery_tolerance > 0.0 && v.recovery_tolerance.is_finite()) {
                return Err(lp.error_at(
                    span,
                    &field("recovery_tolerance"),
                    format!("{} is not a tolerance: expected a number > 0 (0.2 is 20%)", v.recovery_tolerance),
                ));
            }
            Some(Special::Spike(c::SpikeSpec {
                start,
                end,
                max_error_rate,
                max_recovery: v.max_recovery.0,
                recovery_tolerance: v.recovery_tolerance,
            }))
        }
        SuiteKind::Stress => {
            let t = spec.stress.as_ref().expect("checked above");
            let (span, v) = (t.span(), t.get_ref());
            let field = |f: &str| format!("suites.{name}.stress.{f}");
            if !scenarios.iter().any(|s| !s.shape.holds().is_empty()) {
                return Err(lp.error_at(span, &format!("suites.{name}.scenarios"), "a stress suite needs a ramping-arrival-rate scenario whose stages hold a rate (a stage whose target equals the previous one): those holds are the steps"));
            }
            if v.slo_p95.0.is_zero() {
                return Err(lp.error_at(span, &field("slo_p95"), "must be longer than zero"));
            }
            let max_error_rate = fraction(lp, span.clone(), &field("max_error_rate"), v.max_error_rate)?;
            if !(v.min_breaking_rate >= 0.0 && v.min_breaking_rate.is_finite()) {
                return Err(lp.error_at(
                    span,
                    &field("min_breaking_rate"),
                    format!("{} is not a rate: expected iterations per second ≥ 0", v.min_breaking_rate),
                ));
            }
            let planned_top = scenarios.iter().flat_map(|s| s.shape.holds()).map(|h| h.rate).fold(0.0, f64::max);
            let max_rate = match v.max_rate {
                None => None,
                Some(m) if m.is_finite() && m >= planned_top => Some(m),
                Some(m) => {
                    return Err(lp.error_at(
                        span,
                        &field("max_rate"),
                        format!("{m} is not a ceiling above the planned steps: expected a rate ≥ the highest step ({planned_top}/s)"),
                    ));
                }
            };
            let capacity = match &v.capacity {
                None => None,
                Some(cap) => {
                    if !(cap.target_rps > 0.0 && cap.target_rps.is_finite()) {
                        return Err(lp.error_at(
                            span,
                            &field("capacity.target_rps"),
                            format!("{} is not a target rate: expected requests per second > 0", cap.target_rps),
                        ));
                    }
                    if !(0.0..1.0).contains(&cap.headroom) {
                        return Err(lp.error_at(
                            span,
                            &field("capacity.headroom"),
                            format!("{} is not a headroom: expected 0 ≤ headroom < 1 (0.3 keeps 30% of each instance free)", cap.headroom),
                        ));
                    }
                    Some(c::CapacityTarget { target_rps: cap.target_rps, headroom: cap.headroom })
                }
            };
            Some(Special::Stress(c::StressSpec {
                slo_p95: v.slo_p95.0,
                max_error_rate,
                min_breaking_rate: v.min_breaking_rate,
                max_rate,
                capacity,
            }))
        }
        SuiteKind::Soak => {
            let t = spec.soak.as_ref().expect("checked above");
            let (span, v) = (t.span(), t.get_ref());
            let field = |f: &str| format!("suites.{name}.soak.{f}");
            let max_memory_growth = growth_limit(lp, span.clone(), &field("max_memory_growth"), v.max_memory_growth)?;
            let max_p95_growth = growth_limit(lp, span.clone(), &field("max_p95_growth"), v.max_p95_growth)?;
            let mut services = Vec::new();
            for (i, s) in v.services.iter().enumerate() {
                let Some(service) = c::Service::from_name(s.get_ref()) else {
                    let at = if s.span().is_empty() { span.clone() } else { s.span() };
                    let known: Vec<&str> = c::Service::ALL.iter().map(|s| s.as_str()).collect();
                    return Err(lp.error_at(
                        at,
                        &field(&format!("services[{i}]")),
                        format!("unknown service `{}`: expected one of {}", s.get_ref(), known.join(", ")),
                    ));
                };
                if !services.contains(&service) {
                    services.push(service);
                }
            }
            Some(Special::Soak(c::SoakSpec { max_memory_growth, max_p95_growth, services }))
        }
        SuiteKind::Chaos => {
            let t = spec.chaos.as_ref().expect("checked above");
            Some(Special::Chaos(chaos(lp, name, t.span(), t.get_ref(), timeline)?))
        }
    })
}

fn example(kind: SuiteKind) -> &'static str {
    match kind {
        SuiteKind::Load => "",
        SuiteKind::Spike => "like spike = { start = \"20s\", end = \"30s\", max_error_rate = 0.01, max_recovery = \"10s\" }",
        SuiteKind::Stress => "like stress = { slo_p95 = \"100ms\", max_error_rate = 0.01, min_breaking_rate = 50.0 }",
        SuiteKind::Soak => "like soak = { max_memory_growth = 0.2, max_p95_growth = 0.2, services = [\"app\"] }",
        SuiteKind::Chaos => {
            "like chaos = { actions = [{ at = \"10s\", stop = \"postgres\" }, { at = \"20s\", start = \"postgres\" }], expect = [\"no_5xx_except_503\"] }"
        }
    }
}

fn chaos(
    lp: &LoadedPlan,
    name: &str,
    span: Range<usize>,
    v: &super::model::ChaosSpec,
    timeline: Duration,
) -> Result<c::ChaosSpec, PlanError> {
    if v.actions.is_empty() && v.expect.is_empty() {
        return Err(lp.error_at(
            span,
            &format!("suites.{name}.chaos"),
            "a chaos suite needs actions, like { at = \"10s\", stop = \"postgres\" }, or expectations, or both",
        ));
    }
    let mut actions: Vec<(Range<usize>, String, c::ChaosAction)> = Vec::new();
    for (i, a) in v.actions.iter().enumerate() {
        let field = format!("suites.{name}.chaos.actions[{i}]");
        let (aspan, spec) = (a.span(), a.get_ref());
        let verbs = spec.verbs();
        let [(key, service)] = verbs[..] else {
            return Err(lp.error_at(
                aspan,
                &field,
                "an action needs exactly one of `stop`, `start`, `latency`, `loss`, `reset`, `blackhole` and `heal`, like { at = \"10s\", stop = \"postgres\" }",
            ));
        };
        let Some(service) = c::Service::from_name(service).filter(|s| *s != c::Service::App) else {
            return Err(lp.error_at(aspan, &format!("{field}.{key}"), format!("unknown service `{service}`: expected postgres or redis")));
        };
        let verb = chaos_verb(key, spec).map_err(|(k, m)| lp.error_at(aspan.clone(), &format!("{field}.{k}"), m))?;
        if spec.at.0 >= timeline {
            return Err(lp.error_at(
                aspan,
                &format!("{field}.at"),
                format!(
                    "at {} is not within the suite: its scenarios end at {}",
                    humantime::format_duration(spec.at.0),
                    humantime::format_duration(timeline)
                ),
            ));
        }
        actions.push((aspan, field, c::ChaosAction { at: spec.at.0, service, verb }));
    }
    actions.sort_by_key(|(_, _, a)| a.at);
    let mut stopped = BTreeSet::new();
    let mut faulted = BTreeSet::new();
    for (aspan, field, a) in &actions {
        let at = humantime::format_duration(a.at);
        let svc = a.service.as_str();
        let problem = match a.verb {
            c::ChaosVerb::Stop => (!stopped.insert(a.service)).then(|| format!("{svc} is already stopped at {at}")),
            c::ChaosVerb::Start => {
                (!stopped.remove(&a.service)).then(|| format!("{svc} is not stopped at {at}: only a stopped service can be started"))
            }
            c::ChaosVerb::Fault(_) => {
                faulted.insert(a.service);
                None
            }
            c::ChaosVerb::Heal => (!faulted.remove(&a.service))
                .then(|| format!("no fault is set on {svc} at {at}: `heal` clears a latency, loss, reset or blackhole set before")),
        };
        if let Some(msg) = problem {
            return Err(lp.error_at(aspan.clone(), field, msg));
        }
    }
    let actions: Vec<c::ChaosAction> = actions.into_iter().map(|(_, _, a)| a).collect();
    let mut expect = Vec::new();
    for (i, e) in v.expect.iter().enumerate() {
        let field = format!("suites.{name}.chaos.expect[{i}]");
        let x = c::Expectation::parse(e.get_ref()).map_err(|m| lp.error_at(e.span(), &field, m))?;
        let has = |service: Option<c::Service>, f: fn(&c::ChaosVerb) -> bool| {
            actions.iter().any(|a| service.is_none_or(|s| s == a.service) && f(&a.verb))
        };
        let needs = match x {
            c::Expectation::ErrorsStopWithin(_) => {
                (!has(None, c::ChaosVerb::recovers)).then_some("a `start` or `heal` action (errors are timed from the last one)")
            }
            c::Expectation::BreakerCycle => (!has(Some(c::Service::Postgres), c::ChaosVerb::breaks))
                .then_some("postgres to be stopped, or cut off by a loss, reset or blackhole"),
            c::Expectation::CacheRecovers => {
                (!has(Some(c::Service::Redis), c::ChaosVerb::recovers)).then_some("redis to be started again or healed")
            }
            _ => None,
        };
        if let Some(need) = needs {
            return Err(lp.error_at(e.span(), &field, format!("`{}` needs {need}", e.get_ref())));
        }
        expect.push(x);
    }
    Ok(c::ChaosSpec { actions, expect })
}

/// The verb of one action with its parameters; the error names the offending key.
fn chaos_verb(key: &'static str, spec: &super::model::ChaosActionSpec) -> Result<c::ChaosVerb, (&'static str, String)> {
    let unused = |param: &'static str, given: bool, only: &str| {
        if given { Err((param, format!("`{param}` only goes with `{only}`"))) } else { Ok(()) }
    };
    if key != "latency" {
        unused("delay", spec.delay.is_some(), "latency")?;
        unused("jitter", spec.jitter.is_some(), "latency")?;
    }
    if key != "loss" {
        unused("rate", spec.rate.is_some(), "loss")?;
    }
    Ok(match key {
        "stop" => c::ChaosVerb::Stop,
        "start" => c::ChaosVerb::Start,
        "heal" => c::ChaosVerb::Heal,
        "reset" => c::ChaosVerb::Fault(c::Fault::Reset),
        "blackhole" => c::ChaosVerb::Fault(c::Fault::Blackhole),
        "latency" => {
            let delay = spec.delay.ok_or((
                "delay",
                "`latency` needs `delay`, like { at = \"10s\", latency = \"postgres\", delay = \"100ms\", jitter = \"20ms\" }".to_string(),
            ))?;
            c::ChaosVerb::Fault(c::Fault::Latency { delay: delay.0, jitter: spec.jitter.map_or(Duration::ZERO, |j| j.0) })
        }
        "loss" => {
            let rate = spec
                .rate
                .ok_or(("rate", "`loss` needs `rate`, the probability a connection or a chunk is lost, like rate = 0.2".to_string()))?;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(("rate", format!("{rate} is not a probability of loss: expected more than 0 and at most 1")));
            }
            c::ChaosVerb::Fault(c::Fault::Loss { rate })
        }
        other => unreachable!("verbs() yields only known keys, not {other}"),
    })
}

/// Values no one means (a typo's extra zeros, a unit mixed up) are refused unless the plan
/// raises its `[limits]`. Checked on the suite as it will run, `--duration` and `--users`
/// applied.
fn check_limits(lp: &LoadedPlan, suite: &Suite) -> Result<(), PlanError> {
    let limits = &lp.plan.limits;
    let Some(spec) = lp.plan.suites.get(&suite.name) else { return Ok(()) };
    let raise = |what: &str, value: String| format!("to mean it, raise the plan's limit: [limits] {what} = {value}");
    for sc in &suite.scenarios {
        let at = spec.scenarios.get(&sc.name).map_or_else(|| scenarios_span(spec), |s| s.executor.span());
        let field = |f: &str| format!("suites.{}.scenarios.{}.{f}", suite.name, sc.name);
        // The rate first: an open model's default VUs follow from it.
        let rate = match &sc.shape {
            Shape::ConstantArrivalRate { rate, .. } => Some((*rate, "rate")),
            Shape::RampingArrivalRate { start_rate, stages, .. } => {
                Some((stages.iter().map(|(_, t)| *t).fold(*start_rate, f64::max), "stages"))
            }
            _ => None,
        };
        if let Some((rate, rate_field)) = rate
            && rate > limits.max_rate
        {
            return Err(lp.error_at(
                at,
                &field(rate_field),
                format!(
                    "{rate} iterations per second is more than the limit of {} (a typo?); {}",
                    limits.max_rate,
                    raise("max_rate", rate.ceil().to_string())
                ),
            ));
        }
        let (users, users_field) = match &sc.shape {
            Shape::ConstantVus { vus, .. } => (*vus, "vus"),
            Shape::RampingVus { start_vus, stages } => (stages.iter().map(|(_, t)| *t as u32).fold(*start_vus, u32::max), "stages"),
            Shape::ConstantArrivalRate { pre_allocated_vus, max_vus, .. }
            | Shape::RampingArrivalRate { pre_allocated_vus, max_vus, .. } => ((*pre_allocated_vus).max(*max_vus), "max_vus"),
        };
        if users > limits.max_vus {
            return Err(lp.error_at(
                at,
                &field(users_field),
                format!(
                    "{users} virtual users is more than the limit of {} for one scenario (a typo?); {}",
                    limits.max_vus,
                    raise("max_vus", users.to_string())
                ),
            ));
        }
        let end = sc.start + sc.shape.duration();
        if end > limits.max_duration.0 {
            let fmt = |d: Duration| humantime::format_duration(d).to_string();
            return Err(lp.error_at(
                at,
                &field("duration"),
                format!(
                    "the scenario runs until {} into the suite, longer than the limit of {} (a typo, or --duration?); {}",
                    fmt(end),
                    fmt(limits.max_duration.0),
                    raise("max_duration", format!("\"{}\"", fmt(end)))
                ),
            ));
        }
    }
    Ok(())
}

fn scenarios_span(spec: &SuiteSpec) -> Range<usize> {
    spec.scenarios.values().next().map(|s| s.executor.span()).unwrap_or(0..0)
}

fn check_slo(lp: &LoadedPlan, limits: &Spanned<SloSpec>, field: &str) -> Result<(), PlanError> {
    let l = limits.get_ref();
    let any = [l.p50, l.p90, l.p95, l.p99, l.p999, l.max].iter().any(Option::is_some) || l.error_rate.is_some() || l.min_rps.is_some();
    if !any {
        return Err(lp.error_at(
            limits.span(),
            field,
            "an SLO entry needs at least one limit: p50, p90, p95, p99, p999, max, error_rate or min_rps",
        ));
    }
    if let Some(e) = l.error_rate
        && !(0.0..=1.0).contains(&e)
    {
        return Err(lp.error_at(
            limits.span(),
            &format!("{field}.error_rate"),
            format!("{e} is not a fraction: expected 0..=1 (0.01 is 1%)"),
        ));
    }
    if let Some(r) = l.min_rps
        && !(r >= 0.0 && r.is_finite())
    {
        return Err(lp.error_at(
            limits.span(),
            &format!("{field}.min_rps"),
            format!("{r} is not a rate: expected a number of requests per second ≥ 0"),
        ));
    }
    Ok(())
}

fn scenario(lp: &LoadedPlan, workflows: &[(String, Vec<Step>)], field: &str, name: &str, s: &ScenarioSpec) -> Result<Scenario, PlanError> {
    let at = s.executor.span();
    let err = |f: &str, m: String| lp.error_at(at.clone(), &format!("{field}.{f}"), m);
    let executor = *s.executor.get_ref();
    let ename = executor.name();
    let forbid =
        |present: bool, f: &str| if present { Err(err(f, format!("`{f}` does not apply to the {ename} executor"))) } else { Ok(()) };
    let positive_dur = |d: Option<Dur>, f: &str| match d {
        Some(d) if !d.0.is_zero() => Ok(d.0),
        Some(_) => Err(err(f, format!("`{f}` must be longer than zero"))),
        None => Err(err(f, format!("the {ename} executor needs `{f}`"))),
    };
    let stages = |target_kind: &str| -> Result<Vec<(Duration, f64)>, PlanError> {
        if s.stages.is_empty() {
            return Err(err("stages", format!("the {ename} executor needs `stages`, like [{{ duration = \"30s\", target = 10 }}]")));
        }
        let mut out = Vec::new();
        for (i, st) in s.stages.iter().enumerate() {
            if !(st.target >= 0.0 && st.target.is_finite()) {
                return Err(err(&format!("stages[{i}].target"), format!("{} is not a valid {target_kind}", st.target)));
            }
            if executor == Executor::RampingVus && st.target.fract() != 0.0 {
                return Err(err(&format!("stages[{i}].target"), format!("{} is not a whole number of users", st.target)));
            }
            out.push((st.duration.0, st.target));
        }
        if out.iter().all(|(d, _)| d.is_zero()) {
            return Err(err("stages", "the stages last no time at all".into()));
        }
        Ok(out)
    };
    let open_vus = |peak: f64| -> Result<(u32, u32), PlanError> {
        let pre = s.pre_allocated_vus.unwrap_or_else(|| ((peak / 10.0).ceil() as u32).max(2));
        // The default headroom stays within the plan's limit; a value written out is checked.
        let max = s.max_vus.unwrap_or_else(|| pre.max(((peak * 2.0).ceil() as u32).max(100).min(lp.plan.limits.max_vus)));
        if pre == 0 {
            return Err(err("pre_allocated_vus", "must be at least 1".into()));
        }
        if max < pre {
            return Err(err("max_vus", format!("max_vus ({max}) is less than pre_allocated_vus ({pre})")));
        }
        Ok((pre, max))
    };
    let shape = match executor {
        Executor::ConstantVus => {
            forbid(s.rate.is_some(), "rate")?;
            forbid(s.start_rate.is_some(), "start_rate")?;
            forbid(!s.stages.is_empty(), "stages")?;
            forbid(s.start_vus.is_some(), "start_vus")?;
            forbid(s.pre_allocated_vus.is_some(), "pre_allocated_vus")?;
            forbid(s.max_vus.is_some(), "max_vus")?;
            let vus = s.vus.ok_or_else(|| err("vus", "the constant-vus executor needs `vus`".into()))?;
            if vus == 0 {
                return Err(err("vus", "must be at least 1".into()));
            }
            Shape::ConstantVus { vus, duration: positive_dur(s.duration, "duration")? }
        }
        Executor::RampingVus => {
            forbid(s.rate.is_some(), "rate")?;
            forbid(s.start_rate.is_some(), "start_rate")?;
            forbid(s.vus.is_some(), "vus")?;
            forbid(s.duration.is_some(), "duration")?;
            forbid(s.pre_allocated_vus.is_some(), "pre_allocated_vus")?;
            forbid(s.max_vus.is_some(), "max_vus")?;
            Shape::RampingVus { start_vus: s.start_vus.unwrap_or(0), stages: stages("number of users")? }
        }
        Executor::ConstantArrivalRate => {
            forbid(s.vus.is_some(), "vus")?;
            forbid(s.start_vus.is_some(), "start_vus")?;
            forbid(s.start_rate.is_some(), "start_rate")?;
            forbid(!s.stages.is_empty(), "stages")?;
            let rate =
                s.rate.ok_or_else(|| err("rate", "the constant-arrival-rate executor needs `rate` (iterations per second)".into()))?;
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(err("rate", format!("{rate} is not a rate: expected iterations per second > 0")));
            }
            let (pre_allocated_vus, max_vus) = open_vus(rate)?;
            Shape::ConstantArrivalRate { rate, duration: positive_dur(s.duration, "duration")?, pre_allocated_vus, max_vus }
        }
        Executor::RampingArrivalRate => {
            forbid(s.vus.is_some(), "vus")?;
            forbid(s.start_vus.is_some(), "start_vus")?;
            forbid(s.rate.is_some(), "rate")?;
            forbid(s.duration.is_some(), "duration")?;
            let start_rate = s.start_rate.unwrap_or(0.0);
            if !(start_rate >= 0.0 && start_rate.is_finite()) {
                return Err(err("start_rate", format!("{start_rate} is not a rate")));
            }
            let stages = stages("rate")?;
            let peak = stages.iter().map(|(_, t)| *t).fold(start_rate, f64::max);
            let (pre_allocated_vus, max_vus) = open_vus(peak)?;
            Shape::RampingArrivalRate { start_rate, stages, pre_allocated_vus, max_vus }
        }
    };
    let chosen = [s.request.is_some(), !s.mix.is_empty(), s.workflow.is_some()].iter().filter(|b| **b).count();
    if chosen != 1 {
        return Err(err("request", "say what one iteration does with exactly one of `request`, `mix` or `workflow`".into()));
    }
    let http_id = |r: &Spanned<String>, f: &str| {
        let id = request_id(lp, r, f)?;
        if lp.plan.requests[id].ws.is_some() {
            return Err(lp.error_at(
                r.span(),
                f,
                format!(
                    "`{}` is a WebSocket request: use it in a workflow, with `ws_connect`, `ws_expect` and the other `ws_` steps",
                    r.get_ref()
                ),
            ));
        }
        Ok(id)
    };
    let exec = if let Some(r) = &s.request {
        Exec::Request(http_id(r, &format!("{field}.request"))?)
    } else if let Some(w) = &s.workflow {
        let steps = workflows.iter().find(|(n, _)| n == w.get_ref()).map(|(_, st)| st.clone()).ok_or_else(|| {
            lp.error_at(
                w.span(),
                &format!("{field}.workflow"),
                format!("unknown workflow `{}` (the plan defines: {})", w.get_ref(), names(workflows.iter().map(|(n, _)| n))),
            )
        })?;
        Exec::Workflow(steps)
    } else {
        let mut items = Vec::new();
        for (i, r) in s.mix.iter().enumerate() {
            let id = http_id(r, &format!("{field}.mix[{i}]"))?;
            items.push((id, lp.plan.requests[id].weight));
        }
        Exec::Mix(items)
    };
    Ok(Scenario {
        name: name.to_string(),
        executor,
        start: s.start.map(|d| d.0).unwrap_or_default(),
        shape,
        exec,
        graceful_stop: s.graceful_stop.map(|d| d.0).unwrap_or(DEFAULT_GRACEFUL_STOP),
    })
}

fn check_compare(lp: &LoadedPlan) -> Result<(), PlanError> {
    let c = &lp.plan.compare;
    if !(c.threshold > 0.0 && c.threshold.is_finite()) {
        return Err(lp.error("compare.threshold", format!("{} is not a relative change: expected a number > 0 (0.2 is 20%)", c.threshold)));
    }
    if !(c.alpha > 0.0 && c.alpha < 1.0) {
        return Err(lp.error("compare.alpha", format!("{} is not a significance level: expected 0 < alpha < 1", c.alpha)));
    }
    if !(c.error_rate_points >= 0.0 && c.error_rate_points.is_finite()) {
        return Err(lp.error("compare.error_rate_points", "expected a number of percentage points ≥ 0"));
    }
    for (name, t) in &c.endpoints {
        let field = format!("compare.endpoints.{name}");
        if !lp.plan.requests.contains_key(name) {
            return Err(lp.error_at(
                t.span(),
                &field,
                format!("unknown request `{name}` (the plan defines: {})", names(lp.plan.requests.keys())),
            ));
        }
        let v = t.get_ref();
        for (metric, value) in [("p50", v.p50), ("p95", v.p95), ("p99", v.p99), ("rps", v.rps), ("error_rate_points", v.error_rate_points)]
        {
            if let Some(x) = value
                && !(x >= 0.0 && x.is_finite())
            {
                return Err(lp.error_at(t.span(), &format!("{field}.{metric}"), format!("{x} is not a threshold: expected a number ≥ 0")));
            }
        }
    }
    Ok(())
}

fn select(lp: &LoadedPlan, opts: &CompileOptions, all: Vec<Suite>) -> Result<Vec<Suite>, PlanError> {
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

fn filter_tags(lp: &LoadedPlan, requests: &[Request], opts: &CompileOptions, suites: Vec<Suite>) -> Result<Vec<Suite>, PlanError> {
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
