//! Processing: the CPU work on every body, off the async runtime. The lanes
//! (`lanes.rs`: long-lived `spawn_blocking` threads under a memory budget), the
//! hashing (`hash.rs`, several bodies at once where that pays), the built-in
//! work on one body (`builtins.rs`: title, jq, CSS, regex, save, the body
//! field; the parsers in `extract.rs`), the user's own workers (`exec.rs`:
//! `--exec`) and how a fetch and its processing become the record
//! (`assemble.rs`).
//!
//! Offers the lanes and their messages ([`lane`], [`Task`], [`Work`]) and the
//! settings. Imports `input`, `fetch`, `output` and `runs` (the `--since`
//! verdicts), never `pipeline`, `cli` or `config`.

mod assemble;
mod builtins;
mod exec;
mod extract;
mod hash;
mod lanes;

pub(crate) use builtins::{ProcessSettings, is_light, needed, needs_whole_body};
pub(crate) use exec::{ExecSettings, Pool};
pub(crate) use extract::{Jq, Pattern, Select};
pub(crate) use hash::{Together, group as hash_group, kernel};
#[cfg(test)]
pub(crate) use hash::{blake3_hex, sha256_hex};
#[cfg(test)]
pub(crate) use lanes::guarded;
pub(crate) use lanes::{
    LaneBudget, Processing, Task, Work, archive_async, archived, cores, lane, not_started,
    processed, unmodified,
};
