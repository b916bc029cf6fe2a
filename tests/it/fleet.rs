//! Fleets: shares taken from the job engine's own variables, split by host or by
//! registrable domain, and `trawl merge` proving the shares complete.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Output, Server, bin, lines, read_records};

/// `n` URLs over the host names `hosts`, all pinned to the test server.
struct Fleet {
    server: Server,
    dir: tempfile::TempDir,
    list: PathBuf,
    pins: Vec<String>,
    n: u64,
}

async fn fleet(hosts: &[String], n: u64) -> Fleet {
    let server = Server::start().await.unwrap();
    let port = server.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let urls =
        (0..n).map(|i| format!("http://{}:{port}/fast?{i}", hosts[i as usize % hosts.len()]));
    std::fs::write(&list, lines(urls)).unwrap();
    let pins = hosts
        .iter()
        .map(|h| format!("{h}:{port}:127.0.0.1"))
        .collect();
    Fleet {
        server,
        dir,
        list,
        pins,
        n,
    }
}

impl Fleet {
    fn part(&self, k: u64) -> PathBuf {
        self.dir.path().join(format!("part{k}.jsonl"))
    }

    /// Run one share with these environment variables and extra arguments.
    fn share(&self, env: &[(&str, String)], args: &[&str], out: &Path) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args([
            "-q",
            "-o",
            out.to_str().unwrap(),
            self.list.to_str().unwrap(),
        ]);
        cmd.args(args);
        for pin in &self.pins {
            cmd.args(["--resolve", pin]);
        }
        for var in [
            "JOB_COMPLETION_INDEX",
            "SLURM_ARRAY_TASK_ID",
            "CLOUD_RUN_TASK_INDEX",
            "AWS_BATCH_JOB_ARRAY_INDEX",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.output().unwrap().into()
    }

    fn merge(&self, parts: &[PathBuf]) -> Output {
        let out = self.dir.path().join("merged.jsonl");
        let mut cmd = Command::new(bin());
        cmd.arg("merge")
            .args(parts)
            .args(["-o", out.to_str().unwrap()]);
        cmd.output().unwrap().into()
    }
}

