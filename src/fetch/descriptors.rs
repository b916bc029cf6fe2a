//! The open-files limit. Every connection is a descriptor, and reqwest's pool
//! keeps one idle connection per host it has talked to: a run over thousands of
//! hosts under `ulimit -n 256` ran out, and every later `socket()` failed. So
//! the clients count the process's open descriptors (now and then, not per
//! request) and, near the limit, retire their pools, which closes the idle
//! connections, before they open another.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Descriptors kept, over those open at the start, for what is opened later
/// and is not a connection: name lookups in flight, an output opened late.
const RESERVE: u64 = 16;

/// The process's descriptor budget for connections.
pub(crate) struct Descriptors {
    /// The soft `RLIMIT_NOFILE` (already lifted to the hard one at start).
    limit: u64,
    /// The limit that `--concurrency` connections would need, with room.
    needed: u64,
    /// Connections may take the process up to this many open descriptors; a
    /// request that finds more waits for idle ones to close.
    budget: u64,
    /// Requests to let through before counting again: the count is a
    /// directory read, so it is made only when the last one was near.
    uncounted: AtomicU64,
    /// The last count and when it was made: requests waiting together share it.
    last: Mutex<Option<(Instant, Option<u64>)>>,
}

/// How long one count stands for every request that asks.
const COUNT_STANDS: Duration = Duration::from_millis(10);

impl Descriptors {
    /// The budget under the current limit, for `concurrency` requests at once
    /// (each may be opening a connection between two counts).
    pub(crate) fn new(concurrency: usize) -> Descriptors {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(u64::MAX);
        Descriptors::with_limit(limit, open_descriptors().unwrap_or(0), concurrency)
    }

    /// `open`: the descriptors open now (the runtime's, the input and outputs).
    fn with_limit(limit: u64, open: u64, concurrency: usize) -> Descriptors {
        let kept = open + RESERVE;
        let spare = limit.saturating_sub(kept);
        // Room for every request to open one connection between two counts,
        // but never less than half of what is spare.
        let connections = spare.saturating_sub(concurrency as u64).max(spare / 2);
        Descriptors {
            limit,
            needed: kept + 2 * concurrency as u64,
            budget: kept + connections,
            uncounted: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// A warning for the start of the run when the limit cannot hold a
    /// connection for every request at once.
    pub(crate) fn warning(&self, concurrency: usize) -> Option<String> {
        (self.limit < self.needed).then(|| {
            format!(
                "the open-files limit is {} (ulimit -n), too low for --concurrency {concurrency}: \
                 requests will wait for descriptors; raise it to {} or lower -c",
                self.limit, self.needed
            )
        })
    }

    /// Whether the process is at its budget. Counts the open descriptors only
    /// when the last count left less headroom than the requests since.
    pub(crate) fn crowded(&self) -> bool {
        let skip = self.uncounted.load(Ordering::Relaxed);
        if skip > 0 {
            self.uncounted.store(skip - 1, Ordering::Relaxed);
            return false;
        }
        self.crowded_at(open_descriptors())
    }

    /// Whether the process is still at its budget, for the requests waiting
    /// for room: they share one count every few milliseconds.
    pub(crate) fn still_crowded(&self) -> bool {
        let mut last = self.last.lock().expect("descriptors lock");
        let open = match *last {
            Some((at, open)) if at.elapsed() < COUNT_STANDS => open,
            _ => {
                let open = open_descriptors();
                *last = Some((Instant::now(), open));
                open
            }
        };
        open.is_some_and(|open| open >= self.budget)
    }

    /// Whether `open` descriptors (`None`: not countable) are at the budget;
    /// sets how many requests go before the next count.
    fn crowded_at(&self, open: Option<u64>) -> bool {
        let Some(open) = open else {
            // Not countable here: never crowded, and never counted again.
            self.uncounted.store(u64::MAX, Ordering::Relaxed);
            return false;
        };
        let headroom = self.budget.saturating_sub(open);
        // Each request opens at most one connection before the next count.
        self.uncounted.store(headroom / 4, Ordering::Relaxed);
        headroom == 0
    }
}

/// How many descriptors the process has open (`/dev/fd` on Linux and the BSDs
/// lists them, plus the one reading it).
fn open_descriptors() -> Option<u64> {
    let dir = std::fs::read_dir("/dev/fd").ok()?;
    Some((dir.count() as u64).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_room_for_files_and_for_the_requests_between_counts() {
        let d = Descriptors::with_limit(256, 20, 10);
        assert_eq!(
            d.budget,
            256 - 10,
            "20 open and 16 kept: 220 spare, 210 connections"
        );
        assert!(d.warning(10).is_none());
        let low = Descriptors::with_limit(100, 20, 100);
        assert_eq!(low.budget, 20 + 16 + 32, "half of the 64 spare");
        let warning = low.warning(100).unwrap();
        assert!(
            warning.contains("ulimit -n") && warning.contains("236"),
            "{warning}"
        );
    }

    #[test]
    fn crowded_skips_counting_while_far_and_counts_every_time_when_near() {
        let d = Descriptors::with_limit(20 + 16 + 1 + 500, 20, 1);
        assert!(!d.crowded_at(Some(136)));
        assert_eq!(
            d.uncounted.load(Ordering::Relaxed),
            100,
            "400 free: 100 skipped"
        );
        assert!(!d.crowded(), "skipped");
        assert_eq!(d.uncounted.load(Ordering::Relaxed), 99);
        assert!(d.crowded_at(Some(536)));
        assert_eq!(
            d.uncounted.load(Ordering::Relaxed),
            0,
            "no headroom: counted every time"
        );
        assert!(!d.crowded_at(None), "not countable: never crowded");
        assert!(!d.crowded(), "and never counted again");
    }

    #[test]
    fn the_open_descriptors_are_counted_on_the_test_machines() {
        let before = open_descriptors().expect("/dev/fd");
        assert!(before >= 3, "stdin, stdout, stderr: {before}");
    }
}
