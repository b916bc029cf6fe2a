//! The output record: the JSON-lines schema in one place, and how a job's fetch
//! and processing become one. Every input line becomes exactly one `Record`,
//! successful or not (the error kinds live in `failure.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) use crate::failure::{ErrorInfo, ErrorKind, Failure};
use crate::fetch::Report;
use crate::job::Job;
use crate::process::Processed;
use crate::values::StatusSet;

/// One output line, for one input line. Absent values are omitted, never null.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Record {
    pub index: u64,
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirects: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `--jq`: the filter's outputs, at most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq: Option<Vec<Value>>,
    /// `--select`: the selected texts or attribute values, at most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    /// `--regex`: the matches (empty when none), at most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<String>>,
    /// `--save`: where the body was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `"base64"` when `body` is not UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<String>,
    /// The final response's `ETag`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The final response's `Last-Modified`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// `--since`: the server answered 304 to a conditional request; the body
    /// facts are the previous run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_modified: Option<bool>,
    /// `--since`: how this input compares with the previous run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// How an input compares with the previous run (`--since`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// No ok record for this URL in the previous run.
    New,
    /// A 304, or the same body digest as before.
    Unchanged,
    /// Ok now and before, with a different body digest.
    Changed,
    /// Ok before, failed now.
    Broken,
}

impl Record {
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }
}

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
        input: job.input,
        id: job.id,
        ..Record::default()
    };
    let url = job.request.ok().map(|request| request.url);
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
            r.final_url = Some(head.final_url.into());
        }
        r.status = Some(head.status.as_u16());
        r.http_version = Some(version_name(head.version).to_owned());
        r.content_type = head.content_type;
        r.redirects = Some(head.redirects);
        r.ttfb_ms = Some(millis(head.ttfb));
        r.etag = head.etag;
        r.last_modified = head.last_modified;
    }
    r.url = url.map(String::from);
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
    r
}

/// Milliseconds with microsecond precision, for `elapsed_ms` and `ttfb_ms`.
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_omitted() {
        let r = Record {
            index: 3,
            input: "x".into(),
            ..Record::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"index":3,"input":"x","ok":false}"#
        );
    }
}
