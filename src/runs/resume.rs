//! `--resume`: before a run, read the existing output files, keep every final
//! record (anything but `cancelled`), drop torn or unparsable lines and non-final
//! records, and remember which inputs are done so the run skips them and appends
//! the rest. After any number of interrupted runs, including `kill -9` in the
//! middle of a write, the files hold exactly one final record per input.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::failure::ErrorKind;
use crate::input::{self, Done, InputSpec};
use crate::output::Record;
use crate::output::Stats;
use crate::values::IndexSet;

/// What earlier runs left behind.
pub(crate) struct Resumed {
    /// Inputs that already have a final record.
    pub done: IndexSet,
    /// Totals over the kept records, so the summary and exit code cover the whole output.
    pub stats: Stats,
    /// Lines dropped: torn, unparsable, non-final or duplicate.
    pub dropped: u64,
    /// The fingerprint of the kept records' `(index, input)` pairs, for
    /// [`check_list`]: the list must have the same lines at those indexes.
    pub print: Done,
}

/// Is this record the last word on its input? Only a stopped run's `cancelled` is not.
pub(crate) fn is_final(record: &Record) -> bool {
    record.error_kind() != Some(ErrorKind::Cancelled)
}

/// Clean the output files (`-o`, `--errors`) in place and collect what is done.
pub(crate) fn prepare(outputs: &[&Path]) -> anyhow::Result<Resumed> {
    let mut resumed = Resumed {
        done: IndexSet::default(),
        stats: Stats::default(),
        dropped: 0,
        print: Done::default(),
    };
    for path in outputs {
        if path.exists() {
            clean(path, &mut resumed)
                .with_context(|| format!("resuming from '{}'", path.display()))?;
        }
    }
    Ok(resumed)
}

/// Rewrite `path` keeping only whole, final, first-seen records (atomically, by rename).
fn clean(path: &Path, resumed: &mut Resumed) -> anyhow::Result<()> {
    let reader = BufReader::new(File::open(path)?);
    let tmp = temp_path(path);
    let mut out = BufWriter::new(File::create(&tmp)?);
    for line in reader.split(b'\n') {
        let line = line?;
        let keep = match serde_json::from_slice::<Record>(&line) {
            Ok(record) if is_final(&record) && resumed.done.insert(record.index) => {
                resumed.stats.add(&record);
                resumed.print.add(record.index, &record.input);
                true
            }
            _ => false,
        };
        if keep {
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            resumed.dropped += 1;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Refuse to resume when the list's lines at the indexes the outputs hold
/// records for (`found`, taken while reading it) are not the records' inputs
/// (`resumed`): the list was changed, reordered or cut since those records were
/// made, and appending to them would give a result of two lists.
pub(crate) fn check_list(
    resumed: Done,
    found: Done,
    outputs: &[&Path],
    list: &str,
) -> anyhow::Result<()> {
    if resumed == found {
        return Ok(());
    }
    let names = outputs
        .iter()
        .map(|p| format!("'{}'", p.display()))
        .collect::<Vec<_>>()
        .join(" and ");
    let how = match resumed.count.checked_sub(found.count) {
        Some(0) | None => "the lines at their indexes changed or moved".to_owned(),
        Some(gone) => format!("{gone} of their indexes have no line in it now"),
    };
    anyhow::bail!(
        "--resume: the {} records in {names} are not of {list}: {how} (the list was \
         changed, reordered or cut since). Appending would mix two lists. To fetch \
         this list, start fresh: run without --resume (or give another -o)",
        resumed.count
    )
}

/// Before anything is fetched: when every input can be read twice (files
/// that are regular files, URL arguments), read the list once to prove it is
/// the one the kept records were made from ([`check_list`]). Returns false
/// when it cannot be read twice (standard input, a pipe): then the run checks
/// at its end, from the same fingerprint taken while it read.
pub(crate) async fn check_list_ahead(
    specs: &[InputSpec],
    resumed: &Resumed,
    outputs: &[&Path],
) -> anyhow::Result<bool> {
    let twice = specs.iter().all(|spec| match spec {
        InputSpec::Stdin => false,
        InputSpec::File(path) => fs::metadata(path).is_ok_and(|m| m.is_file()),
        InputSpec::Url(_) | InputSpec::Text { .. } => true,
    });
    if !twice || resumed.done.len() == 0 {
        return Ok(twice);
    }
    let sources = input::open(specs).await?;
    let done = Some(std::sync::Arc::new(resumed.done.clone()));
    let read = input::read_jobs(sources, None, Default::default(), None, done).await?;
    let found = read.print.and_then(|p| p.done).unwrap_or_default();
    check_list(resumed.print, found, outputs, &list_name(specs))?;
    Ok(true)
}

/// The list as messages name it: `'urls.txt'`, `standard input`, `'a' + 'b'`.
pub(crate) fn list_name(specs: &[InputSpec]) -> String {
    let names: Vec<String> = specs
        .iter()
        .map(|spec| match spec {
            InputSpec::Stdin => "standard input".to_owned(),
            spec => format!("'{}'", spec.name()),
        })
        .collect();
    match names.len() {
        1 => names[0].clone(),
        _ => names.join(" + "),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".trawl-resume.tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_set() {
        let mut s = IndexSet::default();
        assert!(s.insert(0) && s.insert(64) && s.insert(1_000_000));
        assert!(!s.insert(64));
        assert!(s.contains(0) && s.contains(64) && s.contains(1_000_000));
        assert!(!s.contains(1) && !s.contains(2_000_000));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn clean_keeps_one_final_record_per_index_and_repairs_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let text = concat!(
            "{\"index\":0,\"input\":\"a\",\"ok\":true}\n",
            "{\"index\":1,\"input\":\"b\",\"ok\":false,\"error\":{\"kind\":\"cancelled\",\"message\":\"x\"}}\n",
            "{\"index\":2,\"input\":\"c\",\"ok\":false,\"error\":{\"kind\":\"timeout\",\"message\":\"x\"}}\n",
            "{\"index\":0,\"input\":\"a\",\"ok\":true}\n",
            "{\"index\":3,\"input\":\"d\",\"o",
        );
        std::fs::write(&path, text).unwrap();
        let mut resumed = Resumed {
            done: IndexSet::default(),
            stats: Stats::default(),
            dropped: 0,
            print: Done::default(),
        };
        clean(&path, &mut resumed).unwrap();
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept.lines().count(), 2, "{kept}");
        assert!(kept.ends_with('\n'));
        assert!(resumed.done.contains(0) && resumed.done.contains(2));
        assert!(!resumed.done.contains(1) && !resumed.done.contains(3));
        assert_eq!(resumed.dropped, 3);
        assert_eq!(resumed.stats.total(), 2);
    }
}
