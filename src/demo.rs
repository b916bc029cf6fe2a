//! `trawl demo`, and the local server behind it: realistic endpoints (fast, slow,
//! JSON, HTML, redirects, errors, flaky, rate-limited) and faults (truncated and
//! stalled bodies, a gzip bomb, resets, non-HTTP bytes, silence) on 127.0.0.1.
//! The integration tests start the same server on a random port.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::{Config, InputSpec};
use crate::progress::Progress;
use crate::{Outcome, Shutdown};

/// Counters the tests read to check politeness from the server's side.
#[derive(Default)]
pub struct Stats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicUsize,
    /// Arrival time and path of every request (bounded), for rate checks.
    arrivals: Mutex<Vec<(Instant, String)>>,
    /// Per-key hit counts for the flaky and rate-limited endpoints.
    hits: Mutex<HashMap<String, u32>>,
    /// Request headers seen by `/echo`, newest last (bounded).
    seen_headers: Mutex<Vec<HeaderMap>>,
}

const MAX_LOGGED: usize = 1 << 20;

impl Stats {
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// When requests arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(t, _)| *t)
            .collect()
    }

    /// When requests arrived, with their path and query.
    pub fn arrivals_with_paths(&self) -> Vec<(Instant, String)> {
        self.arrivals.lock().expect("stats lock").clone()
    }

    pub fn seen_headers(&self) -> Vec<HeaderMap> {
        self.seen_headers.lock().expect("stats lock").clone()
    }

    fn hit(&self, key: &str) -> u32 {
        let mut hits = self.hits.lock().expect("stats lock");
        let n = hits.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
}

