//! Politeness: the global concurrency cap and rate, per-host in-flight caps and
//! rates, host-wide pauses from `Retry-After`, and the per-host circuit breaker.
//!
//! A request first waits for its host (pause, host cap, host rate) and only then
//! for a global slot, so a busy or slow host never holds global slots idle.
//! Per-host state lives while a host has work queued or recent history, and idle
//! entries are pruned, so memory stays bounded with millions of distinct hosts.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::pacer::Pacer;
use super::throttle::{self, Signal, Throttle};
use crate::values::Rate;

/// What the limits take from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct LimitSettings {
    /// Requests in flight at once (`-c`).
    pub(crate) concurrency: NonZeroUsize,
    pub(crate) per_host: Option<NonZeroUsize>,
    pub(crate) rate: Option<Rate>,
    pub(crate) host_rate: Option<Rate>,
    pub(crate) circuit_breaker: Option<NonZeroU32>,
    /// `--auto-throttle`: each host's rate adapts to its answers.
    pub(crate) auto_throttle: bool,
}

/// Per-host politeness key: host name and port.
pub(crate) fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Idle host entries are kept up to this many before a prune pass.
const MIN_PRUNE_AT: usize = 4096;

pub struct Limits {
    global: Arc<Semaphore>,
    rate: Option<Pacer>,
    host_rate: Option<Rate>,
    per_host: Option<usize>,
    breaker: Option<u32>,
    /// `-c`.
    global_cap: usize,
    auto_throttle: bool,
    hosts: Mutex<HostMap>,
    in_flight: AtomicUsize,
}

struct HostMap {
    map: HashMap<Arc<str>, Arc<HostState>>,
    prune_at: usize,
}

struct HostState {
    /// Jobs holding a `HostHandle` for this host.
    users: AtomicUsize,
    permits: Option<Arc<Semaphore>>,
    rate: Option<Pacer>,
    /// `--auto-throttle`: the adaptive rate, in place of `rate`.
    throttle: Option<Throttle>,
    /// `--robots`: the spacing its `Crawl-delay` asks for.
    crawl_delay: std::sync::OnceLock<Pacer>,
    /// Consecutive transport failures (any response resets it).
    failures: AtomicU32,
    /// Set by `Retry-After`: no request to this host starts before it.
    paused_until: Mutex<Option<Instant>>,
    /// Whether the host's first connection has shown what it speaks (see `probe`).
    probed: AtomicBool,
    probe: Arc<tokio::sync::Mutex<()>>,
}

