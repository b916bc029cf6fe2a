//! The one door a request goes through. A fetch registers its job with the
//! host once ([`Gate::door`]), then asks the door once per attempt
//! ([`Door::admit`]): robots.txt, the circuit breaker, the host's pause, slot,
//! rate and adaptive cap, the global limits and the HTTP/2 probe, in that
//! order. What the attempt found is told to the [`Permit`] it was admitted
//! with ([`Permit::observe`]): host health, rate-limit headers, the throttle's
//! signal and the `--host-stats` counts all follow from that one report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::hoststats::HostStats;
use super::limits::{HostHandle, Limits, Probe, Slot, host_key};
use super::ratelimit::Signals;
use super::robots::{RobotsCache, Rules};
use super::throttle::Signal;
use crate::failure::Failure;

/// How the gate reads a robots.txt: politeness knows no HTTP, so the fetch
/// stage lends its own GET.
/// It reads at most [`super::robots::MAX_BYTES`], follows at least five
/// redirects, and tries again (`--retries`) while the file is unreachable.
pub(crate) trait RobotsSource: Sync {
    fn get_robots<'a>(
        &'a self,
        agent: &'a str,
        url: Url,
        halt: &'a CancellationToken,
    ) -> BoxFuture<'a, Rules>;
}

/// What an attempt lends the gate to read robots.txt with.
#[derive(Clone, Copy)]
pub(crate) struct Ask<'a> {
    pub(crate) halt: &'a CancellationToken,
    pub(crate) source: &'a dyn RobotsSource,
}

/// How a robots.txt fetch waits for its host.
#[derive(Clone, Copy)]
enum Entry {
    /// Before an attempt: like any request.
    Attempt,
    /// For a redirect: within the attempt's global slot.
    Hop,
}

/// Why an attempt was not admitted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The run is stopping: no new attempt starts.
    Stopped,
    /// The host's circuit breaker opened after this many failures.
    CircuitOpen(u32),
    /// The origin's robots.txt forbids the URL (why).
    Robots(String),
}

/// What one attempt's response said, for the door.
pub(crate) struct Answer<'a> {
    pub(crate) status: u16,
    /// From the start of the attempt to the response's headers.
    pub(crate) ttfb: Duration,
    pub(crate) signals: &'a Signals,
}

/// Politeness for the whole run: the limits, robots.txt, the host counts.
pub(crate) struct Gate {
    limits: Arc<Limits>,
    /// `--robots`: each origin's rules.
    robots: Option<RobotsCache>,
    /// `--host-stats`: attempts, pauses and rates by host.
    host_stats: Option<Arc<HostStats>>,
    /// The longest pause a header may impose (`--max-retry-wait`).
    max_wait: Duration,
    /// `--robots`: origins read, those unreachable, verdicts allowed and disallowed.
    robots_tally: [AtomicU64; 4],
}

/// `--robots` over the run, for the summary.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RobotsTally {
    pub(crate) origins: u64,
    pub(crate) unreachable: u64,
    pub(crate) allowed: u64,
    pub(crate) disallowed: u64,
}

impl Gate {
    /// `robots_agent`: the product token to obey robots.txt for, with `--robots`.
    pub(crate) fn new(limits: Arc<Limits>, robots_agent: Option<&str>, max_wait: Duration) -> Gate {
        Gate {
            limits,
            robots: robots_agent.map(RobotsCache::new),
            host_stats: None,
            max_wait,
            robots_tally: Default::default(),
        }
    }

    /// `--robots`: what robots.txt said over the run (none without `--robots`).
    pub(crate) fn robots_tally(&self) -> Option<RobotsTally> {
        self.robots.as_ref()?;
        let [o, u, a, d] = self
            .robots_tally
            .each_ref()
            .map(|n| n.load(Ordering::Relaxed));
        Some(RobotsTally {
            origins: o,
            unreachable: u,
            allowed: a,
            disallowed: d,
        })
    }

    fn count_verdict(&self, host: &str, allowed: bool) {
        self.robots_tally[2 + usize::from(!allowed)].fetch_add(1, Ordering::Relaxed);
        if let Some(stats) = &self.host_stats {
            stats.robots_verdict(host, allowed);
        }
    }

