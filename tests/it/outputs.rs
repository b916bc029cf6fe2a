//! The writer: the errors stream, ordering, the summary file and the exit decision;
//! and the files `--save` writes.

use sha2::Digest;
use trawl::ErrorKind;
use trawl::Exit;

use crate::support::{Server, assert_one_per_index, lines, read_records, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_go_to_the_errors_file() {
    let server = Server::start().await.unwrap();
    let input = lines([
        server.url("/fast"),
        server.url("/status/404"),
        "nope".into(),
        server.url("/json/1"),
    ]);
    let run = run(&["--errors", "{dir}/errors.jsonl"], input).await;
    let errors = read_records(&run.path("errors.jsonl"));
    assert!(run.records.iter().all(|r| r.ok));
    assert!(errors.iter().all(|r| !r.ok));
    assert_eq!((run.records.len(), errors.len()), (2, 2));
    let all: Vec<_> = run.records.iter().chain(&errors).cloned().collect();
    assert_one_per_index(&all, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_restores_input_order() {
    let server = Server::start().await.unwrap();
    // Earlier lines answer later, so completion order is the reverse of input order.
    let input = lines((0..12).map(|i| server.url(&format!("/slow?delay={}", (12 - i) * 25))));
    let run = run(&["--ordered"], input.clone()).await;
    let order: Vec<u64> = run.records.iter().map(|r| r.index).collect();
    assert_eq!(order, (0..12).collect::<Vec<_>>());
    let unordered = crate::support::run(&[], input).await;
    let order: Vec<u64> = unordered.records.iter().map(|r| r.index).collect();
    assert_ne!(
        order,
        (0..12).collect::<Vec<_>>(),
        "the check above would not notice disorder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_file_and_failure_threshold() {
    let server = Server::start().await.unwrap();
    let input = lines([
        server.url("/fast"),
        server.url("/fast?2"),
        server.url("/status/404"),
        "bad".into(),
    ]);
    let run = run(&["--summary", "{dir}/summary.json"], input.clone()).await;
    assert_eq!(run.outcome.exit, Exit::Failures);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.path("summary.json")).unwrap()).unwrap();
    crate::support::validate(&trawl::schema::summary(), &summary).unwrap();
    assert_eq!(summary["schema_version"], "1.2");
    assert_eq!(summary["total"], 4);
    assert_eq!(summary["ok"], 2);
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["by_status"]["200"], 2);
    assert_eq!(summary["by_status"]["404"], 1);
    assert_eq!(summary["by_error"]["http_status"], 1);
    assert_eq!(summary["by_error"]["invalid_input"], 1);
    assert_eq!(summary["bytes"], 6 + 21);
    assert!(summary["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(summary["requests_per_sec"].as_f64().unwrap() > 0.0);

    assert_eq!(
        crate::support::run(&["--allow-failures", "2"], input.clone())
            .await
            .outcome
            .exit,
        Exit::Ok
    );
    assert_eq!(
        crate::support::run(&["--allow-failures", "1"], input.clone())
            .await
            .outcome
            .exit,
        Exit::Failures
    );
    assert_eq!(
        crate::support::run(&["--allow-failures", "50%"], input.clone())
            .await
            .outcome
            .exit,
        Exit::Ok
    );
    assert_eq!(
        crate::support::run(&["--allow-failures", "49%"], input)
            .await
            .outcome
            .exit,
        Exit::Failures
    );
    let clean = crate::support::run(&[], lines([server.url("/fast")])).await;
    assert_eq!(clean.outcome.exit, Exit::Ok);
    assert_eq!(clean.records[0].error_kind(), None::<ErrorKind>);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_yields_one_record_per_line() {
    let server = Server::start().await.unwrap();
    let mut input = String::new();
    for i in 0..3000 {
        match i % 10 {
            0 => input.push_str("not a url\n"),
            5 => input.push_str(&format!("{}\n", server.url("/status/500"))),
            _ => input.push_str(&format!("{}\n", server.url(&format!("/fast?{i}")))),
        }
    }
    let run = run(&["-c", "64", "--retries", "0"], input).await;
    assert_one_per_index(&run.records, 3000);
    assert_eq!(run.outcome.summary.ok, 2400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_stores_accepted_bodies_by_content() {
    let server = Server::start().await.unwrap();
    let input = lines([
        server.url("/fast"),
        server.url("/fast?again"), // the same body: stored once
        server.url("/bytes/100000"),
        server.url("/status/404"), // not accepted: not saved
    ]);
    let run = run(&["--save", "{dir}/bodies", "--hash", "blake3"], input).await;
    let root = run.path("bodies");
    for i in [0, 1, 2] {
        let r = run.at(i);
        let saved = std::path::PathBuf::from(r.saved.as_deref().expect("saved"));
        let body = std::fs::read(&saved).unwrap();
        let sha = hex::encode(sha2::Sha256::digest(&body));
        assert_eq!(saved, root.join(&sha[..2]).join(&sha), "named by content");
        assert_eq!(body.len() as u64, r.bytes.unwrap());
        assert_eq!(
            r.blake3.as_deref(),
            Some(blake3::hash(&body).to_hex().as_str())
        );
    }
    assert_eq!(run.at(0).saved, run.at(1).saved);
    assert_eq!(run.at(3).saved, None);
    let files: Vec<_> = walk(&root);
    assert_eq!(
        files.len(),
        2,
        "{files:?}: no duplicates, no temporary files"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
