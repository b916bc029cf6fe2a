//! `trawl merge`: the shares of a list (`--shard`) back into one output in input
//! order, one final record per index, with proof that nothing is missing.
//!
//! Each share run with `-o PATH` leaves `PATH.share.json`: its share, the count
//! of shares, and how many lines the whole list has. Merge checks that every
//! share is there and that they agree, then sorts the parts' records by index
//! with an external merge (sorted runs of at most [`RUN_BYTES`] spilled to
//! temporary files), so memory stays bounded however long the list. For each
//! index a final record beats a `cancelled` one, and a later part (or a later
//! line) beats an earlier one. Every index from 0 to lines-1 must be present.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::gaps::Gaps;
use super::share::{ShareFile, share_path};
use crate::Exit;
use crate::failure::ErrorKind;
use crate::output::Record;
use crate::output::Stats;

/// Sorted runs are spilled to disk past this many bytes of records.
const RUN_BYTES: usize = 32 << 20;

/// `trawl merge PART... [-o OUT] [--summary FILE]`.
#[derive(Debug, Clone)]
pub struct Merge {
    pub(crate) parts: Vec<PathBuf>,
    pub(crate) output: Option<PathBuf>,
    pub(crate) summary: Option<PathBuf>,
    /// `--allow-failures`: failed records tolerated over the merged result.
    pub(crate) allow_failures: Option<crate::values::Threshold>,
    /// `--partial`: write `-o` and `--summary` even when incomplete.
    pub(crate) partial: bool,
}

impl Merge {
    /// Merge, report on stderr, and say how to exit: 0 complete, 1 incomplete,
    /// 2 an unreadable part or an unwritable output.
    pub fn run(&self) -> Exit {
        match self.merge() {
            Ok(problems) if problems.is_empty() => Exit::Ok,
            Ok(problems) => {
                for p in problems {
                    eprintln!("trawl merge: {p}");
                }
                Exit::Failures
            }
            Err(e) if is_closed_pipe(&e) => Exit::Ok,
            Err(e) => {
                eprintln!("trawl: error: {e:#}");
                Exit::Fatal
            }
        }
    }

