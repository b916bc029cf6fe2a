//! Output: the record (one JSON line per input, `record.rs`), the one writer
//! task that owns the output files (`writer.rs`), the run summary
//! (`summary.rs`), the JSON Schemas made from those types (`schema.rs`), and
//! what stderr shows: the progress bar and the log lines (`progress.rs`).
//!
//! Offers [`Record`], [`Summary`], [`Progress`], the writer ([`spawn`]) and the
//! message the lanes send it ([`Finished`]). Imports `input` and `politeness`
//! (host stats are counted from written records), never `fetch`, `process`,
//! `runs`, `pipeline`, `cli` or `config`.

mod progress;
mod queue;
mod record;
mod schema;
mod sink;
mod summary;
mod writer;

pub use progress::Progress;
pub(crate) use progress::{ProgressMode, UiSettings, init_logging};
pub(crate) use queue::{ToWriter, queue};
pub(crate) use record::CREDENTIALS;
pub use record::{Change, Record, RequestParts, WarcPointer};
pub use schema::{record as record_schema, summary as summary_schema};
pub(crate) use summary::Stats;
pub use summary::{RobotsCounts, SCHEMA_VERSION, Stop, Summary};
pub(crate) use writer::{
    Finished, OutputSettings, Outputs, WriterSetup, Written, empty, open_report,
    refuse_to_overwrite_inputs, spawn,
};
