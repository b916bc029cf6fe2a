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
