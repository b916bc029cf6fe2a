//! The real binary: usage errors, stdin, `| head`, signals, the demo.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use trawl::ErrorKind;

use crate::support::{Output, Server, assert_one_per_index, bin, lines, parse_records};

async fn trawl(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap().into()
}

#[tokio::test]
async fn bad_flag_values_exit_2_with_nothing_on_stdout() {
    for args in [
        &["--rate", "fast"][..],
        &["--rate", "0/s"],
        &["--max-body", "lots"],
        &["-t", "soon"],
        &["-c", "0"],
        &["--ok-status", "9xx"],
        &["--allow-failures", "x%"],
        &["-H", "no colon"],
        &["--regex", "a("],
        &["--jq", ".["],
        &["--select", "li >"],
        &["--shard", "0/4"],
        &["--no-such-flag"],
        &["missing-file.txt"],
        &["/"],
        // Outputs are created before anything is fetched.
        &["-o", "/nonexistent-dir/out.jsonl"],
        &["--summary", "/nonexistent-dir/summary.json"],
        &["--save", "/dev/null/bodies"],
    ] {
        let out = trawl(args, "").await;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn help_shows_examples() {
    let out = trawl(&["--help"], "").await;
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("Examples:") && out.stdout.contains("--concurrency"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stdin_and_exits_by_outcome() {
    let server = Server::start().await.unwrap();
    let ok = trawl(&[], &lines([server.url("/fast"), server.url("/json/2")])).await;
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_one_per_index(&parse_records(&ok.stdout), 2);
    assert!(
        ok.stderr.contains("2 ok"),
        "summary on stderr: {}",
        ok.stderr
    );

    let failed = trawl(
        &["-", "-q"],
        &lines([server.url("/fast"), server.url("/status/500")]),
    )
    .await;
    assert_eq!(failed.code, Some(1));
    assert_eq!(parse_records(&failed.stdout).len(), 2);
    assert!(failed.stderr.is_empty(), "-q: {}", failed.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_ends_quietly() {
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        lines((0..20_000).map(|i| server.url(&format!("/fast?{i}")))),
    )
    .unwrap();
    let script = format!(
        "set -o pipefail; '{}' '{}' | head -n 1",
        bin(),
        list.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(parse_records(&stdout).len(), 1);
    assert!(stderr.is_empty(), "a closed pipe is not an error: {stderr}");
    assert!(server.stats.requests() < 20_000, "the run stopped early");
}

async fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

/// Start trawl on a long list whose requests take 1.5 s each, wait until some are in flight.
async fn start_slow(server: &Server, extra: &[&str]) -> (tokio::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        lines((0..50_000).map(|i| server.url(&format!("/slow?delay=1500&i={i}")))),
    )
    .unwrap();
    let child = Command::new(bin())
        .arg(&list)
        .args(["-c", "10"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let before = server.stats.requests();
    while server.stats.requests() < before + 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_finishes_in_flight_requests_flushes_and_exits_130() {
    let server = Server::start().await.unwrap();
    let (child, _dir) = start_slow(&server, &[]).await;
    signal(child.id().unwrap(), "INT").await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(130));
    let records = parse_records(&String::from_utf8_lossy(&out.stdout));
    // Every line read got exactly one record: the ten in flight finished within the
    // grace, the lines read but not started are `cancelled`, the rest were never read.
    let n = records.len() as u64;
    assert_one_per_index(&records, n);
    assert!(n < 50_000);
    let ok = records.iter().filter(|r| r.ok).count();
    let cancelled = records
        .iter()
        .filter(|r| r.error_kind() == Some(ErrorKind::Cancelled))
        .count();
    assert_eq!((ok, cancelled), (10, records.len() - 10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "summary printed: {stderr}");
}

/// Regression (issue 26, item 18): `-q` still printed "stopping…" on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_says_nothing_on_ctrl_c() {
    let server = Server::start().await.unwrap();
    let (child, _dir) = start_slow(&server, &["-q"]).await;
    signal(child.id().unwrap(), "INT").await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_143_and_a_second_ctrl_c_exits_at_once() {
    let server = Server::start().await.unwrap();
    let (child, _dir) = start_slow(&server, &[]).await;
    signal(child.id().unwrap(), "TERM").await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(!parse_records(&String::from_utf8_lossy(&out.stdout)).is_empty());

    let (child, _dir) = start_slow(&server, &["-t", "60s"]).await;
    let pid = child.id().unwrap();
    let started = std::time::Instant::now();
    signal(pid, "INT").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    signal(pid, "INT").await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "did not wait for the requests in flight"
    );
}

#[tokio::test]
async fn demo_runs_offline_with_one_record_per_input() {
    let out = trawl(&["demo", "--no-progress"], "").await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let records = parse_records(&out.stdout);
    let n = records.len() as u64;
    assert!(n >= 30);
    assert_one_per_index(&records, n);
    assert!(
        records
            .iter()
            .any(|r| r.title.as_deref() == Some("Café & Crème"))
    );
    assert!(records.iter().any(|r| !r.ok));
    assert!(
        out.stderr
            .contains("trawl demo: serving on http://127.0.0.1:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_leaves_exactly_one_final_record_per_input() {
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let (out, errors) = (
        dir.path().join("out.jsonl"),
        dir.path().join("errors.jsonl"),
    );
    let urls = (0..3000).map(|i| match i % 10 {
        0 => server.url(&format!("/status/404?i={i}")),
        _ => server.url(&format!("/slow?delay=10&i={i}")),
    });
    std::fs::write(&list, lines(urls)).unwrap();
    let args = [
        list.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
    ];
    let mut child = Command::new(bin())
        .args(args)
        .args(["-c", "20", "-q"])
        .spawn()
        .unwrap();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 20_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(child.id().unwrap(), "KILL").await;
    child.wait().await.unwrap();
    // Simulate the worst case of a kill in the middle of a write: a torn last line.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .unwrap()
        .write_all(b"{\"index\":7,\"input\":\"htt")
        .unwrap();
    let written = parse_records_lossy(&out);
    assert!(written < 3000, "killed before the end ({written} records)");

    let status = Command::new(bin())
        .args(args)
        .args(["--resume", "-q", "--allow-failures", "10%"])
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let ok = crate::support::read_records(&out);
    let failed = crate::support::read_records(&errors);
    let all: Vec<_> = ok.iter().chain(&failed).cloned().collect();
    assert_one_per_index(&all, 3000);
    assert_eq!(failed.len(), 300);
}

/// Records in a file whose last line may be torn.
fn parse_records_lossy(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_urls_never_reach_the_logs() {
    let server = Server::start().await.unwrap();
    let url = server
        .url("/status/503")
        .replace("http://", "http://alice:hunter2@");
    let out = trawl(&["-vvv", "--retries", "1", "--no-progress"], &lines([url])).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("retry after HTTP 503"),
        "retry logs were written: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[tokio::test]
async fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let mut child = Command::new(bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let read_limit = || {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_owned();
        let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        (fields[3].clone(), fields[4].clone())
    };
    let mut limit = read_limit();
    for _ in 0..100 {
        if limit.0 == limit.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        limit = read_limit();
    }
    drop(child.stdin.take());
    child.wait().await.unwrap();
    assert_eq!(limit.0, limit.1, "soft limit raised to the hard limit");
}
