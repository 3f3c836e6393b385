use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379)]
fn by_reference(m: &TcpMonitor) -> TcpMonitor {
    m.clone()
}

#[tcp_monitor(host = "cache.internal", port = 6379)]
fn no_return(m: TcpMonitor) {
    let _ = m;
}

#[tcp_monitor(host = "cache.internal", port = 6379)]
fn two_arguments(m: TcpMonitor, extra: u32) -> TcpMonitor {
    let _ = extra;
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379)]
fn no_argument() -> TcpMonitor {
    TcpMonitor::new("x", "cache.internal", 6379)
}

fn main() {}
