//! Wiring only: input reader -> fetch stage -> process stage -> writer, connected by
//! bounded channels. A closed channel is the next stage's signal to finish.
//!
//! Every job holds a slot of the `window` semaphore from the moment it is read
//! until its record is written. That one bound keeps memory flat however long
//! the input is, and bounds the reorder buffer of `--ordered`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::cli::Config;
use crate::fetch::{Fetcher, Report};
use crate::input::{self, Job, Source};
use crate::output::Done;
use crate::process;
use crate::record::{self, Failure};
use crate::resume::IndexSet;

/// A fetched job on its way to processing.
struct Fetched {
    job: Job,
    report: Report,
    slot: Option<OwnedSemaphorePermit>,
}

/// Stop controls shared by the stages.
#[derive(Clone)]
pub struct Controls {
    /// Stop reading input and starting requests.
    pub halt: CancellationToken,
    /// Abandon requests in flight (`cancelled` records).
    pub abort: CancellationToken,
}

/// Jobs read ahead of the fetch stage, and the writer's queue.
const CHANNEL: usize = 1024;

/// How many jobs may be between "read" and "written" at once.
pub fn window_size(cfg: &Config) -> usize {
    cfg.concurrency.get() * 4 + 1024
}

/// Run every stage to completion. Returns the number of jobs read.
pub async fn run(
    cfg: Arc<Config>,
    fetcher: Arc<Fetcher>,
    sources: Vec<Source>,
    to_writer: mpsc::Sender<Done>,
    controls: Controls,
    done: Option<Arc<IndexSet>>,
    on_total: impl FnOnce(u64) + Send + 'static,
) -> anyhow::Result<u64> {
    let (job_tx, job_rx) = mpsc::channel::<Job>(CHANNEL);
    // Fetched bodies wait here still holding their concurrency slot, so bodies in
    // memory stay bounded by --concurrency whatever this depth (a throughput knob).
    let (fetched_tx, fetched_rx) = mpsc::channel::<Fetched>(64);
    let window = Arc::new(Semaphore::new(window_size(&cfg)));

    let reader = tokio::spawn({
        let halt = controls.halt.clone();
        async move {
            let read = input::read_jobs(sources, job_tx, halt).await;
            if let Ok(total) = &read {
                on_total(*total);
            }
            read
        }
    });
    let fetch = tokio::spawn(fetch_stage(
        fetcher, job_rx, window, fetched_tx, controls, done,
    ));
    let process = tokio::spawn(process_stage(cfg, fetched_rx, to_writer));

    let read = reader.await?;
    fetch.await?;
    process.await?;
    read
}

async fn fetch_stage(
    fetcher: Arc<Fetcher>,
    mut jobs: mpsc::Receiver<Job>,
    window: Arc<Semaphore>,
    tx: mpsc::Sender<Fetched>,
    controls: Controls,
    done: Option<Arc<IndexSet>>,
) {
    let halt = &controls.halt;
    let is_done = |job: &Job| done.as_ref().is_some_and(|d| d.contains(job.index));
    loop {
        let job = tokio::select! {
            biased;
            _ = halt.cancelled() => break,
            job = jobs.recv() => match job { Some(job) => job, None => return },
        };
        if is_done(&job) {
            continue;
        }
        let slot = tokio::select! {
            biased;
            _ = halt.cancelled() => {
                let _ = tx.send(not_started(job)).await;
                break;
            }
            slot = window.clone().acquire_owned() => slot.expect("window semaphore never closes"),
        };
        tokio::spawn(fetch_one(
            fetcher.clone(),
            job,
            slot,
            tx.clone(),
            controls.clone(),
        ));
    }
    // Stopped: every job already read still gets its one record.
    jobs.close();
    while let Some(job) = jobs.recv().await {
        if !is_done(&job) {
            let _ = tx.send(not_started(job)).await;
        }
    }
}

fn not_started(job: Job) -> Fetched {
    let report = match &job.request {
        Err(failure) => Report::failed(failure.clone()),
        Ok(_) => Report::failed(Failure::Cancelled(
            "not started: the run was stopped".into(),
        )),
    };
    Fetched {
        job,
        report,
        slot: None,
    }
}

async fn fetch_one(
    fetcher: Arc<Fetcher>,
    job: Job,
    slot: OwnedSemaphorePermit,
    tx: mpsc::Sender<Fetched>,
    controls: Controls,
) {
    let report = match &job.request {
        Err(failure) => Report::failed(failure.clone()),
        Ok(request) => tokio::select! {
            biased;
            _ = controls.abort.cancelled() => {
                Report::failed(Failure::Cancelled("in flight when the run was stopped".into()))
            }
            report = Box::pin(fetcher.fetch(request, &controls.halt)) => report,
        },
    };
    let _ = tx
        .send(Fetched {
            job,
            report,
            slot: Some(slot),
        })
        .await;
}

async fn process_stage(cfg: Arc<Config>, mut rx: mpsc::Receiver<Fetched>, tx: mpsc::Sender<Done>) {
    let cpu = Arc::new(Semaphore::new(cores()));
    while let Some(Fetched {
        job,
        mut report,
        slot,
    }) = rx.recv().await
    {
        // Handed over: the request's concurrency slot can go to the next one.
        drop(report.slot.take());
        let body = match (&report.body, process::needed(&cfg)) {
            (Ok(body), true) => body.clone(),
            _ => {
                let record = record::assemble(&cfg, job, report, None);
                let _ = tx.send(Done { record, slot }).await;
                continue;
            }
        };
        let content_type = report.head.as_ref().and_then(|h| h.content_type.clone());
        if process::is_light(&cfg, body.len()) {
            // Cheaper than the hand-off to a blocking thread (measured: 18 µs a record).
            let processed = guarded(|| process::process(&cfg, content_type.as_deref(), &body));
            let record = record::assemble(&cfg, job, report, Some(processed));
            let _ = tx.send(Done { record, slot }).await;
            continue;
        }
        let permit = cpu
            .clone()
            .acquire_owned()
            .await
            .expect("cpu semaphore never closes");
        let (cfg, tx) = (cfg.clone(), tx.clone());
        tokio::spawn(async move {
            let work_cfg = cfg.clone();
            let processed =
                off_runtime(move || process::process(&work_cfg, content_type.as_deref(), &body))
                    .await;
            drop(permit);
            let record = record::assemble(&cfg, job, report, Some(processed));
            let _ = tx.send(Done { record, slot }).await;
        });
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Run CPU work on the blocking pool; a panic in it becomes a `process` failure.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(e) => Err(match e.try_into_panic() {
            Ok(payload) => panic_failure(payload),
            Err(e) => Failure::Process(format!("processing was cancelled: {e}")),
        }),
    }
}

/// Run light CPU work here; a panic in it becomes a `process` failure.
pub fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, Failure> {
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
    use crate::record::ErrorKind;

    #[tokio::test]
    async fn a_panic_in_processing_becomes_a_process_failure() {
        let failure = off_runtime(|| -> u8 { panic!("bad body") })
            .await
            .unwrap_err();
        assert_eq!(failure.kind(), ErrorKind::Process);
        assert!(failure.to_string().contains("bad body"), "{failure}");
        assert_eq!(off_runtime(|| 7).await.unwrap(), 7);
        let failure = guarded(|| -> u8 { panic!("light body") }).unwrap_err();
        assert_eq!(failure.kind(), ErrorKind::Process);
        assert!(failure.to_string().contains("light body"), "{failure}");
    }
}
