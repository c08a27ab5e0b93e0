//! The WebSocket side of a virtual user: the connections its `ws_connect` steps open.
//!
//! Each connection is driven by a task of its own (tokio-tungstenite), which owns the socket:
//! it answers the server's pings, sends what `ws_send` steps queue, and stamps every message
//! with the moment it arrived, so that a message that comes while the user is busy with an
//! HTTP step is timed when it came, not when the user looks. `ws_expect` then reads those
//! stamped messages in order: the first that matches ends the wait, the others are counted
//! (messages received) and let go.
//!
//! A connection the server closes, or that breaks, while the user still holds it is
//! *dropped*: an error of kind `dropped` on the connection's endpoint. A connection the user
//! closes (`ws_close`, the end of an iteration for `scope = "iteration"`, the end of the run)
//! is closed with a close frame and is no error.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::io::{ByteCounters, Counting};
use super::shared::Shared;
use super::stats::ErrorKind;
use crate::plan::compiled::{RequestId, message_matches};

/// Messages larger than this end the connection (a server gone wrong, not a live update).
const MAX_MESSAGE: usize = 1 << 20;

/// How long closing politely may take before the socket is simply dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the connection's task passes to the user, in arrival order.
enum Incoming {
    /// A text or binary message; `value` is `None` when it is not JSON.
    Message { at: Instant, value: Option<Value> },
    /// The server closed the connection, or it broke.
    Gone,
}

/// One open WebSocket connection of a virtual user.
pub(crate) struct WsConn {
    /// The `ws` request it was opened for.
    pub request: RequestId,
    /// Text messages to send; dropping it closes the connection.
    outgoing: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    /// The server is gone: expectations fail at once.
    gone: bool,
}

/// What opening a connection gave.
pub(crate) struct Opened {
    pub result: Result<WsConn, ErrorKind>,
    /// The upgrade's answer: 101, or the status that refused it.
    pub status: Option<u16>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Opens a connection to `path_and_query` and starts its task; the upgrade must finish
/// before `deadline`. `user` is the virtual user's id (its statistics shard).
pub(crate) async fn connect(
    shared: &Arc<Shared>,
    request: RequestId,
    path_and_query: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    user: usize,
    deadline: Instant,
) -> Opened {
    let counters = Arc::new(ByteCounters::default());
    let mut opened = Opened { result: Err(ErrorKind::Connect), status: None, bytes_sent: 0, bytes_received: 0 };
    let handshake = async {
        let stream = shared.target.open_stream(false).await.map_err(Refused::from)?;
        let uri = shared.target.ws_uri(path_and_query).map_err(|_| Refused::from(ErrorKind::Connect))?;
        let mut req = uri.into_client_request().map_err(|_| Refused::from(ErrorKind::Connect))?;
        for (name, value) in headers {
            req.headers_mut().insert(name, value);
        }
        let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
        match tokio_tungstenite::client_async_with_config(req, Counting::new(stream, counters.clone()), Some(config)).await {
            Ok((ws, response)) => Ok((ws, response.status().as_u16())),
            Err(WsError::Http(response)) => Err(Refused((ErrorKind::Status, Some(response.status().as_u16())))),
            Err(_) => Err(Refused((ErrorKind::Body, None))),
        }
    };
    match tokio::time::timeout_at(deadline, handshake).await {
        Err(_) => opened.result = Err(ErrorKind::Timeout),
        Ok(Err(Refused((kind, status)))) => {
            opened.result = Err(kind);
            opened.status = status;
        }
        Ok(Ok((ws, status))) => {
            let (out_tx, out_rx) = mpsc::unbounded_channel();
            let (in_tx, in_rx) = mpsc::unbounded_channel();
            tokio::spawn(drive(ws, out_rx, in_tx, shared.clone(), request, user));
            opened.status = Some(status);
            opened.result = Ok(WsConn { request, outgoing: out_tx, incoming: in_rx, gone: false });
        }
    }
    let (sent, received) = counters.snapshot();
    opened.bytes_sent = sent;
    opened.bytes_received = received;
    opened
}

/// Why an upgrade did not happen: the error kind and the status, when one came back.
struct Refused((ErrorKind, Option<u16>));

impl From<ErrorKind> for Refused {
    fn from(kind: ErrorKind) -> Refused {
        Refused((kind, None))
    }
}

impl WsConn {
    /// Queues a text message; false when the connection is gone.
    pub fn send(&mut self, text: String) -> bool {
        !self.gone && self.outgoing.send(text).is_ok()
    }

    /// Waits until `deadline` for a message carrying every `(pointer, value)` of `wanted`;
    /// returns when it arrived. Messages before it are let go.
    pub async fn expect(&mut self, wanted: &[(String, String)], deadline: Instant) -> Result<Instant, ErrorKind> {
        if self.gone {
            return Err(ErrorKind::Dropped);
        }
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Err(_) => return Err(ErrorKind::Timeout),
                Ok(None | Some(Incoming::Gone)) => {
                    self.gone = true;
                    return Err(ErrorKind::Dropped);
                }
                Ok(Some(Incoming::Message { at, value })) => {
                    if value.is_some_and(|v| message_matches(&v, wanted)) {
                        return Ok(at);
                    }
                }
            }
        }
    }
}

/// The connection's task: sends what the user queues, stamps and hands over what arrives,
/// counts messages and a drop. Ends when the user drops its [`WsConn`] (closing politely)
/// or when the server goes.
async fn drive(
    mut ws: WebSocketStream<Counting>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    incoming: mpsc::UnboundedSender<Incoming>,
    shared: Arc<Shared>,
    request: RequestId,
    user: usize,
) {
    loop {
        tokio::select! {
            text = outgoing.recv() => match text {
                Some(text) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                None => {
                    // The user let the connection go: close it the polite way, briefly.
                    let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(None)).await;
                    return;
                }
            },
            message = ws.next() => {
                let at = Instant::now();
                let value = match message {
                    Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).ok(),
                    Some(Ok(Message::Binary(bytes))) => serde_json::from_slice(&bytes).ok(),
                    // Pings are answered by the protocol layer as the stream is polled.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                shared.recorder.record_ws_message(user, request, at >= shared.measured_start);
                // The user may be gone already (its iteration was cut): nothing to hand over.
                let _ = incoming.send(Incoming::Message { at, value });
            }
        }
    }
    // The server closed the connection or it broke while the user held it.
    if !outgoing.is_closed() {
        shared.recorder.record_ws_drop(user, request, Instant::now() >= shared.measured_start);
        let _ = incoming.send(Incoming::Gone);
    }
}
