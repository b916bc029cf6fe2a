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
