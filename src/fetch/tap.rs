//! Reading a body, and hashing a large one while it arrives. Once a body passes [`START`] bytes,
//! its fetch hands every [`PIECE`] it reads to the processing lanes, which feed
//! it to that body's running digest and hand the digest back, while the fetch
//! reads on. When nothing needs the body whole (no `--body`, `--save` or
//! parsing), a piece hashed is let go: a fetch then holds a few pieces instead
//! of its whole body, so memory follows `--concurrency` whatever the bodies'
//! size (48 bodies of 32 MiB at `-c 16`: 748 -> 72 MiB peak; see the README).
//! One piece of a body is out at a time, so pieces are hashed in order; a fetch
//! [`AHEAD`] bytes ahead of its digest waits for it (TCP then holds the rest).
//! Smaller bodies are hashed whole on a lane, where several may be hashed
//! together (`process/hash.rs`): for them the hand-offs cost more than they save.
//! Hashing together needs each body in one piece, so where it may happen
//! ([`Tap::join`]) a body of known length that arrives in several chunks is
//! copied into one buffer as it arrives, while each chunk is still in cache and
//! hyper can reuse its read buffer at once.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use reqwest::Response;
use tokio::sync::oneshot;

use super::body::Body;
use super::classify::classify;
use super::digest::Running;
use super::wire::Decoder;
use crate::failure::Failure;
use crate::values::HashKind;

/// Bodies up to this size are hashed whole.
pub(crate) const START: usize = 2 << 20;

/// Bytes handed to a lane at a time, once a body has passed [`START`].
pub(crate) const PIECE: usize = 256 * 1024;

/// How far reading may run ahead of the digest before it waits.
pub(crate) const AHEAD: usize = 2 * PIECE;

/// Part of a body, to be fed to its digest on a lane.
pub(crate) struct Piece {
    running: Running,
    chunks: Vec<Bytes>,
    back: oneshot::Sender<Running>,
}

impl Piece {
    /// Feed the piece to its digest and hand the digest back (CPU work: a lane runs it).
    pub(crate) fn hash(self) {
        let Piece {
            mut running,
            chunks,
            back,
        } = self;
        chunks.iter().for_each(|c| running.update(c));
        drop(chunks);
        let _ = back.send(running);
    }
}

/// Hands a piece to the lanes.
pub(crate) type ToLanes = Arc<dyn Fn(Piece) -> BoxFuture<'static, ()> + Send + Sync>;

/// What a fetch needs to hash its body as it arrives.
#[derive(Clone)]
pub(crate) struct Tap {
    pub(crate) kind: HashKind,
    /// Keep the body whole: something besides the digest reads it.
    pub(crate) keep: bool,
    /// Gather a body hashed whole into one buffer as it arrives: the lanes may
    /// hash it together with others (`--hash sha256` on a CPU where that pays).
    pub(crate) join: bool,
    pub(crate) lanes: ToLanes,
}

/// Read the decoded body, stopping as soon as it exceeds `max` bytes (so a
/// decompression bomb is never inflated past the limit).
/// With a `tap`, a large body is hashed as it arrives.
/// With `wire` (`--warc`), the body arrives as the server encoded it: its
/// chunks are kept there as they came, and decoded here.
pub(crate) async fn read_body(
    mut response: Response,
    max: u64,
    tap: Option<&Tap>,
    wire: Option<&mut Vec<Bytes>>,
) -> Result<Body, Failure> {
    if let Some(wire) = wire {
        return read_encoded(response, max, tap, wire).await;
    }
    let mut body = Reading::new(tap, response.content_length());
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(Failure::BodyTooLarge(max));
        }
        body.push(chunk).await?;
    }
    body.finish().await
}

