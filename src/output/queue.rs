//! The writer's queue, bounded in records by its channel and in bytes by a
//! budget, so a slow reader of stdout slows the run instead of growing it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::record::Record;
use super::writer::Finished;

/// The most record bytes waiting in the writer's queue: with a slow reader,
/// the queue is bounded in bytes as well as in records.
pub(crate) const QUEUE_BYTES: usize = 64 << 20;

/// The writer's queue: bounded in records by its channel and in bytes by a
/// budget, which a record takes before it is queued and gives back when the
/// writer takes it.
#[derive(Clone)]
pub(crate) struct ToWriter {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<tokio::sync::Semaphore>,
}

/// A record in the queue, with its share of the byte budget.
pub(crate) struct Queued {
    pub(super) finished: Finished,
    _bytes: OwnedSemaphorePermit,
}

/// A queue of `records` places and [`QUEUE_BYTES`] bytes.
pub(crate) fn queue(records: usize) -> (ToWriter, mpsc::Receiver<Queued>) {
    let (tx, rx) = mpsc::channel(records);
    let bytes = Arc::new(tokio::sync::Semaphore::new(QUEUE_BYTES >> 10));
    (ToWriter { tx, bytes }, rx)
}

impl ToWriter {
    /// Queue a record; `Err` once the writer is gone.
    pub(crate) async fn send(&self, finished: Finished) -> Result<(), ()> {
        let kib = cost_kib(&finished.record);
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| ())?;
        let queued = Queued {
            finished,
            _bytes: permit,
        };
        self.tx.send(queued).await.map_err(|_| ())
    }

    /// [`ToWriter::send`] from a blocking thread (a processing lane).
    pub(crate) fn blocking_send(&self, finished: Finished) -> Result<(), ()> {
        tokio::runtime::Handle::current().block_on(self.send(finished))
    }
}

/// What a record will take in the queue, in KiB: its texts, approximately.
fn cost_kib(r: &Record) -> u32 {
    let strings = |v: &Option<Vec<String>>| v.iter().flatten().map(|s| s.len() + 4).sum::<usize>();
    let bytes = 512
        + r.input.len()
        + r.body.as_ref().map_or(0, String::len)
        + r.title.as_ref().map_or(0, String::len)
        + strings(&r.select)
        + strings(&r.matches)
        + r.jq.as_ref().map_or(0, |v| v.len() * 64);
    (bytes.div_ceil(1024).min(QUEUE_BYTES >> 10)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn with_body(len: usize) -> Finished {
        Finished {
            record: Record {
                body: Some("x".repeat(len)),
                ..Record::default()
            },
            place: None,
        }
    }

    /// Regression: the queue was bounded in records only, so with a slow
    /// reader large records piled up (1,000 long lines: 594 MB).
    #[tokio::test]
    async fn the_writers_queue_is_bounded_in_bytes_too() {
        let (tx, mut rx) = queue(100);
        tx.send(with_body(40 << 20)).await.unwrap();
        let second = tokio::time::timeout(Duration::from_millis(200), tx.send(with_body(40 << 20)));
        assert!(
            second.await.is_err(),
            "40 + 40 MiB do not fit in {QUEUE_BYTES} bytes"
        );
        let first = rx.recv().await.unwrap();
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), tx.send(with_body(40 << 20)));
        assert!(third.await.is_ok(), "taken by the writer: room again");
        // A record larger than the whole budget still goes, alone.
        drop(rx.recv().await);
        let huge = tokio::time::timeout(Duration::from_secs(5), tx.send(with_body(100 << 20)));
        assert!(huge.await.is_ok());
        // Small records are counted small: thousands fit.
        drop(rx.recv().await);
        for _ in 0..100 {
            tx.send(with_body(10)).await.unwrap();
        }
    }
}
