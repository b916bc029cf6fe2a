//! `--robots` at fetch time (issue 25): a robots.txt that cannot be read whole
//! fails closed, its size limit is its own, fragments never count, every
//! redirect hop passes its origin's robots.txt, robots.txt's own redirects,
//! 429 and retries, `--robots-agent`, and the verdict counts. The parser's
//! rules are unit-tested in `src/politeness/robotstxt/tests.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

fn kind(r: &trawl::Record) -> Option<&str> {
    r.error.as_ref().map(|e| e.kind.as_str())
}

fn message(r: &trawl::Record) -> String {
    r.error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_that_cannot_be_read_whole_disallows_the_origin() {
    // Item 1: cut before its Content-Length, stalled past -t: both were "allow all".
    let cut = || {
        let mut r = reply(200, "", &b"User-agent: *\nAllow: /\n".repeat(50));
        r.bytes.truncate(r.bytes.len() - 400);
        r
    };
    let stalled = || {
        let mut r = reply(200, "", &b"User-agent: *\nAllow: /\n".repeat(50));
        r.bytes.truncate(r.bytes.len() - 400);
        r.stall = Duration::from_secs(5);
        r
    };
    for (name, robots, says) in [
        ("cut", cut as fn() -> Reply, "could not be read whole"),
        ("stalled", stalled, "--timeout"),
    ] {
        let (port, seen, _) =
            raw(move |t| if t == "/robots.txt" { robots() } else { page() }).await;
        let run = run(
            &["--robots", "--retries", "0", "-t", "1s"],
            lines([format!("http://127.0.0.1:{port}/a")]),
        )
        .await;
        let r = run.at(0);
        assert_eq!(kind(r), Some("robots_disallowed"), "{name}: {r:?}");
        assert!(message(r).contains(says), "{name}: {}", message(r));
        assert_eq!(
            *seen.lock().unwrap(),
            ["/robots.txt"],
            "{name}: nothing else asked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_robots_txt_is_parsed_up_to_500_kib_whatever_max_body_says() {
    // 17 MiB with `Disallow: /` on line 2: the default --max-body is 16 MiB.
    let mut huge = b"User-agent: *\nDisallow: /\n".to_vec();
    huge.resize(17 << 20, b'#');
    // 200 KiB with the rule at its end, under --max-body 100KB.
    let mut big = b"User-agent: *\n".to_vec();
    big.resize(200 * 1024, b'\n');
    big.extend_from_slice(b"Disallow: /private\n");
    let (huge, big) = (Arc::new(huge), Arc::new(big));
    let (port, _, _) = raw(move |t| match t {
        "/robots.txt" => reply(200, "", &huge),
        _ => page(),
    })
    .await;
    let (port2, _, _) = raw(move |t| match t {
        "/robots.txt" => reply(200, "", &big),
        _ => page(),
    })
    .await;
    let run1 = run(&["--robots"], lines([format!("http://127.0.0.1:{port}/a")])).await;
    assert_eq!(
        kind(run1.at(0)),
        Some("robots_disallowed"),
        "{:?}",
        run1.at(0)
    );
    assert_eq!(message(run1.at(0)), "disallowed by robots.txt (--robots)");
    let urls = [
        format!("http://127.0.0.1:{port2}/private/x"),
        format!("http://127.0.0.1:{port2}/public"),
    ];
    let run2 = run(&["--robots", "--max-body", "100KB"], lines(urls)).await;
    assert_eq!(kind(run2.at(0)), Some("robots_disallowed"));
    assert!(run2.at(1).ok, "{:?}", run2.at(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_are_neither_matched_nor_sent() {
    let robots = "User-agent: *\nDisallow: /*.php$\n";
    let (port, seen, _) = raw(move |t| match t {
        "/robots.txt" => reply(200, "", robots.as_bytes()),
        _ => page(),
    })
    .await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let run = run(
        &["--robots"],
        lines([url("/x.php#top"), url("/y.html#frag")]),
    )
    .await;
    assert_eq!(
        kind(run.at(0)),
        Some("robots_disallowed"),
        "{:?}",
        run.at(0)
    );
    assert!(run.at(1).ok, "{:?}", run.at(1));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&"/y.html".to_owned()), "{seen:?}");
    assert!(
        !seen.iter().any(|t| t.contains('#') || t.contains("x.php")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redirect_hop_passes_its_origins_robots_txt() {
    // Item 3: a hop to a disallowed path, on this origin or another, is not fetched.
    let (other, other_seen, _) = raw(|t| match t {
        "/robots.txt" => reply(200, "", b"User-agent: *\nDisallow: /secret\n"),
        _ => page(),
    })
    .await;
    let (port, seen, _) = raw(move |t| match t {
        "/robots.txt" => reply(200, "", b"User-agent: *\nDisallow: /private\n"),
        "/here" => reply(302, "Location: /private/x\r\n", b""),
        "/there" => reply(
            302,
            &format!("Location: http://127.0.0.1:{other}/secret/y\r\n"),
            b"",
        ),
        "/fine" => reply(
            302,
            &format!("Location: http://127.0.0.1:{other}/open\r\n"),
            b"",
        ),
        _ => page(),
    })
    .await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let run = run(
        &[
            "--robots",
            "--host-stats",
            "{dir}/hosts.jsonl",
            "--summary",
            "{dir}/s.json",
        ],
        lines([url("/here"), url("/there"), url("/fine")]),
    )
    .await;
    for (i, hop) in [
        (0, url("/private/x")),
        (1, format!("http://127.0.0.1:{other}/secret/y")),
    ] {
        let r = run.at(i);
        assert_eq!(kind(r), Some("robots_disallowed"), "{r:?}");
        assert!(
            message(r).contains(&format!("redirect to {hop}")),
            "{}",
            message(r)
        );
        assert_eq!(r.status, Some(302));
    }
    assert!(run.at(2).ok, "{:?}", run.at(2));
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.starts_with("/private"))
    );
    let other_seen = other_seen.lock().unwrap().clone();
    assert_eq!(
        other_seen,
        ["/robots.txt", "/open"],
        "robots.txt once, the allowed hop only"
    );
    // Verdicts per origin in --host-stats, and over the run in the summary.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("s.json")).unwrap()).unwrap();
    let robots = &summary["robots"];
    assert_eq!(robots["origins"], 2, "{summary}");
    assert_eq!(robots["unreachable"], 0);
    assert_eq!(robots["allowed"], 4, "3 inputs and the allowed hop");
    assert_eq!(robots["disallowed"], 2);
    let hosts = std::fs::read_to_string(run.path("hosts.jsonl")).unwrap();
    let line = hosts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["host"] == format!("127.0.0.1:{other}"))
        .unwrap();
    assert_eq!(
        (
            line["robots_allowed"].clone(),
            line["robots_disallowed"].clone()
        ),
        (1.into(), 1.into())
    );
    assert_eq!(line["robots_unreachable"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_follows_five_redirects_and_429_is_unreachable() {
    // Item 9: five hops whatever --max-redirects, across origins.
    let (final_port, _, _) = raw(|t| match t {
        "/real-robots" => reply(200, "", b"User-agent: *\nDisallow: /x\n"),
        _ => page(),
    })
    .await;
    let (port, _, _) = raw(move |t| match t {
        "/robots.txt" => reply(301, "Location: /r1\r\n", b""),
        "/r1" => reply(302, "Location: /r2\r\n", b""),
        "/r2" => reply(307, "Location: /r3\r\n", b""),
        "/r3" => reply(308, "Location: /r4\r\n", b""),
        "/r4" => reply(
            302,
            &format!("Location: http://127.0.0.1:{final_port}/real-robots\r\n"),
            b"",
        ),
        _ => page(),
    })
    .await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let run1 = run(
        &["--robots", "--max-redirects", "0"],
        lines([url("/x"), url("/y")]),
    )
    .await;
    assert_eq!(
        kind(run1.at(0)),
        Some("robots_disallowed"),
        "{:?}",
        run1.at(0)
    );
    assert!(run1.at(1).ok, "{:?}", run1.at(1));

    let (busy, busy_seen, _) = raw(|t| match t {
        "/robots.txt" => reply(429, "", b""),
        _ => page(),
    })
    .await;
    let run2 = run(
        &["--robots", "--retries", "0"],
        lines([format!("http://127.0.0.1:{busy}/a")]),
    )
    .await;
    assert_eq!(kind(run2.at(0)), Some("robots_disallowed"));
    assert!(
        message(run2.at(0)).contains("HTTP 429"),
        "{}",
        message(run2.at(0))
    );
    assert_eq!(*busy_seen.lock().unwrap(), ["/robots.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_robots_txt_is_retried_before_the_verdict() {
    let tries = Arc::new(Mutex::new(0));
    let count = tries.clone();
    let (port, _, _) = raw(move |t| match t {
        "/robots.txt" => {
            let mut n = count.lock().unwrap();
            *n += 1;
            match *n {
                1 => reply(503, "", b""),
                _ => reply(200, "", b"User-agent: *\nDisallow: /no\n"),
            }
        }
        _ => page(),
    })
    .await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let run = run(
        &["--robots", "--retries", "2"],
        lines([url("/yes"), url("/no")]),
    )
    .await;
    assert!(run.at(0).ok, "{:?}", run.at(0));
    assert_eq!(kind(run.at(1)), Some("robots_disallowed"));
    assert_eq!(*tries.lock().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_agent_names_the_token_when_the_user_agent_is_a_browsers() {
    let robots = "User-agent: XBot\nDisallow: /x\n\nUser-agent: *\nDisallow: /\n";
    let (port, _, _) = raw(move |t| match t {
        "/robots.txt" => reply(200, "", robots.as_bytes()),
        _ => page(),
    })
    .await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let ua = "Mozilla/5.0 (compatible; XBot/1.0)";
    let list = lines([url("/a"), url("/x/1")]);
    let named = run(&["--robots", "-A", ua, "--robots-agent", "XBot"], &list).await;
    assert!(named.at(0).ok, "{:?}", named.at(0));
    assert_eq!(kind(named.at(1)), Some("robots_disallowed"));
    // Without it, the token is `Mozilla`: the `*` group.
    let unnamed = run(&["--robots", "-A", ua], &list).await;
    assert_eq!(kind(unnamed.at(0)), Some("robots_disallowed"));
}
