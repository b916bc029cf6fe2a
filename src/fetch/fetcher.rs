//! The HTTP side: shared reqwest clients, one fetch with retries, redirects and
//! a bounded body read, and the classification of transport errors into the stable
//! error kinds. Knows nothing about output.

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Version};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::body::Body;
use super::clients::{ClientSettings, Clients};
use super::redirect::{Hops, Seen};
use super::resolve;
use super::tap::Tap;
use super::wire::{Exchange, WireSink};
use crate::failure::Failure;
use crate::input::Request;
use crate::politeness::{
    Answer, Ask, Gate, HostStats, Limits, Probe, Refusal, RobotsTally, Signals, Slot, product_token,
};
use crate::values::StatusSet;

/// Statuses that are retried (unless `--ok-status` accepts them). The
/// `--retries` help and the README list them; a test keeps the three the same.
pub(crate) const RETRIED_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// What the fetch stage takes from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    /// What the HTTP clients are built with.
    pub(crate) client: ClientSettings,
    pub(crate) retries: u32,
    pub(crate) max_retry_wait: Duration,
    pub(crate) method: Option<Method>,
    pub(crate) headers: HeaderMap,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) max_redirects: u32,
    pub(crate) max_body: u64,
    /// Statuses that count as ok: never retried.
    pub(crate) ok_status: StatusSet,
    /// `--robots`: obey each origin's robots.txt.
    pub(crate) robots: bool,
    /// `-d` (not `--data-binary`): its body goes as a form unless a Content-Type is given.
    pub(crate) form_data: bool,
    /// Whether redirects are followed (`--no-follow` turns it off).
    pub(crate) follow: bool,
    /// `--retry-all-methods`: retry non-idempotent requests too.
    pub(crate) retry_all_methods: bool,
    /// `--robots-agent`: the product token robots.txt is read for (default:
    /// what `-A` starts with).
    pub(crate) robots_agent: Option<String>,
    /// Keep the final response's headers in its [`Head`] (for `--exec`).
    pub(crate) keep_headers: bool,
    /// `--warc`: keep every exchange as it went over the wire (the clients
    /// then leave bodies encoded, and the fetch decodes them).
    pub(crate) wire: bool,
}

/// Facts about the final response of the last attempt.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub final_url: Url,
    pub status: StatusCode,
    pub version: Version,
    pub content_type: Option<String>,
    /// Validators, for conditional requests in a later run (`--since`).
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// A 3xx answer's `Location` (the record's `location` under `--no-follow`).
    pub location: Option<String>,
    pub redirects: u32,
    /// From the start of the attempt to the final response's headers.
    pub ttfb: Duration,
    /// What the headers ask of the host's politeness (Retry-After, rate limits).
    pub(super) signals: Signals,
    /// The final response's headers, when kept (`--exec`).
    pub headers: Option<reqwest::header::HeaderMap>,
}

/// The outcome of fetching one request, all attempts included.
#[derive(Debug)]
pub(crate) struct Report {
    /// Present when a response arrived (even if its body then failed).
    pub head: Option<Head>,
    /// The decoded body, or why there is none.
    pub body: Result<Body, Failure>,
    pub attempts: u32,
    pub elapsed: Duration,
    /// The last attempt's concurrency slot, still held: the pipeline releases it
    /// once the body is handed to processing, so finished bodies cannot pile up
    /// in memory faster than they are processed.
    pub slot: Option<Slot>,
    /// `--warc`: every exchange of every attempt, in order.
    pub exchanges: Vec<Exchange>,
}

impl Report {
    /// A job that never reached the network.
    pub(crate) fn failed(failure: Failure) -> Report {
        Report {
            head: None,
            body: Err(failure),
            attempts: 0,
            elapsed: Duration::ZERO,
            slot: None,
            exchanges: Vec::new(),
        }
    }
}

/// What one attempt produced: the response head if one arrived, and the body.
type Outcome = (Option<Head>, Result<Body, Failure>);

fn report((head, body): Outcome, attempts: u32, first_start: Option<Instant>) -> Report {
    let elapsed = first_start.map_or(Duration::ZERO, |t| t.elapsed());
    Report {
        head,
        body,
        attempts,
        elapsed,
        slot: None,
        exchanges: Vec::new(),
    }
}

