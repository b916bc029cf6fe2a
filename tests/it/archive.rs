//! `--warc` (issue 30): every exchange as WARC 1.1 records, read back with
//! trawl's reader (itself checked against a file warcio wrote), digests
//! recomputed, each JSON record's pointer followed; rotation, kill -9 and
//! `--resume`, a full disk, Ctrl-C. CI checks the same files with warcio,
//! cdxj-indexer and pywb (`.ci/run`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::Digest;
use trawl::Record;
use trawl::warc::{Packing, WarcRecord, whole_records};

use crate::support::{Output, assert_one_per_index, bin, lines, raw, read_records, reply, run};

fn sha1(parts: &[&[u8]]) -> String {
    let mut h = sha1::Sha1::new();
    parts.iter().for_each(|p| h.update(p));
    format!("sha1:{}", data_encoding::BASE32.encode(&h.finalize()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Every `.warc.gz` in `dir`, in name order, with its records; each file must
/// be whole (no torn end) and start with a warcinfo record.
fn archive(dir: &Path) -> Vec<(PathBuf, Vec<WarcRecord>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".warc.gz"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let (records, end) = whole_records(&path, Packing::Gzip).unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(end, len, "{}: a torn record at {end}", path.display());
            assert_eq!(
                records[0].field("WARC-Type"),
                Some("warcinfo"),
                "{}",
                path.display()
            );
            (path, records)
        })
        .collect()
}

/// The HTTP head and payload of a response record's block.
fn split_block(block: &[u8]) -> (String, &[u8]) {
    let end = block.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (
        String::from_utf8_lossy(&block[..end]).into_owned(),
        &block[end..],
    )
}

/// The record a JSON record's `warc` pointer points at, read on its own
/// from the bytes at that offset (one gzip member).
fn pointed(record: &Record) -> WarcRecord {
    let pointer = record
        .warc
        .as_ref()
        .unwrap_or_else(|| panic!("no warc: {record:?}"));
    let mut file = std::fs::File::open(&pointer.file).unwrap();
    let mut bytes = vec![0; pointer.length as usize];
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(pointer.offset)).unwrap();
    file.read_exact(&mut bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.warc.gz");
    std::fs::write(&one, &bytes).unwrap();
    let (records, end) = whole_records(&one, Packing::Gzip).unwrap();
    assert_eq!(
        (records.len(), end),
        (1, pointer.length),
        "one whole member: {pointer:?}"
    );
    records.into_iter().next().unwrap()
}

/// Digests recomputed: the block's, and the payload's of a response.
fn check_digests(r: &WarcRecord) {
    assert_eq!(
        r.field("WARC-Block-Digest").unwrap(),
        sha1(&[&r.block]),
        "{:?}",
        r.fields
    );
    if r.field("WARC-Type") == Some("response") {
        let (_, payload) = split_block(&r.block);
        assert_eq!(r.field("WARC-Payload-Digest").unwrap(), sha1(&[payload]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_is_archived_as_received_and_each_record_points_at_its_own() {
    let page = b"<html><title>same</title>body body body</html>".to_vec();
    let zipped = gzip(b"<html><title>zipped</title></html>");
    let (zipped2, page2) = (zipped.clone(), page.clone());
    let (port, _, _) = raw(move |target| match target {
        "/plain" | "/dup/1" | "/dup/2" => reply(200, "Content-Type: text/html\r\n", &page2),
        "/gzip" => reply(200, "Content-Type: text/html\r\nContent-Encoding: gzip\r\n", &zipped2),
        "/chunked" => crate::support::Reply {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n".to_vec(),
            stall: Duration::ZERO,
        },
        "/r/1" => reply(302, "Location: /r/2\r\n", b"moved"),
        "/r/2" => reply(301, "Location: /r/3\r\n", b""),
        "/r/3" => reply(200, "Content-Type: text/plain\r\n", b"arrived"),
        _ => reply(404, "Content-Type: text/plain\r\n", b"no"),
    })
    .await;
    // A port nothing listens on: the failure without a response.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let u = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let list = lines(
        [
            "/plain", "/gzip", "/chunked", "/r/1", "/dup/1", "/dup/2", "/missing",
        ]
        .iter()
        .map(|p| u(p))
        .chain([format!("http://127.0.0.1:{dead}/x")]),
    );
    let r = run(
        &["--warc", "{dir}/x.warc.gz", "--cdxj", "--title", "-c", "1"],
        &list,
    )
    .await;
    assert_one_per_index(&r.records, 8);
    let files = archive(r.dir.path());
    assert_eq!(files.len(), 1, "one file, closed: {files:?}");
    assert!(!r.path("x.warc.gz.open").exists());
    let (_, records) = &files[0];
    records.iter().for_each(check_digests);
    let ids: HashMap<&str, &WarcRecord> = records
        .iter()
        .map(|w| (w.field("WARC-Record-ID").unwrap(), w))
        .collect();
    // Each request and its response name each other.
    for w in records.iter().skip(1) {
        let other = ids[w.field("WARC-Concurrent-To").expect("concurrent-to")];
        assert_eq!(other.field("WARC-Concurrent-To"), w.field("WARC-Record-ID"));
        assert_eq!(other.field("WARC-Target-URI"), w.field("WARC-Target-URI"));
        assert_eq!(w.field("WARC-IP-Address"), Some("127.0.0.1"));
        assert!(w.field("WARC-Date").unwrap().ends_with('Z'));
    }
    let by_uri = |uri: &str, kind: &str| -> Vec<&WarcRecord> {
        records
            .iter()
            .filter(|w| {
                w.field("WARC-Target-URI") == Some(uri) && w.field("WARC-Type") == Some(kind)
            })
            .collect()
    };
    // Plain: the body as served.
    let plain = pointed(r.at(0));
    assert_eq!(plain.field("WARC-Type"), Some("response"));
    assert_eq!(
        plain.field("Content-Type"),
        Some("application/http;msgtype=response")
    );
    let (head, payload) = split_block(&plain.block);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(payload, &page[..]);
    let request = &by_uri(&u("/plain"), "request")[0];
    let (sent, _) = split_block(&request.block);
    assert!(sent.starts_with("GET /plain HTTP/1.1\r\n"), "{sent}");
    assert!(
        sent.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{sent}"
    );
    assert!(
        sent.contains("accept-encoding: zstd,gzip,deflate,br\r\n"),
        "{sent}"
    );
    // Gzip: the WARC keeps it encoded; the JSON record read it decoded.
    let zipped_record = pointed(r.at(1));
    let (head, payload) = split_block(&zipped_record.block);
    assert!(head.contains("content-encoding: gzip\r\n"), "{head}");
    assert_eq!(payload, &zipped[..]);
    assert_eq!(r.at(1).title.as_deref(), Some("zipped"));
    assert_eq!(r.at(1).bytes, Some(34), "the decoded length");
    // Chunked: the chunking removed, and the head says the length instead.
    let chunked = pointed(r.at(2));
    let (head, payload) = split_block(&chunked.block);
    assert_eq!(payload, b"hello, world");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert!(head.contains("content-length: 12\r\n"), "{head}");
    // A redirect chain: every hop archived; the pointer is the last response.
    for (hop, status) in [("/r/1", "302"), ("/r/2", "301"), ("/r/3", "200")] {
        let responses = by_uri(&u(hop), "response");
        assert_eq!(responses.len(), 1, "{hop}");
        assert!(
            split_block(&responses[0].block)
                .0
                .starts_with(&format!("HTTP/1.1 {status} "))
        );
        assert_eq!(by_uri(&u(hop), "request").len(), 1, "{hop}");
    }
    assert_eq!(
        split_block(&by_uri(&u("/r/1"), "response")[0].block).1,
        b"moved"
    );
    let last = pointed(r.at(3));
    assert_eq!(last.field("WARC-Target-URI"), Some(u("/r/3").as_str()));
    // The same payload three times: one response, two revisits naming it.
    let digest = sha1(&[&page]);
    let mut originals = Vec::new();
    let mut revisits = Vec::new();
    for w in records
        .iter()
        .filter(|w| w.field("WARC-Payload-Digest") == Some(&digest))
    {
        match w.field("WARC-Type").unwrap() {
            "response" => originals.push(w),
            "revisit" => revisits.push(w),
            other => panic!("{other}"),
        }
    }
    assert_eq!((originals.len(), revisits.len()), (1, 2));
    for revisit in &revisits {
        assert_eq!(
            revisit.field("WARC-Profile"),
            Some("http://netpreserve.org/warc/1.1/revisit/identical-payload-digest")
        );
        assert_eq!(
            revisit.field("WARC-Refers-To"),
            originals[0].field("WARC-Record-ID")
        );
        assert_eq!(
            revisit.field("WARC-Refers-To-Target-URI"),
            originals[0].field("WARC-Target-URI")
        );
        assert_eq!(
            revisit.field("WARC-Refers-To-Date"),
            originals[0].field("WARC-Date")
        );
        let (head, payload) = split_block(&revisit.block);
        assert!(
            payload.is_empty() && head.starts_with("HTTP/1.1 200 OK"),
            "headers only"
        );
    }
    // A 404 is an exchange too; a refused connection writes nothing.
    assert_eq!(pointed(r.at(6)).field("WARC-Type"), Some("response"));
    assert!(!r.at(7).ok && r.at(7).warc.is_none(), "{:?}", r.at(7));
    assert!(
        records
            .iter()
            .all(|w| w.field("WARC-Target-URI") != Some(&format!("http://127.0.0.1:{dead}/x")))
    );
    // The index: one line per response and revisit, sorted, each at its record.
    let cdxj = std::fs::read_to_string(r.path("x.cdxj")).unwrap();
    let index: Vec<&str> = cdxj.lines().collect();
    let mut sorted = index.clone();
    sorted.sort();
    assert_eq!(index, sorted);
    let answers: Vec<&WarcRecord> = records
        .iter()
        .filter(|w| matches!(w.field("WARC-Type"), Some("response" | "revisit")))
        .collect();
    assert_eq!(index.len(), answers.len());
    for w in answers {
        let place = format!(
            "\"length\": \"{}\", \"offset\": \"{}\", \"filename\": \"x.warc.gz\"",
            w.length, w.offset
        );
        assert!(
            index.iter().any(|l| l.contains(&place)),
            "{place} in {cdxj}"
        );
    }
}

/// HTTP/2 over TLS is written as HTTP/1.1 text, marked `WARC-Protocol: h2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_exchange_is_written_as_http_1_1_text_marked_h2() {
    let acceptor = crate::support::self_signed_tls(&[b"h2"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    let response = hyper::Response::builder()
                        .header("content-type", "text/plain")
                        .body("over h2\n".to_owned())
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    let list = format!("https://127.0.0.1:{port}/h2\n");
    let r = run(&["--warc", "{dir}/h2.warc.gz", "--insecure"], &list).await;
    assert!(r.at(0).ok, "{:?}", r.at(0));
    assert_eq!(r.at(0).http_version.as_deref(), Some("2"));
    let w = pointed(r.at(0));
    assert_eq!(w.field("WARC-Protocol"), Some("h2"));
    check_digests(&w);
    let (head, payload) = split_block(&w.block);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-type: text/plain\r\n"), "{head}");
    assert_eq!(payload, b"over h2\n");
}

/// With `--since`, a 304 is a revisit (server-not-modified) of headers only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_to_since_is_a_server_not_modified_revisit() {
    let port = crate::support::serve(|req| {
        let fresh = req
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"");
        let builder = hyper::Response::builder().header("etag", "\"v1\"");
        match fresh {
            true => builder.status(304).body(String::new()).unwrap(),
            false => builder.body("version one\n".to_owned()).unwrap(),
        }
    })
    .await;
    let list = format!("http://127.0.0.1:{port}/page\n");
    let first = run(&["--warc", "{dir}/a.warc.gz"], &list).await;
    let prev = first.path("out.jsonl").display().to_string();
    let second = run(&["--warc", "{dir}/b.warc.gz", "--since", &prev], &list).await;
    let rec = second.at(0);
    assert_eq!(
        (rec.ok, rec.status, rec.not_modified),
        (true, Some(304), Some(true)),
        "{rec:?}"
    );
    let w = pointed(rec);
    assert_eq!(w.field("WARC-Type"), Some("revisit"));
    assert_eq!(
        w.field("WARC-Profile"),
        Some("http://netpreserve.org/warc/1.1/revisit/server-not-modified")
    );
    let (head, payload) = split_block(&w.block);
    assert!(
        head.starts_with("HTTP/1.1 304 Not Modified\r\n") && payload.is_empty(),
        "{head}"
    );
    check_digests(&w);
}

/// Past `--warc-max-size` a new file starts, with its own warcinfo and index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_starts_numbered_files_each_whole_with_its_index() {
    let server = crate::support::Server::start().await.unwrap();
    // Distinct bodies of 4 KiB: no revisits, about 4 KiB a record.
    let list = lines((0..40).map(|i| server.url(&format!("/bytes/{}", 4000 + i))));
    let r = run(
        &[
            "--warc",
            "{dir}/crawl.warc.gz",
            "--warc-max-size",
            "20KB",
            "--cdxj",
        ],
        &list,
    )
    .await;
    assert_one_per_index(&r.records, 40);
    let files = archive(r.dir.path());
    assert!(files.len() >= 5, "{} files", files.len());
    for (i, (path, records)) in files.iter().enumerate() {
        let name = format!("crawl-{i:05}.warc.gz");
        assert!(path.ends_with(&name), "{}", path.display());
        assert_eq!(records[0].field("WARC-Filename"), Some(name.as_str()));
        let cdxj = std::fs::read_to_string(r.path(&format!("crawl-{i:05}.cdxj"))).unwrap();
        let responses = records
            .iter()
            .filter(|w| w.field("WARC-Type") == Some("response"))
            .count();
        assert_eq!(cdxj.lines().count(), responses, "{name}");
        assert!(
            cdxj.lines()
                .all(|l| l.contains(&format!("\"filename\": \"{name}\"")))
        );
    }
    for rec in &r.records {
        let w = pointed(rec);
        assert_eq!(w.field("WARC-Target-URI"), rec.url.as_deref());
    }
    let open = std::fs::read_dir(r.dir.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".open")
    });
    assert_eq!(open.count(), 0);
}

