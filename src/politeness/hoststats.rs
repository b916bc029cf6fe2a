//! `--host-stats FILE`: one JSON line per host at the end of the run. The writer
//! counts each record under its host; the fetch stage adds what records do not
//! show: every attempt's 429 or 503, and each pause (`Retry-After`, rate-limit
//! headers) with its length. Hosts are tallied one by one up to [`MOST_HOSTS`];
//! the rest share one line, so memory stays bounded with a million hosts.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::failure::ErrorKind;

/// Hosts tallied one by one (about 500 bytes each).
const MOST_HOSTS: usize = 10_000;
/// Latency buckets: 4 per doubling from 1/8 ms, up to about 35 minutes.
const BUCKETS: usize = 96;

/// What a written record tells the host stats.
pub(crate) struct Written<'a> {
    /// The requested URL.
    pub(crate) url: &'a str,
    pub(crate) ok: bool,
    pub(crate) failure: Option<ErrorKind>,
    pub(crate) bytes: u64,
    /// The fetch's time, when it made a request.
    pub(crate) latency_ms: Option<f64>,
}

#[derive(Default)]
pub(crate) struct HostStats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    hosts: HashMap<String, Tally>,
    /// Hosts past [`MOST_HOSTS`], together.
    rest: Tally,
}

#[derive(Clone)]
struct Tally {
    records: u64,
    requests: u64,
    ok: u64,
    failures: BTreeMap<ErrorKind, u64>,
    status_429: u64,
    status_503: u64,
    pauses: u64,
    paused: Duration,
    bytes: u64,
    latency: [u32; BUCKETS],
    /// `--auto-throttle`: the host's last rate and its lowest.
    rates: Option<(f64, f64)>,
    /// `--robots`: inputs allowed and disallowed, and whether a robots.txt of
    /// the host was unreachable.
    robots: Option<(u64, u64, bool)>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            records: 0,
            requests: 0,
            ok: 0,
            failures: BTreeMap::new(),
            status_429: 0,
            status_503: 0,
            pauses: 0,
            paused: Duration::ZERO,
            bytes: 0,
            latency: [0; BUCKETS],
            rates: None,
            robots: None,
        }
    }
}

/// One line of the `--host-stats` file.
#[derive(Debug, Serialize)]
pub(crate) struct HostLine {
    /// Host name and port; `(other hosts)` for those past the first 10,000.
    pub host: String,
    pub records: u64,
    /// Attempts sent, retries included.
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<ErrorKind, u64>,
    pub retries: u64,
    pub status_429: u64,
    pub status_503: u64,
    /// Pauses from `Retry-After` and rate-limit headers, and their total length.
    pub pauses: u64,
    pub paused_ms: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub bytes: u64,
    /// `--auto-throttle`: the host's final rate and its lowest, in requests per
    /// second (absent while it never changed from the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_final: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_min: Option<f64>,
    /// `--robots`: inputs (and redirect hops) robots.txt allowed and disallowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub robots_allowed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub robots_disallowed: Option<u64>,
    /// `--robots`: the host's robots.txt was unreachable (so all was disallowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub robots_unreachable: Option<bool>,
}

fn bucket(ms: f64) -> usize {
    let steps = 4.0 * (ms.max(0.125) / 0.125).log2();
    (steps as usize).min(BUCKETS - 1)
}

/// The middle of a bucket, in milliseconds (within about 9% of any value in it).
fn middle(bucket: usize) -> f64 {
    0.125 * 2f64.powf((bucket as f64 + 0.5) / 4.0)
}

