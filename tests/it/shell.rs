//! Fitting the shell and CI like curl: URL arguments, a private CA, client
//! certificates, basic auth, HTTP version flags, completions, the man page and
//! the JSON Schemas. Every server is started here, on 127.0.0.1.

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::rustls;

use crate::support::{Output, bin, lines, parse_records, run, validate};

/// What a test server saw: each request's path and its Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Answers every request: `/hop?to=URL` redirects to URL, anything else is
/// `200 ok`. With `acceptor`, over TLS (HTTP/1.1 or HTTP/2 by ALPN); with
/// `h2c`, plain HTTP/2 only.
async fn server(acceptor: Option<tokio_rustls::TlsAcceptor>, h2c: bool) -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned());
                        log.lock()
                            .unwrap()
                            .push((req.uri().path().to_owned(), auth));
                        let target = req.uri().query().and_then(|q| q.strip_prefix("to="));
                        let response = match target {
                            Some(to) => hyper::Response::builder()
                                .status(302)
                                .header("location", to)
                                .body(String::new()),
                            None => hyper::Response::builder().body("ok\n".to_owned()),
                        };
                        Ok::<_, Infallible>(response.unwrap())
                    }
                });
                let auto = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = match (acceptor, h2c) {
                    (Some(acceptor), _) => match acceptor.accept(tcp).await {
                        Ok(tls) => auto.serve_connection(TokioIo::new(tls), service).await,
                        Err(_) => return,
                    },
                    (None, true) => {
                        auto.http2_only()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await
                    }
                    (None, false) => auto.serve_connection(TokioIo::new(tcp), service).await,
                };
            });
        }
    });
    (port, seen)
}

/// A private CA, a server certificate it signed for `secure.test`, and a
/// client certificate it signed, written as PEM files into `dir`.
struct Pki {
    ca: rustls::pki_types::CertificateDer<'static>,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki(dir: &Path) -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "trawl test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["secure.test".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client.test".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    let both = format!("{}{}", client.pem(), client_key.serialize_pem());
    std::fs::write(dir.join("client-and-key.pem"), both).unwrap();
    Pki {
        ca: ca.der().clone(),
        server_cert: server.der().clone(),
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    }
}

