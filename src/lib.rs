//! trawl: fetch big lists of URLs concurrently and politely, process every body off
//! the async runtime, and write one JSON line per input.
//!
//! The public surface is what the `trawl` binary, the integration tests and a
//! Rust caller need: parse arguments with [`Cli`] (clap) into an [`Action`]
//! holding a [`Config`], then [`run`] it with a [`Progress`] display (from
//! [`Config::progress`]) and a
//! [`Shutdown`] handle; the [`Outcome`] carries the [`Summary`] and the [`Exit`]
//! code. Records are [`Record`]s with [`ErrorKind`]s. [`demo`] is the offline demo
//! and its local server; [`parse`] is the input line parser; [`schema`] gives
//! the JSON Schemas of a record and of the summary. Everything else is
//! `pub(crate)`.

// Internals are pub(crate); the public surface is what the root re-exports.
#![warn(unreachable_pub)]

mod archive;
mod cli;
mod config;
pub mod demo;
mod failure;
mod fetch;
mod input;
mod output;
mod pipeline;
mod politeness;
mod process;
mod runs;
mod values;

pub use cli::Cli;
pub use config::{Action, Config};
pub use failure::ErrorKind;
pub use input::InputSpec;
pub use output::{
    Change, Progress, Record, RequestParts, RobotsCounts, Stop, Summary, WarcPointer,
};
pub use pipeline::Shutdown;
pub use runs::Merge;

/// JSON Schemas (draft 2020-12) of what trawl writes: one record, and the summary.
pub mod schema {
    pub use crate::output::{SCHEMA_VERSION, record_schema as record, summary_schema as summary};
}

/// A reader of WARC files (trawl's and others'): record by record, with each
/// one's offset and length; for the tests and for tools that check an archive.
pub mod warc {
    pub use crate::archive::{Packing, WarcRecord, whole_records};
}

/// The input line parser, for property tests and tools that read trawl's input.
pub mod parse {
    pub use crate::input::{Line, MAX_LINE, next_line, parse_line};
}

use std::sync::Arc;

use anyhow::Context;
use tokio::time::Instant;

use crate::fetch::Fetcher;
use crate::pipeline::{Ran, Stages};
use crate::politeness::Limits;

/// The process exit status, mapped in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every record ok, or failures within `--allow-failures`; also a closed stdout.
    Ok,
    /// More failures than `--allow-failures`.
    Failures,
    /// Usage error or a fatal error (unreadable input, unwritable output).
    Fatal,
    /// Ctrl-C.
    Interrupted,
    /// SIGTERM.
    Terminated,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failures => 1,
            Exit::Fatal => 2,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }
}

/// What a finished run reports.
pub struct Outcome {
    pub summary: Summary,
    pub exit: Exit,
    /// A fatal error met after the run started (input read, output write).
    pub error: Option<anyhow::Error>,
}

/// Run the whole pipeline: the checks, the stages, the exit code. Errors
/// returned here happen before anything is fetched (unreadable input,
/// uncreatable output) and mean exit 2.
pub async fn run(
    cfg: Arc<Config>,
    progress: Progress,
    shutdown: Arc<Shutdown>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (stages, reports) = prepare(&cfg, &progress).await?;
    let Ran {
        read,
        written,
        archive,
    } = pipeline::run(stages, progress.clone(), shutdown.clone()).await?;

    let stopped = if written.output_closed {
        Some(Stop::OutputClosed)
    } else {
        shutdown.reason()
    };
    let mut summary = written.stats.finish(started.elapsed(), stopped);
    summary.robots = reports
        .fetcher
        .robots_tally()
        .map(|t| output::RobotsCounts {
            origins: t.origins,
            unreachable: t.unreachable,
            allowed: t.allowed,
            disallowed: t.disallowed,
        });
    summary.exec_restarts = reports
        .exec_restarts
        .as_ref()
        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed));
    let (lines, print) = match &read {
        Ok(r) => (r.lines, r.print.clone()),
        Err(_) => (None, None),
    };
    let mut error = read.err().or(written.error).or(archive);
    // A list that could only be read once (stdin) is proved the resumed one here.
    let mixed = match (&reports.resumed, print.as_ref().and_then(|p| p.done)) {
        (Some((kept, files)), Some(found)) => {
            let files: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
            runs::check_list(*kept, found, &files, &runs::list_name(&cfg.inputs)).err()
        }
        _ => None,
    };
    // For `trawl merge`: which share this was, and how long the whole list is
    // (none when the output now holds two lists: merge must not call it whole).
    if let (Some(attempt), Some(main)) = (&reports.attempt, &cfg.outputs.main) {
        let list = print.map(|p| p.list);
        let written = match &mixed {
            None => attempt.end(main, lines, list, summary.elapsed_ms),
            Some(_) => runs::ShareFile::remove(main).map(|()| None),
        };
        match written {
            // A share run more than once: its summary covers all its attempts.
            Ok(Some((elapsed, span))) => summary.over_span(elapsed, span),
            Ok(None) => {}
            Err(e) => error = error.or(Some(e)),
        }
    }
    if let Some(e) = mixed {
        error = Some(e.context(
            "this run read its list only once, so it found this at its end: the records it appended are of the new list",
        ));
    }
    if let Some((path, file)) = reports.summary
        && let Err(e) = write_summary(path, file, &summary)
    {
        error = error.or(Some(e));
    }
    let mut notable = Vec::new();
    if let Some((path, file, hosts)) = reports.host_stats {
        match hosts.finish(&path, file) {
            Ok(lines) => notable = lines,
            Err(e) => error = error.or(Some(e)),
        }
    }
    if !cfg.ui.quiet && stopped != Some(Stop::OutputClosed) {
        progress.eprintln(&summary.to_string());
        notable.iter().for_each(|line| progress.eprintln(line));
    }
    let exit = match (&error, stopped) {
        (Some(_), _) => Exit::Fatal,
        (None, Some(Stop::Interrupted)) => Exit::Interrupted,
        (None, Some(Stop::Terminated)) => Exit::Terminated,
        (None, Some(Stop::OutputClosed)) => Exit::Ok,
        (None, None) if cfg.allow_failures.allows(summary.failed, summary.total) => Exit::Ok,
        (None, None) => Exit::Failures,
    };
    Ok(Outcome {
        summary,
        exit,
        error,
    })
}

