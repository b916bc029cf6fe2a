//! The HTTP clients: one per kind of URL (certificates checked or not, a port
//! that `--resolve` pins, HTTP/2 with prior knowledge), each built on first use
//! and shared by every request of its kind: pooled connections, HTTP/2 by ALPN,
//! transparent gzip/br/zstd/deflate decoding. Redirects are left to the fetch
//! stage, so it can count them and drop credentials when the host changes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::OnceCell;
use url::Url;

use super::resolve::{self, Pin, Resolver};
use super::tls::Tls;
use crate::failure::Failure;

/// What the clients are built with.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub(crate) user_agent: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) insecure: bool,
    pub(crate) proxy: Option<String>,
    /// `--resolve` pins.
    pub(crate) resolve: Vec<Pin>,
    /// `--cacert`, `--cert`, `--key`.
    pub(crate) tls: Tls,
    pub(crate) versions: HttpVersions,
}

/// Which HTTP versions the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpVersions {
    /// HTTP/1.1, or HTTP/2 where TLS agrees on it by ALPN.
    Negotiate,
    /// `--http1.1`.
    Http1Only,
    /// `--http2-prior-knowledge`: HTTP/2 from the first byte on http://.
    H2cPriorKnowledge,
}

/// The clients by kind, and what they share.
pub(crate) struct Clients {
    built: RwLock<HashMap<Kind, Arc<OnceCell<reqwest::Client>>>>,
    /// Name lookups, shared by every client.
    dns: Arc<resolve::Cache>,
    /// The (host, port) pairs that `--resolve` pins.
    pinned: HashSet<(String, u16)>,
    cfg: Arc<ClientSettings>,
}

/// Which client a URL needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Kind {
    /// Verifies certificates against the system trust store, which takes
    /// milliseconds to load, so it is built on the first https URL only. Without
    /// it no roots are loaded: fine for http://, and for https:// only with
    /// --insecure.
    trust_store: bool,
    /// The port whose `--resolve` pins this client applies. reqwest's resolver
    /// sees names without ports, so each pinned port has its own client (curl's
    /// pins hold for their port only).
    pinned_port: Option<u16>,
    /// HTTP/2 with prior knowledge (`--http2-prior-knowledge`, http:// URLs).
    h2c: bool,
}

impl Clients {
    /// The clients, with the one for plain http:// built now, so that options
    /// no client can be made with fail before the run.
    pub(crate) fn new(cfg: ClientSettings, lookup: resolve::LookupFn) -> anyhow::Result<Clients> {
        let clients = Clients {
            built: RwLock::new(HashMap::new()),
            dns: resolve::Cache::new(lookup),
            pinned: cfg
                .resolve
                .iter()
                .map(|p| (p.host.clone(), p.port))
                .collect(),
            cfg: Arc::new(cfg),
        };
        let plain = Kind {
            trust_store: clients.cfg.proxy.is_some(),
            pinned_port: None,
            h2c: clients.cfg.versions == HttpVersions::H2cPriorKnowledge,
        };
        let built = build(&clients.cfg, clients.dns.clone(), plain)?;
        clients.cell(plain).set(built).expect("a new cell");
        Ok(clients)
    }

    /// The client for this URL, built on first use.
    pub(crate) async fn get(&self, url: &Url) -> Result<reqwest::Client, Failure> {
        let kind = self.kind_for(url);
        let cell = self.cell(kind);
        let client = cell
            .get_or_try_init(|| async {
                // Loading the trust store reads files: off the runtime.
                let (cfg, dns) = (self.cfg.clone(), self.dns.clone());
                tokio::task::spawn_blocking(move || build(&cfg, dns, kind))
                    .await
                    .map_err(|e| Failure::Tls(format!("building the HTTP client: {e}")))?
                    .map_err(|e| Failure::Tls(format!("building the HTTP client: {e:#}")))
            })
            .await?;
        Ok(client.clone())
    }

    fn kind_for(&self, url: &Url) -> Kind {
        let port = url.port_or_known_default().unwrap_or(0);
        let host = url.host_str().unwrap_or("").trim_end_matches('.');
        // URL hosts are lowercase already, as are pins.
        let pinned = !self.pinned.is_empty() && self.pinned.contains(&(host.to_owned(), port));
        Kind {
            // A proxy may itself speak TLS: then every request needs the trust store.
            trust_store: self.cfg.proxy.is_some()
                || (url.scheme() == "https" && !self.cfg.insecure),
            pinned_port: pinned.then_some(port),
            h2c: self.cfg.versions == HttpVersions::H2cPriorKnowledge && url.scheme() == "http",
        }
    }

    fn cell(&self, kind: Kind) -> Arc<OnceCell<reqwest::Client>> {
        if let Some(cell) = self.built.read().expect("clients lock").get(&kind) {
            return cell.clone();
        }
        let mut built = self.built.write().expect("clients lock");
        built.entry(kind).or_default().clone()
    }
}

fn build(
    cfg: &ClientSettings,
    dns: Arc<resolve::Cache>,
    kind: Kind,
) -> anyhow::Result<reqwest::Client> {
    let resolver = Resolver::new(dns, &cfg.resolve, kind.pinned_port);
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(cfg.user_agent.as_str())
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .dns_resolver(resolver)
        .tls_danger_accept_invalid_certs(cfg.insecure);
    if !kind.trust_store {
        builder = builder.tls_certs_only(std::iter::empty());
    }
    builder = cfg.tls.apply(builder, kind.trust_store);
    if cfg.versions == HttpVersions::Http1Only {
        builder = builder.http1_only();
    }
    if kind.h2c {
        builder = builder.http2_prior_knowledge();
    }
    if let Some(proxy) = &cfg.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
    }
    Ok(builder.build()?)
}
