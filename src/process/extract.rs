//! What `--jq`, `--select` and `--regex` pull out of a body. Compiled once from
//! the command line (a bad filter, selector or pattern is a usage error before
//! anything is fetched) and run by the process stage, off the async runtime.

use std::borrow::Cow;

use regex::bytes::Regex;
use scraper::{Html, Selector};

/// Most values one record carries per extraction; a pattern like `.` on a large
/// body would otherwise make a single JSON line of hundreds of megabytes.
pub(crate) const MAX_VALUES: usize = 1000;

/// The jq interpreter's data: JSON values, and the filter's lookup table.
type JqData = jaq_core::data::JustLut<jaq_json::Val>;

/// `--jq FILTER` (jaq: the jq language in Rust), run on the body parsed as JSON.
#[derive(Clone)]
pub(crate) struct Jq {
    filter: std::sync::Arc<jaq_core::Filter<JqData>>,
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jq")
    }
}

impl Jq {
    pub(crate) fn parse(code: &str) -> Result<Jq, String> {
        use jaq_core::load::{Arena, Error as E, File, Loader};
        let invalid = |why: String| format!("invalid --jq filter '{code}': {why}");
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errs| {
                let why: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, e)| match e {
                        E::Lex(es) => es
                            .iter()
                            .map(|(expect, at)| format!("expected {} at '{at}'", expect.as_str()))
                            .collect(),
                        E::Parse(es) => es
                            .iter()
                            .map(|(expect, at)| format!("expected {} at '{at}'", expect.as_str()))
                            .collect(),
                        E::Io(es) => es.iter().map(|(_, why)| why.clone()).collect::<Vec<_>>(),
                    })
                    .collect();
                invalid(why.join("; "))
            })?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let why: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, es)| es.iter())
                    .map(|(name, kind)| format!("undefined {} '{name}'", kind.as_str()))
                    .collect();
                invalid(why.join("; "))
            })?;
        Ok(Jq {
            filter: std::sync::Arc::new(filter),
        })
    }

    /// The filter's outputs (at most `MAX_VALUES`) on each JSON value of the
    /// body in turn, as jq reads its input: one document, NDJSON or values
    /// one after another; an empty body (a 204) gives no output.
    /// Err when the body is not JSON or the filter fails on it.
    pub(crate) fn run(&self, body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
        let mut out = Vec::new();
        for input in jaq_json::read::parse_many(body) {
            let input = input.map_err(|e| format!("--jq: the body is not JSON: {e}"))?;
            let ctx = jaq_core::Ctx::<JqData>::new(&self.filter.lut, jaq_core::Vars::new([]));
            let room = MAX_VALUES - out.len();
            for value in self
                .filter
                .id
                .run((ctx, input))
                .map(jaq_core::unwrap_valr)
                .take(room)
            {
                let value = value.map_err(|e| format!("--jq: {e}"))?;
                let text = value.to_string();
                // jaq's values print as JSON, except a few (NaN, byte strings): those as text.
                out.push(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
            }
            if out.len() == MAX_VALUES {
                break;
            }
        }
        Ok(out)
    }
}

/// `--regex RE`: every non-overlapping match, or its first capture group when
/// the pattern has one.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    regex: Regex,
}

impl Pattern {
    pub(crate) fn parse(pattern: &str) -> Result<Pattern, String> {
        Regex::new(pattern)
            .map(|regex| Pattern { regex })
            .map_err(|e| format!("invalid --regex: {e}"))
    }

    /// Matches in `body`, as text (invalid UTF-8 replaced), at most `MAX_VALUES`.
    pub(crate) fn matches(&self, body: &[u8]) -> Vec<String> {
        let text = |m: regex::bytes::Match<'_>| String::from_utf8_lossy(m.as_bytes()).into_owned();
        if self.regex.captures_len() > 1 {
            self.regex
                .captures_iter(body)
                .filter_map(|c| c.get(1).map(text))
                .take(MAX_VALUES)
                .collect()
        } else {
            self.regex
                .find_iter(body)
                .map(text)
                .take(MAX_VALUES)
                .collect()
        }
    }
}

/// `--select CSS` (element text) or `--select 'CSS@attr'` (attribute values).
#[derive(Debug, Clone)]
pub(crate) struct Select {
    selector: Selector,
    attr: Option<String>,
}

impl Select {
    pub(crate) fn parse(spec: &str) -> Result<Select, String> {
        let invalid = |e: String| format!("invalid --select '{spec}': {e}");
        if let Some((css, attr)) = spec.rsplit_once('@')
            && is_attr_name(attr)
            && let Ok(selector) = Selector::parse(css)
        {
            return Ok(Select {
                selector,
                attr: Some(attr.to_owned()),
            });
        }
        let selector = Selector::parse(spec).map_err(|e| match spec.rsplit_once('@') {
            Some((css, attr)) if Selector::parse(css).is_ok() => invalid(format!(
                "'{attr}' after '@' is not an attribute name (CSS@ATTR, e.g. 'a@href')"
            )),
            _ => invalid(selector_error(e)),
        })?;
        Ok(Select {
            selector,
            attr: None,
        })
    }

