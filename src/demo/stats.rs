//! What the demo server saw: counters and logs the tests read to check
//! politeness from the server's side, and the endpoints' per-key state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::http::HeaderMap;

/// Counters the tests read to check politeness from the server's side.
#[derive(Default)]
pub struct ServerStats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicUsize,
    /// Arrival time and path of every request (bounded), for rate checks.
    arrivals: Mutex<Vec<(Instant, String)>>,
    /// Per-key hit counts for the flaky and rate-limited endpoints.
    hits: Mutex<HashMap<String, u32>>,
    /// Request headers seen by `/echo`, newest last (bounded).
    pub(super) seen_headers: Mutex<Vec<HeaderMap>>,
}

const MAX_LOGGED: usize = 1 << 20;

impl ServerStats {
    /// A request arrived (with its path and query).
    pub(super) fn arrive(&self, path: String) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        {
            let mut arrivals = self.arrivals.lock().expect("stats lock");
            if arrivals.len() < MAX_LOGGED {
                arrivals.push((Instant::now(), path));
            }
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    /// A request was answered.
    pub(super) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// When requests arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(t, _)| *t)
            .collect()
    }

    /// When requests arrived, with their path and query.
    pub fn arrivals_with_paths(&self) -> Vec<(Instant, String)> {
        self.arrivals.lock().expect("stats lock").clone()
    }

    pub fn seen_headers(&self) -> Vec<HeaderMap> {
        self.seen_headers.lock().expect("stats lock").clone()
    }

    pub(super) fn hit(&self, key: &str) -> u32 {
        let mut hits = self.hits.lock().expect("stats lock");
        let n = hits.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
}

/// A limit of `per_second` requests in any sliding second, as APIs enforce
/// one without publishing it (the test and benchmark servers of
/// `--auto-throttle`).
#[derive(Debug, Default)]
pub struct SlidingWindow {
    admitted: std::collections::VecDeque<std::time::Instant>,
}

impl SlidingWindow {
    /// Whether a request arriving `now` is within the limit (and count it if so).
    pub fn admit(&mut self, now: std::time::Instant, per_second: usize) -> bool {
        let second = std::time::Duration::from_secs(1);
        while self
            .admitted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= second)
        {
            self.admitted.pop_front();
        }
        let within = self.admitted.len() < per_second;
        if within {
            self.admitted.push_back(now);
        }
        within
    }
}
