//! The HTTP clients: one per kind of URL (certificates checked or not, a port
//! that `--resolve` pins, HTTP/2 with prior knowledge), each built on first use
//! and shared by every request of its kind: pooled connections, HTTP/2 by ALPN,
//! transparent gzip/br/zstd/deflate decoding. Redirects are left to the fetch
//! stage, so it can count them and drop credentials when the host changes.
//! Near the open-files limit the clients are retired and built afresh, which
//! closes the connections their pools keep idle (`descriptors.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use url::Url;

use super::descriptors::Descriptors;
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
    /// Decode bodies in the client (off with `--warc`: the fetch keeps the
    /// wire form and decodes it itself).
    pub(crate) decode: bool,
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
    /// The descriptor budget that connections stay under.
    descriptors: Descriptors,
    /// Whether each built client is still alive (its pool, idle connections
    /// and all): a retired one lives until its requests in flight are answered.
    alive: Mutex<Generations>,
}

/// The clients in use and the retired ones still closing, by token.
#[derive(Default)]
struct Generations {
    current: Vec<Weak<()>>,
    retired: Vec<Weak<()>>,
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
    pub(crate) fn new(
        cfg: ClientSettings,
        lookup: resolve::LookupFn,
        concurrency: usize,
    ) -> anyhow::Result<Clients> {
        let descriptors = Descriptors::new(concurrency);
        if let Some(warning) = descriptors.warning(concurrency) {
            tracing::warn!("{warning}");
        }
        let clients = Clients {
            built: RwLock::new(HashMap::new()),
            dns: resolve::Cache::new(lookup),
            pinned: cfg
                .resolve
                .iter()
                .map(|p| (p.host.clone(), p.port))
                .collect(),
            cfg: Arc::new(cfg),
            descriptors,
            alive: Mutex::new(Generations::default()),
        };
        let plain = Kind {
            trust_store: clients.cfg.proxy.is_some(),
            pinned_port: None,
            h2c: clients.cfg.versions == HttpVersions::H2cPriorKnowledge,
        };
        let built = build(&clients.cfg, clients.dns.clone(), plain, clients.token())?;
        clients.cell(plain).set(built).expect("a new cell");
        Ok(clients)
    }

    /// The client for this URL, built on first use.
    pub(crate) async fn get(&self, url: &Url) -> Result<reqwest::Client, Failure> {
        if self.descriptors.crowded() {
            self.make_room().await;
        }
        let kind = self.kind_for(url);
        let cell = self.cell(kind);
        let client = cell
            .get_or_try_init(|| async {
                // Loading the trust store reads files: off the runtime.
                let (cfg, dns, token) = (self.cfg.clone(), self.dns.clone(), self.token());
                tokio::task::spawn_blocking(move || build(&cfg, dns, kind, token))
                    .await
                    .map_err(|e| Failure::Tls(format!("building the HTTP client: {e}")))?
                    .map_err(|e| Failure::Tls(format!("building the HTTP client: {e:#}")))
            })
            .await?;
        Ok(client.clone())
    }

    /// At the descriptor budget: retire every client (unless retired ones
    /// are still closing), so that the next requests get fresh ones and the
    /// old pools close their idle connections once their requests in flight
    /// are answered; wait for that, a while at most.
    async fn make_room(&self) {
        let deadline = Instant::now() + MAKE_ROOM_WAIT;
        loop {
            self.retire_unless_closing();
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !self.descriptors.still_crowded() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::debug!("still at the open-files limit: opening a connection anyway");
                return;
            }
        }
    }

    fn retire_unless_closing(&self) {
        let mut alive = self.alive.lock().expect("clients lock");
        alive.retired.retain(|token| token.strong_count() > 0);
        if !alive.retired.is_empty() {
            return;
        }
        tracing::debug!("at the open-files limit: closing idle connections");
        let current = std::mem::take(&mut alive.current);
        alive.retired = current;
        self.built.write().expect("clients lock").clear();
    }

    /// What a new client holds while it lives.
    fn token(&self) -> Arc<()> {
        let token = Arc::new(());
        let mut alive = self.alive.lock().expect("clients lock");
        alive.current.retain(|token| token.strong_count() > 0);
        alive.current.push(Arc::downgrade(&token));
        token
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

/// How long a request waits for idle connections to close, at the
/// open-files limit, before it tries anyway.
const MAKE_ROOM_WAIT: Duration = Duration::from_secs(10);

fn build(
    cfg: &ClientSettings,
    dns: Arc<resolve::Cache>,
    kind: Kind,
    alive: Arc<()>,
) -> anyhow::Result<reqwest::Client> {
    let resolver = Resolver::new(dns, &cfg.resolve, kind.pinned_port).holding(alive);
    let mut builder = super::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .dns_resolver(resolver)
        .connector_layer(super::reuse::MarkConnects)
        .tls_danger_accept_invalid_certs(cfg.insecure);
    if !cfg.user_agent.is_empty() {
        builder = builder.user_agent(cfg.user_agent.as_str());
    }
    if !cfg.decode {
        builder = builder.no_gzip().no_brotli().no_zstd().no_deflate();
    }
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