/// TLS for `secure.test` offering h2 and http/1.1; with `demand_client`, the
/// handshake needs a client certificate from the CA.
fn acceptor(pki: &Pki, demand_client: bool) -> tokio_rustls::TlsAcceptor {
    let builder = rustls::ServerConfig::builder();
    let builder = if demand_client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn trawl(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_arguments_are_fetched_in_order_among_files() {
    let (port, _) = server(None, false).await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");
    std::fs::write(&list, lines([url("a"), url("b")])).unwrap();
    let (first, last) = (url("first"), url("last"));
    let list = list.to_str().unwrap().to_owned();
    let out =
        tokio::task::spawn_blocking(move || trawl(&["-q", "--ordered", &first, &list, &last]))
            .await
            .unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let records = parse_records(&out.stdout);
    let got: Vec<(u64, &str)> = records
        .iter()
        .map(|r| {
            (
                r.index,
                r.url.as_deref().unwrap().rsplit('/').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(0, "first"), (1, "a"), (2, "b"), (3, "last")]);
    assert!(records.iter().all(|r| r.ok), "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacert_trusts_a_private_ca_beside_the_system_store() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (port, _) = server(Some(acceptor(&pki, false)), false).await;
    let pin = format!("secure.test:{port}:127.0.0.1");
    let list = format!("https://secure.test:{port}/x\n");
    let ca = dir.path().join("ca.pem").display().to_string();
    let trusted = run(&["--cacert", &ca, "--resolve", &pin], &list).await;
    let r = trusted.at(0);
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.http_version.as_deref(),
        Some("2"),
        "ALPN still agrees on h2"
    );
    let untrusted = run(&["--resolve", &pin], &list).await;
    let r = untrusted.at(0);
    assert_eq!(
        r.error.as_ref().map(|e| e.kind.as_str()),
        Some("tls"),
        "{r:?}"
    );
    let h1 = run(&["--cacert", &ca, "--resolve", &pin, "--http1.1"], &list).await;
    assert_eq!(
        h1.at(0).http_version.as_deref(),
        Some("1.1"),
        "{:?}",
        h1.at(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_opens_a_server_that_demands_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (port, seen) = server(Some(acceptor(&pki, true)), false).await;
    let pin = format!("secure.test:{port}:127.0.0.1");
    let list = format!("https://secure.test:{port}/x\n");
    let file = |name: &str| dir.path().join(name).display().to_string();
    let ca = file("ca.pem");
    let (cert, key, both) = (
        file("client.pem"),
        file("client.key"),
        file("client-and-key.pem"),
    );
    let with_key = run(
        &[
            "--cacert",
            &ca,
            "--resolve",
            &pin,
            "--cert",
            &cert,
            "--key",
            &key,
        ],
        &list,
    )
    .await;
    assert!(with_key.at(0).ok, "{:?}", with_key.at(0));
    let one_file = run(
        &["--cacert", &ca, "--resolve", &pin, "--cert", &both],
        &list,
    )
    .await;
    assert!(one_file.at(0).ok, "{:?}", one_file.at(0));
    assert_eq!(seen.lock().unwrap().len(), 2);
    let without = run(
        &["--cacert", &ca, "--resolve", &pin, "--retries", "0"],
        &list,
    )
    .await;
    assert!(!without.at(0).ok, "{:?}", without.at(0));
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no request got through without a certificate"
    );
}

#[test]
fn a_bad_tls_file_is_exit_2_with_its_path_and_why() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--cacert", "/nonexistent/ca.pem"], "cannot read"),
        (&["--cacert", &file("junk.pem")], "no PEM certificate"),
        (&["--cert", &file("client.pem")], "no private key"),
        (
            &["--cert", &file("client.pem"), "--key", &file("ca.pem")],
            // Regression: said "give the key with --key" when it was given.
            "no private key (-----BEGIN PRIVATE KEY-----) in either file",
        ),
        (&["-u", "nopassword"], "USER:PASSWORD"),
    ];
    for (args, why) in cases {
        let mut argv = args.to_vec();
        argv.push("/dev/null");
        let out = trawl(&argv);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "nothing fetched: {}", out.stdout);
        if let Some(path) = args.get(1).filter(|a| a.contains('/')) {
            assert!(out.stderr.contains(*path), "{args:?}: {}", out.stderr);
        }
    }
    let out = trawl(&["--key", &file("client.key"), "/dev/null"]);
    assert_eq!(out.code, Some(2), "--key needs --cert: {}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_speaks_h2c_on_http() {
    let (port, _) = server(None, true).await;
    let list = format!("http://127.0.0.1:{port}/x\n");
    let h2c = run(&["--http2-prior-knowledge"], &list).await;
    assert!(h2c.at(0).ok, "{:?}", h2c.at(0));
    assert_eq!(h2c.at(0).http_version.as_deref(), Some("2"));
    let plain = run(&["--retries", "0"], &list).await;
    assert!(
        !plain.at(0).ok,
        "an HTTP/1.1 request to an h2-only server fails"
    );
    let out = trawl(&["--http1.1", "--http2-prior-knowledge", "/dev/null"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_sent_and_dropped_on_a_redirect_to_another_host() {
    let (port, seen) = server(None, false).await;
    let here = format!("http://127.0.0.1:{port}");
    let other = format!("http://other.test:{port}");
    let list = lines([
        format!("{here}/hop?to={here}/same"),
        format!("{here}/hop?to={other}/elsewhere"),
    ]);
    let pin = format!("other.test:{port}:127.0.0.1");
    let run = run(&["-u", "aladdin:opensesame", "--resolve", &pin], list).await;
    assert!(run.records.iter().all(|r| r.ok), "{:?}", run.records);
    let basic = Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l".to_owned());
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("/elsewhere".to_owned(), None),
            ("/hop".to_owned(), basic.clone()),
            ("/hop".to_owned(), basic.clone()),
            ("/same".to_owned(), basic),
        ]
    );
}

#[test]
fn completions_for_every_shell_and_a_roff_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = trawl(&["completions", shell]);
        assert_eq!(out.code, Some(0), "{shell}: {}", out.stderr);
        assert!(
            out.stdout.contains("concurrency"),
            "{shell}: {}",
            out.stdout
        );
    }
    let man = trawl(&["man"]);
    assert_eq!(man.code, Some(0), "{}", man.stderr);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains("\n.TH trawl"),
        "{}",
        &man.stdout[..200]
    );
    assert!(man.stdout.contains(".SH NAME") && man.stdout.contains("concurrency"));
    assert_eq!(trawl(&["completions", "tcsh"]).code, Some(2));
}

#[test]
fn the_schemas_are_draft_2020_12_and_reject_a_wrong_record() {
    let out = trawl(&["schema"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        printed,
        trawl::schema::record(),
        "the binary prints the library's schema"
    );
    assert!(printed["$schema"].as_str().unwrap().contains("2020-12"));
    let good = serde_json::json!({"index": 0, "input": "http://x/", "ok": true, "status": 200});
    validate(&trawl::schema::record(), &good).unwrap();
    let bad = serde_json::json!({"index": 0, "input": "http://x/", "ok": "yes"});
    assert!(
        validate(&trawl::schema::record(), &bad).is_err(),
        "ok must be a boolean"
    );
    let kind = serde_json::json!({"index": 0, "input": "x", "ok": false,
        "error": {"kind": "no_such_kind", "message": "m"}});
    assert!(
        validate(&trawl::schema::record(), &kind).is_err(),
        "kinds are a closed list"
    );
    let summary = trawl(&["schema", "summary"]);
    let printed: serde_json::Value = serde_json::from_str(&summary.stdout).unwrap();
    assert!(
        printed["properties"]["schema_version"].is_object(),
        "{printed}"
    );
}
