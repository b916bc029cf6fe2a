//! Digests of fetched bodies. One body is hashed with `sha2`. A processing lane
//! that holds several bodies of similar size hashes their SHA-256 together with
//! `tape-sha256`, which gives each message a lane of the CPU's vector or SHA unit:
//! with SHA-NI it interleaves four messages, so one core does the work of two.
//! Measured on the 2-core AMD EPYC of bench/results: 64 x 1 MiB in 21 ms
//! together, 42 ms one by one (1.6 GB/s, the same as OpenSSL).

use std::borrow::Cow;

use sha2::Digest;

use crate::fetch::Body;

/// Hex SHA-256 of one body.
pub fn sha256_hex(body: &Body) -> String {
    let mut hasher = sha2::Sha256::new();
    body.chunks().iter().for_each(|c| hasher.update(c));
    hex::encode(hasher.finalize())
}

/// Hex BLAKE3 of one body.
pub fn blake3_hex(body: &Body) -> String {
    let mut hasher = blake3::Hasher::new();
    body.chunks().iter().for_each(|c| {
        hasher.update(c);
    });
    hasher.finalize().to_hex().to_string()
}

/// How many bodies one call of [`sha256_hex_many`] can hash together.
pub fn batch_width() -> usize {
    tape_sha256::lane_width().max(1)
}

/// Hex SHA-256 of each body, in order: together when that is cheaper, one by
/// one otherwise. The same digests as [`sha256_hex`] either way.
pub fn sha256_hex_many(bodies: &[&Body]) -> Vec<String> {
    let lens: Vec<usize> = bodies.iter().map(|b| b.len()).collect();
    if !worth_hashing_together(&lens, batch_width()) {
        return bodies.iter().map(|b| sha256_hex(b)).collect();
    }
    let whole: Vec<Cow<[u8]>> = bodies.iter().map(|b| b.contiguous()).collect();
    let slices: Vec<&[u8]> = whole.iter().map(|w| w.as_ref()).collect();
    let mut digests = vec![[0u8; 32]; slices.len()];
    tape_sha256::hash_many(&slices, &mut digests);
    digests.iter().map(hex::encode).collect()
}

/// Bodies larger than this are hashed alone: hashing together needs each body in
/// one piece, and copying a large download would double it in memory.
const LARGEST_TOGETHER: usize = 16 << 20;

/// Whether hashing bodies of these lengths together beats hashing them one by
/// one. Together, every lane runs until the longest body is done, and a full set
/// of lanes does the work of at least two single hashes (2.0x measured here with
/// SHA-NI x4; tape-sha256 reports 2.0-6.8x on the hardware it lists). So it pays
/// once the bodies fill more than half of the lanes' capacity; the copy that
/// joins a body's chunks (about a tenth of hashing it) raises that to 3/5.
fn worth_hashing_together(lens: &[usize], lanes: usize) -> bool {
    let longest = lens.iter().copied().max().unwrap_or(0);
    let total: usize = lens.iter().sum();
    lanes > 1
        && lens.len() <= lanes
        && longest <= LARGEST_TOGETHER
        && 5 * total > 3 * lanes * longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A body of `len` bytes in chunks of `chunk`, with content that depends on `seed`.
    fn body(len: usize, chunk: usize, seed: u8) -> Body {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        data.chunks(chunk.max(1))
            .map(Bytes::copy_from_slice)
            .collect()
    }

    #[test]
    fn together_or_alone_the_digests_are_sha256() {
        // Lengths around the 64-byte block and the 55/56-byte padding edge, mixed
        // so that some batches are hashed together and some one by one.
        let lens = [
            0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 70_001,
        ];
        let mut together = 0;
        for (i, &a) in lens.iter().enumerate() {
            for &b in &lens[i..] {
                let bodies = [
                    body(a, 7, 1),
                    body(b, 1 << 12, 2),
                    body(b, b.max(1), 3),
                    body(a.max(b), 1000, 4),
                ];
                let refs: Vec<&Body> = bodies.iter().collect();
                let expected: Vec<String> = bodies
                    .iter()
                    .map(|b| hex::encode(sha2::Sha256::digest(b.contiguous())))
                    .collect();
                for n in 1..=refs.len() {
                    let lens: Vec<usize> = refs[..n].iter().map(|b| b.len()).collect();
                    together += usize::from(worth_hashing_together(&lens, batch_width()));
                    assert_eq!(
                        sha256_hex_many(&refs[..n]),
                        expected[..n],
                        "lens {a} {b}, {n} bodies"
                    );
                }
            }
        }
        assert!(
            batch_width() == 1 || together > 50,
            "{together} batches hashed together"
        );
    }

    #[test]
    fn similar_bodies_go_together_and_lopsided_ones_alone() {
        let mib = 1 << 20;
        assert!(worth_hashing_together(&[mib; 4], 4));
        assert!(worth_hashing_together(&[mib, mib, mib - 100], 4));
        assert!(
            !worth_hashing_together(&[mib; 2], 4),
            "two fill half the lanes: no gain"
        );
        assert!(!worth_hashing_together(&[mib, 1024, 1024, 1024], 4));
        assert!(
            !worth_hashing_together(&[mib; 4], 1),
            "one lane is hashing alone"
        );
        assert!(!worth_hashing_together(&[mib; 4], 16), "4 of 16 lanes");
        assert!(worth_hashing_together(&[mib; 10], 16));
        assert!(!worth_hashing_together(&[LARGEST_TOGETHER + 1; 4], 4));
        assert!(!worth_hashing_together(&[], 4));
    }
}
