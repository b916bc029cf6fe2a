//! What trawl adds to TLS: `--cacert` roots, trusted beside the system store,
//! and the `--cert`/`--key` client identity. They are read and checked once,
//! before the run, so a bad file is exit 2 with its path and the reason rather
//! than a `tls` failure on every https input.

use std::path::Path;

use reqwest::{Certificate, ClientBuilder, Identity};

/// The extra roots and the client identity, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tls {
    extra_roots: Vec<Certificate>,
    identity: Option<Identity>,
}

impl Tls {
    /// Read `--cacert`, `--cert` and `--key`. The error names the flag, the
    /// path and what is wrong with it.
    pub(crate) fn load(
        cacert: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Tls, String> {
        let extra_roots = match cacert {
            None => Vec::new(),
            Some(path) => {
                roots(path).map_err(|why| format!("--cacert '{}': {why}", path.display()))?
            }
        };
        let identity = match cert {
            None => None,
            Some(path) => Some(identity(path, key).map_err(|why| {
                let key = key.map_or(String::new(), |k| format!(" with --key '{}'", k.display()));
                format!("--cert '{}'{key}: {why}", path.display())
            })?),
        };
        Ok(Tls {
            extra_roots,
            identity,
        })
    }

    /// Add the roots (to a client that verifies against the system store) and
    /// the identity (to every client).
    pub(crate) fn apply(&self, mut builder: ClientBuilder, trust_store: bool) -> ClientBuilder {
        if trust_store && !self.extra_roots.is_empty() {
            builder = builder.tls_certs_merge(self.extra_roots.iter().cloned());
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        builder
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}

/// The certificates of a PEM bundle, each accepted by the TLS stack.
fn roots(path: &Path) -> Result<Vec<Certificate>, String> {
    let pem = read(path)?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| chain(&e))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    // Only roots the TLS stack takes: building a client parses each one, and
    // without the system store this loads nothing else.
    client_builder()
        .tls_certs_only(certs.iter().cloned())
        .build()
        .map_err(|e| chain(&e))?;
    Ok(certs)
}

/// A client identity from a certificate file and, unless the file holds it
/// too, a key file.
fn identity(cert: &Path, key: Option<&Path>) -> Result<Identity, String> {
    let mut pem = read(cert)?;
    if let Some(key) = key {
        let key = std::fs::read(key)
            .map_err(|e| format!("cannot read --key '{}': {e}", key.display()))?;
        pem.push(b'\n');
        pem.extend_from_slice(&key);
    }
    let has = |label: &[u8]| pem.windows(label.len()).any(|w| w == label);
    if !has(b"CERTIFICATE-----") {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    if !has(b"PRIVATE KEY-----") {
        return Err(match key {
            None => "no private key in it; give the key with --key FILE".into(),
            Some(_) => "no private key (-----BEGIN PRIVATE KEY-----) in either file".into(),
        });
    }
    let identity = Identity::from_pem(&pem).map_err(|e| chain(&e))?;
    // The key is parsed and matched when a client is built.
    client_builder()
        .tls_certs_only(std::iter::empty())
        .identity(identity.clone())
        .build()
        .map_err(|e| chain(&e))?;
    Ok(identity)
}

/// A client builder with the crypto provider installed: trawl builds rustls on
/// ring (portable assembly, about 2 MB smaller than aws-lc, see the README's
/// Choices), and reqwest takes the process's default provider.
pub(crate) fn client_builder() -> ClientBuilder {
    // Err only when one is installed already (a second client, or a library
    // user's own choice, which is then kept).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
