use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379, host = "cache.example")]
fn redis(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
