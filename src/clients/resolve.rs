//! Name resolution that refuses special-purpose addresses before any connection (DESIGN §7). The
//! guard checks every address a name resolves to and hands reqwest exactly those addresses, so a
//! second lookup cannot rebind the name. IP literals never reach a resolver (reqwest connects to
//! them directly): callers check the URL first with [`HostPolicy::check_url`].
use std::{
    collections::HashMap,
    fmt,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::hosts::{HostPolicy, HostRefused, normalize};

/// The addresses of one name.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Where names are looked up: the system's resolver in production, a fixed map in tests.
pub trait Lookup: Send + Sync + fmt::Debug {
    fn lookup(&self, host: &str) -> LookupFuture;
}

pub type SharedLookup = Arc<dyn Lookup>;

/// The operating system's resolver (`getaddrinfo`, off the async threads), as reqwest's default.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Fixed answers; every other name does not resolve. Tests use it so that no test asks a real
/// resolver or reaches anything but the addresses they chose.
#[derive(Debug, Default, Clone)]
pub struct StaticLookup {
    answers: HashMap<String, Vec<IpAddr>>,
}

impl StaticLookup {
    /// `host` resolves to `ip` (and to the addresses given before for it).
    pub fn with(mut self, host: &str, ip: IpAddr) -> Self {
        let key = normalize(host).unwrap_or_else(|| host.to_ascii_lowercase());
        self.answers.entry(key).or_default().push(ip);
        self
    }
}

impl Lookup for StaticLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let found = normalize(host).and_then(|k| self.answers.get(&k).cloned());
        let host = host.to_owned();
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} is not in the fixed name lookup"),
                )
            })
        })
    }
}

/// reqwest's resolver for the calls a [`HostPolicy`] guards: `lookup`, then the policy on every
/// address found.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    lookup: SharedLookup,
    policy: Arc<HostPolicy>,
}

impl GuardedResolver {
    pub fn new(lookup: SharedLookup, policy: Arc<HostPolicy>) -> Self {
        Self { lookup, policy }
    }

    /// The addresses to connect to for `host`, or why there are none.
    pub async fn resolve_host(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let ips = self
            .lookup
            .lookup(host)
            .await
            .map_err(ResolveError::Lookup)?;
        if ips.is_empty() {
            return Err(ResolveError::Lookup(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )));
        }
        self.policy.check_resolved(host, &ips)?;
        Ok(ips)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let ips = this.resolve_host(name.as_str()).await?;
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Why a name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(#[from] HostRefused),
    #[error("name lookup failed: {0}")]
    Lookup(#[source] io::Error),
}

/// The guard's refusal somewhere in a failed call's chain of causes, if that is why it failed.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<HostRefused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<HostRefused>() {
            return Some(refused.clone());
        }
        if let Some(ResolveError::Refused(refused)) = e.downcast_ref::<ResolveError>() {
            return Some(refused.clone());
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolver(allowed: &[&str], lookup: StaticLookup) -> GuardedResolver {
        GuardedResolver::new(Arc::new(lookup), Arc::new(HostPolicy::allowing(allowed)))
    }

    #[tokio::test]
    async fn a_name_with_any_private_address_is_refused_and_an_allowed_one_is_not() {
        let lookup = StaticLookup::default()
            .with("mixed.example", ip("93.184.215.14"))
            .with("mixed.example", ip("10.1.2.3"))
            .with("public.example", ip("93.184.215.14"))
            .with("program.internal", ip("10.1.2.3"));
        let r = resolver(&["program.internal"], lookup);
        assert!(matches!(
            r.resolve_host("mixed.example").await,
            Err(ResolveError::Refused(HostRefused::Resolved { .. }))
        ));
        assert_eq!(
            r.resolve_host("public.example").await.unwrap(),
            vec![ip("93.184.215.14")]
        );
        assert_eq!(
            r.resolve_host("PROGRAM.internal").await.unwrap(),
            vec![ip("10.1.2.3")]
        );
        assert!(matches!(
            r.resolve_host("unknown.example").await,
            Err(ResolveError::Lookup(_))
        ));
    }

    /// The refusal travels through reqwest's error as its cause, and no connection is made: the
    /// name points at a listener on loopback that sees nothing.
    #[tokio::test]
    async fn reqwest_calls_through_the_guard_fail_before_connecting_with_the_refusal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let lookup = StaticLookup::default().with("program.test", ip("127.0.0.1"));
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver(&[], lookup)))
            .no_proxy()
            .build()
            .unwrap();
        let err = http
            .get(format!("http://program.test:{port}/v1/admin/affiliates"))
            .send()
            .await
            .unwrap_err();
        let refused = refusal(&err).expect("the guard's refusal is the cause");
        assert!(
            matches!(&refused, HostRefused::Resolved { host, .. } if host == "program.test"),
            "{refused}"
        );
        assert_eq!(
            listener.accept().map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::WouldBlock),
            "nothing connected"
        );
    }
}
