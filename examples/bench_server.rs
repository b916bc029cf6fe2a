//! The benchmark's HTTP server: lean, on 127.0.0.1, with configurable latency and
//! body size, and counters that verify connection reuse and rate limits from the
//! server's side. Run: `cargo run --release --example bench_server [PORT]`; it
//! prints `http://127.0.0.1:PORT` and serves until killed.
//!
//! GET /b/{size}?delay=MS       `size` bytes of binary data after `delay` ms
//! GET /h/{id}?size=N&delay=MS  an HTML page of about N bytes with a <title>
//! GET /stats                   {"connections": .., "requests": ..}
//! GET /arrivals                arrival times (µs) of requests made with `log=1`
//! GET /reset                   clear the counters and arrivals

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
    started: Instant,
    connections: AtomicU64,
    requests: AtomicU64,
    arrivals: Mutex<Vec<u64>>,
    data: Bytes,
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
        tokio::time::sleep(Duration::from_millis(ms)).await;
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
    "reset\n"
}

#[tokio::main(worker_threads = 2)]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let counters = Arc::new(Counters {
        started: Instant::now(),
        connections: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        arrivals: Mutex::new(Vec::new()),
        data: trawl::demo::noise(4 << 20),
    });
    let app = Router::new()
        .route("/b/{size}", get(bytes))
        .route("/h/{id}", get(html))
        .route("/stats", get(stats))
        .route("/arrivals", get(arrivals))
        .route("/reset", get(reset))
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("http://{}", listener.local_addr().expect("address"));
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        counters.connections.fetch_add(1, Ordering::Relaxed);
    });
    axum::serve(listener, app).await.expect("serve");
}