fn spawn(args: &[&str]) -> std::process::Child {
    std::process::Command::new(bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// After kill -9 (and a torn record at the end, as a write cut short leaves
/// it), `--resume` cuts the file back to its last whole record, closes it,
/// and goes on in a new file: every file whole, every pointer a whole record
/// of its URL, every input once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_leaves_whole_files_and_pointers_that_hold() {
    let server = crate::support::Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let n = 120;
    let list = p("list.txt");
    std::fs::write(
        &list,
        lines((0..n).map(|i| server.url(&format!("/bytes/{}", 1000 + i)))),
    )
    .unwrap();
    let (out, warc) = (p("out.jsonl"), p("x.warc.gz"));
    let args = [
        "-q", "-o", &out, "--warc", &warc, "--cdxj", "--rate", "40/s", &list,
    ];
    let mut child = spawn(&args);
    let open = dir.path().join("x.warc.gz.open");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(open.exists(), "the killed run's file is still .open");
    let kept = read_records(Path::new(&out)).len();
    assert!(
        kept > 0 && kept < n as usize,
        "{kept} records before the kill"
    );
    // A torn record: the start of a gzip member.
    let torn = &gzip(b"WARC/1.1\r\nWARC-Type: response\r\n")[..20];
    std::fs::OpenOptions::new()
        .append(true)
        .open(&open)
        .unwrap()
        .write_all(torn)
        .unwrap();

    let resumed: Output = std::process::Command::new(bin())
        .args([
            "-q", "-o", &out, "--warc", &warc, "--cdxj", "--resume", &list,
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert!(!open.exists());
    let files = archive(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["x-00001.warc.gz", "x.warc.gz"],
        "the first closed, the rest in a new one"
    );
    assert!(dir.path().join("x.cdxj").exists() && dir.path().join("x-00001.cdxj").exists());
    let records = read_records(Path::new(&out));
    assert_one_per_index(&records, n);
    for rec in &records {
        assert!(rec.ok, "{rec:?}");
        let w = pointed(rec);
        assert_eq!(w.field("WARC-Target-URI"), rec.url.as_deref());
        check_digests(&w);
    }
}

/// A full disk (a file-size limit, SIGXFSZ ignored) stops the run with exit
/// 2 naming the file; nothing unarchived counts as done, and `--resume`
/// completes the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_run_and_resume_completes_the_archive() {
    let server = crate::support::Server::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let n = 60;
    let list = p("list.txt");
    std::fs::write(
        &list,
        lines((0..n).map(|i| server.url(&format!("/bytes/{}", 8000 + i)))),
    )
    .unwrap();
    let (out, warc) = (p("out.jsonl"), p("x.warc.gz"));
    let args = ["-q", "-o", &out, "--warc", &warc, "-c", "2", &list];
    let run: Output = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        move || {
            let mut cmd = std::process::Command::new(bin());
            cmd.args(&args);
            // SAFETY: signal and setrlimit are async-signal-safe; nothing else runs.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    rlimit::setrlimit(rlimit::Resource::FSIZE, 100_000, 100_000)
                });
            }
            cmd.output().unwrap().into()
        }
    })
    .await
    .unwrap();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("x.warc.gz.open"),
        "names the file: {}",
        run.stderr
    );
    // Left open: whole records, then at most one torn one, for --resume.
    assert!(dir.path().join("x.warc.gz.open").exists());
    let before = read_records(Path::new(&out));
    let done = before.iter().filter(|r| r.ok).count();
    assert!(done < n as usize, "{done} done");
    assert!(
        before.iter().any(|r| r
            .error
            .as_ref()
            .is_some_and(|e| e.message.contains("not archived"))),
        "a record whose exchange could not be archived says so (cancelled: resume fetches it again)"
    );
    let resumed: Output = std::process::Command::new(bin())
        .args(["-q", "-o", &out, "--warc", &warc, "--resume", &list])
        .output()
        .unwrap()
        .into();
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    archive(dir.path());
    let records = read_records(Path::new(&out));
    assert_one_per_index(&records, n);
    records
        .iter()
        .for_each(|rec| assert_eq!(pointed(rec).field("WARC-Target-URI"), rec.url.as_deref()));
}

