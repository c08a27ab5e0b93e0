//! The HTTP side of a virtual user: one connection it owns, reopened when the server closes it.
//!
//! This is hyper's low-level client (`hyper::client::conn`), not a pooled client: a virtual user
//! owning one connection is the model k6 and wrk use, and it keeps the per-request path short.
//! For HTTP/1.1 the connection future is polled inside the user's own task, alongside the
//! request (see [`drive`]), so a request costs no hop through a separate connection task.
//! HTTP/2 (opt-in) spawns hyper's connection task as hyper requires.

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
use tokio::time::Instant;

use super::EngineError;
use super::io::{ByteCounters, Counting, Stream};
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
        Ok(Target { https, http2, authority, host_header, addrs, base_path, tls, ws_tls })
    }

    /// `ws://` or `wss://` URI of a WebSocket path.
    pub fn ws_uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let scheme = if self.https { "wss://" } else { "ws://" };
        Ok(Uri::try_from(format!("{scheme}{}{}{path_and_query}", self.authority, self.base_path))?)
    }

    /// A new connection to the target: TCP, then TLS for https (negotiating HTTP/2 only when
    /// `http2`).
    pub async fn open_stream(&self, http2: bool) -> Result<Stream, ErrorKind> {
        let mut tcp = None;
        for addr in &self.addrs {
            if let Ok(s) = TcpStream::connect(addr).await {
                tcp = Some(s);
                break;
            }
        }
        let tcp = tcp.ok_or(ErrorKind::Connect)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((connector, name)) => {
                let connector = if http2 { connector } else { self.ws_tls.as_ref().unwrap_or(connector) };
                let tls = connector.connect(name.clone(), tcp).await.map_err(|_| ErrorKind::Connect)?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
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
    H1 { sender: http1::SendRequest<ReqBody>, driver: Pin<Box<http1::Connection<Io, ReqBody>>>, done: bool },
    H2 { sender: http2::SendRequest<ReqBody>, task: tokio::task::JoinHandle<()> },
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
}

enum Failure {
    Kind(ErrorKind),
    /// The reused connection was closed before the request went out: safe to retry once.
    NotSent(Box<http::Request<ReqBody>>),
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, open: None, counters: Arc::new(ByteCounters::default()) }
    }

    /// Sends one request and reads the whole response body before `deadline`. One timer
    /// covers the whole exchange; when it fires while connecting, the failure is `connect`.
    pub async fn send(&mut self, method: &Method, rendered: Rendered, keep_body: bool, deadline: Instant) -> Exchange {
        let (sent0, recv0) = self.counters.snapshot();
        let mut exchange = Exchange { result: Err(ErrorKind::Body), body: None, bytes_sent: 0, bytes_received: 0 };
        match self.build(method, rendered) {
            Ok(req) => {
                let mut connecting = false;
                let outcome = tokio::time::timeout_at(deadline, self.send_built(req, keep_body, &mut connecting))
                    .await
                    .unwrap_or(Err(if connecting { ErrorKind::Connect } else { ErrorKind::Timeout }));
                match outcome {
                    Ok((status, body)) => {
                        exchange.result = Ok(status);
                        exchange.body = body;
                    }
                    Err(kind) => {
                        // The connection's state is unknown after a failure: start afresh.
                        self.open = None;
                        exchange.result = Err(kind);
                    }
                }
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
