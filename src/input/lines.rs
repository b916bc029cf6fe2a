//! Streaming input: files and stdin are read line by line (never loaded whole) and
//! turned into `Job`s. A line that cannot be used becomes a job whose request is a
//! `Failure`, so it still yields exactly one record and never stops the run.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

pub(crate) use super::job::{Job, Request};
use super::object::parse_object;
use super::print::{ListPrint, Printed};
use super::shard::Shard;
use crate::failure::Failure;
use crate::values::IndexSet;

/// Longest input line accepted; longer lines become `invalid_input` records
/// without ever being held in memory whole.
pub const MAX_LINE: usize = 256 * 1024;
/// Longest URL accepted: the HTTP stack (the `http` crate's `Uri`) takes no
/// longer one, so a longer URL is refused when it is read rather than failing
/// at send time.
pub(crate) const MAX_URL: usize = u16::MAX as usize - 1;
/// A UTF-8 byte order mark, as editors on Windows put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How much of a bad line is echoed back in the record's `input`.
const ECHO_LIMIT: usize = 256;

/// Where input lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    Stdin,
    File(PathBuf),
    /// A URL given as an argument: a list of one.
    Url(String),
    /// An in-memory list (used by `trawl demo` and in-process tests).
    Text {
        name: String,
        text: String,
    },
}

impl InputSpec {
    pub fn name(&self) -> String {
        match self {
            InputSpec::Stdin => "<stdin>".to_owned(),
            InputSpec::File(path) => path.display().to_string(),
            InputSpec::Url(url) => url.clone(),
            InputSpec::Text { name, .. } => name.clone(),
        }
    }
}

/// An opened input.
pub(crate) struct Source {
    pub name: Arc<str>,
    pub reader: Box<dyn AsyncBufRead + Unpin + Send>,
}

/// Open every input up front, so an unreadable file is a usage error (exit 2)
/// before anything is fetched or written.
pub(crate) async fn open(specs: &[InputSpec]) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::with_capacity(specs.len());
    for spec in specs {
        let reader: Box<dyn AsyncBufRead + Unpin + Send> = match spec {
            InputSpec::Stdin => Box::new(BufReader::with_capacity(64 * 1024, tokio::io::stdin())),
            InputSpec::File(path) => {
                tracing::info!("reading input '{}'", path.display());
                let file = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("cannot open input '{}'", path.display()))?;
                let meta = file
                    .metadata()
                    .await
                    .with_context(|| format!("cannot read input '{}'", path.display()))?;
                anyhow::ensure!(!meta.is_dir(), "input '{}' is a directory", path.display());
                Box::new(BufReader::with_capacity(64 * 1024, file))
            }
            InputSpec::Url(url) => Box::new(io::Cursor::new(format!("{url}\n").into_bytes())),
            InputSpec::Text { text, .. } => Box::new(io::Cursor::new(text.clone().into_bytes())),
        };
        sources.push(Source {
            name: spec.name().into(),
            reader,
        });
    }
    Ok(sources)
}

/// Read all sources in order and send one `Job` per non-skipped line, or with
/// `shard` only the jobs of that share (indices still count every line); with
/// no `tx`, only take the list's fingerprints (`done`: the indexes `--resume`
/// found records for).
/// Stops early when `stop` is cancelled or the receiver is gone.
pub(crate) async fn read_jobs(
    sources: Vec<Source>,
    tx: Option<mpsc::Sender<Job>>,
    stop: CancellationToken,
    shard: Option<Shard>,
    done: Option<Arc<IndexSet>>,
) -> anyhow::Result<Read> {
    let mut print = ListPrint::new(done);
    let mut index = 0u64;
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(1024);
    for mut source in sources {
        let mut line_no = 0u64;
        loop {
            let line = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(Read { jobs: sent, lines: None, print: None }),
                line = next_line(&mut source.reader, &mut buf, MAX_LINE) => line,
            };
            let line = line.with_context(|| format!("reading input '{}'", source.name))?;
            let Some(line) = line else { break };
            line_no += 1;
            // One byte order mark at the start of each input is not part of its first line.
            let raw = match line_no {
                1 => buf.strip_prefix(BOM).unwrap_or(&buf),
                _ => &buf[..],
            };
            let Some((input, id, request)) = parse_line(raw, line) else {
                continue;
            };
            let job = Job {
                index,
                input,
                id,
                request,
            };
            print.line(index, &job.input);
            index += 1;
            if shard.is_some_and(|shard| !shard.owns(job.shard_key(shard.by))) {
                continue;
            }
            let Some(tx) = &tx else { continue };
            if tx.send(job).await.is_err() {
                return Ok(Read {
                    jobs: sent,
                    lines: None,
                    print: None,
                });
            }
            sent += 1;
        }
    }
    Ok(Read {
        jobs: sent,
        lines: Some(index),
        print: Some(print.finish()),
    })
}

