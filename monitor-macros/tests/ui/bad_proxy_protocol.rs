use monitor_core::prelude::*;

#[tcp_monitor(host = "web.internal", port = 443, proxy_protocol = "V2")]
fn uppercase(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "web.internal", port = 443, proxy_protocol = 2)]
fn number(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
