//! `[requests]`: each request's target, method, headers, body, expected statuses and captures;
//! a WebSocket request also gets its message endpoint.

use http::{HeaderName, Method};
use toml::Spanned;

use super::common::{names, table_header};
use super::templates::{body, resolve};
use crate::plan::compiled::{self as c, Request, RequestId};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::RequestSpec;
use crate::plan::template::{Capture, Template};
use crate::plan::vars::VarTable;

/// Every request of the plan, in its order (a request's id is its index), then the message
/// endpoints of the WebSocket ones.
pub(super) fn requests(lp: &LoadedPlan, table: &VarTable) -> Result<Vec<Request>, PlanError> {
    let mut requests = lp.plan.requests.iter().map(|(name, spec)| request(lp, table, name, spec)).collect::<Result<Vec<_>, _>>()?;
    add_message_endpoints(lp, &mut requests)?;
    Ok(requests)
}

/// The id of the request `name` refers to.
pub(super) fn request_id(lp: &LoadedPlan, name: &Spanned<String>, field: &str) -> Result<RequestId, PlanError> {
    lp.plan.requests.get_index_of(name.get_ref()).ok_or_else(|| {
        lp.error_at(
            name.span(),
            field,
            format!("unknown request `{}` (the plan defines: {})", name.get_ref(), names(lp.plan.requests.keys())),
        )
    })
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
    let (target, target_field) = target(lp, name, spec)?;
    if name == "*" || name.is_empty() {
        return Err(lp.error_at(target.span(), &format!("requests.{name}"), "`*` and the empty string cannot name a request"));
    }
    let protocol = protocol(lp, name, spec, target)?;
    let method = method(lp, name, spec)?;
    if !target.get_ref().starts_with('/') {
        return Err(lp.error_at(
            target.span(),
            &field(target_field),
            format!("{:?} must start with `/` (the app's base URL is prepended)", target.get_ref()),
        ));
    }
    let path = resolve(lp, table, target, target.span(), &field(target_field))?;
    let headers = headers(lp, table, name, spec)?;
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
        captures: captures(table, spec),
    })
}

/// The path template and its key: `path` for HTTP, `ws` for a WebSocket, exactly one of them.
fn target<'a>(lp: &LoadedPlan, name: &str, spec: &'a RequestSpec) -> Result<(&'a Spanned<String>, &'static str), PlanError> {
    match (&spec.path, &spec.ws) {
        (Some(p), None) => Ok((p, "path")),
        (None, Some(w)) => Ok((w, "ws")),
        (Some(_), Some(w)) => Err(lp.error_at(
            w.span(),
            &format!("requests.{name}.ws"),
            "a request is HTTP (`path`) or a WebSocket (`ws`), not both: make two requests",
        )),
        (None, None) => Err(lp.error_at(
            table_header(lp, "requests", name),
            &format!("requests.{name}"),
            "the request needs `path` (HTTP, like \"/api/providers\") or `ws` (a WebSocket, like \"/ws/slots?provider_id={{provider_id}}\")",
        )),
    }
}

/// HTTP, or a WebSocket with its scope; the keys that make no sense on a WebSocket are refused.
fn protocol(lp: &LoadedPlan, name: &str, spec: &RequestSpec, target: &Spanned<String>) -> Result<c::Protocol, PlanError> {
    let field = |f: &str| format!("requests.{name}.{f}");
    if spec.ws.is_none() {
        if let Some(scope) = &spec.scope {
            return Err(lp.error_at(scope.span(), &field("scope"), "`scope` applies to WebSocket (`ws`) requests only"));
        }
        return Ok(c::Protocol::Http);
    }
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
    Ok(c::Protocol::WsConnect { scope, message: usize::MAX })
}

/// One of the standard methods, written in capitals.
fn method(lp: &LoadedPlan, name: &str, spec: &RequestSpec) -> Result<Method, PlanError> {
    let m = spec.method.get_ref();
    match m.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Ok(Method::from_bytes(m.as_bytes()).expect("a standard method parses"))
        }
        _ => Err(lp.error_at(
            spec.method.span(),
            &format!("requests.{name}.method"),
            format!("{m:?} is not a method: expected GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"),
        )),
    }
}

/// `[defaults] headers`, then the request's own, which replace a default of the same name.
fn headers(lp: &LoadedPlan, table: &VarTable, name: &str, spec: &RequestSpec) -> Result<Vec<(HeaderName, Template)>, PlanError> {
    let mut headers: Vec<(HeaderName, Template)> = Vec::new();
    for (hname, value, f) in lp
        .plan
        .defaults
        .headers
        .iter()
        .map(|(k, v)| (k, v, format!("defaults.headers.{k}")))
        .chain(spec.headers.iter().map(|(k, v)| (k, v, format!("requests.{name}.headers.{k}"))))
    {
        let header = HeaderName::from_bytes(hname.to_ascii_lowercase().as_bytes())
            .map_err(|_| lp.error_at(value.span(), &f, format!("`{hname}` is not a valid header name")))?;
        let t = resolve(lp, table, value, value.span(), &f)?;
        headers.retain(|(h, _)| *h != header);
        headers.push((header, t));
    }
    Ok(headers)
}

/// The request's captures, each with its slot in the table of captured names.
fn captures(table: &VarTable, spec: &RequestSpec) -> Vec<Capture> {
    spec.capture
        .iter()
        .map(|(var, pointer)| {
            let slot = table.captures.iter().position(|c| c == var).expect("captures were collected from every request");
            Capture { var: var.clone(), pointer: pointer.get_ref().clone(), slot }
        })
        .collect()
}
