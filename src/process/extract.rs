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
    /// `$ENV`'s value as JSON text, when the filter names it (read once, at
    /// start; parsed per body, as jaq's values cannot cross threads).
    env: Option<std::sync::Arc<str>>,
}

/// jq's formats that jaq leaves out, in the jq language: `@csv` and `@tsv`
/// rows from an array (strings quoted or escaped, numbers and booleans as
/// they print, null empty, anything else an error, as jq says).
const MORE_DEFS: &str = r#"
def @csv: if type != "array" then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be") end
  | map(if type == "string" then "\"" + gsub("\""; "\"\"") + "\""
        elif type == "number" or type == "boolean" then tojson
        elif . == null then ""
        else error("\(type) (\(tojson)) is not valid in a csv row") end)
  | join(",");
def halt: error("halt would end trawl itself, mid-run");
def halt_error: halt;
def halt_error($code): halt;
def leaf_paths: paths(scalars);
def toarray: if type == "array" then . else [.] end;
def @tsv: if type != "array" then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be") end
  | map(if type == "string" then gsub("\\\\"; "\\\\") | gsub("\t"; "\\t") | gsub("\n"; "\\n") | gsub("\r"; "\\r")
        elif type == "number" or type == "boolean" then tojson
        elif . == null then ""
        else error("\(type) (\(tojson)) is not valid in a tsv row") end)
  | join("\t");
"#;

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jq")
    }
}

impl Jq {
    pub(crate) fn parse(code: &str) -> Result<Jq, String> {
        use jaq_core::load::{Arena, Error as E, File, Loader};
        let invalid = |why: String| format!("invalid --jq filter '{code}': {why}");
        let more = jaq_core::load::parse(MORE_DEFS, |p| p.defs()).expect("trawl's jq definitions");
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(more);
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
            .with_global_vars(["$ENV"])
            .compile(modules)
            .map_err(|errs| {
                let why: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, es)| es.iter())
                    .map(|(name, kind)| format!("undefined {} '{name}'", kind.as_str()))
                    .collect();
                invalid(why.join("; "))
            })?;
        let env = code.contains("$ENV").then(|| {
            let vars: serde_json::Map<String, serde_json::Value> = std::env::vars_os()
                .map(|(k, v)| {
                    let (k, v) = (k.to_string_lossy(), v.to_string_lossy());
                    (k.into_owned(), v.into_owned().into())
                })
                .collect();
            serde_json::Value::Object(vars).to_string().into()
        });
        Ok(Jq {
            filter: std::sync::Arc::new(filter),
            env,
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
            let env = match &self.env {
                Some(text) => jaq_json::read::parse_single(text.as_bytes()).unwrap_or_default(),
                None => jaq_json::Val::Null,
            };
            let ctx = jaq_core::Ctx::<JqData>::new(&self.filter.lut, jaq_core::Vars::new([env]));
            let room = MAX_VALUES - out.len();
            for value in self
                .filter
                .id
                .run((ctx, input))
                .map(jaq_core::unwrap_valr)
                .take(room)
            {
                let value = value.map_err(|e| format!("--jq: {e}"))?;
                out.push(to_json(&value));
            }
            if out.len() == MAX_VALUES {
                break;
            }
        }
        Ok(out)
    }
}

/// A jaq value as the JSON jq prints: a number a double cannot hold is the
/// largest double of its sign (1.7976931348623157e308), NaN is null, an
/// integer beyond 64 bits the nearest double; byte strings are text.
fn to_json(value: &jaq_json::Val) -> serde_json::Value {
    use jaq_json::{Num, Val};
    use serde_json::Value;
    let text = |b: &[u8]| Value::String(String::from_utf8_lossy(b).into_owned());
    let number = |n: &str| match serde_json::from_str::<serde_json::Number>(n) {
        Ok(n) => Value::Number(n),
        Err(_) => float(n.parse().unwrap_or(f64::NAN)),
    };
    match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(Num::Int(i)) => Value::from(*i as i64),
        Val::Num(Num::Float(f)) => float(*f),
        Val::Num(Num::BigInt(i)) => number(&i.to_string()),
        Val::Num(Num::Dec(d)) => number(d),
        Val::BStr(b) | Val::TStr(b) => text(b),
        Val::Arr(items) => Value::Array(items.iter().map(to_json).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

/// A double as jq prints it: infinities are the largest finite double of
/// their sign, NaN is null.
fn float(f: f64) -> serde_json::Value {
    let f = match f {
        f if f.is_nan() => return serde_json::Value::Null,
        f if f.is_infinite() => f64::MAX.copysign(f),
        f => f,
    };
    serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
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
    }

    /// Issue 26 item 10: numbers a double cannot hold came out as strings (the
    /// whole value, when nested); `@csv`, `@tsv` and `$ENV` were refused.
    #[test]
    fn jq_numbers_formats_and_env_are_as_jq_has_them() {
        let json = |f: &str, body: &[u8]| {
            let out = Jq::parse(f).unwrap().run(body).unwrap();
            serde_json::to_string(&out).unwrap()
        };
        let body = br#"[1.7976931348623157e309, -1e400, 10000000000000000000001, 3, 0.5]"#;
        assert_eq!(
            json(".", body),
            "[[1.7976931348623157e+308,-1.7976931348623157e+308,1e+22,3,0.5]]"
        );
        assert_eq!(json(".[0]", body), "[1.7976931348623157e+308]");
        assert_eq!(json(".[0] + 1", body), "[1.7976931348623157e+308]");
        assert_eq!(json("nan", b"null"), "[null]");
        assert_eq!(json(".[3] + 1", body), "[4]");
        let row = br#"["a,b", "say \"hi\"", 1.5, true, null, "tab\there\\n"]"#;
        let csv = "\"a,b\",\"say \"\"hi\"\"\",1.5,true,,\"tab\there\\n\"";
        assert_eq!(
            Jq::parse("@csv").unwrap().run(row).unwrap(),
            [serde_json::json!(csv)]
        );
        let tsv = "a,b\tsay \"hi\"\t1.5\ttrue\t\ttab\\there\\\\n";
        assert_eq!(
            Jq::parse("@tsv").unwrap().run(row).unwrap(),
            [serde_json::json!(tsv)]
        );
        for (f, body) in [("@csv", &b"[{}]"[..]), ("@tsv", b"[[1]]"), ("@csv", b"{}")] {
            let e = Jq::parse(f).unwrap().run(body).unwrap_err();
            assert!(
                e.contains("not valid in") || e.contains("only an array"),
                "{f}: {e}"
            );
        }
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var("TRAWL_JQ_TEST_VAR", "v1") };
        assert_eq!(json("$ENV.TRAWL_JQ_TEST_VAR", b"null"), r#"["v1"]"#);
        assert_eq!(json("$ENV | type", b"null"), r#"["object"]"#);
        assert_eq!(json("[leaf_paths]", br#"{"a":[1]}"#), r#"[[["a",0]]]"#);
        assert_eq!(json("toarray", b"1"), "[[1]]");
        // `halt` would end trawl itself, with nothing flushed: an error instead.
        let e = Jq::parse("halt_error").unwrap().run(b"1").unwrap_err();
        assert!(e.contains("halt"), "{e}");
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
