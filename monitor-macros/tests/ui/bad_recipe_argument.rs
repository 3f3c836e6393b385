use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379, recipe = redis(pasword_env = "REDIS_PASSWORD"))]
fn unknown_argument(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379, recipe = redis(password_env = "REDIS-PASSWORD"))]
fn bad_env_var(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379, recipe = redis(username = "monitor"))]
fn username_without_password(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    recipe = postgres(user = "monitor", database = "", user = "other")
)]
fn postgres_arguments(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "mail.internal", port = 25, recipe = smtp(helo = "probe host"))]
fn bad_helo(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 3306, recipe = mysql(user = "root"))]
fn no_arguments(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
