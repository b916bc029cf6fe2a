//! Run totals: accumulated by the writer one record at a time, rendered as the
//! human summary on stderr and as the `--summary` JSON file.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::record::{Change, Record};
use crate::failure::ErrorKind;

/// Why a run ended before its input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Ctrl-C (SIGINT).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// The reader of stdout went away (`| head`).
    OutputClosed,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The version of the `--summary` document. Within one major version changes
/// are additive only: new fields, never a field removed or changed in meaning.
pub const SCHEMA_VERSION: &str = "1.2";

/// `--robots` over the run: the origins whose robots.txt was read, those that
/// were unreachable (so all their URLs were disallowed), and the inputs and
/// redirect hops it allowed and disallowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RobotsCounts {
    pub origins: u64,
    pub unreachable: u64,
    pub allowed: u64,
    pub disallowed: u64,
}

/// The `--summary` document.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// [`SCHEMA_VERSION`]: "MAJOR.MINOR".
    pub schema_version: &'static str,
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub by_error: BTreeMap<ErrorKind, u64>,
    pub bytes: u64,
    /// Wall-clock time: of the run; of a share run more than once (`--resume`),
    /// from its first attempt's start to its last one's end; of `trawl merge`,
    /// from the first share's start to the last one's end.
    pub elapsed_ms: f64,
    /// `total` over `elapsed_ms`.
    pub requests_per_sec: f64,
    /// A share run more than once, or a merge: the time actually spent
    /// running, the attempts' or the shares' times added up (waits between
    /// attempts left out, shares side by side each counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_ms: Option<f64>,
    /// Over records that made at least one request, in milliseconds.
    pub latency_ms: Latency,
    /// `--since` runs: records by how they compare with the previous run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// `trawl merge --partial` of an incomplete fleet: this covers only what
    /// the parts hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<bool>,
    /// `--robots` runs: what robots.txt said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub robots: Option<RobotsCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stop>,
    /// `--exec` runs: how many times a worker was restarted (after it
    /// crashed, answered what is not JSON, or took too long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_restarts: Option<u64>,
}

/// Records of a `--since` run by [`Change`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Changes {
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub broken: u64,
}

/// Accumulates records as they are written.
pub(crate) struct Stats {
    total: u64,
    ok: u64,
    by_status: BTreeMap<u16, u64>,
    by_error: BTreeMap<ErrorKind, u64>,
    bytes: u64,
    latency_us: hdrhistogram::Histogram<u64>,
    changes: Option<Changes>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            total: 0,
            ok: 0,
            by_status: BTreeMap::new(),
            by_error: BTreeMap::new(),
            bytes: 0,
            latency_us: hdrhistogram::Histogram::new_with_bounds(1, 24 * 3600 * 1_000_000, 3)
                .expect("valid bounds"),
            changes: None,
        }
    }
}

impl Stats {
    pub(crate) fn add(&mut self, r: &Record) {
        self.total += 1;
        self.ok += u64::from(r.ok);
        if let Some(status) = r.status {
            *self.by_status.entry(status).or_default() += 1;
        }
        if let Some(kind) = r.error_kind() {
            *self.by_error.entry(kind).or_default() += 1;
        }
        self.bytes += r.bytes.unwrap_or(0);
        if let Some(change) = r.change {
            let c = self.changes.get_or_insert_default();
            *match change {
                Change::New => &mut c.new,
                Change::Changed => &mut c.changed,
                Change::Unchanged => &mut c.unchanged,
                Change::Broken => &mut c.broken,
            } += 1;
        }
        if r.attempts.unwrap_or(0) > 0
            && let Some(ms) = r.elapsed_ms
        {
            self.latency_us.saturating_record((ms * 1000.0) as u64);
        }
    }

    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn finish(&self, elapsed: Duration, stopped: Option<Stop>) -> Summary {
        let q = |p: f64| self.latency_us.value_at_quantile(p) as f64 / 1000.0;
        let secs = elapsed.as_secs_f64();
        Summary {
            schema_version: SCHEMA_VERSION,
            total: self.total,
            ok: self.ok,
            failed: self.total - self.ok,
            by_status: self.by_status.clone(),
            by_error: self.by_error.clone(),
            bytes: self.bytes,
            elapsed_ms: crate::values::millis(elapsed),
            requests_per_sec: if secs > 0.0 {
                (self.total as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            },
            work_ms: None,
            latency_ms: Latency {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                max: self.latency_us.max() as f64 / 1000.0,
            },
            changes: self.changes,
            robots: None,
            partial: None,
            stopped,
            exec_restarts: None,
        }
    }
}

impl Summary {
    /// Cover several runs: `elapsed_ms` is the wall clock from the first
    /// start to the last end (`span_ms`), and the rate is over it; `work_ms`
    /// their running times added up. Over the span, shares side by side are
    /// not counted twice, and a killed attempt's time, which nobody
    /// measured, is inside it.
    pub(crate) fn over_span(&mut self, work_ms: f64, span_ms: f64) {
        self.elapsed_ms = span_ms;
        self.work_ms = Some(work_ms);
        self.requests_per_sec = match span_ms > 0.0 {
            true => (self.total as f64 / (span_ms / 1000.0) * 10.0).round() / 10.0,
            false => 0.0,
        };
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trawl: {} records, {} ok, {} failed in {:.2}s{} ({:.1}/s), {} bytes; latency p50 {:.1}ms p90 {:.1}ms p99 {:.1}ms",
            self.total,
            self.ok,
            self.failed,
            self.elapsed_ms / 1000.0,
            match self.work_ms {
                Some(work) => format!(", {:.2}s of work", work / 1000.0),
                None => String::new(),
            },
            self.requests_per_sec,
            self.bytes,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
        )?;
        if !self.by_error.is_empty() {
            let errors: Vec<String> = self
                .by_error
                .iter()
                .map(|(k, n)| format!("{} {n}", k.as_str()))
                .collect();
            write!(f, "\ntrawl: failures by kind: {}", errors.join(", "))?;
        }
        if let Some(n) = self.exec_restarts.filter(|&n| n > 0) {
            write!(f, "\ntrawl: --exec workers restarted {n} times")?;
        }
        if let Some(c) = &self.changes {
            write!(
                f,
                "\ntrawl: since the previous run: {} new, {} changed, {} unchanged, {} broken",
                c.new, c.changed, c.unchanged, c.broken
            )?;
        }
        if let Some(r) = &self.robots {
            write!(
                f,
                "\ntrawl: robots.txt of {} origins ({} unreachable): {} allowed, {} disallowed",
                r.origins, r.unreachable, r.allowed, r.disallowed
            )?;
        }
        match self.stopped {
            Some(Stop::Interrupted) => write!(
                f,
                "\ntrawl: interrupted; inputs not yet read have no record (re-run with --resume)"
            ),
            Some(Stop::Terminated) => write!(
                f,
                "\ntrawl: terminated; inputs not yet read have no record (re-run with --resume)"
            ),
            _ => Ok(()),
        }
    }
}
