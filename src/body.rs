//! A fetched body: produced by the fetch stage, read by hashing and processing.

use bytes::Bytes;

/// A decoded body, kept as the chunks it arrived in. Copying them into one
/// buffer cost a large allocation per body (for 1 MiB: an mmap, 256 page faults
/// and an munmap in glibc) on top of the copy; hashing works chunk by chunk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Body {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Body {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// The body in one piece: free when it arrived in one chunk, a copy otherwise.
    pub(crate) fn contiguous(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.chunks.as_slice() {
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
