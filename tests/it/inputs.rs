//! Input handling: every non-skipped line yields exactly one record, whatever it holds.

use trawl::ErrorKind;

use crate::support::{Server, assert_one_per_index, run, run_offline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_yields_exactly_one_record() {
    let server = Server::start().await.unwrap();
    let mut input = Vec::new();
    input.extend(b"# a comment\n\n   \n");
    input.extend(format!("  {}  \n", server.url("/fast")).as_bytes()); // 0: trimmed
    input.extend(b"not a url\n"); // 1
    input.extend(b"ftp://example.com/file\n"); // 2
    input.extend(b"javascript:alert(1)\n"); // 3
    input.extend(b"{\"url\": broken json\n"); // 4
    input.extend(b"http://caf\xe9.test/\xff\n"); // 5: not UTF-8
    input.extend(b"http://a.test/");
    input.extend(std::iter::repeat_n(b'a', 1 << 20)); // 6: a 1 MiB line
    input.extend(b"\n");
    input.extend(format!("{{\"url\": \"{}\", \"id\": 42}}\r\n", server.url("/json/1")).as_bytes()); // 7: CRLF
    input.extend(b"    # indented comment\n");
    input.extend(server.url("/fast?last").as_bytes()); // 8: no final newline

    let run = run(&[], &input).await;
    assert_one_per_index(&run.records, 9);
    let kind = |i| run.at(i).error_kind();
    assert!(run.at(0).ok, "{:?}", run.at(0));
    assert_eq!(run.at(0).input, server.url("/fast"));
    assert_eq!(kind(1), Some(ErrorKind::InvalidInput));
    assert_eq!(kind(2), Some(ErrorKind::UnsupportedScheme));
    assert_eq!(kind(3), Some(ErrorKind::UnsupportedScheme));
    assert_eq!(kind(4), Some(ErrorKind::InvalidInput));
    assert_eq!(kind(5), Some(ErrorKind::InvalidInput));
    assert_eq!(kind(6), Some(ErrorKind::InvalidInput));
    assert!(
        run.at(6).input.len() <= 1024,
        "a huge line is not echoed whole"
    );
    assert!(run.at(7).ok);
    assert_eq!(run.at(7).id, Some(serde_json::json!(42)));
    assert!(run.at(8).ok);
    assert_eq!(run.outcome.summary.failed, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_objects_set_method_headers_body_and_keep_id() {
    let server = Server::start().await.unwrap();
    let line = format!(
        r#"{{"url": "{}", "method": "PUT", "headers": {{"X-Trawl": "yes"}}, "body": "payload", "id": {{"row": 7}}, "other": [1]}}"#,
        server.url("/echo")
    );
    let run = run(&["--body"], line + "\n").await;
    let r = run.at(0);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.id, Some(serde_json::json!({"row": 7})));
    let echo: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["x-trawl"], "yes");
    assert_eq!(echo["body"], "payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_method_headers_and_data_apply_to_every_request() {
    let server = Server::start().await.unwrap();
    let input = format!(
        "{}\n{{\"url\": \"{}\", \"headers\": {{\"X-Two\": \"override\"}}}}\n",
        server.url("/echo"),
        server.url("/echo")
    );
    let run = run(
        &[
            "-d", "hello", "-H", "X-Two: 2", "-H", "X-One: 1", "-A", "tester/1", "--body",
        ],
        input,
    )
    .await;
    for (i, two) in [(0, "2"), (1, "override")] {
        let echo: serde_json::Value =
            serde_json::from_str(run.at(i).body.as_deref().unwrap()).unwrap();
        assert_eq!(echo["method"], "POST", "-d implies POST");
        assert_eq!(echo["body"], "hello");
        assert_eq!(echo["headers"]["x-one"], "1");
        assert_eq!(echo["headers"]["x-two"], two);
        assert_eq!(echo["headers"]["user-agent"], "tester/1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_output_is_valid_input() {
    let server = Server::start().await.unwrap();
    let first = run(
        &["--body"],
        format!("{}\n{}\n", server.url("/echo"), server.url("/status/404")),
    )
    .await;
    let again = std::fs::read_to_string(first.path("out.jsonl")).unwrap();
    let second = run(&["--body"], again).await;
    assert_one_per_index(&second.records, 2);
    let mut urls: Vec<_> = second
        .records
        .iter()
        .map(|r| r.url.clone().unwrap())
        .collect();
    urls.sort();
    assert_eq!(urls, vec![server.url("/echo"), server.url("/status/404")]);
    // The first run's record carried a "body" field: it is output, never re-sent.
    let echo = second
        .records
        .iter()
        .find(|r| r.url.as_deref() == Some(&server.url("/echo")))
        .unwrap();
    let echo: serde_json::Value = serde_json::from_str(echo.body.as_deref().unwrap()).unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["body"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mixed_fixture_yields_the_expected_records() {
    let server = Server::start().await.unwrap();
    let fixture =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mixed.txt"))
            .unwrap();
    let input = fixture
        .replace("{base}", &server.url(""))
        .replace("{raw}", &server.raw_url(""));
    let run = run(&["--retries", "0"], input).await;
    use ErrorKind::*;
    let expected = [
        None,
        None,
        None,
        Some(HttpStatus),
        None,
        None,
        None,
        Some(InvalidInput),
        Some(InvalidInput),
        Some(InvalidInput),
        Some(UnsupportedScheme),
        Some(UnsupportedScheme),
        Some(InvalidInput),
        Some(Io),
    ];
    assert_one_per_index(&run.records, expected.len() as u64);
    for (i, kind) in expected.iter().enumerate() {
        assert_eq!(
            run.at(i as u64).error_kind(),
            *kind,
            "line {i}: {:?}",
            run.at(i as u64)
        );
    }
    assert_eq!(run.at(4).redirects, Some(2));
    assert_eq!(run.at(5).id, Some(serde_json::json!(["any", "json"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_a_list_by_host_and_cover_it_exactly_once() {
    let server = Server::start().await.unwrap();
    let mut lines = Vec::new();
    for i in 0..40 {
        // Names the test's resolver fails at once (run_offline): only the split matters.
        lines.push(format!("http://h{}.invalid/page/{i}", i % 8));
        lines.push(format!("https://h{}.invalid:8443/other/{i}", i % 8));
    }
    lines.push(server.url("/fast"));
    lines.push("not a url".into());
    lines.push("ftp://h1.invalid/file".into());
    let input = crate::support::lines(lines.clone());
    let n = lines.len() as u64;

    let mut owner = std::collections::HashMap::new();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let run = run_offline(&["--shard", &shard, "--retries", "0"], &input).await;
        assert_eq!(run.outcome.summary.total, run.records.len() as u64);
        for r in &run.records {
            seen.push(r.index);
            assert_eq!(r.input, lines[r.index as usize], "indices count every line");
            let host = r.url.as_deref().and_then(|u| url::Url::parse(u).ok());
            if let Some(host) = host.and_then(|u| u.host_str().map(str::to_owned)) {
                let first = owner.entry(host.clone()).or_insert(k);
                assert_eq!(*first, k, "{host} split across shards");
            }
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "each input in exactly one shard"
    );
    assert!(
        owner
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "all hosts in one shard"
    );
}

/// Issue 26 item 8: a failure record of a POST request object, fed back (the
/// README's "retry only what failed"), was sent as a GET without its headers
/// or body. It makes the same request again; credentials are not kept, and
/// such a record fed back says it cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_record_fed_back_makes_its_request_again() {
    let server = Server::start().await.unwrap();
    let line = format!(
        r#"{{"url": "{}", "method": "post", "headers": {{"X-Trawl": "yes"}}, "body": {{"a": [1, 2]}}, "id": 7}}"#,
        server.url("/echo")
    );
    let failed = run(&["--ok-status", "201"], line + "\n").await;
    let r = failed.at(0);
    assert!(!r.ok, "{r:?}");
    let parts = r.request.as_ref().expect("the request's parts");
    assert_eq!(parts.method.as_deref(), Some("POST"));
    assert_eq!(
        parts.headers.get("x-trawl").map(String::as_str),
        Some("yes")
    );
    assert_eq!(parts.body.as_deref(), Some(r#"{"a":[1,2]}"#));

    let fed = serde_json::to_string(r).unwrap() + "\n";
    let again = run(&["--body"], fed).await;
    let r = again.at(0);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.id, Some(serde_json::json!(7)));
    assert!(r.request.is_none(), "an ok record keeps no request parts");
    let echo: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(echo["method"], "POST", "{echo}");
    assert_eq!(echo["headers"]["x-trawl"], "yes", "{echo}");
    assert_eq!(echo["body"], r#"{"a":[1,2]}"#, "{echo}");

    // A plain URL's failure record keeps no parts and is a GET again.
    let plain = run(&["--ok-status", "201"], server.url("/echo") + "\n").await;
    assert!(plain.at(0).request.is_none());

    // Credentials are not written; fed back, the record says it cannot.
    let line = format!(
        r#"{{"url": "{}", "method": "PUT", "headers": {{"Authorization": "Bearer s3cret", "X-A": "b"}}}}"#,
        server.url("/echo")
    );
    let failed = run(&["--ok-status", "201"], line + "\n").await;
    let r = failed.at(0);
    let text = serde_json::to_string(r).unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(r.request.as_ref().unwrap().withheld, ["authorization"]);
    let before = server.stats.requests();
    let again = run(&[], text + "\n").await;
    let r = again.at(0);
    assert_eq!(r.error_kind(), Some(ErrorKind::InvalidInput), "{r:?}");
    let message = &r.error.as_ref().unwrap().message;
    assert!(
        message.contains("authorization") && message.contains("original request line"),
        "{message}"
    );
    assert_eq!(server.stats.requests(), before, "nothing sent");
}
