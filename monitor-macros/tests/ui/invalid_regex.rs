use monitor_core::prelude::*;

#[tcp_monitor(
    host = "cache.internal",
    port = 6379,
    send = "PING\r\n",
    expect_regex = "+PONG("
)]
fn shorthand(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379, dialog = [send("INFO\r\n"), expect_regex("role:[")])]
fn in_dialog(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
