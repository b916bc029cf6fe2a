//! Servers that announce their budget: a spent rate-limit budget pauses the host
//! until the announced reset.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::{lines, run};

/// Answers `/spent` with `headers` (a budget at zero, reset in 1 s) and
/// anything else with a plain 200; keeps each request's path and arrival.
async fn budget_server(
    headers: &'static [(&'static str, &'static str)],
) -> (u16, Arc<Mutex<Vec<(String, Instant)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        seen.lock().unwrap().push((path.clone(), Instant::now()));
                        let mut response = hyper::Response::builder();
                        if path == "/spent" {
                            for (k, v) in headers {
                                response = response.header(*k, *v);
                            }
                        }
                        Ok::<_, Infallible>(response.body("ok\n".to_owned()).unwrap())
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (port, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_limit_budget_pauses_the_host_until_its_reset() {
    let forms: [&'static [(&'static str, &'static str)]; 3] = [
        &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")],
        &[
            ("ratelimit", "\"default\";r=0;t=1"),
            ("ratelimit-policy", "\"default\";q=10;w=1"),
        ],
        &[("ratelimit", "limit=10, remaining=0, reset=1")],
    ];
    for headers in forms {
        let (port, log) = budget_server(headers).await;
        let mut urls = vec![format!("http://127.0.0.1:{port}/spent")];
        urls.extend((0..5).map(|i| format!("http://127.0.0.1:{port}/after{i}")));
        // One at a time, so the later requests start after the budget is known.
        let run = run(&["-c", "1", "--ordered"], lines(urls)).await;
        assert!(run.records.iter().all(|r| r.ok), "{:?}", run.records);
        let log = log.lock().unwrap().clone();
        let spent = log.iter().find(|(p, _)| p == "/spent").unwrap().1;
        for (path, at) in &log {
            if path != "/spent" {
                let gap = at.duration_since(spent);
                assert!(
                    gap >= Duration::from_millis(900),
                    "{headers:?}: {path} came {gap:?} after the budget was spent"
                );
            }
        }
    }
    // Capped by --max-retry-wait, like Retry-After.
    let (port, log) = budget_server(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "3600"),
    ])
    .await;
    let urls = [
        format!("http://127.0.0.1:{port}/spent"),
        format!("http://127.0.0.1:{port}/next"),
    ];
    let run = run(&["-c", "1", "--max-retry-wait", "300ms"], lines(urls)).await;
    assert_eq!(run.outcome.summary.ok, 2);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_stats_give_one_line_per_host() {
    let server = crate::support::Server::start().await.unwrap();
    let port = server.addr.port();
    let other = |path: &str| format!("http://other.test:{port}{path}");
    let mut urls: Vec<String> = (0..4).map(|i| server.url(&format!("/fast?{i}"))).collect();
    urls.push(server.url("/retry-after/hs?secs=0"));
    urls.extend([
        other("/fast"),
        other("/status/404"),
        other("/status/404?again"),
    ]);
    let pin = format!("other.test:{port}:127.0.0.1");
    let run = run(
        &["--host-stats", "{dir}/hosts.jsonl", "--resolve", &pin],
        lines(urls),
    )
    .await;
    assert_eq!(run.records.len(), 8);
    let text = std::fs::read_to_string(run.path("hosts.jsonl")).unwrap();
    let hosts: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hosts.len(), 2, "{text}");
    let (local, named) = (&hosts[0], &hosts[1]);
    assert_eq!(local["host"], format!("127.0.0.1:{port}"));
    assert_eq!(
        (local["records"].as_u64(), local["ok"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(local["requests"], 6, "the 429 and its retry: {local}");
    assert_eq!(
        (local["retries"].as_u64(), local["status_429"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(local["pauses"], 1, "Retry-After: {local}");
    assert!(local["latency_p50_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(named["host"], format!("other.test:{port}"));
    assert_eq!(
        (named["records"].as_u64(), named["failed"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(named["failures"]["http_status"], 2);
    let bytes: u64 = run
        .records
        .iter()
        .filter(|r| r.url.as_deref().unwrap().contains("other.test"))
        .filter_map(|r| r.bytes)
        .sum();
    assert_eq!(named["bytes"].as_u64(), Some(bytes));
    assert!(bytes > 0);
}