/// [`read_body`] of a body the client did not decode.
async fn read_encoded(
    mut response: Response,
    max: u64,
    tap: Option<&Tap>,
    wire: &mut Vec<Bytes>,
) -> Result<Body, Failure> {
    let mut decoder = Some(Decoder::for_headers(response.headers()));
    let identity = decoder.as_ref().is_some_and(Decoder::is_identity);
    let length = response.content_length().filter(|_| identity);
    let mut body = Reading::new(tap, length);
    let (mut raw, mut decoded) = (0u64, 0u64);
    let mut pieces = Vec::new();
    while let Some(decoding) = decoder.as_mut() {
        let mut limit = |b: Bytes| {
            decoded += b.len() as u64;
            match decoded > max {
                true => Err(Failure::BodyTooLarge(max)),
                false => {
                    pieces.push(b);
                    Ok(())
                }
            }
        };
        match response.chunk().await.map_err(classify)? {
            Some(chunk) => {
                raw += chunk.len() as u64;
                if raw > max {
                    return Err(Failure::BodyTooLarge(max));
                }
                // Not encoded: the body's own chunks are the wire form (below).
                if !identity {
                    wire.push(chunk.clone());
                }
                decoding.feed(&chunk, &mut limit)?;
            }
            None => decoder.take().expect("decoding").finish(&mut limit)?,
        }
        for piece in pieces.drain(..) {
            body.push(piece).await?;
        }
    }
    let body = body.finish().await?;
    if identity {
        // Held once: the archive shares the body's buffers (the tap keeps
        // every piece under --warc).
        wire.extend(body.chunks().iter().cloned());
    }
    Ok(body)
}

/// One attempt's body being read, and its digest once begun.
pub(crate) struct Reading<'a> {
    tap: Option<&'a Tap>,
    /// The chunks held: all of them, or (not kept) those not handed over yet.
    chunks: Vec<Bytes>,
    /// Index in `chunks` of the first chunk not handed over yet.
    next: usize,
    /// Bytes read.
    read: usize,
    /// Bytes not handed over yet.
    waiting: usize,
    /// Bytes handed over and let go.
    released: usize,
    running: Option<Running>,
    /// The digest while a lane has it.
    away: Option<oneshot::Receiver<Running>>,
    /// The announced length, while the chunks are gathered into one buffer.
    join: Option<usize>,
    /// The chunks gathered so far, once a second one arrived.
    joined: BytesMut,
}

impl<'a> Reading<'a> {
    /// `length`: the body's announced length, if known.
    pub(crate) fn new(tap: Option<&'a Tap>, length: Option<u64>) -> Reading<'a> {
        let tap = tap.filter(|t| t.kind != HashKind::None);
        Reading {
            tap,
            join: length
                .filter(|_| tap.is_some_and(|t| t.join))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= START),
            chunks: Vec::new(),
            next: 0,
            read: 0,
            waiting: 0,
            released: 0,
            running: None,
            away: None,
            joined: BytesMut::new(),
        }
    }

    /// Bytes read so far.
    pub(crate) fn len(&self) -> usize {
        self.read
    }

    /// Take the next chunk; hand a piece to the lanes when one is due.
    pub(crate) async fn push(&mut self, chunk: Bytes) -> Result<(), Failure> {
        self.read += chunk.len();
        self.waiting += chunk.len();
        let Some(chunk) = self.gather(chunk) else {
            return Ok(());
        };
        self.chunks.push(chunk);
        let Some(tap) = self.tap else {
            return Ok(());
        };
        let begun = self.running.is_some() || self.away.is_some();
        if self.waiting < if begun { PIECE } else { START + 1 } {
            return Ok(());
        }
        if let Some(away) = &mut self.away {
            match away.try_recv() {
                Ok(running) => self.running = Some(running),
                Err(oneshot::error::TryRecvError::Empty) if self.waiting < AHEAD => return Ok(()),
                Err(oneshot::error::TryRecvError::Empty) => self.running = Some(self.back().await?),
                Err(oneshot::error::TryRecvError::Closed) => return Err(lost()),
            }
            self.away = None;
        }
        let running = match self.running.take() {
            Some(running) => running,
            None => Running::new(tap.kind).expect("a tap hashes"),
        };
        let chunks = match tap.keep {
            true => self.chunks[self.next..].to_vec(),
            false => {
                self.released += self.waiting;
                std::mem::take(&mut self.chunks)
            }
        };
        self.next = self.chunks.len();
        self.waiting = 0;
        let (back, away) = oneshot::channel();
        self.away = Some(away);
        (tap.lanes)(Piece {
            running,
            chunks,
            back,
        })
        .await;
        Ok(())
    }

