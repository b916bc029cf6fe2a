//! The one place that wires the stages: input reader -> fetch drivers -> process
//! lanes -> writer, connected by bounded channels, and the supervisor that turns
//! a shutdown or a dead output into stops. A closed channel is the next stage's
//! signal to finish.
//!
//! Every job holds a place in the `window` semaphore from the moment it is read
//! until its record is written. That one bound keeps memory flat however long
//! the input is, and bounds the reorder buffer of `--ordered`.
//!
//! Fetches run as futures polled by one driver task per core. A fetch writes
//! its record itself when processing is cheaper than a hand-off (a failure,
//! nothing to process, a small body to hash); only bodies that need real CPU
//! work go to the lanes (`lanes.rs`), whose budget bounds the bodies they hold.

use std::sync::{Arc, Mutex, OnceLock};

use futures_util::StreamExt;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::archive::Archive;
use crate::config::Config;
use crate::failure::Failure;
use crate::fetch::Tap;
use crate::fetch::{Fetcher, Report};
use crate::input::{self, Job, Source};
use crate::output::Progress;
use crate::output::Record;
use crate::output::Stop;
use crate::output::{self, Finished, Outputs, ToWriter, WriterSetup, Written};
use crate::politeness::HostStats;
use crate::process;
use crate::process::{
    LaneBudget, Processing, Task, Work, cores, lane, not_started, processed, unmodified,
};
use crate::runs::Resumed;
use crate::runs::{self, Since};
use crate::values::HashKind;
use crate::values::IndexSet;

/// Stop controls shared by the stages.
#[derive(Clone)]
pub(crate) struct Controls {
    /// Stop reading input and starting requests.
    pub halt: CancellationToken,
    /// Abandon requests in flight (`cancelled` records).
    pub abort: CancellationToken,
}

/// Jobs read ahead of the fetch stage, and the writer's queue.
const CHANNEL: usize = 1024;

/// How many jobs may be between "read" and "written" at once.
pub(crate) fn window_size(concurrency: usize) -> usize {
    concurrency * 4 + 1024
}

/// Where finished fetches go.
#[derive(Clone)]
struct Sinks {
    processing: Arc<Processing>,
    lanes: mpsc::Sender<Task>,
    /// Hashes large bodies as they arrive (unless `--hash none`).
    tap: Option<Tap>,
    budget: Arc<LaneBudget>,
    writer: ToWriter,
}

/// A request to stop, from a signal or a test.
#[derive(Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: OnceLock<Stop>,
}

impl Shutdown {
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// Ask the run to stop; returns false if a stop was already requested.
    pub fn trigger(&self, reason: Stop) -> bool {
        let first = self.reason.set(reason).is_ok();
        self.token.cancel();
        first
    }

    pub fn reason(&self) -> Option<Stop> {
        self.reason.get().copied()
    }
}

/// What the stages are made of, opened and checked before the run.
pub(crate) struct Stages {
    pub cfg: Arc<Config>,
    pub fetcher: Arc<Fetcher>,
    pub sources: Vec<Source>,
    pub outputs: Outputs,
    /// What an earlier run left (`--resume`).
    pub resumed: Option<Resumed>,
    /// The previous run to compare with (`--since`).
    pub since: Option<Arc<Since>>,
    /// `--host-stats`.
    pub host_stats: Option<Arc<HostStats>>,
    /// `--exec`: the workers, started before the first fetch.
    pub exec: Option<process::Pool>,
    /// `--warc`: the archive, its first file open.
    pub archive: Option<Arc<Archive>>,
}

/// How the stages ended.
pub(crate) struct Ran {
    /// The number of jobs read, or why reading failed.
    pub read: anyhow::Result<input::Read>,
    pub written: Written,
    /// `--warc`: why the archive could not be written or closed.
    pub archive: Option<anyhow::Error>,
}