/// Ctrl-C and SIGTERM close the file: renamed, indexed, exit 130 / 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_closes_the_file() {
    let server = crate::support::Server::start().await.unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let list = p("list.txt");
        std::fs::write(
            &list,
            lines((0..200).map(|i| server.url(&format!("/bytes/{}", 500 + i)))),
        )
        .unwrap();
        let (out, warc) = (p("out.jsonl"), p("x.warc.gz"));
        let mut child = spawn(&[
            "-q", "-o", &out, "--warc", &warc, "--cdxj", "--rate", "40/s", &list,
        ]);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code));
        assert!(!dir.path().join("x.warc.gz.open").exists());
        assert!(dir.path().join("x.cdxj").exists());
        archive(dir.path());
        for rec in read_records(Path::new(&out)).iter().filter(|r| r.ok) {
            assert_eq!(pointed(rec).field("WARC-Target-URI"), rec.url.as_deref());
        }
    }
}

/// `--warc` over an output or an input, or a name without .warc.gz, is exit 2.
#[test]
fn a_warc_path_over_another_file_or_badly_named_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let list = p("list.warc.gz");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let out = p("o.warc.gz");
    for args in [
        vec!["-o", &out, "--warc", &out],
        vec!["--warc", &list],
        vec!["--warc", &p("x.txt")],
        vec!["--cdxj"],
    ] {
        let mut argv = args.clone();
        argv.push(&list);
        let run: Output = std::process::Command::new(bin())
            .args(&argv)
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, Some(2), "{argv:?}: {}", run.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "http://127.0.0.1:1/a\n"
    );
}