/// What reading the input found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// Jobs sent on (this share's, with `--shard`).
    pub jobs: u64,
    /// Non-skipped lines of the whole list, once it was read to its end.
    pub lines: Option<u64>,
    /// The list's fingerprints, once it was read to its end.
    pub print: Option<Printed>,
}

/// What `next_line` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The whole line is in the buffer.
    Complete,
    /// The line was longer than the limit; the buffer holds its start only.
    TooLong(usize),
}

/// Read one line (without its `\n` or `\r\n`) into `buf`, holding at most `max`
/// bytes of it. `None` at end of input.
pub async fn next_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Line>> {
    buf.clear();
    let mut len = 0usize;
    let mut seen_any = false;
    let mut last = None;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        seen_any = true;
        let (take, newline) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        if take > 0 {
            last = Some(chunk[take - 1]);
        }
        len += take;
        r.consume(take + usize::from(newline));
        if newline {
            break;
        }
    }
    if !seen_any {
        return Ok(None);
    }
    if last == Some(b'\r') {
        len -= 1;
        if buf.len() > len {
            buf.pop();
        }
    }
    Ok(Some(if len > max {
        Line::TooLong(len)
    } else {
        Line::Complete
    }))
}

/// Turn one raw line into (input, id, request); `None` for blank and `#` lines.
pub fn parse_line(
    raw: &[u8],
    line: Line,
) -> Option<(String, Option<Value>, Result<Request, Failure>)> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() || trimmed.starts_with(b"#") {
        return None;
    }
    if let Line::TooLong(len) = line {
        let msg = format!("line is {len} bytes, longer than the {MAX_LINE}-byte limit");
        return Some((echo(trimmed), None, Err(Failure::InvalidInput(msg))));
    }
    let Ok(text) = std::str::from_utf8(trimmed) else {
        return Some((
            echo(trimmed),
            None,
            Err(Failure::InvalidInput("line is not valid UTF-8".into())),
        ));
    };
    let text = text.trim();
    let (input, id, request) = match text.starts_with('{') {
        true => parse_object(text),
        false => (text.to_owned(), None, parse_url(text).map(Request::get)),
    };
    // A bad line is echoed by its start only: a 200 KB line made a 400 KB record.
    let input = match request.is_err() && input.len() > ECHO_LIMIT {
        true => echo(input.as_bytes()),
        false => input,
    };
    Some((input, id, request))
}

/// Parse and check an absolute http(s) URL.
pub(crate) fn parse_url(text: &str) -> Result<Url, Failure> {
    let url = Url::parse(text).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase if looks_like_a_host(text) => {
            Failure::InvalidInput(format!(
                "invalid URL: no scheme (write https://{})",
                echo(text.as_bytes())
            ))
        }
        url::ParseError::RelativeUrlWithoutBase => {
            Failure::InvalidInput("invalid URL: no scheme".into())
        }
        e => Failure::InvalidInput(format!("invalid URL: {e}")),
    })?;
    if url.as_str().len() > MAX_URL {
        return Err(Failure::InvalidInput(format!(
            "URL is {} bytes, longer than the {MAX_URL}-byte limit of the HTTP stack",
            url.as_str().len()
        )));
    }
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(Failure::UnsupportedScheme(other.to_owned())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Failure::InvalidInput("invalid URL: no host".into()));
    }
    Ok(url)
}

/// Whether `https://` in front of `text` makes a URL of a host with a dotted
/// name (or localhost): only then is it worth suggesting.
fn looks_like_a_host(text: &str) -> bool {
    text.is_ascii()
        && !text.contains(char::is_whitespace)
        && Url::parse(&format!("https://{text}")).is_ok_and(|u| {
            u.host_str()
                .is_some_and(|h| (h.contains('.') && !h.ends_with('.')) || h == "localhost")
        })
}

