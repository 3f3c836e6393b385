use monitor_core::prelude::*;

#[tcp_monitor(host = "db.internal", port = 5432, retry = fixed(backof = "30s", max_retries = 11, max_duration = "20m"))]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, retry = exponental(backoff = "5s", max_retries = 3))]
fn misspelled(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, retry = single_retry(same_region = false))]
fn no_backoff(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