    /// Write the merged records; return what makes the result incomplete.
    fn merge(&self) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        let shares = read_shares(&self.parts, &mut problems)?;
        if let Some(out) = &self.output {
            refuse_to_overwrite_parts(out, &self.parts)?;
        }
        let runs = sorted_runs(&self.parts)?;
        // -o is written beside its place and moved there only when the merge is
        // complete (or --partial), so an incomplete merge leaves no result behind.
        let staged = self.output.as_deref().map(staging_path);
        let mut writer: BufWriter<Box<dyn Write>> = BufWriter::with_capacity(
            256 * 1024,
            match &staged {
                Some(p) => Box::new(
                    File::create(p).with_context(|| format!("cannot create '{}'", p.display()))?,
                ),
                None => Box::new(io::stdout()),
            },
        );
        let mut gaps = Gaps::default();
        let mut not_final = Gaps::default();
        let mut stats = Stats::default();
        let mut next = 0u64;
        merge_runs(runs.runs, |index, entry| {
            if index > next {
                gaps.add(next, index - 1);
            }
            next = index + 1;
            if !entry.is_final {
                not_final.add(index, index);
            }
            if let Ok(record) = serde_json::from_slice::<Record>(&entry.line) {
                stats.add(&record);
            }
            writer.write_all(&entry.line)?;
            writer.write_all(b"\n")
        })?;
        writer.flush()?;
        if runs.torn > 0 {
            eprintln!(
                "trawl merge: skipped {} lines that are not JSON records (torn?)",
                runs.torn
            );
        }
        match shares.lines {
            Some(lines) if next < lines => gaps.add(next, lines - 1),
            Some(lines) if next > lines => problems.push(format!(
                "records go up to index {} but the list has {lines} lines",
                next - 1
            )),
            _ => {}
        }
        if gaps.count > 0 {
            problems.push(format!("{} indexes have no record: {}", gaps.count, gaps));
        }
        if not_final.count > 0 {
            problems.push(format!(
                "{} indexes only have a cancelled record (re-run their share with --resume): {}",
                not_final.count, not_final
            ));
        }
        // Without the shares' start and end (share files of an older trawl),
        // the longest share stands for the fleet's wall time.
        let longest = std::time::Duration::from_secs_f64(shares.longest_ms / 1000.0);
        let mut summary = stats.finish(longest, None);
        if let Some(span) = shares.span_ms {
            summary.over_span(shares.elapsed_ms, span);
        }
        eprintln!("{summary}");
        let complete = problems.is_empty();
        if let (Some(staged), Some(out)) = (&staged, &self.output) {
            match complete || self.partial {
                true => std::fs::rename(staged, out)
                    .with_context(|| format!("cannot write '{}'", out.display()))?,
                false => {
                    let _ = std::fs::remove_file(staged);
                    eprintln!(
                        "trawl merge: incomplete, so '{}' was not written (--partial writes it anyway)",
                        out.display()
                    );
                }
            }
        }
        if !complete && self.partial {
            summary.partial = Some(true);
        }
        if let Some(allow) = self.allow_failures
            && !allow.allows(summary.failed, summary.total)
        {
            problems.push(format!(
                "{} of {} records failed, more than --allow-failures allows",
                summary.failed, summary.total
            ));
        }
        if let Some(path) = self.summary.as_ref().filter(|_| complete || self.partial) {
            let mut text = serde_json::to_vec_pretty(&summary)?;
            text.push(b'\n');
            std::fs::write(path, text)
                .with_context(|| format!("cannot write summary '{}'", path.display()))?;
        }
        if complete {
            eprintln!(
                "trawl merge: complete: {} records, every index of the {} shares' list",
                summary.total, shares.of
            );
        }
        Ok(problems)
    }
}

/// Where `-o OUT` is written until the merge is known complete.
fn staging_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(format!(".merging-{}", std::process::id()));
    PathBuf::from(name)
}

fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn refuse_to_overwrite_parts(out: &Path, parts: &[PathBuf]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    if let Some(o) = id(out)
        && let Some(part) = parts.iter().find(|p| id(p) == Some(o))
    {
        anyhow::bail!(
            "-o '{}' is the part '{}': writing it would destroy it before it is read",
            out.display(),
            part.display()
        );
    }
    Ok(())
}

/// What the parts' share files say together.
struct Shares {
    of: u64,
    lines: Option<u64>,
    /// The shares' times added up, and the longest.
    elapsed_ms: f64,
    longest_ms: f64,
    /// From the first share's start to the last one's end, when every share
    /// file says both.
    span_ms: Option<f64>,
}

