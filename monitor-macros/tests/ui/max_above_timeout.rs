use monitor_core::prelude::*;

#[tcp_monitor(host = "db.internal", port = 5432, max = "8s", timeout = "5s")]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5433, timeout = "5s", read_timeout = "6s")]
fn read_above_timeout(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
