//! `--robots` (RFC 9309): each origin's `/robots.txt`, fetched once per run
//! through the same limits as any request, and the verdict on each URL. The
//! rules are parsed and matched by trawl's own parser (`robotstxt/`), written
//! from the RFC and Google's documented behaviour and tested case by case.
//!
//! A 4xx robots.txt allows everything. One that is unreachable (a 5xx or 429,
//! a network error, or a body that could not be read whole, after the
//! `--retries`) disallows everything for the run, as the RFC says, and is
//! reported once. Only the first [`MAX_BYTES`] are read and parsed, whatever
//! `--max-body` says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use url::{Position, Url};

use super::robotstxt::RobotsTxt;

/// Origins remembered at once; past this the cache starts again (their
/// robots.txt is then fetched again).
const MOST_ORIGINS: usize = 65_536;

/// The part of a robots.txt that is parsed: 500 KiB, the RFC's minimum and
/// Google's limit. What follows is ignored, not an error.
pub(crate) const MAX_BYTES: usize = 500 * 1024;

/// What an origin's robots.txt says.
pub(crate) enum Rules {
    /// It answered 4xx: no rules.
    AllowAll,
    /// Unreachable (why): every URL of the origin is disallowed.
    Unreachable(String),
    Parsed(Box<RobotsTxt>),
}

impl Rules {
    /// From a robots.txt response: its status (none when unreachable) and its
    /// body, or why the body could not be read whole.
    pub(crate) fn from_response(
        agent: &str,
        status: Option<u16>,
        body: Result<Vec<u8>, String>,
    ) -> Rules {
        match (status, body) {
            (Some(200..=299), Ok(body)) => Rules::Parsed(Box::new(RobotsTxt::parse(agent, &body))),
            (Some(429), _) => Rules::Unreachable("robots.txt answered HTTP 429".into()),
            (Some(400..=499), _) => Rules::AllowAll,
            (Some(code @ 200..=299), Err(why)) => Rules::Unreachable(format!(
                "robots.txt answered HTTP {code} but its body could not be read whole: {why}"
            )),
            (Some(code), _) => Rules::Unreachable(format!("robots.txt answered HTTP {code}")),
            (None, Err(why)) => {
                Rules::Unreachable(format!("robots.txt could not be fetched: {why}"))
            }
            (None, Ok(_)) => Rules::Unreachable("robots.txt could not be fetched".into()),
        }
    }

    /// Whether another try may change the verdict (`--retries`).
    pub(crate) fn unreachable(&self) -> bool {
        matches!(self, Rules::Unreachable(_))
    }

    /// `Err(why)` when `url` may not be fetched. The fragment never counts.
    pub(crate) fn check(&self, url: &Url) -> Result<(), String> {
        match self {
            Rules::AllowAll => Ok(()),
            Rules::Unreachable(why) => Err(format!(
                "{why}: every URL of this origin is disallowed for this run (--robots)"
            )),
            Rules::Parsed(robots)
                if robots.allowed(&url[Position::BeforePath..Position::AfterQuery]) =>
            {
                Ok(())
            }
            Rules::Parsed(_) => Err("disallowed by robots.txt (--robots)".into()),
        }
    }

    /// `Crawl-delay` for this agent.
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self {
            Rules::Parsed(robots) => robots.crawl_delay(),
            _ => None,
        }
    }
}

/// The robots.txt of each origin, each fetched once.
pub(crate) struct RobotsCache {
    /// The product token matched against `User-agent` lines.
    pub(crate) agent: String,
    origins: Mutex<HashMap<String, Arc<OnceCell<Arc<Rules>>>>>,
}

impl RobotsCache {
    /// `agent`: the product token to obey robots.txt for (see [`product_token`]).
    pub(crate) fn new(agent: &str) -> RobotsCache {
        let agent = agent.to_owned();
        RobotsCache {
            agent,
            origins: Mutex::new(HashMap::new()),
        }
    }

    /// The cell of `url`'s origin, and the robots.txt URL to fill it from.
    pub(crate) fn cell(&self, url: &Url) -> (Arc<OnceCell<Arc<Rules>>>, Url) {
        let mut robots = url.clone();
        robots.set_path("/robots.txt");
        robots.set_query(None);
        robots.set_fragment(None);
        let _ = robots.set_username("");
        let _ = robots.set_password(None);
        let origin = url.origin().ascii_serialization();
        let mut origins = self.origins.lock().expect("robots lock");
        if origins.len() >= MOST_ORIGINS && !origins.contains_key(&origin) {
            origins.clear();
        }
        (origins.entry(origin).or_default().clone(), robots)
    }
}

/// The product token of a User-Agent value: what it starts with, up to the
/// first character outside `[A-Za-z_-]` (`trawl/0.1.0` is `trawl`).
pub(crate) fn product_token(user_agent: &str) -> String {
    let end = user_agent
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_' || c == '-'))
        .unwrap_or(user_agent.len());
    user_agent[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_unreadable_bodies_give_the_rfc_verdicts() {
        let url = |p: &str| Url::parse(&format!("http://h.test{p}")).unwrap();
        let txt = b"User-agent: trawl\nDisallow: /private\nCrawl-delay: 2\n".to_vec();
        let ours = Rules::from_response("trawl", Some(200), Ok(txt));
        assert!(ours.check(&url("/public")).is_ok());
        assert!(ours.check(&url("/private/x")).is_err());
        assert_eq!(ours.delay(), Some(Duration::from_secs(2)));
        let frag = Rules::from_response(
            "trawl",
            Some(200),
            Ok(b"User-agent: *\nDisallow: /*.php$\n".to_vec()),
        );
        assert!(
            frag.check(&url("/x.php#top")).is_err(),
            "the fragment never counts"
        );
        assert!(frag.check(&url("/x.php?a")).is_ok());
        let allow = Rules::from_response("trawl", Some(404), Ok(Vec::new()));
        assert!(allow.check(&url("/x")).is_ok());
        for (status, body, says) in [
            (Some(503), Ok(Vec::new()), "HTTP 503"),
            (Some(429), Ok(Vec::new()), "HTTP 429"),
            (
                Some(200),
                Err("connection closed".to_owned()),
                "could not be read whole",
            ),
            (
                None,
                Err("connection refused".to_owned()),
                "connection refused",
            ),
        ] {
            let rules = Rules::from_response("trawl", status, body);
            assert!(rules.unreachable());
            assert!(
                rules.check(&url("/x")).unwrap_err().contains(says),
                "{status:?}"
            );
        }
        assert_eq!(product_token("trawl/0.1.0"), "trawl");
        assert_eq!(product_token("Mozilla/5.0 (X11)"), "Mozilla");
        assert_eq!(product_token("Foo Bar"), "Foo");
        let cache = RobotsCache::new("trawl");
        let (_, robots) = cache.cell(&Url::parse("https://u:p@h.test:8443/a/b?q#f").unwrap());
        assert_eq!(robots.as_str(), "https://h.test:8443/robots.txt");
    }
}