/// Run every stage to completion: the reader, the fetch drivers, the lanes, the
/// writer, and the supervisor that turns a shutdown or a dead output into stops.
pub(crate) async fn run(
    stages: Stages,
    progress: Progress,
    shutdown: Arc<Shutdown>,
) -> anyhow::Result<Ran> {
    let Stages {
        cfg,
        fetcher,
        sources,
        outputs,
        resumed,
        since,
        host_stats,
        exec,
        archive,
    } = stages;
    let exec = exec.map(Arc::new);
    let (earlier, carried) = match resumed {
        Some(r) => (Some(Arc::new(r.done)), r.stats),
        None => (None, Default::default()),
    };
    let skipped = earlier.as_ref().map_or(0, |d| d.len());
    let (to_writer, from_pipeline) =
        output::queue(window_size(cfg.limits.concurrency.get()).min(4096));
    let closed = CancellationToken::new();
    let setup = WriterSetup {
        outputs,
        ordered: cfg.outputs.ordered,
        progress: progress.clone(),
        earlier: earlier.clone(),
        stats: carried,
        host_stats,
    };
    let writer = output::spawn(setup, from_pipeline, closed.clone());
    let controls = Controls {
        halt: CancellationToken::new(),
        abort: CancellationToken::new(),
    };
    // An archive that cannot be written stops the run as a dead output does.
    if let Some(archive) = &archive {
        let (broken, closed) = (archive.broken(), closed.clone());
        tokio::spawn(async move {
            broken.cancelled().await;
            closed.cancel();
        });
    }
    let supervisor = tokio::spawn(supervise(controls.clone(), shutdown, closed, cfg.grace));

    let (job_tx, job_rx) = mpsc::channel::<Job>(CHANNEL);
    // Long-lived lanes rather than a spawn_blocking per body: a finished lane
    // takes its next body at once instead of through three thread wake-ups
    // (permit, stage, pool); see the README's Performance section.
    let queue = cores() * LaneBudget::PER_LANE;
    let (work_tx, work_rx) = mpsc::channel::<Task>(queue);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let together = process::Together::from_env();
    let processing = Arc::new(Processing {
        settings: cfg.process.clone(),
        ok_status: cfg.fetch.ok_status.clone(),
        since,
        exec: exec.clone(),
        archive: archive.clone(),
    });
    let lanes: Vec<_> = (0..cores())
        .map(|_| {
            let (p, work, tx) = (processing.clone(), work_rx.clone(), to_writer.clone());
            tokio::task::spawn_blocking(move || lane(&p, &work, &tx, together))
        })
        .collect();
    let tap = (cfg.process.hash != HashKind::None).then(|| Tap {
        kind: cfg.process.hash,
        // `--warc` archives every byte: none is let go once hashed.
        keep: process::needs_whole_body(&cfg.process)
            || cfg.process.save.is_some()
            || cfg.archive.is_some(),
        join: cfg.process.hash == HashKind::Sha256 && process::hash_group(together).is_some(),
        lanes: {
            let lanes = work_tx.clone();
            Arc::new(move |piece| {
                let lanes = lanes.clone();
                Box::pin(async move {
                    let _ = lanes.send(Task::Piece(piece)).await;
                })
            })
        },
    });
    let sinks = Sinks {
        processing,
        tap,
        lanes: work_tx,
        budget: Arc::new(LaneBudget::new(cores())),
        writer: to_writer,
    };
    let reader = tokio::spawn({
        let (halt, shard, done) = (controls.halt.clone(), cfg.shard, earlier.clone());
        async move {
            let read = input::read_jobs(sources, Some(job_tx), halt, shard, done).await;
            if let Ok(read) = &read {
                progress.set_total(read.jobs.saturating_sub(skipped));
            }
            read
        }
    });
    let feed = Feed {
        jobs: tokio::sync::Mutex::new(job_rx),
        window: Arc::new(Semaphore::new(window_size(cfg.limits.concurrency.get()))),
        halt: controls.halt.clone(),
        earlier,
    };
    let fetch = tokio::spawn(fetch_stage(fetcher, feed, sinks, controls));

    let read = reader.await?;
    fetch.await?;
    for lane in lanes {
        lane.await?;
    }
    // Every lane is done with the workers: EOF, grace, SIGTERM (`exec.rs`).
    if let Some(pool) = exec.and_then(Arc::into_inner) {
        pool.close().await;
    }
    supervisor.abort();
    // Every record is in: the last file gets its index and its final name.
    let archive = match archive {
        Some(archive) => tokio::task::spawn_blocking(move || archive.finish())
            .await?
            .err()
            .map(anyhow::Error::msg),
        None => None,
    };
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    Ok(Ran {
        read,
        written,
        archive,
    })
}

/// Turn a shutdown request or a dead output into the stage controls: stop reading
/// at once; give requests in flight `grace` to finish (none if the output is gone).
async fn supervise(
    controls: Controls,
    shutdown: Arc<Shutdown>,
    closed: CancellationToken,
    grace: std::time::Duration,
) {
    tokio::select! {
        _ = shutdown.token.cancelled() => {
            controls.halt.cancel();
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = closed.cancelled() => {}
            }
        }
        _ = closed.cancelled() => controls.halt.cancel(),
    }
    controls.abort.cancel();
}

/// The fetch stage: one driver task per core, each running its share of the
/// fetches as futures it polls itself: a spawned task per fetch is woken across
/// threads for each step of its request, which cost more CPU, and one driver
/// alone was slower than one per core (figures in the README's Performance).
async fn fetch_stage(fetcher: Arc<Fetcher>, feed: Feed, sinks: Sinks, controls: Controls) {
    let feed = Arc::new(feed);
    let drivers: Vec<_> = (0..cores())
        .map(|_| {
            tokio::spawn(drive(
                fetcher.clone(),
                feed.clone(),
                sinks.clone(),
                controls.clone(),
            ))
        })
        .collect();
    for driver in drivers {
        let _ = driver.await;
    }
    // Stopped: every job already read still gets its one record.
    let mut jobs = feed.jobs.lock().await;
    jobs.close();
    while let Some(job) = jobs.recv().await {
        if !feed.finished_earlier(&job) {
            let _ = sinks.writer.send(not_started(&sinks.processing, job)).await;
        }
    }
}

