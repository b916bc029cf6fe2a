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
//! work go to the lanes: one long-lived blocking thread per core, taking what
//! waits in a short queue a batch at a time. What the lanes hold is counted
//! in a budget that a fetch takes before it hands its body over: per lane, two
//! large bodies or 2 MiB of small ones (see [`LaneBudget`]). So memory follows
//! `--concurrency` and the core count, never the CPU's SIMD width.

use std::sync::{Arc, Mutex, OnceLock};

use futures_util::StreamExt;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::body::Body;
use crate::config::Config;
use crate::failure::Failure;
use crate::fetch::{Fetcher, Report};
use crate::hash;
use crate::input::{self, Job, Source};
use crate::output::{self, Finished, Outputs, WriterSetup, Written};
use crate::process::{self, ProcessSettings};
use crate::progress::Progress;
use crate::record::{self, Record};
use crate::resume::{IndexSet, Resumed};
use crate::summary::Stop;
use crate::values::HashKind;
use crate::values::StatusSet;

/// A fetched body waiting for a processing lane. Its report still holds the
/// request's concurrency slot until a lane takes it, and `budget` is its share
/// of what the lanes may hold, so bodies in memory stay bounded by
/// `--concurrency` plus the lanes' budget.
struct Work {
    job: Job,
    report: Report,
    window: OwnedSemaphorePermit,
    _budget: OwnedSemaphorePermit,
}

/// What the processing lanes may hold (bodies waiting or being processed), in
/// units of 64 KiB: 2 MiB per lane. A body weighs its size in units, at least
/// one and at most [`LaneBudget::HEAVIEST`], so a lane holds two bodies of any
/// size, or many small ones (fewer hand-offs; a batch of small pages costs one
/// wake-up instead of one each).
struct LaneBudget {
    units: Arc<Semaphore>,
}

impl LaneBudget {
    const UNIT: usize = 64 * 1024;
    const HEAVIEST: usize = 16;
    const PER_LANE: usize = 2 * LaneBudget::HEAVIEST;

    fn new(lanes: usize) -> LaneBudget {
        LaneBudget {
            units: Arc::new(Semaphore::new(lanes * LaneBudget::PER_LANE)),
        }
    }

    /// Wait until the lanes have room for a body of `len` bytes.
    async fn room(&self, len: usize) -> OwnedSemaphorePermit {
        let weight = len
            .div_ceil(LaneBudget::UNIT)
            .clamp(1, LaneBudget::HEAVIEST);
        (self.units.clone().acquire_many_owned(weight as u32).await).expect("budget never closes")
    }
}

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

/// What turns a fetch into its record: the process stage's settings and the
/// statuses that count as ok.
struct Processing {
    settings: ProcessSettings,
    ok_status: StatusSet,
}

/// Where finished fetches go.
#[derive(Clone)]
struct Sinks {
    processing: Arc<Processing>,
    lanes: mpsc::Sender<Work>,
    budget: Arc<LaneBudget>,
    writer: mpsc::Sender<Finished>,
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
}

