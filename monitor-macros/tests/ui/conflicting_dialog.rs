use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379, send = "PING\r\n", dialog = [send("PING\r\n"), expect("+PONG")])]
fn redis(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
