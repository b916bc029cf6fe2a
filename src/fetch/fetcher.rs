//! The HTTP side: shared reqwest clients, one fetch with retries, redirects and
//! a bounded body read, and the classification of transport errors into the stable
//! error kinds. Knows nothing about output.

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use futures_util::future::BoxFuture;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Response, StatusCode, Version};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::body::Body;
use super::classify::classify;
use super::clients::{ClientSettings, Clients};
use super::resolve;
use super::tap::Tap;
use crate::failure::Failure;
use crate::input::Request;
use crate::politeness::{
    Answer, Ask, Gate, HostStats, Limits, Probe, ROBOTS_MAX_BYTES, Refusal, RobotsSource,
    RobotsTally, Rules, Signals, Slot, product_token,
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
    /// `--retry-all-methods`: retry non-idempotent requests too.
    pub(crate) retry_all_methods: bool,
    /// `--robots-agent`: the product token robots.txt is read for (default:
    /// what `-A` starts with).
    pub(crate) robots_agent: Option<String>,
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
    pub redirects: u32,
    /// From the start of the attempt to the final response's headers.
    pub ttfb: Duration,
    /// What the headers ask of the host's politeness (Retry-After, rate limits).
    signals: Signals,
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
    }
}

pub(crate) struct Fetcher {
    clients: Clients,
    cfg: FetchSettings,
    /// Politeness: every attempt is admitted by it, and reports to it.
    gate: Gate,
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
        let clients = Clients::new(cfg.client.clone(), lookup)?;
        let agent = cfg.robots.then(|| {
            cfg.robots_agent
                .clone()
                .unwrap_or_else(|| product_token(&cfg.client.user_agent))
        });
        let gate = Gate::new(limits, agent.as_deref(), cfg.max_retry_wait);
        Ok(Fetcher { clients, cfg, gate })
    }

    /// Count attempts and pauses by host into `stats` (`--host-stats`).
    pub(crate) fn with_host_stats(mut self, stats: Option<Arc<HostStats>>) -> Fetcher {
        self.gate = self.gate.with_host_stats(stats);
        self
    }

    /// `--robots`: what robots.txt said over the run.
    pub(crate) fn robots_tally(&self) -> Option<RobotsTally> {
        self.gate.robots_tally()
    }

    /// The method a request is sent with: its own, `-X`, or POST with a body and GET without.
    fn method_for(&self, req: &Request, has_body: bool) -> Method {
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
        self.cfg.retry_all_methods
            || matches!(
                self.sent_method(req),
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
                    return report(last.unwrap_or((None, Err(failure))), attempts, first_start);
                }
            };
            first_start.get_or_insert_with(Instant::now);
            attempts += 1;
            let on = On { halt, tap };
            let (head, body) = self.attempt(req, permit.take_probe(), on).await;
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
                let mut done = report((head, body), attempts, first_start);
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
                        _ = halt.cancelled() => return report((head, body), attempts, first_start),
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
    async fn attempt(&self, req: &Request, probe: Option<Probe>, on: On<'_>) -> Outcome {
        let mut head = None;
        let timeout = self.cfg.timeout;
        let hops = Hops {
            most: self.cfg.max_redirects,
            ask: self.cfg.robots.then_some(Ask {
                halt: on.halt,
                source: self,
            }),
        };
        let inner = async {
            let response = self.follow(req, &mut head, probe, hops).await?;
            super::tap::read_body(response, self.cfg.max_body, on.tap).await
        };
        let body = match tokio::time::timeout(timeout, inner).await {
            Ok(body) => body,
            Err(_) => Err(timed_out(timeout)),
        };
        (head, body)
    }

    /// Send `req` and follow its redirects; `head` is the last response's.
    async fn follow(
        &self,
        req: &Request,
        head: &mut Option<Head>,
        mut probe: Option<Probe>,
        hops: Hops<'_>,
    ) -> Result<Response, Failure> {
        let start = Instant::now();
        let mut url = req.url.clone();
        let options = req.options;
        let mut body = req
            .body
            .clone()
            .or_else(|| self.cfg.data.clone().filter(|_| options));
        let mut method = match options {
            true => self.method_for(req, body.is_some()),
            false => req.method.clone().unwrap_or(Method::GET),
        };
        let mut headers = match options {
            true => self.cfg.headers.clone(),
            false => HeaderMap::new(),
        };
        for (name, value) in &req.headers {
            headers.insert(name.clone(), value.clone());
        }
        if req.body.is_none() && body.is_some() && self.cfg.form_data {
            headers
                .entry(header::CONTENT_TYPE)
                .or_insert(header::HeaderValue::from_static(
                    "application/x-www-form-urlencoded",
                ));
        }
        let mut redirects = 0;
        let response = loop {
            // A fragment is the client's: it is never sent.
            let mut sent = url.clone();
            sent.set_fragment(None);
            let mut request = self
                .clients
                .get(&url)
                .await?
                .request(method.clone(), sent)
                .headers(headers.clone());
            match &body {
                Some(b) => request = request.body(b.clone()),
                // RFC 9110 8.6: a POST, PUT or PATCH without a body says so (some servers answer 411).
                None if matches!(method, Method::POST | Method::PUT | Method::PATCH) => {
                    request = request.header(header::CONTENT_LENGTH, "0");
                }
                None => {}
            }
            let response = request.send().await.map_err(classify);
            // The connection is up and its protocol known: the host's other requests may go.
            drop(probe.take());
            let response = response?;
            let next = match redirect_target(&url, &response) {
                Ok(Some(next)) => next,
                Ok(None) => break response,
                Err(failure) => {
                    // The record names the 3xx that pointed nowhere usable.
                    *head = Some(head_of(&response, url, redirects, start));
                    return Err(failure);
                }
            };
            if redirects == hops.most {
                *head = Some(head_of(&response, url, redirects, start));
                return Err(Failure::TooManyRedirects(hops.most));
            }
            // Every hop is a request to its origin: its robots.txt must allow it.
            if let Some(ask) = hops.ask
                && let Err(why) = self.gate.check_hop(&next, ask).await
            {
                *head = Some(head_of(&response, url, redirects, start));
                let next = redacted(&next);
                return Err(Failure::RobotsDisallowed(format!(
                    "redirect to {next}: {why}"
                )));
            }
            redirects += 1;
            // RFC 9110 15.4.4: a 303 turns any method but HEAD into GET.
            if (response.status() == StatusCode::SEE_OTHER && method != Method::HEAD)
                || (method == Method::POST && matches!(response.status().as_u16(), 301 | 302))
            {
                method = Method::GET;
                body = None;
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
            }
            if !keeps_credentials(&url, &next) {
                for name in [
                    header::AUTHORIZATION,
                    header::COOKIE,
                    header::PROXY_AUTHORIZATION,
                ] {
                    headers.remove(name);
                }
            }
            // Until the next hop answers, its failure (or the attempt's timeout)
            // is recorded where it happened: the hop's URL, the redirects so
            // far, and the last status received.
            *head = Some(head_of(&response, next.clone(), redirects, start));
            url = next;
        };
        *head = Some(head_of(&response, url, redirects, start));
        Ok(response)
    }

    /// One try at a robots.txt: at least five redirects whatever
    /// `--max-redirects`, across origins, and its first
    /// [`ROBOTS_MAX_BYTES`] (the rest is not read).
    async fn robots_attempt(&self, url: &Url) -> (Option<u16>, Result<Vec<u8>, String>) {
        let mut head = None;
        let hops = Hops {
            most: self.cfg.max_redirects.max(5),
            ask: None,
        };
        let inner = async {
            let mut response = self
                .follow(&Request::own_get(url.clone()), &mut head, None, hops)
                .await?;
            let mut text = Vec::new();
            while text.len() < ROBOTS_MAX_BYTES {
                match response.chunk().await.map_err(classify)? {
                    Some(chunk) => text.extend_from_slice(&chunk),
                    None => break,
                }
            }
            text.truncate(ROBOTS_MAX_BYTES);
            Ok(text)
        };
        let body = match tokio::time::timeout(self.cfg.timeout, inner).await {
            Ok(body) => body,
            Err(_) => Err(timed_out(self.cfg.timeout)),
        };
        let status = head.as_ref().map(|h| h.status.as_u16());
        (status, body.map_err(|f: Failure| f.to_string()))
    }
}

