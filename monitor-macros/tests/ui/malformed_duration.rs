use monitor_core::prelude::*;

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    timeout = "5 seconds",
    connect_timeout = 500
)]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
