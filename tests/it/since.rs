//! `--since PREV`: conditional requests from the previous run's validators, its
//! body facts on a 304, and a `change` verdict on every record, against a
//! server that answers conditionals the way nginx does.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use trawl::Record;

use crate::support::{Output, bin, lines, read_records, validate};

/// One resource: its body, and whether it sends `ETag`/`Last-Modified`.
#[derive(Clone)]
struct Resource {
    body: String,
    validators: bool,
}

#[derive(Default)]
struct Site {
    resources: Mutex<HashMap<String, Resource>>,
    /// Each request's path and its `If-None-Match`.
    conditionals: Mutex<Vec<(String, Option<String>)>>,
}

impl Site {
    fn put(&self, path: &str, body: &str, validators: bool) {
        let r = Resource {
            body: body.into(),
            validators,
        };
        self.resources.lock().unwrap().insert(path.into(), r);
    }
}

/// Like nginx: `ETag` is a quoted hash of the body, `Last-Modified` a fixed date;
/// 304 when `If-None-Match` matches, or when there is no `If-None-Match` and
/// `If-Modified-Since` is not older; 200 otherwise; 404 for what is gone.
async fn serve(site: Arc<Site>) -> u16 {
    crate::support::serve(move |req| answer(&site, &req)).await
}

const LAST_MODIFIED: &str = "Mon, 02 Nov 2026 10:00:00 GMT";

