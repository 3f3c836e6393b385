//! Turning host names into addresses: the [`Resolve`] trait the engine takes from outside,
//! the system resolver, and a fixed table for tests.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

use super::clock::BoxFuture;

/// Turns a host name into addresses.
pub trait Resolve: Send + Sync + 'static {
    /// Every address of `host`, in the resolver's order of preference, with `port` set.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`); IP literals skip it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            Ok(tokio::net::lookup_host((host, port)).await?.collect())
        })
    }
}

/// A resolver with a fixed table, for tests; names not in it do not resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a name with its addresses, in the order they are returned.
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.table.insert(name.to_owned(), addrs.to_vec());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        let found = match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) => match self.table.get(host) {
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "name or service not known",
                )),
            },
        };
        Box::pin(std::future::ready(found))
    }
}
