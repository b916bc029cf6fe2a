//! Reading WARC files back: record by record with each one's offset and
//! length, to cut a killed run's file back to its last whole record
//! (`--resume`) and index what it kept, and for the tests.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::cdxj::Fields;
use super::record::Packing;

/// One record read back.
#[derive(Debug, Clone)]
pub struct WarcRecord {
    pub offset: u64,
    /// Bytes in the file (the gzip member's, for `.warc.gz`).
    pub length: u64,
    /// The WARC fields, in order.
    pub fields: Vec<(String, String)>,
    pub block: Vec<u8>,
}

impl WarcRecord {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The CDXJ fields of a response or revisit record.
    pub(crate) fn index(&self) -> Option<Fields> {
        let kind = self.field("WARC-Type")?;
        if kind != "response" && kind != "revisit" {
            return None;
        }
        let end = find(&self.block, b"\r\n\r\n").unwrap_or(self.block.len());
        let head = String::from_utf8_lossy(&self.block[..end]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok());
        let mime = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_owned());
        let digest = match self.field("WARC-Payload-Digest") {
            Some(d) => d.to_owned(),
            None => super::record::sha1_of(&[]),
        };
        Some(Fields {
            url: self.field("WARC-Target-URI")?.to_owned(),
            date: self.field("WARC-Date")?.to_owned(),
            revisit: kind == "revisit",
            status,
            mime,
            digest,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// A reader that counts what was consumed from it.
struct Counting<R> {
    inner: R,
    at: u64,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.at += amt as u64;
        self.inner.consume(amt);
    }
}

/// The whole records at the start of `path`, and the offset where they end
/// (where a torn record, if any, begins).
pub fn whole_records(path: &Path, packing: Packing) -> std::io::Result<(Vec<WarcRecord>, u64)> {
    let file = std::fs::File::open(path)?;
    let mut input = Counting {
        inner: BufReader::new(file),
        at: 0,
    };
    let mut records = Vec::new();
    loop {
        let offset = input.at;
        if input.fill_buf()?.is_empty() {
            return Ok((records, offset));
        }
        let bytes = match packing {
            Packing::Gzip => {
                let mut bytes = Vec::new();
                let mut member = flate2::bufread::GzDecoder::new(&mut input);
                match member.read_to_end(&mut bytes) {
                    Ok(_) => Some(bytes),
                    Err(_) => None,
                }
            }
            Packing::Plain => plain_record(&mut input),
        };
        let parsed = bytes.as_deref().and_then(parse);
        match parsed {
            Some((fields, block, used))
                if packing == Packing::Plain || used == bytes.as_ref().map_or(0, Vec::len) =>
            {
                records.push(WarcRecord {
                    offset,
                    length: input.at - offset,
                    fields,
                    block,
                });
            }
            _ => return Ok((records, offset)),
        }
    }
}

/// One uncompressed record's bytes: its header, block and line ends.
fn plain_record(input: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    loop {
        let before = bytes.len();
        input.read_until(b'\n', &mut bytes).ok()?;
        if bytes.len() == before {
            return None;
        }
        if bytes[before..] == *b"\r\n" {
            break;
        }
    }
    let (fields, _) = parse_header(&bytes)?;
    let length: usize = field(&fields, "Content-Length")?.parse().ok()?;
    let start = bytes.len();
    bytes.resize(start + length + 4, 0);
    input.read_exact(&mut bytes[start..]).ok()?;
    Some(bytes)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The header of a record: its fields and where its block starts.
/// A record's WARC fields, in order.
type WarcFields = Vec<(String, String)>;

fn parse_header(bytes: &[u8]) -> Option<(WarcFields, usize)> {
    let end = find(bytes, b"\r\n\r\n")?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = text.split("\r\n");
    if !lines.next()?.starts_with("WARC/1.") {
        return None;
    }
    let fields = lines
        .map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((fields, end + 4))
}

/// A whole record: fields, block, and the bytes it took (with its line ends).
fn parse(bytes: &[u8]) -> Option<(WarcFields, Vec<u8>, usize)> {
    let (fields, start) = parse_header(bytes)?;
    let length: usize = field(&fields, "Content-Length")?.parse().ok()?;
    let end = start.checked_add(length)?;
    if bytes.get(end..end + 4)? != b"\r\n\r\n" {
        return None;
    }
    Some((fields, bytes[start..end].to_vec(), end + 4))
}