/// How the stages ended.
pub(crate) struct Ran {
    /// The number of jobs read, or why reading failed.
    pub read: anyhow::Result<u64>,
    pub written: Written,
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
    } = stages;
    let (earlier, carried) = match resumed {
        Some(r) => (Some(Arc::new(r.done)), r.stats),
        None => (None, Default::default()),
    };
    let skipped = earlier.as_ref().map_or(0, |d| d.len());
    let (to_writer, from_pipeline) =
        mpsc::channel(window_size(cfg.limits.concurrency.get()).min(4096));
    let closed = CancellationToken::new();
    let setup = WriterSetup {
        outputs,
        ordered: cfg.outputs.ordered,
        progress: progress.clone(),
        earlier: earlier.clone(),
        stats: carried,
    };
    let writer = output::spawn(setup, from_pipeline, closed.clone());
    let controls = Controls {
        halt: CancellationToken::new(),
        abort: CancellationToken::new(),
    };
    let supervisor = tokio::spawn(supervise(controls.clone(), shutdown, closed, cfg.grace));

    let (job_tx, job_rx) = mpsc::channel::<Job>(CHANNEL);
    // Long-lived lanes rather than a spawn_blocking per body: a finished lane
    // takes its next body at once instead of through three thread wake-ups
    // (permit, stage, pool); see the README's Performance section.
    let queue = cores() * LaneBudget::PER_LANE;
    let (work_tx, work_rx) = mpsc::channel::<Work>(queue);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let together = hash::Together::from_env();
    let processing = Arc::new(Processing {
        settings: cfg.process.clone(),
        ok_status: cfg.fetch.ok_status.clone(),
    });
    let lanes: Vec<_> = (0..cores())
        .map(|_| {
            let (p, work, tx) = (processing.clone(), work_rx.clone(), to_writer.clone());
            tokio::task::spawn_blocking(move || lane(&p, &work, &tx, together))
        })
        .collect();
    let sinks = Sinks {
        processing,
        lanes: work_tx,
        budget: Arc::new(LaneBudget::new(cores())),
        writer: to_writer,
    };
    let reader = tokio::spawn({
        let (halt, shard) = (controls.halt.clone(), cfg.shard);
        async move {
            let read = input::read_jobs(sources, job_tx, halt, shard).await;
            if let Ok(total) = &read {
                progress.set_total(total.saturating_sub(skipped));
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
    supervisor.abort();
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    Ok(Ran { read, written })
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

fn not_started(p: &Processing, job: Job) -> Finished {
    let report = match &job.request {
        Err(failure) => Report::failed(failure.clone()),
        Ok(_) => Report::failed(Failure::Cancelled(
            "not started: the run was stopped".into(),
        )),
    };
    Finished {
        record: record::assemble(&p.ok_status, job, report, None),
        place: None,
    }
}

async fn fetch_one(
    fetcher: Arc<Fetcher>,
    job: Job,
    window: OwnedSemaphorePermit,
    sinks: Sinks,
    controls: Controls,
) {
    let mut report = match &job.request {
        Err(failure) => Report::failed(failure.clone()),
        Ok(request) => tokio::select! {
            biased;
            _ = controls.abort.cancelled() => {
                Report::failed(Failure::Cancelled("in flight when the run was stopped".into()))
            }
            report = Box::pin(fetcher.fetch(request, &controls.halt)) => report,
        },
    };
    let p = &sinks.processing;
    let heavy = match &report.body {
        Ok(body) => process::needed(&p.settings) && !process::is_light(&p.settings, body.len()),
        Err(_) => false,
    };
    if heavy {
        let len = report.body.as_ref().map_or(0, |b| b.len());
        let budget = sinks.budget.room(len).await;
        let _ = sinks
            .lanes
            .send(Work {
                job,
                report,
                window,
                _budget: budget,
            })
            .await;
        return;
    }
    // Cheaper here than a hand-off to another thread (see the README's Performance).
    drop(report.slot.take());
    let record = processed(p, job, report, None);
    let _ = sinks
        .writer
        .send(Finished {
            record,
            place: Some(window),
        })
        .await;
}

/// A processing lane: runs on the blocking pool until the queue closes. It takes
/// every body waiting (fewer hand-offs), so that under load their SHA-256 may
/// be computed together.
fn lane(
    p: &Processing,
    work: &Mutex<mpsc::Receiver<Work>>,
    tx: &mpsc::Sender<Finished>,
    together: hash::Together,
) {
    let most = cores() * LaneBudget::PER_LANE;
    let mut batch = Vec::with_capacity(most);
    loop {
        take(work, &mut batch, most);
        if batch.is_empty() {
            return;
        }
        // Handed over: the requests' concurrency slots can go to the next ones.
        batch.iter_mut().for_each(|w| drop(w.report.slot.take()));
        let digests = sha256_together(&p.settings, &batch, together);
        for (work, sha256) in batch.drain(..).zip(digests) {
            let record = processed(p, work.job, work.report, sha256);
            let done = Finished {
                record,
                place: Some(work.window),
            };
            if tx.blocking_send(done).is_err() {
                return;
            }
        }
    }
}

/// Wait for the next body, then take the others already waiting, up to a batch.
/// Taking all of them beat taking only this lane's share (fewer wake-ups, more
/// hashed together; see the README's Performance section). The price: the last
/// batch of a run may be processed by one lane while another is idle.
/// Leaves `batch` empty once the queue is closed and drained.
fn take(work: &Mutex<mpsc::Receiver<Work>>, batch: &mut Vec<Work>, most: usize) {
    // A lane waiting for work holds the lock; the others wait for it.
    let mut queue = work.lock().unwrap_or_else(|e| e.into_inner());
    let Some(first) = queue.blocking_recv() else {
        return;
    };
    batch.push(first);
    while batch.len() < most {
        match queue.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
}

/// The SHA-256 of each body in the batch when `--hash sha256` asks for it and
/// there is more than one; `None` leaves hashing to `process`, one body at a time
/// (also if hashing together panicked: each body then fails on its own).
fn sha256_together(
    settings: &ProcessSettings,
    batch: &[Work],
    mode: hash::Together,
) -> Vec<Option<String>> {
    let bodies: Option<Vec<&Body>> = batch.iter().map(|w| w.report.body.as_ref().ok()).collect();
    if settings.hash == HashKind::Sha256
        && batch.len() > 1
        && let Some(bodies) = bodies
        && let Ok(digests) = guarded(|| hash::sha256_hex_many(&bodies, mode))
    {
        return digests.into_iter().map(Some).collect();
    }
    vec![None; batch.len()]
}

/// The record of a fetch: the body processed (if there is one and anything to
/// do); a panic in processing becomes a `process` failure in the record.
/// `sha256`: the body's digest if it was already computed with others.
fn processed(p: &Processing, job: Job, report: Report, sha256: Option<String>) -> Record {
    let result = match &report.body {
        Ok(body) if process::needed(&p.settings) => {
            let content_type = report.head.as_ref().and_then(|h| h.content_type.as_deref());
            let accepted = report
                .head
                .as_ref()
                .is_some_and(|h| p.ok_status.contains(h.status.as_u16()));
            guarded(|| process::process(&p.settings, content_type, accepted, body, sha256))
                .and_then(|r| r)
        }
        _ => return record::assemble(&p.ok_status, job, report, None),
    };
    record::assemble(&p.ok_status, job, report, Some(result))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Run CPU work here; a panic in it becomes a `process` failure.
pub(crate) fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(panic_failure)
}

fn panic_failure(payload: Box<dyn std::any::Any + Send>) -> Failure {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Failure::Process(format!("processing panicked: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::ErrorKind;

    #[test]
    fn a_panic_in_processing_becomes_a_process_failure() {
        let failure = guarded(|| -> u8 { panic!("light body") }).unwrap_err();
        assert_eq!(failure.kind(), ErrorKind::Process);
        assert!(failure.to_string().contains("light body"), "{failure}");
        assert_eq!(guarded(|| 7).unwrap(), 7);
    }

    /// Guards the memory bound: the lanes hold two large bodies per lane
    /// whatever the CPU, and many small ones.
    #[tokio::test(start_paused = true)]
    async fn the_lanes_budget_holds_two_large_bodies_per_lane() {
        let budget = LaneBudget::new(2);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(budget.room(16 << 20).await);
        }
        let fifth = tokio::time::timeout(std::time::Duration::from_secs(1), budget.room(1 << 20));
        assert!(fifth.await.is_err(), "a fifth large body must wait");
        held.pop();
        let _ = budget.room(1 << 20).await;
        drop(held);
        let small: Vec<_> =
            futures_util::future::join_all((0..64).map(|_| budget.room(10_000))).await;
        assert_eq!(small.len(), 64, "64 small bodies fit at once");
    }
}
