//! The single writer: owns stdout / `-o` / `--errors`, restores input order for
//! `--ordered`, keeps the run totals and feeds the progress bar. It runs on its own
//! thread so a slow consumer never blocks the async runtime, and flushes whenever
//! its queue is idle and at the end.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::queue::Queued;
use super::record::Record;
use super::sink::Sink;
use super::summary::Stats;
use crate::input::InputSpec;
use crate::politeness::HostStats;
use crate::values::IndexSet;

/// A finished record and the place in the window its job held since it was read.
pub(crate) struct Finished {
    pub record: Record,
    /// Held, not read: dropping it once the record is written frees the place.
    #[allow(dead_code)]
    pub place: Option<OwnedSemaphorePermit>,
}

/// Where records go and how (`-o`, `--errors`, `--summary`, `--ordered`, `--resume`).
#[derive(Debug, Clone)]
pub(crate) struct OutputSettings {
    /// `-o`; stdout when absent.
    pub(crate) main: Option<PathBuf>,
    pub(crate) errors: Option<PathBuf>,
    pub(crate) summary: Option<PathBuf>,
    pub(crate) host_stats: Option<PathBuf>,
    pub(crate) ordered: bool,
    /// Append to the outputs instead of truncating them.
    pub(crate) resume: bool,
}

/// The opened output streams.
pub(crate) struct Outputs {
    main: Sink,
    errors: Option<Sink>,
}

impl Outputs {
    /// Create the output files before anything runs, so a bad path is exit 2.
    /// Both files are opened before either is emptied: a bad `--errors` path
    /// leaves an existing `-o` file whole.
    pub(crate) fn open(cfg: &OutputSettings) -> anyhow::Result<Outputs> {
        let main = cfg
            .main
            .as_deref()
            .map(|p| open_file(p, cfg.resume))
            .transpose()?;
        let errors = cfg
            .errors
            .as_deref()
            .map(|p| open_file(p, cfg.resume))
            .transpose()?;
        let sink = |opened: Option<(std::fs::File, &Path)>| -> anyhow::Result<Option<Sink>> {
            let Some((file, path)) = opened else {
                return Ok(None);
            };
            if !cfg.resume {
                empty(&file, path)?;
            }
            Ok(Some(Sink::new(
                Box::new(file),
                format!("'{}'", path.display()),
            )))
        };
        let main = sink(main.zip(cfg.main.as_deref()))?
            .unwrap_or_else(|| Sink::new(Box::new(io::stdout()), "stdout".into()));
        let errors = sink(errors.zip(cfg.errors.as_deref()))?;
        Ok(Outputs { main, errors })
    }
}

