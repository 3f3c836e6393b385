//! Turning host names into addresses: the [`Resolve`] trait the engine takes from outside,
//! the system resolver, and a fixed table for tests.

use std::io;
use std::net::{IpAddr, SocketAddr};

use super::clock::BoxFuture;

/// Turns a host name into addresses. A target that is an IP literal never reaches it: the
/// engine connects to the literal.
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
