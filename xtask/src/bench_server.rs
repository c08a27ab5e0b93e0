//! `cargo xtask bench-server` (hidden): the trivial HTTP server `bench-engine` drives. One
//! thread, HTTP/1.1 keep-alive, a fixed 13-byte body: the cheapest response hyper can give,
//! so that the load generator, not the server, is what a benchmark run measures as far as
//! one core allows. Prints `listening <addr>` on stdout once it accepts connections, and
//! stops when its standard input closes (its parent went away) or on a signal.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"Hello, World!"))))
}

/// Runs the server on a single-threaded runtime until stdin closes.
pub fn run(listen: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening {}", listener.local_addr()?);
        let stdin_closed = async {
            let mut buf = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        tokio::pin!(stdin_closed);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = &mut stdin_closed => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(hello)).await;
            });
        }
    })
}
