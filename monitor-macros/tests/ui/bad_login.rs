use monitor_core::prelude::*;

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    recipe = postgres(login = login(password = "hunter2"))
)]
fn inline_password(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    recipe = postgres(login = login(password_env = "PG", password_file = "pg.pass"))
)]
fn two_sources(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5432, recipe = postgres(login = "PG"))]
fn not_a_call(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
