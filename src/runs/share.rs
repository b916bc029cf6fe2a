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
    /// The share's attempts' running times added up (a killed attempt's up to
    /// its output's last write).
    pub(crate) elapsed_ms: f64,
    /// How many times the share was run (`--resume` counts on).
    #[serde(default)]
    pub(crate) attempts: u64,
    /// When the first attempt started and the last one ended (Unix ms); the
    /// end is `null` while an attempt runs, or after it was killed.
    #[serde(default)]
    pub(crate) started_unix_ms: Option<u64>,
    #[serde(default)]
    pub(crate) ended_unix_ms: Option<u64>,
    /// When the attempt now running (or killed) started.
    #[serde(default)]
    pub(crate) attempt_started_unix_ms: Option<u64>,
}

/// The attempt a share run is: begun by [`ShareFile::begin`], which leaves a
/// share file saying it runs, and ended by [`Attempt::end`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    shard: crate::input::Shard,
    /// The earlier attempts' time, added up.
    earlier_ms: f64,
    attempts: u64,
    first_start: u64,
    start: u64,
}

/// Now, in Unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Attempt {
    /// Once every check passed: leave a share file that says the share runs
    /// (no `lines`, so merge does not call it whole).
    pub(crate) fn begin(&self, output: &Path) -> anyhow::Result<()> {
        ShareFile {
            elapsed_ms: self.earlier_ms,
            attempts: self.attempts,
            started_unix_ms: Some(self.first_start),
            attempt_started_unix_ms: Some(self.start),
            ..ShareFile::new(self.shard, None, None, 0.0)
        }
        .write(output)
    }

    /// Write the share file of a finished attempt (`lines`/`list` as read),
    /// and return (time added up, span) when the share ran more than once.
    pub(crate) fn end(
        &self,
        output: &Path,
        lines: Option<u64>,
        list: Option<String>,
        elapsed_ms: f64,
    ) -> anyhow::Result<Option<(f64, f64)>> {
        let now = unix_ms();
        let file = ShareFile {
            elapsed_ms: ((self.earlier_ms + elapsed_ms) * 1000.0).round() / 1000.0,
            attempts: self.attempts,
            started_unix_ms: Some(self.first_start),
            ended_unix_ms: Some(now),
            attempt_started_unix_ms: None,
            ..ShareFile::new(self.shard, lines, list, 0.0)
        };
        file.write(output)?;
        Ok((self.attempts > 1).then(|| {
            let span = now.saturating_sub(self.first_start) as f64;
            (file.elapsed_ms, span.max(file.elapsed_ms))
        }))
    }
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
            attempts: 1,
            started_unix_ms: None,
            ended_unix_ms: None,
            attempt_started_unix_ms: None,
        }
    }

    /// The attempt of `shard` a run writing `output` is: it carries the
    /// earlier attempts of a resumed share (a killed one counts up to its
    /// output's last write, so this is read before resuming rewrites it).
    pub(crate) fn attempt(output: &Path, shard: crate::input::Shard, resume: bool) -> Attempt {
        let start = unix_ms();
        let earlier = match resume {
            true => std::fs::read(share_path(output))
                .ok()
                .and_then(|t| serde_json::from_slice::<ShareFile>(&t).ok()),
            false => None,
        };
        match earlier {
            Some(e) => {
                let killed = match (e.ended_unix_ms, e.attempt_started_unix_ms) {
                    (None, Some(began)) => last_write(output).saturating_sub(began) as f64,
                    _ => 0.0,
                };
                Attempt {
                    shard,
                    earlier_ms: e.elapsed_ms + killed,
                    attempts: e.attempts.max(1) + 1,
                    first_start: e.started_unix_ms.unwrap_or(start),
                    start,
                }
            }
            None => Attempt {
                shard,
                earlier_ms: 0.0,
                attempts: 1,
                first_start: start,
                start,
            },
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

/// When `path` was last written, in Unix milliseconds (0 if unknown).
fn last_write(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// `PATH.share.json` beside the output `PATH`.
pub(crate) fn share_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".share.json");
    PathBuf::from(name)
}
