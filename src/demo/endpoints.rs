//! The demo server's endpoints: realistic ones (fast, slow, JSON, HTML,
//! redirects, errors, flaky, rate-limited) and faults (truncated and stalled
//! bodies, a gzip bomb). `noise` and `binary_response` also serve the bench server.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::stats::ServerStats;

type Params = Query<HashMap<String, String>>;

fn param<T: std::str::FromStr>(q: &Params, name: &str, default: T) -> T {
    q.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub(super) async fn slow(q: Params) -> &'static str {
    if !q.contains_key("delay") {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    "slow but fine\n"
}

pub(super) async fn json(Path(id): Path<u64>) -> impl IntoResponse {
    Json(serde_json::json!({
        "id": id,
        "name": format!("item {id}"),
        "price": (id * 37 % 1000) as f64 / 10.0,
        "tags": ["demo", if id % 2 == 0 { "even" } else { "odd" }],
    }))
}

pub(super) async fn html(Path(id): Path<u64>, q: Params) -> impl IntoResponse {
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

pub(super) async fn latin1() -> impl IntoResponse {
    let body: &'static [u8] =
        b"<html><head><title>Caf\xe9 &amp; Cr\xe8me</title></head><body>\xe9t\xe9</body></html>";
    (
        [(header::CONTENT_TYPE, "text/html; charset=iso-8859-1")],
        body,
    )
}

pub(super) async fn redirect(Path(n): Path<u32>) -> Response {
    match n {
        0 => "redirects done\n".into_response(),
        n => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/redirect/{}", n - 1))],
        )
            .into_response(),
    }
}

pub(super) async fn redirect_to(q: Params) -> Response {
    let to = q.get("url").cloned().unwrap_or_else(|| "/fast".into());
    let code = StatusCode::from_u16(param(&q, "code", 302)).unwrap_or(StatusCode::FOUND);
    (code, [(header::LOCATION, to)]).into_response()
}

pub(super) async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, format!("status {code}\n")).into_response()
}

/// Fails `?fail=N` times (503, or `?code=`) per key, then answers 200.
pub(super) async fn flaky(
    State(stats): State<Arc<ServerStats>>,
    Path(key): Path<String>,
    q: Params,
) -> Response {
    let fail: u32 = param(&q, "fail", 2);
    let code =
        StatusCode::from_u16(param(&q, "code", 503)).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if stats.hit(&format!("flaky/{key}")) <= fail {
        return (code, "try again\n").into_response();
    }
    "recovered\n".into_response()
}

/// Answers 429 with `Retry-After: ?secs=` for the first `?times=` hits per key.
pub(super) async fn retry_after(
    State(stats): State<Arc<ServerStats>>,
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
pub(super) async fn bytes(Path(n): Path<usize>) -> Response {
    static NOISE: OnceLock<Bytes> = OnceLock::new();
    binary_response(NOISE.get_or_init(|| noise(1 << 20)), n)
}

/// 64 MiB of zeros, gzip-compressed to about 64 KiB.
pub(super) async fn gzip_bomb() -> Response {
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
pub(super) async fn truncated() -> Response {
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
pub(super) async fn stall() -> Response {
    let first =
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789"))]);
    Body::from_stream(first.chain(futures_util::stream::pending())).into_response()
}

/// Echoes the method, headers and body as JSON.
pub(super) async fn echo(
    State(stats): State<Arc<ServerStats>>,
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
