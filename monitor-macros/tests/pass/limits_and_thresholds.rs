//! Limits and thresholds, with the effective values: `max` alone sets `degraded` too, and
//! a short `timeout` lowers what it bounds.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::validate_all;

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    connect_timeout = "1s",
    read_timeout = "2s",
    timeout = "20s",
    max_response_bytes = 1024,
    degraded = "300ms",
    max = "15s"
)]
fn all_limits(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432)]
fn untouched(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, max = "1s")]
fn only_max(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, degraded = "500ms")]
fn only_degraded(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, timeout = "3s")]
fn short_timeout(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    timeout = "3s",
    degraded = "1s",
    connect_timeout = "500ms"
)]
fn short_timeout_with_degraded(m: TcpMonitor) -> TcpMonitor {
    m
}

/// (degraded, max, connect, read, total) of a monitor.
fn limits(m: &TcpMonitor) -> (u32, u32, u32, u32, u32) {
    (
        m.degraded_response_time_ms,
        m.max_response_time_ms,
        m.timeouts.connect_ms,
        m.timeouts.read_ms,
        m.timeouts.total_ms,
    )
}

fn main() {
    let valid = validate_all().expect("all valid");
    let by_id = |id: &str| {
        &valid
            .iter()
            .find(|(d, _)| d.monitor.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .0
            .monitor
    };
    assert_eq!(
        limits(by_id("all_limits")),
        (300, 15_000, 1_000, 2_000, 20_000)
    );
    assert_eq!(by_id("all_limits").max_response_bytes, 1024);
    assert_eq!(
        limits(by_id("untouched")),
        (4_000, 5_000, 5_000, 5_000, 10_000)
    );
    assert_eq!(by_id("untouched").max_response_bytes, 64 * 1024);
    assert_eq!(
        limits(by_id("only_max")),
        (1_000, 1_000, 5_000, 5_000, 10_000)
    );
    assert_eq!(
        limits(by_id("only_degraded")),
        (500, 5_000, 5_000, 5_000, 10_000)
    );
    assert_eq!(
        limits(by_id("short_timeout")),
        (3_000, 3_000, 3_000, 3_000, 3_000)
    );
    assert_eq!(
        limits(by_id("short_timeout_with_degraded")),
        (1_000, 3_000, 500, 3_000, 3_000)
    );
}
