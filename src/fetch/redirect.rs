//! Following redirects: one request and its hops, each hop checked against its
//! origin's robots.txt (with `--robots`), credentials kept only within one
//! origin, methods changed as RFC 9110 says, and the head of the last response
//! kept so a failing hop is recorded where it happened.

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::time::Instant;
use url::Url;

use super::classify::classify;
use super::fetcher::{Fetcher, Head, redacted};
use super::wire::{Exchange, Sent, accept_encoding, read_small};
use crate::failure::Failure;
use crate::input::Request;
use crate::politeness::{Ask, Probe, Signals};

/// How many times in a row a request is sent again because the pooled
/// connection it went out on turned out closed: the server may have closed
/// several idle ones at once (its keep-alive timeout), each is given up once.
const STALE_RESENDS: u32 = 3;

impl Fetcher {
    /// Send one request. When it went out on a pooled connection that the
    /// server had just closed (no answer, and no connection of its own was
    /// opened) and it may be repeated, send it again at once: not a new
    /// attempt, no backoff, as curl does (`reuse.rs`).
    async fn send(&self, mut request: RequestBuilder, repeat: bool) -> Result<Response, Failure> {
        let mut resends = 0;
        loop {
            let again = match repeat && resends < STALE_RESENDS {
                true => request.try_clone(),
                false => None,
            };
            let (sent, connected) = super::reuse::watching(request.send()).await;
            match (sent, again) {
                (Ok(response), _) => return Ok(response),
                (Err(e), Some(next)) if !connected && super::reuse::closed_before_answer(&e) => {
                    tracing::debug!(
                        "the pooled connection was closed as it was reused ({e}); sending again"
                    );
                    resends += 1;
                    request = next;
                }
                (Err(e), _) => return Err(classify(e)),
            }
        }
    }

    /// Send `req` and follow its redirects; `seen.head` is the last response's.
    pub(super) async fn follow(
        &self,
        req: &Request,
        seen: &mut Seen,
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
        if seen.wire.is_some() {
            accept_encoding(&mut headers);
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
                .request(method.clone(), sent.clone())
                .headers(headers.clone());
            match &body {
                Some(b) => request = request.body(b.clone()),
                // RFC 9110 8.6: a POST, PUT or PATCH without a body says so (some servers answer 411).
                None if matches!(method, Method::POST | Method::PUT | Method::PATCH) => {
                    request = request.header(header::CONTENT_LENGTH, "0");
                }
                None => {}
            }
            let sent = seen.wire.is_some().then(|| {
                let agent = &self.cfg.client.user_agent;
                Sent::new(&method, &sent, &headers, body.as_deref(), agent)
            });

            let response = self.send(request, self.may_repeat_method(&method)).await;
            // The connection is up and its protocol known: the host's other requests may go.
            drop(probe.take());
            let mut response = response?;
            let exchange = sent.map(|sent| Exchange::begin(sent, &response));
            if !hops.follow {
                seen.last = exchange;
                break response;
            }
            let next = match redirect_target(&url, &response) {
                Ok(Some(next)) => next,
                Ok(None) => {
                    seen.last = exchange;
                    break response;
                }
                Err(failure) => {
                    // The record names the 3xx that pointed nowhere usable.
                    seen.head = Some(head_of(&response, url, redirects, start));
                    self.keep_hop(&mut response, exchange, seen).await;
                    return Err(failure);
                }
            };
            if redirects == hops.most {
                seen.head = Some(head_of(&response, url, redirects, start));
                self.keep_hop(&mut response, exchange, seen).await;
                return Err(Failure::TooManyRedirects(hops.most));
            }
            self.keep_hop(&mut response, exchange, seen).await;
            // Every hop is a request to its origin: its robots.txt must allow it.
            if let Some(ask) = hops.ask
                && let Err(why) = self.gate.check_hop(&next, ask).await
            {
                seen.head = Some(head_of(&response, url, redirects, start));
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
            seen.head = Some(head_of(&response, next.clone(), redirects, start));
            url = next;
        };
        let mut last = head_of(&response, url, redirects, start);
        if self.cfg.keep_headers {
            let mut headers = response.headers().clone();
            // Decoded here rather than by the client: its headers as reqwest leaves them.
            if seen.wire.is_some() && headers.contains_key(header::CONTENT_ENCODING) {
                headers.remove(header::CONTENT_ENCODING);
                headers.remove(header::CONTENT_LENGTH);
            }
            last.headers = Some(headers);
        }
        seen.head = Some(last);
        Ok(response)
    }

    /// `--warc`: read a response that is not the answer (a redirect's), so its
    /// exchange is kept whole. A body that fails to arrive leaves no exchange:
    /// the request goes on as it would have without `--warc`.
    async fn keep_hop(&self, response: &mut Response, exchange: Option<Exchange>, seen: &mut Seen) {
        let Some(mut exchange) = exchange else { return };
        let limit = usize::try_from(self.cfg.max_body).unwrap_or(usize::MAX);
        if read_small(response, limit, Some(&mut exchange))
            .await
            .is_ok()
            && let Some(wire) = &mut seen.wire
        {
            wire.push(exchange);
        }
    }
}

/// What an attempt saw: the last response's head and, with `--warc`, the
/// exchanges so far and the answer's, whose body the caller reads.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) head: Option<Head>,
    /// `--warc`: every exchange finished.
    pub(super) wire: Option<Vec<super::wire::Exchange>>,
    /// `--warc`: the answer, its payload still to be read.
    pub(super) last: Option<Exchange>,
}

impl Seen {
    /// Nothing seen yet; `wire`: keep the exchanges.
    pub(super) fn new(wire: bool) -> Seen {
        Seen {
            wire: wire.then(Vec::new),
            ..Seen::default()
        }
    }
}

/// How far an attempt follows redirects, and who checks each hop.
#[derive(Clone, Copy)]
pub(super) struct Hops<'a> {
    /// `--no-follow` makes this false: the first response is the answer.
    pub(super) follow: bool,
    pub(super) most: u32,
    /// `--robots`: each hop must pass its origin's robots.txt.
    pub(super) ask: Option<Ask<'a>>,
}

pub(super) fn head_of(response: &Response, final_url: Url, redirects: u32, start: Instant) -> Head {
    let headers = response.headers();
    // A header sent twice: the last one, as curl's -w '%header{...}' takes.
    let text = |name| {
        headers
            .get_all(name)
            .iter()
            .next_back()
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
        location: text(header::LOCATION).filter(|_| response.status().is_redirection()),
        redirects,
        ttfb: start.elapsed(),
        signals: Signals::read(headers),
        headers: None,
    }
}

/// The next URL when `response` is a redirect with a usable `Location`.
pub(super) fn redirect_target(current: &Url, response: &Response) -> Result<Option<Url>, Failure> {
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

/// Whether a redirect from `from` to `to` keeps Authorization and Cookie: as
/// curl, only while the scheme, host and port stay the same.
fn keeps_credentials(from: &Url, to: &Url) -> bool {
    from.origin() == to.origin()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
