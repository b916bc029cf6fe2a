//! Digests of fetched bodies. One body is hashed with `sha2`. A processing lane
//! that holds several bodies of similar size hashes their SHA-256 together with
//! `tape-sha256`, which runs independent messages in lockstep, one per lane of
//! the CPU's SHA or vector unit (SHA-NI x4, AVX2 x8, AVX-512 x16, NEON), where
//! that is measured to pay on the CPU at hand: each run times the kernel on 2,
//! 3 and 4 bodies against `sha2` once ([`group`]) and hashes together only
//! groups at least that large. The lanes hold few bodies (a couple per lane, to
//! bound memory), so a group is small whatever the kernel's width.
//! `TRAWL_HASH_TOGETHER=always|never` forces either path (tests and CI use it,
//! so both run on every CPU).

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::fetch::Body;

/// Hex SHA-256 of one body.
pub(crate) fn sha256_hex(body: &Body) -> String {
    let mut hasher = sha2::Sha256::new();
    body.chunks().iter().for_each(|c| hasher.update(c));
    hex::encode(hasher.finalize())
}

/// Hex BLAKE3 of one body.
pub(crate) fn blake3_hex(body: &Body) -> String {
    let mut hasher = blake3::Hasher::new();
    body.chunks().iter().for_each(|c| {
        hasher.update(c);
    });
    hasher.finalize().to_hex().to_string()
}

/// How many bodies the CPU's multi-buffer kernel hashes in one pass.
pub(crate) fn kernel_width() -> usize {
    tape_sha256::lane_width().max(1)
}

/// The multi-buffer kernel in use and the group size measured for it, for
/// `--version` and benchmark results.
pub(crate) fn kernel() -> String {
    let group = match group(Together::Auto) {
        Some(n) => format!("together from {n} bodies on"),
        None => "never together (no gain measured)".to_owned(),
    };
    format!(
        "tape-sha256 {} (width {}), {group}",
        tape_sha256::backend(),
        kernel_width()
    )
}

/// The fewest bodies worth hashing together on this CPU: `None` if hashing
/// together does not pay. Measured once per run (`calibrate`), unless forced.
pub(crate) fn group(mode: Together) -> Option<usize> {
    static MEASURED: OnceLock<Option<usize>> = OnceLock::new();
    match mode {
        Together::Always => Some(2),
        Together::Never => None,
        Together::Auto => *MEASURED.get_or_init(calibrate),
    }
}

/// The smallest group (2 to 4 bodies) that the kernel hashes at least 3%
/// faster than `sha2` one by one. The kernel's width does not tell: on an Intel
/// Xeon with AVX-512 (width 16) and SHA-NI, 2 or 3 bodies together were 4%
/// slower than one by one and 4 were 21% faster hot (median of 600 runs; 6%
/// to 25%, the spread is the process's, not the machine's load) and 60% cold
/// (the SHA-NI four-stream kernel), while 2 and 3 never came within 3% of
/// `sha2`. About a millisecond, on 16 KiB messages in cache, after a warm-up;
/// the fastest of nine tries of each, interleaved.
fn calibrate() -> Option<usize> {
    // Four messages in static memory (no allocation), apart by more than a
    // page so that their addresses do not alias each other's.
    const LEN: usize = 16 << 10;
    const APART: usize = LEN + 4096 + 320;
    static MESSAGES: [u8; 4 * APART] = [0x5a; 4 * APART];
    let messages: [&[u8]; 4] = std::array::from_fn(|i| &MESSAGES[i * APART..][..LEN]);
    let alone = |n: usize| {
        for m in &messages[..n] {
            std::hint::black_box(sha2::Sha256::digest(m));
        }
    };
    let together = |n: usize| {
        let mut digests = [[0u8; 32]; 4];
        tape_sha256::hash_many(&messages[..n], &mut digests[..n]);
        std::hint::black_box(digests);
    };
    let timed = |work: &dyn Fn(usize), n| {
        let start = Instant::now();
        work(n);
        start.elapsed()
    };
    // Untimed first runs: code, caches and the vector unit warmed up.
    alone(4);
    together(4);
    (2..=4).find(|&n| {
        // Interleaved, so a busy moment slows both sides; the fastest of each.
        let (mut one, mut many) = (Duration::MAX, Duration::MAX);
        for _ in 0..9 {
            one = one.min(timed(&alone, n));
            many = many.min(timed(&together, n));
        }
        many.mul_f64(1.03) < one
    })
}

