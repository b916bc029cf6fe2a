//! `--since PREV`: the previous run as the cache. PREV's records are not held in
//! memory: an index maps the hash of each URL that had an ok record to where
//! its last ok record sits in PREV (16 bytes a URL), and a record is read back
//! when its URL comes up. The read-back is a `pread` of one line: the index was
//! just built by reading PREV whole, so its pages are in the page cache.
//!
//! With PREV's record at hand, a GET is made conditional on its `etag` and
//! `last_modified`; a 304 takes the previous record's body facts; every record
//! is judged `new`, `unchanged`, `changed` or `broken`.

use std::borrow::Cow;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH};
use serde::Deserialize;

use crate::output::{Change, Record};

/// Where the last ok record of each URL is.
pub(crate) struct Since {
    files: Vec<File>,
    /// (hash of the URL, file number << 56 | byte offset), sorted by hash, one
    /// entry per hash.
    index: Vec<(u64, u64)>,
}

/// What building the index found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// URLs with an ok record.
    pub urls: usize,
    /// Lines that are not a JSON record (a torn last line, garbage): skipped.
    pub skipped: u64,
}

/// The fields the index needs from a PREV line.
#[derive(Deserialize)]
struct Key<'a> {
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(default)]
    ok: bool,
}

const OFFSET_BITS: u32 = 56;

fn hash(url: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(url)
}

impl Since {
    /// Index the PREV files, in order: a later ok record of a URL wins over an
    /// earlier one. A file that cannot be read is an error naming it.
    pub(crate) fn load(paths: &[PathBuf]) -> anyhow::Result<(Since, Loaded)> {
        anyhow::ensure!(paths.len() < 256, "at most 255 --since files");
        let mut files = Vec::with_capacity(paths.len());
        let mut entries = Vec::new();
        let mut loaded = Loaded::default();
        for (number, path) in paths.iter().enumerate() {
            let file = File::open(path)
                .with_context(|| format!("cannot read --since '{}'", path.display()))?;
            scan(&file, number as u64, &mut entries, &mut loaded)
                .with_context(|| format!("cannot read --since '{}'", path.display()))?;
            files.push(file);
        }
        // Stable: within one hash, the entries stay in file order, so the last is the latest.
        entries.sort_by_key(|&(h, _)| h);
        let mut index: Vec<(u64, u64)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match index.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => index.push(entry),
            }
        }
        index.shrink_to_fit();
        loaded.urls = index.len();
        Ok((Since { files, index }, loaded))
    }

    /// The last ok record of `url` in PREV, if there is one.
    pub(crate) fn lookup(&self, url: &str) -> Option<Record> {
        let h = hash(url);
        let at = self.index.partition_point(|&(k, _)| k < h);
        let &(k, place) = self.index.get(at)?;
        if k != h {
            return None;
        }
        let file = &self.files[(place >> OFFSET_BITS) as usize];
        let line = read_line_at(file, place & ((1 << OFFSET_BITS) - 1)).ok()?;
        let record: Record = serde_json::from_slice(&line).ok()?;
        // Two URLs with one 64-bit hash: the other one is not this URL's record.
        (record.url.as_deref() == Some(url)).then_some(record)
    }
}

/// Index one file's ok records.
fn scan(
    file: &File,
    number: u64,
    entries: &mut Vec<(u64, u64)>,
    loaded: &mut Loaded,
) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    if size >= 1 << OFFSET_BITS {
        return Err(std::io::Error::other("file too large to index"));
    }
    entries.reserve((size / 256) as usize);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(1024);
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let at = offset;
        offset += n as u64;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Key>(text) {
            Ok(Key {
                url: Some(url),
                ok: true,
            }) => entries.push((hash(&url), number << OFFSET_BITS | at)),
            Ok(_) => {}
            Err(_) => loaded.skipped += 1,
        }
    }
}

/// The line that starts at `offset`.
fn read_line_at(file: &File, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, offset + line.len() as u64)?;
        if n == 0 {
            return Ok(line);
        }
        if let Some(end) = memchr::memchr(b'\n', &chunk[..n]) {
            line.extend_from_slice(&chunk[..end]);
            return Ok(line);
        }
        line.extend_from_slice(&chunk[..n]);
    }
}

/// The conditional headers for a request whose previous ok record is `prev`:
/// `If-None-Match` from its `etag`, `If-Modified-Since` from its
/// `last_modified`. `None` when it has neither.
pub(crate) fn conditional(prev: &Record) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    let mut add = |name, value: &Option<String>| {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    };
    add(IF_NONE_MATCH, &prev.etag);
    add(IF_MODIFIED_SINCE, &prev.last_modified);
    (!headers.is_empty()).then_some(headers)
}

