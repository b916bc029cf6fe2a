//! A fetched body: produced by the fetch stage, read by hashing and processing.

use bytes::Bytes;

use super::digest::Running;
use crate::values::HashKind;

/// A decoded body, kept as the chunks it arrived in: hashing one body works
/// chunk by chunk. Only where the lanes may hash it together with others, which
/// needs it in one piece, does a body of known length arrive as one chunk
/// (`tap.rs` gathers it as it is read).
///
/// A large body may have been hashed in pieces while it arrived (`tap.rs`):
/// then `begun` holds that digest and how many of `chunks` it has taken (with
/// every byte before them). When nothing needs the body whole, the pieces
/// hashed were let go, and `chunks` holds only the rest.
#[derive(Clone, Default)]
pub(crate) struct Body {
    chunks: Vec<Bytes>,
    len: usize,
    begun: Option<Box<(Running, usize)>>,
    /// Bytes hashed as they arrived and let go: not in `chunks`.
    released: usize,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .field("released", &self.released)
            .finish()
    }
}

impl Body {
    /// A body of these chunks, in full.
    pub(crate) fn whole(chunks: Vec<Bytes>) -> Body {
        let len = chunks.iter().map(Bytes::len).sum();
        Body {
            chunks,
            len,
            begun: None,
            released: 0,
        }
    }

    /// A body whose first `taken` chunks a digest has already taken (of
    /// `released` bytes let go before `chunks`, and the kept `chunks`).
    pub(crate) fn begun(
        chunks: Vec<Bytes>,
        running: Running,
        taken: usize,
        released: usize,
    ) -> Body {
        let len = released + chunks.iter().map(Bytes::len).sum::<usize>();
        Body {
            chunks,
            len,
            begun: Some(Box::new((running, taken))),
            released,
        }
    }

    /// Its length in bytes, including bytes hashed and let go.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes held in memory.
    pub(crate) fn held(&self) -> usize {
        self.len - self.released
    }

    /// Every chunk of the body; only for a body kept whole.
    pub(crate) fn chunks(&self) -> &[Bytes] {
        debug_assert_eq!(self.released, 0, "the body was hashed and let go");
        &self.chunks
    }

    /// Whether a digest of it was begun as it arrived.
    pub(crate) fn is_begun(&self) -> bool {
        self.begun.is_some()
    }

    /// The digest begun as it arrived, finished: `None` if none was begun, or
    /// one of another kind.
    pub(crate) fn finish_digest(&self, kind: HashKind) -> Option<String> {
        let (running, taken) = self.begun.as_deref().filter(|(r, _)| r.kind() == kind)?;
        let mut running = running.clone();
        self.chunks[*taken..].iter().for_each(|c| running.update(c));
        Some(running.finish_hex())
    }

    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// The body in one piece: free when it arrived in one chunk, a copy otherwise.
    pub(crate) fn contiguous(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.chunks() {
            [] => std::borrow::Cow::Borrowed(&[]),
            [one] => std::borrow::Cow::Borrowed(one),
            many => std::borrow::Cow::Owned(many.concat()),
        }
    }
}

impl FromIterator<Bytes> for Body {
    fn from_iter<I: IntoIterator<Item = Bytes>>(chunks: I) -> Body {
        let mut body = Body::default();
        chunks.into_iter().for_each(|c| body.push(c));
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_chunks_and_join_on_demand() {
        let one: Body = [Bytes::from_static(b"abc")].into_iter().collect();
        assert!(matches!(
            one.contiguous(),
            std::borrow::Cow::Borrowed(b"abc")
        ));
        let many: Body = [&b"ab"[..], b"", b"cd"]
            .map(Bytes::from_static)
            .into_iter()
            .collect();
        assert_eq!((many.len(), &*many.contiguous()), (4, &b"abcd"[..]));
        assert_eq!(Body::default().len(), 0);
    }
}