/// The report files, created before the run and written after it.
struct Reports<'a> {
    /// For what it counted over the run (`--robots`).
    fetcher: Arc<Fetcher>,
    summary: Option<(&'a std::path::Path, std::fs::File)>,
    host_stats: Option<(
        std::path::PathBuf,
        std::fs::File,
        Arc<politeness::HostStats>,
    )>,
    /// `--resume`: the kept records' fingerprint and the files they are in, to
    /// check the list read against (it may have been read only once: stdin).
    resumed: Option<(input::Done, Vec<std::path::PathBuf>)>,
    /// A share's run (`--shard` with `-o`), for its share file.
    attempt: Option<runs::Attempt>,
    /// `--exec`: how many times workers were restarted.
    exec_restarts: Option<Arc<std::sync::atomic::AtomicU64>>,
}

/// Everything checked and opened before the first request: inputs, outputs
/// (never over an input), the `--save` directory, the summary file, the resume
/// state and the HTTP client. Any failure here is exit 2 with nothing fetched.
async fn prepare<'a>(
    cfg: &'a Arc<Config>,
    progress: &Progress,
) -> anyhow::Result<(Stages, Reports<'a>)> {
    for (name, why) in cli::bad_proxy_env() {
        tracing::warn!("{name} is not a usable proxy and is ignored, so requests go direct: {why}");
    }
    let warc = cfg
        .archive
        .iter()
        .flat_map(|a| a.targets())
        .collect::<Vec<_>>();
    output::refuse_to_overwrite_inputs(
        &cfg.inputs,
        &cfg.since,
        &cfg.outputs,
        cfg.process.save.as_deref(),
        &warc,
    )?;
    log_settings(cfg);
    let sources = input::open(&cfg.inputs).await?;
    let since = match cfg.since.is_empty() {
        true => None,
        false => Some(Arc::new(load_since(cfg.since.clone()).await?)),
    };
    let o = &cfg.outputs;
    let resume_files: Vec<&std::path::Path> = o
        .main
        .iter()
        .chain(&o.errors)
        .map(|p| p.as_path())
        .collect();
    if let (true, Some(main)) = (o.resume, &o.main) {
        runs::ShareFile::check_resume(main, cfg.shard)?;
    }
    // Read before resuming rewrites the output: a killed attempt's end is its last write.
    let attempt = match (cfg.shard, &o.main) {
        (Some(shard), Some(main)) => Some(runs::ShareFile::attempt(main, shard, o.resume)),
        _ => None,
    };
    let (resumed, resume_check) = match cfg.outputs.resume {
        true => {
            let resumed = runs::prepare_resume(&resume_files)?;
            runs::check_list_ahead(&cfg.inputs, &resumed, &resume_files).await?;
            let print = resumed.print;
            (Some(resumed), Some(print))
        }
        false => (None, None),
    };
    if let Some(r) = resumed.as_ref().filter(|r| r.dropped > 0) {
        tracing::info!(
            dropped = r.dropped,
            "resume: dropped torn, cancelled or duplicate lines"
        );
    }
    // Every path is checked (opened, the reports without emptying them) before
    // any output is truncated, so a bad late path loses nothing.
    if let Some(dir) = &cfg.process.save {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --save directory '{}'", dir.display()))?;
    }
    let summary_file = match &cfg.outputs.summary {
        Some(path) => Some((path.as_path(), output::open_report(path, "summary")?)),
        None => None,
    };
    let host_stats_file = match &cfg.outputs.host_stats {
        Some(path) => Some((path.clone(), output::open_report(path, "--host-stats")?)),
        None => None,
    };
    let outputs = output::Outputs::open(&cfg.outputs)?;
    for (path, file) in summary_file
        .iter()
        .map(|(p, f)| (*p, f))
        .chain(host_stats_file.iter().map(|(p, f)| (p.as_path(), f)))
    {
        output::empty(file, path)?;
    }
    let limits = Limits::new(&cfg.limits);
    progress.watch(limits.clone());
    let host_stats = host_stats_file
        .map(|(path, file)| (path, file, Arc::new(politeness::HostStats::default())));
    let fetcher = match &cfg.lookup {
        Some(lookup) => Fetcher::with_lookup(cfg.fetch.clone(), limits, lookup.0.clone()),
        None => Fetcher::new(cfg.fetch.clone(), limits),
    };
    // Last of the outputs: the archive's first file (after resume closed
    // what an earlier run left open).
    let archive = match &cfg.archive {
        Some(settings) => Some(Arc::new(archive::Archive::open(settings)?)),
        None => None,
    };
    let fetcher = fetcher
        .context("building the HTTP client")?
        .with_host_stats(host_stats.as_ref().map(|(_, _, s)| s.clone()))
        .with_archive(archive.as_ref().map(|a| a.sink()));
    let fetcher = Arc::new(fetcher);
    // Last of the checks: a worker that cannot start is exit 2, nothing fetched.
    let exec = match &cfg.process.exec {
        Some(settings) => Some(process::Pool::start(settings).await?),
        None => None,
    };
    let exec_restarts = exec.as_ref().map(|p| p.restarts());
    let stages = Stages {
        exec,
        archive,
        cfg: cfg.clone(),
        fetcher: fetcher.clone(),
        sources,
        outputs,
        resumed,
        since,
        host_stats: host_stats.as_ref().map(|(_, _, s)| s.clone()),
    };
    if let (Some(attempt), Some(main)) = (&attempt, &o.main) {
        attempt.begin(main)?;
    }
    let reports = Reports {
        exec_restarts,
        attempt,
        fetcher,
        summary: summary_file,
        host_stats,
        resumed: resume_check.map(|print| {
            let files = resume_files.iter().map(|p| p.to_path_buf()).collect();
            (print, files)
        }),
    };
    Ok((stages, reports))
}