/// A 304 to a conditional request: ok, with the previous record's body facts
/// (and its validators where the 304 sent none).
pub(crate) fn not_modified(record: &mut Record, prev: &Record) {
    record.ok = true;
    record.error = None;
    record.not_modified = Some(true);
    record.bytes = prev.bytes;
    record.sha256 = prev.sha256.clone();
    record.blake3 = prev.blake3.clone();
    record.content_type = prev.content_type.clone();
    record.title = prev.title.clone();
    record.jq = prev.jq.clone();
    record.select = prev.select.clone();
    record.matches = prev.matches.clone();
    record.saved = prev.saved.clone();
    record.exec = prev.exec.clone();
    record.etag = record.etag.take().or_else(|| prev.etag.clone());
    record.last_modified = record
        .last_modified
        .take()
        .or_else(|| prev.last_modified.clone());
}

/// How `record` compares with its URL's previous ok record.
pub(crate) fn judge(record: &Record, prev: Option<&Record>) -> Change {
    let Some(prev) = prev else {
        return Change::New;
    };
    if !record.ok {
        return Change::Broken;
    }
    if record.not_modified == Some(true) {
        return Change::Unchanged;
    }
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    if same(&record.sha256, &prev.sha256) || same(&record.blake3, &prev.blake3) {
        Change::Unchanged
    } else {
        Change::Changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rec(url: &str, ok: bool, sha: &str) -> String {
        format!(
            r#"{{"index":0,"input":"{url}","url":"{url}","ok":{ok},"sha256":"{sha}","etag":"\"{sha}\""}}"#
        )
    }

    #[test]
    fn the_last_ok_record_of_a_url_wins_across_files_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        let mut f = File::create(&a).unwrap();
        writeln!(f, "{}", rec("http://x/1", true, "old")).unwrap();
        writeln!(f, "{}", rec("http://x/2", true, "two")).unwrap();
        writeln!(f, "not json").unwrap();
        writeln!(f, "{}", rec("http://x/1", true, "newer")).unwrap();
        let mut g = File::create(&b).unwrap();
        writeln!(g, "{}", rec("http://x/1", false, "failed-later")).unwrap();
        writeln!(g, "{}", rec("http://x/3", true, "three")).unwrap();
        write!(g, "{}", &rec("http://x/4", true, "torn")[..30]).unwrap();
        drop((f, g));
        let (since, loaded) = Since::load(&[a, b]).unwrap();
        assert_eq!(
            loaded,
            Loaded {
                urls: 3,
                skipped: 2
            }
        );
        let sha = |u: &str| since.lookup(u).and_then(|r| r.sha256);
        assert_eq!(
            sha("http://x/1").as_deref(),
            Some("newer"),
            "the last ok record"
        );
        assert_eq!(sha("http://x/2").as_deref(), Some("two"));
        assert_eq!(sha("http://x/3").as_deref(), Some("three"));
        assert_eq!(sha("http://x/4"), None, "a torn line is not a record");
        assert_eq!(sha("http://x/5"), None);
        let prev = since.lookup("http://x/2").unwrap();
        let headers = conditional(&prev).unwrap();
        assert_eq!(headers[IF_NONE_MATCH], "\"two\"");
        assert!(Since::load(&[dir.path().join("missing")]).is_err());
    }

    #[test]
    fn records_are_judged_against_the_previous_one() {
        let prev = Record {
            ok: true,
            sha256: Some("aa".into()),
            ..Record::default()
        };
        let now = |ok, sha: &str| Record {
            ok,
            sha256: Some(sha.into()),
            ..Record::default()
        };
        assert_eq!(judge(&now(true, "aa"), Some(&prev)), Change::Unchanged);
        assert_eq!(judge(&now(true, "bb"), Some(&prev)), Change::Changed);
        assert_eq!(judge(&now(false, "aa"), Some(&prev)), Change::Broken);
        assert_eq!(judge(&now(true, "aa"), None), Change::New);
        assert_eq!(judge(&now(false, "aa"), None), Change::New);
        let mut r = now(false, "");
        not_modified(&mut r, &prev);
        assert!(r.ok && r.sha256.as_deref() == Some("aa"));
        assert_eq!(judge(&r, Some(&prev)), Change::Unchanged);
    }
}
