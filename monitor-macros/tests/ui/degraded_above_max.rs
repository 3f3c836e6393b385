use monitor_core::prelude::*;

#[tcp_monitor(host = "db.internal", port = 5432, degraded = "2s", max = "1s")]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5433, degraded = "6s")]
fn above_default_max(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
