use monitor_core::prelude::*;

#[tcp_monitor(host = "cache.internal", port = 6379, recipe = redis(), tls = "starttls")]
fn redis_starttls(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 11211, recipe = memcached, starttls = "smtp")]
fn memcached_starttls(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "mail.internal", port = 25, recipe = smtp(), starttls = "imap")]
fn smtp_as_imap(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "git.internal", port = 22, recipe = ssh(), tls = "direct")]
fn ssh_over_tls(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "mail.internal", port = 25, tls = "starttls")]
fn starttls_without_recipe(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
