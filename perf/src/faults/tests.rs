use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Fault, FaultProxy, Link};

const LOOPBACK: &str = "127.0.0.1:0";

/// An echo server on loopback; answers every byte it reads, for as long as the test runs.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn proxy() -> FaultProxy {
    FaultProxy::start(LOOPBACK.parse().unwrap(), echo_server().await).await.unwrap()
}

/// Sends `msg` and reads the same number of bytes back, within `limit`.
async fn round_trip(s: &mut TcpStream, msg: &[u8], limit: Duration) -> std::io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    match tokio::time::timeout(limit, s.read_exact(&mut back)).await {
        Ok(r) => r.map(|_| back),
        Err(_) => Err(std::io::Error::new(ErrorKind::TimedOut, "no answer")),
    }
}

/// What the next read sees: `Ok(0)` for a clean close, the error kind for a reset.
async fn next_read(s: &mut TcpStream) -> Result<usize, ErrorKind> {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(r) => r.map_err(|e| e.kind()),
        Err(_) => Err(ErrorKind::TimedOut),
    }
}

#[tokio::test]
async fn passes_bytes_through_unchanged() {
    let p = proxy().await;
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let (sent, back) = tokio::join!(w.write_all(&msg), async {
        let mut back = vec![0u8; msg.len()];
        r.read_exact(&mut back).await.map(|_| back)
    });
    sent.unwrap();
    assert_eq!(back.unwrap(), msg);
    assert_eq!(p.stats().accepted, 1);
    assert_eq!(p.stats().reset, 0);
}

#[tokio::test]
async fn latency_delays_both_directions_and_keeps_the_byte_order() {
    let p = proxy().await;
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut s, b"warm", Duration::from_secs(1)).await.unwrap();
    p.set(Fault::Latency { delay: Duration::from_millis(60), jitter: Duration::ZERO });
    let t = Instant::now();
    round_trip(&mut s, b"slow", Duration::from_secs(5)).await.unwrap();
    // One delay on the way up, one on the way down.
    assert!(t.elapsed() >= Duration::from_millis(120), "{:?}", t.elapsed());

    // With jitter larger than the gap between chunks, bytes still arrive in order.
    p.set(Fault::Latency { delay: Duration::from_millis(20), jitter: Duration::from_millis(20) });
    let mut expected = Vec::new();
    for i in 0..50u8 {
        s.write_all(&[i; 7]).await.unwrap();
        expected.extend_from_slice(&[i; 7]);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut back = vec![0u8; expected.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back)).await.unwrap().unwrap();
    assert_eq!(back, expected);

    p.set(Fault::None);
    round_trip(&mut s, b"fast", Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn reset_cuts_open_connections_and_refuses_new_ones_until_cleared() {
    let p = proxy().await;
    let mut open = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut open, b"hi", Duration::from_secs(1)).await.unwrap();
    p.set(Fault::Reset);
    assert_eq!(next_read(&mut open).await, Err(ErrorKind::ConnectionReset));

    let mut new = TcpStream::connect(p.addr()).await.unwrap();
    assert_eq!(next_read(&mut new).await, Err(ErrorKind::ConnectionReset));
    assert!(p.stats().reset >= 2, "{:?}", p.stats());

    p.set(Fault::None);
    let mut again = TcpStream::connect(p.addr()).await.unwrap();
    assert_eq!(round_trip(&mut again, b"back", Duration::from_secs(1)).await.unwrap(), b"back");
}

#[tokio::test]
async fn loss_resets_connections_at_its_rate() {
    let p = proxy().await;
    p.set(Fault::Loss { rate: 1.0 });
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    assert_eq!(next_read(&mut s).await, Err(ErrorKind::ConnectionReset));

    // Established before the loss: the first chunk is lost, with its connection.
    p.set(Fault::None);
    let mut open = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut open, b"ok", Duration::from_secs(1)).await.unwrap();
    p.set(Fault::Loss { rate: 1.0 });
    let _ = open.write_all(b"lost").await;
    assert_eq!(next_read(&mut open).await, Err(ErrorKind::ConnectionReset));

    p.set(Fault::Loss { rate: 0.0 });
    let mut fine = TcpStream::connect(p.addr()).await.unwrap();
    for _ in 0..20 {
        round_trip(&mut fine, b"kept", Duration::from_secs(1)).await.unwrap();
    }
}

