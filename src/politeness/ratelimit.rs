//! Rate-limit headers: a server that announces its budget, and says it is spent,
//! gets no new request until its window resets (capped by `--max-retry-wait`),
//! like a `Retry-After`. Read, in this order:
//! - `RateLimit` of the IETF httpapi draft: the structured form
//!   (`"default";r=0;t=30`, one item per policy) and the earlier one
//!   (`limit=100, remaining=0, reset=30`); `t`/`reset` are seconds from now;
//! - `RateLimit-Remaining` with `RateLimit-Reset` (seconds), of earlier drafts;
//! - `X-RateLimit-Remaining` with `X-RateLimit-Reset`: seconds from now, or a
//!   Unix time in seconds (GitHub) or milliseconds, told apart by size.
//!
//! A budget at zero without a reset time gives no pause: trawl cannot know
//! how long to wait, and the usual retry backoff applies to a 429.

use std::time::Duration;

use reqwest::header::{self, HeaderMap};

/// What a response's headers ask of its host's politeness.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signals {
    /// `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// How long rate-limit headers say the host's budget is spent.
    pub(crate) rate_limited: Option<Duration>,
    /// The tightest budget rate-limit headers announce: requests left, and the
    /// time until the window resets.
    pub(crate) budget: Option<(f64, Duration)>,
}

impl Signals {
    pub(crate) fn read(headers: &HeaderMap) -> Signals {
        let now = unix_now();
        Signals {
            retry_after: retry_after(headers),
            rate_limited: exhausted(headers, now),
            budget: budget(headers, now),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // More seconds than fit: the longest wait, which --max-retry-wait caps.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::MAX);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// How long the host should get no new request, when a header says its budget
/// is spent. `now_unix`: the current Unix time in seconds.
pub(crate) fn exhausted(headers: &HeaderMap, now_unix: u64) -> Option<Duration> {
    announced(headers, now_unix)
        .into_iter()
        .filter(|&(remaining, _)| remaining <= 0.0)
        .map(|(_, reset)| reset)
        .max()
}

/// The tightest budget announced: requests left, and the time until the window
/// resets (for `--auto-throttle`).
pub(crate) fn budget(headers: &HeaderMap, now_unix: u64) -> Option<(f64, Duration)> {
    announced(headers, now_unix).into_iter().min_by(|a, b| {
        let per = |&(r, t): &(f64, Duration)| r / t.as_secs_f64().max(0.001);
        per(a).total_cmp(&per(b))
    })
}

/// Every (remaining, reset) pair the headers announce.
fn announced(headers: &HeaderMap, now_unix: u64) -> Vec<(f64, Duration)> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let number = |name: &str| text(name).and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(value) = text("ratelimit") {
        return structured(value);
    }
    if let (Some(r), Some(t)) = (number("ratelimit-remaining"), number("ratelimit-reset")) {
        return vec![(r, seconds(t))];
    }
    if let (Some(r), Some(reset)) = (number("x-ratelimit-remaining"), number("x-ratelimit-reset")) {
        let now = now_unix as f64;
        let t = match reset {
            r if r > 1e12 => r / 1000.0 - now,
            r if r > 1e9 => r - now,
            r => r,
        };
        return vec![(r, seconds(t))];
    }
    Vec::new()
}

/// The `RateLimit` header: one (remaining, reset) per policy.
fn structured(value: &str) -> Vec<(f64, Duration)> {
    let params = |item: &str| -> Vec<(String, f64)> {
        item.split(';')
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').parse().ok()?,
                ))
            })
            .collect()
    };
    let items: Vec<Vec<(String, f64)>> = value.split(',').map(params).collect();
    let pair = |item: &[(String, f64)]| {
        let get = |keys: [&str; 2]| {
            item.iter()
                .find(|(k, _)| keys.contains(&k.as_str()))
                .map(|&(_, v)| v)
        };
        Some((get(["r", "remaining"])?, seconds(get(["t", "reset"])?)))
    };
    let policies: Vec<(f64, Duration)> = items.iter().filter_map(|i| pair(i)).collect();
    if !policies.is_empty() {
        return policies;
    }
    // The earlier form: `limit=.., remaining=.., reset=..` is one policy.
    pair(&items.concat()).into_iter().collect()
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 365.0 * 86400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(
            header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("7"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        h.insert(
            header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    fn pause(pairs: &[(&'static str, &str)]) -> Option<Duration> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        exhausted(&h, 1_800_000_000)
    }

    #[test]
    fn each_form_pauses_only_when_the_budget_is_spent() {
        let s = Duration::from_secs;
        assert_eq!(pause(&[("ratelimit", "\"default\";r=0;t=30")]), Some(s(30)));
        assert_eq!(pause(&[("ratelimit", "\"default\";r=3;t=30")]), None);
        assert_eq!(
            pause(&[("ratelimit", "\"a\";r=5;t=10, \"b\";r=0;t=60")]),
            Some(s(60))
        );
        assert_eq!(
            pause(&[("ratelimit", "limit=100, remaining=0, reset=7")]),
            Some(s(7))
        );
        assert_eq!(
            pause(&[("ratelimit", "limit=100, remaining=9, reset=7")]),
            None
        );
        let old = [("ratelimit-remaining", "0"), ("ratelimit-reset", "4")];
        assert_eq!(pause(&old), Some(s(4)));
        let x = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2")];
        assert_eq!(pause(&x), Some(s(2)));
        let epoch = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1800000042"),
        ];
        assert_eq!(pause(&epoch), Some(s(42)), "GitHub's Unix time");
        let millis = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1800000005000"),
        ];
        assert_eq!(pause(&millis), Some(s(5)));
        let past = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000000"),
        ];
        assert_eq!(pause(&past), Some(s(0)));
        assert_eq!(
            pause(&[("x-ratelimit-remaining", "0")]),
            None,
            "no reset, no pause"
        );
        assert_eq!(
            pause(&[("x-ratelimit-remaining", "12"), ("x-ratelimit-reset", "2")]),
            None
        );
        assert_eq!(pause(&[]), None);
    }

    #[test]
    fn the_tightest_budget_is_the_one_that_counts() {
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit",
            "\"hour\";r=600;t=3600, \"minute\";r=10;t=20"
                .parse()
                .unwrap(),
        );
        // 600 an hour is 0.17/s, tighter than 10 in 20 s.
        assert_eq!(budget(&h, 0), Some((600.0, Duration::from_secs(3600))));
        let mut x = HeaderMap::new();
        x.insert("x-ratelimit-remaining", "30".parse().unwrap());
        x.insert("x-ratelimit-reset", "60".parse().unwrap());
        assert_eq!(budget(&x, 0), Some((30.0, Duration::from_secs(60))));
        assert_eq!(exhausted(&x, 0), None);
    }
}
