use monitor_core::prelude::*;

#[tcp_monitor(port = 6379)]
fn no_host(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor]
fn nothing(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
