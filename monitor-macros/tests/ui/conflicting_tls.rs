use monitor_core::prelude::*;

#[tcp_monitor(host = "mail.internal", port = 25, tls = "direct", starttls = "smtp")]
fn smtp(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    tls = "direct",
    ca_file = "/etc/ca.pem",
    ca_pem = "-----BEGIN CERTIFICATE-----"
)]
fn two_cas(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    tls = "direct",
    client_cert_file = "/etc/client.pem"
)]
fn cert_without_key(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {}
