//! Politeness: what a host is owed. The global and per-host limits with the
//! reservation pacer (`limits.rs`, `pacer.rs`), `--auto-throttle` (`throttle.rs`),
//! rate-limit and Retry-After headers (`ratelimit.rs`), robots.txt
//! (`robots.rs`, parsed by `robotstxt/`) and the per-host counts of `--host-stats` (`hoststats.rs`).
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
mod robotstxt;
mod throttle;

pub(crate) use gate::{Answer, Ask, Gate, Refusal, RobotsSource, RobotsTally};
pub(crate) use hoststats::{HostStats, Written as HostRecord};
pub(crate) use limits::{LimitSettings, Limits, Probe, Slot};
pub(crate) use ratelimit::Signals;
pub(crate) use robots::{MAX_BYTES as ROBOTS_MAX_BYTES, Rules, product_token};
