//! Politeness: what a host is owed. The global and per-host limits with the
//! reservation pacer (`limits.rs`, `pacer.rs`), `--auto-throttle` (`throttle.rs`),
//! rate-limit and Retry-After headers (`ratelimit.rs`), robots.txt
//! (`robots.rs`) and the per-host counts of `--host-stats` (`hoststats.rs`).
//!
//! Offers one door ([`Gate`]: `gate.door(url)`, then per attempt
//! `door.admit(..)` -> a permit, and `permit.observe(..)`) and the [`Limits`]. Imports `input` (the
//! host of a job), never `fetch`, `process`, `output`, `runs`, `pipeline`,
//! `cli` or `config`.

mod gate;
mod hoststats;
mod limits;
mod pacer;
mod ratelimit;
mod robots;
mod throttle;

pub(crate) use gate::{Answer, Gate, Refusal, RobotsReply, RobotsSource};
pub(crate) use hoststats::{HostStats, Written as HostRecord};
pub(crate) use limits::{LimitSettings, Limits, Probe, Slot, host_key};
pub(crate) use ratelimit::Signals;
