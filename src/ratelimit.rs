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

use reqwest::header::HeaderMap;

/// How long the host should get no new request, when a header says its budget
/// is spent. `now_unix`: the current Unix time in seconds.
pub(crate) fn exhausted(headers: &HeaderMap, now_unix: u64) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let number = |name: &str| text(name).and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(value) = text("ratelimit") {
        return structured(value);
    }
    if number("ratelimit-remaining") == Some(0.0) {
        return number("ratelimit-reset").map(seconds);
    }
    if number("x-ratelimit-remaining") == Some(0.0) {
        let reset = number("x-ratelimit-reset")?;
        let now = now_unix as f64;
        return Some(seconds(match reset {
            r if r > 1e12 => r / 1000.0 - now,
            r if r > 1e9 => r - now,
            r => r,
        }));
    }
    None
}

/// The `RateLimit` header: the longest reset among the policies at zero.
fn structured(value: &str) -> Option<Duration> {
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
    let get = |item: &[(String, f64)], keys: [&str; 2]| {
        item.iter()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|&(_, v)| v)
    };
    let spent = |item: &[(String, f64)]| match get(item, ["r", "remaining"]) {
        Some(r) if r <= 0.0 => get(item, ["t", "reset"]).map(seconds),
        _ => None,
    };
    let whole = |item: &&Vec<(String, f64)>| {
        get(item, ["r", "remaining"]).is_some() && get(item, ["t", "reset"]).is_some()
    };
    if items.iter().any(|i| whole(&i)) {
        // One item per policy.
        items.iter().filter_map(|i| spent(i)).max()
    } else {
        // The earlier form: `limit=.., remaining=.., reset=..` is one policy.
        spent(&items.concat())
    }
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 365.0 * 86400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