impl Limits {
    pub(crate) fn new(cfg: &LimitSettings) -> Arc<Limits> {
        Arc::new(Limits {
            global: Arc::new(Semaphore::new(cfg.concurrency.get())),
            rate: cfg.rate.map(Pacer::new),
            host_rate: cfg.host_rate,
            per_host: cfg.per_host.map(|n| n.get()),
            breaker: cfg.circuit_breaker.map(|n| n.get()),
            global_cap: cfg.concurrency.get(),
            auto_throttle: cfg.auto_throttle,
            hosts: Mutex::new(HostMap {
                map: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// The global cap on requests at once (`--concurrency`).
    pub(crate) fn concurrency(&self) -> usize {
        self.global_cap
    }

    /// Requests being sent or received right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Register a job for `host` (host name and port); dropping the handle ends it.
    pub fn host(self: &Arc<Self>, host: &str) -> HostHandle {
        let mut hosts = self.hosts.lock().expect("host map lock");
        let (key, state) = match hosts.map.get_key_value(host) {
            Some((key, state)) => (key.clone(), state.clone()),
            None => {
                let key: Arc<str> = host.into();
                let state = Arc::new(HostState {
                    users: AtomicUsize::new(0),
                    permits: self.per_host.map(|n| Arc::new(Semaphore::new(n))),
                    rate: self
                        .host_rate
                        .filter(|_| !self.auto_throttle)
                        .map(Pacer::new),
                    throttle: self.auto_throttle.then(|| {
                        let ceiling = self
                            .host_rate
                            .map(|r| r.count.get() as f64 / r.per.as_secs_f64());
                        let most = self.per_host.unwrap_or(self.global_cap);
                        Throttle::new(ceiling, most)
                    }),
                    crawl_delay: std::sync::OnceLock::new(),
                    failures: AtomicU32::new(0),
                    paused_until: Mutex::new(None),
                    probed: AtomicBool::new(false),
                    probe: Arc::new(tokio::sync::Mutex::new(())),
                });
                hosts.map.insert(key.clone(), state.clone());
                if hosts.map.len() >= hosts.prune_at {
                    self.prune(&mut hosts);
                }
                (key, state)
            }
        };
        state.users.fetch_add(1, Ordering::Relaxed);
        HostHandle {
            limits: self.clone(),
            key,
            state,
        }
    }

    /// Drop idle host entries whose history no longer matters. Amortised O(1):
    /// the next prune waits until the map has doubled.
    fn prune(&self, hosts: &mut HostMap) {
        let now = Instant::now();
        hosts
            .map
            .retain(|_, s| s.users.load(Ordering::Relaxed) > 0 || s.remembers(self, now));
        if hosts.map.len() * 2 >= hosts.prune_at {
            // Still full of live state: forget the oldest history rather than grow without bound.
            hosts.map.retain(|_, s| s.users.load(Ordering::Relaxed) > 0);
        }
        hosts.prune_at = (hosts.map.len() * 2).max(MIN_PRUNE_AT);
    }
}

impl HostState {
    /// Whether forgetting this host would change what happens to its next request.
    fn remembers(&self, limits: &Limits, now: Instant) -> bool {
        let failing = limits.breaker.is_some() && self.failures.load(Ordering::Relaxed) > 0;
        let paused = self
            .paused_until
            .lock()
            .expect("pause lock")
            .is_some_and(|t| t > now);
        let recent = self.rate.as_ref().is_some_and(|p| p.busy(now))
            || self.crawl_delay.get().is_some_and(|p| p.busy(now));
        // A host whose rate was cut keeps what it taught.
        let learned = self
            .throttle
            .as_ref()
            .is_some_and(|t| t.rates().0 < throttle::START);
        failing || paused || recent || learned
    }
}

/// A job's registration with its host.
pub struct HostHandle {
    limits: Arc<Limits>,
    key: Arc<str>,
    state: Arc<HostState>,
}

/// Permission to send one attempt now; dropping it frees the slots.
pub struct Slot {
    limits: Arc<Limits>,
    _global: Option<OwnedSemaphorePermit>,
    _host: Option<OwnedSemaphorePermit>,
    /// `--auto-throttle`: counted in the host's adaptive in-flight cap.
    _turn: Option<Turn>,
}

/// A place in a host's adaptive in-flight cap; given back when dropped, also
/// when the wait for the other limits is abandoned.
struct Turn {
    state: Arc<HostState>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(throttle) = &self.state.throttle {
            throttle.leave();
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The one request that finds out what a new https host speaks; dropping it (once
/// the response head or an error arrived) lets the host's other requests go.
pub struct Probe {
    state: Arc<HostState>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Set on failure too: a dead host must not be probed one request at a time.
        self.state.probed.store(true, Ordering::Release);
    }
}

impl HostHandle {
    /// Before a host's first response, send one request alone, as curl
    /// `--parallel` does: if the server speaks HTTP/2 (ALPN), the others then
    /// multiplex over that connection instead of each opening its own (and
    /// doing its own TLS handshake). `Some` for the request that goes first.
    pub async fn probe(&self) -> Option<Probe> {
        if self.state.probed.load(Ordering::Acquire) {
            return None;
        }
        let turn = self.state.probe.clone().lock_owned().await;
        if self.state.probed.load(Ordering::Acquire) {
            return None;
        }
        Some(Probe {
            state: self.state.clone(),
            _turn: turn,
        })
    }

    /// `Some(n)` when the host's circuit breaker is open after `n` failures.
    pub fn circuit_open(&self) -> Option<u32> {
        let n = self.limits.breaker?;
        (self.state.failures.load(Ordering::Relaxed) >= n).then_some(n)
    }

    /// Wait for the host (pause, cap, rate), then for a global slot and the global rate.
    pub async fn acquire(&self) -> Slot {
        let (host, turn) = self.host_turn().await;
        let global = self
            .limits
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("global semaphore never closes");
        if let Some(rate) = &self.limits.rate {
            rate.wait().await;
        }
        // A Retry-After may have arrived while this request queued.
        self.wait_pause().await;
        self.limits.in_flight.fetch_add(1, Ordering::Relaxed);
        Slot {
            limits: self.limits.clone(),
            _global: Some(global),
            _host: host,
            _turn: turn,
        }
    }

    /// Wait for the host only (pause, cap, rate, crawl delay), for a request
    /// sent inside an attempt that already holds a global slot: the
    /// robots.txt of a redirect's origin.
    pub(crate) async fn acquire_nested(&self) -> Slot {
        let (host, turn) = self.host_turn().await;
        self.wait_pause().await;
        self.limits.in_flight.fetch_add(1, Ordering::Relaxed);
        Slot {
            limits: self.limits.clone(),
            _global: None,
            _host: host,
            _turn: turn,
        }
    }

    async fn host_turn(&self) -> (Option<OwnedSemaphorePermit>, Option<Turn>) {
        self.wait_pause().await;
        let host = match &self.state.permits {
            Some(sem) => Some(
                sem.clone()
                    .acquire_owned()
                    .await
                    .expect("host semaphore never closes"),
            ),
            None => None,
        };
        if let Some(rate) = &self.state.rate {
            rate.wait().await;
        }
        let mut turn = None;
        if let Some(throttle) = &self.state.throttle {
            throttle.enter().await;
            turn = Some(Turn {
                state: self.state.clone(),
            });
            throttle.wait().await;
        }
        if let Some(delay) = self.state.crawl_delay.get() {
            delay.wait().await;
        }
        (host, turn)
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.state.paused_until.lock().expect("pause lock");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// `--robots`: space this host's request starts by its `Crawl-delay` at
    /// least, whatever else allows (set once; later calls keep the first).
    pub(crate) fn crawl_delay(&self, delay: Duration) {
        if self.state.crawl_delay.get().is_none() {
            let _ = self.state.crawl_delay.set(Pacer::with_interval(delay));
        }
    }

    /// `--auto-throttle`: adjust the host's rate to an answer; its new rate and
    /// the lowest it has been, when it changed.
    pub(crate) fn observe(&self, signal: Signal) -> Option<(f64, f64)> {
        let throttle = self.state.throttle.as_ref()?;
        throttle.observe(signal)?;
        Some(throttle.rates())
    }

    /// Hold every request to this host for `wait` (from `Retry-After`).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.state.paused_until.lock().expect("pause lock");
        if paused.is_none_or(|t| t < until) {
            *paused = Some(until);
        }
    }

    /// Count a transport failure; true when it is the one that opens the circuit.
    pub fn record_transport_failure(&self) -> bool {
        let now = self.state.failures.fetch_add(1, Ordering::Relaxed) + 1;
        self.limits.breaker == Some(now)
    }

    /// The host's key (name and port), for logs.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn record_response(&self) {
        self.state.failures.store(0, Ordering::Relaxed);
    }
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        if self.state.users.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let mut hosts = self.limits.hosts.lock().expect("host map lock");
        let idle = self.state.users.load(Ordering::Acquire) == 0;
        if idle && !self.state.remembers(&self.limits, Instant::now()) {
            hosts.map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::input::InputSpec;
    use clap::Parser;

    fn limits(args: &[&str]) -> Arc<Limits> {
        let mut argv = vec!["trawl"];
        argv.extend_from_slice(args);
        let cfg = Cli::parse_from(argv)
            .run
            .into_config(vec![InputSpec::Stdin])
            .unwrap();
        Limits::new(&cfg.limits)
    }

    #[tokio::test]
    async fn idle_hosts_are_forgotten() {
        let l = limits(&["--per-host", "2"]);
        for i in 0..10_000 {
            let h = l.host(&format!("h{i}.test:80"));
            drop(h.acquire().await);
        }
        assert_eq!(l.hosts.lock().unwrap().map.len(), 0);
        assert_eq!(l.in_flight(), 0);
    }

    #[tokio::test]
    async fn host_map_stays_bounded_with_history() {
        let l = limits(&["--circuit-breaker", "3"]);
        for i in 0..50_000 {
            let h = l.host(&format!("h{i}.test:80"));
            h.record_transport_failure();
        }
        assert!(l.hosts.lock().unwrap().map.len() <= 2 * MIN_PRUNE_AT);
    }

    #[tokio::test]
    async fn breaker_opens_after_n_failures_and_resets_on_response() {
        let l = limits(&["--circuit-breaker", "2"]);
        let h = l.host("a.test:80");
        h.record_transport_failure();
        assert_eq!(h.circuit_open(), None);
        h.record_transport_failure();
        assert_eq!(h.circuit_open(), Some(2));
        let h2 = l.host("a.test:80");
        assert_eq!(
            h2.circuit_open(),
            Some(2),
            "state is shared by the host's jobs"
        );
        h.record_response();
        assert_eq!(h2.circuit_open(), None);
    }

    #[tokio::test]
    async fn one_request_probes_a_new_host_and_the_rest_wait_for_it() {
        let l = limits(&[]);
        let (a, b) = (l.host("a.test:443"), l.host("a.test:443"));
        let first = a.probe().await.expect("the first request probes");
        let waiting = tokio::spawn(async move { b.probe().await.is_none() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second waits for the probe");
        drop(first);
        assert!(
            waiting.await.unwrap(),
            "after the probe nobody probes again"
        );
        assert!(l.host("a.test:443").probe().await.is_none());
        assert!(l.host("b.test:443").probe().await.is_some(), "per host");
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_slots_stay_on_the_grid() {
        let p = Pacer::new(crate::values::parse_rate("100/s").unwrap());
        let start = Instant::now();
        let slots: Vec<Instant> = (0..5).map(|_| p.reserve()).collect();
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(*slot - start, Duration::from_millis(10 * i as u64));
        }
        // Idle time is not banked: after a long pause the next start is now, not a burst.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = Instant::now();
        assert_eq!(p.reserve(), now);
        assert_eq!(p.reserve(), now + Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_the_whole_host() {
        let l = limits(&[]);
        let a = l.host("a.test:80");
        let b = l.host("a.test:80");
        a.pause_for(Duration::from_secs(5));
        let start = Instant::now();
        drop(b.acquire().await);
        assert!(start.elapsed() >= Duration::from_secs(5));
        let other = l.host("b.test:80");
        let start = Instant::now();
        drop(other.acquire().await);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
