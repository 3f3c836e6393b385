use monitor_core::prelude::*;

#[tcp_monitor(host = "::1", port = 5432, ip_family = "ipv4")]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "127.0.0.1", port = 5432, ip_family = "ip6")]
fn misspelled(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
