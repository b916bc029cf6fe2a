//! The share file: what a `--shard K/N -o PATH` run leaves beside PATH, so that
//! `trawl merge` can prove a fleet's shares complete.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::output::SCHEMA_VERSION;

/// What a share run leaves beside its `-o` file for `trawl merge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShareFile {
    pub(crate) schema_version: String,
    /// 1-based.
    pub(crate) share: u64,
    pub(crate) of: u64,
    /// `host` or `domain`.
    pub(crate) by: String,
    /// Lines (non-skipped) in the whole list; `null` when the run stopped before
    /// reading its input to the end.
    pub(crate) lines: Option<u64>,
    /// The whole list's fingerprint (`sha256:` of its lines), when it was read
    /// to the end: merge refuses parts of different lists.
    #[serde(default)]
    pub(crate) list: Option<String>,
    pub(crate) elapsed_ms: f64,
}

impl ShareFile {
    pub(crate) fn new(
        shard: crate::input::Shard,
        lines: Option<u64>,
        list: Option<String>,
        elapsed_ms: f64,
    ) -> ShareFile {
        ShareFile {
            schema_version: SCHEMA_VERSION.into(),
            share: shard.k,
            of: shard.n,
            by: shard.by.to_string(),
            lines,
            list,
            elapsed_ms,
        }
    }

    /// Before `--resume` appends to `output`: refuse when its share file says
    /// it holds another share, count or split than this run's (`shard`), so a
    /// resumed run never mixes shares.
    pub(crate) fn check_resume(
        output: &Path,
        shard: Option<crate::input::Shard>,
    ) -> anyhow::Result<()> {
        let path = share_path(output);
        let Ok(text) = std::fs::read(&path) else {
            return Ok(());
        };
        let Ok(found) = serde_json::from_slice::<ShareFile>(&text) else {
            anyhow::bail!(
                "--resume: '{}' is not a share file trawl wrote; remove it, or start fresh without --resume",
                path.display()
            );
        };
        let theirs = format!("share {}/{} (by {})", found.share, found.of, found.by);
        let ours = match shard {
            Some(s)
                if (s.k, s.n, s.by.to_string()) == (found.share, found.of, found.by.clone()) =>
            {
                return Ok(());
            }
            Some(s) => format!("share {}/{} (by {})", s.k, s.n, s.by),
            None => "not a share (no --shard)".to_owned(),
        };
        let mut why = format!(
            "--resume: '{}' holds {theirs} of a list ({}), but this run is {ours}: \
             appending would mix shares. Run it again as {theirs}, or start fresh \
             without --resume",
            output.display(),
            path.display()
        );
        if shard.is_some_and(|s| s.n == 1) && found.of > 1 {
            why.push_str(
                ". A job engine that gave one task alone (Slurm's --array=K) says 1/1: \
                 redo one task with `scontrol requeue JOB_TASK` or the full array range, \
                 or give --shard K/N",
            );
        }
        anyhow::bail!(why)
    }

    pub(crate) fn write(&self, output: &Path) -> anyhow::Result<()> {
        let path = share_path(output);
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        std::fs::write(&path, text).with_context(|| format!("cannot write '{}'", path.display()))
    }

    /// Remove the share file beside `output`, if there is one.
    pub(crate) fn remove(output: &Path) -> anyhow::Result<()> {
        let path = share_path(output);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove '{}'", path.display()))
            }
            _ => Ok(()),
        }
    }
}

/// `PATH.share.json` beside the output `PATH`.
pub(crate) fn share_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".share.json");
    PathBuf::from(name)
}
