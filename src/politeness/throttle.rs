//! `--auto-throttle`: each host's start rate found from its answers.
//!
//! - It starts at [`START`] requests per second and doubles after each half
//!   second's worth of successes, or each round of its in-flight cap when that
//!   is fewer (slow start), until the host first pushes back.
//! - A 429 or 503 without `Retry-After`, a timeout or a reset halves it. Only
//!   requests sent after the last cut count, so one burst of refusals halves
//!   the rate once, not once per refusal.
//! - After a cut it climbs back quickly towards 90% of the rate that was cut
//!   (three quarters of the gap per half second's worth of successes), then
//!   probes up by 2% of that rate a second, and by 5% a second past it: the
//!   rate spends its time just
//!   under the host's limit instead of averaging three quarters of it, as a
//!   plain sawtooth would.
//! - It never goes above `--host-rate` (when given) nor below one request per
//!   10 s, and it stops growing while the host's latency is well above its own
//!   early baseline (a server that slows down before it refuses).
//! - Rate-limit headers that announce a budget set the rate to what is left of
//!   it over what is left of the window.
//!
//! The host's in-flight cap moves with the rate: it starts at 8, doubles in
//! slow start, grows by one with each later increase, and halves with each cut
//! (never below 1, nor above `--per-host`, else `-c`).
//!
//! Starts are spaced by the current rate at the moment each request is due, not
//! reserved ahead, so a rate change applies to the very next start.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The first rate of a host, in requests per second.
pub(crate) const START: f64 = 8.0;
/// The slowest rate: one request per 10 s.
pub(crate) const FLOOR: f64 = 0.1;
/// Latencies that make the baseline.
const BASELINE_SAMPLES: u32 = 5;

pub(crate) struct Throttle {
    state: Mutex<State>,
    ceiling: f64,
    /// The most requests in flight at once the cap may grow to.
    most_in_flight: usize,
    /// Wakes requests waiting for the in-flight cap.
    room: tokio::sync::Notify,
}

struct State {
    rate: f64,
    lowest: f64,
    /// Until the first cut.
    slow_start: bool,
    /// The rate at the last cut: where the climb slows down.
    cut_from: Option<f64>,
    last_cut: Option<Instant>,
    /// Successes since the rate last changed.
    successes: f64,
    /// When the next start may go.
    next: Option<Instant>,
    baseline: Option<Duration>,
    samples: u32,
    recent: Option<Duration>,
    /// Requests in flight, and how many may be: doubled with the rate in slow
    /// start, one more per increase after, halved with each cut.
    in_flight: usize,
    cap: usize,
}

/// What a response said about the host's load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Signal {
    /// An answer that is not a refusal, and how long its head took.
    Success(Duration),
    /// A refusal or a failure of overload, for a request sent at this instant.
    Overload { sent: Instant },
    /// The server announced `remaining` requests for the next `window`.
    Budget { remaining: f64, window: Duration },
}

impl Throttle {
    /// `ceiling`: `--host-rate` in requests per second, if given;
    /// `most_in_flight`: `--per-host`, else `-c`.
    pub(crate) fn new(ceiling: Option<f64>, most_in_flight: usize) -> Throttle {
        let ceiling = ceiling.unwrap_or(f64::INFINITY).max(FLOOR);
        let most_in_flight = most_in_flight.max(1);
        Throttle {
            ceiling,
            most_in_flight,
            room: tokio::sync::Notify::new(),
            state: Mutex::new(State {
                rate: START.min(ceiling),
                lowest: START.min(ceiling),
                slow_start: true,
                cut_from: None,
                last_cut: None,
                successes: 0.0,
                next: None,
                baseline: None,
                samples: 0,
                recent: None,
                in_flight: 0,
                cap: (START as usize).min(most_in_flight),
            }),
        }
    }

    /// The in-flight cap now.
    #[cfg(test)]
    fn cap(&self) -> usize {
        self.state.lock().expect("throttle lock").cap
    }

