//! One output stream (`-o` or stdout, `--errors`): records are serialized into
//! a large buffer, and a record counts as written (for the totals) only once
//! every byte of it has reached the file. A full disk mid-buffer leaves the
//! records before it counted and the rest not, so the summary says what the
//! file holds.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};

use super::record::Record;

const BUFFER: usize = 256 * 1024;

pub(super) struct Sink {
    out: BufWriter<Counted<Box<dyn Write + Send>>>,
    /// The file's path, or `stdout`, for error messages.
    name: String,
    /// Bytes handed to the buffer so far.
    queued: u64,
    /// Records in the buffer, each with the byte count at its end.
    unconfirmed: VecDeque<(u64, Record)>,
}

/// A stream that counts the bytes it took: under the buffer (what reached
/// the file) and over it (how long a record is).
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Sink {
    pub(super) fn new(inner: Box<dyn Write + Send>, name: String) -> Sink {
        Sink {
            out: BufWriter::with_capacity(BUFFER, Counted { inner, bytes: 0 }),
            name,
            queued: 0,
            unconfirmed: VecDeque::new(),
        }
    }

    /// Serialize `record` and its newline into the buffer (which may write
    /// earlier ones out).
    pub(super) fn put(&mut self, record: Record) -> io::Result<()> {
        let mut measured = Counted {
            inner: &mut self.out,
            bytes: 0,
        };
        let put = serde_json::to_writer(&mut measured, &record)
            .map_err(io::Error::from)
            .and_then(|()| measured.write_all(b"\n"));
        self.queued += measured.bytes;
        self.unconfirmed.push_back((self.queued, record));
        put.map_err(|e| self.named(e))
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| self.named(e))
    }

    /// The records whose every byte has been written since the last call.
    pub(super) fn confirmed(&mut self) -> impl Iterator<Item = Record> + '_ {
        let written = self.out.get_ref().bytes;
        std::iter::from_fn(move || {
            let (end, _) = self.unconfirmed.front()?;
            (*end <= written).then(|| self.unconfirmed.pop_front().expect("front").1)
        })
    }

    /// The error, naming the stream (its kind kept: a closed pipe stays one).
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("writing {}: {e}", self.name))
    }
}
