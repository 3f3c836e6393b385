//! Monitors of the edge: the TLS load balancer in front of the web tier.

use monitor_core::prelude::*;

/// Load balancer serves a valid certificate.
///
/// Direct TLS on 443: verifies the chain and the name, degrades 30 days before the
/// earliest expiry in the chain and fails 7 days before, and fails if TLS 1.0 or 1.1 are
/// still accepted.
#[tcp_monitor(host = "www.example.com", port = 443, tls = "direct", alpn = ["h2", "http/1.1"],
              legacy_probe = "fail", tags = ["edge", "prod"], frequency = "5m")]
fn load_balancer(m: TcpMonitor) -> TcpMonitor {
    m.assert(tls_version().equals("TLSv1.3"))
}

#[cfg(test)]
mod tests {
    use monitor_core::prelude::*;
    use monitor_core::testing::{Script, ScriptedServer, TestPki, TlsServer, check, declared};

    #[tokio::test]
    async fn valid_and_expired_certificates() {
        let pki = TestPki::new().unwrap();
        let good = pki.leaf_for(&["www.example.com"], 90).unwrap();
        let server = ScriptedServer::start_tls(
            Script::new(),
            TlsServer::direct(good.server_config(true).unwrap()),
        )
        .await
        .unwrap();
        let spec = |addr| {
            declared("edge::load_balancer")
                .pointed_at(addr)
                .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())))
        };
        let r = check(spec(server.addr())).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        let expired = pki
            .leaf(
                &["www.example.com"],
                monitor_core::testing::days_from_now(-60),
                monitor_core::testing::days_from_now(-1),
            )
            .unwrap();
        let old = ScriptedServer::start_tls(
            Script::new(),
            TlsServer::direct(expired.server_config(true).unwrap()),
        )
        .await
        .unwrap();
        let r = check(spec(old.addr())).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::CertificateExpired);
    }
}
