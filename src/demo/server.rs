//! The demo and test server: one HTTP listener with the endpoints of
//! `endpoints.rs`, counters the tests read to check politeness from the
//! server's side, and a second listener that misbehaves at the TCP level.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::endpoints;
use super::stats::ServerStats;

/// A running server: `addr` speaks HTTP/1.1, `raw_addr` misbehaves at the TCP level.
pub struct Server {
    pub addr: SocketAddr,
    pub raw_addr: SocketAddr,
    pub stats: Arc<ServerStats>,
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
        let stats = Arc::new(ServerStats::default());
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

fn router(stats: Arc<ServerStats>) -> Router {
    Router::new()
        .route("/fast", get(|| async { "ok\n" }))
        .route("/slow", get(endpoints::slow))
        .route("/json/{id}", get(endpoints::json))
        .route("/html/{id}", get(endpoints::html))
        .route("/latin1", get(endpoints::latin1))
        .route("/redirect/{n}", get(endpoints::redirect))
        .route("/redirect-to", get(endpoints::redirect_to))
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route("/status/{code}", get(endpoints::status))
        .route("/flaky/{key}", get(endpoints::flaky))
        .route("/retry-after/{key}", get(endpoints::retry_after))
        .route("/bytes/{n}", get(endpoints::bytes))
        .route("/gzip-bomb", get(endpoints::gzip_bomb))
        .route("/truncated", get(endpoints::truncated))
        .route("/stall", get(endpoints::stall))
        .route("/echo", any(endpoints::echo))
        .layer(middleware::from_fn_with_state(stats.clone(), observe))
        .with_state(stats)
}

/// Counts requests and in-flight requests; honours `?delay=MS` on every endpoint.
async fn observe(State(stats): State<Arc<ServerStats>>, req: Request, next: Next) -> Response {
    stats.arrive(req.uri().to_string());
    let delay = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("delay=")))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = next.run(req).await;
    stats.leave();
    response
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
