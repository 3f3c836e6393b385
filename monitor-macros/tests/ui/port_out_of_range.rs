use monitor_core::prelude::*;

#[tcp_monitor(host = "web.internal", port = 0)]
fn zero(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "web.internal", port = 70000)]
fn too_large(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
