//! Monitors of the edge: the TLS load balancer in front of the web tier, and the mail
//! backends it forwards to with the PROXY protocol.

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

/// IMAP backend behind the load balancer serves.
///
/// haproxy forwards IMAPS with `send-proxy-v2` to Dovecot listeners with `haproxy = yes`,
/// which drop connections that do not open with a PROXY header. Like haproxy, the monitor
/// sends a PROXY v2 header, then TLS (for `mail.example.com`), then the IMAP recipe
/// (greeting, CAPABILITY, LOGOUT): proves this backend serves, which a check through the
/// balancer would hide. Records `greeting` and `capabilities`.
#[tcp_monitor(host = "imap-1.mail.internal", port = 10993, proxy_protocol = "v2",
              tls = "direct", server_name = "mail.example.com", recipe = imap,
              tags = ["edge", "mail"])]
fn imap_backend(m: TcpMonitor) -> TcpMonitor {
    m
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use monitor_core::engine::protocol::proxy::PROXY_V2_SIGNATURE;
    use monitor_core::prelude::*;
    use monitor_testing::{
        Script, ScriptedServer, TestPki, TlsServer, check, days_from_now, declared,
    };
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

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
            .leaf(&["www.example.com"], days_from_now(-60), days_from_now(-1))
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

    /// What a listener with `accept-proxy` learned from one connection's PROXY v2 header:
    /// the source and destination, or why it dropped the connection.
    type Header = Result<(SocketAddr, SocketAddr), String>;

    /// A listener like Dovecot's with `haproxy = yes`: it reads a PROXY v2 header (PROXY
    /// command, TCP over IPv4) and reports it, then relays the connection to `backend`;
    /// a connection without a valid header is dropped.
    async fn accept_proxy(backend: SocketAddr) -> (SocketAddr, mpsc::UnboundedReceiver<Header>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let header = read_proxy_v2(&mut client).await;
                    let ok = header.is_ok();
                    let _ = tx.send(header);
                    if ok {
                        let mut server = TcpStream::connect(backend).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        (addr, rx)
    }

    async fn read_proxy_v2(client: &mut TcpStream) -> Header {
        let mut head = [0u8; 16];
        client
            .read_exact(&mut head)
            .await
            .map_err(|e| e.to_string())?;
        if head[..12] != PROXY_V2_SIGNATURE {
            return Err(format!("no PROXY v2 signature: {head:02x?}"));
        }
        if head[12..16] != [0x21, 0x11, 0, 12] {
            return Err(format!("not PROXY over TCP/IPv4: {:02x?}", &head[12..]));
        }
        let mut body = [0u8; 12];
        client
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        Ok((
            SocketAddr::from((ip(&body[0..4]), port(&body[8..10]))),
            SocketAddr::from((ip(&body[4..8]), port(&body[10..12]))),
        ))
    }

    /// Dovecot over TLS: greeting, CAPABILITY, LOGOUT.
    fn dovecot() -> Script {
        Script::new()
            .send("* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE AUTH=PLAIN] Dovecot ready.\r\n")
            .expect("m1 CAPABILITY\r\n")
            .send("* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE AUTH=PLAIN\r\nm1 OK Pre-login capabilities listed.\r\n")
            .expect("m2 LOGOUT\r\n")
            .send("* BYE Logging out\r\nm2 OK Logout completed.\r\n")
            .close()
    }

    #[tokio::test]
    async fn imap_backend_gets_a_proxy_v2_header_then_tls() {
        let pki = TestPki::new().unwrap();
        let leaf = pki.leaf_for(&["mail.example.com"], 90).unwrap();
        let server = ScriptedServer::start_tls(
            dovecot(),
            TlsServer::direct(leaf.server_config(true).unwrap()),
        )
        .await
        .unwrap();
        let (backend, mut headers) = accept_proxy(server.addr()).await;
        let spec = declared("edge::imap_backend")
            .pointed_at(backend)
            .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
        let r = check(spec.clone()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert!(r.tls.unwrap().verified);
        assert_eq!(
            r.facts["capabilities"],
            "IMAP4rev1 SASL-IR ID ENABLE IDLE AUTH=PLAIN"
        );
        assert!(
            r.facts["greeting"].ends_with("Dovecot ready."),
            "{:?}",
            r.facts
        );
        // The header names the monitor's end as the source and the backend as the
        // destination, as haproxy would.
        let (source, destination) = headers.recv().await.unwrap().unwrap();
        assert_eq!(destination, backend);
        assert_eq!(source.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(source.port(), 0);

        // Without the header the backend drops the connection: the check fails.
        let mut bare = spec;
        bare.proxy_protocol = None;
        let r = check(bare).await;
        assert_eq!(r.status, Status::Failed, "{}", r.to_json());
        assert!(headers.recv().await.unwrap().is_err());
    }
}