    /// Gather `chunk` into the one buffer: the first chunk is kept as it came
    /// (a body in one chunk is never copied), a second one starts the buffer.
    /// Gives the chunk back to be kept as it is when nothing is gathered, or
    /// when the body runs past its announced length.
    fn gather(&mut self, chunk: Bytes) -> Option<Bytes> {
        let Some(length) = self.join else {
            return Some(chunk);
        };
        if self.read > length {
            self.join = None;
            self.settle();
            return Some(chunk);
        }
        if self.chunks.is_empty() && self.joined.is_empty() {
            return Some(chunk);
        }
        if self.joined.is_empty() {
            self.joined.reserve(length);
            self.chunks
                .drain(..)
                .for_each(|c| self.joined.extend_from_slice(&c));
        }
        self.joined.extend_from_slice(&chunk);
        None
    }

    /// The bytes gathered, if any, become the one chunk held.
    fn settle(&mut self) {
        if !self.joined.is_empty() {
            self.chunks = vec![std::mem::take(&mut self.joined).freeze()];
        }
    }

    async fn back(&mut self) -> Result<Running, Failure> {
        let away = self.away.take().expect("a piece is away");
        away.await.map_err(|_| lost())
    }

    /// The body read, with its digest as far as it got.
    pub(crate) async fn finish(mut self) -> Result<Body, Failure> {
        self.settle();
        if self.away.is_some() {
            self.running = Some(self.back().await?);
        }
        Ok(match self.running {
            None => Body::whole(self.chunks),
            Some(running) => Body::begun(self.chunks, running, self.next, self.released),
        })
    }
}

