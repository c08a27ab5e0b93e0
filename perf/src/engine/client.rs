//! The HTTP side of a virtual user: one connection it owns, reopened when the server closes it.
//!
//! This is hyper's low-level client (`hyper::client::conn`), not a pooled client: a virtual user
//! owning one connection is the model k6 and wrk use, and it keeps the per-request path short.
//! For HTTP/1.1 the connection future is polled inside the user's own task, alongside the
//! request (see [`drive`]), so a request costs no hop through a separate connection task.
//! HTTP/2 (opt-in) spawns hyper's connection task as hyper requires.
//!
//! Plain `http://` with HTTP/1.1, the common case and the one a load test spends its client
//! CPU on, does not go through hyper at all: the request's bytes are written into a buffer
//! the connection reuses and the response is read by [`super::h1`] (httparse), in the user's
//! task, with one timer per connection re-armed per request. HTTPS and HTTP/2 use hyper.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::h1::{H1Conn, H1Error, Tally};
use super::io::{ByteCounters, Counting, Stream};
use super::result::EngineError;
use super::stats::ErrorKind;
use crate::plan::HttpVersion;
use crate::plan::compiled::Rendered;

type Io = TokioIo<Counting>;
type ReqBody = Full<Bytes>;

/// Where the load goes: the base URL resolved once per run, and the TLS setup for https.
pub(crate) struct Target {
    https: bool,
    http2: bool,
    /// `host[:port]` as written, for the `Host` header and absolute URIs.
    authority: String,
    /// `host: <authority>\r\n`, written into plain HTTP/1.1 requests that set no `Host`.
    host_line: Vec<u8>,
    host_header: HeaderValue,
    addrs: Vec<SocketAddr>,
    /// Path prefix of the base URL without a trailing `/` (empty for `http://host:port/`).
    base_path: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// https with HTTP/2: the connector WebSockets use (they need HTTP/1.1 for the upgrade).
    ws_tls: Option<tokio_rustls::TlsConnector>,
}

