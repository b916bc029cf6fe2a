//! The processing lanes, and how a fetch becomes its record. A lane is a
//! long-lived blocking thread (one per core) that takes the bodies waiting in
//! a short queue a batch at a time, hashes similar ones together and runs the
//! rest of the CPU work. What the lanes hold is counted in a budget that a
//! fetch takes before it hands its body over: per lane, two large bodies or
//! 2 MiB of small ones (see [`LaneBudget`]). So memory follows `--concurrency`
//! and the core count, never the CPU's SIMD width.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::assemble::assemble;
use super::builtins::{self, ProcessSettings};
use super::exec::{self, Pool};
use super::hash;
use crate::archive::Archive;
use crate::failure::{ErrorKind, Failure};
use crate::fetch::Body;
use crate::fetch::Exchange;
use crate::fetch::Piece;
use crate::fetch::Report;
use crate::input::Job;
use crate::output::{Finished, ToWriter};
use crate::output::{Record, WarcPointer};
use crate::runs::{self, Since};
use crate::values::{HashKind, StatusSet};

/// What a lane does: hash a piece of a body still arriving, or process a body.
pub(crate) enum Task {
    Piece(Piece),
    Work(Box<Work>),
}

/// A fetched body waiting for a processing lane. Its report still holds the
/// request's concurrency slot until a lane takes it, and `budget` is its share
/// of what the lanes may hold, so bodies in memory stay bounded by
/// `--concurrency` plus the lanes' budget.
pub(crate) struct Work {
    pub(crate) job: Job,
    pub(crate) report: Report,
    /// `--since`: the URL's previous ok record.
    pub(crate) prev: Option<Box<Record>>,
    pub(crate) window: OwnedSemaphorePermit,
    pub(crate) _budget: OwnedSemaphorePermit,
}

/// What the processing lanes may hold (bodies waiting or being processed), in
/// units of 64 KiB: 2 MiB per lane. A body weighs its size in units, at least
/// one and at most [`LaneBudget::HEAVIEST`], so a lane holds two bodies of any
/// size, or many small ones (fewer hand-offs; a batch of small pages costs one
/// wake-up instead of one each).
pub(crate) struct LaneBudget {
    units: Arc<Semaphore>,
}

impl LaneBudget {
    const UNIT: usize = 64 * 1024;
    const HEAVIEST: usize = 16;
    pub(crate) const PER_LANE: usize = 2 * LaneBudget::HEAVIEST;

    pub(crate) fn new(lanes: usize) -> LaneBudget {
        LaneBudget {
            units: Arc::new(Semaphore::new(lanes * LaneBudget::PER_LANE)),
        }
    }

    /// Wait until the lanes have room for a body of `len` bytes.
    pub(crate) async fn room(&self, len: usize) -> OwnedSemaphorePermit {
        let weight = len
            .div_ceil(LaneBudget::UNIT)
            .clamp(1, LaneBudget::HEAVIEST);
        (self.units.clone().acquire_many_owned(weight as u32).await).expect("budget never closes")
    }
}

/// What turns a fetch into its record: the process stage's settings and the
/// statuses that count as ok.
pub(crate) struct Processing {
    pub(crate) settings: ProcessSettings,
    pub(crate) ok_status: StatusSet,
    /// `--since`: the previous run's index.
    pub(crate) since: Option<Arc<Since>>,
    /// `--exec`: the user's workers.
    pub(crate) exec: Option<Arc<Pool>>,
    /// `--warc`: where each fetch's exchanges are archived.
    pub(crate) archive: Option<Arc<Archive>>,
}

/// The record's pointer once its records are written; a record whose
/// exchanges could not be archived is `cancelled` (`--resume` fetches it again).
pub(crate) fn archived(record: &mut Record, written: Option<Result<Option<WarcPointer>, String>>) {
    match written {
        None => {}
        Some(Ok(pointer)) => record.warc = pointer,
        Some(Err(why)) => {
            record.ok = false;
            record.error = Some(Failure::Cancelled(format!("not archived: {why}")).info());
        }
    }
}

/// [`archive`] from the runtime (a 304's revisit): built off it.
pub(crate) async fn archive_async(
    p: &Processing,
    exchanges: Vec<Exchange>,
    not_modified: bool,
) -> Option<Result<Option<WarcPointer>, String>> {
    let archive = p.archive.clone().filter(|_| !exchanges.is_empty())?;
    let builder = archive.clone();
    let built = tokio::task::spawn_blocking(move || builder.build(&exchanges, not_modified));
    let written = match built.await {
        Ok(built) => archive.store(vec![built]).await,
        Err(_) => return Some(Err("--warc: building the records panicked".into())),
    };
    let written = written.unwrap_or_else(|_| Err(STOPPED.into()));
    Some(written.map(|mut pointers| pointers.pop().flatten()))
}