/// The start of a bad line, as text, for the record's `input`: at most
/// [`ECHO_LIMIT`] bytes, cut where a character ends when it is UTF-8.
pub(super) fn echo(raw: &[u8]) -> String {
    let mut end = raw.len().min(ECHO_LIMIT);
    if let Ok(text) = std::str::from_utf8(raw) {
        while !text.is_char_boundary(end) {
            end -= 1;
        }
    }
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::ErrorKind;
    use reqwest::Method;

    #[test]
    fn a_long_bad_line_is_echoed_by_its_first_256_bytes_only() {
        // Regression: a 200 KB invalid line was copied whole into `input` and
        // again into the hint.
        for line in [
            format!("é{}", "x".repeat(200_000)),
            format!("example.com/{}", "a".repeat(200_000)),
            format!("{{\"url\": 3, \"pad\": \"{}\"}}", "p".repeat(200_000)),
        ] {
            let (input, _, request) = parse_line(line.as_bytes(), Line::Complete).unwrap();
            let failure = request.unwrap_err();
            assert!(input.len() <= ECHO_LIMIT, "{}", input.len());
            assert!(line.starts_with(&input));
            assert!(
                failure.to_string().len() < 2 * ECHO_LIMIT,
                "{}",
                failure.to_string().len()
            );
        }
    }

    fn parse(s: &str) -> Option<(String, Option<Value>, Result<Request, Failure>)> {
        parse_line(s.as_bytes(), Line::Complete)
    }

    fn kind(s: &str) -> ErrorKind {
        parse(s).unwrap().2.unwrap_err().kind()
    }

    #[test]
    fn skips_blank_and_comment_lines() {
        assert!(parse("").is_none());
        assert!(parse("   \t").is_none());
        assert!(parse("  # comment").is_none());
    }

    #[test]
    fn plain_urls() {
        let (input, id, req) = parse("  http://example.com/a?b=1  ").unwrap();
        assert_eq!(input, "http://example.com/a?b=1");
        assert!(id.is_none());
        assert_eq!(req.unwrap().url.as_str(), "http://example.com/a?b=1");
        assert_eq!(kind("example.com"), ErrorKind::InvalidInput);
        assert_eq!(kind("http://"), ErrorKind::InvalidInput);
        assert_eq!(kind("not a url"), ErrorKind::InvalidInput);
        assert_eq!(kind("ftp://example.com/x"), ErrorKind::UnsupportedScheme);
        assert_eq!(kind("javascript:alert(1)"), ErrorKind::UnsupportedScheme);
    }

    #[test]
    fn request_objects() {
        let (input, id, req) =
            parse(r#"{"url":"https://a.test/p","method":"post","headers":{"X-A":"1"},"body":"hi","id":{"k":7},"extra":true}"#)
                .unwrap();
        let req = req.unwrap();
        assert_eq!(input, "https://a.test/p");
        assert_eq!(id, Some(serde_json::json!({"k": 7})));
        assert_eq!(req.method, Some(Method::POST));
        assert_eq!(req.headers["x-a"], "1");
        assert_eq!(req.body.as_deref(), Some(&b"hi"[..]));
        assert_eq!(kind(r#"{"url": 5}"#), ErrorKind::InvalidInput);
        assert_eq!(kind(r#"{"nourl": 1}"#), ErrorKind::InvalidInput);
        assert_eq!(
            kind(r#"{"url": "http://a.test", broken"#),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn trawl_records_are_refetched_by_url_only() {
        let line = r#"{"index":4,"input":"http://a.test/","url":"http://a.test/","ok":false,"body":"secret","id":9}"#;
        let (_, id, req) = parse(line).unwrap();
        let req = req.unwrap();
        assert!(req.body.is_none() && req.method.is_none());
        assert_eq!(id, Some(serde_json::json!(9)));
    }

    #[test]
    fn bad_bytes_and_long_lines() {
        let (input, _, req) = parse_line(b"http://a.test/\xff\xfe", Line::Complete).unwrap();
        assert_eq!(req.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(input.starts_with("http://a.test/"));
        let (_, _, req) = parse_line(b"http://a.test/aaaa", Line::TooLong(MAX_LINE + 1)).unwrap();
        assert_eq!(req.unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let mut data = b"a\r\nbb\n\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100));
        data.extend(b"\nlast");
        let mut r = BufReader::with_capacity(7, &data[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(line) = next_line(&mut r, &mut buf, 10).await.unwrap() {
            got.push((String::from_utf8(buf.clone()).unwrap(), line));
        }
        assert_eq!(got[0], ("a".into(), Line::Complete));
        assert_eq!(got[1], ("bb".into(), Line::Complete));
        assert_eq!(got[2], ("".into(), Line::Complete));
        assert_eq!(got[3].1, Line::TooLong(100));
        assert!(got[3].0.len() <= 11);
        assert_eq!(got[4], ("last".into(), Line::Complete));
        assert_eq!(got.len(), 5);
    }
}