fn answer(site: &Site, req: &hyper::Request<Incoming>) -> hyper::Response<String> {
    let path = req.uri().path().to_owned();
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let inm = header("if-none-match");
    let ims = header("if-modified-since");
    site.conditionals
        .lock()
        .unwrap()
        .push((path.clone(), inm.clone()));
    let Some(r) = site.resources.lock().unwrap().get(&path).cloned() else {
        return hyper::Response::builder()
            .status(404)
            .body("gone\n".into())
            .unwrap();
    };
    let mut response = hyper::Response::builder().header("content-type", "text/html");
    if r.validators {
        let etag = format!("\"{:x}\"", fxhash(&r.body));
        let fresh = match (&inm, &ims) {
            (Some(inm), _) => *inm == etag,
            (None, Some(ims)) => ims == LAST_MODIFIED,
            (None, None) => false,
        };
        response = response
            .header("etag", &etag)
            .header("last-modified", LAST_MODIFIED);
        if fresh {
            return response.status(304).body(String::new()).unwrap();
        }
    }
    response.body(r.body).unwrap()
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn trawl(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap().into()
}

fn by_path(records: &[Record]) -> HashMap<String, Record> {
    records
        .iter()
        .map(|r| {
            let path = r.url.as_deref().unwrap().rsplit('/').next().unwrap();
            (path.to_owned(), r.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_run_is_the_cache_and_every_record_says_what_changed() {
    let site = Arc::new(Site::default());
    let port = serve(site.clone()).await;
    site.put("/same", "<title>same</title>", true);
    site.put("/edited", "<title>before</title>", true);
    site.put("/removed", "<title>removed</title>", true);
    site.put("/plain", "<title>no validators</title>", false);
    site.put("/plain-edited", "<title>v1</title>", false);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");
    let first = ["same", "edited", "removed", "plain", "plain-edited"];
    std::fs::write(path("night1.txt"), lines(first.map(url))).unwrap();
    let (night1, save) = (path("night1.jsonl"), path("bodies"));
    let run1 = tokio::task::spawn_blocking({
        let (list, out, save) = (path("night1.txt"), night1.clone(), save.clone());
        move || trawl(&["-q", "--title", "-o", &out, "--save", &save, &list])
    })
    .await
    .unwrap();
    assert_eq!(run1.code, Some(0), "{}", run1.stderr);
    let before = by_path(&read_records(std::path::Path::new(&night1)));
    assert!(before["same"].etag.is_some() && before["same"].last_modified.is_some());
    assert_eq!(before["plain"].etag, None);
    assert_eq!(before["same"].change, None, "no verdict without --since");

    // A day passes.
    site.put("/edited", "<title>after</title>", true);
    site.resources.lock().unwrap().remove("/removed");
    site.put("/plain-edited", "<title>v2</title>", false);
    site.put("/added", "<title>new</title>", true);
    site.conditionals.lock().unwrap().clear();
    let second = [
        "same",
        "edited",
        "removed",
        "plain",
        "plain-edited",
        "added",
    ];
    std::fs::write(path("night2.txt"), lines(second.map(url))).unwrap();
    // A torn last line, as a killed run leaves it.
    let mut torn = std::fs::read_to_string(&night1).unwrap();
    torn.push_str(r#"{"index":9,"input":"http://x/","url":"#);
    std::fs::write(&night1, torn).unwrap();
    let (night2, summary) = (path("night2.jsonl"), path("summary.json"));
    let run2 = tokio::task::spawn_blocking({
        let (list, out, s, prev, save) = (
            path("night2.txt"),
            night2.clone(),
            summary.clone(),
            night1.clone(),
            save.clone(),
        );
        move || {
            trawl(&[
                "--no-progress",
                "--title",
                "--body",
                "--save",
                &save,
                "--since",
                &prev,
                "-o",
                &out,
                "--summary",
                &s,
                &list,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(
        run2.code,
        Some(1),
        "the removed page fails: {}",
        run2.stderr
    );
    assert!(run2.stderr.contains("skipped 1 line"), "{}", run2.stderr);
    assert!(
        run2.stderr
            .contains("1 new, 2 changed, 2 unchanged, 1 broken"),
        "{}",
        run2.stderr
    );
    let after = by_path(&read_records(std::path::Path::new(&night2)));

    let same = &after["same"];
    assert_eq!(
        (same.ok, same.status, same.not_modified),
        (true, Some(304), Some(true))
    );
    assert_eq!(same.change, Some(trawl::Change::Unchanged));
    for (now, then) in [
        (&same.sha256, &before["same"].sha256),
        (&same.title, &before["same"].title),
        (&same.saved, &before["same"].saved),
        (&same.etag, &before["same"].etag),
        (&same.content_type, &before["same"].content_type),
    ] {
        assert_eq!(now, then, "a 304 keeps the previous body facts");
    }
    assert_eq!(same.bytes, before["same"].bytes);
    assert_eq!(
        same.body.as_deref(),
        Some("<title>same</title>"),
        "--body from --save"
    );
    let verdict = |p: &str| after[p].change;
    use trawl::Change::*;
    assert_eq!(verdict("edited"), Some(Changed));
    assert_eq!(after["edited"].status, Some(200));
    assert_eq!(after["edited"].title.as_deref(), Some("after"));
    assert_eq!(verdict("removed"), Some(Broken));
    assert_eq!(after["removed"].status, Some(404));
    assert_eq!(
        verdict("plain"),
        Some(Unchanged),
        "same hash, no validators"
    );
    assert_eq!(verdict("plain-edited"), Some(Changed));
    assert_eq!(verdict("added"), Some(New));

    let asked: HashMap<String, Option<String>> =
        site.conditionals.lock().unwrap().iter().cloned().collect();
    assert_eq!(asked["/same"], before["same"].etag);
    assert_eq!(asked["/edited"], before["edited"].etag);
    assert!(asked["/plain"].is_none() && asked["/added"].is_none());

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    validate(&trawl::schema::summary(), &summary).unwrap();
    assert_eq!(
        summary["changes"],
        serde_json::json!({"new": 1, "changed": 2, "unchanged": 2, "broken": 1})
    );

    // Resumed after being killed half-way: the same verdicts.
    let full = std::fs::read_to_string(&night2).unwrap();
    let half: String = full.lines().take(3).map(|l| format!("{l}\n")).collect();
    let resumed = path("resumed.jsonl");
    std::fs::write(&resumed, half).unwrap();
    let run3 = tokio::task::spawn_blocking({
        let (list, out, prev) = (path("night2.txt"), resumed.clone(), night1.clone());
        move || {
            trawl(&[
                "-q", "--title", "--since", &prev, "--resume", "-o", &out, &list,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(run3.code, Some(1), "{}", run3.stderr);
    let again = by_path(&read_records(std::path::Path::new(&resumed)));
    assert_eq!(again.len(), 6);
    for p in second {
        assert_eq!(again[p].change, after[p].change, "{p}");
    }
}

#[test]
fn an_unusable_prev_is_exit_2_before_anything_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "http://127.0.0.1:9/never\n").unwrap();
    let list = list.display().to_string();
    let out = trawl(&["--since", "/nonexistent/prev.jsonl", &list]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("/nonexistent/prev.jsonl"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    let prev = dir.path().join("prev.jsonl").display().to_string();
    std::fs::write(&prev, "").unwrap();
    let same = trawl(&["--since", &prev, "-o", &prev, &list]);
    assert_eq!(same.code, Some(2), "{}", same.stderr);
    assert!(same.stderr.contains("--since file"), "{}", same.stderr);
}
