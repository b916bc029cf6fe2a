//! A digest taken piece by piece, so a body can be hashed while it arrives.

use sha2::Digest;

use crate::values::HashKind;

/// SHA-256 or BLAKE3 of everything fed so far.
#[derive(Clone)]
pub(crate) enum Running {
    Sha256(sha2::Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl Running {
    /// A digest of `kind` with nothing fed; `None` for `--hash none`.
    pub(crate) fn new(kind: HashKind) -> Option<Running> {
        match kind {
            HashKind::Sha256 => Some(Running::Sha256(sha2::Sha256::new())),
            HashKind::Blake3 => Some(Running::Blake3(Box::default())),
            HashKind::None => None,
        }
    }

    pub(crate) fn kind(&self) -> HashKind {
        match self {
            Running::Sha256(_) => HashKind::Sha256,
            Running::Blake3(_) => HashKind::Blake3,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Running::Sha256(h) => h.update(data),
            Running::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// The digest in lowercase hex.
    pub(crate) fn finish_hex(self) -> String {
        match self {
            Running::Sha256(h) => hex::encode(h.finalize()),
            Running::Blake3(h) => h.finalize().to_hex().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fed_in_pieces_it_is_the_digest_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        for kind in [HashKind::Sha256, HashKind::Blake3] {
            let mut whole = Running::new(kind).unwrap();
            whole.update(&data);
            let mut pieces = Running::new(kind).unwrap();
            data.chunks(999).for_each(|c| pieces.update(c));
            assert_eq!(pieces.kind(), kind);
            assert_eq!(whole.finish_hex(), pieces.finish_hex());
        }
        assert!(Running::new(HashKind::None).is_none());
    }
}