/// Where drivers take their next job from.
struct Feed {
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    window: Arc<Semaphore>,
    halt: CancellationToken,
    /// Inputs finished by an earlier run (`--resume`): skipped.
    earlier: Option<Arc<IndexSet>>,
}

impl Feed {
    fn finished_earlier(&self, job: &Job) -> bool {
        self.earlier.as_ref().is_some_and(|d| d.contains(job.index))
    }

    /// The next job to fetch with its place in the window; `None` at the end of
    /// the input or once the run is stopped. The place is taken first, so a job
    /// is never received and then dropped.
    async fn next(&self) -> Option<(Job, OwnedSemaphorePermit)> {
        let place = tokio::select! {
            biased;
            _ = self.halt.cancelled() => return None,
            place = self.window.clone().acquire_owned() => place.expect("window semaphore never closes"),
        };
        let mut jobs = tokio::select! {
            biased;
            _ = self.halt.cancelled() => return None,
            jobs = self.jobs.lock() => jobs,
        };
        loop {
            let job = tokio::select! {
                biased;
                _ = self.halt.cancelled() => return None,
                job = jobs.recv() => job?,
            };
            if !self.finished_earlier(&job) {
                return Some((job, place));
            }
        }
    }
}

/// Run fetches as they come until the feed ends and every fetch has finished.
async fn drive(fetcher: Arc<Fetcher>, feed: Arc<Feed>, sinks: Sinks, controls: Controls) {
    let mut running = futures_util::stream::FuturesUnordered::new();
    let mut next = Some(Box::pin(feed.next()));
    loop {
        tokio::select! {
            Some(()) = running.next(), if !running.is_empty() => {}
            job = async { next.as_mut().expect("guarded by the if").await }, if next.is_some() => {
                match job {
                    Some((job, place)) => {
                        running.push(fetch_one(fetcher.clone(), job, place, sinks.clone(), controls.clone()));
                        next = Some(Box::pin(feed.next()));
                    }
                    None => next = None,
                }
            }
            else => return,
        }
    }
}

async fn fetch_one(
    fetcher: Arc<Fetcher>,
    job: Job,
    window: OwnedSemaphorePermit,
    sinks: Sinks,
    controls: Controls,
) {
    let p = &sinks.processing;
    let prev = match (&p.since, &job.request) {
        (Some(since), Ok(request)) => since.lookup(request.url.as_str()).map(Box::new),
        _ => None,
    };
    let (mut report, asked) = send(&fetcher, &job, prev.as_deref(), &sinks, &controls).await;
    let not_modified = asked && report.head.as_ref().is_some_and(|h| h.status == 304);
    let heavy = match &report.body {
        Ok(body) => process::needed(&p.settings) && !process::is_light(&p.settings, body.len()),
        Err(_) => false,
    };
    // `--warc`: building the records is CPU work, for the lanes.
    let heavy = heavy || (p.archive.is_some() && !report.exchanges.is_empty());
    let record = match (not_modified, prev) {
        (true, Some(prev)) => {
            drop(report.slot.take());
            let exchanges = std::mem::take(&mut report.exchanges);
            let written = process::archive_async(p, exchanges, true).await;
            let mut record = unmodified(p, job, report, &prev).await;
            process::archived(&mut record, written);
            record
        }
        (_, prev) if heavy => {
            let held = report.body.as_ref().map_or(0, |b| b.held());
            let budget = sinks.budget.room(held).await;
            let work = Work {
                job,
                report,
                prev,
                window,
                _budget: budget,
            };
            let _ = sinks.lanes.send(Task::Work(Box::new(work))).await;
            return;
        }
        (_, prev) => {
            // Cheaper here than a hand-off to another thread (see the README's Performance).
            drop(report.slot.take());
            processed(p, job, report, None, prev.as_deref())
        }
    };
    let place = Some(window);
    let _ = sinks.writer.send(Finished { record, place }).await;
}

/// Make the job's request, conditional on `prev`'s validators when it is a
/// plain GET (`--since`); abandoned when the run is aborted. Also says whether
/// the request was conditional.
async fn send(
    fetcher: &Fetcher,
    job: &Job,
    prev: Option<&Record>,
    sinks: &Sinks,
    controls: &Controls,
) -> (Report, bool) {
    let request = match &job.request {
        Err(failure) => return (Report::failed(failure.clone()), false),
        Ok(request) => request,
    };
    let conditional = prev
        .filter(|_| fetcher.sends_plain_get(request))
        .and_then(runs::conditional);
    let asked = conditional.is_some();
    let request = match conditional {
        Some(headers) => {
            let mut request = request.clone();
            for (name, value) in &headers {
                // A request object's own header wins.
                request.headers.entry(name).or_insert(value.clone());
            }
            std::borrow::Cow::Owned(request)
        }
        None => std::borrow::Cow::Borrowed(request),
    };
    let report = tokio::select! {
        biased;
        _ = controls.abort.cancelled() => {
            Report::failed(Failure::Cancelled("in flight when the run was stopped".into()))
        }
        report = Box::pin(fetcher.fetch(&request, &controls.halt, sinks.tap.as_ref())) => report,
    };
    (report, asked)
}