/// [`report`], with the exchanges seen (`--warc`).
fn report_with(
    outcome: Outcome,
    attempts: u32,
    first: Option<Instant>,
    wire: Vec<Exchange>,
) -> Report {
    Report {
        exchanges: wire,
        ..report(outcome, attempts, first)
    }
}

pub(crate) struct Fetcher {
    pub(super) clients: Clients,
    pub(super) cfg: FetchSettings,
    /// Politeness: every attempt is admitted by it, and reports to it.
    pub(super) gate: Gate,
    /// `--warc`: where robots.txt's exchanges go.
    pub(super) archive: Option<WireSink>,
}

impl Fetcher {
    pub(crate) fn new(cfg: FetchSettings, limits: Arc<Limits>) -> anyhow::Result<Fetcher> {
        Fetcher::with_lookup(cfg, limits, resolve::system_lookup())
    }

    /// A fetcher that looks names up with `lookup` instead of the system.
    pub(crate) fn with_lookup(
        cfg: FetchSettings,
        limits: Arc<Limits>,
        lookup: resolve::LookupFn,
    ) -> anyhow::Result<Fetcher> {
        let clients = Clients::new(cfg.client.clone(), lookup, limits.concurrency())?;
        let agent = cfg.robots.then(|| {
            cfg.robots_agent.clone().unwrap_or_else(|| {
                match product_token(&cfg.client.user_agent) {
                    // No User-Agent sent: robots.txt groups for trawl still apply.
                    token if token.is_empty() => "trawl".to_owned(),
                    token => token,
                }
            })
        });
        let gate = Gate::new(limits, agent.as_deref(), cfg.max_retry_wait);
        Ok(Fetcher {
            clients,
            cfg,
            gate,
            archive: None,
        })
    }

    /// Count attempts and pauses by host into `stats` (`--host-stats`).
    pub(crate) fn with_host_stats(mut self, stats: Option<Arc<HostStats>>) -> Fetcher {
        self.gate = self.gate.with_host_stats(stats);
        self
    }

    /// `--warc`: hand robots.txt's exchanges to `sink`.
    pub(crate) fn with_archive(mut self, sink: Option<WireSink>) -> Fetcher {
        self.archive = sink;
        self
    }

    /// `--robots`: what robots.txt said over the run.
    pub(crate) fn robots_tally(&self) -> Option<RobotsTally> {
        self.gate.robots_tally()
    }

    /// The method a request is sent with: its own, `-X`, or POST with a body and GET without.
    pub(super) fn method_for(&self, req: &Request, has_body: bool) -> Method {
        req.method
            .clone()
            .or_else(|| self.cfg.method.clone())
            .unwrap_or(if has_body { Method::POST } else { Method::GET })
    }

    /// The method `req` goes out with (before any redirect changes it).
    fn sent_method(&self, req: &Request) -> Method {
        match req.options {
            true => {
                let has_body = req.body.is_some() || self.cfg.data.is_some();
                self.method_for(req, has_body)
            }
            false => req.method.clone().unwrap_or(Method::GET),
        }
    }

    /// Whether `req` may be sent again after it may have reached the server
    /// (RFC 9110 9.2.2: idempotent methods only, unless `--retry-all-methods`).
    fn may_repeat(&self, req: &Request) -> bool {
        self.may_repeat_method(&self.sent_method(req))
    }

    /// Whether a request with `method` may be sent again.
    pub(super) fn may_repeat_method(&self, method: &Method) -> bool {
        self.cfg.retry_all_methods
            || matches!(
                *method,
                Method::GET
                    | Method::HEAD
                    | Method::PUT
                    | Method::DELETE
                    | Method::OPTIONS
                    | Method::TRACE
            )
    }

    /// Whether `req` goes out as a GET without a body (the only requests
    /// `--since` makes conditional).
    pub(crate) fn sends_plain_get(&self, req: &Request) -> bool {
        let has_body = req.body.is_some() || self.cfg.data.is_some();
        !has_body && self.method_for(req, has_body) == Method::GET
    }

