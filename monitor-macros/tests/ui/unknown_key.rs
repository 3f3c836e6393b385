use monitor_core::prelude::*;

#[tcp_monitor(hots = "cache.internal", port = 6379)]
fn redis(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
