//! Monitors of the internal services: Redis, Memcached, SSH and FTP speaking their
//! protocols' recipes, and a custom line protocol spelled out step by step.

use monitor_core::prelude::*;

/// Redis cache is the primary and answers fast.
///
/// The recipe sends AUTH with the password in `MONITORS_SECRET_REDIS_PASSWORD` (read
/// where the check runs, never bundled), requires `+PONG` and records `server_version` from INFO. The steps
/// extend it: INFO replication must say `role:master`, so a node left a replica by a
/// failover fails. A refused password fails as authentication, a loading dataset as
/// unavailable; degraded over 200 ms, failed over 500 ms.
#[tcp_monitor(host = "cache.internal", port = 6379, frequency = "30s",
              recipe = redis(password_env = "MONITORS_SECRET_REDIS_PASSWORD"),
              send = "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n", expect = "role:master",
              degraded = "200ms", max = "1s", read_timeout = "1s", timeout = "2s",
              tags = ["cache", "prod"])]
fn redis(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("REDIS_ADDR")
        .assert(response_time().less_than(ms(500)))
}

/// Memcached reports its version.
///
/// Proves memcached serves: `version` must be answered by `VERSION x.y.z`, recorded as
/// `server_version`; `SERVER_ERROR` fails as service unavailable.
#[tcp_monitor(host = "memcached.internal", port = 11211, recipe = memcached, tags = ["cache"])]
fn memcached(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("MEMCACHED_ADDR")
}

/// SSH bastion identifies as SSH 2.
///
/// Proves the bastion's SSH server accepts connections: reads its identification line
/// and records `protocol_version`, `software` and `comments`; a server of protocol 1 only,
/// or one that turns the connection away before identifying (MaxStartups), fails as
/// service unavailable.
#[tcp_monitor(host = "bastion.example.com", port = 22, recipe = ssh,
              tags = ["ssh"], frequency = "5m")]
fn ssh(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("SSH_ADDR")
}

/// FTP server greets.
///
/// Proves the FTP server accepts sessions: requires the 220 greeting (multi-line ones
/// included), records it as `banner` and says QUIT; 421 or 120 (busy, starting) fails as
/// service unavailable.
#[tcp_monitor(host = "ftp.example.com", port = 21, recipe = ftp, tags = ["ftp"])]
fn ftp(m: TcpMonitor) -> TcpMonitor {
    m
}

/// Ledger service speaks its line protocol.
///
/// A custom TCP protocol, with no recipe: HELLO, then STATUS must report `ready`, then
/// BYE and the server closes. Proves the ledger accepts clients and is ready to post.
#[tcp_monitor(id = "ledger-protocol", host = "ledger.internal", port = 7400,
              dialog = [expect("LEDGER/1"), send("HELLO monitor\n"), expect("OK\n"),
                        send("STATUS\n"), read_until("\n"), send("BYE\n"), read_close()],
              tags = ["ledger"], timeout = "3s")]
