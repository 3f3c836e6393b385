use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379, recipe = reddis())]
fn cache(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "legacy.internal", port = 23, recipe = telnet)]
fn telnet(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379, recipe = "redis")]
fn quoted(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
