use monitor_core::prelude::*;

#[tcp_monitor(host = "db.internal", port = 5432, frequency = "7m")]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
