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
        field(&self.fields, name)
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
            None => super::record::sha1_of([]),
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
                // As warcio counts it: a plain record without the line ends after it.
                let trailer = if packing == Packing::Plain { 4 } else { 0 };
                records.push(WarcRecord {
                    offset,
                    length: input.at - offset - trailer,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader against files warcio wrote (tests/fixtures; offsets and
    /// lengths as `warcio index` gives them, the index as cdxj-indexer's).
    #[test]
    fn files_written_by_warcio_read_back_with_its_offsets() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let cases = [
            (
                "warcio-written.warc.gz",
                Packing::Gzip,
                [(0, 258), (258, 335), (593, 356), (949, 339), (1288, 355)],
            ),
            (
                "warcio-written.warc",
                Packing::Plain,
                [(0, 312), (316, 448), (768, 470), (1242, 461), (1707, 470)],
            ),
        ];
        for (name, packing, places) in cases {
            let path = fixtures.join(name);
            let (records, end) = whole_records(&path, packing).unwrap();
            assert_eq!(end, std::fs::metadata(&path).unwrap().len(), "{name}");
            let found: Vec<(u64, u64)> = records.iter().map(|r| (r.offset, r.length)).collect();
            assert_eq!(found, places, "{name}");
            let kinds: Vec<_> = records
                .iter()
                .map(|r| r.field("WARC-Type").unwrap())
                .collect();
            assert_eq!(
                kinds,
                ["warcinfo", "response", "request", "response", "request"]
            );
            let index = records[1].index().unwrap();
            assert_eq!(
                index.line(records[1].offset, records[1].length, name),
                format!(
                    "com,example)/0 {} {{\"url\": \"http://example.com/0\", \"mime\": \"text/plain\", \
                     \"status\": \"200\", \"digest\": \"sha1:ATMD46BPSGTF53V6QZLSWGKUUKUSDQKH\", \
                     \"length\": \"{}\", \"offset\": \"{}\", \"filename\": \"{name}\"}}",
                    super::super::cdxj::timestamp(records[1].field("WARC-Date").unwrap()),
                    records[1].length,
                    records[1].offset,
                )
            );
            assert!(records[1].block.ends_with(b"hello from warcio\n"));
        }
    }

    /// A file cut anywhere reads back as its whole records before the cut.
    #[test]
    fn a_torn_file_ends_at_its_last_whole_record() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let dir = tempfile::tempdir().unwrap();
        for (name, packing) in [
            ("warcio-written.warc.gz", Packing::Gzip),
            ("warcio-written.warc", Packing::Plain),
        ] {
            let bytes = std::fs::read(fixtures.join(name)).unwrap();
            let (whole, _) = whole_records(&fixtures.join(name), packing).unwrap();
            for cut in [1, 100, 258, 300, 600, 949, 1000, bytes.len() - 1] {
                let torn = dir.path().join("torn");
                std::fs::write(&torn, &bytes[..cut]).unwrap();
                let (records, end) = whole_records(&torn, packing).unwrap();
                let expected: Vec<u64> = whole
                    .iter()
                    .filter(|r| {
                        r.offset + r.length + 4 <= cut as u64
                            || (packing == Packing::Gzip && r.offset + r.length <= cut as u64)
                    })
                    .map(|r| r.offset)
                    .collect();
                let found: Vec<u64> = records.iter().map(|r| r.offset).collect();
                assert_eq!(found, expected, "{name} cut at {cut}");
                let trailer = if packing == Packing::Plain { 4 } else { 0 };
                let last = records.last().map_or(0, |r| r.offset + r.length + trailer);
                assert_eq!(end, last, "{name} cut at {cut}");
            }
        }
    }
}