/// What an attempt runs under: the run's stop signal and the body's tap.
#[derive(Clone, Copy)]
struct On<'a> {
    halt: &'a CancellationToken,
    tap: Option<&'a Tap>,
}

/// How far an attempt follows redirects, and who checks each hop.
#[derive(Clone, Copy)]
struct Hops<'a> {
    most: u32,
    /// `--robots`: each hop must pass its origin's robots.txt.
    ask: Option<Ask<'a>>,
}

fn timed_out(timeout: Duration) -> Failure {
    Failure::Timeout(format!(
        "no complete response within {} (--timeout)",
        humantime::format_duration(timeout)
    ))
}

/// robots.txt is read with the fetch stage's own GET, without the user's
/// options, and tried again while it is unreachable (`--retries`).
impl RobotsSource for Fetcher {
    fn get_robots<'a>(
        &'a self,
        agent: &'a str,
        url: Url,
        halt: &'a CancellationToken,
    ) -> BoxFuture<'a, Rules> {
        Box::pin(async move {
            let mut tries = 0;
            loop {
                let (status, body) = self.robots_attempt(&url).await;
                let rules = Rules::from_response(agent, status, body);
                tries += 1;
                if !rules.unreachable() || tries > self.cfg.retries || halt.is_cancelled() {
                    return rules;
                }
                let cap = Duration::from_millis(250) * 2u32.pow(tries.min(7) - 1);
                tokio::select! {
                    biased;
                    _ = halt.cancelled() => return rules,
                    _ = tokio::time::sleep(full_jitter(cap)) => {}
                }
            }
        })
    }
}

