use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379)]
async fn redis(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379)]
fn generic<T>(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379)]
const unsafe fn special(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
