use monitor_core::prelude::*;

#[tcp_monitor(host = "tcp://db.internal", port = 5432)]
fn with_scheme(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal:5432", port = 5432)]
fn with_port(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
