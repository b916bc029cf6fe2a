//! What went over the wire, kept for `--warc`: each exchange's request as sent
//! and its response as received, the body still in its Content-Encoding (the
//! transfer chunking removed). The clients' own decoding is off then, so the
//! body read decodes here (gzip, deflate, br, zstd, as reqwest would have),
//! in slices, so that a decompression bomb is stopped at the limit.

use std::io::Write;
use std::net::IpAddr;
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Version};
use url::Url;

use super::classify::classify;
use crate::failure::Failure;

/// What the clients ask for when trawl decodes itself: the value reqwest sends.
pub(crate) const ACCEPT_ENCODING: &str = "zstd,gzip,deflate,br";

/// Where exchanges that are no input's go (robots.txt's): the archive.
pub(crate) type WireSink = std::sync::Arc<
    dyn Fn(Vec<Exchange>) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync,
>;

/// One request and the response it got.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// When the request was sent.
    pub(crate) sent: SystemTime,
    /// The URL as sent (no fragment).
    pub(crate) url: Url,
    /// The address connected to, when the client says.
    pub(crate) peer: Option<IpAddr>,
    /// The request line and headers, as HTTP/1.1 text, ending in the blank line.
    pub(crate) request: Vec<u8>,
    pub(crate) request_body: Option<Bytes>,
    pub(crate) version: Version,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The body as received, still content-encoded.
    pub(crate) payload: Vec<Bytes>,
    /// Only the start of the body was read (robots.txt past its limit).
    pub(crate) truncated: bool,
}

impl Exchange {
    /// The response's part of an exchange whose request went out at `sent`;
    /// the payload follows as it is read.
    pub(crate) fn begin(sent: Sent, response: &Response) -> Exchange {
        Exchange {
            sent: sent.at,
            url: sent.url,
            peer: response.remote_addr().map(|a| a.ip()),
            request: sent.head,
            request_body: sent.body,
            version: response.version(),
            status: response.status(),
            headers: response.headers().clone(),
            payload: Vec::new(),
            truncated: false,
        }
    }

    /// The payload's length in bytes.
    pub(crate) fn payload_len(&self) -> usize {
        self.payload.iter().map(Bytes::len).sum()
    }
}

/// A request as it went out, before its response.
pub(crate) struct Sent {
    at: SystemTime,
    url: Url,
    head: Vec<u8>,
    body: Option<Bytes>,
}

impl Sent {
    /// The request `method url` with `headers` (the request's own; the
    /// client adds `user_agent`, `Accept` and the body's length as reqwest and
    /// hyper do), written as HTTP/1.1 text whatever the version it goes out in.
    pub(crate) fn new(
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        user_agent: &str,
    ) -> Sent {
        let mut head = Vec::with_capacity(256);
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let _ = write!(head, "{method} {target} HTTP/1.1\r\n");
        let host = url.host_str().unwrap_or("");
        let _ = match url.port() {
            Some(port) => write!(head, "host: {host}:{port}\r\n"),
            None => write!(head, "host: {host}\r\n"),
        };
        let mut line = |name: &str, value: &[u8]| {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        };
        if !user_agent.is_empty() && !headers.contains_key(header::USER_AGENT) {
            line("user-agent", user_agent.as_bytes());
        }
        if !headers.contains_key(header::ACCEPT) {
            line("accept", b"*/*");
        }
        for (name, value) in headers {
            line(name.as_str(), value.as_bytes());
        }
        if !headers.contains_key(header::CONTENT_LENGTH) {
            match body {
                Some(body) => line("content-length", body.len().to_string().as_bytes()),
                // As the fetch sends it (RFC 9110 8.6).
                None if matches!(*method, Method::POST | Method::PUT | Method::PATCH) => {
                    line("content-length", b"0")
                }
                None => {}
            }
        }
        head.extend_from_slice(b"\r\n");
        Sent {
            at: SystemTime::now(),
            url: url.clone(),
            head,
            body: body.map(Bytes::copy_from_slice),
        }
    }
}

/// Ask for what trawl decodes, unless the request says otherwise.
pub(crate) fn accept_encoding(headers: &mut HeaderMap) {
    headers
        .entry(header::ACCEPT_ENCODING)
        .or_insert(HeaderValue::from_static(ACCEPT_ENCODING));
}

/// Decodes a body in the Content-Encoding it arrived in.
pub(crate) enum Decoder {
    Identity,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Vec<u8>>>),
}

/// Raw bytes fed to a decoder at a time: what one slice can inflate to is
/// bounded (about a thousand times), so the size limit is checked in time.
const SLICE: usize = 4096;

