//! `--auto-throttle`: each host's start rate found from its answers.
//!
//! - It starts at [`START`] requests per second and doubles after each half
//!   second's worth of successes, or each round of its in-flight cap when that
//!   is fewer (slow start), until the host first pushes back.
//! - A 429 or 503 without `Retry-After`, a timeout or a reset halves it. Only
//!   requests sent after the last cut count, so one burst of refusals halves
//!   the rate once, not once per refusal. Three cuts or more, each within a
//!   second of the one before, are a cascade (a host whose window stays shut
//!   refuses whatever the rate): coming down from above the start rate it
//!   stops there once, and after it the rate climbs back by doubling, as in
//!   slow start, until the host refuses again.
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
//! - It never grows past 2.5 times the rate the host was actually sent since the
//!   last change (its starts over their span): a host that never refuses, but
//!   is held back by latency or the in-flight cap, keeps a rate tied to what it
//!   serves, so a limit it sets later is found as fast as on a fresh host.
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
/// How far above what a host was actually sent its rate may grow: enough for
/// slow start to double while the host keeps up (the first start after a
/// change still waits for the old spacing), little enough to stay tied to it.
const SERVED_HEADROOM: f64 = 2.5;
/// Cuts closer together than this are one cascade.
const CASCADE: Duration = Duration::from_secs(1);
/// Cuts in a cascade after which the rate climbs back in slow start.
const CASCADE_CUTS: u32 = 3;
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
    /// Cuts in a row, each within [`CASCADE`] of the one before.
    cascade: u32,
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
    /// Starts since the rate last changed, and the first and last of them.
    starts: u32,
    span: Option<(Instant, Instant)>,
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
                cascade: 0,
                successes: 0.0,
                next: None,
                baseline: None,
                samples: 0,
                recent: None,
                in_flight: 0,
                cap: (START as usize).min(most_in_flight),
                starts: 0,
                span: None,
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
                        s.starts += 1;
                        s.span = Some((s.span.map_or(now, |(first, _)| first), now));
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
                let now = Instant::now();
                let close = s
                    .last_cut
                    .is_some_and(|cut| now.duration_since(cut) < CASCADE);
                s.cascade = if close { s.cascade + 1 } else { 1 };
                s.cut_from = Some(s.rate);
                // A host whose window stays shut refuses whatever the rate, so
                // cuts come in a cascade: one coming down from above the start
                // rate stops there, and the rate climbs back by doubling, as on
                // a fresh host, until the host refuses again.
                let cascade = s.cascade >= CASCADE_CUTS;
                let floor = match cascade && s.rate > START {
                    true => START.min(self.ceiling),
                    false => FLOOR,
                };
                s.rate = (s.rate / 2.0).max(floor);
                s.cap = (s.cap / 2).max(1);
                s.slow_start = cascade;
                s.last_cut = Some(now);
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
                        let served = s.served();
                        let bound = (SERVED_HEADROOM * served).max(s.rate);
                        s.rate = s.grown().min(self.ceiling).min(bound);
                        let cap = if s.slow_start { s.cap * 2 } else { s.cap + 1 };
                        s.cap = cap.min(self.most_in_flight);
                        self.room.notify_waiters();
                    }
                }
            }
        }
        s.lowest = s.lowest.min(s.rate);
        if s.rate != before {
            (s.starts, s.span) = (0, None);
        }
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

    /// The rate the host was actually sent since the last change, per second:
    /// the gaps between its starts over their span (the current rate while
    /// there are too few starts to tell).
    fn served(&self) -> f64 {
        match self.span {
            Some((first, last)) if self.starts >= 2 && last > first => {
                f64::from(self.starts - 1) / last.duration_since(first).as_secs_f64()
            }
            _ => self.rate,
        }
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

    /// `n` requests started at the throttle's pace, each answered at once.
    async fn succeed(t: &Throttle, n: usize) {
        for _ in 0..n {
            t.wait().await;
            t.observe(Signal::Success(Duration::from_millis(5)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_then_halve_then_climb_back_under_the_peak() {
        let t = Throttle::new(None, 50);
        assert_eq!(t.rates().0, START);
        succeed(&t, 4).await;
        assert_eq!(t.rates().0, 16.0, "doubles after half a second's worth");
        succeed(&t, 8).await;
        assert_eq!(t.rates().0, 32.0);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(t.observe(Signal::Overload { sent }), Some(16.0));
        assert_eq!(
            t.observe(Signal::Overload { sent }),
            None,
            "one cut per burst"
        );
        succeed(&t, 8).await;
        assert_eq!(
            t.rates().0,
            16.0 + (28.8 - 16.0) * 0.75,
            "most of the gap to 90% of the peak, after half a second's worth"
        );
        for _ in 0..10 {
            succeed(&t, 40).await;
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
        succeed(&t, 100).await;
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
        succeed(&t, 4).await;
        assert_eq!(t.rates().0, 16.0);
        for _ in 0..40 {
            t.wait().await;
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
        succeed(&t, 4).await;
        assert_eq!(t.cap(), 16);
        succeed(&t, 8).await;
        assert_eq!(t.cap(), 20, "never above -c / --per-host");
        t.observe(Signal::Overload {
            sent: Instant::now(),
        });
        assert_eq!(t.cap(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_that_never_refuses_keeps_a_rate_tied_to_what_it_serves() {
        // Issue 25 item 10: with every answer a success, the rate used to
        // double without end (3.5e13/s after 2,000 requests).
        let t = Throttle::new(None, 50);
        // The host is sent 40 requests a second (the client's own pace), and
        // answers every one.
        for _ in 0..2000 {
            tokio::time::advance(Duration::from_millis(25)).await;
            t.wait().await;
            t.observe(Signal::Success(Duration::from_millis(5)));
        }
        let (rate, _) = t.rates();
        assert!(
            rate <= SERVED_HEADROOM * 40.0 + 1.0,
            "rate {rate} for a host served 40/s"
        );
        assert!(rate >= 40.0, "and it keeps up with it: {rate}");
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