fn hosts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("h{i}.fleet.test")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_shares_are_disjoint_and_complete_and_merge_proves_it() {
    let f = std::sync::Arc::new(fleet(&hosts(24), 240).await);
    let kubernetes: Vec<Vec<(&str, String)>> = (0..4)
        .map(|i| vec![("JOB_COMPLETION_INDEX", i.to_string())])
        .collect();
    let slurm: Vec<Vec<(&str, String)>> = (1..=4)
        .map(|i| {
            vec![
                ("SLURM_ARRAY_TASK_ID", i.to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".into()),
                ("SLURM_ARRAY_TASK_COUNT", "4".into()),
            ]
        })
        .collect();
    for (style, shard, envs) in [
        ("kubernetes", "auto/4", kubernetes),
        ("slurm", "auto", slurm),
    ] {
        let g = f.clone();
        let parts: Vec<PathBuf> = tokio::task::spawn_blocking(move || {
            let parts: Vec<PathBuf> = (1..=4).map(|k| g.part(k)).collect();
            for (env, out) in envs.iter().zip(&parts) {
                let run = g.share(env, &["--shard", shard], out);
                assert_eq!(run.code, Some(0), "{style}: {}", run.stderr);
            }
            parts
        })
        .await
        .unwrap();
        let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
        let mut host_share: BTreeMap<String, usize> = BTreeMap::new();
        for (k, part) in parts.iter().enumerate() {
            for r in read_records(part) {
                assert!(
                    owner.insert(r.index, k).is_none(),
                    "{style}: index {} twice",
                    r.index
                );
                let host = url::Url::parse(r.url.as_deref().unwrap())
                    .unwrap()
                    .host_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(
                    *host_share.entry(host).or_insert(k),
                    k,
                    "{style}: a host in two shares"
                );
            }
            let share: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(format!("{}.share.json", part.display())).unwrap(),
            )
            .unwrap();
            assert_eq!(share["share"], k as u64 + 1, "{style}");
            assert_eq!(
                (share["of"].as_u64(), share["lines"].as_u64()),
                (Some(4), Some(f.n))
            );
        }
        assert_eq!(
            owner.keys().copied().collect::<Vec<_>>(),
            (0..f.n).collect::<Vec<_>>(),
            "{style}"
        );
        assert!(
            owner.values().collect::<BTreeSet<_>>().len() == 4,
            "{style}: every share has work"
        );
        let merged = f.merge(&parts);
        assert_eq!(merged.code, Some(0), "{style}: {}", merged.stderr);
        assert!(merged.stderr.contains("complete"), "{}", merged.stderr);
        let all = read_records(&f.dir.path().join("merged.jsonl"));
        assert_eq!(
            all.iter().map(|r| r.index).collect::<Vec<_>>(),
            (0..f.n).collect::<Vec<_>>()
        );

        // One share lost: merge names it, and the indexes it held.
        let without: Vec<PathBuf> = parts
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != 2)
            .map(|(_, p)| p.clone())
            .collect();
        let lost = f.merge(&without);
        assert_eq!(lost.code, Some(1), "{}", lost.stderr);
        assert!(
            lost.stderr.contains("missing shares: 3/4"),
            "{}",
            lost.stderr
        );
        assert!(
            lost.stderr.contains("indexes have no record"),
            "{}",
            lost.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_killed_half_way_is_completed_by_resume() {
    let f = fleet(&hosts(12), 120).await;
    let parts: Vec<PathBuf> = (1..=3).map(|k| f.part(k)).collect();
    let f = std::sync::Arc::new(f);
    let g = f.clone();
    let (first, merged_before, rerun, merged_after) = tokio::task::spawn_blocking(move || {
        for (k, part) in parts.iter().enumerate() {
            let run = g.share(&[], &["--shard", &format!("{}/3", k + 1)], part);
            assert_eq!(run.code, Some(0), "{}", run.stderr);
        }
        // Share 2 was killed half-way: half its records, a torn last line, and no share file.
        let text = std::fs::read_to_string(&parts[1]).unwrap();
        let kept: Vec<&str> = text.lines().collect();
        let half = kept[..kept.len() / 2].join("\n") + "\n{\"index\":";
        std::fs::write(&parts[1], half).unwrap();
        std::fs::remove_file(format!("{}.share.json", parts[1].display())).unwrap();
        let before = g.merge(&parts);
        let rerun = g.share(&[], &["--shard", "2/3", "--resume"], &parts[1]);
        let after = g.merge(&parts);
        (kept.len(), before, rerun, after)
    })
    .await
    .unwrap();
    assert!(first > 2);
    assert_eq!(merged_before.code, Some(1), "{}", merged_before.stderr);
    assert!(
        merged_before.stderr.contains("missing shares: 2/3"),
        "{}",
        merged_before.stderr
    );
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert_eq!(merged_after.code, Some(0), "{}", merged_after.stderr);
    let all = read_records(&f.dir.path().join("merged.jsonl"));
    assert_eq!(
        all.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..f.n).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_by_domain_keep_a_site_together() {
    let mut names = Vec::new();
    for site in 0..8 {
        for sub in ["www", "api", "a.b"] {
            names.push(format!("{sub}.site{site}.co.uk"));
        }
    }
    names.extend([
        "one.blogspot.co.uk".to_owned(),
        "two.blogspot.co.uk".to_owned(),
    ]);
    let f = std::sync::Arc::new(fleet(&names, 260).await);
    let g = f.clone();
    let records = tokio::task::spawn_blocking(move || {
        (1..=3)
            .map(|k| {
                let part = g.part(k);
                let run = g.share(
                    &[],
                    &["--shard", &format!("{k}/3"), "--shard-by", "domain"],
                    &part,
                );
                assert_eq!(run.code, Some(0), "{}", run.stderr);
                read_records(&part)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut site_share: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (k, part) in records.iter().enumerate() {
        for r in part {
            total += 1;
            let host = url::Url::parse(r.url.as_deref().unwrap())
                .unwrap()
                .host_str()
                .unwrap()
                .to_owned();
            let site = host.split('.').rev().take(3).collect::<Vec<_>>().join(".");
            if !host.contains("github") {
                assert_eq!(
                    *site_share.entry(site).or_insert(k),
                    k,
                    "{host}: a domain in two shares"
                );
            }
        }
    }
    assert_eq!(total, f.n);
    assert!(
        site_share.values().collect::<BTreeSet<_>>().len() > 1,
        "the sites spread over shares"
    );
}

/// Issue 28 item 1: `--shard 1/4 -o p`, then `--shard 2/4 --resume -o p`
/// exited 0 and mixed shares; Slurm's `--array=2` alone resolves to 1/1 and
/// fetched the whole list into part 2. Both are exit 2 now, naming both shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_a_part_of_another_share() {
    let f = fleet(&hosts(8), 40).await;
    let part = f.part(1);
    let first = f.share(&[], &["--shard", "1/4"], &part);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let kept = std::fs::read_to_string(&part).unwrap();
    let other = f.share(&[], &["--shard", "2/4", "--resume"], &part);
    assert_eq!(other.code, Some(2), "{}", other.stderr);
    assert!(
        other.stderr.contains("share 1/4") && other.stderr.contains("share 2/4"),
        "{}",
        other.stderr
    );
    // A task given alone by Slurm: MIN=MAX=ID, COUNT=1.
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "2".to_owned()),
        ("SLURM_ARRAY_TASK_MIN", "2".to_owned()),
        ("SLURM_ARRAY_TASK_MAX", "2".to_owned()),
        ("SLURM_ARRAY_TASK_COUNT", "1".to_owned()),
    ];
    let alone = f.share(&slurm, &["--shard", "auto", "--resume"], &part);
    assert_eq!(alone.code, Some(2), "{}", alone.stderr);
    assert!(
        alone.stderr.contains("scontrol requeue"),
        "{}",
        alone.stderr
    );
    let unsharded = f.share(&[], &["--resume"], &part);
    assert_eq!(unsharded.code, Some(2), "{}", unsharded.stderr);
    assert_eq!(
        std::fs::read_to_string(&part).unwrap(),
        kept,
        "the part is untouched"
    );
    // The same share resumes as before.
    let same = f.share(&[], &["--shard", "1/4", "--resume"], &part);
    assert_eq!(same.code, Some(0), "{}", same.stderr);
}

/// Issue 28 items 4 and 5: an incomplete merge wrote -o and --summary (and
/// exited 1); a fleet whose every fetch failed merged to exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_writes_only_complete_results_and_has_a_failure_gate() {
    let f = fleet(&hosts(8), 40).await;
    let parts: Vec<PathBuf> = (1..=2).map(|k| f.part(k)).collect();
    for (k, part) in parts.iter().enumerate() {
        let shard = format!("{}/2", k + 1);
        let run = f.share(&[], &["--shard", &shard], part);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let out = f.dir.path().join("m.jsonl");
    let summary = f.dir.path().join("m.json");
    let merge = |parts: &[PathBuf], extra: &[&str]| -> Output {
        Command::new(bin())
            .arg("merge")
            .args(parts)
            .args([
                "-o",
                out.to_str().unwrap(),
                "--summary",
                summary.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
            .into()
    };
    let half = merge(&parts[..1], &[]);
    assert_eq!(half.code, Some(1), "{}", half.stderr);
    assert!(
        !out.exists() && !summary.exists(),
        "nothing written: {}",
        half.stderr
    );
    let partial = merge(&parts[..1], &["--partial"]);
    assert_eq!(partial.code, Some(1));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["partial"], true, "{s}");
    assert!(out.exists());
    let whole = merge(&parts, &[]);
    assert_eq!(whole.code, Some(0), "{}", whole.stderr);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(s.get("partial").is_none(), "{s}");
    assert_eq!(read_records(&out).len(), 40);

    // Every fetch failing: the shares pass (failures allowed), the merge's gate does not.
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        lines((0..10).map(|i| format!("http://127.0.0.1:{port}/{i}"))),
    )
    .unwrap();
    let mut dead = Vec::new();
    for k in 1..=2 {
        let part = dir.path().join(format!("d{k}.jsonl"));
        let run: Output = Command::new(bin())
            .args([
                "-q",
                "--retries",
                "0",
                "--allow-failures",
                "100%",
                "--shard",
            ])
            .arg(format!("{k}/2"))
            .arg("-o")
            .arg(&part)
            .arg(&list)
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        dead.push(part);
    }
    let gated = merge(&dead, &["--allow-failures", "10%"]);
    assert_eq!(gated.code, Some(1), "{}", gated.stderr);
    assert!(
        gated.stderr.contains("10 of 10 records failed"),
        "{}",
        gated.stderr
    );
    assert!(
        out.exists(),
        "complete, so written; the gate only sets the exit code"
    );
    let open = merge(&dead, &[]);
    assert_eq!(open.code, Some(0), "{}", open.stderr);
}

/// Issue 28 item 7: a `--shard auto` error was followed by clap's usage block;
/// it is the message alone, with the variables read and what they held.
#[test]
fn an_engine_error_is_the_message_alone_with_the_variables_read() {
    let mut cmd = Command::new(bin());
    cmd.args(["--shard", "auto", "/dev/null"]);
    for var in [
        "JOB_COMPLETION_INDEX",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "CLOUD_RUN_TASK_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
    ] {
        cmd.env_remove(var);
    }
    let out: Output = cmd.env("SLURM_ARRAY_TASK_ID", "3").output().unwrap().into();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(!out.stderr.contains("Usage:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("variables read: ")
            && out.stderr.contains("SLURM_ARRAY_TASK_ID=3")
            && out.stderr.contains("SLURM_ARRAY_TASK_COUNT unset"),
        "{}",
        out.stderr
    );
}

/// Issue 28 item 2: a list rewritten (same length, new paths) between two
/// `--resume` runs was silently not fetched (0 requests, exit 0), and merge
/// called parts of two lists complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_merge_refuse_a_changed_list() {
    let f = fleet(&hosts(8), 40).await;
    let parts: Vec<PathBuf> = (1..=2).map(|k| f.part(k)).collect();
    for (k, part) in parts.iter().enumerate() {
        let run = f.share(&[], &["--shard", &format!("{}/2", k + 1)], part);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let kept: Vec<String> = parts
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let same = f.share(&[], &["--shard", "1/2", "--resume"], &parts[0]);
    assert_eq!(same.code, Some(0), "the same list resumes: {}", same.stderr);
    let old_list = std::fs::read_to_string(&f.list).unwrap();

    // The night after: the same number of lines, new paths.
    std::fs::write(&f.list, old_list.replace("/fast?", "/fast?new")).unwrap();
    let before = f.server.stats.requests();
    let changed = f.share(&[], &["--shard", "1/2", "--resume"], &parts[0]);
    assert_eq!(changed.code, Some(2), "{}", changed.stderr);
    assert!(
        changed.stderr.contains("list.txt")
            && changed.stderr.contains("part1.jsonl")
            && changed.stderr.contains("without --resume"),
        "names the list, the part and the way out: {}",
        changed.stderr
    );
    assert_eq!(f.server.stats.requests(), before, "nothing fetched");
    assert_eq!(std::fs::read_to_string(&parts[0]).unwrap(), kept[0]);

    // Reordered, or cut short: the same.
    let mut reordered: Vec<&str> = old_list.lines().collect();
    reordered.swap(0, 1);
    std::fs::write(&f.list, lines(reordered.iter().map(|l| l.to_string()))).unwrap();
    for part in &parts {
        let run = f.share(&[], &["--resume"], part);
        assert_eq!(run.code, Some(2), "reordered: {}", run.stderr);
    }
    let short: Vec<&str> = old_list.lines().take(30).collect();
    std::fs::write(&f.list, lines(short.iter().map(|l| l.to_string()))).unwrap();
    let cut = f.share(&[], &["--shard", "2/2", "--resume"], &parts[1]);
    assert_eq!(cut.code, Some(2), "{}", cut.stderr);
    assert!(cut.stderr.contains("no line in it now"), "{}", cut.stderr);
    assert_eq!(f.server.stats.requests(), before, "nothing fetched");

    // Read from standard input (once only): found at the end, exit 2, and
    // the share file goes so that merge cannot call the part whole.
    let new_list = old_list.replace("/fast?", "/fast?new");
    let mut cmd = Command::new(bin());
    cmd.args(["-q", "--shard", "1/2", "--resume", "-o"])
        .arg(&parts[0])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for pin in &f.pins {
        cmd.args(["--resolve", pin]);
    }
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(new_list.as_bytes())
        .unwrap();
    let piped: Output = child.wait_with_output().unwrap().into();
    assert_eq!(piped.code, Some(2), "{}", piped.stderr);
    assert!(piped.stderr.contains("standard input"), "{}", piped.stderr);
    assert!(!Path::new(&format!("{}.share.json", parts[0].display())).exists());

    // Parts of two lists of the same length: share 1 of the new list, share 2
    // of the old one. Merge refuses them.
    std::fs::write(&f.list, &new_list).unwrap();
    std::fs::remove_file(&parts[0]).unwrap();
    let fresh = f.share(&[], &["--shard", "1/2"], &parts[0]);
    assert_eq!(fresh.code, Some(0), "{}", fresh.stderr);
    let merged = f.merge(&parts);
    assert_eq!(merged.code, Some(1), "{}", merged.stderr);
    assert!(
        merged.stderr.contains("different lists"),
        "{}",
        merged.stderr
    );
    // Share 2 on the new list too: complete.
    std::fs::remove_file(&parts[1]).unwrap();
    let again = f.share(&[], &["--shard", "2/2"], &parts[1]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let merged = f.merge(&parts);
    assert_eq!(merged.code, Some(0), "{}", merged.stderr);
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Issue 28 item 6: the merged rate divided by the longest share's time even
/// when the shares ran one after another, and a requeued share's summary
/// covered only its last attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_and_requeued_summaries_cover_every_attempt_over_the_span() {
    let f = fleet(&hosts(8), 40).await;
    let parts: Vec<PathBuf> = (1..=2).map(|k| f.part(k)).collect();
    for (k, part) in parts.iter().enumerate() {
        let run = f.share(&[], &["--shard", &format!("{}/2", k + 1)], part);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let times: Vec<f64> = parts
        .iter()
        .map(|p| {
            json(Path::new(&format!("{}.share.json", p.display())))["elapsed_ms"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let summary = f.dir.path().join("s.json");
    let merged: Output = Command::new(bin())
        .arg("merge")
        .args(&parts)
        .arg("--summary")
        .arg(&summary)
        .output()
        .unwrap()
        .into();
    assert_eq!(merged.code, Some(0), "{}", merged.stderr);
    let s = json(&summary);
    let (work, span) = (
        s["work_ms"].as_f64().unwrap(),
        s["elapsed_ms"].as_f64().unwrap(),
    );
    assert!(
        (work - times.iter().sum::<f64>()).abs() < 0.01,
        "{s} {times:?}"
    );
    assert!(span >= work + 300.0, "one after another, 300 ms apart: {s}");
    assert_eq!(
        s["requests_per_sec"],
        ((40.0 / (span / 1000.0)) * 10.0).round() / 10.0,
        "{s}"
    );
    assert!(merged.stderr.contains("s of work ("), "{}", merged.stderr);

    // A share killed (-9) half-way, then requeued with --resume.
    let server = Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("slow.txt");
    std::fs::write(
        &list,
        lines((0..30).map(|i| server.url(&format!("/slow?delay=150&i={i}")))),
    )
    .unwrap();
    let part = dir.path().join("p.jsonl");
    let share = part.with_extension("jsonl.share.json");
    let attempt = |extra: &[&str]| {
        let mut cmd = Command::new(bin());
        cmd.args(["-q", "-c", "1", "--shard", "1/1", "-o"])
            .arg(&part)
            .arg(&list)
            .args(extra);
        cmd
    };
    let began = std::time::Instant::now();
    let mut first = attempt(&[]).spawn().unwrap();
    while server.stats.requests() < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let running = json(&share);
    assert!(
        running["lines"].is_null() && running["ended_unix_ms"].is_null(),
        "{running}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let summary = dir.path().join("s.json");
    let second: Output = attempt(&["--resume", "--summary", summary.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    let whole = began.elapsed().as_millis() as f64;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let ended = json(&share);
    assert_eq!(ended["attempts"], 2, "{ended}");
    let s = json(&summary);
    let (work, span) = (
        s["work_ms"].as_f64().unwrap(),
        s["elapsed_ms"].as_f64().unwrap(),
    );
    assert_eq!(s["total"], 30, "{s}");
    assert_eq!(work, ended["elapsed_ms"].as_f64().unwrap(), "{s} {ended}");
    // The span runs from the first attempt's start (before the test's own
    // clock started the wait for it) to the second's end.
    assert!(
        span >= 200.0 + 4.0 * 150.0 && span <= whole + 50.0,
        "{s}, {whole} ms"
    );
    assert!(work <= span, "{s}");
    assert_eq!(
        s["requests_per_sec"],
        ((30.0 / (span / 1000.0)) * 10.0).round() / 10.0,
        "{s}"
    );
}
