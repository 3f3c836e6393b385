//! Monitors of the internal services: Redis, Memcached, SSH, FTP and a custom line
//! protocol.

use monitor_core::prelude::*;

/// Redis cache answers PING.
#[tcp_monitor(host = "cache.internal", port = 6379, frequency = "30s",
              send = "PING\r\n", expect = "+PONG",
              degraded = "200ms", max = "1s", read_timeout = "1s", timeout = "2s",
              tags = ["cache", "prod"])]
fn redis(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("REDIS_ADDR")
        .assert(response_time().less_than(ms(500)))
}

/// Memcached reports its version.
#[tcp_monitor(host = "memcached.internal", port = 11211, send = "version\r\n",
              expect_regex = "^VERSION [0-9]+\\.[0-9]+", tags = ["cache"])]
fn memcached(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("MEMCACHED_ADDR")
}

/// SSH bastion shows an SSH-2.0 banner.
#[tcp_monitor(host = "bastion.example.com", port = 22, expect_regex = "^SSH-2\\.0-",
              tags = ["ssh"], frequency = "5m")]
fn ssh(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("SSH_ADDR")
}

/// FTP server greets.
#[tcp_monitor(host = "ftp.example.com", port = 21, expect = "220", tags = ["ftp"])]
fn ftp(m: TcpMonitor) -> TcpMonitor {
    m
}

/// Ledger service speaks its line protocol.
///
/// A custom TCP protocol: HELLO, then STATUS must report `ready`, then BYE.
#[tcp_monitor(id = "ledger-protocol", host = "ledger.internal", port = 7400,
              dialog = [expect("LEDGER/1"), send("HELLO monitor\n"), expect("OK\n"),
                        send("STATUS\n"), read_until("\n"), send("BYE\n"), read_close()],
              tags = ["ledger"], timeout = "3s")]
fn ledger(m: TcpMonitor) -> TcpMonitor {
    m.assert(response_data().contains("STATUS ready"))
}

#[cfg(test)]
mod tests {
    use monitor_core::prelude::*;
    use monitor_core::testing::{Script, ScriptedServer, check_declared};

    #[tokio::test]
    async fn redis_ping() {
        let server = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n"))
            .await
            .unwrap();
        let r = check_declared("services::redis", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        let auth = ScriptedServer::start(
            Script::new()
                .expect("PING\r\n")
                .send("-NOAUTH Authentication required.\r\n"),
        )
        .await
        .unwrap();
        let r = check_declared("services::redis", auth.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ReadTimeout);
    }

    #[tokio::test]
    async fn memcached_version() {
        let server = ScriptedServer::start(
            Script::new()
                .expect("version\r\n")
                .send("VERSION 1.6.21\r\n"),
        )
        .await
        .unwrap();
        let r = check_declared("services::memcached", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    }

    #[tokio::test]
    async fn ssh_banner() {
        let server =
            ScriptedServer::start(Script::new().send("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
                .await
                .unwrap();
        assert_eq!(
            check_declared("services::ssh", server.addr()).await.status,
            Status::Passed
        );
        let wrong = ScriptedServer::start(Script::new().send("SSH-1.99-old\r\n").close())
            .await
            .unwrap();
        let r = check_declared("services::ssh", wrong.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ClosedEarly);
    }

    #[tokio::test]
    async fn ftp_greeting() {
        let server = ScriptedServer::start(Script::new().send("220 (vsFTPd 3.0.3)\r\n"))
            .await
            .unwrap();
        assert_eq!(
            check_declared("services::ftp", server.addr()).await.status,
            Status::Passed
        );
    }

    #[tokio::test]
    async fn ledger_line_protocol() {
        let server = ScriptedServer::start(
            Script::new()
                .send("LEDGER/1 ready\n")
                .expect("HELLO monitor\n")
                .send("OK\n")
                .expect("STATUS\n")
                .send("STATUS ready\n")
                .expect("BYE\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("ledger-protocol", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        let degraded = ScriptedServer::start(
            Script::new()
                .send("LEDGER/1 ready\n")
                .expect("HELLO monitor\n")
                .send("OK\n")
                .expect("STATUS\n")
                .send("STATUS draining\n")
                .expect("BYE\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("ledger-protocol", degraded.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::AssertionFailed);
    }
}
