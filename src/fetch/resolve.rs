//! Host names to addresses, the way the system resolves them: `getaddrinfo`
//! (so `/etc/hosts`, `search`/`ndots` from resolv.conf and the nsswitch order
//! hold, as for curl and every other client), run on the blocking pool so a
//! lookup never stalls the runtime. Each name is looked up once per run: the
//! answer (or the failure) is cached, and requests that need a name while it is
//! being looked up wait for that one lookup. `--resolve HOST:PORT:ADDR` pins a
//! name at one port to addresses without any lookup, as curl's option does.
//!
//! reqwest's connect timeout wraps the lookup, so a slow one counts against
//! `--connect-timeout`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

/// Names remembered at most; past that the cache starts afresh (a run over
/// millions of distinct hosts must not grow without bound).
const MAX_NAMES: usize = 65_536;

/// `--resolve HOST:PORT:ADDR[,ADDR...]`: `HOST` at `PORT` goes to these addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<IpAddr>,
}

/// Parse curl's `HOST:PORT:ADDR[,ADDR...]`; an IPv6 address may be bracketed.
pub(crate) fn parse_pin(s: &str) -> Result<Pin, String> {
    let bad = |why: &str| {
        format!(
            "invalid --resolve '{s}': {why} (expected HOST:PORT:ADDR, e.g. a.test:443:127.0.0.1)"
        )
    };
    if s.trim().starts_with(['+', '-']) {
        return Err(bad("curl's +HOST and -HOST forms are not supported"));
    }
    let mut parts = s.trim().splitn(3, ':');
    let (Some(host), Some(port), Some(addrs)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("missing parts"));
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.contains('*') {
        return Err(bad("a wildcard host is not supported; name each host"));
    }
    if host.is_empty() || host.contains(['/', '[', ']', ' ']) {
        return Err(bad("bad host name"));
    }
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let addrs = addrs
        .split(',')
        .map(|a| {
            let a = a.trim();
            let a = a
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(a);
            a.parse::<IpAddr>()
                .map_err(|_| bad(&format!("'{a}' is not an IP address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pin { host, port, addrs })
}

/// How a name is looked up when it is not pinned (replaced in tests).
pub(crate) type LookupFn =
    Arc<dyn Fn(String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The system's resolver: `getaddrinfo` on tokio's blocking pool.
pub(crate) fn system_lookup() -> LookupFn {
    Arc::new(|host: String| {
        async move {
            let addrs: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::other(format!("no address for '{host}'")));
            }
            Ok(addrs)
        }
        .boxed()
    })
}

type Answer = Result<Arc<[IpAddr]>, Arc<str>>;

/// One lookup per name per run, shared by every client.
pub(crate) struct Cache {
    lookup: LookupFn,
    max: usize,
    names: Arc<Mutex<Names>>,
}

type Names = HashMap<Arc<str>, Shared<BoxFuture<'static, Answer>>>;

/// What a lookup that failed for want of a descriptor says: that is the
/// process's limit, not the name's answer, so it is neither `dns` nor cached.
pub(crate) const NO_DESCRIPTORS: &str = "out of file descriptors (ulimit -n)";

fn is_descriptor_shortage(e: &io::Error) -> bool {
    // EMFILE, ENFILE (the same numbers on Linux and the BSDs).
    matches!(e.raw_os_error(), Some(24 | 23))
}

impl Cache {
    pub(crate) fn new(lookup: LookupFn) -> Arc<Cache> {
        Cache::with_limit(lookup, MAX_NAMES)
    }

    fn with_limit(lookup: LookupFn, max: usize) -> Arc<Cache> {
        Arc::new(Cache {
            lookup,
            max,
            names: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The addresses of `host`, from the cache or from one lookup. The lookup
    /// runs as its own task, so it finishes (and is cached) even if the request
    /// that started it gives up.
    pub(crate) fn addrs(&self, host: &str) -> Shared<BoxFuture<'static, Answer>> {
        let mut names = self.names.lock().expect("dns cache lock");
        if let Some(answer) = names.get(host) {
            return answer.clone();
        }
        if names.len() >= self.max {
            names.clear();
        }
        let lookup = (self.lookup)(host.to_owned());
        let (all, name) = (self.names.clone(), Arc::<str>::from(host));
        let answer = async move {
            match tokio::spawn(lookup).await {
                Ok(Ok(addrs)) => Ok(Arc::from(addrs)),
                Ok(Err(e)) if is_descriptor_shortage(&e) => {
                    all.lock().expect("dns cache lock").remove(&name);
                    Err(Arc::from(format!("{NO_DESCRIPTORS}: {e}")))
                }
                Ok(Err(e)) => Err(Arc::from(e.to_string())),
                Err(e) => Err(Arc::from(format!("lookup failed: {e}"))),
            }
        }
        .boxed()
        .shared();
        names.insert(host.into(), answer.clone());
        answer
    }
}

/// A resolver for one client: the pins for one port (if any) over the shared cache.
#[derive(Clone)]
pub(crate) struct Resolver {
    pins: Arc<HashMap<String, Arc<[IpAddr]>>>,
    cache: Arc<Cache>,
    /// Held for the client that owns this resolver, as long as it lives.
    _alive: Option<Arc<()>>,
}

impl Resolver {
    /// Applies the pins of `pins` made for `port` (none when `port` is `None`).
    pub(crate) fn new(cache: Arc<Cache>, pins: &[Pin], port: Option<u16>) -> Resolver {
        let pins = pins
            .iter()
            .filter(|p| Some(p.port) == port)
            .map(|p| (p.host.clone(), Arc::from(p.addrs.as_slice())))
            .collect();
        Resolver {
            pins: Arc::new(pins),
            cache,
            _alive: None,
        }
    }

    /// The resolver, holding `alive` for as long as its client lives.
    pub(crate) fn holding(self, alive: Arc<()>) -> Resolver {
        Resolver {
            _alive: Some(alive),
            ..self
        }
    }

    async fn resolve_name(&self, host: &str) -> Answer {
        match self.pins.get(host) {
            Some(addrs) => Ok(addrs.clone()),
            None => self.cache.addrs(host).await,
        }
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            match this.resolve_name(&host).await {
                // Port 0: reqwest puts in the URL's port.
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> =
                        addrs.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(why) => Err(io::Error::other(why.to_string()).into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn curls_wildcard_and_plus_minus_forms_are_refused_not_ignored() {
        // Accepted silently before, and the name then went to DNS.
        for (arg, says) in [
            ("*:443:127.0.0.1", "wildcard"),
            ("+a.test:443:127.0.0.1", "+HOST"),
            ("-a.test:443", "+HOST"),
        ] {
            let why = parse_pin(arg).unwrap_err();
            assert!(why.contains(says), "{arg}: {why}");
        }
        assert!(parse_pin("a.test:443:127.0.0.1").is_ok());
    }

    fn counting(delay: Duration) -> (LookupFn, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let lookup: LookupFn = Arc::new(move |host: String| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                match host.as_str() {
                    "nx.test" => Err(io::Error::other("Name or service not known")),
                    "emfile.test" => Err(io::Error::from_raw_os_error(24)),
                    _ => Ok(vec!["127.0.0.7".parse().unwrap()]),
                }
            }
            .boxed()
        });
        (lookup, count)
    }

    #[tokio::test]
    async fn each_name_is_looked_up_once_even_when_asked_at_once() {
        let (lookup, count) = counting(Duration::from_millis(50));
        let resolver = Resolver::new(Cache::new(lookup), &[], None);
        let answers =
            futures_util::future::join_all((0..50).map(|_| resolver.resolve_name("a.test"))).await;
        assert!(
            answers
                .iter()
                .all(|a| a.as_deref() == Ok(&["127.0.0.7".parse().unwrap()][..]))
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let failed = resolver.resolve_name("nx.test").await.unwrap_err();
        assert!(failed.contains("not known"), "{failed}");
        let _ = resolver.resolve_name("nx.test").await;
        assert_eq!(count.load(Ordering::SeqCst), 2, "failures are cached too");
    }

    /// Regression: under a low `ulimit -n`, getaddrinfo's EMFILE was cached as
    /// the name's `dns` answer, and every later URL of the host failed untried.
    #[tokio::test]
    async fn a_lookup_short_of_descriptors_is_not_cached() {
        let (lookup, count) = counting(Duration::ZERO);
        let resolver = Resolver::new(Cache::new(lookup), &[], None);
        for tries in 1..=3 {
            let failed = resolver.resolve_name("emfile.test").await.unwrap_err();
            assert!(failed.starts_with(NO_DESCRIPTORS), "{failed}");
            assert_eq!(count.load(Ordering::SeqCst), tries, "asked again each time");
        }
    }

    #[tokio::test]
    async fn a_lookup_abandoned_by_its_request_still_fills_the_cache() {
        let (lookup, count) = counting(Duration::from_millis(50));
        let resolver = Resolver::new(Cache::new(lookup), &[], None);
        let gave_up =
            tokio::time::timeout(Duration::from_millis(5), resolver.resolve_name("a.test"));
        assert!(gave_up.await.is_err());
        assert!(resolver.resolve_name("a.test").await.is_ok());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn pins_apply_at_their_port_only_and_never_look_up() {
        let (lookup, count) = counting(Duration::ZERO);
        let cache = Cache::new(lookup);
        let pins = [parse_pin("A.test:8443:127.0.0.1,[::1]").unwrap()];
        let at_port = Resolver::new(cache.clone(), &pins, Some(8443));
        let addrs = at_port.resolve_name("a.test").await.unwrap();
        let want: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(&addrs[..], &want);
        assert_eq!(count.load(Ordering::SeqCst), 0);
        let elsewhere = Resolver::new(cache, &pins, Some(80));
        assert_eq!(
            &elsewhere.resolve_name("a.test").await.unwrap()[..],
            &["127.0.0.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let (lookup, _) = counting(Duration::ZERO);
        let cache = Cache::with_limit(lookup, 100);
        for i in 0..1000 {
            let _ = cache.addrs(&format!("h{i}.test")).await;
        }
        assert!(cache.names.lock().unwrap().len() <= 100);
    }

    #[test]
    fn pins_parse_like_curl() {
        let pin = parse_pin("example.com:443:10.0.0.1").unwrap();
        assert_eq!((pin.host.as_str(), pin.port), ("example.com", 443));
        assert_eq!(
            parse_pin("h.test:80:[2001:db8::1]").unwrap().addrs,
            ["2001:db8::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            parse_pin("h.test:80:::1").unwrap().addrs,
            ["::1".parse::<IpAddr>().unwrap()]
        );
        for bad in [
            "h.test",
            "h.test:80",
            "h.test:x:1.2.3.4",
            "h.test:80:nothost",
            ":80:1.2.3.4",
            "h.test:70000:1.2.3.4",
        ] {
            assert!(parse_pin(bad).is_err(), "{bad}");
        }
    }
}