/// A running server: `addr` speaks HTTP/1.1, `raw_addr` misbehaves at the TCP level.
pub struct Server {
    pub addr: SocketAddr,
    pub raw_addr: SocketAddr,
    pub stats: Arc<Stats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Server {
    /// Start on 127.0.0.1 with random ports.
    pub async fn start() -> std::io::Result<Server> {
        let stats = Arc::new(Stats::default());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router(stats.clone());
        let http = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let raw = TcpListener::bind("127.0.0.1:0").await?;
        let raw_addr = raw.local_addr()?;
        let raw_task = tokio::spawn(raw_faults(raw));
        Ok(Server {
            addr,
            raw_addr,
            stats,
            tasks: vec![http, raw_task],
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:RAWPORT{path}` on the TCP-level fault listener.
    pub fn raw_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.raw_addr)
    }
}

fn router(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/fast", get(|| async { "ok\n" }))
        .route("/slow", get(slow))
        .route("/json/{id}", get(json))
        .route("/html/{id}", get(html))
        .route("/latin1", get(latin1))
        .route("/redirect/{n}", get(redirect))
        .route("/redirect-to", get(redirect_to))
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route("/status/{code}", get(status))
        .route("/flaky/{key}", get(flaky))
        .route("/retry-after/{key}", get(retry_after))
        .route("/bytes/{n}", get(bytes))
        .route("/gzip-bomb", get(gzip_bomb))
        .route("/truncated", get(truncated))
        .route("/stall", get(stall))
        .route("/echo", any(echo))
        .layer(middleware::from_fn_with_state(stats.clone(), observe))
        .with_state(stats)
}

type Params = Query<HashMap<String, String>>;

fn param<T: std::str::FromStr>(q: &Params, name: &str, default: T) -> T {
    q.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Counts requests and in-flight requests; honours `?delay=MS` on every endpoint.
async fn observe(State(stats): State<Arc<Stats>>, req: Request, next: Next) -> Response {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    {
        let mut arrivals = stats.arrivals.lock().expect("stats lock");
        if arrivals.len() < MAX_LOGGED {
            arrivals.push((Instant::now(), req.uri().to_string()));
        }
    }
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("delay=")))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = next.run(req).await;
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn slow(q: Params) -> &'static str {
    if !q.contains_key("delay") {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    "slow but fine\n"
}

async fn json(Path(id): Path<u64>) -> impl IntoResponse {
    Json(serde_json::json!({
        "id": id,
        "name": format!("item {id}"),
        "price": (id * 37 % 1000) as f64 / 10.0,
        "tags": ["demo", if id % 2 == 0 { "even" } else { "odd" }],
    }))
}

async fn html(Path(id): Path<u64>, q: Params) -> impl IntoResponse {
    use std::fmt::Write as _;
    let size: usize = param(&q, "size", 2048);
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Page {id} &mdash; Caf&eacute; &amp; Cr&egrave;me</title></head><body><h1>Page {id}</h1>"
    );
    while page.len() < size {
        let _ = write!(
            page,
            "<p class=\"row\">Row of text for page {id}, <a href=\"/html/{}\">next</a>.</p>",
            id + 1
        );
    }
    page.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page)
}

async fn latin1() -> impl IntoResponse {
    let body: &'static [u8] =
        b"<html><head><title>Caf\xe9 &amp; Cr\xe8me</title></head><body>\xe9t\xe9</body></html>";
    (
        [(header::CONTENT_TYPE, "text/html; charset=iso-8859-1")],
        body,
    )
}

async fn redirect(Path(n): Path<u32>) -> Response {
    match n {
        0 => "redirects done\n".into_response(),
        n => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/redirect/{}", n - 1))],
        )
            .into_response(),
    }
}

async fn redirect_to(q: Params) -> Response {
    let to = q.get("url").cloned().unwrap_or_else(|| "/fast".into());
    let code = StatusCode::from_u16(param(&q, "code", 302)).unwrap_or(StatusCode::FOUND);
    (code, [(header::LOCATION, to)]).into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, format!("status {code}\n")).into_response()
}

/// Fails `?fail=N` times (503, or `?code=`) per key, then answers 200.
async fn flaky(State(stats): State<Arc<Stats>>, Path(key): Path<String>, q: Params) -> Response {
    let fail: u32 = param(&q, "fail", 2);
    let code =
        StatusCode::from_u16(param(&q, "code", 503)).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if stats.hit(&format!("flaky/{key}")) <= fail {
        return (code, "try again\n").into_response();
    }
    "recovered\n".into_response()
}

/// Answers 429 with `Retry-After: ?secs=` for the first `?times=` hits per key.
async fn retry_after(
    State(stats): State<Arc<Stats>>,
    Path(key): Path<String>,
    q: Params,
) -> Response {
    let secs: u64 = param(&q, "secs", 1);
    let times: u32 = param(&q, "times", 1);
    if stats.hit(&format!("retry-after/{key}")) <= times {
        let value = HeaderValue::from_str(&secs.to_string()).expect("digits");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, value)],
            "slow down\n",
        )
            .into_response();
    }
    "thanks for waiting\n".into_response()
}

/// `len` bytes of deterministic binary noise (xorshift).
pub fn noise(len: usize) -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Bytes::from(data)
}

const CHUNK: usize = 64 * 1024;

/// An `application/octet-stream` response of `n` bytes from `data` (longer than
/// 64 KiB): one buffer when `data` is long enough, else streamed in 64 KiB chunks.
pub fn binary_response(data: &Bytes, n: usize) -> Response {
    assert!(data.len() > CHUNK, "data must be longer than one chunk");
    let mut response = if n <= data.len() {
        Body::from(data.slice(0..n)).into_response()
    } else {
        let data = data.clone();
        let chunks = (0..n).step_by(CHUNK).map(move |at| {
            let len = (n - at).min(CHUNK);
            let start = at % (data.len() - CHUNK);
            Ok::<_, std::io::Error>(data.slice(start..start + len))
        });
        Body::from_stream(futures_util::stream::iter(chunks)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    response
}

/// `N` bytes of binary noise.
async fn bytes(Path(n): Path<usize>) -> Response {
    static NOISE: OnceLock<Bytes> = OnceLock::new();
    binary_response(NOISE.get_or_init(|| noise(1 << 20)), n)
}

/// 64 MiB of zeros, gzip-compressed to about 64 KiB.
async fn gzip_bomb() -> Response {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    let bomb = BOMB
        .get_or_init(|| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..64 {
                gz.write_all(&zeros).expect("in-memory write");
            }
            Bytes::from(gz.finish().expect("in-memory write"))
        })
        .clone();
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "application/octet-stream"),
        ],
        bomb,
    )
        .into_response()
}

/// Promises 1000 bytes, sends 100, then drops the connection.
async fn truncated() -> Response {
    let first = futures_util::stream::iter([Ok(Bytes::from_static(&[b'x'; 100]))]);
    let then_fail = futures_util::stream::once(async {
        // Let the headers and the first bytes reach the client before the connection drops.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other("server gave up mid-body"))
    });
    let parts = first.chain(then_fail);
    let mut response = Body::from_stream(parts).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1000));
    response
}

/// Sends headers and 10 bytes, then nothing, forever.
async fn stall() -> Response {
    let first =
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789"))]);
    Body::from_stream(first.chain(futures_util::stream::pending())).into_response()
}

/// Echoes the method, headers and body as JSON.
async fn echo(
    State(stats): State<Arc<Stats>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    {
        let mut seen = stats.seen_headers.lock().expect("stats lock");
        if seen.len() < 10_000 {
            seen.push(headers.clone());
        }
    }
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    Json(serde_json::json!({
        "method": method.as_str(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

/// TCP-level faults, chosen by the request path: `/reset` (RST), `/close` (no
/// answer, clean close), `/garbage` (non-HTTP bytes), `/silent` (never answers).
async fn raw_faults(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(raw_fault(stream));
    }
}

async fn raw_fault(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    match path.split('?').next().unwrap_or("/") {
        "/reset" => {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        "/garbage" => {
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 definitely not HTTP\r\n\r\n")
                .await;
        }
        "/silent" => tokio::time::sleep(Duration::from_secs(3600)).await,
        _ => {}
    }
}

/// The demo's input list: every kind of endpoint, plus lines that are not URLs.
pub fn demo_list(server: &Server, closed_port: u16) -> String {
    let mut lines = vec![
        "# trawl demo: a generated list against a local server".to_owned(),
        String::new(),
    ];
    lines.extend((0..8).map(|i| server.url(&format!("/fast?n={i}"))));
    lines.extend((1..=5).map(|i| server.url(&format!("/json/{i}"))));
    lines.extend((1..=5).map(|i| server.url(&format!("/html/{i}"))));
    lines.push(server.url("/latin1"));
    lines.extend((1..=3).map(|i| server.url(&format!("/slow?delay={}", 200 * i))));
    lines.push(server.url("/redirect/3"));
    lines.push(server.url("/loop"));
    lines.push(server.url("/status/404"));
    lines.push(server.url("/status/500"));
    lines.extend((1..=2).map(|i| server.url(&format!("/flaky/demo{i}?fail=1"))));
    lines.push(server.url("/retry-after/demo?secs=1"));
    lines.push(server.url("/bytes/4096"));
    lines.push(server.url("/gzip-bomb"));
    lines.push(server.url("/truncated"));
    lines.push(server.raw_url("/reset"));
    lines.push(server.raw_url("/garbage"));
    lines.push(format!("http://127.0.0.1:{closed_port}/nobody-listens"));
    lines.push(format!(
        r#"{{"url": "{}", "method": "POST", "headers": {{"Content-Type": "application/json"}}, "body": "{{\"hello\": \"trawl\"}}", "id": "post-1"}}"#,
        server.url("/echo")
    ));
    lines.push("not a url".to_owned());
    lines.push("ftp://example.com/file.txt".to_owned());
    lines.join("\n") + "\n"
}

/// `trawl demo`: start the server, fetch the generated list with the given options.
pub async fn run(
    cfg: Arc<Config>,
    progress: Progress,
    shutdown: Arc<Shutdown>,
) -> anyhow::Result<Outcome> {
    let server = Server::start().await?;
    let closed_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let text = demo_list(&server, closed_port);
    let count = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let mut cfg = (*cfg).clone();
    cfg.inputs = vec![InputSpec::Text {
        name: "demo list".into(),
        text,
    }];
    if !cfg.quiet {
        progress.eprintln(&format!(
            "trawl demo: serving on http://{} (faults on {}); fetching {count} inputs.\n\
             trawl demo: some fail on purpose (404, 500, redirect loop, gzip bomb, reset, bad lines).\n\
             trawl demo: try `trawl demo | jq -c '{{index, url, status, title, error: .error.kind}}'`",
            server.addr, server.raw_addr
        ));
    }
    crate::run(Arc::new(cfg), progress, shutdown).await
}
