//! HTTP/2 (opt-in) and https: a local server speaking HTTP/1.1 and HTTP/2, in the clear
//! (HTTP/2 with prior knowledge) and over TLS (ALPN) with a self-signed certificate for
//! 127.0.0.1 that the run trusts through `RunOptions::tls_roots`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine_support::{compile, endpoint, run_with};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use perf::engine::{ErrorKind, ProgressMode, RunOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CERT: &[u8] = include_bytes!("engine_support/test-cert.pem");
const KEY: &[u8] = include_bytes!("engine_support/test-key.pem");

#[derive(Default)]
struct Versions {
    h1: AtomicU64,
    h2: AtomicU64,
}

/// Serves `/` on 127.0.0.1:0, counting requests by HTTP version; with TLS when `tls`.
async fn serve(tls: bool) -> (String, Arc<Versions>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let versions = Arc::new(Versions::default());
    let acceptor = tls.then(|| {
        let cert = CertificateDer::from_pem_slice(CERT).unwrap();
        let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let v = versions.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (v, acceptor) = (v.clone(), acceptor.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let v = v.clone();
                    async move {
                        let counter = if req.version() == hyper::Version::HTTP_2 { &v.h2 } else { &v.h1 };
                        counter.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"hi"))))
                    }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(a) => {
                        if let Ok(stream) = a.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    let scheme = if tls { "https" } else { "http" };
    (format!("{scheme}://127.0.0.1:{}", addr.port()), versions, task)
}

fn plan(http: &str) -> perf::plan::Compiled {
    compile(&format!(
        r#"
[defaults]
http = "{http}"
[requests.hello]
path = "/"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-vus"
vus = 2
duration = "700ms"
request = "hello"
"#
    ))
}

fn options(url: &str, trust: bool) -> RunOptions {
    let mut opts = RunOptions::new(url);
    opts.progress = ProgressMode::Off;
    if trust {
        opts.tls_roots = vec![CertificateDer::from_pem_slice(CERT).unwrap()];
    }
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_over_tls_and_in_the_clear() {
    for (tls, http) in [(true, "http1"), (true, "http2"), (false, "http2")] {
        let (url, versions, task) = serve(tls).await;
        let r = run_with(&plan(http), options(&url, true), Duration::from_secs(20)).await;
        task.abort();
        let e = endpoint(&r, "hello");
        assert!(e.requests > 20, "{url} {http}: {} requests", e.requests);
        assert_eq!(e.errors(), 0, "{url} {http}: {:?}", e.errors_by_kind);
        let (h1, h2) = (versions.h1.load(Ordering::Relaxed), versions.h2.load(Ordering::Relaxed));
        if http == "http2" {
            assert_eq!(h1, 0, "{url}");
            assert!(h2 >= e.requests, "{url}: {h2} HTTP/2 requests seen");
        } else {
            assert_eq!(h2, 0, "{url}");
            assert!(h1 >= e.requests, "{url}: {h1} HTTP/1.1 requests seen");
        }
        // At least a frame header (HTTP/2) or a request line per request went over the wire.
        assert!(e.bytes_sent >= e.requests * 9, "{url} {http}: {} bytes sent", e.bytes_sent);
        assert!(e.bytes_received >= e.requests * 9, "{url} {http}: {} bytes received", e.bytes_received);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_connect_error() {
    let (url, versions, task) = serve(true).await;
    let r = run_with(&plan("http1"), options(&url, false), Duration::from_secs(20)).await;
    task.abort();
    let e = endpoint(&r, "hello");
    assert!(e.requests > 0);
    assert_eq!(e.errors_by_kind.get(&ErrorKind::Connect), Some(&e.requests));
    assert_eq!(versions.h1.load(Ordering::Relaxed), 0);
}
