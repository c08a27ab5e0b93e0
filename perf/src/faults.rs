//! A TCP fault proxy: sits between the app and PostgreSQL or Redis and, on command, delays,
//! loses, resets or blackholes the traffic. Chaos suites switch its [`Fault`] at planned
//! times (`{ at = "10s", latency = "postgres", delay = "100ms", jitter = "20ms" }`).
//!
//! It also models the network of production when the plan asks for it (`[environment]
//! link_latency`, a [`Link`]): every chunk, in both directions, is held `latency` ± a uniform
//! `jitter` for as long as the proxy runs, whatever the fault. A fault comes on top of the
//! link: a `Latency` fault adds its delay to the link's, `None` leaves the link alone.
//!
//! Written by hand (about 300 lines of tokio): Toxiproxy is neither in Debian nor on the
//! registries CI machines reach, and its Rust port (`noxious`, last released in 2021) is a
//! separate server driven over HTTP that has no loss or blackhole fault. An in-process proxy
//! also needs no extra process to start, watch and clean up.
//!
//! What each fault does, while it is set:
//! - [`Fault::Latency`]: every chunk, in both directions, is held for `delay` ± a uniform
//!   `jitter` before it is passed on. A queue per direction keeps the order of the bytes and
//!   does not add the delays of back-to-back chunks together. Held chunks are woken by a
//!   thread of the proxy's own (`util::pacer`) rather than tokio's timer, which counts whole
//!   milliseconds: a delay comes out late by the kernel's timer slack (50 µs by default) and
//!   the time to wake a thread and a task, not by up to a millisecond.
//! - [`Fault::Loss`]: each new connection, and each chunk on an open one, is lost with
//!   probability `rate`. TCP cannot lose bytes and carry on, so a loss resets the connection
//!   (both sides), as a real network's lost segments do once retransmission gives up.
//! - [`Fault::Reset`]: every open connection is reset at once (RST to both sides) and every new
//!   one as soon as it is accepted.
//! - [`Fault::Blackhole`]: connections stay open, bytes are read and thrown away, nothing
//!   answers; new connections are accepted and treated the same. Clearing the fault resets the
//!   connections that lost bytes (their streams are broken), so clients reconnect.
//!
//! [`Fault::None`] passes bytes through unchanged. Dropping the proxy closes the listener and
//! resets every connection it still holds.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::plan::{Fault, Link};
use crate::util::pacer::Pacer;

/// Counters since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted from clients.
    pub accepted: u64,
    /// Connections reset by a fault (reset, loss, the end of a blackhole).
    pub reset: u64,
    /// Bytes thrown away by a blackhole.
    pub blackholed_bytes: u64,
    /// Connections closed because the upstream could not be reached.
    pub upstream_failures: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    reset: AtomicU64,
    blackholed_bytes: AtomicU64,
    upstream_failures: AtomicU64,
}

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    link: Option<Link>,
    counters: Arc<Counters>,
    stop: CancellationToken,
}

/// How long the proxy waits for the upstream to accept a connection before giving up on it
/// (and resetting the client's).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Chunks held per direction under latency before reading pauses.
const DELAY_LINE: usize = 1024;

impl FaultProxy {
    /// Listens on `listen` (port 0 picks a free one) and forwards to `upstream` as it gets
    /// the bytes (until a fault says otherwise).
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        FaultProxy::start_with_link(listen, upstream, None).await
    }

    /// [`FaultProxy::start`], every chunk held `link`'s latency each way from the first
    /// connection on (none: passed on as it comes).
    pub async fn start_with_link(listen: SocketAddr, upstream: SocketAddr, link: Option<Link>) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (fault, _) = watch::channel(Fault::None);
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let ways = Arc::new(Ways { link, pacer: Pacer::start("perf-proxy-pacer")? });
        tokio::spawn(accept_loop(listener, upstream, fault.clone(), counters.clone(), ways, stop.clone()));
        Ok(FaultProxy { addr, fault, link, counters, stop })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The link it models under every fault, if any.
    pub fn link(&self) -> Option<Link> {
        self.link
    }

    /// Replaces the current fault; open connections see the change at once.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            blackholed_bytes: c.blackholed_bytes.load(Ordering::Relaxed),
            upstream_failures: c.upstream_failures.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).field("link", &self.link).field("fault", &self.fault()).finish()
    }
}

fn lost(rate: f64) -> bool {
    rate > 0.0 && rand::rng().random::<f64>() < rate
}

/// What holds chunks on their way, the same for every connection of a proxy: the link it
/// models, and the thread that wakes held chunks (stopped when the last connection is gone).
struct Ways {
    link: Option<Link>,
    pacer: Pacer,
}

