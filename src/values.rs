//! Values of the command-line contract and their parsers: rates, durations,
//! sizes, status sets and failure thresholds. They import nothing from
//! the crate, so the parser (`cli.rs`), the configuration and the stages can
//! all use them.

use std::num::NonZeroU32;
use std::time::Duration;

/// `count` request starts per `per`, spread evenly over that period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// The gap between two request starts.
    pub fn interval(&self) -> Duration {
        self.per / self.count.get()
    }
}

/// Accepted HTTP statuses, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// How many failures a run may have and still exit 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    Percent(f64),
}

impl Threshold {
    pub fn allows(&self, failed: u64, total: u64) -> bool {
        match *self {
            Threshold::Count(n) => failed <= n,
            Threshold::Percent(p) => total == 0 || (failed as f64) * 100.0 <= p * (total as f64),
        }
    }
}

/// `100`, `100/s`, `600/m`, `5/15s`, `10/500ms`, `3600/h`.
pub(crate) fn parse_rate(s: &str) -> Result<Rate, String> {
    let s = s.trim();
    let (count, per) = match s.split_once('/') {
        None => (s, Duration::from_secs(1)),
        Some((count, unit)) => {
            let per = match unit {
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                other => parse_duration(other)
                    .map_err(|e| format!("invalid rate period '{other}': {e}"))?,
            };
            (count, per)
        }
    };
    let count: u32 = count.parse().map_err(|_| {
        format!("invalid rate '{s}': expected N, N/s, N/m, N/h or N/DURATION such as 5/15s")
    })?;
    let count = NonZeroU32::new(count).ok_or_else(|| "rate must be above zero".to_owned())?;
    if per.is_zero() {
        return Err("rate period must be above zero".to_owned());
    }
    Ok(Rate { count, per })
}

/// `250ms`, `1s`, `2m`, `1h 30m`; a bare number means seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|e| format!("invalid duration '{s}': {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration '{s}': {e} (try 250ms, 10s, 2m)"))
}

/// `1048576`, `500KB`, `1MiB`, `2 GB`.
pub(crate) fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s.trim())
        .map_err(|e| format!("invalid size '{s}': {e} (try 500KB, 16MiB)"))
}

/// `200`, `200-299`, `2xx`, comma-separated.
/// A robots.txt product token (`--robots-agent`): letters, `_` and `-` only (RFC 9309 2.2.1).
pub(crate) fn parse_token(s: &str) -> Result<String, String> {
    match !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-')
    {
        true => Ok(s.to_owned()),
        false => Err(format!(
            "'{s}' is not a product token: use letters, '_' and '-' only (e.g. XBot)"
        )),
    }
}

pub(crate) fn parse_status_set(s: &str) -> Result<StatusSet, String> {
    let mut ranges = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid status '{part}': expected 200, 200-299 or 2xx");
        let range = if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX"))
        {
            let c: u16 = class.parse().map_err(|_| bad())?;
            if !(1..=5).contains(&c) {
                return Err(bad());
            }
            (c * 100, c * 100 + 99)
        } else if let Some((lo, hi)) = part.split_once('-') {
            (
                lo.trim().parse().map_err(|_| bad())?,
                hi.trim().parse().map_err(|_| bad())?,
            )
        } else {
            let code: u16 = part.parse().map_err(|_| bad())?;
            (code, code)
        };
        if range.0 > range.1 || range.0 < 100 || range.1 > 999 {
            return Err(bad());
        }
        ranges.push(range);
    }
    if ranges.is_empty() {
        return Err("--ok-status needs at least one status".to_owned());
    }
    Ok(StatusSet(ranges))
}

/// `10` (failures) or `2.5%` (of all records).
pub(crate) fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("invalid percentage '{s}'"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("percentage '{s}' must be between 0% and 100%"));
        }
        Ok(Threshold::Percent(p))
    } else {
        s.parse()
            .map(Threshold::Count)
            .map_err(|_| format!("invalid failure threshold '{s}': expected N or P%"))
    }
}

/// Milliseconds with microsecond precision, for `elapsed_ms` and `ttfb_ms`.
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// A growable set of input indices (one bit each: 1M inputs take 128 KiB).
#[derive(Debug, Default, Clone)]
pub(crate) struct IndexSet {
    words: Vec<u64>,
    len: u64,
}

impl IndexSet {
    pub(crate) fn insert(&mut self, index: u64) -> bool {
        let (word, bit) = ((index / 64) as usize, index % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & (1 << bit) == 0;
        self.words[word] |= 1 << bit;
        self.len += u64::from(fresh);
        fresh
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        let word = (index / 64) as usize;
        word < self.words.len() && self.words[word] & (1 << (index % 64)) != 0
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r = parse_rate("100").unwrap();
        assert_eq!(r.interval(), Duration::from_millis(10));
        assert_eq!(
            parse_rate("600/m").unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            parse_rate("5/15s").unwrap().interval(),
            Duration::from_secs(3)
        );
        assert_eq!(parse_rate("100/s").unwrap().count.get(), 100);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5/0s").is_err());
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size_arg("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size_arg("500KB").unwrap(), 500_000);
        assert!(parse_size_arg("lots").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn status_sets_parse() {
        let s = parse_status_set("2xx,304,400-404").unwrap();
        assert!(s.contains(204) && s.contains(304) && s.contains(404));
        assert!(!s.contains(301) && !s.contains(500));
        assert!(parse_status_set("9xx").is_err());
        assert!(parse_status_set("300-200").is_err());
    }

    #[test]
    fn thresholds() {
        assert!(parse_threshold("0").unwrap().allows(0, 10));
        assert!(!parse_threshold("0").unwrap().allows(1, 10));
        assert!(parse_threshold("10%").unwrap().allows(1, 10));
        assert!(!parse_threshold("10%").unwrap().allows(2, 10));
        assert!(parse_threshold("x%").is_err());
    }
}

/// The digest of each body (`--hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashKind {
    Sha256,
    Blake3,
    None,
}

/// Log line format on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
