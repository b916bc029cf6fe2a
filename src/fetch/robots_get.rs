//! robots.txt as the fetch stage reads it for the politeness gate: a plain
//! GET, at least five redirects, its first 500 KiB, tried again while it is
//! unreachable.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::fetcher::{Fetcher, full_jitter, timed_out};
use super::redirect::{Hops, Seen};
use super::wire::read_small;
use crate::failure::Failure;
use crate::input::Request;
use crate::politeness::{ROBOTS_MAX_BYTES, RobotsSource, Rules};

impl Fetcher {
    /// One try at a robots.txt: at least five redirects whatever
    /// `--max-redirects`, across origins, and its first
    /// [`ROBOTS_MAX_BYTES`] (the rest is not read).
    /// With `--warc`, its exchanges go to the archive.
    async fn robots_attempt(&self, url: &Url) -> (Option<u16>, Result<Vec<u8>, String>) {
        let mut seen = Seen::new(self.cfg.wire);
        let hops = Hops {
            follow: true,
            most: self.cfg.max_redirects.max(5),
            ask: None,
        };
        let inner = async {
            let mut response = self
                .follow(&Request::own_get(url.clone()), &mut seen, None, hops)
                .await?;
            let (text, _) = read_small(&mut response, ROBOTS_MAX_BYTES, seen.last.as_mut()).await?;
            Ok(text)
        };
        let body = match tokio::time::timeout(self.cfg.timeout, inner).await {
            Ok(body) => body,
            Err(_) => Err(timed_out(self.cfg.timeout)),
        };
        let Seen { head, wire, last } = seen;
        if let Some(archive) = &self.archive {
            let mut wire = wire.unwrap_or_default();
            wire.extend(last.filter(|_| body.is_ok()));
            if !wire.is_empty() {
                archive(wire).await;
            }
        }
        let status = head.as_ref().map(|h| h.status.as_u16());
        (status, body.map_err(|f: Failure| f.to_string()))
    }
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
