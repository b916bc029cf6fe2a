//! Input: the lists a run reads (files, stdin, URL arguments), each line parsed
//! into a [`Job`] (a URL or a JSON request object, or why it is not one), and
//! the share of them this machine takes (`--shard`, `shard.rs`).
//!
//! Offers the reader the pipeline starts ([`read_jobs`]), the line parser and
//! the job every later stage carries. Imports only the shared words
//! (`failure`, `values`): never another concern, `pipeline`, `cli` or `config`.

mod job;
mod lines;
mod object;
mod print;
mod shard;

pub(crate) use job::{Job, Request, without_passwords};
pub use lines::{InputSpec, Line, MAX_LINE, next_line, parse_line};
pub(crate) use lines::{Read, Source, open, read_jobs};
pub(crate) use print::Done;
pub(crate) use shard::{Shard, ShardArg, ShardBy, parse_shard};
