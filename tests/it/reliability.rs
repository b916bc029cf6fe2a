//! Politeness and fault tolerance: per-host limits, Retry-After, the circuit
//! breaker, credentials on redirects, TLS verification, hostile input and output
//! that survives interruption (`--resume`).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use trawl::Cli;
use trawl::ErrorKind;
use trawl::InputSpec;
use trawl::Progress;
use trawl::Stop;
use trawl::{Exit, Shutdown};

use crate::support::{Server, assert_one_per_index, lines, read_records, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_cap_holds_at_each_server() {
    let (a, b) = (
        Server::start().await.unwrap(),
        Server::start().await.unwrap(),
    );
    let input = lines((0..24).flat_map(|i| {
        [
            a.url(&format!("/slow?delay=60&i={i}")),
            b.url(&format!("/slow?delay=60&i={i}")),
        ]
    }));
    let run = run(&["-c", "50", "--per-host", "2"], input).await;
    assert_eq!(run.outcome.summary.ok, 48);
    assert_eq!(a.stats.max_in_flight(), 2);
    assert_eq!(b.stats.max_in_flight(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_does_not_hold_global_slots() {
    let (slow, fast) = (
        Server::start().await.unwrap(),
        Server::start().await.unwrap(),
    );
    // Sorted by host: the slow host's 8 requests (400 ms each, one at a time) come first.
    let mut urls: Vec<String> = (0..8)
        .map(|i| slow.url(&format!("/slow?delay=400&i={i}")))
        .collect();
    urls.extend((0..20).map(|i| fast.url(&format!("/fast?i={i}"))));
    let run = run(&["-c", "2", "--per-host", "1"], lines(urls)).await;
    assert_eq!(run.outcome.summary.ok, 28);
    for i in 8..28 {
        let elapsed = run.at(i).elapsed_ms.unwrap();
        assert!(
            elapsed < 1500.0,
            "fast host waited {elapsed} ms behind the slow one"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rate_is_per_host_and_smooth() {
    let (a, b) = (
        Server::start().await.unwrap(),
        Server::start().await.unwrap(),
    );
    let input = lines((0..12).flat_map(|i| {
        [
            a.url(&format!("/fast?i={i}")),
            b.url(&format!("/fast?i={i}")),
        ]
    }));
    let started = std::time::Instant::now();
    let run = run(&["--host-rate", "10/s"], input).await;
    let took = started.elapsed();
    assert_eq!(run.outcome.summary.ok, 24);
    for server in [&a, &b] {
        let arrivals = server.stats.arrivals();
        for pair in arrivals.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(80),
                "gap {:?}",
                pair[1] - pair[0]
            );
        }
    }
    assert!(
        took < Duration::from_millis(2000),
        "hosts are limited separately, in parallel: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pauses_the_whole_host_and_is_capped() {
    let server = Server::start().await.unwrap();
    let mut urls = vec![server.url("/retry-after/a?secs=1")];
    urls.extend((0..4).map(|i| server.url(&format!("/fast?i={i}"))));
    let run = run(&["--host-rate", "20/s"], lines(urls)).await;
    assert_eq!(run.outcome.summary.ok, 5);
    assert_eq!(run.at(0).attempts, Some(2));
    let arrivals = server.stats.arrivals_with_paths();
    let refused = arrivals
        .iter()
        .find(|(_, path)| path.starts_with("/retry-after/a"))
        .unwrap()
        .0;
    // Without the pause the other requests would start every 50 ms meanwhile.
    for (at, path) in &arrivals {
        let quiet = *at <= refused || *at - refused >= Duration::from_millis(900);
        assert!(quiet, "{path} arrived {:?} after the 429", *at - refused);
    }

    let capped = crate::support::run(
        &["--max-retry-wait", "200ms"],
        lines([server.url("/retry-after/b?secs=30")]),
    )
    .await;
    assert!(capped.at(0).ok);
    assert!(capped.at(0).elapsed_ms.unwrap() < 5000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_fails_a_dead_hosts_remaining_inputs_fast() {
    let server = Server::start().await.unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut urls: Vec<String> = (0..10)
        .map(|i| format!("http://127.0.0.1:{dead}/x{i}"))
        .collect();
    urls.push(server.url("/fast"));
    let run = run(
        &["-c", "1", "--retries", "0", "--circuit-breaker", "3"],
        lines(urls),
    )
    .await;
    assert_one_per_index(&run.records, 11);
    let kinds: Vec<_> = (0..10).map(|i| run.at(i).error_kind().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == ErrorKind::Connect).count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ErrorKind::CircuitOpen)
            .count(),
        7,
        "{kinds:?}"
    );
    assert!(run.at(10).ok, "other hosts are unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_dropped_on_a_redirect_to_another_host() {
    let (a, b) = (
        Server::start().await.unwrap(),
        Server::start().await.unwrap(),
    );
    let cross = a.url(&format!("/redirect-to?url={}", b.url("/echo")));
    let same = a.url("/redirect-to?url=/echo");
    let args = [
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "Cookie: session=1",
        "-H",
        "X-Keep: yes",
    ];
    let run = run(&args, lines([cross])).await;
    assert!(run.at(0).ok);
    let seen = b.stats.seen_headers();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].get("authorization").is_none() && seen[0].get("cookie").is_none());
    assert_eq!(seen[0]["x-keep"], "yes");

    let run = crate::support::run(&args, lines([same])).await;
    assert!(run.at(0).ok);
    let seen = a.stats.seen_headers();
    assert_eq!(
        seen[0]["authorization"], "Bearer s3cret",
        "kept on the same host"
    );
}

/// A one-response-per-connection HTTPS server with a self-signed certificate.
pub(crate) async fn tls_server() -> (u16, tokio::task::JoinHandle<()>) {
    let acceptor = crate::support::self_signed_tls(&[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_unless_insecure() {
    let (port, _server) = tls_server().await;
    let url = format!("https://127.0.0.1:{port}/");
    let strict = run(&["--retries", "0"], lines([url.clone()])).await;
    assert_eq!(
        strict.at(0).error_kind(),
        Some(ErrorKind::Tls),
        "{:?}",
        strict.at(0)
    );
    let insecure = run(&["--insecure"], lines([url])).await;
    assert!(insecure.at(0).ok, "{:?}", insecure.at(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_responses_each_yield_the_right_failure() {
    let server = Server::start().await.unwrap();
    let mut urls = vec![
        server.url("/bytes/52428800"), // 50 MiB over the limit
        server.url("/gzip-bomb"),
        server.raw_url("/reset"),
        server.raw_url("/garbage"),
        server.raw_url("/close"),
        server.raw_url("/silent"),
        server.url("/stall"),
        server.url("/loop"),
        server.url("/truncated"),
    ];
    // A 429 storm: every request is refused, again and again.
    urls.extend((0..30).map(|i| server.url(&format!("/flaky/storm{i}?fail=1000&code=429"))));
    let run = run(
        &["-t", "500ms", "--retries", "1", "--max-body", "16MiB"],
        lines(urls),
    )
    .await;
    assert_one_per_index(&run.records, 39);
    use ErrorKind::*;
    let expected = [
        BodyTooLarge,
        BodyTooLarge,
        Io,
        Decode,
        Io,
        Timeout,
        Timeout,
        TooManyRedirects,
        Io,
    ];
    for (i, kind) in expected.iter().enumerate() {
        assert_eq!(
            run.at(i as u64).error_kind(),
            Some(*kind),
            "{:?}",
            run.at(i as u64)
        );
    }
    for i in 9..39 {
        assert_eq!((run.at(i).status, run.at(i).attempts), (Some(429), Some(2)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_garbage_lines_each_get_a_record() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut garbage = Vec::with_capacity(8 << 20);
    for i in 0..100_000u64 {
        let len = (i * 7919) % 97;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x as u8;
            garbage.push(if b == b'\n' { b'x' } else { b });
        }
        match i % 1000 {
            0 => garbage.extend(std::iter::repeat_n(b'{', 300_000)), // huge lines
            1 => garbage.extend(b"{\"url\": [1, 2"),                 // bad JSON
            _ => {}
        }
        garbage.push(b'\n');
    }
    let expected = garbage
        .split(|b| *b == b'\n')
        .filter(|l| {
            let t = l.trim_ascii();
            !t.is_empty() && !t.starts_with(b"#")
        })
        .count() as u64;
    let run = run(&["--retries", "0", "-t", "2s"], &garbage).await;
    assert_one_per_index(&run.records, expected);
    assert!(run.records.iter().all(|r| !r.ok));
}

/// Start trawl in-process on `urls`, stop it with a signal-like shutdown once
/// `after` requests reached the server, and return when it has finished.
async fn interrupted_run(
    server: &Server,
    out: &std::path::Path,
    errors: &std::path::Path,
    list: &str,
    after: usize,
) {
    let argv = [
        "trawl",
        "-q",
        "-o",
        out.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
        "-c",
        "8",
    ];
    let mut cfg = Cli::parse_from(argv)
        .run
        .into_config(vec![InputSpec::Text {
            name: "l".into(),
            text: list.into(),
        }])
        .unwrap();
    cfg.grace = Duration::from_millis(100);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(trawl::run(
        Arc::new(cfg),
        Progress::hidden(),
        shutdown.clone(),
    ));
    while server.stats.requests() < after {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.trigger(Stop::Interrupted);
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.exit, Exit::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_interruptions_and_a_torn_line_leaves_one_final_record_per_input() {
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, errors) = (
        dir.path().join("out.jsonl"),
        dir.path().join("errors.jsonl"),
    );
    let list = lines((0..400).map(|i| match i % 7 {
        3 => server.url(&format!("/status/404?i={i}")),
        _ => server.url(&format!("/slow?delay=20&i={i}")),
    }));
    interrupted_run(&server, &out, &errors, &list, 40).await;
    let first: Vec<_> = read_records(&out)
        .into_iter()
        .chain(read_records(&errors))
        .collect();
    let cancelled = first
        .iter()
        .filter(|r| r.error_kind() == Some(ErrorKind::Cancelled))
        .count();
    assert!(cancelled > 0, "the first run was interrupted");
    // A torn write, as left by kill -9 in the middle of a line.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .unwrap()
        .write_all(b"{\"index\":12,\"inp")
        .unwrap();

    let argv = [
        "trawl",
        "-q",
        "--resume",
        "--ordered",
        "-o",
        out.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
    ];
    let cfg = Cli::parse_from(argv)
        .run
        .into_config(vec![InputSpec::Text {
            name: "l".into(),
            text: list.clone(),
        }])
        .unwrap();
    let outcome = trawl::run(Arc::new(cfg), Progress::hidden(), Shutdown::new())
        .await
        .unwrap();
    let (ok, failed) = (read_records(&out), read_records(&errors));
    let all: Vec<_> = ok.iter().chain(&failed).cloned().collect();
    assert_one_per_index(&all, 400);
    assert!(
        all.iter()
            .all(|r| r.error_kind() != Some(ErrorKind::Cancelled))
    );
    assert_eq!(failed.len(), (0..400).filter(|i| i % 7 == 3).count());
    // The summary and exit code cover the whole output, earlier runs included.
    assert_eq!(outcome.summary.total, 400);
    assert_eq!(outcome.exit, Exit::Failures);
    let requests = server.stats.requests();
    assert!(
        requests < 400 + 100,
        "finished inputs were not fetched again ({requests} requests)"
    );
}
