//! The reservation pacer: request starts on an exact grid. It replaced
//! governor, for the reason its doc gives (measured; see the README).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::values::Rate;

/// Request starts on a fixed grid, `interval` apart: each start reserves the next
/// free slot before it sleeps, so a late wake-up never pushes back the slots after
/// it. (governor's GCRA with a burst of 1 lets that lateness accumulate: measured
/// 4% slow at 200/s; a larger burst would break "no second above the rate + 1".)
pub(crate) struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(crate) fn new(rate: Rate) -> Pacer {
        Pacer {
            interval: rate.interval().max(Duration::from_nanos(1)),
            next: Mutex::new(None),
        }
    }

    /// Take the next start slot: the grid's next one, or now if the grid is behind.
    /// Starts `interval` apart.
    pub(crate) fn with_interval(interval: Duration) -> Pacer {
        Pacer {
            interval: interval.max(Duration::from_nanos(1)),
            next: Mutex::new(None),
        }
    }

    pub(crate) fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock().expect("pacer lock");
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.interval);
        slot
    }

    pub(crate) async fn wait(&self) {
        tokio::time::sleep_until(self.reserve()).await;
    }

    /// Whether a slot is reserved after `now` (forgetting it would allow an early start).
    pub(super) fn busy(&self, now: Instant) -> bool {
        self.next
            .lock()
            .expect("pacer lock")
            .is_some_and(|n| n > now)
    }
}