impl Decoder {
    /// The decoder for a response with these headers. An encoding trawl does
    /// not know is passed on as it is (reqwest does the same).
    pub(crate) fn for_headers(headers: &HeaderMap) -> Decoder {
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        match encoding.as_deref() {
            Some("gzip" | "x-gzip") => {
                Decoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new())))
            }
            Some("deflate") => {
                Decoder::Deflate(Box::new(flate2::write::ZlibDecoder::new(Vec::new())))
            }
            Some("br") => {
                Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), 4096)))
            }
            Some("zstd") => match zstd::stream::write::Decoder::new(Vec::new()) {
                Ok(d) => Decoder::Zstd(Box::new(d)),
                Err(_) => Decoder::Identity,
            },
            _ => Decoder::Identity,
        }
    }

    pub(crate) fn is_identity(&self) -> bool {
        matches!(self, Decoder::Identity)
    }

    fn write(&mut self, raw: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Identity => Ok(()),
            Decoder::Gzip(d) => d.write_all(raw),
            Decoder::Deflate(d) => d.write_all(raw),
            Decoder::Brotli(d) => d.write_all(raw),
            Decoder::Zstd(d) => d.write_all(raw),
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Decoder::Identity => unreachable!("identity has no output buffer"),
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
            Decoder::Brotli(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut(),
        }
    }

    /// Decode `raw`, handing each decoded slice to `out` (which may refuse it:
    /// past the size limit).
    pub(crate) fn feed(
        &mut self,
        raw: &Bytes,
        out: &mut dyn FnMut(Bytes) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if self.is_identity() {
            return out(raw.clone());
        }
        for slice in raw.chunks(SLICE) {
            self.write(slice).map_err(decode_error)?;
            let decoded = std::mem::take(self.output());
            if !decoded.is_empty() {
                out(Bytes::from(decoded))?;
            }
        }
        Ok(())
    }

    /// The end of the body: whatever the decoder still holds.
    pub(crate) fn finish(
        self,
        out: &mut dyn FnMut(Bytes) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let rest = match self {
            Decoder::Identity => return Ok(()),
            Decoder::Gzip(d) => d.finish(),
            Decoder::Deflate(d) => d.finish(),
            Decoder::Brotli(mut d) => d.close().map(|()| std::mem::take(d.get_mut())),
            Decoder::Zstd(mut d) => d.flush().map(|()| std::mem::take(d.get_mut())),
        }
        .map_err(decode_error)?;
        match rest.is_empty() {
            true => Ok(()),
            false => out(Bytes::from(rest)),
        }
    }
}

fn decode_error(e: std::io::Error) -> Failure {
    Failure::Decode(format!("error decoding response body: {e}"))
}

/// Read a body the fetch does not keep (a redirect's, robots.txt's) up to
/// `limit` decoded bytes, keeping its wire form in `wire` when given.
/// Returns the decoded bytes, and whether the body went on past the limit.
pub(crate) async fn read_small(
    response: &mut Response,
    limit: usize,
    mut wire: Option<&mut Exchange>,
) -> Result<(Vec<u8>, bool), Failure> {
    let mut decoder = match wire {
        Some(_) => Decoder::for_headers(response.headers()),
        None => Decoder::Identity,
    };
    let mut text = Vec::new();
    while text.len() < limit {
        let Some(chunk) = response.chunk().await.map_err(classify)? else {
            decoder.finish(&mut |b| {
                text.extend_from_slice(&b);
                Ok(())
            })?;
            text.truncate(limit);
            return Ok((text, false));
        };
        if let Some(exchange) = wire.as_deref_mut() {
            exchange.payload.push(chunk.clone());
        }
        decoder.feed(&chunk, &mut |b| {
            text.extend_from_slice(&b);
            Ok(())
        })?;
    }
    let more = text.len() > limit || response.chunk().await.ok().flatten().is_some();
    text.truncate(limit);
    if let Some(exchange) = wire {
        exchange.truncated = more;
    }
    Ok((text, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(headers: &HeaderMap, raw: &[u8], piece: usize) -> Result<Vec<u8>, Failure> {
        let mut decoder = Decoder::for_headers(headers);
        let mut out = Vec::new();
        for chunk in raw.chunks(piece) {
            decoder.feed(&Bytes::copy_from_slice(chunk), &mut |b| {
                out.extend_from_slice(&b);
                Ok(())
            })?;
        }
        decoder.finish(&mut |b| {
            out.extend_from_slice(&b);
            Ok(())
        })?;
        Ok(out)
    }

    fn encoded(name: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_str(name).unwrap(),
        );
        h
    }

    #[test]
    fn every_encoding_decodes_in_any_pieces() {
        let plain: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&plain).unwrap();
        let zl = zl.finish().unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&plain).unwrap();
        }
        let zs = zstd::stream::encode_all(&plain[..], 3).unwrap();
        for (name, raw) in [("gzip", &gz), ("deflate", &zl), ("br", &br), ("zstd", &zs)] {
            for piece in [1, 777, 1 << 20] {
                let out = decode(&encoded(name), raw, piece).unwrap();
                assert!(out == plain, "{name} in pieces of {piece}");
            }
        }
        // Unknown encodings and identity pass through.
        assert_eq!(decode(&encoded("compress"), b"abc", 1).unwrap(), b"abc");
        assert_eq!(decode(&HeaderMap::new(), b"abc", 2).unwrap(), b"abc");
        // A corrupt stream is a decode failure.
        let failure = decode(&encoded("gzip"), b"not gzip at all", 4).unwrap_err();
        assert_eq!(failure.kind(), crate::failure::ErrorKind::Decode);
    }

    #[test]
    fn the_request_is_written_as_http_1_1_text() {
        let url = Url::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-one", HeaderValue::from_static("1"));
        accept_encoding(&mut headers);
        let sent = Sent::new(&Method::POST, &url, &headers, Some(b"hello"), "trawl/1");
        let text = String::from_utf8(sent.head).unwrap();
        assert_eq!(
            text,
            "POST /a/b?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: trawl/1\r\n\
             accept: */*\r\nx-one: 1\r\naccept-encoding: zstd,gzip,deflate,br\r\n\
             content-length: 5\r\n\r\n"
        );
    }
}
