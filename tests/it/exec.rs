//! `--exec`: the user's own workers, as real processes (sh, Python, jq),
//! with every way a worker can fail, and how a run ends.

use std::path::Path;
use std::time::Duration;

use trawl::ErrorKind;

use crate::support::{Server, assert_one_per_index, bin, lines, run};

/// A Python worker written for the test, in the run's directory.
fn python_worker(dir: &Path, code: &str) -> String {
    let path = dir.join("worker.py");
    std::fs::write(&path, code).unwrap();
    format!("python3 {}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_worker_gets_each_body_with_its_facts_and_its_answer_is_exec() {
    let server = Server::start().await.unwrap();
    let list = lines(
        (1..=4)
            .map(|i| server.url(&format!("/html/{i}")))
            .chain([server.url("/status/404"), server.url("/bytes/300")]),
    );
    // Echoes what it is sent: `exec` is then the request itself.
    let echo = "while IFS= read -r line; do printf '%s\\n' \"$line\"; done";
    let r = run(&["--exec", echo, "--title", "--exec-workers", "2"], &list).await;
    assert_one_per_index(&r.records, 6);
    for i in 0..4 {
        let rec = r.at(i);
        assert!(rec.ok, "{rec:?}");
        let sent = rec.exec.as_ref().expect("exec");
        assert_eq!(sent["index"], i, "{sent}");
        assert_eq!(sent["status"], 200);
        assert_eq!(sent["url"], rec.url.clone().unwrap());
        assert_eq!(
            sent["sha256"],
            rec.sha256.clone().unwrap(),
            "built-ins go along"
        );
        assert_eq!(sent["title"], rec.title.clone().unwrap());
        assert!(
            sent["headers"]["content-type"]
                .as_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(sent["body"].as_str().unwrap().contains("<title>"), "{sent}");
    }
    assert!(r.at(4).exec.is_none(), "a 404 is not sent: {:?}", r.at(4));
    let bytes = r.at(5).exec.as_ref().unwrap();
    assert_eq!(bytes["body_encoding"], "base64", "not UTF-8: {bytes}");
    assert_eq!(r.outcome.summary.exec_restarts, Some(0));

    // --exec-input headers: no body.
    let r = run(&["--exec", echo, "--exec-input", "headers"], &list).await;
    let sent = r.at(0).exec.as_ref().unwrap();
    assert!(
        sent.get("body").is_none() && sent["headers"].is_object(),
        "{sent}"
    );
}

/// Each way a worker fails makes that one record a `process` failure naming
/// the cause; the worker is restarted and the rest of the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_crashes_lies_hangs_or_chatters_fails_only_its_record() {
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let worker = python_worker(
        dir.path(),
        r#"
import json, sys, time
for line in sys.stdin:
    i = json.loads(line)["index"]
    if i == 3:
        sys.exit(3)
    if i == 5:
        print("this is not json", flush=True); continue
    if i == 7:
        time.sleep(60)
    if i == 9:
        print(json.dumps({"i": i}), flush=True)
    if i == 11:
        sys.stderr.write("x" * (1 << 20) + "\n"); sys.stderr.flush()
    print(json.dumps({"i": i}), flush=True)
"#,
    );
    let list = lines((0..16).map(|i| server.url(&format!("/fast?{i}"))));
    let args = [
        "--exec",
        &worker,
        "--exec-workers",
        "1",
        "--exec-timeout",
        "2s",
        "-c",
        "1",
    ];
    let r = run(&args, &list).await;
    assert_one_per_index(&r.records, 16);
    let message = |i: u64| {
        let rec = r.at(i);
        assert_eq!(rec.error_kind(), Some(ErrorKind::Process), "{rec:?}");
        rec.error.as_ref().unwrap().message.clone()
    };
    assert!(
        message(3).contains("exited with status 3"),
        "{}",
        message(3)
    );
    assert!(message(5).contains("not JSON"), "{}", message(5));
    assert!(message(7).contains("--exec-timeout"), "{}", message(7));
    for i in [0, 1, 2, 4, 6, 8, 9, 10, 11, 12, 13, 14, 15] {
        let rec = r.at(i);
        assert!(rec.ok, "{rec:?}");
        assert_eq!(
            rec.exec.as_ref().unwrap()["i"],
            i,
            "answers stay in step: {rec:?}"
        );
    }
    // Crash, garbage, hang, and the second line of input 9.
    assert_eq!(r.outcome.summary.exec_restarts, Some(4));
}

#[test]
fn a_worker_that_cannot_start_is_exit_2_before_anything_is_fetched() {
    let out = std::process::Command::new(bin())
        .args(["--exec", "no-such-program-here", "http://127.0.0.1:9/never"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("worker 1") && stderr.contains("not found"),
        "its own stderr is shown: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no record: nothing was read");
}

/// The pids of the workers, written by each at its start.
fn pids(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("pid-")?
                .parse()
                .ok()
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks that the process exists (a zombie counts as existing).
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Ctrl-C: the run ends as always (exit 130) and its workers with it; kill -9
/// of trawl: the workers see EOF on stdin and end themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_end_with_the_run_on_ctrl_c_and_on_kill_9() {
    let server = Server::start().await.unwrap();
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let dir = tempfile::tempdir().unwrap();
        let worker = python_worker(
            dir.path(),
            &format!(
                r#"
import json, os, sys, time
open(os.path.join({:?}, "pid-%d" % os.getpid()), "w").close()
for line in sys.stdin:
    time.sleep(0.05)
    print(json.dumps(1), flush=True)
"#,
                dir.path().display().to_string()
            ),
        );
        let list = dir.path().join("list.txt");
        std::fs::write(
            &list,
            lines((0..2000).map(|i| server.url(&format!("/fast?{i}")))),
        )
        .unwrap();
        let out = dir.path().join("out.jsonl");
        let mut child = std::process::Command::new(bin())
            .args(["-q", "--exec", &worker, "--exec-workers", "2", "-o"])
            .arg(&out)
            .arg(&list)
            .spawn()
            .unwrap();
        while pids(dir.path()).len() < 2 || std::fs::metadata(&out).map_or(0, |m| m.len()) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let workers = pids(dir.path());
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        if signal == libc::SIGINT {
            assert_eq!(status.code(), Some(130));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while workers.iter().any(|&p| alive(p)) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            workers.iter().all(|&p| !alive(p)),
            "signal {signal}: no worker is left running"
        );
    }
}

/// The examples users copy: each runs as shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_workers_run() {
    let server = Server::start().await.unwrap();
    let list = lines((1..=3).map(|i| server.url(&format!("/html/{i}"))));
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("python3 {root}/examples/exec/words.py");
    let r = run(&["--exec", &python], &list).await;
    for i in 0..3 {
        let exec = r.at(i).exec.as_ref().unwrap();
        assert!(exec["words"].as_u64().unwrap() > 0, "{exec}");
        assert_eq!(exec["top"].as_array().unwrap().len(), 5, "{exec}");
    }
    let jq = format!("sh {root}/examples/exec/jq-worker.sh");
    let r = run(&["--exec", &jq], &list).await;
    for i in 0..3 {
        let exec = r.at(i).exec.as_ref().unwrap();
        assert_eq!(exec["status"], 200, "{exec}");
        assert_eq!(exec["length"], r.at(i).bytes.unwrap(), "{exec}");
    }
}
