//! Archive: `--warc`. Every exchange the fetch kept as it went over the wire
//! becomes WARC 1.1 records (`record.rs`: request, response or revisit, each
//! its own gzip member, built on the processing lanes), appended by one
//! writer thread that owns the files (`files.rs`: `.open` while written,
//! rotation, the CDXJ index of `cdxj.rs` beside each). `read.rs` reads them
//! back: `--resume` cuts a killed run's file back to its last whole record.
//!
//! Offers [`Archive`] and its settings. Imports `fetch` (the exchanges) and
//! `output` (the record's pointer), never `process`, `runs`, `pipeline`,
//! `cli` or `config`. Not a part of `output`, which never imports `fetch`.

mod cdxj;
mod files;
mod read;
mod record;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::fetch::{Exchange, WireSink};
use crate::output::WarcPointer;
use files::{Files, Names};
pub use read::{WarcRecord, whole_records};
pub use record::Packing;
use record::{Kind, Member, Original};

/// What `--warc` and its flags ask for.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveSettings {
    /// `--warc`: ends in `.warc.gz` or `.warc`.
    pub(crate) path: PathBuf,
    /// `--warc-max-size`: rotate past this many bytes.
    pub(crate) max_size: Option<u64>,
    /// `--cdxj`.
    pub(crate) cdxj: bool,
    /// `--resume`: close what an earlier run left open, and go on in a new file.
    pub(crate) resume: bool,
    /// The warcinfo record's fields.
    pub(crate) info: Vec<(String, String)>,
}

impl ArchiveSettings {
    /// The folder, the stem and the packing of `--warc PATH`; `None` when
    /// it ends in neither `.warc.gz` nor `.warc`.
    pub(crate) fn parts(path: &std::path::Path) -> Option<(PathBuf, String, Packing)> {
        let name = path.file_name()?.to_str()?;
        let (stem, packing) = match name.strip_suffix(".warc.gz") {
            Some(stem) => (stem, Packing::Gzip),
            None => (name.strip_suffix(".warc")?, Packing::Plain),
        };
        if stem.is_empty() {
            return None;
        }
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        Some((dir, stem.to_owned(), packing))
    }

    /// Every path this archive may write (for the output checks): the first
    /// file, open and closed, and its index.
    pub(crate) fn targets(&self) -> Vec<PathBuf> {
        let mut out = vec![self.path.clone()];
        let mut open = self.path.clone().into_os_string();
        open.push(".open");
        out.push(open.into());
        out
    }
}

/// One input's records, built, on their way to the files.
pub(crate) struct Built {
    members: Vec<Member>,
    /// The final response's (or revisit's) record.
    answer: Option<usize>,
}

/// Pointers to each input's answer record, once its records are written.
type Written = Result<Vec<Option<WarcPointer>>, String>;

struct Batch {
    built: Vec<Built>,
    reply: oneshot::Sender<Written>,
}

/// The archive of a run: builds records, and hands them to the writer thread.
pub(crate) struct Archive {
    packing: Packing,
    /// Payloads archived so far, by digest, for revisits.
    seen: Mutex<HashMap<String, Original>>,
    to_files: Mutex<Option<std::sync::mpsc::SyncSender<Batch>>>,
    thread: Mutex<Option<std::thread::JoinHandle<Result<(), String>>>>,
    /// Cancelled when writing failed: the run stops as for a dead output.
    broken: CancellationToken,
}

/// How many distinct payloads a run remembers for revisits (about 250 bytes
/// each): memory stays bounded however long the list; past it, a payload not
/// remembered is written whole again.
const REMEMBERED: usize = 100_000;

/// Batches waiting for the writer thread.
const QUEUE: usize = 256;

impl Archive {
    /// Open the archive: with `--resume`, close what the earlier run left
    /// open; then create the first file. A bad path is an error before the run.
    pub(crate) fn open(settings: &ArchiveSettings) -> anyhow::Result<Archive> {
        let (dir, stem, packing) = ArchiveSettings::parts(&settings.path)
            .ok_or_else(|| anyhow::anyhow!("--warc must end in .warc.gz or .warc"))?;
        let mut names = Names {
            dir,
            stem,
            packing,
            numbered: settings.max_size.is_some(),
        };
        let mut first = 0;
        if settings.resume
            && let Some(next) = files::recover(&names, settings.cdxj)?
        {
            names.numbered = true;
            first = next;
        }
        let files = Files::open(
            names,
            settings.info.clone(),
            settings.max_size,
            settings.cdxj,
            first,
        )?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(QUEUE);
        let broken = CancellationToken::new();
        let thread = std::thread::Builder::new()
            .name("trawl-warc".into())
            .spawn({
                let broken = broken.clone();
                move || write_all(files, rx, broken)
            })?;
        Ok(Archive {
            packing,
            seen: Mutex::new(HashMap::new()),
            to_files: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            broken,
        })
    }

