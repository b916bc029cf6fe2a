//! The benchmark's HTTP server: lean, on 127.0.0.1, with configurable latency and
//! body size, and counters that verify connection reuse and rate limits from the
//! server's side. Run: `cargo run --release --example bench_server [PORT]`; it
//! prints `http://127.0.0.1:PORT`, then `https://127.0.0.1:PORT2` (the same routes
//! over TLS with a self-signed certificate, HTTP/2 or HTTP/1.1 by ALPN), and
//! then `https://127.0.0.1:PORT3` (the same over TLS, HTTP/1.1 only), and
//! serves until killed. The TLS listeners answer any server name (SNI).
//!
//! GET /b/{size}?delay=MS       `size` bytes of binary data after `delay` ms
//! GET /h/{id}?size=N&delay=MS  an HTML page of about N bytes with a <title>
//! GET /stats                   {"connections": .., "requests": ..}
//! GET /arrivals                arrival times (µs) of requests made with `log=1`
//! GET /limited/{n}?i=..       16 bytes, or 429 (no Retry-After) above n requests
//!                              in any sliding second, counted over every /limited
//! GET /limited-log             [[µs, status], ...] of the /limited requests
//! GET /reset                   clear the counters, arrivals and the limiter

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;

struct Counters {
    timer: PreciseTimer,
    started: Instant,
    connections: AtomicU64,
    requests: AtomicU64,
    arrivals: Mutex<Vec<u64>>,
    limiter: Mutex<Limiter>,
    data: Bytes,
}

/// `/limited`: the accepted starts of the last second, and every answer.
#[derive(Default)]
struct Limiter {
    window: trawl::demo::SlidingWindow,
    /// (µs since start, status) of each request.
    log: Vec<(u64, u16)>,
}

type Shared = State<Arc<Counters>>;
type Params = Query<HashMap<String, String>>;

async fn arrive(c: &Counters, q: &Params) {
    c.requests.fetch_add(1, Ordering::Relaxed);
    if q.contains_key("log") {
        let at = c.started.elapsed().as_micros() as u64;
        c.arrivals.lock().unwrap().push(at);
    }
    if let Some(ms) = q.get("delay").and_then(|v| v.parse::<u64>().ok()) {
        c.timer.sleep(Duration::from_millis(ms)).await;
    }
}

/// Delays accurate to well under a millisecond. tokio's timer works in 1 ms
/// ticks and fired `delay=100` after 100.6-101.8 ms (curl's time to first
/// byte), which would count against every client in the latency scenarios,
/// whose ideal is N x delay / concurrency. One thread keeps the deadlines and
/// waits for the next with a futex timeout (`recv_timeout`).
struct PreciseTimer {
    tx: Mutex<std::sync::mpsc::Sender<Due>>,
}

struct Due {
    at: Instant,
    done: tokio::sync::oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed, so the max-heap pops the earliest deadline.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

impl PreciseTimer {
    fn start() -> PreciseTimer {
        use std::sync::mpsc::RecvTimeoutError;
        let (tx, rx) = std::sync::mpsc::channel::<Due>();
        std::thread::spawn(move || {
            let mut heap = std::collections::BinaryHeap::new();
            loop {
                let now = Instant::now();
                while heap.peek().is_some_and(|d: &Due| d.at <= now) {
                    let _ = heap.pop().expect("peeked").done.send(());
                }
                let next = match heap.peek() {
                    Some(d) => rx.recv_timeout(d.at - now),
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(due) => heap.push(due),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        PreciseTimer { tx: Mutex::new(tx) }
    }

    async fn sleep(&self, d: Duration) {
        let (done, fired) = tokio::sync::oneshot::channel();
        let due = Due {
            at: Instant::now() + d,
            done,
        };
        if self.tx.lock().unwrap().send(due).is_ok() {
            let _ = fired.await;
        }
    }
}

async fn bytes(State(c): Shared, Path(size): Path<usize>, q: Params) -> Response {
    arrive(&c, &q).await;
    trawl::demo::binary_response(&c.data, size)
}

async fn html(State(c): Shared, Path(id): Path<u64>, q: Params) -> Response {
    arrive(&c, &q).await;
    let size: usize = q
        .get("size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10 * 1024);
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Benchmark page {id} &amp; friends</title></head><body>"
    );
    while page.len() + 14 < size {
        page.push_str("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n");
    }
    page.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// A sliding-window limit, as APIs enforce one without publishing it.
async fn limited(State(c): Shared, Path(per_second): Path<usize>) -> Response {
    c.requests.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let status = {
        let mut guard = c.limiter.lock().unwrap();
        let Limiter { window, log } = &mut *guard;
        let status = if window.admit(now, per_second) {
            200
        } else {
            429
        };
        log.push((c.started.elapsed().as_micros() as u64, status));
        status
    };
    match status {
        200 => trawl::demo::binary_response(&c.data, 16),
        _ => (axum::http::StatusCode::TOO_MANY_REQUESTS, "slow down\n").into_response(),
    }
}

async fn limited_log(State(c): Shared) -> String {
    let guard = c.limiter.lock().unwrap();
    let items: Vec<String> = guard
        .log
        .iter()
        .map(|(t, s)| format!("[{t},{s}]"))
        .collect();
    format!("[{}]\n", items.join(","))
}

async fn stats(State(c): Shared) -> String {
    format!(
        "{{\"connections\": {}, \"requests\": {}}}\n",
        c.connections.load(Ordering::Relaxed),
        c.requests.load(Ordering::Relaxed)
    )
}

async fn arrivals(State(c): Shared) -> String {
    let list = c.arrivals.lock().unwrap();
    let items: Vec<String> = list.iter().map(u64::to_string).collect();
    format!("[{}]\n", items.join(","))
}

async fn reset(State(c): Shared) -> &'static str {
    c.connections.store(0, Ordering::Relaxed);
    c.requests.store(0, Ordering::Relaxed);
    c.arrivals.lock().unwrap().clear();
    *c.limiter.lock().unwrap() = Default::default();
    "reset\n"
}

#[tokio::main(worker_threads = 2)]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let counters = Arc::new(Counters {
        timer: PreciseTimer::start(),
        started: Instant::now(),
        connections: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        arrivals: Mutex::new(Vec::new()),
        limiter: Mutex::default(),
        data: trawl::demo::noise(4 << 20),
    });
    let app = Router::new()
        .route("/b/{size}", get(bytes))
        .route("/h/{id}", get(html))
        .route("/stats", get(stats))
        .route("/arrivals", get(arrivals))
        .route("/limited/{n}", get(limited))
        .route("/limited-log", get(limited_log))
        .route("/reset", get(reset))
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("http://{}", listener.local_addr().expect("address"));
    // HTTP/2 or HTTP/1.1 by ALPN, then HTTP/1.1 only; printed in that order.
    let alpn_sets: [&'static [&'static [u8]]; 2] = [&[b"h2", b"http/1.1"], &[b"http/1.1"]];
    for alpn in alpn_sets {
        let tls = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        println!("https://{}", tls.local_addr().expect("address"));
        tokio::spawn(serve_tls(tls, app.clone(), counters.clone(), alpn));
    }
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        counters.connections.fetch_add(1, Ordering::Relaxed);
    });
    axum::serve(listener, app).await.expect("serve");
}

/// The same routes over TLS, offering the ALPN protocols `alpn`.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    counters: Arc<Counters>,
    alpn: &'static [&'static [u8]],
) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
        cert.signing_key.serialize_der().into(),
    );
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("tls config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}
