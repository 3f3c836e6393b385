use monitor_core::prelude::*;

#[tcp_monitor(host = "web.internal", port = 443, server_name = "web.example.com", alpn = ["h2"])]
fn web(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "web.internal", port = 443, tls = "none", min_tls = "1.3")]
fn plain(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
