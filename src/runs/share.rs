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
    pub(crate) elapsed_ms: f64,
}

impl ShareFile {
    pub(crate) fn new(
        shard: crate::input::Shard,
        lines: Option<u64>,
        elapsed_ms: f64,
    ) -> ShareFile {
        ShareFile {
            schema_version: SCHEMA_VERSION.into(),
            share: shard.k,
            of: shard.n,
            by: shard.by.to_string(),
            lines,
            elapsed_ms,
        }
    }

    pub(crate) fn write(&self, output: &Path) -> anyhow::Result<()> {
        let path = share_path(output);
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        std::fs::write(&path, text).with_context(|| format!("cannot write '{}'", path.display()))
    }
}

/// `PATH.share.json` beside the output `PATH`.
pub(crate) fn share_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".share.json");
    PathBuf::from(name)
}
