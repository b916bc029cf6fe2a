//! Slips a new user makes, each of which once lost data, bypassed a proxy or
//! lied (issue "Footguns"): writing over an input, a proxy trawl cannot use, a
//! byte order mark, an overlong URL, silent progress in CI, and re-fed failure
//! records without a URL.

use std::process::Stdio;

use trawl::ErrorKind;

use crate::support::{Output, Server, bin, lines, run};

fn trawl(args: &[&str], stdin: Stdio, env: &[(&str, &str)]) -> Output {
    let out = std::process::Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(stdin)
        .output()
        .unwrap();
    out.into()
}

/// Regression: `trawl list.txt -o list.txt` emptied the list and exited 0.
#[tokio::test]
async fn writing_over_an_input_is_refused_and_the_input_survives() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let text = "http://127.0.0.1:1/a\n";
    std::fs::write(&list, text).unwrap();
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink(&list, &link).unwrap();
    let hard = dir.path().join("hard.txt");
    std::fs::hard_link(&list, &hard).unwrap();
    let (list_s, link_s, hard_s) = (
        list.display().to_string(),
        link.display().to_string(),
        hard.display().to_string(),
    );
    let out_s = dir.path().join("out.jsonl").display().to_string();
    for args in [
        vec![list_s.as_str(), "-o", &list_s],
        vec![list_s.as_str(), "--errors", &list_s, "-o", &out_s],
        vec![list_s.as_str(), "--summary", &link_s],
        vec![list_s.as_str(), "-o", &hard_s],
        vec![
            list_s.as_str(),
            "-o",
            &out_s,
            "--resume",
            "--errors",
            &list_s,
        ],
    ] {
        let out = trawl(&args, Stdio::null(), &[]);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&list_s), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert_eq!(std::fs::read_to_string(&list).unwrap(), text, "{args:?}");
    }
    // stdin redirected from the file is an input too.
    let out = trawl(
        &["-o", &link_s],
        Stdio::from(std::fs::File::open(&list).unwrap()),
        &[],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("<stdin>") && out.stderr.contains(&link_s),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&list).unwrap(), text);
}

/// Regression: `--proxy htp://...` and `--proxy ftp://...` were ignored, so the
/// traffic went around the proxy; `--proxy notaurl` failed every record.
#[tokio::test]
async fn a_proxy_trawl_cannot_use_is_exit_2() {
    for proxy in [
        "ftp://proxy.test:21",
        "htp://proxy.test:3128",
        "notaurl",
        "http://",
        "socks4://p.test:1080",
    ] {
        let out = trawl(&["--proxy", proxy], Stdio::null(), &[]);
        assert_eq!(out.code, Some(2), "{proxy}: {}", out.stderr);
        assert!(out.stderr.contains("--proxy"), "{proxy}: {}", out.stderr);
    }
    for proxy in [
        "http://proxy.test:3128",
        "https://p.test",
        "socks5://p.test:1080",
        "socks5h://p.test:1080",
    ] {
        let out = trawl(&["--proxy", proxy], Stdio::null(), &[]);
        assert_eq!(out.code, Some(0), "{proxy}: {}", out.stderr);
    }
}

/// A malformed proxy variable is named on stderr at start, not silently bypassed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_proxy_variable_is_a_warning() {
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, lines([server.url("/fast")])).unwrap();
    let list = list.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        trawl(
            &[&list, "--no-progress"],
            Stdio::null(),
            &[("HTTP_PROXY", "htp://proxy.test:3128")],
        )
    })
    .await
    .unwrap();
    assert!(
        out.stderr.contains("HTTP_PROXY") && out.stderr.contains("htp"),
        "{}",
        out.stderr
    );
}

/// Regression: a UTF-8 byte order mark turned the first URL into invalid_input,
/// and a comment after one into a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_order_mark_starts_a_file_harmlessly() {
    let server = Server::start().await.unwrap();
    let url = server.url("/fast");
    let run1 = run(&[], format!("\u{feff}{url}\n")).await;
    assert_eq!(run1.records.len(), 1);
    assert!(run1.at(0).ok, "{:?}", run1.at(0));
    assert_eq!(run1.at(0).input, url);
    let run2 = run(&[], format!("\u{feff}# a comment\n{url}\n")).await;
    assert_eq!(run2.records.len(), 1, "{:#?}", run2.records);
    assert!(run2.at(0).ok);
}

/// Regression: a URL over 64 KiB failed with `io` after 3 attempts.
#[tokio::test]
async fn an_overlong_url_is_invalid_input_at_once_and_hints_are_right() {
    let long = format!("http://a.test/{}", "x".repeat(70_000));
    let run = run(
        &[],
        lines([
            long,
            "example.com/page".into(),
            "not-a-url".into(),
            "a b.test".into(),
        ]),
    )
    .await;
    let overlong = run.at(0);
    let error = overlong.error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    assert!(error.message.contains("65534"), "{}", error.message);
    assert_eq!(overlong.attempts, None, "never sent");
    let hint = |i| run.at(i).error.as_ref().unwrap().message.clone();
    assert!(
        hint(1).contains("write https://example.com/page"),
        "{}",
        hint(1)
    );
    assert!(
        !hint(2).contains("write"),
        "no host to suggest: {}",
        hint(2)
    );
    assert!(!hint(3).contains("write"), "{}", hint(3));
}

/// `--progress` with a stderr that is not a terminal (CI logs) prints plain
/// lines; `-v` shows the settings, each input opened and each retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_info_logs_reach_a_ci_log() {
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        lines([server.url("/fast"), server.url("/flaky/ci?fail=1")]),
    )
    .unwrap();
    let list = list.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        trawl(
            &[&list, "--progress", "-v", "-o", "/dev/null"],
            Stdio::null(),
            &[],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\x1b'),
        "no escapes in a log: {:?}",
        out.stderr
    );
    assert!(
        out.stderr.contains("trawl: progress: 2/2 done (100%)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("settings"), "{}", out.stderr);
    assert!(out.stderr.contains("reading input"), "{}", out.stderr);
    assert!(
        out.stderr.contains("retry after HTTP 503"),
        "{}",
        out.stderr
    );
}

/// Regression: a re-fed failure record without `url` became "request object has
/// no url" with the whole JSON line as its input.
#[tokio::test]
async fn failure_records_without_a_url_keep_their_verdict_when_re_fed() {
    let first = run(&[], "not a url\nftp://example.com/f\n").await;
    let again = run(&[], std::fs::read(first.path("out.jsonl")).unwrap()).await;
    for i in 0..2 {
        let (a, b) = (first.at(i), again.at(i));
        assert_eq!(a.input, b.input);
        assert_eq!(a.error, b.error, "{b:?}");
    }
    assert_eq!(
        again.at(1).error.as_ref().unwrap().kind,
        ErrorKind::UnsupportedScheme
    );
}