/// Read each part's share file; name missing shares and disagreements.
fn read_shares(parts: &[PathBuf], problems: &mut Vec<String>) -> anyhow::Result<Shares> {
    let mut found: BTreeMap<u64, ShareFile> = BTreeMap::new();
    let mut first: Option<ShareFile> = None;
    for part in parts {
        let path = share_path(part);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read '{}'", path.display())),
        };
        let share: ShareFile = serde_json::from_slice(&text)
            .with_context(|| format!("'{}' is not a trawl share file", path.display()))?;
        match &first {
            None => first = Some(share.clone()),
            Some(f) if (f.of, &f.by) != (share.of, &share.by) => problems.push(format!(
                "'{}' is share {}/{} by {}, but '{}' is of {} by {}: not one split",
                part.display(),
                share.share,
                share.of,
                share.by,
                share_path(&parts[0]).display(),
                f.of,
                f.by
            )),
            Some(f) if f.lines.is_some() && share.lines.is_some() && f.lines != share.lines => {
                problems.push(format!(
                    "the shares disagree on the list's length ({:?} and {:?} lines): not one list",
                    f.lines.unwrap_or(0),
                    share.lines.unwrap_or(0)
                ))
            }
            Some(f) if f.list.is_some() && share.list.is_some() && f.list != share.list => problems
                .push(format!(
                    "'{}' and '{}' were made from different lists (their share files' list \
                     fingerprints differ): run every share again on one list, without --resume",
                    parts[0].display(),
                    part.display()
                )),
            Some(_) => {}
        }
        if share.lines.is_none() {
            problems.push(format!(
                "share {}/{} ('{}') stopped before reading its whole input: re-run it with --resume",
                share.share,
                share.of,
                part.display()
            ));
        }
        found.insert(share.share, share);
    }
    let Some(first) = first else {
        problems.push(
            "no part has a share file (PART.share.json), so completeness cannot be proved: run each share with --shard and -o, and give merge the -o files".into(),
        );
        return Ok(Shares {
            of: 0,
            lines: None,
            elapsed_ms: 0.0,
            longest_ms: 0.0,
            span_ms: None,
        });
    };
    let missing: Vec<String> = (1..=first.of)
        .filter(|k| !found.contains_key(k))
        .map(|k| format!("{k}/{}", first.of))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing shares: {}", missing.join(", ")));
    }
    Ok(Shares {
        of: first.of,
        lines: found.values().find_map(|s| s.lines),
        elapsed_ms: found.values().map(|s| s.elapsed_ms).sum(),
        longest_ms: found.values().map(|s| s.elapsed_ms).fold(0.0, f64::max),
        span_ms: span(found.values()),
    })
}

/// The wall clock from the first start to the last end of `shares`.
fn span<'a>(shares: impl Iterator<Item = &'a ShareFile>) -> Option<f64> {
    let (mut first, mut last) = (u64::MAX, 0u64);
    for share in shares {
        first = first.min(share.started_unix_ms?);
        last = last.max(share.ended_unix_ms?);
    }
    (first <= last).then(|| (last - first) as f64)
}

/// One record line, and what decides between records of one index.
struct Entry {
    index: u64,
    is_final: bool,
    /// Order of appearance across the parts: later wins.
    seq: u64,
    line: Vec<u8>,
}

impl Entry {
    fn key(&self) -> (u64, bool, u64) {
        (self.index, self.is_final, self.seq)
    }
}

/// The fields merge reads from a line.
#[derive(Deserialize)]
struct Head {
    index: u64,
    #[serde(default)]
    error: Option<HeadError>,
}

#[derive(Deserialize)]
struct HeadError {
    kind: ErrorKind,
}

enum Run {
    InMemory(std::vec::IntoIter<Entry>),
    Spilled(BufReader<File>),
}

impl Run {
    fn next(&mut self) -> io::Result<Option<Entry>> {
        match self {
            Run::InMemory(entries) => Ok(entries.next()),
            Run::Spilled(reader) => {
                let mut line = Vec::new();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    return Ok(None);
                }
                line.pop();
                let mut fields = line.splitn(4, |&b| b == b'\t');
                let mut number = || -> io::Result<u64> {
                    let field = fields.next().unwrap_or_default();
                    std::str::from_utf8(field)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| io::Error::other("a damaged temporary run"))
                };
                let (index, is_final, seq) = (number()?, number()? == 1, number()?);
                let line = fields.next().unwrap_or_default().to_vec();
                Ok(Some(Entry {
                    index,
                    is_final,
                    seq,
                    line,
                }))
            }
        }
    }
}

struct Runs {
    runs: Vec<Run>,
    /// Lines that are not records.
    torn: u64,
}

