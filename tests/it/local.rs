//! Local faults and output safety (issue 27): outputs that alias each other,
//! and a bad path late on the command line, lose nothing.

use std::process::Stdio;

use crate::support::{Output, bin};

fn trawl(args: &[&str]) -> Output {
    std::process::Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// Regression: `--errors` as a symlink to the `-o` file left 16 lines of 40,
/// 6 torn; `-o` = `--summary`, `--host-stats` on an output and `--errors` =
/// `--summary` were not caught either.
#[test]
fn two_outputs_in_one_file_are_exit_2_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let list = p("list.txt");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let out = p("out.jsonl");
    let kept = "{\"index\":0}\n";
    std::fs::write(&out, kept).unwrap();
    let link = p("link.jsonl");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let new = p("new.jsonl");
    let dotted = format!("{}/./new.jsonl", dir.path().display());
    for args in [
        vec!["-o", &out, "--errors", &link],
        vec!["-o", &out, "--summary", &out],
        vec!["-o", &out, "--host-stats", &link],
        vec!["-o", &out, "--errors", &new, "--summary", &dotted],
        vec!["-o", &new, "--host-stats", &dotted],
    ] {
        let mut argv = vec![list.as_str()];
        argv.extend(&args);
        let run = trawl(&argv);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("are the same file"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "{args:?}");
        assert!(
            !std::path::Path::new(&new).exists(),
            "{args:?}: nothing created"
        );
    }
    // Devices alias nothing: discarding every output is fine (the one input
    // fails to connect: exit 1).
    let run = trawl(&[&list, "-q", "-o", "/dev/null", "--summary", "/dev/null"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}

/// Regression: a `--summary`, `--host-stats`, `--save` or `--errors` path that
/// could not be created was exit 2 after `-o` had been emptied.
#[test]
fn a_bad_late_path_leaves_the_outputs_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let list = p("list.txt");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let (out, errors) = (p("out.jsonl"), p("errors.jsonl"));
    let (kept, kept_errors) = ("{\"index\":0}\n", "{\"index\":1}\n");
    let nowhere = p("no-such-dir/x");
    for flag in ["--summary", "--host-stats", "--save", "--errors"] {
        std::fs::write(&out, kept).unwrap();
        std::fs::write(&errors, kept_errors).unwrap();
        let mut argv = vec![list.as_str(), "-o", &out];
        if flag != "--errors" {
            argv.extend(["--errors", &errors]);
        }
        let bad = match flag {
            // A directory cannot be made inside a file.
            "--save" => format!("{out}/dir"),
            _ => nowhere.clone(),
        };
        argv.extend([flag, &bad]);
        let run = trawl(&argv);
        assert_eq!(run.code, Some(2), "{flag}: {}", run.stderr);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "{flag}");
        assert_eq!(
            std::fs::read_to_string(&errors).unwrap(),
            kept_errors,
            "{flag}"
        );
    }
}

/// Regression: under `ulimit -n 256`, 5,000 URLs over 1,000 host names lost
/// 3,790 inputs: idle pooled connections (one per host) piled up until
/// `socket()` failed, and that was recorded, and cached, as `dns`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_descriptor_limit_loses_nothing_over_many_hosts() {
    let port = crate::support::serve(|_| hyper::Response::new("page\n".to_owned())).await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let (hosts, per_host) = (1000, 5);
    let mut urls = String::new();
    for j in 0..per_host {
        for h in 0..hosts {
            urls.push_str(&format!("http://h{h}.test:{port}/{j}\n"));
        }
    }
    std::fs::write(&list, urls).unwrap();
    let out = dir.path().join("out.jsonl");
    let mut args: Vec<String> = vec![
        list.display().to_string(),
        "-q".into(),
        "-c".into(),
        "10".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    for h in 0..hosts {
        args.push("--resolve".into());
        args.push(format!("h{h}.test:{port}:127.0.0.1"));
    }
    let run: Output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(&args).stdin(Stdio::null());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| rlimit::setrlimit(rlimit::Resource::NOFILE, 256, 256));
        }
        cmd.output().unwrap().into()
    })
    .await
    .unwrap();
    let records = crate::support::read_records(&out);
    let failed: Vec<_> = records.iter().filter(|r| !r.ok).collect();
    assert_eq!(records.len(), hosts * per_host, "{}", run.stderr);
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

/// Regression: when `-o` filled the disk, the summary counted records that
/// were never written (239 counted, 212 written) and the message did not name
/// the file. A file-size limit (`RLIMIT_FSIZE`, with SIGXFSZ ignored so the
/// write fails instead of killing) stands in for the full disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_output_counts_only_what_was_written_and_resume_completes_the_run() {
    let port = crate::support::serve(|_| hyper::Response::new("page\n".to_owned())).await;
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let (list, out, summary) = (p("list.txt"), p("out.jsonl"), p("summary.json"));
    let n = 300;
    let urls: String = (0..n)
        .map(|i| format!("http://127.0.0.1:{port}/{i}\n"))
        .collect();
    std::fs::write(&list, urls).unwrap();
    let args: Vec<String> = [&list, "-o", &out, "--summary", &summary]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let limited = args.clone();
    let run: Output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(&limited).stdin(Stdio::null());
        // SAFETY: signal and setrlimit are async-signal-safe; nothing else runs.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                rlimit::setrlimit(rlimit::Resource::FSIZE, 20_000, 20_000)
            });
        }
        cmd.output().unwrap().into()
    })
    .await
    .unwrap();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains(&out), "names the file: {}", run.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let whole = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok());
    let whole = whole.count() as u64;
    assert!(whole > 10 && whole < n, "{whole} whole records");
    let counted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(counted["total"], whole, "{counted}");
    let line = format!("trawl: {whole} records");
    assert!(run.stderr.contains(&line), "{line:?} in {}", run.stderr);
    // Space again: --resume finishes the run with one record per input.
    let mut again = args.clone();
    again.push("--resume".into());
    let resumed: Output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin())
            .args(&again)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    })
    .await
    .unwrap();
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let records = crate::support::read_records(std::path::Path::new(&out));
    crate::support::assert_one_per_index(&records, n);
}
