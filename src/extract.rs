//! What `--regex` and `--select` pull out of a body. Compiled once from the
//! command line (a bad pattern is a usage error before anything is fetched) and
//! run by the process stage, off the async runtime.

use std::borrow::Cow;

use regex::bytes::Regex;
use scraper::{Html, Selector};

/// Most values one record carries per extraction; a pattern like `.` on a large
/// body would otherwise make a single JSON line of hundreds of megabytes.
pub const MAX_VALUES: usize = 1000;

/// `--regex RE`: every non-overlapping match, or its first capture group when
/// the pattern has one.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        Regex::new(pattern)
            .map(|regex| Pattern { regex })
            .map_err(|e| format!("invalid --regex: {e}"))
    }

    /// Matches in `body`, as text (invalid UTF-8 replaced), at most `MAX_VALUES`.
    pub fn matches(&self, body: &[u8]) -> Vec<String> {
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
pub struct Select {
    selector: Selector,
    attr: Option<String>,
}

impl Select {
    pub fn parse(spec: &str) -> Result<Select, String> {
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
        let selector = Selector::parse(spec).map_err(|e| invalid(selector_error(e)))?;
        Ok(Select {
            selector,
            attr: None,
        })
    }

    /// Text (whitespace collapsed, empty ones left out) or attribute values of the
    /// matching elements in document order, at most `MAX_VALUES`.
    pub fn select(&self, html: &str) -> Vec<String> {
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
pub fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
