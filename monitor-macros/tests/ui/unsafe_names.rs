use monitor_core::prelude::*;

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    name = "db \u{202e}gnp.exe",
    tags = ["db", "a,b"],
    alert_channels = ["team,oncall"],
)]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "cache.internal",
    port = 6379,
    alert_channels = [
        "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12",
        "c13", "c14", "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24",
        "c25", "c26", "c27", "c28", "c29", "c30", "c31", "c32",
    ],
)]
fn cache(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
