use monitor_core::prelude::*;

#[tcp_monitor(host = "web.internal", port = "80", should_fail = "yes", tags = "web")]
fn web(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