#[tokio::test]
async fn blackhole_swallows_bytes_and_resets_the_broken_streams_when_it_ends() {
    let p = proxy().await;
    let mut open = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut open, b"hi", Duration::from_secs(1)).await.unwrap();
    p.set(Fault::Blackhole);
    let err = round_trip(&mut open, b"anyone?", Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let mut new = TcpStream::connect(p.addr()).await.unwrap();
    let err = round_trip(&mut new, b"hello?", Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(p.stats().blackholed_bytes >= 13, "{:?}", p.stats());

    p.set(Fault::None);
    assert_eq!(next_read(&mut open).await, Err(ErrorKind::ConnectionReset));
    assert_eq!(next_read(&mut new).await, Err(ErrorKind::ConnectionReset));
    let mut again = TcpStream::connect(p.addr()).await.unwrap();
    assert_eq!(round_trip(&mut again, b"back", Duration::from_secs(1)).await.unwrap(), b"back");
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() {
    // A port that was free a moment ago: nothing listens there.
    let gone = TcpListener::bind(LOOPBACK).await.unwrap().local_addr().unwrap();
    let p = FaultProxy::start(LOOPBACK.parse().unwrap(), gone).await.unwrap();
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    assert_eq!(next_read(&mut s).await, Err(ErrorKind::ConnectionReset));
    assert_eq!(p.stats().upstream_failures, 1);
}

#[tokio::test]
async fn dropping_the_proxy_resets_what_it_holds() {
    let p = proxy().await;
    let mut open = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut open, b"hi", Duration::from_secs(1)).await.unwrap();
    let addr = p.addr();
    drop(p);
    assert_eq!(next_read(&mut open).await, Err(ErrorKind::ConnectionReset));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

/// An upstream on loopback that answers each 8-byte message with itself and reports, per
/// message, when it arrived and when the answer left.
async fn timed_echo() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<(Instant, Instant)>) {
    let listener = TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut msg = [0u8; 8];
                while s.read_exact(&mut msg).await.is_ok() {
                    let arrived = Instant::now();
                    let answered = Instant::now();
                    if s.write_all(&msg).await.is_err() {
                        break;
                    }
                    let _ = tx.send((arrived, answered));
                }
            });
        }
    });
    (addr, rx)
}

/// How long each of `n` messages took on its way up (client → upstream) and down.
async fn one_way_times(
    s: &mut TcpStream,
    times: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, Instant)>,
    n: u8,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..n {
        let sent = Instant::now();
        s.write_all(&[i; 8]).await.unwrap();
        let mut back = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back)).await.expect("an answer within 5 s").unwrap();
        let got = Instant::now();
        assert_eq!(back, [i; 8]);
        let (arrived, answered) = times.recv().await.unwrap();
        up.push(arrived - sent);
        down.push(got - answered);
    }
    (up, down)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn a_link_holds_every_chunk_its_latency_each_way_and_faults_come_on_top() {
    let link = Link { latency: Duration::from_micros(500), jitter: Duration::ZERO };
    let (upstream, mut times) = timed_echo().await;
    let p = FaultProxy::start_with_link(LOOPBACK.parse().unwrap(), upstream, Some(link)).await.unwrap();
    assert_eq!(p.link(), Some(link));
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    s.set_nodelay(true).unwrap();

    // Each way, every message is held at least the link's latency, and not much more: the
    // pacer wakes held chunks within a fraction of a millisecond, not at tokio's next one.
    let (up, down) = one_way_times(&mut s, &mut times, 40).await;
    for (way, d) in [("up", up), ("down", down)] {
        assert!(d.iter().all(|t| *t >= link.latency), "{way}: every message held 0.5 ms at least: {d:?}");
        let m = median(d);
        assert!(m < link.latency + Duration::from_millis(2), "{way}: median {m:?}");
    }

    // A chaos suite's latency adds to the link's.
    p.set(Fault::Latency { delay: Duration::from_millis(20), jitter: Duration::ZERO });
    let (up, down) = one_way_times(&mut s, &mut times, 3).await;
    for (way, d) in [("up", up), ("down", down)] {
        assert!(d.iter().all(|t| *t >= Duration::from_micros(20_500)), "{way}: the fault on top of the link: {d:?}");
    }

    // Healed: the link stays, the fault is gone.
    p.set(Fault::None);
    let (up, down) = one_way_times(&mut s, &mut times, 10).await;
    for (way, d) in [("up", up), ("down", down)] {
        assert!(d.iter().all(|t| *t >= link.latency), "{way}: the link outlives the fault: {d:?}");
        let m = median(d);
        assert!(m < Duration::from_millis(20), "{way}: the fault's delay is gone: median {m:?}");
    }
    assert_eq!(p.stats().reset, 0);
}

#[tokio::test]
async fn a_links_jitter_spreads_each_chunk_around_its_latency_in_order() {
    let link = Link { latency: Duration::from_millis(1), jitter: Duration::from_micros(800) };
    let p = FaultProxy::start_with_link(LOOPBACK.parse().unwrap(), echo_server().await, Some(link)).await.unwrap();
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    // Back-to-back chunks whose delays differ by more than the gap between them still arrive
    // in order, and no round trip is shorter than twice the smallest delay.
    let mut expected = Vec::new();
    let t = Instant::now();
    for i in 0..50u8 {
        s.write_all(&[i; 7]).await.unwrap();
        expected.extend_from_slice(&[i; 7]);
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let mut back = vec![0u8; expected.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back)).await.unwrap().unwrap();
    assert_eq!(back, expected);
    assert!(t.elapsed() >= Duration::from_micros(400), "{:?}", t.elapsed());
}

#[test]
fn faults_describe_themselves_for_the_timeline() {
    assert_eq!(Fault::Latency { delay: Duration::from_millis(100), jitter: Duration::from_millis(20) }.describe(), "latency 100ms ± 20ms");
    assert_eq!(Fault::Latency { delay: Duration::from_millis(100), jitter: Duration::ZERO }.describe(), "latency 100ms");
    assert_eq!(Fault::Loss { rate: 0.3 }.describe(), "loss 30%");
    assert_eq!(Fault::Loss { rate: 0.125 }.describe(), "loss 12.5%");
    assert_eq!(Fault::Blackhole.describe(), "blackhole");
}