/// Whether a batch is hashed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Together {
    /// When the bodies are of similar size.
    Auto,
    /// Whenever there are two or more bodies (tests and CI force this path).
    Always,
    /// Never: one by one with `sha2`.
    Never,
}

impl Together {
    /// From `TRAWL_HASH_TOGETHER` (`always`, `never`; anything else is `auto`).
    pub(crate) fn from_env() -> Together {
        match std::env::var("TRAWL_HASH_TOGETHER").as_deref() {
            Ok("always") => Together::Always,
            Ok("never") => Together::Never,
            _ => Together::Auto,
        }
    }
}

/// Hex SHA-256 of each body, in order: together when `mode` says so, one by
/// one otherwise. The same digests as [`sha256_hex`] either way.
pub(crate) fn sha256_hex_many(bodies: &[&Body], mode: Together) -> Vec<String> {
    let lens: Vec<usize> = bodies.iter().map(|b| b.len()).collect();
    let together = match mode {
        Together::Always => bodies.len() > 1,
        _ => group(mode).is_some_and(|n| worth_hashing_together(&lens, n)),
    };
    if !together {
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
/// one, where hashing together pays from `group` bodies on. Together, every
/// lane of the kernel runs until the longest body is done, so the bodies must
/// be of similar size (on average at least 3/5 of the longest).
fn worth_hashing_together(lens: &[usize], group: usize) -> bool {
    let longest = lens.iter().copied().max().unwrap_or(0);
    let total: usize = lens.iter().sum();
    lens.len() >= group.max(2)
        && longest <= LARGEST_TOGETHER
        && 5 * total > 3 * lens.len() * longest
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
        // Lengths around the 64-byte block and the 55/56-byte padding edge. Each
        // path is forced, so both run whatever the CPU's kernel and its width.
        let lens = [
            0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 70_001,
        ];
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
                    for mode in [Together::Always, Together::Never, Together::Auto] {
                        assert_eq!(
                            sha256_hex_many(&refs[..n], mode),
                            expected[..n],
                            "lens {a} {b}, {n} bodies, {mode:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn many_bodies_of_one_size_fill_every_kernel_and_hash_right() {
        // More bodies than any kernel's width (up to 32 lanes), so every lane of
        // whatever kernel this CPU has carries a message.
        let bodies: Vec<Body> = (0..40).map(|i| body(3000 + i, 512, i as u8)).collect();
        let refs: Vec<&Body> = bodies.iter().collect();
        let expected: Vec<String> = bodies.iter().map(sha256_hex).collect();
        assert_eq!(sha256_hex_many(&refs, Together::Always), expected);
        assert!(kernel().contains("width"), "{}", kernel());
    }

    #[test]
    fn similar_bodies_go_together_and_lopsided_ones_alone() {
        let mib = 1 << 20;
        assert!(worth_hashing_together(&[mib; 4], 4));
        assert!(worth_hashing_together(&[mib, mib - 100], 2));
        assert!(
            !worth_hashing_together(&[mib, mib - 100], 4),
            "fewer than the group"
        );
        assert!(
            worth_hashing_together(&[mib; 40], 4),
            "any count from the group on"
        );
        assert!(!worth_hashing_together(&[mib, 1024, 1024, 1024], 2));
        assert!(!worth_hashing_together(&[mib, mib / 8], 2));
        assert!(
            !worth_hashing_together(&[mib], 1),
            "one body is hashed alone"
        );
        assert!(!worth_hashing_together(&[LARGEST_TOGETHER + 1; 4], 2));
        assert!(!worth_hashing_together(&[], 2));
    }

    #[test]
    fn the_group_is_forced_or_measured_within_bounds() {
        assert_eq!(group(Together::Always), Some(2));
        assert_eq!(group(Together::Never), None);
        // Whatever this CPU measures, it is a group the lanes can hold.
        let measured = group(Together::Auto);
        assert!(
            measured.is_none_or(|n| (2..=4).contains(&n)),
            "{measured:?}"
        );
    }
}