/// Read every part into runs sorted by index.
fn sorted_runs(parts: &[PathBuf]) -> anyhow::Result<Runs> {
    let mut runs = Vec::new();
    let mut chunk: Vec<Entry> = Vec::new();
    let (mut bytes, mut seq, mut torn) = (0usize, 0u64, 0u64);
    for part in parts {
        let file =
            File::open(part).with_context(|| format!("cannot read part '{}'", part.display()))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(head) = serde_json::from_slice::<Head>(text) else {
                torn += 1;
                continue;
            };
            let is_final = head.error.is_none_or(|e| e.kind != ErrorKind::Cancelled);
            seq += 1;
            bytes += text.len();
            chunk.push(Entry {
                index: head.index,
                is_final,
                seq,
                line: text.to_vec(),
            });
            if bytes > RUN_BYTES {
                runs.push(spill(std::mem::take(&mut chunk))?);
                bytes = 0;
            }
        }
    }
    chunk.sort_unstable_by_key(Entry::key);
    runs.push(Run::InMemory(chunk.into_iter()));
    Ok(Runs { runs, torn })
}

/// Sort a chunk and write it to an anonymous temporary file.
fn spill(mut chunk: Vec<Entry>) -> anyhow::Result<Run> {
    chunk.sort_unstable_by_key(Entry::key);
    let file = tempfile::tempfile().context("creating a temporary file for merge")?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for e in &chunk {
        write!(out, "{}\t{}\t{}\t", e.index, u8::from(e.is_final), e.seq)?;
        out.write_all(&e.line)?;
        out.write_all(b"\n")?;
    }
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    Ok(Run::Spilled(BufReader::with_capacity(1 << 16, file)))
}

/// Merge the sorted runs; call `emit` with the winning entry of each index, in
/// index order.
fn merge_runs(
    mut runs: Vec<Run>,
    mut emit: impl FnMut(u64, &Entry) -> io::Result<()>,
) -> io::Result<()> {
    let mut heads: Vec<Option<Entry>> = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::new();
    for (i, run) in runs.iter_mut().enumerate() {
        let head = run.next()?;
        if let Some(e) = &head {
            heap.push(Reverse((e.key(), i)));
        }
        heads.push(head);
    }
    let mut best: Option<Entry> = None;
    while let Some(Reverse((_, i))) = heap.pop() {
        let entry = heads[i].take().expect("a queued run has a head");
        heads[i] = runs[i].next()?;
        if let Some(e) = &heads[i] {
            heap.push(Reverse((e.key(), i)));
        }
        // Ascending keys: the last entry of an index is its winner.
        if let Some(b) = best.take_if(|b| b.index != entry.index) {
            emit(b.index, &b)?;
        }
        best = Some(entry);
    }
    if let Some(b) = best {
        emit(b.index, &b)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, is_final: bool, seq: u64) -> Entry {
        Entry {
            index,
            is_final,
            seq,
            line: format!("{index}:{seq}").into_bytes(),
        }
    }

    #[test]
    fn runs_merge_in_index_order_with_final_and_later_records_winning() {
        let mut a = vec![entry(0, true, 1), entry(2, false, 2), entry(3, true, 3)];
        let b = vec![
            entry(1, true, 4),
            entry(2, true, 5),
            entry(3, true, 6),
            entry(5, false, 7),
        ];
        a.sort_unstable_by_key(Entry::key);
        let runs = vec![Run::InMemory(a.into_iter()), spill(b).unwrap()];
        let mut got = Vec::new();
        merge_runs(runs, |i, e| {
            got.push((i, String::from_utf8(e.line.clone()).unwrap()));
            Ok(())
        })
        .unwrap();
        let want = [(0, "0:1"), (1, "1:4"), (2, "2:5"), (3, "3:6"), (5, "5:7")];
        assert_eq!(got, want.map(|(i, s)| (i, s.to_owned())));
    }

    #[test]
    fn gaps_are_counted_and_joined() {
        let mut g = Gaps::default();
        g.add(3, 5);
        g.add(6, 6);
        g.add(9, 9);
        assert_eq!((g.count, g.to_string()), (5, "3-6, 9".to_owned()));
    }
}
