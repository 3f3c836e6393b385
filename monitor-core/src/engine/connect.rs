//! Resolving a target and connecting to it: address family filtering, RFC 8305 ordering
//! (IPv6 and IPv4 interleaved) and staggered connection attempts (happy eyeballs).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use super::classify::{self, AttemptError};
use super::resolve::Resolve;
use monitor_spec::result::ProbeError;
use monitor_spec::spec::{IpFamily, TcpMonitor};

/// RFC 8305's recommended delay before starting the next connection attempt.
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The addresses to connect to: an IP literal's one address held inline (no resolver
/// call, no allocation), or what the resolver found.
pub(crate) enum Addrs {
    /// The target is an IP literal.
    Literal([SocketAddr; 1]),
    /// The resolver's answer, ordered for connecting.
    Resolved(Vec<SocketAddr>),
}

impl std::ops::Deref for Addrs {
    type Target = [SocketAddr];
    fn deref(&self) -> &[SocketAddr] {
        match self {
            Addrs::Literal(one) => one,
            Addrs::Resolved(many) => many,
        }
    }
}

/// Resolves the target and orders its addresses for connecting. An IP literal never
/// reaches the resolver: it is its own answer.
pub(crate) async fn resolve(
    resolver: &dyn Resolve,
    spec: &TcpMonitor,
    deadline: Instant,
) -> Result<Addrs, ProbeError> {
    let target = &spec.target;
    let in_family = |a: &SocketAddr| match target.ip_family {
        IpFamily::Any => true,
        IpFamily::Ipv4 => a.is_ipv4(),
        IpFamily::Ipv6 => a.is_ipv6(),
    };
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        let addr = SocketAddr::new(ip, target.port);
        if !in_family(&addr) {
            return Err(classify::no_address_in_family(spec, &[addr]));
        }
        return Ok(Addrs::Literal([addr]));
    }
    let found = match bounded(deadline, resolver.resolve(&target.host, target.port)).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => return Err(classify::dns_failure(spec, &e.to_string())),
        Err(_) => {
            return Err(classify::dns_failure(
                spec,
                &format!(
                    "no answer within the total timeout of {} ms",
                    spec.timeouts.total_ms
                ),
            ));
        }
    };
    // Usually every address is of the family (one, an IP literal): kept as it is.
    let wanted = if found.iter().all(in_family) {
        found
    } else {
        let wanted: Vec<SocketAddr> = found.iter().copied().filter(in_family).collect();
        if wanted.is_empty() {
            return Err(classify::no_address_in_family(spec, &found));
        }
        wanted
    };
    if wanted.is_empty() {
        return Err(classify::no_address_in_family(spec, &wanted));
    }
    Ok(Addrs::Resolved(interleave(wanted)))
}

/// `future` within `deadline`, as `timeout_at`, its timer made only when the first poll
/// leaves it pending: most answers are ready at once (an IP literal).
pub(crate) async fn bounded<F: Future>(
    deadline: Instant,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut future = std::pin::pin!(future);
    let first = std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await;
    match first {
        Some(out) => Ok(out),
        None => timeout_at(deadline, future).await,
    }
}

/// Orders addresses as RFC 8305 section 4 says: the family of the first address first,
/// then alternating families, each family keeping the resolver's order.
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    if addrs.iter().all(|a| a.is_ipv6() == first_v6) {
        return addrs;
    }
    let (mut lead, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(lead.len() + other.len());
    lead.reverse();
    other.reverse();
    loop {
        match (lead.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Connects to the first address that answers. Attempts start one after another, each
/// [`ATTEMPT_DELAY`] after the previous one or at once when the previous one failed, and
/// run side by side until one succeeds or `limit` passes. On failure, returns every
/// address with why it failed.
pub(crate) async fn connect_any(
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<(TcpStream, SocketAddr), Vec<(SocketAddr, AttemptError)>> {
    if let [addr] = addrs {
        return match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => Ok((ready(stream), *addr)),
            Ok(Err(e)) => Err(vec![(*addr, AttemptError::Io(e))]),
            Err(_) => Err(vec![(*addr, AttemptError::TimedOut)]),
        };
    }
    let deadline = Instant::now() + limit;
    let mut pending = JoinSet::new();
    let mut in_flight: Vec<SocketAddr> = Vec::new();
    let mut failures = Vec::new();
    let mut next = 0;
    loop {
        if pending.is_empty() {
            if next == addrs.len() {
                return Err(failures);
            }
            start(&mut pending, &mut in_flight, addrs[next]);
            next += 1;
        }
        let more = next < addrs.len();
        tokio::select! {
            Some(joined) = pending.join_next() => match joined {
                Ok((addr, Ok(stream))) => return Ok((ready(stream), addr)),
                Ok((addr, Err(e))) => {
                    in_flight.retain(|a| *a != addr);
                    failures.push((addr, AttemptError::Io(e)));
                    if more {
                        start(&mut pending, &mut in_flight, addrs[next]);
                        next += 1;
                    }
                }
                Err(join) => {
                    // An attempt task cannot panic; treat a lost one as an I/O error.
                    failures.push((addrs[0], AttemptError::Io(io::Error::other(join.to_string()))));
                }
            },
            _ = sleep(ATTEMPT_DELAY), if more => {
                start(&mut pending, &mut in_flight, addrs[next]);
                next += 1;
            }
            _ = sleep_until(deadline) => {
                failures.extend(in_flight.drain(..).map(|a| (a, AttemptError::TimedOut)));
                failures.extend(addrs[next..].iter().map(|a| (*a, AttemptError::TimedOut)));
                return Err(failures);
            }
        }
    }
}

fn start(
    pending: &mut JoinSet<(SocketAddr, io::Result<TcpStream>)>,
    in_flight: &mut Vec<SocketAddr>,
    addr: SocketAddr,
) {
    in_flight.push(addr);
    pending.spawn(async move { (addr, TcpStream::connect(addr).await) });
}

/// Dialogs are small request/response exchanges: send each write at once.
fn ready(stream: TcpStream) -> TcpStream {
    let _ = stream.set_nodelay(true);
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[&str], expected: &[&str]) {
        let addrs = input.iter().map(|a| a.parse().unwrap()).collect();
        let got: Vec<String> = interleave(addrs).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn interleaves_families_starting_with_the_first() {
        check(
            &["[::1]:1", "[::2]:1", "127.0.0.1:1", "127.0.0.2:1"],
            &["[::1]:1", "127.0.0.1:1", "[::2]:1", "127.0.0.2:1"],
        );
        check(
            &["127.0.0.1:1", "[::1]:1", "[::2]:1"],
            &["127.0.0.1:1", "[::1]:1", "[::2]:1"],
        );
        check(&["127.0.0.1:1"], &["127.0.0.1:1"]);
        check(&[], &[]);
    }
}
