//! Fetch: one request from start to body. The HTTP clients (`clients.rs`,
//! TLS in `tls.rs`, names in `resolve.rs`), the attempt loop with its retries
//! and redirects (`fetcher.rs`, which asks `politeness` once per attempt), the
//! body read that may hash pieces on the lanes as they arrive (`tap.rs`), the
//! body itself (`body.rs`, `digest.rs`) and how a transport error becomes a
//! failure kind (`classify.rs`).
//!
//! Offers [`Fetcher`] and its [`Report`]. Imports `input` and `politeness`,
//! never `process`, `output`, `runs`, `pipeline`, `cli` or `config`.

mod body;
mod classify;
mod clients;
mod descriptors;
mod digest;
mod fetcher;
mod redirect;
mod resolve;
mod reuse;
mod robots_get;
mod tap;
mod tls;
mod wire;

pub(crate) use body::Body;
pub(crate) use clients::{ClientSettings, HttpVersions};
#[cfg(test)]
pub(crate) use fetcher::RETRIED_STATUSES;
pub(crate) use fetcher::{FetchSettings, Fetcher, Report};
pub(crate) use resolve::{LookupFn, Pin, parse_pin};
pub(crate) use tap::{Piece, Tap};
pub(crate) use tls::Tls;
pub(crate) use wire::{Exchange, WireSink};
