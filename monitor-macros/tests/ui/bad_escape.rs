use monitor_core::prelude::*;

#[tcp_monitor(
    host = "cache.internal",
    port = 6379,
    send = "PING\\q",
    expect = r"+PONG\x4"
)]
fn shorthand(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379, dialog = [send_hex("2b5"), read_until("\\")])]
fn in_dialog(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