    /// Count attempts and pauses by host into `stats` (`--host-stats`).
    pub(crate) fn with_host_stats(mut self, stats: Option<Arc<HostStats>>) -> Gate {
        self.host_stats = stats;
        self
    }

    /// A job's registration with the host of `url`, held for all its attempts.
    pub(crate) fn door(&self, url: &Url) -> Door<'_> {
        Door {
            gate: self,
            host: self.limits.host(&host_key(url)),
            judged: Default::default(),
        }
    }

    fn pause(&self, host: &HostHandle, wait: Duration) {
        host.pause_for(wait);
        if let Some(stats) = &self.host_stats {
            stats.paused(host.key(), wait);
        }
    }

    /// Whether a redirect from an attempt's URL to `next` may be followed:
    /// `Err(why)` when `next`'s origin forbids it. Its robots.txt is read through
    /// that host's limits, within the global slot the attempt holds.
    pub(crate) async fn check_hop(&self, next: &Url, ask: Ask<'_>) -> Result<(), String> {
        if self.robots.is_none() {
            return Ok(());
        }
        let host = self.limits.host(&host_key(next));
        let rules = self.robots_rules(&host, next, ask, Entry::Hop).await;
        if let Some(delay) = rules.delay() {
            host.crawl_delay(delay);
        }
        let verdict = rules.check(next);
        self.count_verdict(host.key(), verdict.is_ok());
        verdict
    }

    /// The rules of `url`'s origin: its robots.txt, fetched by the first request
    /// that needs it, through the host's limits; the others wait for it.
    async fn robots_rules(
        &self,
        host: &HostHandle,
        url: &Url,
        ask: Ask<'_>,
        entry: Entry,
    ) -> Arc<Rules> {
        let Some(robots) = &self.robots else {
            return Arc::new(Rules::AllowAll);
        };
        let (cell, robots_url) = robots.cell(url);
        let rules = cell
            .get_or_init(|| async {
                let slot = tokio::select! {
                    biased;
                    _ = ask.halt.cancelled() => None,
                    slot = async {
                        match entry {
                            Entry::Attempt => host.acquire().await,
                            Entry::Hop => host.acquire_nested().await,
                        }
                    } => Some(slot),
                };
                let Some(_slot) = slot else {
                    return Arc::new(Rules::Unreachable("the run was stopped".into()));
                };
                let rules = ask
                    .source
                    .get_robots(&robots.agent, robots_url.clone(), ask.halt)
                    .await;
                self.robots_tally[0].fetch_add(1, Ordering::Relaxed);
                if rules.unreachable() {
                    self.robots_tally[1].fetch_add(1, Ordering::Relaxed);
                }
                if let Some(stats) = &self.host_stats {
                    stats.robots_file(host.key(), rules.unreachable());
                }
                if let Rules::Unreachable(why) = &rules {
                    tracing::warn!(
                        "{}: {why}; its URLs are disallowed for this run (--robots)",
                        robots_url
                    );
                }
                Arc::new(rules)
            })
            .await;
        rules.clone()
    }
}

/// One job's way in to its host.
pub(crate) struct Door<'g> {
    gate: &'g Gate,
    host: HostHandle,
    /// Whether this job's robots verdict was counted (once, not per attempt).
    judged: AtomicBool,
}

impl Door<'_> {
    /// The host's key (`name:port`), for logs.
    pub(crate) fn host(&self) -> &str {
        self.host.key()
    }

    /// Wait until an attempt on `url` may start, or say why it may not.
    /// `source` reads the origin's robots.txt the first time it is needed.
    pub(crate) async fn admit(
        &self,
        url: &Url,
        halt: &CancellationToken,
        source: &dyn RobotsSource,
    ) -> Result<Permit<'_>, Refusal> {
        let host = &self.host;
        if self.gate.robots.is_some() {
            let ask = Ask { halt, source };
            let rules = self.gate.robots_rules(host, url, ask, Entry::Attempt).await;
            if let Some(delay) = rules.delay() {
                host.crawl_delay(delay);
            }
            let verdict = rules.check(url);
            if !self.judged.swap(true, Ordering::Relaxed) {
                self.gate.count_verdict(host.key(), verdict.is_ok());
            }
            verdict.map_err(Refusal::Robots)?;
        }
        let ready = tokio::select! {
            biased;
            _ = halt.cancelled() => None,
            ready = async {
                // Only https can offer HTTP/2 (ALPN), so only it is probed.
                let probe = match url.scheme() {
                    "https" => host.probe().await,
                    _ => None,
                };
                (host.acquire().await, probe)
            } => Some(ready),
        };
        let (slot, probe) = ready.ok_or(Refusal::Stopped)?;
        // Checked with the slot in hand: earlier requests to the host may just have failed.
        if let Some(n) = host.circuit_open() {
            return Err(Refusal::CircuitOpen(n));
        }
        Ok(Permit {
            door: self,
            slot,
            probe,
            sent: Instant::now(),
        })
    }
}