/// The record of a job read but never fetched: the run was stopped.
pub(crate) fn not_started(p: &Processing, job: Job) -> Finished {
    let report = match &job.request {
        Err(failure) => Report::failed(failure.clone()),
        Ok(_) => Report::failed(Failure::Cancelled(
            "not started: the run was stopped".into(),
        )),
    };
    Finished {
        record: assemble(&p.ok_status, job, report, None),
        place: None,
    }
}

/// A 304 to a conditional request: the previous record's body facts, and with
/// `--body` the body `--save` kept on disk, if it is there.
pub(crate) async fn unmodified(p: &Processing, job: Job, report: Report, prev: &Record) -> Record {
    let mut record = assemble(&p.ok_status, job, report, None);
    runs::not_modified(&mut record, prev);
    if p.settings.body
        && let Some(saved) = &record.saved
        && let Ok(body) = tokio::fs::read(saved).await
    {
        let (text, base64) = builtins::body_text(&body);
        record.body = text;
        record.body_encoding = base64.then(|| "base64".to_owned());
    }
    record.change = Some(runs::judge(&record, Some(prev)));
    record
}

/// A processing lane: runs on the blocking pool until the queue closes. It takes
/// every body waiting (fewer hand-offs), so that under load their SHA-256 may
/// be computed together.
pub(crate) fn lane(
    p: &Processing,
    work: &Mutex<mpsc::Receiver<Task>>,
    tx: &ToWriter,
    together: hash::Together,
) {
    let most = cores() * LaneBudget::PER_LANE;
    let gather = match p.settings.hash {
        HashKind::Sha256 => hash::group(together).filter(|&n| n > 1),
        _ => None,
    };
    let mut tasks = Vec::with_capacity(most);
    let mut batch = Vec::with_capacity(most);
    loop {
        take(work, &mut tasks, most, gather);
        if tasks.is_empty() {
            return;
        }
        for task in tasks.drain(..) {
            match task {
                // A panic drops the piece's way back: its fetch fails on its own.
                Task::Piece(piece) => drop(guarded(|| piece.hash())),
                Task::Work(work) => batch.push(*work),
            }
        }
        // Handed over: the requests' concurrency slots can go to the next ones.
        batch.iter_mut().for_each(|w| drop(w.report.slot.take()));
        let digests = sha256_together(&p.settings, &batch, together);
        if finish(p, batch.drain(..).zip(digests), tx).is_err() {
            return;
        }
    }
}

/// Turn a lane's batch of fetches into records and send them to the writer
/// (an error: the writer is gone).
///
/// `--exec`: every ok record's body goes to the workers at once, and the
/// answers are awaited after (so the batch keeps them all busy); what a
/// record waits with keeps its share of the lanes' budget. `--warc`: the
/// batch's WARC records are built here and go to the archive in one write,
/// which each record waits for.
fn finish(
    p: &Processing,
    works: impl Iterator<Item = (Work, Option<String>)>,
    tx: &ToWriter,
) -> Result<(), ()> {
    let mut held = Vec::new();
    let mut built = Vec::new();
    for (work, sha256) in works {
        let Work {
            job,
            mut report,
            prev,
            window,
            _budget: budget,
        } = work;
        let exec_input = p.exec.as_ref().map(|_| {
            let headers = report.head.as_mut().and_then(|h| h.headers.take());
            let chunks = report.body.as_ref().ok().cloned();
            (headers, chunks)
        });
        let exchanges = std::mem::take(&mut report.exchanges);
        let record = processed(p, job, report, sha256, prev.as_deref());
        let slot = match &p.archive {
            Some(archive) if !exchanges.is_empty() => {
                built.push(archive.build(&exchanges, false));
                Some(built.len() - 1)
            }
            _ => None,
        };
        drop(exchanges);
        let done = Finished {
            record,
            place: Some(window),
        };
        let asked = match (&p.exec, exec_input) {
            (Some(pool), Some((headers, body))) if done.record.ok => {
                let body =
                    body.filter(|_| !p.settings.exec.as_ref().is_some_and(|e| e.headers_only));
                let body = body.as_ref().map(|b| b.contiguous());
                let line = exec::request_line(&done.record, headers.as_ref(), body.as_deref());
                Some(pool.ask(line))
            }
            _ => None,
        };
        held.push((done, slot, asked, budget));
    }
    let written = match &p.archive {
        Some(archive) if !built.is_empty() => archive
            .store(built)
            .blocking_recv()
            .unwrap_or_else(|_| Err(STOPPED.into())),
        _ => Ok(Vec::new()),
    };
    for (mut done, slot, asked, _budget) in held {
        if let Some(answer) = asked {
            let answer = answer.blocking_recv().unwrap_or_else(|_| {
                Err(Failure::Process("--exec: the workers were stopped".into()))
            });
            match answer {
                Ok(value) => done.record.exec = Some(value),
                Err(failure) => {
                    done.record.ok = false;
                    done.record.error = Some(failure.info());
                }
            }
        }
        let pointer = slot.map(|i| match &written {
            Ok(pointers) => Ok(pointers[i].clone()),
            Err(why) => Err(why.clone()),
        });
        archived(&mut done.record, pointer);
        tx.blocking_send(done).map_err(|_| ())?;
    }
    Ok(())
}