/// The lane hashing a piece panicked: its way back was dropped.
fn lost() -> Failure {
    Failure::Process("processing panicked while hashing the body as it arrived".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tap whose "lanes" hash each piece at once, counting them.
    fn tap(kind: HashKind, keep: bool, pieces: Arc<std::sync::atomic::AtomicUsize>) -> Tap {
        Tap {
            kind,
            keep,
            join: false,
            lanes: Arc::new(move |piece: Piece| {
                pieces.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Box::pin(async move { piece.hash() })
            }),
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 + i / 4099) as u8).collect()
    }

    async fn read(tap: Option<&Tap>, data: &[u8], chunk: usize) -> Body {
        let mut reading = Reading::new(tap, None);
        for c in data.chunks(chunk) {
            reading.push(Bytes::copy_from_slice(c)).await.unwrap();
        }
        assert_eq!(reading.len(), data.len());
        reading.finish().await.unwrap()
    }

    #[tokio::test]
    async fn a_body_hashed_as_it_arrives_has_the_digest_of_the_whole() {
        for kind in [HashKind::Sha256, HashKind::Blake3] {
            for keep in [true, false] {
                for len in [START - 1, START, START + 1, START + PIECE, 5 * START + 77] {
                    let bytes = data(len);
                    let whole = read(None, &bytes, 1 << 20).await;
                    let pieces = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let tap = tap(kind, keep, pieces.clone());
                    let body = read(Some(&tap), &bytes, 40_000).await;
                    let case = format!("{kind:?} keep {keep} len {len}");
                    let expected = match kind {
                        HashKind::Sha256 => crate::process::sha256_hex(&whole),
                        _ => crate::process::blake3_hex(&whole),
                    };
                    let got = body.finish_digest(kind).unwrap_or_else(|| expected.clone());
                    assert_eq!(got, expected, "{case}");
                    assert_eq!(body.len(), len, "{case}");
                    let handed = pieces.load(std::sync::atomic::Ordering::Relaxed);
                    assert_eq!(handed > 0, len > START, "{case}: {handed} pieces");
                    assert_eq!(body.is_begun(), len > START, "{case}");
                    if keep {
                        assert_eq!(&*body.contiguous(), &bytes[..], "{case}");
                    } else if len > START {
                        assert!(body.held() <= AHEAD + 40_000, "{case}: {}", body.held());
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn a_body_to_hash_together_arrives_in_one_buffer() {
        let pieces = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tap = Tap {
            join: true,
            ..tap(HashKind::Sha256, false, pieces.clone())
        };
        let arrive = |length: Option<usize>, bytes: &[u8], chunk: usize| {
            let tap = &tap;
            let chunks: Vec<Bytes> = bytes.chunks(chunk).map(Bytes::copy_from_slice).collect();
            async move {
                let mut reading = Reading::new(Some(tap), length.map(|n| n as u64));
                for c in chunks {
                    reading.push(c).await.unwrap();
                }
                reading.finish().await.unwrap()
            }
        };
        let bytes = data(300_001);
        // Announced and in many chunks: one buffer of exactly the body.
        let body = arrive(Some(bytes.len()), &bytes, 4096).await;
        assert_eq!(body.chunks().len(), 1);
        assert_eq!(&body.chunks()[0][..], &bytes[..]);
        // In one chunk: that chunk, not a copy.
        let one = Bytes::from(bytes.clone());
        let mut reading = Reading::new(Some(&tap), Some(bytes.len() as u64));
        reading.push(one.clone()).await.unwrap();
        let body = reading.finish().await.unwrap();
        assert_eq!(body.chunks()[0].as_ptr(), one.as_ptr());
        // Longer than announced (after three chunks were gathered),
        // unannounced, or past what is hashed whole: every byte kept, in order.
        for (length, len) in [
            (Some(200_000), 300_001),
            (None, 300_001),
            (Some(3 * START), 3 * START),
        ] {
            let bytes = data(len);
            let body = arrive(length, &bytes, 65_536).await;
            let expected =
                crate::process::sha256_hex(&Body::whole(vec![Bytes::from(bytes.clone())]));
            assert_eq!(body.len(), len, "{length:?}");
            let got = body.finish_digest(HashKind::Sha256);
            assert_eq!(
                got.unwrap_or_else(|| crate::process::sha256_hex(&body)),
                expected,
                "{length:?}"
            );
            if len <= START {
                assert_eq!(&*body.contiguous(), &bytes[..], "{length:?}");
                assert!(body.chunks().len() > 1, "{length:?}: kept as it came");
            }
        }
        assert!(pieces.load(std::sync::atomic::Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn a_digest_of_another_kind_is_not_taken_for_this_one() {
        let pieces = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tap = tap(HashKind::Blake3, true, pieces);
        let body = read(Some(&tap), &data(3 * START), 65_536).await;
        assert!(body.finish_digest(HashKind::Sha256).is_none());
        assert!(body.finish_digest(HashKind::Blake3).is_some());
    }

    #[tokio::test]
    async fn a_lane_that_panics_on_a_piece_fails_the_body() {
        let tap = Tap {
            kind: HashKind::Sha256,
            keep: false,
            join: false,
            lanes: Arc::new(|piece: Piece| {
                Box::pin(async move {
                    let _ = crate::process::guarded(move || {
                        let _held = piece;
                        panic!("lane died")
                    });
                })
            }),
        };
        let mut reading = Reading::new(Some(&tap), None);
        let mut result = Ok(());
        for c in data(4 * START).chunks(65_536) {
            result = result.and(reading.push(Bytes::copy_from_slice(c)).await);
        }
        let failure = match result {
            Err(f) => f,
            Ok(()) => reading.finish().await.unwrap_err(),
        };
        assert_eq!(failure.kind(), crate::failure::ErrorKind::Process);
    }
}