/// Index the `--since` files (off the runtime: it reads them whole).
async fn load_since(paths: Vec<std::path::PathBuf>) -> anyhow::Result<runs::Since> {
    let (since, loaded) = tokio::task::spawn_blocking(move || runs::Since::load(&paths)).await??;
    if loaded.skipped > 0 {
        tracing::warn!(
            "--since: skipped {} lines that are not JSON records (a torn last line?)",
            loaded.skipped
        );
    }
    tracing::info!(urls = loaded.urls, "--since: indexed the previous run");
    Ok(since)
}

/// `-v`: the run's settings, once at the start.
fn log_settings(cfg: &Config) {
    tracing::info!(
        concurrency = cfg.limits.concurrency.get(),
        per_host = ?cfg.limits.per_host,
        rate = ?cfg.limits.rate.map(|r| format!("{}/{:?}", r.count, r.per)),
        host_rate = ?cfg.limits.host_rate.map(|r| format!("{}/{:?}", r.count, r.per)),
        retries = cfg.fetch.retries,
        timeout = ?cfg.fetch.timeout,
        connect_timeout = ?cfg.fetch.client.connect_timeout,
        hash = ?cfg.process.hash,
        proxy = cfg.fetch.client.proxy.is_some(),
        resolve = cfg.fetch.client.resolve.len(),
        ordered = cfg.outputs.ordered,
        shard = ?cfg.shard.map(|s| format!("{}/{} by {}", s.k, s.n, s.by)),
        "settings"
    );
}

fn write_summary(
    path: &std::path::Path,
    mut file: std::fs::File,
    summary: &Summary,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut text = serde_json::to_vec_pretty(summary)?;
    text.push(b'\n');
    file.write_all(&text)
        .with_context(|| format!("cannot write summary '{}'", path.display()))
}