    /// Fetch with retries. Each attempt is admitted by politeness again.
    /// Once `halt` is cancelled no new attempt starts, and the last result stands.
    /// With a `tap`, a large body is hashed as it arrives.
    pub(crate) async fn fetch(
        &self,
        req: &Request,
        halt: &CancellationToken,
        tap: Option<&Tap>,
    ) -> Report {
        let door = self.gate.door(&req.url);
        // Exponential caps (250 ms, 500 ms, 1 s, ... 30 s); the wait is drawn below them.
        let mut caps = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(30))
            .without_max_times()
            .build();
        let mut attempts = 0;
        // Time queued for the limits before the first attempt is not the fetch's.
        let mut first_start: Option<Instant> = None;
        let mut last: Option<Outcome> = None;
        let mut wire = Vec::new();
        let repeatable = self.may_repeat(req);
        loop {
            let mut permit = match door.admit(&req.url, halt, self).await {
                Ok(permit) => permit,
                Err(refusal) => {
                    let failure = match refusal {
                        Refusal::Stopped => {
                            Failure::Cancelled("not started: the run was stopped".into())
                        }
                        Refusal::CircuitOpen(n) => Failure::CircuitOpen(n),
                        Refusal::Robots(why) => Failure::RobotsDisallowed(why),
                    };
                    let outcome = last.unwrap_or((None, Err(failure)));
                    return report_with(outcome, attempts, first_start, wire);
                }
            };
            first_start.get_or_insert_with(Instant::now);
            attempts += 1;
            let on = On { halt, tap };
            let ((head, body), seen) = self.attempt(req, permit.take_probe(), on).await;
            wire.extend(seen);
            let answer = head.as_ref().map(|h| Answer {
                status: h.status.as_u16(),
                ttfb: h.ttfb,
                signals: &h.signals,
            });
            permit.observe(answer, body.as_ref().err());
            if attempts > self.cfg.retries
                || halt.is_cancelled()
                || !self.retryable(head.as_ref(), &body, repeatable)
            {
                let mut done = report_with((head, body), attempts, first_start, wire);
                done.slot = Some(permit.finish());
                return done;
            }
            let url = redacted(&req.url);
            let reason = match (&head, &body) {
                (_, Err(f)) => format!("{}: {f}", f.kind().as_str()),
                (Some(h), Ok(_)) => format!("HTTP {}", h.status.as_u16()),
                (None, Ok(_)) => "no response".to_owned(),
            };
            let asked = head.as_ref().and_then(|h| h.signals.retry_after);
            match permit.retry(asked) {
                // The whole host waits; this request waits for the pause in `admit`.
                Some(wait) => {
                    let asked = asked.unwrap_or(wait);
                    let capped = match asked > wait {
                        true => match asked == Duration::MAX {
                            true => ", the server asked for more than can be counted; capped by --max-retry-wait".to_owned(),
                            false => format!(", the server asked for {}; capped by --max-retry-wait", humantime::format_duration(asked)),
                        },
                        false => String::new(),
                    };
                    tracing::info!(%url, attempts, "retry after {reason}; host {} paused for {} (Retry-After{capped})", door.host(), humantime::format_duration(wait));
                }
                None => {
                    let delay = full_jitter(caps.next().unwrap_or(Duration::from_secs(30)));
                    tracing::info!(%url, attempts, "retry after {reason}; waiting {:.0?}", delay);
                    tokio::select! {
                        biased;
                        _ = halt.cancelled() => return report_with((head, body), attempts, first_start, wire),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
            last = Some((head, body));
        }
    }

    /// Whether another attempt may follow. A request that must not run twice
    /// (`repeatable` false) is sent again only when it provably never left:
    /// no connection was made.
    fn retryable(
        &self,
        head: Option<&Head>,
        body: &Result<Body, Failure>,
        repeatable: bool,
    ) -> bool {
        match body {
            Err(Failure::Connect(_)) if head.is_none() => true,
            _ if !repeatable => false,
            Err(Failure::Connect(_) | Failure::Timeout(_) | Failure::Io(_)) => true,
            Err(_) => false,
            Ok(_) => head.is_some_and(|h| {
                let code = h.status.as_u16();
                RETRIED_STATUSES.contains(&code) && !self.cfg.ok_status.contains(code)
            }),
        }
    }

    /// One attempt: request, redirects, body; bounded by `--timeout` as a whole.
    /// Also gives the exchanges it saw (`--warc`): an answer only once its body
    /// arrived whole.
    async fn attempt(
        &self,
        req: &Request,
        probe: Option<Probe>,
        on: On<'_>,
    ) -> (Outcome, Vec<Exchange>) {
        let mut seen = Seen::new(self.cfg.wire);
        let timeout = self.cfg.timeout;
        let hops = Hops {
            follow: self.cfg.follow,
            most: self.cfg.max_redirects,
            ask: self.cfg.robots.then_some(Ask {
                halt: on.halt,
                source: self,
            }),
        };
        let inner = async {
            let response = self.follow(req, &mut seen, probe, hops).await?;
            let wire = seen.last.as_mut().map(|e| &mut e.payload);
            super::tap::read_body(response, self.cfg.max_body, on.tap, wire).await
        };
        let body = match tokio::time::timeout(timeout, inner).await {
            Ok(body) => body,
            Err(_) => Err(timed_out(timeout)),
        };
        let Seen { head, wire, last } = seen;
        let mut wire = wire.unwrap_or_default();
        wire.extend(last.filter(|_| body.is_ok()));
        ((head, body), wire)
    }
}

/// What an attempt runs under: the run's stop signal and the body's tap.
#[derive(Clone, Copy)]
struct On<'a> {
    halt: &'a CancellationToken,
    tap: Option<&'a Tap>,
}

pub(super) fn timed_out(timeout: Duration) -> Failure {
    Failure::Timeout(format!(
        "no complete response within {} (--timeout)",
        humantime::format_duration(timeout)
    ))
}

/// "Full jitter": a wait drawn uniformly from zero to the cap, so clients that
/// failed together do not retry together.
pub(super) fn full_jitter(cap: Duration) -> Duration {
    Duration::from_micros(rand::random_range(0..=cap.as_micros() as u64))
}

/// A URL fit for logs: any `user:password@` is removed.
pub(crate) fn redacted(url: &Url) -> Url {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_the_cap_and_varies() {
        let cap = Duration::from_millis(500);
        let waits: Vec<Duration> = (0..200).map(|_| full_jitter(cap)).collect();
        assert!(waits.iter().all(|w| *w <= cap));
        assert!(waits.iter().any(|w| *w < cap / 4) && waits.iter().any(|w| *w > cap * 3 / 4));
    }

    #[test]
    fn credentials_are_redacted() {
        let url = Url::parse("https://user:secret@a.test/x").unwrap();
        assert_eq!(redacted(&url).as_str(), "https://a.test/x");
    }

    /// A name the resolver cannot find (NXDOMAIN, SERVFAIL) is a `dns` record,
    /// and is not retried.
    #[tokio::test]
    async fn a_failed_lookup_is_a_dns_failure() {
        use futures_util::FutureExt;
        let cfg = <crate::cli::Cli as clap::Parser>::parse_from(["trawl"])
            .run
            .into_config(vec![])
            .unwrap();
        let lookup: resolve::LookupFn = Arc::new(|host: String| {
            async move {
                Err(std::io::Error::other(format!(
                    "{host}: Name or service not known"
                )))
            }
            .boxed()
        });
        let fetcher = Fetcher::with_lookup(cfg.fetch, Limits::new(&cfg.limits), lookup).unwrap();
        let request = crate::input::parse_line(b"http://nx.test/", crate::input::Line::Complete)
            .unwrap()
            .2
            .unwrap();
        let report = fetcher
            .fetch(&request, &CancellationToken::new(), None)
            .await;
        let failure = report.body.unwrap_err();
        assert_eq!(failure.kind(), crate::failure::ErrorKind::Dns, "{failure}");
        assert!(failure.to_string().contains("not known"), "{failure}");
        assert_eq!(report.attempts, 1);
    }
}
