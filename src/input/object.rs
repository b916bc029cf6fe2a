//! A JSON request object on an input line: `{"url", "method", "headers",
//! "body", "id"}`, and trawl's own records fed back as input.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::job::Request;
use super::lines::{echo, parse_url};
use crate::failure::Failure;

/// A JSON request object. Unknown fields are ignored, so earlier output is valid input.
#[derive(Deserialize)]
struct RawRequest {
    url: Option<Value>,
    method: Option<String>,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    body: Option<Value>,
    id: Option<Value>,
    /// A trawl record's `input` and `error`: a failure record without `url`
    /// (a bad line) gives back the same verdict for the same input.
    input: Option<String>,
    error: Option<crate::failure::ErrorInfo>,
    /// Present in trawl's own records: such a line is re-fetched by its `url`
    /// (and keeps its `id`); its `body` is output, not something to send.
    ok: Option<Value>,
    /// A failure record's request parts: its request object's own method,
    /// headers and body, to make the same request again.
    request: Option<Parts>,
}

/// A request's own parts: of a request object, or kept by a failure record.
#[derive(Deserialize, Default)]
struct Parts {
    method: Option<String>,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    body: Option<Value>,
    /// Credential headers the record did not keep.
    #[serde(default)]
    withheld: Vec<String>,
}

pub(super) fn parse_object(text: &str) -> (String, Option<Value>, Result<Request, Failure>) {
    let raw: RawRequest = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            return (
                echo(text.as_bytes()),
                None,
                Err(Failure::InvalidInput(format!("invalid JSON: {e}"))),
            );
        }
    };
    let id = raw.id.clone();
    let url = match &raw.url {
        Some(Value::String(url)) => url.trim().to_owned(),
        Some(_) => {
            return (
                echo(text.as_bytes()),
                id,
                Err(invalid("\"url\" must be a string")),
            );
        }
        None if raw.ok.is_some() && raw.input.is_some() => {
            let input = raw.input.unwrap_or_default();
            let message = raw.error.map(|e| e.message).unwrap_or_default();
            // The same verdict again: a scheme is judged again from the input;
            // a bad line's input is only its start, so its message is kept.
            let failure = match parse_url(&input) {
                Err(failure @ Failure::UnsupportedScheme(_)) => failure,
                _ => Failure::InvalidInput(message),
            };
            return (input, id, Err(failure));
        }
        None => {
            return (
                echo(text.as_bytes()),
                id,
                Err(invalid("request object has no \"url\"")),
            );
        }
    };
    let request = parse_url(&url).and_then(|parsed| request_from(raw, parsed));
    (url, id, request)
}

fn request_from(raw: RawRequest, url: Url) -> Result<Request, Failure> {
    let parts = match (raw.ok, raw.request) {
        (None, _) => Parts {
            method: raw.method,
            headers: raw.headers,
            body: raw.body,
            withheld: Vec::new(),
        },
        (Some(_), None) => return Ok(Request::get(url)),
        (Some(_), Some(parts)) if !parts.withheld.is_empty() => {
            return Err(invalid(format!(
                "this record's request had {} (records do not keep credentials), so it \
                 cannot be made again from the record: feed the original request line, \
                 or give the header with -H",
                parts.withheld.join(", ")
            )));
        }
        (Some(_), Some(parts)) => parts,
    };
    let method = parts
        .method
        .map(|m| {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| invalid(format!("invalid method '{m}'")))
        })
        .transpose()?;
    let mut headers = HeaderMap::new();
    for (name, value) in parts.headers {
        let Value::String(value) = value else {
            return Err(invalid(format!("header '{name}' must be a string")));
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("invalid header name '{name}'")))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| invalid(format!("invalid value for header '{name}'")))?;
        headers.append(name, value);
    }
    let body = match parts.body {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.into_bytes()),
        Some(other) => Some(other.to_string().into_bytes()),
    };
    Ok(Request {
        url,
        method,
        headers,
        body,
        options: true,
    })
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::InvalidInput(message.into())
}
