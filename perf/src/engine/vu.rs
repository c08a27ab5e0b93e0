//! A virtual user: its variables, its connection, and what one iteration does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::client::Conn;
use super::shared::Shared;
use super::stats::{ErrorKind, Sample};
use super::ws::{self, WsConn};
use crate::plan::compiled::{Action, Exec, Protocol, RenderError, Rendered, Request, RequestId, Step, VuVars, WsExpect, WsScope, WsSend};

pub(crate) struct Vu {
    /// Unique within the run; picks the statistics shard.
    pub id: usize,
    pub vars: VuVars,
    pub conn: Conn,
    /// Open WebSocket connections, by request.
    ws: Vec<WsConn>,
    /// When the previous step ended: an expected message's latency runs from here.
    mark: Option<Instant>,
}

impl Vu {
    pub fn new(shared: &Shared, id: usize) -> Vu {
        let seed = splitmix(shared.seed ^ splitmix(id as u64 + 1));
        Vu { id, vars: VuVars::new(shared.vars.clone(), seed), conn: Conn::new(shared.target.clone()), ws: Vec::new(), mark: None }
    }

    fn ws_conn(&mut self, id: RequestId) -> Option<&mut WsConn> {
        self.ws.iter_mut().find(|c| c.request == id)
    }

    /// Closes the connections that live for one iteration (dropping one closes it).
    fn close_iteration_sockets(&mut self, shared: &Shared) {
        self.ws.retain(|c| matches!(shared.requests[c.request].protocol, Protocol::WsConnect { scope: WsScope::Vu, .. }));
    }
}

/// A well-mixed 64-bit hash, so users' seeds differ in every bit.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How an iteration ended (when it was not cut by the end of the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Completed,
    /// A step needed a value an earlier step did not capture: the rest was skipped.
    Aborted,
}

/// What a step's response meant for the iteration.
pub(crate) struct StepOutcome {
    pub error: Option<ErrorKind>,
    pub status: Option<u16>,
}

/// Runs one iteration. `scheduled` is the open model's planned start: the first request's
/// latency is measured from it (coordinated omission); later steps of a workflow are not on
/// a schedule and are measured from their own start.
pub(crate) async fn iteration(shared: &Arc<Shared>, vu: &mut Vu, exec: &Exec, scheduled: Option<Instant>) -> Ended {
    vu.vars.begin_iteration();
    match exec {
        Exec::Request(id) => step(shared, vu, *id, scheduled).await.map_or(Ended::Aborted, |_| Ended::Completed),
        Exec::Mix(choices) => {
            let id = pick(choices, vu.vars.random_unit());
            step(shared, vu, id, scheduled).await.map_or(Ended::Aborted, |_| Ended::Completed)
        }
        Exec::Workflow(steps) => workflow(shared, vu, steps, scheduled).await,
    }
}

