use monitor_core::prelude::*;

/// Everything wrong at once.
#[tcp_monitor(
    host = "bad host",
    port = 0,
    frequency = "7m",
    tags = [""],
    degraded = "2s",
    max = "1s",
    send = "PING\\q",
    retry = fixed(backoff = "30s", max_retries = 11),
    alpn = ["h2"],
    protocol = "redis",
)]
async fn redis(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
