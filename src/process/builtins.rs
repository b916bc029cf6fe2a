//! CPU work on one fetched body: hashing, HTML title extraction, body encoding.
//! Plain synchronous Rust with no tokio in it; the pipeline runs it on the blocking
//! pool, in one lane per core (small bodies where they arrive).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use encoding_rs::Encoding;

use super::hash;
use crate::failure::Failure;
use crate::fetch::Body;
use crate::values::HashKind;

/// What processing adds to a record.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Processed {
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    pub title: Option<String>,
    pub jq: Option<Vec<serde_json::Value>>,
    pub matches: Option<Vec<String>>,
    pub select: Option<Vec<String>>,
    pub saved: Option<String>,
    pub body: Option<String>,
    /// `body` holds base64 because the bytes are not UTF-8.
    pub body_base64: bool,
}

/// What the process stage does to each body: the processing options, made once
/// from the arguments (`Config`'s process part).
#[derive(Debug, Clone)]
pub(crate) struct ProcessSettings {
    pub(crate) hash: HashKind,
    pub(crate) title: bool,
    pub(crate) body: bool,
    pub(crate) jq: Option<super::extract::Jq>,
    pub(crate) regex: Option<super::extract::Pattern>,
    pub(crate) select: Option<super::extract::Select>,
    pub(crate) save: Option<std::path::PathBuf>,
    /// `--exec`: the user's workers.
    pub(crate) exec: Option<super::exec::ExecSettings>,
}

/// Whether `process` has anything to do for these settings.
pub(crate) fn needed(cfg: &ProcessSettings) -> bool {
    cfg.hash != HashKind::None || cfg.save.is_some() || cfg.exec.is_some() || needs_whole_body(cfg)
}

/// Whether anything beyond hashing is asked for (which needs the body in one piece).
pub(crate) fn needs_whole_body(cfg: &ProcessSettings) -> bool {
    cfg.body || parses_body(cfg) || cfg.exec.as_ref().is_some_and(|e| !e.headers_only)
}

/// Whether the body is parsed or searched (`--title`, `--jq`, `--regex`, `--select`).
fn parses_body(cfg: &ProcessSettings) -> bool {
    cfg.title || cfg.jq.is_some() || cfg.regex.is_some() || cfg.select.is_some()
}

/// Bodies up to this size are processed where they arrive unless they are parsed
/// or saved: hashing 8 KiB takes a few µs, less than handing it to a blocking thread.
const LIGHT_BODY: usize = 8 * 1024;

/// Whether processing this body is too cheap to be worth a blocking thread.
pub(crate) fn is_light(cfg: &ProcessSettings, len: usize) -> bool {
    !parses_body(cfg) && cfg.save.is_none() && cfg.exec.is_none() && len <= LIGHT_BODY
}

/// Process one body. `accepted`: its status is accepted by `--ok-status` (only
/// such bodies are saved and queried with `--jq`; the others are failures
/// already). `sha256`: the body's digest when it was hashed together with others
/// ([`hash::sha256_hex_many`]). Fails when `--save` cannot write the file, or
/// `--jq` finds no JSON or fails on it.
pub(crate) fn process(
    cfg: &ProcessSettings,
    content_type: Option<&str>,
    accepted: bool,
    body: &Body,
    sha256: Option<String>,
) -> Result<Processed, Failure> {
    let mut out = Processed::default();
    match cfg.hash {
        HashKind::Sha256 => {
            let begun = || body.finish_digest(HashKind::Sha256);
            out.sha256 = Some(
                sha256
                    .or_else(begun)
                    .unwrap_or_else(|| hash::sha256_hex(body)),
            )
        }
        HashKind::Blake3 => {
            let begun = body.finish_digest(HashKind::Blake3);
            out.blake3 = Some(begun.unwrap_or_else(|| hash::blake3_hex(body)))
        }
        HashKind::None => {}
    }
    if let Some(dir) = &cfg.save
        && accepted
    {
        let name = out.sha256.clone().unwrap_or_else(|| hash::sha256_hex(body));
        out.saved = Some(save(dir, &name, body)?);
    }
    if !needs_whole_body(cfg) {
        return Ok(out);
    }
    let body = body.contiguous();
    let body = body.as_ref();
    if cfg.title && is_html(content_type) {
        out.title = title(content_type, body);
    }
    if let Some(jq) = &cfg.jq
        && accepted
    {
        out.jq = Some(jq.run(body).map_err(Failure::Process)?);
    }
    if let Some(pattern) = &cfg.regex {
        out.matches = Some(pattern.matches(body));
    }
    if let Some(select) = &cfg.select {
        let (text, _, _) = html_encoding(content_type, body).decode(body);
        out.select = Some(select.select(&text));
    }
    if cfg.body {
        (out.body, out.body_base64) = body_text(body);
    }
    Ok(out)
}

/// `--body`: the body as text when it is UTF-8, else as base64 (then `true`).
pub(crate) fn body_text(body: &[u8]) -> (Option<String>, bool) {
    match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    }
}