    /// Text (whitespace collapsed, empty ones left out) or attribute values of the
    /// matching elements in document order, at most `MAX_VALUES`.
    pub(crate) fn select(&self, html: &str) -> Vec<String> {
        let doc = Html::parse_document(html);
        let found = doc.select(&self.selector);
        match &self.attr {
            Some(attr) => found
                .filter_map(|el| el.value().attr(attr).map(str::to_owned))
                .take(MAX_VALUES)
                .collect(),
            None => found
                .map(|el| collapse(&el.text().collect::<Cow<'_, str>>()))
                .filter(|t| !t.is_empty())
                .take(MAX_VALUES)
                .collect(),
        }
    }
}

/// scraper's own text for some errors asks to report a bug; name the problem instead.
fn selector_error(e: scraper::error::SelectorErrorKind) -> String {
    use scraper::error::SelectorErrorKind as K;
    match e {
        K::UnexpectedSelectorParseError(kind) => format!("not a CSS selector ({kind:?})"),
        other => other.to_string(),
    }
}

fn is_attr_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
}

/// Runs of whitespace become one space; none at either end.
pub(crate) fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jq_outputs_every_value_and_reports_errors() {
        let jq = Jq::parse(".tags[] | ascii_upcase").unwrap();
        let body = br#"{"id": 7, "tags": ["a", "b"]}"#;
        assert_eq!(
            jq.run(body).unwrap(),
            [serde_json::json!("A"), serde_json::json!("B")]
        );
        let obj = Jq::parse("{id, n: (.tags | length)}").unwrap();
        assert_eq!(
            obj.run(body).unwrap(),
            [serde_json::json!({"id": 7, "n": 2})]
        );
        assert!(Jq::parse("empty").unwrap().run(body).unwrap().is_empty());
        // Regression: NDJSON was a `process` failure and an empty body (a 204)
        // too; jq runs the filter on each value, and on none.
        let ids = Jq::parse(".id").unwrap();
        let ndjson = b"{\"id\": 1}\n{\"id\": 2}\n\n{\"id\": 3} {\"id\": 4}\n";
        assert_eq!(
            ids.run(ndjson).unwrap(),
            [1, 2, 3, 4].map(|n| serde_json::json!(n))
        );
        assert_eq!(ids.run(b"").unwrap(), Vec::<serde_json::Value>::new());
        assert_eq!(ids.run(b" \n").unwrap(), Vec::<serde_json::Value>::new());
        assert!(ids.run(b"{\"id\": 1}\n{oops").is_err());
        // Regression: object keys came out sorted; jq keeps their order.
        let ordered = Jq::parse("{b: 1, a: 2, c: {z: 0, y: 1}}").unwrap();
        let out = ordered.run(b"null").unwrap();
        assert_eq!(
            serde_json::to_string(&out[0]).unwrap(),
            r#"{"b":1,"a":2,"c":{"z":0,"y":1}}"#
        );
        assert!(jq.run(b"<html>").unwrap_err().contains("not JSON"));
        assert!(Jq::parse(".id | ascii_upcase").unwrap().run(body).is_err());
        for bad in [".[", "nosuchfilter", "$x"] {
            let e = Jq::parse(bad).unwrap_err();
            assert!(e.contains("invalid --jq filter"), "{bad}: {e}");
        }
    }

    #[test]
    fn regex_returns_matches_or_the_first_group() {
        let body = b"id=12 id=7 x id=300";
        let all = Pattern::parse(r"id=\d+").unwrap();
        assert_eq!(all.matches(body), ["id=12", "id=7", "id=300"]);
        let group = Pattern::parse(r"id=(\d+)").unwrap();
        assert_eq!(group.matches(body), ["12", "7", "300"]);
        assert!(Pattern::parse("a(").is_err());
        let many = Pattern::parse(".").unwrap();
        assert_eq!(many.matches(&[b'a'; 5000]).len(), MAX_VALUES);
        // Not UTF-8: matched on the bytes, reported as text.
        assert_eq!(all.matches(b"\xffid=1\xfe"), ["id=1"]);
    }

    #[test]
    fn select_text_and_attributes() {
        let html = r#"<ul><li><a href="/a">First
            link</a></li><li><a href="/b">Second</a></li><li><a>none</a></li></ul>"#;
        let text = Select::parse("li > a").unwrap();
        assert_eq!(text.select(html), ["First link", "Second", "none"]);
        let href = Select::parse("li > a@href").unwrap();
        assert_eq!(href.select(html), ["/a", "/b"]);
        // An '@' inside the selector is not an attribute suffix.
        let quoted = Select::parse(r#"a[href="x@y"]"#).unwrap();
        assert!(quoted.attr.is_none());
        assert!(Select::parse("li >").is_err());
        assert!(Select::parse("@href").is_err());
        // Regression: 'a@' said "Token was not expected".
        for bad in ["a@", "a@ href", "li > a@!"] {
            let why = Select::parse(bad).unwrap_err();
            assert!(
                why.contains("after '@' is not an attribute name"),
                "{bad}: {why}"
            );
        }
    }
}
