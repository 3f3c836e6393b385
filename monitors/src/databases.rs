//! Monitors of the databases: PostgreSQL (TLS through SSLRequest), MySQL (the server's
//! handshake packet) and MongoDB (an OP_MSG `hello`).

use monitor_core::prelude::*;

/// PostgreSQL accepts TLS.
///
/// Sends PostgreSQL's SSLRequest, upgrades to TLS and checks the certificate of the
/// primary: chain, name and expiry.
#[tcp_monitor(host = "db.internal", port = 5432, starttls = "postgres",
              ca_file = "/etc/ssl/certs/internal-ca.pem", tags = ["db", "prod"], frequency = "30s")]
fn postgres(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("POSTGRES_ADDR")
}

/// MySQL greets with a handshake.
///
/// Reads the initial handshake packet (protocol 10) and checks the server version in it.
#[tcp_monitor(host = "mysql.internal", port = 3306,
              dialog = [read_bytes(5), expect_regex("[0-9]+\\.[0-9]+\\.[0-9]+")],
              tags = ["db"])]
fn mysql(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("MYSQL_ADDR")
}

/// MongoDB answers hello.
///
/// Sends an OP_MSG `hello` to the admin database and expects `ok: 1.0` in the reply.
#[tcp_monitor(host = "mongo.internal", port = 27017,
              dialog = [send_hex("34000000 01000000 00000000 dd070000 00000000 00 1f000000 10 68656c6c6f00 01000000 02 246462 00 06000000 61646d696e00 00"),
                        expect("\\x01ok\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\xf0?")],
              tags = ["db"])]
fn mongodb(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("MONGODB_ADDR")
}

#[cfg(test)]
mod tests {
    use monitor_core::prelude::*;
    use monitor_core::testing::{Script, ScriptedServer, TestPki, TlsServer, check, declared};

    #[tokio::test]
    async fn postgres_upgrades_to_tls() {
        let pki = TestPki::new().unwrap();
        let leaf = pki.leaf_for(&["db.internal"], 200).unwrap();
        let server = ScriptedServer::start_tls(
            Script::new(),
            TlsServer::after(
                Script::new()
                    .expect([0u8, 0, 0, 8, 4, 0xd2, 0x16, 0x2f])
                    .send("S"),
                leaf.server_config(true).unwrap(),
            ),
        )
        .await
        .unwrap();
        let spec = declared("databases::postgres")
            .pointed_at(server.addr())
            .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
        let r = check(spec).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert!(r.tls.unwrap().verified);
    }

    #[tokio::test]
    async fn mysql_handshake_shows_its_version() {
        let mut payload = vec![10u8];
        payload.extend_from_slice(b"8.0.36\0");
        payload.extend_from_slice(&[0; 20]);
        let mut packet = vec![payload.len() as u8, 0, 0, 0];
        packet.extend_from_slice(&payload);
        let server = ScriptedServer::start(Script::new().send(packet))
            .await
            .unwrap();
        let r = monitor_core::testing::check_declared("databases::mysql", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert!(r.response_excerpt.contains("8.0.36"));
    }

    #[tokio::test]
    async fn mongodb_hello_ok() {
        let mut reply = vec![0u8; 21];
        reply.extend_from_slice(b"\x01ok\x00\x00\x00\x00\x00\x00\x00\xf0?\x00");
        let server = ScriptedServer::start(Script::new().expect("hello").send(reply))
            .await
            .unwrap();
        let r = monitor_core::testing::check_declared("databases::mongodb", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        // A server answering without ok: 1 fails with the bytes it sent.
        let wrong = ScriptedServer::start(Script::new().expect("hello").send("nope").close())
            .await
            .unwrap();
        let r = monitor_core::testing::check_declared("databases::mongodb", wrong.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ClosedEarly);
    }
}