    /// Wait until the host has fewer requests in flight than its cap, and count
    /// one more; [`Throttle::leave`] counts it out.
    pub(crate) async fn enter(&self) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut s = self.state.lock().expect("throttle lock");
                if s.in_flight < s.cap {
                    s.in_flight += 1;
                    return;
                }
            }
            room.await;
        }
    }

    /// A request counted by [`Throttle::enter`] is done.
    pub(crate) fn leave(&self) {
        let mut s = self.state.lock().expect("throttle lock");
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.room.notify_one();
    }

    /// The current rate and the lowest it has been.
    pub(crate) fn rates(&self) -> (f64, f64) {
        let s = self.state.lock().expect("throttle lock");
        (s.rate, s.lowest)
    }

    /// Wait until the next start is due at the current rate, and take it.
    pub(crate) async fn wait(&self) {
        loop {
            let due = {
                let mut s = self.state.lock().expect("throttle lock");
                let now = Instant::now();
                match s.next {
                    Some(t) if t > now => t,
                    _ => {
                        s.next = Some(now + Duration::from_secs_f64(1.0 / s.rate));
                        return;
                    }
                }
            };
            tokio::time::sleep_until(due).await;
        }
    }

    /// Adjust the rate to a response; the new rate when it changed.
    pub(crate) fn observe(&self, signal: Signal) -> Option<f64> {
        let mut s = self.state.lock().expect("throttle lock");
        let before = s.rate;
        match signal {
            Signal::Overload { sent } => {
                if s.last_cut.is_some_and(|cut| sent < cut) {
                    return None;
                }
                s.cut_from = Some(s.rate);
                s.rate = (s.rate / 2.0).max(FLOOR);
                s.cap = (s.cap / 2).max(1);
                s.slow_start = false;
                s.last_cut = Some(Instant::now());
                s.successes = 0.0;
                // The next start waits for the new spacing.
                s.next = Some(Instant::now() + Duration::from_secs_f64(1.0 / s.rate));
            }
            Signal::Budget { remaining, window } => {
                let secs = window.as_secs_f64().max(0.001);
                s.rate = (remaining / secs).clamp(FLOOR, self.ceiling);
                s.slow_start = false;
                s.cut_from = Some(s.rate);
                s.successes = 0.0;
            }
            Signal::Success(latency) => {
                s.note_latency(latency);
                s.successes += 1.0;
                if s.successes >= s.window() {
                    s.successes = 0.0;
                    if !s.slowed_down() {
                        s.rate = s.grown().min(self.ceiling);
                        let cap = if s.slow_start { s.cap * 2 } else { s.cap + 1 };
                        s.cap = cap.min(self.most_in_flight);
                        self.room.notify_waiters();
                    }
                }
            }
        }
        s.lowest = s.lowest.min(s.rate);
        (s.rate != before).then_some(s.rate)
    }
}

impl State {
    /// Successes between two increases: half a second's worth while doubling or
    /// climbing back (in slow start no more than the in-flight cap), a second's
    /// worth while probing above the last cut.
    fn window(&self) -> f64 {
        let probing = !self.slow_start && self.cut_from.is_some_and(|p| self.rate >= 0.9 * p);
        let seconds = if probing { 1.0 } else { 0.5 };
        let window = self.rate * seconds;
        // In slow start, at most one round of the in-flight cap: a fast host is
        // ramped up per round trip, as TCP does, not per half second.
        let window = if self.slow_start {
            window.min(self.cap as f64)
        } else {
            window
        };
        window.max(1.0)
    }

    fn grown(&self) -> f64 {
        let Some(peak) = self.cut_from.filter(|_| !self.slow_start) else {
            return self.rate * 2.0;
        };
        // Gently up to the rate that was cut, faster past it (new headroom).
        let step = match self.rate < peak {
            true => 0.02 * peak,
            false => 0.05 * self.rate,
        }
        .max(0.1);
        let gap = 0.9 * peak - self.rate;
        if gap > step {
            self.rate + gap * 0.75
        } else {
            self.rate.max(0.9 * peak) + step
        }
    }

