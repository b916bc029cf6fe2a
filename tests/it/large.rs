//! Large bodies: hashed while they arrive (tap.rs), whole or let go, and a body
//! that breaks off mid-way and is fetched again gets a digest of its own.

use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Server, assert_one_per_index, lines, run};

const MIB: usize = 1 << 20;

/// Bodies well past the size where hashing begins as they arrive: every digest
/// must be the one of the body the server sent, whether the body is kept
/// (`--save` writes it) or let go piece by piece (plain `--hash`). Bodies of
/// 1 MiB between them share the lanes' batches with them and are hashed whole,
/// together where that pays (CI forces both ways).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_hashed_right_as_they_arrive() {
    let server = Server::start().await.unwrap();
    let sizes: Vec<usize> = (0..16)
        .map(|i| match i % 2 {
            0 => 3 * MIB + i * 100_003,
            _ => MIB + i * 1001,
        })
        .collect();
    let input = lines(sizes.iter().map(|n| server.url(&format!("/bytes/{n}"))));
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().to_str().unwrap();
    let kept = run(&["-c", "4", "--save", save], input.clone()).await;
    let let_go = run(&["-c", "4"], input.clone()).await;
    let blake = run(&["-c", "4", "--hash", "blake3"], input).await;
    for run in [&kept, &let_go, &blake] {
        assert_one_per_index(&run.records, sizes.len() as u64);
    }
    for (i, &size) in sizes.iter().enumerate() {
        let saved = kept.at(i as u64).saved.clone().expect("saved");
        let body = std::fs::read(&saved).unwrap();
        assert_eq!(body.len(), size);
        let sha = hex::encode(sha2::Sha256::digest(&body));
        assert_eq!(
            kept.at(i as u64).sha256.as_deref(),
            Some(sha.as_str()),
            "kept {i}"
        );
        let r = let_go.at(i as u64);
        assert_eq!(r.sha256.as_deref(), Some(sha.as_str()), "let go {i}");
        assert_eq!(r.bytes, Some(size as u64));
        let b3 = blake3::hash(&body).to_hex().to_string();
        assert_eq!(
            blake.at(i as u64).blake3.as_deref(),
            Some(b3.as_str()),
            "blake3 {i}"
        );
    }
}

/// A server whose first answer breaks off after 3 MiB of a 5 MiB body and whose
/// later answers are whole: the retry's digest starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_and_fetched_again_gets_a_fresh_digest() {
    let body: Vec<u8> = (0..5 * MIB).map(|i| (i % 251) as u8).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = body.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let cut = std::mem::take(&mut first);
            let served = served.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let start = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    served.len()
                );
                let sent = if cut { 3 * MIB } else { served.len() };
                let _ = tcp.write_all(start.as_bytes()).await;
                let _ = tcp.write_all(&served[..sent]).await;
            });
        }
    });
    let url = format!("http://127.0.0.1:{port}/five");
    let run = run(&["--retries", "1"], lines([url])).await;
    let r = run.at(0);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.attempts, Some(2), "{r:?}");
    assert_eq!(r.bytes, Some(body.len() as u64));
    let sha = hex::encode(sha2::Sha256::digest(&body));
    assert_eq!(r.sha256.as_deref(), Some(sha.as_str()));
}
