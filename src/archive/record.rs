//! WARC 1.1 records from exchanges: a `request` and a `response` for each, or
//! a `revisit` when the payload was already archived in this run (profile
//! identical-payload-digest) or the server answered a conditional request
//! with 304 (server-not-modified). Each record is its own gzip member, so a
//! reader can start at any record's offset. Plain CPU work: a lane runs it.

use std::io::Write;
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::Version;
use reqwest::header::{self, HeaderMap};
use sha1::{Digest, Sha1};

use super::cdxj::Fields;
use crate::fetch::Exchange;

/// Where the profiles are defined.
const IDENTICAL: &str = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest";
const NOT_MODIFIED: &str = "http://netpreserve.org/warc/1.1/revisit/server-not-modified";

/// One record, ready to be appended: its bytes (a gzip member, or plain) and,
/// for a response or revisit, what its CDXJ line says.
pub(crate) struct Member {
    pub(crate) bytes: Vec<u8>,
    pub(crate) index: Option<Fields>,
    /// Its WARC-Record-ID.
    pub(crate) id: String,
}

/// The first record of a payload digest in this run, for revisits to name.
#[derive(Clone)]
pub(crate) struct Original {
    pub(crate) id: String,
    pub(crate) uri: String,
    pub(crate) date: String,
}

/// `sha1:` and the base32 digest of `parts`, one after another: the form
/// pywb and the CDX tools read.
pub(crate) fn sha1_of<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut sha = Sha1::new();
    parts.into_iter().for_each(|p| sha.update(p));
    format!("sha1:{}", data_encoding::BASE32.encode(&sha.finalize()))
}

/// [`sha1_of`] a head and the chunks after it.
fn sha1_of_chunks(head: &[u8], chunks: &[Bytes]) -> String {
    sha1_of(std::iter::once(head).chain(chunks.iter().map(|c| &c[..])))
}

/// A new `<urn:uuid:...>` record ID.
pub(crate) fn record_id() -> String {
    format!("<urn:uuid:{}>", uuid::Uuid::new_v4())
}

/// RFC 3339 in UTC, to the second (WARC-Date).
pub(crate) fn warc_date(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// How records are compressed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Packing {
    /// `.warc.gz`: one gzip member per record.
    Gzip,
    /// `.warc`.
    Plain,
}

/// A record: `WARC/1.1`, the named fields, Content-Length, the block, the
/// two line ends after it.
pub(crate) fn member(
    kind: &str,
    fields: &[(&str, &str)],
    head: &[u8],
    body: &[Bytes],
    packing: Packing,
) -> Vec<u8> {
    let length = head.len() + body.iter().map(Bytes::len).sum::<usize>();
    let mut top = Vec::with_capacity(512);
    top.extend_from_slice(b"WARC/1.1\r\nWARC-Type: ");
    top.extend_from_slice(kind.as_bytes());
    top.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        let _ = write!(top, "{name}: {value}\r\n");
    }
    let _ = write!(top, "Content-Length: {length}\r\n\r\n");
    match packing {
        Packing::Plain => {
            let mut out = Vec::with_capacity(top.len() + length + 4);
            out.extend_from_slice(&top);
            out.extend_from_slice(head);
            body.iter().for_each(|c| out.extend_from_slice(c));
            out.extend_from_slice(b"\r\n\r\n");
            out
        }
        Packing::Gzip => {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(body.len() + 3);
            parts.extend([&top[..], head]);
            parts.extend(body.iter().map(|c| &c[..]));
            parts.push(b"\r\n\r\n");
            let mut out = Vec::with_capacity(top.len() + length / 3 + 64);
            gzip_member(&parts, shrinks(body), &mut out);
            out
        }
    }
}

/// A gzip member's header: no name, no time, "unknown" OS (RFC 1952).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

thread_local! {
    /// Each lane's two deflaters (fast, and stored), reset for every record:
    /// a new one per record cost more than the compressing (its state is
    /// allocated and zeroed each time).
    static DEFLATERS: std::cell::RefCell<[flate2::Compress; 2]> = std::cell::RefCell::new([
        flate2::Compress::new(flate2::Compression::fast(), false),
        flate2::Compress::new(flate2::Compression::none(), false),
    ]);
}