fn ledger(m: TcpMonitor) -> TcpMonitor {
    m.assert(response_data().contains("STATUS ready"))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use monitor_core::engine::protocol::redis::resp_command;
    use monitor_core::prelude::*;
    use monitor_testing::{NoWaitClock, Script, ScriptedServer, check_declared, declared};

    /// Checks the Redis monitor against `addr` with `MONITORS_SECRET_REDIS_PASSWORD` set to `password` (or
    /// unset) for this engine only: the process environment is left alone.
    async fn check_redis(addr: SocketAddr, password: Option<&'static str>) -> CheckResult {
        let monitor = declared("services::redis")
            .pointed_at(addr)
            .validate()
            .unwrap();
        Engine::new()
            .with_clock(NoWaitClock)
            .with_secrets(move |name| {
                assert_eq!(name, "MONITORS_SECRET_REDIS_PASSWORD");
                password.map(str::to_owned)
            })
            .check(&monitor)
            .await
    }

    /// An INFO reply: a bulk string of `key:value` lines.
    fn info(body: &str) -> String {
        format!("${}\r\n{body}\r\n", body.len())
    }

    /// A Redis 7.2 primary that requires the password `s3cret`.
    fn redis_primary(role: &str) -> Script {
        Script::new()
            .expect(resp_command(&[b"AUTH", b"s3cret"]))
            .send("+OK\r\n")
            .expect(resp_command(&[b"PING"]))
            .send("+PONG\r\n")
            .expect(resp_command(&[b"INFO", b"server"]))
            .send(info(
                "# Server\r\nredis_version:7.2.5\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n",
            ))
            .expect(resp_command(&[b"INFO", b"replication"]))
            .send(info(&format!(
                "# Replication\r\nrole:{role}\r\nconnected_slaves:0\r\n"
            )))
    }

    #[tokio::test]
    async fn redis_authenticates_and_is_the_primary() {
        let server = ScriptedServer::start(redis_primary("master"))
            .await
            .unwrap();
        let r = check_redis(server.addr(), Some("s3cret")).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["server_version"], "7.2.5");
        assert_eq!(r.facts["mode"], "standalone");
        assert_eq!(r.facts["auth"], "password");
        assert!(!r.to_json().contains("s3cret"), "the password leaked");
    }

    #[tokio::test]
    async fn redis_refusing_the_password_fails_authentication() {
        let wrong = ScriptedServer::start(
            Script::new()
                .expect("AUTH")
                .send("-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
        )
        .await
        .unwrap();
        let r = check_redis(wrong.addr(), Some("s3cret")).await;
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::AuthenticationFailed);
        assert!(
            error.hints[0].contains("MONITORS_SECRET_REDIS_PASSWORD"),
            "{error:?}"
        );
        // Without the variable where the check runs, nothing is sent: a configuration error.
        let r = check_redis(wrong.addr(), None).await;
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(
            error.message.contains("MONITORS_SECRET_REDIS_PASSWORD"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn redis_loading_is_unavailable() {
        let loading = ScriptedServer::start(
            Script::new()
                .expect("AUTH")
                .send("+OK\r\n")
                .expect("PING")
                .send("-LOADING Redis is loading the dataset in memory\r\n"),
        )
        .await
        .unwrap();
        let r = check_redis(loading.addr(), Some("s3cret")).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
    }

    #[tokio::test]
    async fn memcached_version() {
        let server = ScriptedServer::start(
            Script::new()
                .expect("version\r\n")
                .send("VERSION 1.6.21\r\n")
                .expect("quit\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("services::memcached", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["server_version"], "1.6.21");
        let full = ScriptedServer::start(
            Script::new()
                .expect("version\r\n")
                .send("SERVER_ERROR out of memory\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("services::memcached", full.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
    }

    #[tokio::test]
    async fn ssh_identification() {
        let server =
            ScriptedServer::start(Script::new().send("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
                .await
                .unwrap();
        let r = check_declared("services::ssh", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["protocol_version"], "2.0");
        assert_eq!(r.facts["software"], "OpenSSH_9.2p1");
        assert_eq!(r.facts["comments"], "Debian-2+deb12u3");
        let ancient = ScriptedServer::start(Script::new().send("SSH-1.5-ancient\r\n").close())
            .await
            .unwrap();
        let r = check_declared("services::ssh", ancient.addr()).await;
        assert_eq!(r.facts["protocol_version"], "1.5");
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
        // Turned away before the identification (a connection limit): unavailable too.
        let full = ScriptedServer::start(Script::new().send("Too many connections\r\n").close())
            .await
            .unwrap();
        let r = check_declared("services::ssh", full.addr()).await;
        assert!(!r.facts.contains_key("software"), "{:?}", r.facts);
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
    }

    #[tokio::test]
    async fn ftp_greeting() {
        let server = ScriptedServer::start(
            Script::new()
                .send("220-Welcome to the file server\r\n220 (vsFTPd 3.0.3)\r\n")
                .expect("QUIT\r\n")
                .send("221 Goodbye.\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("services::ftp", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["banner"], "Welcome to the file server");
        let busy = ScriptedServer::start(
            Script::new()
                .send("421 Too many users, try later.\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("services::ftp", busy.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
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
        assert!(r.facts.is_empty(), "no recipe, no facts: {:?}", r.facts);
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
