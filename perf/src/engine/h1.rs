//! Plain `http://` with HTTP/1.1: one keep-alive exchange at a time over the user's own
//! `TcpStream`, without hyper's dispatcher.
//!
//! A virtual user sends one request and reads its whole response before the next, so the
//! client side of HTTP/1.1 it needs is small: write the request's bytes (built by the caller
//! into a reused buffer), parse the response head with `httparse` (the parser hyper itself
//! uses), and find the end of the body by the message framing of RFC 9112 section 6.3. The body
//! framing (content length, chunked with `httparse::parse_chunk_size` for the size lines, or
//! up to the close) and the `Connection` token checks are written here by hand: no maintained
//! crate offers them apart from a whole client, and that client (hyper's `SendRequest` and
//! connection) is what cost a channel, a oneshot, a header map and a URI per request.
//!
//! HTTPS and HTTP/2 keep going through hyper ([`super::client`]).

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stats::ErrorKind;

/// Headers a response head may carry (hyper's default limit is 100).
const MAX_HEADERS: usize = 100;
/// Headers parsed on the stack first; a head with more is parsed again with room for all.
const FEW_HEADERS: usize = 32;
/// Longest response head accepted (hyper's default buffer limit is about 400 KiB; heads are
/// rarely above a few KiB).
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line or trailer field accepted.
const MAX_LINE: usize = 8 * 1024;
/// Free room kept in the read buffer before each read. Reads shorter than the room tell
/// tokio the socket is drained, so the next request does not cost an extra `recv`.
const READ_ROOM: usize = 16 * 1024;

/// Bytes moved by one exchange, kept by the caller so that they are known even when the
/// exchange is cut by its deadline.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub sent: u64,
    pub received: u64,
}

/// One response, read to its end.
pub(crate) struct Response {
    pub status: u16,
    pub body: Option<Bytes>,
    /// False when the connection cannot carry another request (`Connection: close`, an
    /// HTTP/1.0 response without keep-alive, a body delimited by the close, a 101).
    pub keep_alive: bool,
}

pub(crate) enum H1Error {
    /// The reused connection was closed by the server before any byte of the response: it
    /// was idle and the server closed it (the keep-alive race). The request is retried once
    /// on a fresh connection, as browsers and curl do.
    Stale,
    Kind(ErrorKind),
}

/// A plain keep-alive HTTP/1.1 connection.
pub(crate) struct H1Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// Responses read on this connection.
    used: u64,
    /// An exchange started and did not finish (its future was dropped: the iteration was
    /// cut): the connection may still carry its response, so it is not reused.
    busy: bool,
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Read up to the close.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

impl H1Conn {
    pub fn new(stream: TcpStream) -> H1Conn {
        H1Conn { stream, buf: BytesMut::with_capacity(READ_ROOM * 2), used: 0, busy: false }
    }

    /// Whether the idle connection can no longer carry a request: the server closed it or
    /// sent bytes nobody asked for, or an exchange on it was abandoned. Costs no system call unless the socket became readable
    /// since the last response was read.
    pub fn is_stale(&mut self) -> bool {
        if self.busy || !self.buf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Reads more of the response into the buffer; 0 at the end of the stream.
    async fn fill(&mut self, tally: &mut Tally) -> std::io::Result<usize> {
        self.buf.reserve(READ_ROOM);
        let n = self.stream.read_buf(&mut self.buf).await?;
        tally.received += n as u64;
        Ok(n)
    }

    /// Writes `request` (head and body) and reads the response to its end. `head_request`:
    /// the method was HEAD (the response has no body whatever its headers say). The body is
    /// kept only when `keep`.
    pub async fn exchange(&mut self, request: &[u8], head_request: bool, keep: bool, tally: &mut Tally) -> Result<Response, H1Error> {
        let reused = self.used > 0;
        self.busy = true;
        // A failed write on a reused connection: the server had closed it while idle.
        let fail_early = |reused: bool| if reused { H1Error::Stale } else { H1Error::Kind(ErrorKind::Body) };
        if self.stream.write_all(request).await.is_err() {
            return Err(fail_early(reused));
        }
        tally.sent += request.len() as u64;
        let mut got_any = false;
        let head = loop {
            if !self.buf.is_empty() {
                got_any = true;
                match parse_head(&self.buf, head_request) {
                    Ok(Some((len, head))) => {
                        self.buf.advance(len);
                        // Informational responses (100 Continue, 103 Early Hints) precede the
                        // real one; 101 ends HTTP on this connection and is the answer.
                        if (100..200).contains(&head.status) && head.status != 101 {
                            continue;
                        }
                        break head;
                    }
                    Ok(None) if self.buf.len() > MAX_HEAD => return Err(H1Error::Kind(ErrorKind::Body)),
                    Ok(None) => {}
                    Err(()) => return Err(H1Error::Kind(ErrorKind::Body)),
                }
            }
            match self.fill(tally).await {
                Ok(n) if n > 0 => {}
                // Closed or reset before a byte of the response.
                _ if !got_any => return Err(fail_early(reused)),
                _ => return Err(H1Error::Kind(ErrorKind::Body)),
            }
        };
        let mut kept = keep.then(BytesMut::new);
        let mut keep_alive = head.keep_alive;
        match head.framing {
            Framing::Empty => {}
            Framing::Length(mut rest) => loop {
                let take = rest.min(self.buf.len() as u64) as usize;
                self.take(take, &mut kept);
                rest -= take as u64;
                if rest == 0 {
                    break;
                }
                self.more(tally).await?;
            },
            Framing::Chunked => self.chunked(&mut kept, tally).await?,
            Framing::Close => {
                keep_alive = false;
                loop {
                    self.take(self.buf.len(), &mut kept);
                    match self.fill(tally).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => return Err(H1Error::Kind(ErrorKind::Body)),
                    }
                }
            }
        }
        self.used += 1;
        self.busy = false;
        Ok(Response { status: head.status, body: kept.map(BytesMut::freeze), keep_alive })
    }