/// `parts`, one after another, as one gzip member appended to `out`;
/// deflated fast, or only stored (`deflate` false).
fn gzip_member(parts: &[&[u8]], deflate: bool, out: &mut Vec<u8>) {
    use flate2::{FlushCompress, Status};
    out.extend_from_slice(&GZIP_HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u32;
    DEFLATERS.with(|d| {
        let mut deflaters = d.borrow_mut();
        let z = &mut deflaters[usize::from(!deflate)];
        z.reset();
        for (i, part) in parts.iter().enumerate() {
            crc.update(part);
            size = size.wrapping_add(part.len() as u32);
            let last = i + 1 == parts.len();
            let flush = if last {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            let mut rest = *part;
            loop {
                out.reserve(rest.len() / 2 + 1024);
                let before = z.total_in();
                let status = z
                    .compress_vec(rest, out, flush)
                    .expect("deflating to memory");
                rest = &rest[(z.total_in() - before) as usize..];
                let done = match last {
                    true => status == Status::StreamEnd,
                    false => rest.is_empty(),
                };
                if done {
                    break;
                }
            }
        }
    });
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
}

/// Whether a body is worth deflating: not when its first 16 KiB look random
/// (already compressed, images, archives: over 7.5 bits of entropy a byte),
/// where deflating would cost the most and save nothing.
fn shrinks(body: &[Bytes]) -> bool {
    let sample = body
        .first()
        .map_or(&[][..], |c| &c[..c.len().min(16 * 1024)]);
    if sample.len() < 4096 {
        return true;
    }
    let mut counts = [0u32; 256];
    sample.iter().for_each(|&b| counts[usize::from(b)] += 1);
    let n = sample.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits < 7.5
}

/// The response as HTTP/1.1 text: status line, headers as received, blank
/// line. The transfer chunking was removed on the way in, so a
/// `Transfer-Encoding` header is dropped and the payload's length said in
/// `Content-Length` instead (the form warcio and pywb replay as it is).
pub(crate) fn response_head(exchange: &Exchange) -> Vec<u8> {
    let version = match exchange.version {
        Version::HTTP_09 | Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let status = exchange.status;
    let mut head = Vec::with_capacity(512);
    let _ = write!(
        head,
        "{version} {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let headers: &HeaderMap = &exchange.headers;
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING || (chunked && name == header::CONTENT_LENGTH) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if chunked {
        let _ = write!(head, "content-length: {}\r\n", exchange.payload_len());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// What a response or revisit record is built as.
pub(crate) enum Kind {
    Response,
    /// Its payload was archived already, in the record named.
    Identical(Original),
    /// A 304 to a conditional request (`--since`).
    NotModified,
}

/// The request and response (or revisit) records of one exchange. `kind`
/// decides the second; `payload` is the payload's digest.
pub(crate) fn exchange_records(
    exchange: &Exchange,
    kind: &Kind,
    payload: &str,
    packing: Packing,
) -> [Member; 2] {
    let date = warc_date(exchange.sent);
    let (request_id, response_id) = (record_id(), record_id());
    let uri = exchange.url.as_str();
    let ip = exchange.peer.map(|ip| ip.to_string());
    let protocol = match exchange.version {
        Version::HTTP_2 => "h2",
        Version::HTTP_10 => "http/1.0",
        _ => "http/1.1",
    };
    let mut common: Vec<(&str, &str)> = vec![("WARC-Target-URI", uri), ("WARC-Date", &date)];
    if let Some(ip) = &ip {
        common.push(("WARC-IP-Address", ip));
    }
    common.push(("WARC-Protocol", protocol));
    let request_body: &[Bytes] = match &exchange.request_body {
        Some(b) => std::slice::from_ref(b),
        None => &[],
    };
    let request_digest = sha1_of_chunks(&exchange.request, request_body);
    let mut fields = vec![("WARC-Record-ID", request_id.as_str())];
    fields.extend(&common);
    fields.extend([
        ("WARC-Concurrent-To", response_id.as_str()),
        ("Content-Type", "application/http;msgtype=request"),
        ("WARC-Block-Digest", request_digest.as_str()),
    ]);
    let request = Member {
        bytes: member("request", &fields, &exchange.request, request_body, packing),
        index: None,
        id: request_id.clone(),
    };
    let head = response_head(exchange);
    let (record_kind, body): (&str, &[Bytes]) = match kind {
        Kind::Response => ("response", &exchange.payload),
        _ => ("revisit", &[]),
    };
    let block_digest = sha1_of_chunks(&head, body);
    let mut fields = vec![("WARC-Record-ID", response_id.as_str())];
    fields.extend(&common);
    fields.push(("WARC-Concurrent-To", request_id.as_str()));
    fields.push(("Content-Type", "application/http;msgtype=response"));
    match kind {
        Kind::Response => {}
        Kind::Identical(original) => fields.extend([
            ("WARC-Profile", IDENTICAL),
            ("WARC-Refers-To", original.id.as_str()),
            ("WARC-Refers-To-Target-URI", original.uri.as_str()),
            ("WARC-Refers-To-Date", original.date.as_str()),
        ]),
        Kind::NotModified => fields.extend([
            ("WARC-Profile", NOT_MODIFIED),
            ("WARC-Refers-To-Target-URI", uri),
        ]),
    }
    fields.push(("WARC-Block-Digest", block_digest.as_str()));
    if !matches!(kind, Kind::NotModified) {
        fields.push(("WARC-Payload-Digest", payload));
    }
    if exchange.truncated {
        fields.push(("WARC-Truncated", "length"));
    }
    let index = Fields {
        url: uri.to_owned(),
        date: date.clone(),
        revisit: record_kind == "revisit",
        status: Some(exchange.status.as_u16()),
        mime: exchange
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        digest: match kind {
            // No payload: what the indexers compute for an empty one.
            Kind::NotModified => sha1_of([]),
            _ => payload.to_owned(),
        },
    };
    let response = Member {
        bytes: member(record_kind, &fields, &head, body, packing),
        index: Some(index),
        id: response_id.clone(),
    };
    [request, response]
}

/// The `warcinfo` record that starts each file.
pub(crate) fn warcinfo(filename: &str, info: &[(String, String)], packing: Packing) -> Vec<u8> {
    let mut text = String::new();
    for (name, value) in info {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let date = warc_date(SystemTime::now());
    let id = record_id();
    let digest = sha1_of([text.as_bytes()]);
    let fields = [
        ("WARC-Date", date.as_str()),
        ("WARC-Record-ID", id.as_str()),
        ("WARC-Filename", filename),
        ("Content-Type", "application/warc-fields"),
        ("WARC-Block-Digest", digest.as_str()),
    ];
    member("warcinfo", &fields, text.as_bytes(), &[], packing)
}