impl Target {
    /// Parses and resolves the base URL. `extra_roots` are trusted besides the system roots
    /// (a private CA, or a test's self-signed certificate).
    pub async fn new(base_url: &str, http: HttpVersion, extra_roots: &[CertificateDer<'static>]) -> Result<Target, EngineError> {
        let bad = |why: String| EngineError::BaseUrl { url: base_url.to_string(), reason: why };
        let url = url::Url::parse(base_url).map_err(|e| bad(e.to_string()))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(bad(format!("scheme `{other}` is not http or https"))),
        };
        let host = url.host_str().ok_or_else(|| bad("it has no host".into()))?.to_string();
        let port = url.port_or_known_default().ok_or_else(|| bad("it has no port".into()))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let host_header = HeaderValue::from_str(&authority).map_err(|_| bad("the host is not a valid header".into()))?;
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
            .await
            .map_err(|e| bad(format!("cannot resolve `{host}`: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(bad(format!("`{host}` resolves to no address")));
        }
        let base_path = url.path().trim_end_matches('/').to_string();
        let http2 = http == HttpVersion::Http2;
        let tls = if https {
            let name = ServerName::try_from(lookup_host.clone()).map_err(|e| bad(e.to_string()))?;
            Some((tls_connector(http2, extra_roots)?, name))
        } else {
            None
        };
        let ws_tls = if https && http2 { Some(tls_connector(false, extra_roots)?) } else { None };
        let host_line = format!("host: {authority}\r\n").into_bytes();
        Ok(Target { https, http2, authority, host_line, host_header, addrs, base_path, tls, ws_tls })
    }

    /// `ws://` or `wss://` URI of a WebSocket path.
    pub fn ws_uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let scheme = if self.https { "wss://" } else { "ws://" };
        Ok(Uri::try_from(format!("{scheme}{}{}{path_and_query}", self.authority, self.base_path))?)
    }

    /// A new connection to the target: TCP, then TLS for https (negotiating HTTP/2 only when
    /// `http2`).
    pub async fn open_stream(&self, http2: bool) -> Result<Stream, ErrorKind> {
        let tcp = self.open_tcp().await?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((connector, name)) => {
                let connector = if http2 { connector } else { self.ws_tls.as_ref().unwrap_or(connector) };
                let tls = connector.connect(name.clone(), tcp).await.map_err(|_| ErrorKind::Connect)?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    /// A new TCP connection to the first address that accepts one.
    async fn open_tcp(&self) -> Result<TcpStream, ErrorKind> {
        for addr in &self.addrs {
            if let Ok(s) = TcpStream::connect(addr).await {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
        }
        Err(ErrorKind::Connect)
    }

    /// Plain `http://` with HTTP/1.1: the requests go through [`super::h1`].
    fn plain_h1(&self) -> bool {
        !self.https && !self.http2
    }

    /// Writes a plain HTTP/1.1 request (head and body) into `out`; `false` when its path
    /// cannot go on a request line. The checks stand in for the URI parsing of the hyper
    /// path: no control character, space or DEL (the bytes that would break the request
    /// line), at most 65534 bytes; a `#fragment` is not sent.
    fn write_request(&self, method: &Method, r: &Rendered, out: &mut Vec<u8>) -> bool {
        let mut path = r.path_and_query.as_bytes();
        if let Some(i) = path.iter().position(|b| *b == b'#') {
            path = &path[..i];
        }
        if self.base_path.len() + path.len() > 65534 || path.iter().any(|b| *b <= b' ' || *b == 0x7f) {
            return false;
        }
        let target_empty = self.base_path.is_empty() && path.is_empty();
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.base_path.as_bytes());
        out.extend_from_slice(if target_empty { b"/" } else { path });
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let (mut host, mut length) = (false, false);
        for (name, value) in &r.headers {
            host |= name == header::HOST;
            length |= name == header::CONTENT_LENGTH;
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !host {
            out.extend_from_slice(&self.host_line);
        }
        let body = r.body.as_deref().unwrap_or_default();
        // As hyper does: a length only for a body that has bytes.
        if !body.is_empty() && !length {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        true
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let mut s = String::with_capacity(self.base_path.len() + path_and_query.len() + 32);
        if self.http2 {
            s.push_str(if self.https { "https://" } else { "http://" });
            s.push_str(&self.authority);
        }
        s.push_str(&self.base_path);
        s.push_str(path_and_query);
        Ok(Uri::try_from(s)?)
    }
}

/// System roots, loaded once per process.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn tls_connector(http2: bool, extra: &[CertificateDer<'static>]) -> Result<tokio_rustls::TlsConnector, EngineError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    roots.add_parsable_certificates(extra.iter().cloned());
    if roots.is_empty() {
        return Err(EngineError::Tls("no trusted root certificate found (system store empty)".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EngineError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![if http2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// What one request gave.
pub(crate) struct Exchange {
    /// The status, or why there is none.
    pub result: Result<u16, ErrorKind>,
    /// The response body, kept only when asked for (captures).
    pub body: Option<Bytes>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

enum Open {
    /// Plain `http://`, HTTP/1.1: no hyper.
    Plain(H1Conn),
    H1 {
        sender: http1::SendRequest<ReqBody>,
        driver: Pin<Box<http1::Connection<Io, ReqBody>>>,
        done: bool,
    },
    H2 {
        sender: http2::SendRequest<ReqBody>,
        task: tokio::task::JoinHandle<()>,
    },
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Open::H2 { task, .. } = self {
            task.abort();
        }
    }
}

/// One virtual user's connection.
pub(crate) struct Conn {
    target: Arc<Target>,
    open: Option<Open>,
    counters: Arc<ByteCounters>,
    /// Plain HTTP/1.1: the request being sent, in a buffer reused from one to the next.
    out: Vec<u8>,
    /// Plain HTTP/1.1: the deadline of the current request. Re-armed per request: moving a
    /// registered timer later is one atomic update, where a fresh `timeout_at` per request
    /// would register and remove a timer in the runtime's wheel each time.
    timer: Option<Pin<Box<Sleep>>>,
}

enum Failure {
    Kind(ErrorKind),
    /// The reused connection was closed before the request went out: safe to retry once.
    NotSent(Box<http::Request<ReqBody>>),
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, open: None, counters: Arc::new(ByteCounters::default()), out: Vec::new(), timer: None }
    }

    /// Plain HTTP/1.1: [`Conn::send`] without hyper.
    async fn send_plain(&mut self, method: &Method, rendered: Rendered, keep_body: bool, deadline: Instant) -> Exchange {
        let mut exchange = Exchange { result: Err(ErrorKind::Body), body: None, bytes_sent: 0, bytes_received: 0 };
        if !self.target.write_request(method, &rendered, &mut self.out) {
            return exchange;
        }
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().reset(deadline);
        let mut connecting = false;
        let mut tally = Tally::default();
        let outcome = {
            let how = Plain { head: method == Method::HEAD, keep_body, retry: method.is_idempotent() };
            let work = plain_exchange(&mut self.open, &self.target, &self.out, how, &mut connecting, &mut tally);
            tokio::pin!(work);
            tokio::select! {
                biased;
                out = &mut work => Some(out),
                () = timer.as_mut() => None,
            }
        };
        self.settle(outcome.unwrap_or(Err(if connecting { ErrorKind::Connect } else { ErrorKind::Timeout })), &mut exchange);
        exchange.bytes_sent = tally.sent;
        exchange.bytes_received = tally.received;
        exchange
    }

    /// Puts an exchange's outcome into `exchange`. After a failure the connection's state is
    /// unknown: the next request starts afresh.
    fn settle(&mut self, outcome: Result<(u16, Option<Bytes>), ErrorKind>, exchange: &mut Exchange) {
        match outcome {
            Ok((status, body)) => {
                exchange.result = Ok(status);
                exchange.body = body;
            }
            Err(kind) => {
                self.open = None;
                exchange.result = Err(kind);
            }
        }
    }

    /// Sends one request and reads the whole response body before `deadline`. One timer
    /// covers the whole exchange; when it fires while connecting, the failure is `connect`.
    pub async fn send(&mut self, method: &Method, rendered: Rendered, keep_body: bool, deadline: Instant) -> Exchange {
        if self.target.plain_h1() {
            return self.send_plain(method, rendered, keep_body, deadline).await;
        }
        let (sent0, recv0) = self.counters.snapshot();
        let mut exchange = Exchange { result: Err(ErrorKind::Body), body: None, bytes_sent: 0, bytes_received: 0 };
        match self.build(method, rendered) {
            Ok(req) => {
                let mut connecting = false;
                let outcome = tokio::time::timeout_at(deadline, self.send_built(req, keep_body, &mut connecting))
                    .await
                    .unwrap_or(Err(if connecting { ErrorKind::Connect } else { ErrorKind::Timeout }));
                self.settle(outcome, &mut exchange);
            }
            Err(_) => exchange.result = Err(ErrorKind::Body),
        }
        let (sent1, recv1) = self.counters.snapshot();
        exchange.bytes_sent = sent1 - sent0;
        exchange.bytes_received = recv1 - recv0;
        exchange
    }

    fn build(&self, method: &Method, rendered: Rendered) -> Result<http::Request<ReqBody>, http::Error> {
        let uri = self.target.uri(&rendered.path_and_query)?;
        let mut req = http::Request::new(Full::new(rendered.body.unwrap_or_default()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.reserve(rendered.headers.len() + 1);
        for (name, value) in rendered.headers {
            headers.append(name, value);
        }
        if !self.target.http2 && !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, self.target.host_header.clone());
        }
        Ok(req)
    }

    async fn send_built(
        &mut self,
        req: http::Request<ReqBody>,
        keep_body: bool,
        connecting: &mut bool,
    ) -> Result<(u16, Option<Bytes>), ErrorKind> {
        let mut reused = self.ensure_ready(connecting).await?;
        let mut req = req;
        loop {
            match self.exchange(req, keep_body).await {
                Ok(out) => return Ok(out),
                Err(Failure::Kind(kind)) => return Err(kind),
                Err(Failure::NotSent(back)) if reused => {
                    // The server closed an idle connection under us: one fresh attempt.
                    self.open = None;
                    reused = self.ensure_ready(connecting).await?;
                    debug_assert!(!reused);
                    req = *back;
                }
                Err(Failure::NotSent(_)) => return Err(ErrorKind::Body),
            }
        }
    }

    /// Makes sure a connection is open and ready; true when it is one used before.
    /// `connecting` is set while a new connection is being made.
    async fn ensure_ready(&mut self, connecting: &mut bool) -> Result<bool, ErrorKind> {
        if let Some(open) = &mut self.open {
            let ready = match open {
                Open::H1 { sender, driver, done } => {
                    !sender.is_closed() && (sender.is_ready() || drive(driver, done, sender.ready()).await.is_ok())
                }
                Open::H2 { sender, .. } => !sender.is_closed() && sender.ready().await.is_ok(),
                Open::Plain(_) => false,
            };
            if ready {
                return Ok(true);
            }
            self.open = None;
        }
        *connecting = true;
        let open = self.connect().await?;
        *connecting = false;
        self.open = Some(open);
        Ok(false)
    }

    async fn connect(&self) -> Result<Open, ErrorKind> {
        let t = &self.target;
        let stream = t.open_stream(t.http2).await?;
        let io = TokioIo::new(Counting::new(stream, self.counters.clone()));
        if t.http2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new()).handshake(io).await.map_err(|_| ErrorKind::Connect)?;
            let task = tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Open::H2 { sender, task })
        } else {
            let (sender, conn) = http1::Builder::new().handshake(io).await.map_err(|_| ErrorKind::Connect)?;
            Ok(Open::H1 { sender, driver: Box::pin(conn), done: false })
        }
    }

    async fn exchange(&mut self, req: http::Request<ReqBody>, keep_body: bool) -> Result<(u16, Option<Bytes>), Failure> {
        let Some(open) = &mut self.open else {
            return Err(Failure::Kind(ErrorKind::Connect));
        };
        match open {
            Open::H1 { sender, driver, done } => {
                let work = async {
                    let resp = sender.try_send_request(req).await.map_err(not_sent)?;
                    read(resp, keep_body).await
                };
                drive(driver, done, work).await
            }
            Open::H2 { sender, .. } => {
                let resp = sender.try_send_request(req).await.map_err(not_sent)?;
                read(resp, keep_body).await
            }
            Open::Plain(_) => Err(Failure::Kind(ErrorKind::Connect)),
        }
    }
}

/// One plain HTTP/1.1 request on the user's connection, opening one when there is none or
/// the server closed it; a reused connection found closed before the response is replaced
/// once. `connecting` is set while a connection is being made.
/// How [`plain_exchange`] treats one request.
#[derive(Clone, Copy)]
struct Plain {
    /// A HEAD request: the response has no body whatever its headers say.
    head: bool,
    /// Keep the response body (a capture or a check needs it).
    keep_body: bool,
    /// The method is idempotent (RFC 9110 §9.2.2): when a reused connection turns out to be
    /// closed before any byte of the response came, the request is sent again on a new one.
    /// A POST is not: the server may have acted on it, and a load generator that books twice
    /// would change what it measures.
    retry: bool,
}

async fn plain_exchange(
    open: &mut Option<Open>,
    target: &Target,
    request: &[u8],
    how: Plain,
    connecting: &mut bool,
    tally: &mut Tally,
) -> Result<(u16, Option<Bytes>), ErrorKind> {
    loop {
        let reused = match open.as_mut() {
            Some(Open::Plain(conn)) => !conn.is_stale(),
            _ => false,
        };
        if !reused {
            *open = None;
            *connecting = true;
            let tcp = target.open_tcp().await?;
            *connecting = false;
            *open = Some(Open::Plain(H1Conn::new(tcp)));
        }
        let Some(Open::Plain(conn)) = open else { unreachable!("a plain connection was just made") };
        match conn.exchange(request, how.head, how.keep_body, tally).await {
            Ok(resp) => {
                if !resp.keep_alive {
                    *open = None;
                }
                return Ok((resp.status, resp.body));
            }
            Err(H1Error::Stale) if reused && how.retry => *open = None,
            Err(H1Error::Stale) => return Err(ErrorKind::Body),
            Err(H1Error::Kind(kind)) => return Err(kind),
        }
    }
}

fn not_sent(mut e: hyper::client::conn::TrySendError<http::Request<ReqBody>>) -> Failure {
    match e.take_message() {
        Some(req) => Failure::NotSent(Box::new(req)),
        None => Failure::Kind(ErrorKind::Body),
    }
}

/// Reads the response to its end, counting it; keeps the bytes only when asked.
async fn read(resp: http::Response<Incoming>, keep: bool) -> Result<(u16, Option<Bytes>), Failure> {
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut kept = keep.then(BytesMut::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Failure::Kind(ErrorKind::Body))?;
        if let (Some(buf), Some(data)) = (kept.as_mut(), frame.data_ref()) {
            buf.extend_from_slice(data);
        }
    }
    Ok((status, kept.map(BytesMut::freeze)))
}

/// Polls an HTTP/1 connection future alongside `work`, in the caller's task. When the
/// connection ends first (the server closed it), `work` is finished alone: hyper then
/// resolves it with an error instead of leaving it pending.
async fn drive<F: Future>(driver: &mut Pin<Box<http1::Connection<Io, ReqBody>>>, done: &mut bool, work: F) -> F::Output {
    tokio::pin!(work);
    if !*done {
        tokio::select! {
            biased;
            out = &mut work => return out,
            _ = driver.as_mut() => *done = true,
        }
    }
    work.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers the first request of each connection and, when the second one
    /// arrives, closes the connection without an answer: the server's idle timeout racing the
    /// client's next request. Records the method of every request it read.
    async fn closes_after_one() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for answer in [true, false] {
                        let Ok(n) = s.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        let method = String::from_utf8_lossy(&buf[..n]).split(' ').next().unwrap_or_default().to_string();
                        log.lock().push(method);
                        if answer {
                            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    async fn send_twice(url: &str, method: Method) -> Vec<Result<u16, ErrorKind>> {
        let target = Arc::new(Target::new(url, HttpVersion::Http1, &[]).await.unwrap());
        let mut conn = Conn::new(target);
        let mut out = Vec::new();
        for _ in 0..2 {
            let rendered = Rendered { path_and_query: "/".into(), headers: Vec::new(), body: None };
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            out.push(conn.send(&method, rendered, false, deadline).await.result);
        }
        out
    }

    #[tokio::test]
    async fn a_get_the_server_closed_under_is_sent_again_a_post_is_not() {
        let (url, seen) = closes_after_one().await;
        assert_eq!(send_twice(&url, Method::GET).await, [Ok(200), Ok(200)], "the GET went again on a new connection");
        assert_eq!(*seen.lock(), ["GET", "GET", "GET"]);

        let (url, seen) = closes_after_one().await;
        assert_eq!(send_twice(&url, Method::POST).await, [Ok(200), Err(ErrorKind::Body)], "the POST may have been acted on");
        assert_eq!(*seen.lock(), ["POST", "POST"], "sent once each, never twice");
    }
}
