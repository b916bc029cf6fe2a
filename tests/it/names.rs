//! Host names: `--resolve` pins (per port, several addresses, TLS keeping the
//! name), names the system resolves (`localhost` from the hosts file), and IPv6
//! literals. The servers are raw HTTP/1.1 on loopback addresses chosen here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{lines, run, self_signed_tls};

/// What a test server saw: the Host header of each request, and TLS SNI names.
#[derive(Default)]
struct Seen {
    hosts: Mutex<Vec<String>>,
    sni: Mutex<Vec<String>>,
}

/// Answer one HTTP/1.1 request with `ok` and close.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, seen: &Seen) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_lowercase();
    if let Some(host) = text.lines().find_map(|l| l.strip_prefix("host:")) {
        seen.hosts.lock().unwrap().push(host.trim().to_owned());
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
        .await;
    let _ = stream.shutdown().await;
}

/// A plain HTTP server on `bind` (e.g. `127.0.0.1:0`); `None` if it cannot bind.
async fn serve(bind: &str) -> Option<(SocketAddr, Arc<Seen>)> {
    let listener = TcpListener::bind(bind).await.ok()?;
    let addr = listener.local_addr().ok()?;
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move { answer(tcp, &s).await });
        }
    });
    Some((addr, seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_pins_a_name_at_its_port_and_keeps_the_name_in_host() {
    let (addr, seen) = serve("127.0.0.1:0").await.unwrap();
    let port = addr.port();
    let pin = format!("pinned.test:{port}:127.0.0.1");
    let run = run(
        &["--resolve", &pin, "--retries", "0"],
        lines([
            format!("http://pinned.test:{port}/a"),
            format!("http://PINNED.test:{port}/b"),
        ]),
    )
    .await;
    assert!(run.records.iter().all(|r| r.ok), "{:#?}", run.records);
    let hosts = seen.hosts.lock().unwrap().clone();
    assert_eq!(hosts, vec![format!("pinned.test:{port}"); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_for_another_port_leaves_the_name_to_the_system() {
    let (addr, _) = serve("127.0.0.1:0").await.unwrap();
    let port = addr.port();
    // localhost comes from the hosts file. Pinned at port 1 to an address where
    // nothing listens: requests to its other ports must not follow the pin.
    let run = run(
        &["--resolve", "localhost:1:127.0.0.9", "--retries", "0"],
        lines([
            format!("http://localhost:{port}/"),
            "http://localhost:1/".to_owned(),
        ]),
    )
    .await;
    assert!(run.at(0).ok, "{:?}", run.at(0));
    let pinned = run.at(1);
    assert_eq!(
        pinned.error.as_ref().map(|e| e.kind),
        Some(trawl::ErrorKind::Connect),
        "{pinned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_first_address_refuses_the_next_is_tried() {
    let (addr, seen) = serve("127.0.0.1:0").await.unwrap();
    let port = addr.port();
    // 127.0.0.9 is loopback too, but nothing listens on it: refused at once.
    let pin = format!("two.test:{port}:127.0.0.9,127.0.0.1");
    let run = run(
        &["--resolve", &pin, "--retries", "0"],
        lines([format!("http://two.test:{port}/")]),
    )
    .await;
    assert!(run.at(0).ok, "{:?}", run.at(0));
    assert_eq!(run.at(0).attempts, Some(1));
    assert_eq!(seen.hosts.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_pinned_name_sends_the_name_as_sni_and_verifies_it() {
    let acceptor = self_signed_tls(&[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, s) = (acceptor.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Some(name) = tls.get_ref().1.server_name() {
                    s.sni.lock().unwrap().push(name.to_owned());
                }
                answer(tls, &s).await;
            });
        }
    });
    let pin = format!("secure.test:{port}:127.0.0.1");
    let url = format!("https://secure.test:{port}/");
    let insecure = run(&["--resolve", &pin, "--insecure"], lines([url.clone()])).await;
    assert!(insecure.at(0).ok, "{:?}", insecure.at(0));
    assert_eq!(seen.sni.lock().unwrap().clone(), ["secure.test"]);
    // Verified, the self-signed certificate (for 127.0.0.1, from no trusted CA) fails.
    let verified = run(&["--resolve", &pin, "--retries", "0"], lines([url])).await;
    assert_eq!(
        verified.at(0).error.as_ref().map(|e| e.kind),
        Some(trawl::ErrorKind::Tls),
        "{:?}",
        verified.at(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_literals_are_fetched() {
    let Some((addr, seen)) = serve("[::1]:0").await else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    let run = run(&["--retries", "0"], lines([format!("http://{addr}/six")])).await;
    let record = run.at(0);
    assert!(record.ok, "{record:?}");
    assert_eq!(
        record.url.as_deref(),
        Some(format!("http://[::1]:{}/six", addr.port()).as_str())
    );
    assert_eq!(
        seen.hosts.lock().unwrap().clone(),
        [format!("[::1]:{}", addr.port())]
    );
}