impl Tally {
    fn percentile(&self, p: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let rank = (p * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        let at = self.latency.iter().position(|&n| {
            seen += u64::from(n);
            seen >= rank
        })?;
        Some((middle(at) * 10.0).round() / 10.0)
    }

    fn line(&self, host: String) -> HostLine {
        let failed = self.records - self.ok;
        HostLine {
            host,
            records: self.records,
            requests: self.requests,
            ok: self.ok,
            failed,
            failures: self.failures.clone(),
            retries: self.requests.saturating_sub(self.records),
            status_429: self.status_429,
            status_503: self.status_503,
            pauses: self.pauses,
            paused_ms: self.paused.as_millis() as u64,
            latency_p50_ms: self.percentile(0.5),
            latency_p90_ms: self.percentile(0.9),
            bytes: self.bytes,
            rate_final: self.rates.map(|(r, _)| (r * 100.0).round() / 100.0),
            rate_min: self.rates.map(|(_, m)| (m * 100.0).round() / 100.0),
            robots_allowed: self.robots.map(|r| r.0),
            robots_disallowed: self.robots.map(|r| r.1),
            robots_unreachable: self.robots.map(|r| r.2),
        }
    }
}

impl HostStats {
    fn with<T>(&self, host: &str, f: impl FnOnce(&mut Tally) -> T) -> T {
        let mut inner = self.inner.lock().expect("host stats lock");
        let Inner { hosts, rest } = &mut *inner;
        if let Some(t) = hosts.get_mut(host) {
            return f(t);
        }
        if hosts.len() < MOST_HOSTS {
            return f(hosts.entry(host.to_owned()).or_default());
        }
        f(rest)
    }

    /// One attempt to `host` got this status (or none).
    pub(crate) fn attempt(&self, host: &str, status: Option<u16>) {
        self.with(host, |t| {
            t.requests += 1;
            t.status_429 += u64::from(status == Some(429));
            t.status_503 += u64::from(status == Some(503));
        });
    }

    /// `host` was paused for `wait`.
    pub(crate) fn paused(&self, host: &str, wait: Duration) {
        self.with(host, |t| {
            t.pauses += 1;
            t.paused += wait;
        });
    }

    /// `--auto-throttle` set the host's rate.
    pub(crate) fn rate(&self, host: &str, rate: f64, lowest: f64) {
        self.with(host, |t| t.rates = Some((rate, lowest)));
    }

    /// `--robots`: the host's robots.txt was read (or found unreachable).
    pub(crate) fn robots_file(&self, host: &str, unreachable: bool) {
        self.with(host, |t| {
            let r = t.robots.get_or_insert((0, 0, false));
            r.2 |= unreachable;
        });
    }

    /// `--robots`: an input or a redirect hop to `host` was judged.
    pub(crate) fn robots_verdict(&self, host: &str, allowed: bool) {
        self.with(host, |t| {
            let r = t.robots.get_or_insert((0, 0, false));
            match allowed {
                true => r.0 += 1,
                false => r.1 += 1,
            }
        });
    }

    /// A record was written.
    pub(crate) fn record(&self, written: Written<'_>) {
        let Some(url) = url::Url::parse(written.url).ok() else {
            return;
        };
        self.with(&super::limits::host_key(&url), |t| {
            t.records += 1;
            t.ok += u64::from(written.ok);
            if let Some(kind) = written.failure {
                *t.failures.entry(kind).or_default() += 1;
            }
            t.bytes += written.bytes;
            if let Some(ms) = written.latency_ms {
                t.latency[bucket(ms)] += 1;
            }
        });
    }

    /// Every host's line, by host name; the rest last.
    pub(crate) fn lines(&self) -> Vec<HostLine> {
        let inner = self.inner.lock().expect("host stats lock");
        let mut lines: Vec<HostLine> = inner
            .hosts
            .iter()
            .map(|(host, t)| t.line(host.clone()))
            .collect();
        lines.sort_by(|a, b| a.host.cmp(&b.host));
        if inner.rest.records + inner.rest.requests > 0 {
            lines.push(inner.rest.line("(other hosts)".into()));
        }
        lines
    }

