//! The CDXJ index beside each WARC file (`--cdxj`): a line per response or
//! revisit record, `SURT TIMESTAMP {json}`, as the webrecorder tools
//! (`cdxj-indexer`, pywb) write and read it, sorted bytewise.

use serde_json::{Map, Value};
use url::Url;

/// What an index line says of a record, before its place in the file is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fields {
    pub(crate) url: String,
    /// WARC-Date (RFC 3339).
    pub(crate) date: String,
    pub(crate) revisit: bool,
    pub(crate) status: Option<u16>,
    /// The response's Content-Type, as sent.
    pub(crate) mime: Option<String>,
    pub(crate) digest: String,
}

impl Fields {
    /// The line, for the record at `offset` of `length` bytes in `filename`.
    pub(crate) fn line(&self, offset: u64, length: u64, filename: &str) -> String {
        let mut json = Map::new();
        json.insert("url".into(), Value::from(self.url.as_str()));
        let mime = match self.revisit {
            true => Some("warc/revisit".to_owned()),
            // The media type alone: up to the first `;` or space.
            false => self.mime.as_deref().map(|m| {
                m.split([';', ' ', '\t', '\r', '\n'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            }),
        };
        if let Some(mime) = mime {
            json.insert("mime".into(), Value::from(mime));
        }
        if let Some(status) = self.status {
            json.insert("status".into(), Value::from(status.to_string()));
        }
        json.insert("digest".into(), Value::from(self.digest.as_str()));
        json.insert("length".into(), Value::from(length.to_string()));
        json.insert("offset".into(), Value::from(offset.to_string()));
        json.insert("filename".into(), Value::from(filename));
        format!(
            "{} {} {}",
            surt(&self.url),
            timestamp(&self.date),
            python_json(&Value::Object(json))
        )
    }
}

/// `2026-12-03T17:30:04Z` -> `20261203173004`.
pub(crate) fn timestamp(date: &str) -> String {
    date.chars().filter(char::is_ascii_digit).take(14).collect()
}

/// JSON as Python's `json.dumps` writes it: `", "` and `": "` between items,
/// anything past ASCII escaped.
fn python_json(value: &Value) -> String {
    let compact = serde_json::to_string(value).expect("a map of strings");
    let mut out = String::with_capacity(compact.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    for c in compact.chars() {
        match c {
            _ if in_string && escaped => {
                escaped = false;
                out.push(c);
            }
            '\\' if in_string => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                in_string = !in_string;
                out.push(c);
            }
            ',' | ':' if !in_string => {
                out.push(c);
                out.push(' ');
            }
            c if !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The SURT form of a URL that the `surt` package gives: lowercase, no scheme
/// or user, host labels reversed with a leading `www`/`www2`... dropped, the
/// default port dropped, a trailing slash dropped, query arguments sorted, no
/// fragment. Not done: its removal of session IDs from paths and queries.
pub(crate) fn surt(url: &str) -> String {
    let Ok(parsed) = Url::parse(url) else {
        return url.to_owned();
    };
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = strip_www(host);
    let mut key: String = host.split('.').rev().collect::<Vec<_>>().join(",");
    if let Some(port) = parsed.port() {
        key.push_str(&format!(":{port}"));
    }
    key.push(')');
    let mut path = unescape_unreserved(parsed.path()).to_ascii_lowercase();
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    key.push_str(&path);
    if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
        let query = unescape_unreserved(query).to_ascii_lowercase();
        let mut args: Vec<(&str, Option<&str>)> = query
            .split('&')
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (a, None),
            })
            .collect();
        args.sort();
        let joined: Vec<String> = args
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => (*k).to_owned(),
            })
            .collect();
        key.push('?');
        key.push_str(&joined.join("&"));
    }
    key
}

fn strip_www(host: &str) -> &str {
    let Some(rest) = host.strip_prefix("www") else {
        return host;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest[digits..].strip_prefix('.') {
        Some(tail) => tail,
        None => host,
    }
}

/// `%7E` -> `~`: escapes of unreserved characters, which the canonical form
/// writes plainly.
fn unescape_unreserved(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(hex, 16)
            && (v.is_ascii_alphanumeric() || b"-._~".contains(&v))
        {
            out.push(v as char);
            i += 3;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys the `surt` package gives for these URLs (surt 0.3.1).
    #[test]
    fn surt_keys_match_the_reference_package() {
        for (url, key) in [
            (
                "http://127.0.0.1:8080/a?b=2&a=1",
                "1,0,0,127:8080)/a?a=1&b=2",
            ),
            (
                "http://WWW.Example.com/Path/?x=1#frag",
                "com,example)/path?x=1",
            ),
            ("https://example.com:443/", "com,example)/"),
            ("http://example.com:80/x", "com,example)/x"),
            ("http://example.com", "com,example)/"),
            (
                "https://sub.www.example.com/a%20b",
                "com,example,www,sub)/a%20b",
            ),
            ("http://[::1]:8000/x", "::1:8000)/x"),
            ("http://example.com/?", "com,example)/"),
            (
                "http://example.com/a?B=1&a=2&a=1",
                "com,example)/a?a=1&a=2&b=1",
            ),
            ("http://www2.example.com/", "com,example)/"),
            ("http://example.com/%7Efoo", "com,example)/~foo"),
            ("http://example.com/a;b?c", "com,example)/a;b?c"),
            ("http://user:pw@example.com/", "com,example)/"),
            ("http://example.com/a b", "com,example)/a%20b"),
            ("http://wwwx.example.com/", "com,example,wwwx)/"),
        ] {
            assert_eq!(surt(url), key, "{url}");
        }
    }

    #[test]
    fn a_line_is_written_as_cdxj_indexer_writes_it() {
        let fields = Fields {
            url: "http://a.test/x".into(),
            date: "2026-12-03T17:30:04Z".into(),
            revisit: false,
            status: Some(200),
            mime: Some("text/html; charset=utf-8".into()),
            digest: "sha1:ABC".into(),
        };
        assert_eq!(
            fields.line(10, 20, "x.warc.gz"),
            "test,a)/x 20261203173004 {\"url\": \"http://a.test/x\", \"mime\": \"text/html\", \
             \"status\": \"200\", \"digest\": \"sha1:ABC\", \"length\": \"20\", \"offset\": \"10\", \
             \"filename\": \"x.warc.gz\"}"
        );
        let revisit = Fields {
            revisit: true,
            mime: None,
            url: "http://a.test/é".into(),
            ..fields
        };
        let line = revisit.line(0, 1, "f");
        assert!(line.contains("\"mime\": \"warc/revisit\""), "{line}");
    }
}