async fn workflow(shared: &Arc<Shared>, vu: &mut Vu, steps: &[Step], mut scheduled: Option<Instant>) -> Ended {
    // An iteration cut short (end of the run, a ramp-down) may have left its sockets open.
    vu.close_iteration_sockets(shared);
    vu.mark = None;
    let mut ended = Ended::Completed;
    for s in steps {
        let done = match &s.action {
            Action::Http(id) => step(shared, vu, *id, scheduled.take()).await.is_some(),
            Action::WsConnect(id) => ws_connect(shared, vu, *id, scheduled.take()).await,
            Action::WsSend(send) => ws_send(vu, send),
            Action::WsExpect(expect) => ws_expect(shared, vu, expect).await,
            Action::WsClose(id) => {
                vu.ws.retain(|c| c.request != *id);
                true
            }
        };
        vu.mark = Some(Instant::now());
        if !done {
            ended = Ended::Aborted;
            break;
        }
        if let Some(think) = s.think {
            let span = think.max.saturating_sub(think.min);
            let pause = think.min + span.mul_f64(vu.vars.random_unit());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
    vu.close_iteration_sockets(shared);
    ended
}

/// `ws_connect`: opens the connection (unless a `scope = "vu"` one is open) and records the
/// upgrade as one request of the connection's endpoint. False when it could not be rendered.
async fn ws_connect(shared: &Arc<Shared>, vu: &mut Vu, id: RequestId, scheduled: Option<Instant>) -> bool {
    if vu.ws_conn(id).is_some() {
        return true;
    }
    let req = &shared.requests[id];
    let Some(rendered) = render(req, &mut vu.vars) else { return false };
    let start = Instant::now();
    let from = scheduled.unwrap_or(start).min(start);
    let opened = ws::connect(shared, id, &rendered.path_and_query, rendered.headers, vu.id, start + req.timeout).await;
    let end = Instant::now();
    let error = opened.result.as_ref().err().copied();
    let answered = opened.result.is_ok() || opened.status.is_some();
    let sample = Sample {
        request: id,
        latency_us: answered.then(|| micros(end - from)),
        service_us: answered.then(|| micros(end - start)),
        status: opened.status,
        error,
        bytes_sent: opened.bytes_sent,
        bytes_received: opened.bytes_received,
    };
    shared.recorder.record(vu.id, &sample, from >= shared.measured_start);
    if let Ok(conn) = opened.result {
        vu.ws.push(conn);
    }
    true
}

/// `ws_send`: queues the message. A connection that failed to open or was dropped sends
/// nothing (that failure is counted where it happened).
fn ws_send(vu: &mut Vu, send: &WsSend) -> bool {
    let text = match send.render(&mut vu.vars) {
        Ok(t) => t,
        Err(RenderError::MissingCapture(_)) => return false,
        Err(_) => return true,
    };
    if let Some(conn) = vu.ws_conn(send.ws) {
        conn.send(text);
    }
    true
}

/// `ws_expect`: waits for the matching message and records it under the message endpoint,
/// its latency from the end of the previous step; a timeout or a drop is an error there.
async fn ws_expect(shared: &Arc<Shared>, vu: &mut Vu, expect: &WsExpect) -> bool {
    let wanted = match expect.render(&mut vu.vars) {
        Ok(w) => w,
        Err(RenderError::MissingCapture(_)) => return false,
        Err(_) => return true,
    };
    let from = vu.mark.unwrap_or_else(Instant::now);
    let user = vu.id;
    // A connection that never opened has its failure counted at the connect.
    let Some(conn) = vu.ws_conn(expect.ws) else { return true };
    let result = conn.expect(&wanted, from + expect.timeout).await;
    let (latency_us, error) = match result {
        Ok(at) => (Some(micros(at.saturating_duration_since(from))), None),
        Err(kind) => (None, Some(kind)),
    };
    let sample =
        Sample { request: expect.message, latency_us, service_us: latency_us, status: None, error, bytes_sent: 0, bytes_received: 0 };
    shared.recorder.record(user, &sample, from >= shared.measured_start);
    true
}

/// Renders a request (HTTP, or a WebSocket's upgrade); `None` when a step before did not
/// capture a value it needs, or a header came out invalid (said once per run).
fn render(req: &Request, vars: &mut VuVars) -> Option<Rendered> {
    match req.render(vars) {
        Ok(r) => Some(r),
        Err(RenderError::MissingCapture(_)) => None,
        Err(e @ RenderError::BadHeader { .. }) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(request = %req.name, "{e}; the iteration is skipped");
            }
            None
        }
    }
}

/// Picks a request of a mix by weight; `u` is uniform in `[0, 1)`.
pub(crate) fn pick(choices: &[(RequestId, u32)], u: f64) -> RequestId {
    let total: u64 = choices.iter().map(|(_, w)| *w as u64).sum();
    if total == 0 {
        return choices[0].0;
    }
    let mut x = (u * total as f64) as u64;
    for &(id, w) in choices {
        if x < w as u64 {
            return id;
        }
        x -= w as u64;
    }
    choices[choices.len() - 1].0
}

/// Sends one request and records it. `None` when it could not be rendered (the iteration
/// stops there).
pub(crate) async fn step(shared: &Shared, vu: &mut Vu, id: RequestId, scheduled: Option<Instant>) -> Option<StepOutcome> {
    let req = &shared.requests[id];
    let rendered = render(req, &mut vu.vars)?;
    let start = Instant::now();
    let from = scheduled.unwrap_or(start).min(start);
    let exchange = vu.conn.send(&req.method, rendered, req.captures_anything(), start + req.timeout).await;
    let end = Instant::now();
    let (status, error) = match exchange.result {
        Err(kind) => (None, Some(kind)),
        Ok(status) if !req.is_expected(status) => (Some(status), Some(ErrorKind::Status)),
        Ok(status) if (200..300).contains(&status) => {
            let body = exchange.body.as_deref().unwrap_or(&[]);
            match req.capture(body, &mut vu.vars) {
                Ok(()) => (Some(status), None),
                Err(_) => (Some(status), Some(ErrorKind::Capture)),
            }
        }
        // An expected non-2xx (a 409 on a double booking) captures nothing and is no error.
        Ok(status) => (Some(status), None),
    };
    let sample = Sample {
        request: id,
        latency_us: status.map(|_| micros(end - from)),
        service_us: status.map(|_| micros(end - start)),
        status,
        error,
        bytes_sent: exchange.bytes_sent,
        bytes_received: exchange.bytes_received,
    };
    shared.recorder.record(vu.id, &sample, from >= shared.measured_start);
    Some(StepOutcome { error, status })
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn mix_follows_weights() {
        let choices = [(7, 1), (8, 3)];
        assert_eq!(pick(&choices, 0.0), 7);
        assert_eq!(pick(&choices, 0.24), 7);
        assert_eq!(pick(&choices, 0.25), 8);
        assert_eq!(pick(&choices, 0.999), 8);
        let n = (0..1000).filter(|i| pick(&choices, *i as f64 / 1000.0) == 8).count();
        assert_eq!(n, 750);
    }
}
