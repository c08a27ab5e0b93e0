//! `[workflows]` and a suite's setup: lists of steps, each one verb on one request. A
//! WebSocket step must follow a `ws_connect` of its request in the same list.

use std::collections::BTreeSet;

use toml::Spanned;

use super::requests::request_id;
use super::templates::{body, resolve};
use crate::plan::compiled::{self as c, Request, RequestId, Step};
use crate::plan::loaded::{LoadedPlan, PlanError};
use crate::plan::model::StepSpec;
use crate::plan::vars::VarTable;

/// Every workflow of the plan, by name; a workflow needs at least one step.
pub(super) fn workflows(lp: &LoadedPlan, table: &VarTable, requests: &[Request]) -> Result<Vec<(String, Vec<Step>)>, PlanError> {
    lp.plan
        .workflows
        .iter()
        .map(|(name, w)| {
            if w.steps.is_empty() {
                return Err(lp.error(&format!("workflows.{name}.steps"), "a workflow needs at least one step"));
            }
            let steps = steps(lp, table, requests, &format!("workflows.{name}.steps"), &w.steps, true)?;
            Ok((name.clone(), steps))
        })
        .collect()
}

/// Compiles a workflow's (`ws` true) or a setup's steps. A WebSocket step must follow a
/// `ws_connect` of its request in the same list; setup steps are HTTP only.
pub(super) fn steps(
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
        let here = format!("{field}[{i}]");
        let (verb, name) = verb(lp, &here, s)?;
        let id = request_id(lp, name, &format!("{here}.{verb}"))?;
        let step = Verb { here, verb, name, id };
        misplaced_keys(lp, &step, s)?;
        let action = if verb == "request" {
            http(lp, requests, &step)?
        } else {
            check_ws(lp, requests, &step, ws, &connected)?;
            ws_action(lp, table, requests, &step, s, &mut connected)?
        };
        out.push(Step { action, think: s.think });
    }
    Ok(out)
}

/// The step being compiled: where it is (`workflows.flow.steps[2]`), its verb, the request
/// it names and that request's id.
struct Verb<'a> {
    here: String,
    verb: &'static str,
    name: &'a Spanned<String>,
    id: RequestId,
}

impl Verb<'_> {
    /// The field of the verb, `workflows.flow.steps[2].ws_send`.
    fn field(&self) -> String {
        format!("{}.{}", self.here, self.verb)
    }
}

/// The one verb of a step, with the request it names.
fn verb<'a>(lp: &LoadedPlan, here: &str, s: &'a StepSpec) -> Result<(&'static str, &'a Spanned<String>), PlanError> {
    match s.verbs().as_slice() {
        [one] => Ok(*one),
        [] => Err(lp.error(here, "a step needs one of `request`, `ws_connect`, `ws_send`, `ws_expect` or `ws_close`")),
        [(a, _), (b, second), ..] => {
            Err(lp.error_at(second.span(), &format!("{here}.{b}"), format!("a step does one thing: `{a}` or `{b}`, not both")))
        }
    }
}

/// `body` goes with `ws_send` only, `match` and `timeout` with `ws_expect` only.
fn misplaced_keys(lp: &LoadedPlan, step: &Verb<'_>, s: &StepSpec) -> Result<(), PlanError> {
    for (key, present, owner) in [
        ("body", s.body.is_some(), "ws_send"),
        ("match", !s.matches.is_empty(), "ws_expect"),
        ("timeout", s.timeout.is_some(), "ws_expect"),
    ] {
        if present && step.verb != owner {
            return Err(lp.error_at(
                step.name.span(),
                &format!("{}.{key}", step.here),
                format!("`{key}` does not apply to a `{}` step", step.verb),
            ));
        }
    }
    Ok(())
}

