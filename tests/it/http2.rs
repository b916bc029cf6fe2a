//! HTTP/2: negotiated by ALPN where the server offers it, and requests to one host
//! multiplexed as concurrent streams over few connections.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{assert_one_per_index, lines, run, self_signed_tls};

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
    /// Most requests in flight at once on any one connection.
    max_streams: AtomicUsize,
}

/// An HTTPS server that speaks only HTTP/2; each response takes 20 ms so that
/// concurrent requests overlap.
async fn h2_server() -> (u16, Arc<Counters>) {
    let acceptor = self_signed_tls(&[b"h2"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, c) = (acceptor.clone(), c.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                c.connections.fetch_add(1, Ordering::Relaxed);
                let streams = Arc::new(AtomicUsize::new(0));
                let service = hyper::service::service_fn(move |_req| {
                    let (c, streams) = (c.clone(), streams.clone());
                    async move {
                        c.requests.fetch_add(1, Ordering::Relaxed);
                        let now = streams.fetch_add(1, Ordering::Relaxed) + 1;
                        c.max_streams.fetch_max(now, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        streams.fetch_sub(1, Ordering::Relaxed);
                        Ok::<_, Infallible>(hyper::Response::new("ok\n".to_owned()))
                    }
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    (port, counters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_and_requests_share_connections() {
    let (port, counters) = h2_server().await;
    let n = 300;
    let urls = (0..n).map(|i| format!("https://127.0.0.1:{port}/item/{i}"));
    let run = run(&["--insecure", "-c", "50"], lines(urls)).await;
    assert_one_per_index(&run.records, n);
    for r in &run.records {
        assert!(r.ok, "{r:?}");
        assert_eq!(r.http_version.as_deref(), Some("2"), "{r:?}");
    }
    let connections = counters.connections.load(Ordering::Relaxed);
    let max_streams = counters.max_streams.load(Ordering::Relaxed);
    assert_eq!(counters.requests.load(Ordering::Relaxed), n as usize);
    assert!(max_streams > 1, "no two requests shared a connection");
    // Regression: every one of the first 50 requests used to open its own
    // connection (and TLS handshake) before any of them knew the server spoke h2.
    assert!(
        connections <= 2,
        "{connections} connections for {n} requests at -c 50"
    );
    eprintln!("{n} requests over {connections} connections, up to {max_streams} streams on one");
}