    fn note_latency(&mut self, latency: Duration) {
        if self.samples < BASELINE_SAMPLES {
            self.samples += 1;
            self.baseline = Some(self.baseline.map_or(latency, |b| b.min(latency)));
        }
        // A moving average over about 8 answers.
        self.recent = Some(match self.recent {
            None => latency,
            Some(r) => (r * 7 + latency) / 8,
        });
    }

    /// Latency well above the host's own early baseline: at least 3 times and
    /// 50 ms more.
    fn slowed_down(&self) -> bool {
        match (self.baseline, self.recent) {
            (Some(base), Some(now)) if self.samples >= BASELINE_SAMPLES => {
                now > base * 3 && now > base + Duration::from_millis(50)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn succeed(t: &Throttle, n: usize) {
        for _ in 0..n {
            t.observe(Signal::Success(Duration::from_millis(5)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_then_halve_then_climb_back_under_the_peak() {
        let t = Throttle::new(None, 50);
        assert_eq!(t.rates().0, START);
        succeed(&t, 4);
        assert_eq!(t.rates().0, 16.0, "doubles after half a second's worth");
        succeed(&t, 8);
        assert_eq!(t.rates().0, 32.0);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(t.observe(Signal::Overload { sent }), Some(16.0));
        assert_eq!(
            t.observe(Signal::Overload { sent }),
            None,
            "one cut per burst"
        );
        succeed(&t, 8);
        assert_eq!(
            t.rates().0,
            16.0 + (28.8 - 16.0) * 0.75,
            "most of the gap to 90% of the peak, after half a second's worth"
        );
        for _ in 0..10 {
            succeed(&t, 40);
        }
        let (rate, lowest) = t.rates();
        assert!(
            rate > 32.0 && rate < 60.0,
            "small steps to the peak, then 5%: {rate}"
        );
        assert_eq!(lowest, START, "the start was lower than the cut");
        let later = Instant::now();
        assert!(
            t.observe(Signal::Overload { sent: later }).is_some(),
            "a new burst cuts again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_stays_between_the_floor_and_the_ceiling() {
        let t = Throttle::new(Some(10.0), 50);
        assert_eq!(t.rates().0, 8.0);
        succeed(&t, 100);
        assert_eq!(t.rates().0, 10.0, "capped by --host-rate");
        for _ in 0..20 {
            t.observe(Signal::Overload {
                sent: Instant::now(),
            });
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(t.rates().0, FLOOR);
        t.observe(Signal::Budget {
            remaining: 30.0,
            window: Duration::from_secs(60),
        });
        assert_eq!(t.rates().0, 0.5, "the announced budget sets the rate");
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_that_slows_down_stops_the_climb() {
        let t = Throttle::new(None, 50);
        succeed(&t, 4);
        assert_eq!(t.rates().0, 16.0);
        for _ in 0..40 {
            t.observe(Signal::Success(Duration::from_millis(200)));
        }
        assert_eq!(t.rates().0, 16.0, "latency 40 x its baseline");
    }

    #[tokio::test(start_paused = true)]
    async fn the_in_flight_cap_doubles_grows_and_halves() {
        let t = Throttle::new(None, 20);
        assert_eq!(t.cap(), 8);
        for _ in 0..8 {
            t.enter().await;
        }
        let ninth = tokio::time::timeout(Duration::from_secs(1), t.enter());
        assert!(ninth.await.is_err(), "a ninth request waits for the cap");
        t.leave();
        t.enter().await;
        succeed(&t, 4);
        assert_eq!(t.cap(), 16);
        succeed(&t, 8);
        assert_eq!(t.cap(), 20, "never above -c / --per-host");
        t.observe(Signal::Overload {
            sent: Instant::now(),
        });
        assert_eq!(t.cap(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_current_rate() {
        let t = Throttle::new(None, 50);
        let start = Instant::now();
        for _ in 0..9 {
            t.wait().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(999) && took < Duration::from_millis(1010),
            "{took:?}"
        );
    }
}