fn head_of(response: &Response, final_url: Url, redirects: u32, start: Instant) -> Head {
    let headers = response.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Head {
        final_url,
        status: response.status(),
        version: response.version(),
        content_type: text(header::CONTENT_TYPE),
        etag: text(header::ETAG),
        last_modified: text(header::LAST_MODIFIED),
        redirects,
        ttfb: start.elapsed(),
        signals: Signals::read(headers),
    }
}

/// The next URL when `response` is a redirect with a usable `Location`.
fn redirect_target(current: &Url, response: &Response) -> Result<Option<Url>, Failure> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| Failure::Decode("redirect Location header is not valid text".into()))?;
    // An empty Location points nowhere (curl stops there too): the 3xx is the answer.
    if location.trim().is_empty() {
        return Ok(None);
    }
    let next = current
        .join(location)
        .map_err(|e| Failure::Decode(format!("invalid redirect Location '{location}': {e}")))?;
    match next.scheme() {
        "http" | "https" => Ok(Some(next)),
        other => Err(Failure::Decode(format!(
            "redirect ({}) to '{location}': a {other}: URL is not followed",
            response.status().as_u16()
        ))),
    }
}

/// "Full jitter": a wait drawn uniformly from zero to the cap, so clients that
/// failed together do not retry together.
fn full_jitter(cap: Duration) -> Duration {
    Duration::from_micros(rand::random_range(0..=cap.as_micros() as u64))
}

/// Whether a redirect from `from` to `to` keeps Authorization and Cookie: as
/// curl, only while the scheme, host and port stay the same.
fn keeps_credentials(from: &Url, to: &Url) -> bool {
    from.origin() == to.origin()
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
    fn credentials_stop_at_a_change_of_scheme_host_or_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(keeps_credentials(
            &u("https://h.test/a"),
            &u("https://h.test:443/b")
        ));
        for to in [
            "http://h.test:443/",
            "http://h.test/",
            "https://h.test:8443/",
            "https://g.test/",
        ] {
            assert!(!keeps_credentials(&u("https://h.test/a"), &u(to)), "{to}");
        }
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