/// `request`: an HTTP request, never a WebSocket one.
fn http(lp: &LoadedPlan, requests: &[Request], step: &Verb<'_>) -> Result<c::Action, PlanError> {
    if matches!(requests[step.id].protocol, c::Protocol::WsConnect { .. }) {
        return Err(lp.error_at(
            step.name.span(),
            &step.field(),
            format!("`{}` is a WebSocket request: use it with `ws_connect`, `ws_send`, `ws_expect` and `ws_close`", step.name.get_ref()),
        ));
    }
    Ok(c::Action::Http(step.id))
}

/// A `ws_` step: in a workflow, on a WebSocket request, after a `ws_connect` of it (unless it
/// is that `ws_connect`).
fn check_ws(lp: &LoadedPlan, requests: &[Request], step: &Verb<'_>, ws: bool, connected: &BTreeSet<RequestId>) -> Result<(), PlanError> {
    let (span, field, name) = (step.name.span(), step.field(), step.name.get_ref());
    if !ws {
        return Err(lp.error_at(span, &field, "setup steps send HTTP requests only: WebSocket steps belong in a workflow"));
    }
    if !matches!(requests[step.id].protocol, c::Protocol::WsConnect { .. }) {
        return Err(lp.error_at(span, &field, format!("`{name}` is not a WebSocket request (it has `path`, not `ws`)")));
    }
    if step.verb != "ws_connect" && !connected.contains(&step.id) {
        return Err(lp.error_at(
            span,
            &field,
            format!("`{}` on `{name}` comes before any `ws_connect = {name:?}` in this list of steps", step.verb),
        ));
    }
    Ok(())
}

/// The action of a `ws_` step; `connected` follows which connections are open.
fn ws_action(
    lp: &LoadedPlan,
    table: &VarTable,
    requests: &[Request],
    step: &Verb<'_>,
    s: &StepSpec,
    connected: &mut BTreeSet<RequestId>,
) -> Result<c::Action, PlanError> {
    Ok(match step.verb {
        "ws_connect" => {
            connected.insert(step.id);
            c::Action::WsConnect(step.id)
        }
        "ws_send" => {
            let field = format!("{}.body", step.here);
            let b = s
                .body
                .as_ref()
                .ok_or_else(|| lp.error_at(step.name.span(), &field, "`ws_send` needs a `body`: the JSON message to send"))?;
            c::Action::WsSend(c::WsSend { ws: step.id, body: body(lp, table, b.get_ref(), b.span(), &field)? })
        }
        "ws_expect" => c::Action::WsExpect(ws_expect(lp, table, requests, step, s)?),
        "ws_close" => {
            connected.remove(&step.id);
            c::Action::WsClose(step.id)
        }
        _ => unreachable!("verbs() names these five"),
    })
}

/// `ws_expect`: the values expected at JSON pointers of a message, and how long to wait.
fn ws_expect(lp: &LoadedPlan, table: &VarTable, requests: &[Request], step: &Verb<'_>, s: &StepSpec) -> Result<c::WsExpect, PlanError> {
    let here = &step.here;
    if s.matches.is_empty() {
        return Err(lp.error_at(
            step.name.span(),
            &format!("{here}.match"),
            "`ws_expect` needs `match`: JSON pointers and the values expected there, like { \"/slot_id\" = \"{{slot_id}}\" }",
        ));
    }
    let mut matches = Vec::new();
    for (pointer, value) in &s.matches {
        let f = format!("{here}.match.{pointer}");
        if !pointer.starts_with('/') {
            return Err(lp.error_at(value.span(), &f, format!("{pointer:?} is not a JSON pointer: expected a path like \"/slot_id\"")));
        }
        matches.push((pointer.clone(), resolve(lp, table, value, value.span(), &f)?));
    }
    let timeout = match s.timeout {
        Some(t) if t.0.is_zero() => {
            return Err(lp.error_at(step.name.span(), &format!("{here}.timeout"), "`timeout` must be longer than zero"));
        }
        Some(t) => t.0,
        None => requests[step.id].timeout,
    };
    let c::Protocol::WsConnect { message, .. } = requests[step.id].protocol else {
        unreachable!("check_ws let only WebSocket requests through")
    };
    Ok(c::WsExpect { ws: step.id, message, timeout, matches })
}