    /// Moves `n` buffered bytes of the body out, into `kept` when the body is kept.
    fn take(&mut self, n: usize, kept: &mut Option<BytesMut>) {
        if let Some(k) = kept {
            k.extend_from_slice(&self.buf[..n]);
        }
        self.buf.advance(n);
    }

    /// Reads more of a body that must go on: the end of the stream is an error.
    async fn more(&mut self, tally: &mut Tally) -> Result<(), H1Error> {
        match self.fill(tally).await {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(H1Error::Kind(ErrorKind::Body)),
        }
    }

    /// A chunked body, up to the end of its trailers.
    async fn chunked(&mut self, kept: &mut Option<BytesMut>, tally: &mut Tally) -> Result<(), H1Error> {
        enum State {
            Size,
            Data(u64),
            DataEnd,
            Trailer,
        }
        let bad = || H1Error::Kind(ErrorKind::Body);
        let mut state = State::Size;
        loop {
            let progressed = match state {
                State::Size => match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        state = if size == 0 { State::Trailer } else { State::Data(size) };
                        true
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() > MAX_LINE => return Err(bad()),
                    Ok(httparse::Status::Partial) => false,
                    Err(_) => return Err(bad()),
                },
                State::Data(rest) => {
                    let take = rest.min(self.buf.len() as u64) as usize;
                    self.take(take, kept);
                    state = if take as u64 == rest { State::DataEnd } else { State::Data(rest - take as u64) };
                    take > 0
                }
                State::DataEnd if self.buf.len() >= 2 => {
                    if &self.buf[..2] != b"\r\n" {
                        return Err(bad());
                    }
                    self.buf.advance(2);
                    state = State::Size;
                    true
                }
                State::DataEnd => false,
                // Trailer fields are skipped up to the empty line that ends the message.
                State::Trailer => match self.buf.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        self.buf.advance(2);
                        return Ok(());
                    }
                    Some(i) => {
                        self.buf.advance(i + 2);
                        true
                    }
                    None if self.buf.len() > MAX_LINE => return Err(bad()),
                    None => false,
                },
            };
            if !progressed {
                self.more(tally).await?;
            }
        }
    }
}

/// Parses a response head at the start of `buf`: its length and what it says, or `None`
/// when it is not complete yet.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(usize, Head)>, ()> {
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    let mut resp = httparse::Response::new(&mut few);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((len, read_head(&resp, head_request)?))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut many);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(len)) => Ok(Some((len, read_head(&resp, head_request)?))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(()),
            }
        }
        Err(_) => Err(()),
    }
}