    /// Write the lines to `file`, and return the human summary's lines about
    /// the slowest and the most failing hosts (when there are several).
    pub(crate) fn finish(&self, path: &Path, file: std::fs::File) -> anyhow::Result<Vec<String>> {
        let lines = self.lines();
        let mut out = std::io::BufWriter::new(file);
        for line in &lines {
            serde_json::to_writer(&mut out, line)?;
            out.write_all(b"\n")?;
        }
        out.flush()
            .with_context(|| format!("cannot write --host-stats '{}'", path.display()))?;
        Ok(notable(&lines))
    }
}

/// `trawl: slowest hosts (p50): a:443 812ms, ...` and the most failing ones.
fn notable(lines: &[HostLine]) -> Vec<String> {
    let hosts: Vec<&HostLine> = lines.iter().filter(|l| !l.host.starts_with('(')).collect();
    if hosts.len() < 2 {
        return Vec::new();
    }
    let mut text = Vec::new();
    let mut slow: Vec<&&HostLine> = hosts
        .iter()
        .filter(|l| l.latency_p50_ms.is_some())
        .collect();
    slow.sort_by(|a, b| {
        b.latency_p50_ms
            .partial_cmp(&a.latency_p50_ms)
            .expect("no NaN")
    });
    let named: Vec<String> = slow
        .iter()
        .take(3)
        .map(|l| format!("{} {}ms", l.host, l.latency_p50_ms.unwrap_or(0.0)))
        .collect();
    if !named.is_empty() {
        text.push(format!("trawl: slowest hosts (p50): {}", named.join(", ")));
    }
    let mut failing: Vec<&&HostLine> = hosts.iter().filter(|l| l.failed > 0).collect();
    failing.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.host.cmp(&b.host)));
    let named: Vec<String> = failing
        .iter()
        .take(3)
        .map(|l| format!("{} {} failed of {}", l.host, l.failed, l.records))
        .collect();
    if !named.is_empty() {
        text.push(format!("trawl: most failing hosts: {}", named.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(url: &str, ok: bool, ms: f64) -> Written<'_> {
        Written {
            url,
            ok,
            failure: (!ok).then_some(ErrorKind::HttpStatus),
            bytes: 10,
            latency_ms: Some(ms),
        }
    }

    #[test]
    fn hosts_are_tallied_and_percentiles_are_close() {
        let stats = HostStats::default();
        for i in 1..=100 {
            stats.record(record("http://a.test/x", true, i as f64));
            stats.attempt("a.test:80", Some(200));
        }
        stats.attempt("b.test:443", Some(429));
        stats.attempt("b.test:443", Some(503));
        stats.paused("b.test:443", Duration::from_millis(1500));
        stats.record(record("https://b.test/y", false, 3.0));
        let lines = stats.lines();
        assert_eq!(lines.len(), 2);
        let (a, b) = (&lines[0], &lines[1]);
        assert_eq!(
            (a.host.as_str(), a.records, a.requests, a.ok, a.bytes),
            ("a.test:80", 100, 100, 100, 1000)
        );
        let p50 = a.latency_p50_ms.unwrap();
        assert!((45.0..=56.0).contains(&p50), "{p50}");
        let p90 = a.latency_p90_ms.unwrap();
        assert!((81.0..=99.0).contains(&p90), "{p90}");
        assert_eq!(
            (b.requests, b.retries, b.status_429, b.status_503),
            (2, 1, 1, 1)
        );
        assert_eq!((b.pauses, b.paused_ms, b.failed), (1, 1500, 1));
        assert_eq!(b.failures[&ErrorKind::HttpStatus], 1);
        let said = notable(&lines);
        assert!(
            said[0].starts_with("trawl: slowest hosts (p50): a.test:80"),
            "{said:?}"
        );
        assert_eq!(
            said[1],
            "trawl: most failing hosts: b.test:443 1 failed of 1"
        );
    }

    #[test]
    fn hosts_past_the_cap_share_one_line() {
        let stats = HostStats::default();
        for i in 0..MOST_HOSTS + 5 {
            stats.record(record(&format!("http://h{i}.test/"), true, 1.0));
        }
        let lines = stats.lines();
        assert_eq!(lines.len(), MOST_HOSTS + 1);
        let rest = lines.last().unwrap();
        assert_eq!((rest.host.as_str(), rest.records), ("(other hosts)", 5));
    }
}