    /// Cancelled once writing failed.
    pub(crate) fn broken(&self) -> CancellationToken {
        self.broken.clone()
    }

    /// The records of one input's exchanges (CPU work: run it on a lane).
    /// `not_modified`: the last exchange is a 304 to a conditional request.
    pub(crate) fn build(&self, exchanges: &[Exchange], not_modified: bool) -> Built {
        let mut members = Vec::with_capacity(exchanges.len() * 2);
        for (i, exchange) in exchanges.iter().enumerate() {
            let last = i + 1 == exchanges.len();
            let payload = sha1_of_payload(exchange);
            let kind = match last && not_modified {
                true => Kind::NotModified,
                false => self.kind_of(exchange, &payload),
            };
            let [request, response] =
                record::exchange_records(exchange, &kind, &payload, self.packing);
            if let Kind::Response = kind {
                self.remember(&payload, &response, exchange);
            }
            members.push(request);
            members.push(response);
        }
        let answer = (!members.is_empty()).then(|| members.len() - 1);
        Built { members, answer }
    }

    /// Keep the first record of a payload, for the revisits to name.
    fn remember(&self, payload: &str, response: &Member, exchange: &Exchange) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() < REMEMBERED && !seen.contains_key(payload) {
            let original = Original {
                id: response.id.clone(),
                uri: exchange.url.to_string(),
                date: record::warc_date(exchange.sent),
            };
            seen.insert(payload.to_owned(), original);
        }
    }

    /// A response, or a revisit of the payload's first record.
    fn kind_of(&self, exchange: &Exchange, payload: &str) -> Kind {
        if exchange.payload_len() == 0 {
            return Kind::Response;
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(payload) {
            Some(original) => Kind::Identical(original.clone()),
            None => Kind::Response,
        }
    }

    /// Hand inputs' built records to the writer thread, to be written at
    /// once; each answer's pointer follows once they are.
    pub(crate) fn store(&self, built: Vec<Built>) -> oneshot::Receiver<Written> {
        let (reply, answer) = oneshot::channel();
        let to_files = self.to_files.lock().unwrap_or_else(|e| e.into_inner());
        match to_files.as_ref() {
            Some(tx) => {
                if let Err(std::sync::mpsc::SendError(batch)) = tx.send(Batch { built, reply }) {
                    let _ = batch.reply.send(Err("--warc: the writer stopped".into()));
                }
            }
            None => {
                let _ = reply.send(Err("--warc: the archive is closed".into()));
            }
        }
        answer
    }

    /// Where robots.txt's exchanges go: built off the runtime, then written.
    pub(crate) fn sink(self: &Arc<Archive>) -> WireSink {
        let archive = self.clone();
        Arc::new(move |exchanges: Vec<Exchange>| {
            let archive = archive.clone();
            Box::pin(async move {
                let built = {
                    let archive = archive.clone();
                    tokio::task::spawn_blocking(move || archive.build(&exchanges, false)).await
                };
                if let Ok(built) = built {
                    let _ = archive.store(vec![built]).await;
                }
            })
        })
    }

    /// Close the last file (its index, its final name), once every record is in.
    pub(crate) fn finish(&self) -> Result<(), String> {
        drop(
            self.to_files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        match thread {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err("--warc: the writer thread panicked".into())),
            None => Ok(()),
        }
    }
}

fn sha1_of_payload(exchange: &Exchange) -> String {
    record::sha1_of(exchange.payload.iter().map(|c| &c[..]))
}

/// The writer thread: append every batch, then close.
fn write_all(
    mut files: Files,
    rx: std::sync::mpsc::Receiver<Batch>,
    broken: CancellationToken,
) -> Result<(), String> {
    while let Ok(batch) = rx.recv() {
        let inputs = batch
            .built
            .into_iter()
            .map(|b| (b.members, b.answer))
            .collect();
        let result = files.append(inputs);
        if result.is_err() {
            broken.cancel();
        }
        let _ = batch.reply.send(result);
    }
    files.finish()
}
