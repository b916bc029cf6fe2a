//! Politeness: what a host is owed. The global and per-host limits with the
//! reservation pacer (`limits.rs`), `--auto-throttle` (`throttle.rs`),
//! rate-limit and Retry-After headers (`ratelimit.rs`), robots.txt
//! (`robots.rs`) and the per-host counts of `--host-stats` (`hoststats.rs`).
//!
//! Offers [`Limits`] and the host handle a fetch holds. Imports `input` (the
//! host of a job), never `fetch`, `process`, `output`, `runs`, `pipeline`,
//! `cli` or `config`.

mod hoststats;
mod limits;
mod ratelimit;
mod robots;
mod throttle;

pub(crate) use hoststats::{HostStats, Written as HostRecord};
pub(crate) use limits::{HostHandle, LimitSettings, Limits, Probe, Slot, host_key};
pub(crate) use ratelimit::{budget, exhausted, retry_after};
pub(crate) use robots::{RobotsCache, Rules};
pub(crate) use throttle::Signal;
