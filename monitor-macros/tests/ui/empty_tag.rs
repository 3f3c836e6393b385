use monitor_core::prelude::*;

#[tcp_monitor(host = "db.internal", port = 5432, tags = ["db", ""], locations = ["eu-west-1", "eu-west-1"])]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