/// Status, body framing and keep-alive of a parsed head (RFC 9112 sections 6.3 and 9.3).
fn read_head(resp: &httparse::Response<'_, '_>, head_request: bool) -> Result<Head, ()> {
    let status = resp.code.ok_or(())?;
    let mut keep_alive = resp.version == Some(1);
    let mut length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value).ok_or(())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Chunked only when it is the last coding applied.
            chunked = tokens(h.value).last().is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                    break;
                }
                if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if transfer_encoding {
        if chunked { Framing::Chunked } else { Framing::Close }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    if framing == Framing::Close || status == 101 {
        keep_alive = false;
    }
    Ok(Head { status, framing, keep_alive })
}

/// The comma-separated tokens of a header value, trimmed, empty ones left out.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(|t| t.trim_ascii()).filter(|t| !t.is_empty())
}

/// A `Content-Length` value: digits only (optional whitespace around).
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes(), false).unwrap().unwrap().1
    }

    #[test]
    fn heads_give_status_framing_and_keep_alive() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nHello");
        assert_eq!(h, Head { status: 200, framing: Framing::Length(13), keep_alive: true });
        let h = head("HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n");
        assert_eq!(h, Head { status: 201, framing: Framing::Chunked, keep_alive: false });
        let h = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h, Head { status: 200, framing: Framing::Length(0), keep_alive: true });
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h, Head { status: 200, framing: Framing::Close, keep_alive: false });
        let h = head("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        let (_, h) = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len", false), Ok(None));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\n", false).is_err());
        let many: String = (0..60).map(|i| format!("x-{i}: {i}\r\n")).collect();
        let h = head(&format!("HTTP/1.1 200 OK\r\n{many}content-length: 1\r\n\r\n"));
        assert_eq!(h.framing, Framing::Length(1));
    }

    /// Serves `responses` (raw bytes, one per request read) on one connection.
    async fn serve(responses: Vec<&'static [u8]>) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            for r in responses {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                got.push(buf[..n].to_vec());
                // Written in two parts, so that the reader sees a partial message.
                let (a, b) = r.split_at(r.len() / 2);
                s.write_all(a).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                s.write_all(b).await.unwrap();
            }
            got
        });
        (addr, task)
    }

    #[tokio::test]
    async fn exchanges_read_every_framing_and_keep_bodies_when_asked() {
        let (addr, server) = serve(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nno!",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end",
        ])
        .await;
        let mut conn = H1Conn::new(TcpStream::connect(addr).await.unwrap());
        let mut tally = Tally::default();
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let Ok(r) = conn.exchange(req, false, true, &mut tally).await else { panic!("first exchange failed") };
        assert_eq!((r.status, r.body.as_deref(), r.keep_alive), (200, Some(&b"hello"[..]), true));
        assert!(!conn.is_stale());
        let Ok(r) = conn.exchange(req, false, true, &mut tally).await else { panic!("chunked exchange failed") };
        assert_eq!((r.status, r.body.as_deref()), (200, Some(&b"abcde"[..])));
        let Ok(r) = conn.exchange(req, false, false, &mut tally).await else { panic!("404 exchange failed") };
        assert_eq!((r.status, r.body), (404, None));
        let Ok(r) = conn.exchange(req, false, true, &mut tally).await else { panic!("close-delimited exchange failed") };
        assert_eq!((r.status, r.body.as_deref(), r.keep_alive), (200, Some(&b"to the end"[..]), false));
        assert_eq!(tally.sent, 4 * req.len() as u64);
        let got = server.await.unwrap();
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|g| g == req));
    }

    #[tokio::test]
    async fn a_connection_whose_exchange_was_abandoned_is_not_reused() {
        let (addr, _server) = serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]).await;
        let mut conn = H1Conn::new(TcpStream::connect(addr).await.unwrap());
        let mut tally = Tally::default();
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        // The server answers after 5 ms: the exchange is cut before (the iteration was).
        let cut = tokio::time::timeout(std::time::Duration::from_millis(1), conn.exchange(req, false, false, &mut tally)).await;
        assert!(cut.is_err());
        assert!(conn.is_stale(), "its response may still come: the next request must not read it");
    }

    #[tokio::test]
    async fn a_reused_connection_the_server_closed_is_stale() {
        let (addr, server) = serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]).await;
        let mut conn = H1Conn::new(TcpStream::connect(addr).await.unwrap());
        let mut tally = Tally::default();
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        assert!(conn.exchange(req, false, false, &mut tally).await.is_ok());
        server.await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // Either noticed while idle, or when the request finds the connection closed.
        if !conn.is_stale() {
            assert!(matches!(conn.exchange(req, false, false, &mut tally).await, Err(H1Error::Stale)));
        }
    }
}
