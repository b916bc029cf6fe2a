//! How a job's fetch and processing become its one record.

use crate::failure::Failure;
use crate::fetch::Report;
use crate::input::{Job, Request, without_passwords};
use crate::output::{CREDENTIALS, Record, RequestParts};
use crate::values::{StatusSet, millis};

use super::builtins::Processed;

/// Build the record of one job from what the fetch and process stages found.
/// `processed` is `None` when processing did not run, `Some(Err)` when it panicked.
pub(crate) fn assemble(
    ok_status: &StatusSet,
    job: Job,
    report: Report,
    processed: Option<Result<Processed, Failure>>,
) -> Record {
    let mut r = Record {
        index: job.index,
        input: without_passwords(job.input),
        id: job.id,
        ..Record::default()
    };
    let (url, parts) = match job.request {
        Ok(request) => (Some(request.url.clone()), own_parts(request)),
        Err(_) => (None, None),
    };
    if report.attempts > 0 {
        r.attempts = Some(report.attempts);
        r.elapsed_ms = Some(millis(report.elapsed));
    }
    let mut failure = report.body.as_ref().err().cloned();
    if let Ok(body) = &report.body {
        r.bytes = Some(body.len() as u64);
    }
    let status = report.head.as_ref().map(|h| h.status);
    if let Some(head) = report.head {
        if url.as_ref() != Some(&head.final_url) {
            r.final_url = Some(without_passwords(head.final_url.into()));
        }
        r.status = Some(head.status.as_u16());
        r.http_version = Some(version_name(head.version).to_owned());
        r.content_type = head.content_type;
        r.redirects = Some(head.redirects);
        r.ttfb_ms = Some(millis(head.ttfb));
        r.etag = head.etag;
        r.last_modified = head.last_modified;
        r.location = head.location.filter(|l| !l.trim().is_empty());
    }
    r.url = url.map(|u| without_passwords(u.into()));
    match processed {
        Some(Ok(p)) => {
            r.sha256 = p.sha256;
            r.blake3 = p.blake3;
            r.title = p.title;
            r.matches = p.matches;
            r.jq = p.jq;
            r.select = p.select;
            r.saved = p.saved;
            r.body = p.body;
            r.body_encoding = p.body_base64.then(|| "base64".to_owned());
        }
        Some(Err(f)) => failure = failure.or(Some(f)),
        None => {}
    }
    if failure.is_none()
        && let Some(status) = status
        && !ok_status.contains(status.as_u16())
    {
        failure = Some(Failure::HttpStatus(status.to_string()));
    }
    r.ok = failure.is_none() && status.is_some();
    r.error = failure.map(|f| f.info());
    if !r.ok {
        r.request = parts;
    }
    r
}

/// A request object's own method, headers and body, as a failure record keeps
/// them (credentials withheld); `None` for a plain URL.
fn own_parts(request: Request) -> Option<RequestParts> {
    if request.method.is_none() && request.headers.is_empty() && request.body.is_none() {
        return None;
    }
    let mut parts = RequestParts {
        method: request.method.map(|m| m.to_string()),
        body: request
            .body
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        ..RequestParts::default()
    };
    for (name, value) in &request.headers {
        match CREDENTIALS.contains(&name.as_str()) {
            true => parts.withheld.push(name.to_string()),
            false => {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                parts.headers.insert(name.to_string(), value);
            }
        }
    }
    Some(parts)
}

/// `"1.1"`, `"2"`: the record's `http_version`.
pub(crate) fn version_name(v: reqwest::Version) -> &'static str {
    match v {
        reqwest::Version::HTTP_09 => "0.9",
        reqwest::Version::HTTP_10 => "1.0",
        reqwest::Version::HTTP_11 => "1.1",
        reqwest::Version::HTTP_2 => "2",
        reqwest::Version::HTTP_3 => "3",
        _ => "unknown",
    }
}