/// Refuse any `-o`, `--errors`, `--summary`, `--host-stats` or `--save` target
/// that is one of the inputs or `--since` files (the same device and inode,
/// whatever the spelling: symlinks and hard links included; stdin when it is a
/// file): opening it for writing would empty the list before it is read. And
/// refuse two targets that are one file. Checked before anything is opened.
pub(crate) fn refuse_to_overwrite_inputs(
    inputs: &[InputSpec],
    since: &[PathBuf],
    cfg: &OutputSettings,
    save: Option<&Path>,
    warc: &[PathBuf],
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    // What is read: (what it is, its name, its identity).
    let read: Vec<(&str, String, (u64, u64))> = inputs
        .iter()
        .filter_map(|spec| match spec {
            InputSpec::File(path) => Some(("input", path.display().to_string(), identity(path)?)),
            // Through /dev/stdin: its target, when stdin is a redirected file.
            InputSpec::Stdin => Some((
                "input",
                "<stdin>".into(),
                identity(Path::new("/dev/stdin"))?,
            )),
            InputSpec::Url(_) | InputSpec::Text { .. } => None,
        })
        .chain(
            since
                .iter()
                .filter_map(|p| Some(("--since file", p.display().to_string(), identity(p)?))),
        )
        .collect();
    let targets = [
        ("-o", cfg.main.as_deref()),
        ("--errors", cfg.errors.as_deref()),
        ("--summary", cfg.summary.as_deref()),
        ("--host-stats", cfg.host_stats.as_deref()),
        ("--save", save),
    ];
    let targets: Vec<(&str, &Path)> = targets
        .into_iter()
        .filter_map(|(flag, path)| Some((flag, path?)))
        .chain(warc.iter().map(|p| ("--warc", p.as_path())))
        .collect();
    for &(flag, path) in &targets {
        let Some(id) = identity(path) else { continue };
        if let Some((what, name, _)) = read.iter().find(|(_, _, i)| *i == id) {
            anyhow::bail!(
                "{flag} '{}' is the {what} '{name}': writing it would destroy it before it is read",
                path.display()
            );
        }
    }
    // Two outputs in one file tear each other's lines: the same file by device
    // and inode (symlinks, hard links), or the same path for one not yet made.
    let key = |path: &Path| match identity(path) {
        Some(id) => Target::File(id),
        None => Target::Path(absolute(path)),
    };
    // A device or a pipe (`-o /dev/null --summary /dev/null`) tears nothing.
    let special = |path: &Path| std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    for (i, &(flag, path)) in targets.iter().enumerate().filter(|(_, (_, p))| !special(p)) {
        for &(other, other_path) in &targets[..i] {
            if key(path) == key(other_path) {
                anyhow::bail!(
                    "{other} '{}' and {flag} '{}' are the same file: give each its own",
                    other_path.display(),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// What an output path names, for comparing outputs.
#[derive(PartialEq)]
enum Target {
    File((u64, u64)),
    Path(PathBuf),
}

/// `path` made absolute through its existing parent (`./x` and `x` are one).
fn absolute(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    parent.join(path.file_name().unwrap_or_default())
}

/// Open a report file (`--summary`, `--host-stats`) without emptying it yet, so
/// a bad path later on the command line fails before any output is truncated.
/// [`empty`] empties it once every output has been opened.
pub(crate) fn open_report(path: &Path, flag: &str) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot create {flag} '{}'", path.display()))
}

/// Empty a file opened by [`open_report`] or [`open_file`]; a device or a
/// pipe (`-o /dev/null`) has nothing to empty.
pub(crate) fn empty(file: &std::fs::File, path: &Path) -> anyhow::Result<()> {
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    match regular {
        true => file
            .set_len(0)
            .with_context(|| format!("cannot write '{}'", path.display())),
        false => Ok(()),
    }
}

/// Truncate, or append when resuming.
/// An output file, opened for appending with `--resume`, else not yet emptied.
fn open_file(path: &Path, append: bool) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot create '{}'", path.display()))
}

/// How the writer ended.
pub(crate) struct Written {
    pub stats: Stats,
    /// stdout's reader went away; later records were dropped.
    pub output_closed: bool,
    /// A write error other than a closed stdout.
    pub error: Option<anyhow::Error>,
}

/// What the writer starts from.
pub(crate) struct WriterSetup {
    pub outputs: Outputs,
    /// `--ordered`.
    pub ordered: bool,
    pub progress: Progress,
    /// Inputs finished by an earlier run (`--resume`): ordering skips them.
    pub earlier: Option<Arc<IndexSet>>,
    /// Totals carried over from the earlier run's records.
    pub stats: Stats,
    /// `--host-stats`: records tallied by host.
    pub host_stats: Option<Arc<HostStats>>,
}

/// Start the writer thread. `closed` is cancelled when the output can no longer be
/// written (closed pipe, full disk), so the pipeline stops early.
pub(crate) fn spawn(
    setup: WriterSetup,
    rx: mpsc::Receiver<Queued>,
    closed: CancellationToken,
) -> std::thread::JoinHandle<Written> {
    std::thread::Builder::new()
        .name("trawl-writer".into())
        .spawn(move || {
            let writer = Writer {
                outputs: setup.outputs,
                ordered: setup.ordered,
                next: 0,
                pending: BTreeMap::new(),
                earlier: setup.earlier,
                stats: setup.stats,
                host_stats: setup.host_stats,
                progress: setup.progress,
            };
            writer.run(rx, closed)
        })
        .expect("spawn writer thread")
}

/// Wait for the next record once the queue ran dry. Records come in streams, so
/// poll for a few milliseconds before parking: a parked writer must be woken by a
/// syscall on every record sent, which profiling showed as a real cost.
fn next_after_idle(rx: &mut mpsc::Receiver<Queued>) -> Option<Queued> {
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        match rx.try_recv() {
            Ok(queued) => return Some(queued),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
    }
    rx.blocking_recv()
}

struct Writer {
    outputs: Outputs,
    ordered: bool,
    /// Next index to write in ordered mode.
    next: u64,
    pending: BTreeMap<u64, Finished>,
    /// Inputs finished by an earlier run (`--resume`): ordering skips them.
    earlier: Option<Arc<IndexSet>>,
    stats: Stats,
    host_stats: Option<Arc<HostStats>>,
    progress: Progress,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Queued>, closed: CancellationToken) -> Written {
        let mut failed: Option<io::Error> = None;
        let fail = |e: io::Error, failed: &mut Option<io::Error>| {
            *failed = Some(e);
            closed.cancel();
        };
        loop {
            let finished = match rx.try_recv() {
                Ok(finished) => finished,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if failed.is_none()
                        && let Err(e) = self.flush()
                    {
                        fail(e, &mut failed);
                    }
                    match next_after_idle(&mut rx) {
                        Some(finished) => finished,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            // Taken: its bytes leave the queue's budget (with --ordered the
            // record may wait in `pending`, bounded by the window in records).
            let finished = finished.finished;
            // Once the output is gone, keep draining so no stage ever blocks on us.
            if failed.is_none()
                && let Err(e) = self.accept(finished)
            {
                fail(e, &mut failed);
            }
        }
        if failed.is_none()
            && let Err(e) = self.write_rest().and_then(|()| self.flush())
        {
            fail(e, &mut failed);
        }
        self.progress.finish();
        let output_closed = failed
            .as_ref()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
        self.tally_written();
        let error = failed.filter(|_| !output_closed).map(anyhow::Error::new);
        Written {
            stats: self.stats,
            output_closed,
            error,
        }
    }

    /// Records still held for ordering when the input ended early (after a stop).
    fn write_rest(&mut self) -> io::Result<()> {
        for (_, finished) in std::mem::take(&mut self.pending) {
            self.write(finished.record)?;
        }
        Ok(())
    }

    /// Take one finished record; writes it (and any now-contiguous ones in ordered mode).
    fn accept(&mut self, finished: Finished) -> io::Result<()> {
        if !self.ordered {
            return self.write(finished.record);
        }
        self.pending.insert(finished.record.index, finished);
        loop {
            if self.earlier.as_ref().is_some_and(|d| d.contains(self.next)) {
                self.next += 1;
                continue;
            }
            let Some(finished) = self.pending.remove(&self.next) else {
                return Ok(());
            };
            self.next += 1;
            self.write(finished.record)?;
        }
    }

    fn write(&mut self, record: Record) -> io::Result<()> {
        self.progress.record(record.ok);
        let sink = match (&mut self.outputs.errors, record.ok) {
            (Some(errors), false) => errors,
            _ => &mut self.outputs.main,
        };
        let put = sink.put(record);
        self.tally_written();
        put
    }

    /// Count the records whose bytes have all reached their file: the totals
    /// and `--host-stats` say what the outputs hold.
    fn tally_written(&mut self) {
        let errors = self.outputs.errors.iter_mut().flat_map(|s| s.confirmed());
        let written: Vec<Record> = self.outputs.main.confirmed().chain(errors).collect();
        for record in written {
            self.tally(&record);
        }
    }

    fn tally(&mut self, record: &Record) {
        self.stats.add(record);
        if let (Some(hosts), Some(url)) = (&self.host_stats, record.url.as_deref()) {
            hosts.record(crate::politeness::HostRecord {
                url,
                ok: record.ok,
                failure: record.error_kind(),
                bytes: record.bytes.unwrap_or(0),
                latency_ms: record
                    .elapsed_ms
                    .filter(|_| record.attempts.unwrap_or(0) > 0),
            });
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let flushed = self
            .outputs
            .main
            .flush()
            .and_then(|()| match &mut self.outputs.errors {
                Some(errors) => errors.flush(),
                None => Ok(()),
            });
        self.tally_written();
        flushed
    }
}
