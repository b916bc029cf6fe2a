//! `--robots` (RFC 9309): each origin's `/robots.txt`, fetched once per run
//! through the same limits as any request, and the verdict on each URL. The
//! rules are parsed by texting_robots, which follows the RFC's longest match
//! (Allow winning a tie) with `*` and `$`, groups by product token with `*` as
//! the fallback, and `Crawl-delay`; it is tested against Google's
//! robots.txt test cases, and trawl need not keep its own parser.
//!
//! A 4xx robots.txt allows everything; a 5xx or an unreachable one disallows
//! everything for the run, as the RFC says, and is reported once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use url::Url;

/// Origins remembered at once; past this the cache starts again (their
/// robots.txt is then fetched again).
const MOST_ORIGINS: usize = 65_536;

/// What an origin's robots.txt says.
pub(crate) enum Rules {
    AllowAll,
    /// Why: the robots.txt answered 5xx or could not be fetched.
    DisallowAll(String),
    Parsed(Box<texting_robots::Robot>),
}

impl Rules {
    /// From a robots.txt response: its status (none when unreachable) and body.
    pub(crate) fn from_response(agent: &str, status: Option<u16>, body: &[u8], why: &str) -> Rules {
        match status {
            Some(200..=299) => match texting_robots::Robot::new(agent, body) {
                Ok(robot) => Rules::Parsed(Box::new(robot)),
                // An unparsable file says nothing: the RFC's parsers keep what they can.
                Err(_) => Rules::AllowAll,
            },
            Some(400..=499) => Rules::AllowAll,
            Some(code) => Rules::DisallowAll(format!("robots.txt answered HTTP {code}")),
            None => Rules::DisallowAll(format!("robots.txt could not be fetched: {why}")),
        }
    }

    /// `Err(why)` when `url` may not be fetched.
    pub(crate) fn check(&self, url: &Url) -> Result<(), String> {
        match self {
            Rules::AllowAll => Ok(()),
            Rules::DisallowAll(why) => Err(format!(
                "{why}: every URL of this origin is disallowed for this run (--robots)"
            )),
            Rules::Parsed(robot) if robot.allowed(url.as_str()) => Ok(()),
            Rules::Parsed(_) => Err("disallowed by robots.txt (--robots)".into()),
        }
    }

    /// `Crawl-delay` for this agent.
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self {
            Rules::Parsed(robot) => robot
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                .map(|d| Duration::from_secs_f32(d.min(86_400.0))),
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
    /// `user_agent`: the `-A` value; its product token is what it starts with,
    /// up to a `/` or a space (`trawl/0.1.0` is `trawl`).
    pub(crate) fn new(user_agent: &str) -> RobotsCache {
        let agent = user_agent
            .split(['/', ' '])
            .next()
            .filter(|t| !t.is_empty())
            .unwrap_or("*")
            .to_owned();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_longest_match_and_the_status_rules() {
        let txt = b"User-agent: trawl\nDisallow: /private\nAllow: /private/ok\nCrawl-delay: 2\n\nUser-agent: *\nDisallow: /\n";
        let url = |p: &str| Url::parse(&format!("http://h.test{p}")).unwrap();
        let ours = Rules::from_response("trawl", Some(200), txt, "");
        assert!(ours.check(&url("/public")).is_ok());
        assert!(ours.check(&url("/private/x")).is_err());
        assert!(
            ours.check(&url("/private/ok/y")).is_ok(),
            "the longer Allow wins"
        );
        assert_eq!(ours.delay(), Some(Duration::from_secs(2)));
        let other = Rules::from_response("otherbot", Some(200), txt, "");
        assert!(other.check(&url("/public")).is_err(), "the * group");
        assert!(
            Rules::from_response("trawl", Some(404), b"", "")
                .check(&url("/x"))
                .is_ok()
        );
        let down = Rules::from_response("trawl", Some(503), b"", "");
        assert!(down.check(&url("/x")).unwrap_err().contains("HTTP 503"));
        let gone = Rules::from_response("trawl", None, b"", "connection refused");
        assert!(
            gone.check(&url("/x"))
                .unwrap_err()
                .contains("connection refused")
        );
        assert_eq!(RobotsCache::new("trawl/0.1.0").agent, "trawl");
        assert_eq!(RobotsCache::new("Mozilla/5.0 (X11)").agent, "Mozilla");
        let cache = RobotsCache::new("trawl/1");
        let (_, robots) = cache.cell(&Url::parse("https://u:p@h.test:8443/a/b?q#f").unwrap());
        assert_eq!(robots.as_str(), "https://h.test:8443/robots.txt");
    }
}
