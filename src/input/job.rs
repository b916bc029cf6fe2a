//! A job: one non-skipped input line and the request it asks for (or why it
//! cannot be made). Made by the input stage, carried through every stage after.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::shard::ShardBy;
use crate::failure::Failure;

/// One non-skipped input line.
#[derive(Debug)]
pub(crate) struct Job {
    /// 0-based position among the non-skipped lines of all inputs.
    pub index: u64,
    /// The input as given: the URL text (or the start of a bad line).
    pub input: String,
    pub id: Option<Value>,
    pub request: Result<Request, Failure>,
}

impl Job {
    /// What `--shard` splits by: the host name or its registrable domain (so a
    /// site's URLs stay together on one machine, whatever the scheme or port), or
    /// the line itself when it is not a usable URL.
    pub(crate) fn shard_key(&self, by: ShardBy) -> &str {
        match &self.request {
            Ok(request) => match request.url.host_str() {
                Some(host) => super::shard::key(host, by),
                None => &self.input,
            },
            Err(_) => &self.input,
        }
    }
}

/// A request to make. Unset parts fall back to the command-line options.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: Url,
    pub method: Option<Method>,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// Whether `-X`, `-H` and `-d` apply (not to trawl's own requests, such as
    /// robots.txt).
    pub options: bool,
}

impl Request {
    /// A GET of `url` with nothing of its own.
    pub fn get(url: Url) -> Request {
        Request {
            url,
            method: None,
            headers: HeaderMap::new(),
            body: None,
            options: true,
        }
    }

    /// A plain GET of `url` that no command-line option changes.
    pub(crate) fn own_get(url: Url) -> Request {
        Request {
            options: false,
            ..Request::get(url)
        }
    }
}