/// Permission for one attempt, and where its outcome is reported.
pub(crate) struct Permit<'d> {
    door: &'d Door<'d>,
    slot: Slot,
    probe: Option<Probe>,
    sent: Instant,
}

impl Permit<'_> {
    /// The HTTP/2 probe, for the attempt to drop once its connection is up.
    pub(crate) fn take_probe(&mut self) -> Option<Probe> {
        self.probe.take()
    }

    /// What the attempt found: the response (if one arrived) and the failure
    /// (if the attempt or its body failed).
    pub(crate) fn observe(&self, answer: Option<Answer<'_>>, failure: Option<&Failure>) {
        let (gate, host) = (self.door.gate, &self.door.host);
        if let Some(stats) = &gate.host_stats {
            stats.attempt(host.key(), answer.as_ref().map(|a| a.status));
        }
        if let Some(wait) = answer.as_ref().and_then(|a| a.signals.rate_limited) {
            let wait = wait.min(gate.max_wait);
            tracing::info!(
                "host {} paused for {}: its rate-limit headers say the budget is spent",
                host.key(),
                humantime::format_duration(wait)
            );
            gate.pause(host, wait);
        }
        match (&answer, failure) {
            (Some(_), _) => host.record_response(),
            (None, Some(f)) if is_transport(f) => {
                let opened = host.record_transport_failure();
                if opened {
                    tracing::info!(
                        "circuit open for host {}: its remaining inputs fail fast (--circuit-breaker)",
                        host.key()
                    );
                }
            }
            _ => {}
        }
        self.throttle(answer.as_ref(), failure);
    }

    /// `--auto-throttle`: what this attempt says about the host's load.
    fn throttle(&self, answer: Option<&Answer<'_>>, failure: Option<&Failure>) {
        let signal = match (answer, failure) {
            (Some(a), _) if matches!(a.status, 429 | 503) => match a.signals.retry_after {
                None => Signal::Overload { sent: self.sent },
                // The host is paused instead: neither a cut nor a success.
                Some(_) => return,
            },
            (Some(a), _) => match a.signals.budget {
                Some((remaining, window)) if remaining > 0.0 => {
                    Signal::Budget { remaining, window }
                }
                _ => Signal::Success(a.ttfb),
            },
            (None, Some(Failure::Timeout(_) | Failure::Io(_))) => {
                Signal::Overload { sent: self.sent }
            }
            (None, _) => return,
        };
        let host = &self.door.host;
        if let Some((rate, lowest)) = host.observe(signal) {
            tracing::debug!(host = host.key(), rate, "--auto-throttle: new rate");
            if let Some(stats) = &self.door.gate.host_stats {
                stats.rate(host.key(), rate, lowest);
            }
        }
    }

    /// The attempt is the last: its slot stays held until its body is handed on.
    pub(crate) fn finish(self) -> Slot {
        self.slot
    }

    /// Another attempt follows: the slot is given back, and with a Retry-After
    /// the whole host pauses (capped by `--max-retry-wait`). Returns the pause.
    pub(crate) fn retry(self, retry_after: Option<Duration>) -> Option<Duration> {
        drop(self.slot);
        let wait = retry_after?.min(self.door.gate.max_wait);
        self.door.gate.pause(&self.door.host, wait);
        Some(wait)
    }
}

fn is_transport(f: &Failure) -> bool {
    matches!(
        f,
        Failure::Dns(_)
            | Failure::Connect(_)
            | Failure::Tls(_)
            | Failure::Timeout(_)
            | Failure::Io(_)
    )
}
