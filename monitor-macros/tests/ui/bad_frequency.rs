use monitor_core::prelude::*;

#[tcp_monitor(host = "db.internal", port = 5432, frequency = "7m")]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {
    // The function is kept beside the error: using it raises no second error.
    let _ = db(TcpMonitor::new("db", "db.internal", 5432));
}
