//! The output record: the JSON-lines schema in one place (the lanes build it,
//! `process/assemble.rs`). Every input line becomes exactly one `Record`,
//! successful or not (the error kinds live in `failure.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::{ErrorInfo, ErrorKind};

/// Where a WARC record lies: `dd if=FILE bs=1 skip=OFFSET count=LENGTH` is
/// the record (one gzip member in a `.warc.gz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WarcPointer {
    /// The WARC file, as `--warc` named its folder, under its final name.
    pub file: String,
    pub offset: u64,
    pub length: u64,
}

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
    /// A 3xx record's `Location` header (`--no-follow`, or a redirect not followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
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
    /// `--exec`: the worker's answer to this body, any JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Value>,
    /// `--warc`: where this input's final response (or revisit) record lies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warc: Option<WarcPointer>,
    /// A failure of a request object that asked for its own method, headers
    /// or body: those parts as given, so the record fed back as input makes
    /// the same request (credentials excepted: see [`RequestParts`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestParts>,
}

/// A request object's own parts, as a failure record keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Headers not kept because they carry credentials (`Authorization`,
    /// `Proxy-Authorization`, `Cookie`): a record with any, fed back, is an
    /// `invalid_input` record saying to feed the original request line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
}

/// Headers whose values a record never keeps.
pub(crate) const CREDENTIALS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

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