/// `--robots`: the robots.txt fetch is archived too; a disallowed URL is
/// never sent, so it has no record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_is_archived_and_a_disallowed_url_is_not() {
    let (port, _, _) = raw(|target| match target {
        "/robots.txt" => reply(
            200,
            "Content-Type: text/plain\r\n",
            b"User-agent: *\nDisallow: /private\n",
        ),
        _ => reply(200, "Content-Type: text/plain\r\n", b"page"),
    })
    .await;
    let u = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let list = lines([u("/open"), u("/private")]);
    let r = run(&["--warc", "{dir}/r.warc.gz", "--robots"], &list).await;
    assert!(r.at(0).ok && !r.at(1).ok, "{:?}", r.records);
    let (_, records) = &archive(r.dir.path())[0];
    let uris: Vec<(&str, &str)> = records
        .iter()
        .skip(1)
        .map(|w| {
            (
                w.field("WARC-Type").unwrap(),
                w.field("WARC-Target-URI").unwrap(),
            )
        })
        .collect();
    let robots = u("/robots.txt");
    assert!(uris.contains(&("request", robots.as_str())), "{uris:?}");
    assert!(uris.contains(&("response", robots.as_str())), "{uris:?}");
    assert!(
        !uris.iter().any(|(_, uri)| uri.ends_with("/private")),
        "{uris:?}"
    );
    assert!(r.at(1).warc.is_none());
}