/// Store `body` as `dir/<first 2 hex digits>/<sha256 hex>` unless that file
/// exists (same name, same content). Written to a temporary name and renamed,
/// so a crash never leaves a partial file under a content name.
fn save(dir: &Path, sha256: &str, body: &Body) -> Result<String, Failure> {
    let failed = |what: &str, e: std::io::Error| Failure::Io(format!("--save: {what}: {e}"));
    let sub = dir.join(&sha256[..2]);
    let path = sub.join(sha256);
    if !path.exists() {
        std::fs::create_dir_all(&sub).map_err(|e| failed("creating the directory", e))?;
        let tmp = sub.join(format!(
            ".{sha256}.{}.{}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut file| body.chunks().iter().try_for_each(|c| file.write_all(c)));
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(failed("writing the body", e));
        }
    }
    Ok(path.display().to_string())
}

/// The document's `<title>`, decoded with the body's charset (Content-Type, then a
/// `<meta charset>` in the first 1024 bytes, then UTF-8), entities resolved and
/// whitespace collapsed. Only the prefix up to the first `</title>` is parsed.
pub(crate) fn title(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let end = find_ascii_ci(body, b"</title")?;
    let prefix = &body[..(end + b"</title>".len()).min(body.len())];
    let (text, _, _) = html_encoding(content_type, body).decode(prefix);
    let doc = scraper::Html::parse_document(&text);
    let selector = scraper::Selector::parse("title").expect("static selector");
    let raw: String = doc.select(&selector).next()?.text().collect();
    let title = super::extract::collapse(&raw);
    (!title.is_empty()).then_some(title)
}

/// Whether `--title` reads this body: HTML, or a body of no stated type. An
/// SVG's or an Atom feed's `<title>` names a drawing or a feed, not a page.
fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(essence.as_str(), "text/html" | "application/xhtml+xml" | "")
    })
}

/// An HTML body's charset: Content-Type, then a `<meta charset>` in the first
/// 1024 bytes, then UTF-8.
fn html_encoding(content_type: Option<&str>, body: &[u8]) -> &'static Encoding {
    content_type
        .and_then(charset_param)
        .or_else(|| meta_charset(&body[..body.len().min(1024)]))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8)
}

/// `charset=...` from a Content-Type value.
fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The charset named by `<meta charset=...>` or `<meta http-equiv ... content="...; charset=...">`.
fn meta_charset(head: &[u8]) -> Option<String> {
    let at = find_ascii_ci(head, b"charset=")?;
    let rest = &head[at + b"charset=".len()..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let len = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.')))
        .unwrap_or(rest.len());
    (len > 0).then(|| String::from_utf8_lossy(&rest[..len]).into_owned())
}

/// Position of `needle` (lowercase ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(pos) = memchr::memchr2(first, first.to_ascii_uppercase(), &haystack[from..]) {
        let at = from + pos;
        if haystack.len() - at >= needle.len()
            && haystack[at..at + needle.len()].eq_ignore_ascii_case(needle)
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_read_from_html_only() {
        for html in [
            None,
            Some("text/html; charset=utf-8"),
            Some("Application/XHTML+XML"),
        ] {
            assert!(is_html(html), "{html:?}");
        }
        for other in [
            "image/svg+xml",
            "application/atom+xml",
            "text/xml",
            "text/plain",
        ] {
            assert!(!is_html(Some(other)), "{other}");
        }
    }

    #[test]
    fn title_with_entities_and_whitespace() {
        let html = b"<html><head><TITLE>\n  Caf&eacute; &amp;\n Cr\xc3\xa8me </TITLE></head><body>x</body></html>";
        assert_eq!(
            title(Some("text/html"), html).as_deref(),
            Some("Café & Crème")
        );
    }

    #[test]
    fn title_in_latin1_from_header_or_meta() {
        let html = b"<html><head><title>Caf\xe9 &amp; Cr\xe8me</title></head></html>";
        assert_eq!(
            title(Some("text/html; charset=ISO-8859-1"), html).as_deref(),
            Some("Café & Crème")
        );
        let meta = b"<html><head><meta charset=\"iso-8859-1\"><title>Caf\xe9</title></head></html>";
        assert_eq!(title(Some("text/html"), meta).as_deref(), Some("Café"));
        let equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><title>\x93q\x94</title>";
        assert_eq!(title(None, equiv).as_deref(), Some("\u{201c}q\u{201d}"));
    }

    #[test]
    fn no_title() {
        assert_eq!(title(None, b"<html><body>none</body></html>"), None);
        assert_eq!(title(None, b"<title>   </title>"), None);
        assert_eq!(title(None, b""), None);
    }

    #[test]
    fn chunked_bodies_hash_like_whole_ones() {
        use bytes::Bytes;
        use sha2::Digest;
        let cfg = <crate::cli::Cli as clap::Parser>::parse_from(["trawl", "--body"])
            .run
            .into_config(vec![])
            .unwrap()
            .process;
        let whole: Body = [Bytes::from_static(b"hello, world")].into_iter().collect();
        let parts: Body = [&b"hel"[..], b"lo, ", b"world"]
            .map(Bytes::from_static)
            .into_iter()
            .collect();
        let (a, b) = (
            process(&cfg, None, true, &whole, None).unwrap(),
            process(&cfg, None, true, &parts, None).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(
            a.sha256.as_deref(),
            Some(hex::encode(sha2::Sha256::digest(b"hello, world")).as_str())
        );
        assert_eq!(b.body.as_deref(), Some("hello, world"));
    }

    #[test]
    fn charset_params() {
        assert_eq!(
            charset_param("text/html; Charset=\"utf-8\"").as_deref(),
            Some("utf-8")
        );
        assert_eq!(charset_param("text/html"), None);
    }
}
