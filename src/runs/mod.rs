//! Runs: what one run knows of others. `--since` (the previous run's records,
//! for conditional requests and change verdicts), `--resume` (the records an
//! interrupted run already wrote) and `trawl merge` with the share files that
//! prove a fleet's shares complete.
//!
//! Offers [`Since`], [`prepare_resume`], [`Merge`] and [`ShareFile`]. Imports
//! `input` (shares) and `output` (records and summaries), never `process`,
//! `fetch`, `pipeline`, `cli` or `config`.

mod gaps;
mod merge;
mod resume;
mod share;
mod since;

pub use merge::Merge;
pub(crate) use resume::{
    Resumed, check_list, check_list_ahead, list_name, prepare as prepare_resume,
};
pub(crate) use share::{Attempt, ShareFile};
pub(crate) use since::{Since, conditional, judge, not_modified};
