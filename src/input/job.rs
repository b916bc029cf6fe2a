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

/// `text` with the password of every `scheme://user:password@` in it removed
/// (the user is kept): records are shared and archived, and give no secret away.
pub(crate) fn without_passwords(text: String) -> String {
    if !text.contains('@') {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\\') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(a) => {
                let userinfo = &authority[..a];
                let user = userinfo.split(':').next().unwrap_or("");
                out.push_str(user);
                out.push_str(&authority[a..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_passwords;

    #[test]
    fn passwords_leave_no_record_and_users_stay() {
        for (text, want) in [
            ("https://u:secret@h.test/a?b=c", "https://u@h.test/a?b=c"),
            ("https://u@h.test/", "https://u@h.test/"),
            ("https://h.test/a@b", "https://h.test/a@b"),
            (
                r#"{"url": "http://a:b@h.test:8080/x", "id": "mail@me"}"#,
                r#"{"url": "http://a@h.test:8080/x", "id": "mail@me"}"#,
            ),
            (
                "http://a:b@x.test/ http://c:d@y.test/",
                "http://a@x.test/ http://c@y.test/",
            ),
            ("not a url @ all", "not a url @ all"),
        ] {
            assert_eq!(without_passwords(text.into()), want, "{text}");
        }
    }
}
