//! Helpers: run trawl in-process on a list, or run the real binary, and read the
//! JSON lines back as typed records.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use clap::Parser;
use trawl::Cli;
use trawl::InputSpec;
use trawl::Progress;
use trawl::Record;
use trawl::{Outcome, Shutdown};

pub use trawl::demo::Server;

pub struct Run {
    pub records: Vec<Record>,
    pub outcome: Outcome,
    pub dir: tempfile::TempDir,
}

impl Run {
    /// The record with this input index (exactly one must exist).
    pub fn at(&self, index: u64) -> &Record {
        let found: Vec<&Record> = self.records.iter().filter(|r| r.index == index).collect();
        assert_eq!(found.len(), 1, "index {index} in {:#?}", self.records);
        found[0]
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Run trawl in-process with `args` on `input` (written to a file), records to `-o`.
pub async fn run(args: &[&str], input: impl AsRef<[u8]>) -> Run {
    run_with(args, input, |cfg| cfg).await
}

/// [`run`] with every name answered "not found" by an injected resolver, so a
/// `dns` failure never asks the machine's nameserver (`.invalid` included:
/// with `hosts: files dns` glibc sends it on).
pub async fn run_offline(args: &[&str], input: impl AsRef<[u8]>) -> Run {
    run_with(args, input, |cfg| {
        cfg.with_lookup(|host| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host}: no such name (the test's resolver)"),
            ))
        })
    })
    .await
}

async fn run_with(
    args: &[&str],
    input: impl AsRef<[u8]>,
    adjust: impl FnOnce(trawl::Config) -> trawl::Config,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, input).unwrap();
    let out = dir.path().join("out.jsonl");
    let mut argv: Vec<String> = vec![
        "trawl".into(),
        "-q".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    argv.extend(
        args.iter()
            .map(|a| a.replace("{dir}", &dir.path().display().to_string())),
    );
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let cfg = adjust(cli.run.into_config(vec![InputSpec::File(list)]).unwrap());
    let outcome = trawl::run(Arc::new(cfg), Progress::hidden(), Shutdown::new())
        .await
        .unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let records = read_records(&out);
    Run {
        records,
        outcome,
        dir,
    }
}

/// Parse a JSON-lines file into typed records; every line must parse.
pub fn read_records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_records(&text)
}

/// Parse JSON lines into typed records; every line must parse and match the
/// published record schema (`trawl schema`).
pub fn parse_records(text: &str) -> Vec<Record> {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let schema =
        SCHEMA.get_or_init(|| jsonschema::validator_for(&trawl::schema::record()).unwrap());
    text.lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
            if let Err(e) = schema.validate(&value) {
                panic!("line {line:?} does not match the record schema: {e}");
            }
            serde_json::from_value(value).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
        })
        .collect()
}

/// Check `value` against a JSON Schema.
pub fn validate(schema: &serde_json::Value, value: &serde_json::Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
    validator.validate(value).map_err(|e| e.to_string())
}

/// Each index in 0..n appears exactly once.
pub fn assert_one_per_index(records: &[Record], n: u64) {
    let mut indices: Vec<u64> = records.iter().map(|r| r.index).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..n).collect::<Vec<_>>(), "records: {records:#?}");
}

pub fn lines(urls: impl IntoIterator<Item = String>) -> String {
    urls.into_iter().map(|u| u + "\n").collect()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_trawl")
}

/// What a run of the real binary printed, and how it exited.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
}

/// A TLS server config with a fresh self-signed certificate for 127.0.0.1,
/// offering the ALPN protocols `alpn` (e.g. `h2`).
pub fn self_signed_tls(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
        cert.signing_key.serialize_der().into(),
    );
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serve plain HTTP (1.1 or h2c) on 127.0.0.1 with `answer` for every request;
/// returns the port.
pub async fn serve<F>(answer: F) -> u16
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> hyper::Response<String>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = answer(req);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
            });
        }
    });
    port
}

/// What the raw server does for one request.
pub struct Reply {
    pub bytes: Vec<u8>,
    /// Keep the connection open (and silent) this long after the bytes.
    pub stall: Duration,
}

pub fn reply(status: u16, headers: &str, body: &[u8]) -> Reply {
    let mut bytes = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    Reply {
        bytes,
        stall: Duration::ZERO,
    }
}

pub fn page() -> Reply {
    reply(200, "Content-Type: text/plain\r\n", b"page\n")
}

pub type Seen = Arc<Mutex<Vec<String>>>;

/// A server that writes raw bytes: each request's target (as sent, on the
/// request line) and its whole head are kept, and `answer(target)` says what
/// goes back. One request per connection.
pub async fn raw<F>(answer: F) -> (u16, Seen, Seen)
where
    F: Fn(&str) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen, heads): (Seen, Seen) = Default::default();
    let (log, heads_log) = (seen.clone(), heads.clone());
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, heads_log, answer) = (log.clone(), heads_log.clone(), answer.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let target = text.split(' ').nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(target.clone());
                heads_log.lock().unwrap().push(text.into_owned());
                let r = answer(&target);
                let _ = socket.write_all(&r.bytes).await;
                tokio::time::sleep(r.stall).await;
            });
        }
    });
    (port, seen, heads)
}
