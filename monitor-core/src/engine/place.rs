//! How the engine names where a check goes (`host:port`, with the address that answered)
//! and how much of a response it shows.

use std::net::SocketAddr;

use monitor_spec::spec::TcpMonitor;

/// How many bytes of the response a result shows.
pub const EXCERPT_BYTES: usize = 256;

/// The target as declared, followed by the address that answered when they differ:
/// `db.internal:5432 (10.0.0.7:5432)`, or just `127.0.0.1:5432`.
pub(crate) fn place(spec: &TcpMonitor, addr: Option<SocketAddr>) -> String {
    let target = spec.target.to_string();
    match addr {
        Some(a) if a.to_string() != target => format!("{target} ({a})"),
        _ => target,
    }
}
