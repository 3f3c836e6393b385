//! The PROXY protocol (HAProxy, versions 1 and 2): the header that tells a proxy-aware
//! server who the client is, built and sent right after connecting.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;

use super::super::dialog::DialogError;
use monitor_spec::ProxyProtocol;
use monitor_spec::validate::Compiled;

/// The signature that opens every PROXY protocol v2 header.
pub const PROXY_V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The PROXY protocol header for a connection from `source` (our end) to `destination`.
pub fn proxy_header(
    version: ProxyProtocol,
    source: SocketAddr,
    destination: SocketAddr,
) -> Vec<u8> {
    // A dual-stack socket reports a v4-mapped address on one side only; show both as v4.
    let (source, destination) = (canonical(source), canonical(destination));
    let v4 = source.is_ipv4() && destination.is_ipv4();
    match version {
        ProxyProtocol::V1 => {
            let (family, source, destination) = if v4 || source.is_ipv6() == destination.is_ipv6() {
                (if v4 { "TCP4" } else { "TCP6" }, source, destination)
            } else {
                return b"PROXY UNKNOWN\r\n".to_vec();
            };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        ProxyProtocol::V2 => {
            let mut out = PROXY_V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, PROXY command
            match (source, destination) {
                (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                    out.push(0x11); // AF_INET, STREAM
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                }
                (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                    out.push(0x21); // AF_INET6, STREAM
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                }
                _ => {
                    out.push(0x00); // AF_UNSPEC: addresses unknown
                    out.extend_from_slice(&0u16.to_be_bytes());
                    return out;
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Sends the PROXY protocol header for the connection to `addr`.
pub(crate) async fn send(
    plan: &Compiled,
    stream: &mut tokio::net::TcpStream,
    version: ProxyProtocol,
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<(), DialogError> {
    let what = "sending the PROXY protocol header".to_owned();
    let local = stream.local_addr().map_err(|error| DialogError::Io {
        error,
        sending: true,
        waiting_for: what.clone(),
    })?;
    let header = proxy_header(version, local, addr);
    let until = (tokio::time::Instant::now() + plan.read_timeout).min(deadline);
    match tokio::time::timeout_at(until, stream.write_all(&header)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(DialogError::Io {
            error,
            sending: true,
            waiting_for: what,
        }),
        Err(_) => Err(DialogError::Timeout {
            waiting_for: what,
            sending: true,
            total: until == deadline,
        }),
    }
}