impl Ways {
    /// How long the link holds a chunk: its latency ± its jitter, or nothing.
    fn link_delay(&self) -> Duration {
        self.link.map_or(Duration::ZERO, |l| jittered(l.latency, l.jitter))
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    counters: Arc<Counters>,
    ways: Arc<Ways>,
    stop: CancellationToken,
) {
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!("fault proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_nodelay(true);
        let rx = fault.subscribe();
        let conn = Connection { counters: counters.clone(), ways: ways.clone(), tainted: AtomicBool::new(false) };
        tokio::spawn(conn.serve(client, upstream, rx, stop.clone()));
    }
}

struct Connection {
    counters: Arc<Counters>,
    ways: Arc<Ways>,
    /// Bytes were thrown away (blackhole): the stream is broken once the fault ends.
    tainted: AtomicBool,
}

/// Why a connection is cut with a reset.
struct Abort;

impl Connection {
    async fn serve(self, mut client: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<Fault>, stop: CancellationToken) {
        let now = *rx.borrow_and_update();
        match now {
            Fault::Reset => return self.reset(&client, None),
            Fault::Loss { rate } if lost(rate) => return self.reset(&client, None),
            Fault::Blackhole => {
                self.tainted.store(true, Ordering::Relaxed);
                let outcome = tokio::select! {
                    _ = self.swallow(&mut client) => None,
                    a = self.watch(&mut rx) => Some(a),
                    _ = stop.cancelled() => Some(Abort),
                };
                if outcome.is_some() {
                    self.reset(&client, None);
                }
                return;
            }
            _ => {}
        }
        let mut server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
            Ok(Ok(s)) => s,
            _ => {
                self.counters.upstream_failures.fetch_add(1, Ordering::Relaxed);
                // As a refused connection looks to the client: a reset.
                let _ = client.set_zero_linger();
                return;
            }
        };
        let _ = server.set_nodelay(true);
        let outcome = {
            let (cr, cw) = client.split();
            let (sr, sw) = server.split();
            let up = self.direction(cr, sw, rx.clone());
            let down = self.direction(sr, cw, rx.clone());
            tokio::select! {
                r = async { tokio::try_join!(up, down) } => r.err(),
                a = self.watch(&mut rx) => Some(a),
                _ = stop.cancelled() => Some(Abort),
            }
        };
        if outcome.is_some() {
            self.reset(&client, Some(&server));
        }
    }

    /// Resets the client's connection (and the upstream's) instead of closing it.
    fn reset(&self, client: &TcpStream, server: Option<&TcpStream>) {
        self.counters.reset.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_zero_linger();
        if let Some(s) = server {
            let _ = s.set_zero_linger();
        }
    }

    /// Ends when the fault changes so that this connection must be cut: to `Reset`, or away
    /// from `Blackhole` after bytes were thrown away.
    async fn watch(&self, rx: &mut watch::Receiver<Fault>) -> Abort {
        loop {
            if rx.changed().await.is_err() {
                return Abort;
            }
            let now = *rx.borrow_and_update();
            if now == Fault::Reset || (self.tainted.load(Ordering::Relaxed) && now != Fault::Blackhole) {
                return Abort;
            }
        }
    }

    /// Reads and discards until the client closes.
    async fn swallow(&self, client: &mut TcpStream) {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = client.read(&mut buf).await {
            if n == 0 {
                return;
            }
            self.counters.blackholed_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// One direction: reads chunks, applies the link and the fault to each, and writes each
    /// when it is due. A chunk that is due at once and has nothing queued before it is written
    /// straight away; held chunks wait in a queue in arrival order (so the byte order holds),
    /// the first of them with a wake-up from the pacer, and reading pauses while the queue is
    /// full. Ends with `Ok` after end of file (passed on as a shutdown of the write side once
    /// the queue is empty), with `Abort` on a loss or an I/O error.
    async fn direction<R, W>(&self, mut reader: R, mut writer: W, rx: watch::Receiver<Fault>) -> Result<(), Abort>
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        // The wake-up asked for the first held chunk, kept across reads: one per chunk.
        let mut wake: Option<(Instant, oneshot::Receiver<Instant>)> = None;
        let mut buf = vec![0u8; 16 * 1024];
        let mut eof = false;
        loop {
            while held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
                let (_, chunk) = held.pop_front().expect("a held chunk");
                writer.write_all(&chunk).await.map_err(|_| Abort)?;
            }
            if eof && held.is_empty() {
                let _ = writer.shutdown().await;
                return Ok(());
            }
            match held.front() {
                Some((due, _)) if wake.as_ref().is_none_or(|(at, _)| at != due) => wake = Some((*due, self.ways.pacer.at(*due))),
                Some(_) => {}
                None => wake = None,
            }
            tokio::select! {
                biased;
                _ = async {
                    if let Some((_, done)) = wake.as_mut() {
                        let _ = done.await;
                    }
                }, if wake.is_some() => {
                    wake = None;
                }
                read = reader.read(&mut buf), if !eof && held.len() < DELAY_LINE => {
                    let n = read.map_err(|_| Abort)?;
                    if n == 0 {
                        eof = true;
                        continue;
                    }
                    let now = Instant::now();
                    let fault = *rx.borrow();
                    let due = match fault {
                        Fault::None => now + self.ways.link_delay(),
                        Fault::Latency { delay, jitter } => now + self.ways.link_delay() + jittered(delay, jitter),
                        Fault::Loss { rate } => {
                            if lost(rate) {
                                return Err(Abort);
                            }
                            now + self.ways.link_delay()
                        }
                        Fault::Reset => return Err(Abort),
                        Fault::Blackhole => {
                            self.tainted.store(true, Ordering::Relaxed);
                            self.counters.blackholed_bytes.fetch_add(n as u64, Ordering::Relaxed);
                            continue;
                        }
                    };
                    if held.is_empty() && due <= now {
                        // The common case without a link: no fault in the way. No timer, no copy.
                        writer.write_all(&buf[..n]).await.map_err(|_| Abort)?;
                    } else {
                        // Never before an earlier chunk.
                        let due = held.back().map_or(due, |(last, _)| due.max(*last));
                        held.push_back((due, buf[..n].to_vec()));
                    }
                }
            }
        }
    }
}

/// `delay` plus a uniform offset in `-jitter..=jitter`, never below zero.
fn jittered(delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let j = jitter.as_secs_f64();
    let offset = rand::rng().random_range(-j..=j);
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

#[cfg(test)]
mod tests;