const STOPPED: &str = "--warc: the writer stopped";

/// Wait for the next body, then take the others already waiting, up to a batch.
/// Taking all of them beat taking only this lane's share (fewer wake-ups, more
/// hashed together; see the README's Performance section). The price: the last
/// batch of a run may be processed by one lane while another is idle.
/// Leaves `batch` empty once the queue is closed and drained.
///
/// With `gather` (the group of bodies worth hashing together on this CPU), a
/// lane holding some large bodies but fewer than a group waits up to
/// [`GATHER_WAIT`] for the rest, so that groups form under load: on 600 x 1 MiB
/// it cut the CPU time by a tenth (see the README's Performance section).
fn take(
    work: &Mutex<mpsc::Receiver<Task>>,
    batch: &mut Vec<Task>,
    most: usize,
    gather: Option<usize>,
) {
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
    let Some(group) = gather else {
        return;
    };
    let large = |batch: &[Task]| batch.iter().filter(|t| is_large(t)).count();
    if large(batch) == 0 {
        return;
    }
    let deadline = tokio::time::Instant::now() + GATHER_WAIT;
    let runtime = tokio::runtime::Handle::current();
    while large(batch) < group && batch.len() < most {
        match runtime.block_on(tokio::time::timeout_at(deadline, queue.recv())) {
            Ok(Some(next)) => batch.push(next),
            Ok(None) | Err(_) => return,
        }
    }
}

/// How long a lane waits for a group of large bodies to form.
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Bodies from this size are worth waiting for company: hashing one takes
/// ~0.15 ms or more, against the wait's millisecond at most.
const GATHER_FROM: usize = 256 * 1024;

/// A whole body large enough to wait for others to hash it with.
fn is_large(task: &Task) -> bool {
    match task {
        Task::Work(w) => w
            .report
            .body
            .as_ref()
            .is_ok_and(|b| b.held() >= GATHER_FROM && !b.is_begun()),
        Task::Piece(_) => false,
    }
}

/// The SHA-256 of each whole body in the batch when `--hash sha256` asks for it
/// and there is more than one; `None` leaves hashing to `process`, one body at
/// a time: a body whose digest was begun as it arrived, and every body if
/// hashing together panicked (each then fails on its own).
fn sha256_together(
    settings: &ProcessSettings,
    batch: &[Work],
    mode: hash::Together,
) -> Vec<Option<String>> {
    let mut digests = vec![None; batch.len()];
    let whole: Vec<(usize, &Body)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((i, w.report.body.as_ref().ok()?)))
        .filter(|(_, b)| !b.is_begun())
        .collect();
    if settings.hash != HashKind::Sha256 || whole.len() < 2 {
        return digests;
    }
    let bodies: Vec<&Body> = whole.iter().map(|&(_, b)| b).collect();
    if let Ok(many) = guarded(|| hash::sha256_hex_many(&bodies, mode)) {
        for ((i, _), digest) in whole.iter().zip(many) {
            digests[*i] = Some(digest);
        }
    }
    digests
}

/// The record of a fetch: the body processed (if there is one and anything to
/// do); a panic in processing becomes a `process` failure in the record.
/// `sha256`: the body's digest if it was already computed with others; `prev`:
/// the URL's previous ok record (`--since`), to judge the change against.
pub(crate) fn processed(
    p: &Processing,
    job: Job,
    report: Report,
    sha256: Option<String>,
    prev: Option<&Record>,
) -> Record {
    let mut record = process_and_assemble(p, job, report, sha256);
    // A cancelled record is not final (`--resume` fetches it again): no verdict.
    if p.since.is_some() && record.error_kind() != Some(ErrorKind::Cancelled) {
        record.change = Some(runs::judge(&record, prev));
    }
    record
}

fn process_and_assemble(
    p: &Processing,
    job: Job,
    report: Report,
    sha256: Option<String>,
) -> Record {
    let result = match &report.body {
        Ok(body) if builtins::needed(&p.settings) => {
            let content_type = report.head.as_ref().and_then(|h| h.content_type.as_deref());
            let accepted = report
                .head
                .as_ref()
                .is_some_and(|h| p.ok_status.contains(h.status.as_u16()));
            guarded(|| builtins::process(&p.settings, content_type, accepted, body, sha256))
                .and_then(|r| r)
        }
        _ => return assemble(&p.ok_status, job, report, None),
    };
    assemble(&p.ok_status, job, report, Some(result))
}

pub(crate) fn cores() -> usize {
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
