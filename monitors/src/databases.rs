//! Monitors of the databases, each speaking its protocol's recipe: PostgreSQL (SSLRequest,
//! TLS, then a startup message), MySQL (the server's handshake packet, parsed) and MongoDB
//! (an OP_MSG `hello`); and their weekly maintenance window.

use monitor_core::prelude::*;

// Vacuum and minor-version restarts run on Sunday night: the database monitors are still
// checked then, but their results are marked as in maintenance and count against no uptime.
monitor_core::maintenance! {
    id = "db-weekly",
    name = "Weekly database vacuum and restarts",
    tags = ["db"],
    days = [sunday],
    start = "03:00",
    end = "04:00",
}

/// PostgreSQL serves over TLS.
///
/// Proves the primary accepts TLS and sessions: SSLRequest, TLS checked against the
/// internal CA (`internal-ca.pem` of the agent's `--secret-dir`) for chain, name and
/// expiry, then a startup message as user `monitor`. An
/// authentication request, or a refusal of this user, proves it serves; starting up,
/// recovery or no free connections (SQLSTATE 57P0x, 53xxx) fails as service unavailable.
/// Records `ssl`, `auth_method` and, if trusted, `server_version`.
#[tcp_monitor(host = "db.internal", port = 5432,
              recipe = postgres(user = "monitor", database = "postgres"), tls = "starttls",
              ca_file = "internal-ca.pem", tags = ["db", "prod"], frequency = "30s")]
fn postgres(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("POSTGRES_ADDR")
}

/// The PostgreSQL primary takes writes.
///
/// Logs in as `monitor` with the password in `postgres-monitor.pass` of the agent's
/// `--secret-dir` (SCRAM-SHA-256, bound to the TLS channel), runs `SELECT 1` and asserts
/// the server is the primary and writable: after a failover that left this address on a
/// standby, the check fails as service unavailable rather than as a failed assertion.
#[tcp_monitor(host = "db-primary.internal", port = 5432, tls = "starttls",
              ca_file = "internal-ca.pem",
              recipe = postgres(user = "monitor", database = "postgres",
                                login = login(password_file = "postgres-monitor.pass")),
              tags = ["db", "prod"], frequency = "30s")]
fn postgres_primary(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("POSTGRES_PRIMARY_ADDR")
        .assert(role().equals("primary"))
        .assert(writable())
}

/// The PostgreSQL replica keeps up.
///
/// The same login on the streaming replica: it must be in recovery (a replica that was
/// promoted by mistake fails) and replay what the primary wrote less than 10 s ago.
#[tcp_monitor(host = "db-replica.internal", port = 5432, tls = "starttls",
              ca_file = "internal-ca.pem",
              recipe = postgres(user = "monitor", database = "postgres",
                                login = login(password_file = "postgres-monitor.pass")),
              tags = ["db", "prod"], frequency = "30s")]
fn postgres_replica(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("POSTGRES_REPLICA_ADDR")
        .assert(role().equals("replica"))
        .assert(replication_lag().less_than(seconds(10)))
}

/// MySQL greets with a handshake.
///
/// Proves MySQL or MariaDB accepts sessions: reads the initial handshake packet
/// (protocol 10) and records `server_version`, `ssl` (whether the server offers TLS) and
/// `auth_plugin`; an error packet instead (1040 too many connections, 1129 host blocked)
/// fails as service unavailable, and anything else as a protocol mismatch.
#[tcp_monitor(host = "mysql.internal", port = 3306, recipe = mysql, tags = ["db"])]
fn mysql(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("MYSQL_ADDR")
}

/// MongoDB answers hello.
///
/// Proves MongoDB (3.6 or later) serves: sends an OP_MSG `hello` to the admin database,
/// requires `ok: 1` and records the wire versions (`max_wire_version`, `server_release`)
/// and the node's `role` (standalone, primary, replica for a secondary, mongos); `ok: 0` (a node shutting
/// down or recovering) fails as service unavailable.
#[tcp_monitor(host = "mongo.internal", port = 27017, recipe = mongodb, tags = ["db"])]
fn mongodb(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("MONGODB_ADDR")
}

#[cfg(test)]
mod tests {
    use monitor_core::engine::protocol::postgres::postgres_startup;
    use monitor_core::engine::protocol::postgres_login;
    use monitor_core::model::secret::SecretPolicy;
    use monitor_core::prelude::*;
    use monitor_testing::{
        Script, ScriptedServer, TestPki, TlsServer, check, check_declared, declared,
    };

    /// PostgreSQL's SSLRequest: length 8, code 80877103.
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f];

    /// A PostgreSQL backend message.
    fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// A PostgreSQL server behind TLS that answers the monitor's startup message with
    /// `answer`.
    async fn postgres_server(pki: &TestPki, answer: Vec<u8>) -> ScriptedServer {
        let leaf = pki.leaf_for(&["db.internal"], 200).unwrap();
        ScriptedServer::start_tls(
            Script::new()
                .expect(postgres_startup("monitor", "postgres"))
                .send(answer),
            TlsServer::after(
                Script::new().expect(SSL_REQUEST).send("S"),
                leaf.server_config(true).unwrap(),
            ),
        )
        .await
        .unwrap()
    }

    async fn check_postgres(pki: &TestPki, server: &ScriptedServer) -> CheckResult {
        let spec = declared("databases::postgres")
            .pointed_at(server.addr())
            .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
        check(spec).await
    }

    #[tokio::test]
    async fn postgres_upgrades_to_tls_and_answers_the_startup() {
        let pki = TestPki::new().unwrap();
        // SCRAM requested: the server serves; the monitor has no password to go further.
        let scram = pg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0");
        let server = postgres_server(&pki, scram).await;
        let r = check_postgres(&pki, &server).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert!(r.tls.unwrap().verified);
        assert_eq!(r.facts["ssl"], "yes");
        assert_eq!(r.facts["auth_method"], "scram-sha-256");

        // Trusted: the server says its version before it is ready for queries.
        let mut trusted = pg(b'R', &0u32.to_be_bytes());
        trusted.extend(pg(b'S', b"server_version\x0016.4 (Debian 16.4-1)\0"));
        trusted.extend(pg(b'Z', b"I"));
        let server = postgres_server(&pki, trusted).await;
        let r = check_postgres(&pki, &server).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["server_version"], "16.4 (Debian 16.4-1)");
    }

    #[tokio::test]
    async fn postgres_starting_up_is_unavailable() {
        let pki = TestPki::new().unwrap();
        let starting = pg(
            b'E',
            b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0",
        );
        let server = postgres_server(&pki, starting).await;
        let r = check_postgres(&pki, &server).await;
        assert_eq!(r.status, Status::Failed, "{}", r.to_json());
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
        assert_eq!(
            r.facts["server_error"],
            "FATAL 57P03: the database system is starting up"
        );
    }

    /// A frontend simple query, as the monitor sends it.
    fn query(text: &str) -> Vec<u8> {
        let mut body = text.as_bytes().to_vec();
        body.push(0);
        pg(b'Q', &body)
    }

    /// The answer to a simple query: one row of text `values` (`None` for NULL), then
    /// CommandComplete and ReadyForQuery.
    fn rows(values: &[Option<&str>]) -> Vec<u8> {
        let mut row = (values.len() as u16).to_be_bytes().to_vec();
        for v in values {
            match v {
                Some(v) => {
                    row.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    row.extend_from_slice(v.as_bytes());
                }
                None => row.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        let mut out = pg(b'D', &row);
        out.extend(pg(b'C', b"SELECT 1\0"));
        out.extend(pg(b'Z', b"I"));
        out
    }

    /// A PostgreSQL 15 server behind TLS that trusts the monitor, then answers the
    /// login's recovery query with `in_recovery` and `lag_ms`, and `SELECT 1`.
    async fn postgres_node(
        pki: &TestPki,
        host: &str,
        in_recovery: &str,
        lag_ms: &str,
    ) -> ScriptedServer {
        let leaf = pki.leaf_for(&[host], 200).unwrap();
        let mut ready = pg(b'R', &0u32.to_be_bytes());
        ready.extend(pg(
            b'S',
            b"server_version\x0015.10 (Debian 15.10-0+deb12u1)\0",
        ));
        ready.extend(pg(b'Z', b"I"));
        ScriptedServer::start_tls(
            Script::new()
                .expect(postgres_startup("monitor", "postgres"))
                .send(ready)
                .expect(query(postgres_login::RECOVERY_QUERY))
                .send(rows(&[Some(in_recovery), Some(lag_ms), Some("off")]))
                .expect(query("SELECT 1"))
                .send(rows(&[Some("1")])),
            TlsServer::after(
                Script::new().expect(SSL_REQUEST).send("S"),
                leaf.server_config(true).unwrap(),
            ),
        )
        .await
        .unwrap()
    }

    /// Checks the declared monitor `id` against `server`, its password file in a secret
    /// directory of its own.
    async fn check_node(id: &str, pki: &TestPki, server: &ScriptedServer) -> CheckResult {
        let dir = std::env::temp_dir().join(format!(
            "monitors-{}-{}",
            id.replace(':', "-"),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("postgres-monitor.pass"),
            "not-needed-when-trusted\n",
        )
        .unwrap();
        let spec = declared(id)
            .pointed_at(server.addr())
            .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
        let result = Engine::new()
            .with_clock(monitor_testing::NoWaitClock)
            .with_secret_policy(SecretPolicy::agent(None, Some(dir.clone())))
            .check(&spec.validate().unwrap())
            .await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[tokio::test]
    async fn the_primary_is_writable_and_the_replica_keeps_up() {
        let pki = TestPki::new().unwrap();
        let primary = postgres_node(&pki, "db-primary.internal", "f", "0").await;
        let r = check_node("databases::postgres_primary", &pki, &primary).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(
            (r.facts["role"].as_str(), r.facts["read_only"].as_str()),
            ("primary", "no")
        );
        let replica = postgres_node(&pki, "db-replica.internal", "t", "1200").await;
        let r = check_node("databases::postgres_replica", &pki, &replica).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["replication_lag_ms"], "1200");
    }

    #[tokio::test]
    async fn a_failover_and_a_replica_falling_behind_fail_the_pair() {
        let pki = TestPki::new().unwrap();
        // The primary's address now leads to a standby: read-only, not an assertion typo.
        let standby = postgres_node(&pki, "db-primary.internal", "t", "0").await;
        let r = check_node("databases::postgres_primary", &pki, &standby).await;
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::ServiceUnavailable, "{error:?}");
        assert!(error.message.contains("read-only"), "{error:?}");
        // The replica is 45 s behind.
        let behind = postgres_node(&pki, "db-replica.internal", "t", "45000").await;
        let r = check_node("databases::postgres_replica", &pki, &behind).await;
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::AssertionFailed, "{error:?}");
        assert!(
            error
                .message
                .contains("replication_lag less_than `10000` (got `45000`)"),
            "{error:?}"
        );
        // A replica promoted by mistake is no longer a replica.
        let promoted = postgres_node(&pki, "db-replica.internal", "f", "0").await;
        let r = check_node("databases::postgres_replica", &pki, &promoted).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::AssertionFailed);
    }

    /// A MySQL 8.0 handshake packet (protocol 10), header included.
    fn mysql_handshake() -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"8.0.36\0");
        p.extend_from_slice(&7u32.to_le_bytes()); // connection id
        p.extend_from_slice(b"abcdefgh\0"); // auth-plugin-data part 1, filler
        p.extend_from_slice(&0xffffu16.to_le_bytes()); // lower capabilities, CLIENT_SSL set
        p.push(255); // character set
        p.extend_from_slice(&2u16.to_le_bytes()); // status
        p.extend_from_slice(&0xdfffu16.to_le_bytes()); // upper capabilities, plugin auth
        p.push(21); // auth-plugin-data length
        p.extend_from_slice(&[0; 10]); // reserved
        p.extend_from_slice(b"ijklmnopqrst\0"); // auth-plugin-data part 2
        p.extend_from_slice(b"caching_sha2_password\0");
        let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
        packet.push(0); // sequence id
        packet.extend(p);
        packet
    }

    #[tokio::test]
    async fn mysql_handshake_shows_its_version() {
        let server = ScriptedServer::start(Script::new().send(mysql_handshake()))
            .await
            .unwrap();
        let r = check_declared("databases::mysql", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["server_version"], "8.0.36");
        assert_eq!(r.facts["ssl"], "yes");
        assert_eq!(r.facts["auth_plugin"], "caching_sha2_password");
    }

    #[tokio::test]
    async fn mysql_too_many_connections_is_unavailable() {
        let mut error = vec![0xff];
        error.extend_from_slice(&1040u16.to_le_bytes());
        error.extend_from_slice(b"#08004Too many connections");
        let mut packet = vec![error.len() as u8, 0, 0, 0];
        packet.extend(error);
        let server = ScriptedServer::start(Script::new().send(packet).close())
            .await
            .unwrap();
        let r = check_declared("databases::mysql", server.addr()).await;
        assert_eq!(r.facts["server_error"], "error 1040: Too many connections");
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::ServiceUnavailable);
        assert!(error.hints[0].contains("max_connections"), "{error:?}");
        // Another service on the port is a protocol mismatch.
        let http = ScriptedServer::start(
            Script::new()
                .send("HTTP/1.1 400 Bad Request\r\n\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("databases::mysql", http.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ProtocolMismatch);
    }

    /// The documented OP_MSG `hello`: header (length 52, requestID 1, responseTo 0, opCode
    /// 2013), flagBits 0, and a kind-0 section holding `{hello: 1, $db: "admin"}`.
    const MONGODB_HELLO: &str = "340000000100000000000000dd07000000000000001f0000001068656c6c6f000100000002246462000600000061646d696e0000";

    /// A MongoDB 7.0 standalone's reply to `hello`: isWritablePrimary, topologyVersion,
    /// the size limits, localTime, minWireVersion 0, maxWireVersion 21, readOnly, ok 1.0.
    const MONGODB_REPLY: &str = "390100005d00000001000000dd0700000000000000240100000869735772697461626c655072696d617279000103746f706f6c6f677956657273696f6e002d0000000770726f636573734964006563a1b2c3d4e5f60123456712636f756e74657200000000000000000000106d617842736f6e4f626a65637453697a650000000001106d61784d65737361676553697a65427974657300006cdc02106d61785772697465426174636853697a6500a0860100096c6f63616c54696d6500009c5cbb9a010000106c6f676963616c53657373696f6e54696d656f75744d696e75746573001e00000010636f6e6e656374696f6e49640007000000106d696e5769726556657273696f6e0000000000106d61785769726556657273696f6e001500000008726561644f6e6c790000016f6b00000000000000f03f00";

    /// A node shutting down: ok 0, errmsg "node is recovering", code 11600.
    const MONGODB_RECOVERING: &str = "730000005e00000001000000dd07000000000000005e000000016f6b000000000000000000026572726d736700130000006e6f6465206973207265636f766572696e670010636f646500502d000002636f64654e616d650016000000496e746572727570746564417453687574646f776e0000";

    fn unhex(s: &str) -> Vec<u8> {
        monitor_core::escape::from_hex(s).unwrap()
    }

    #[tokio::test]
    async fn mongodb_hello_reports_the_release_and_role() {
        let server = ScriptedServer::start(
            Script::new()
                .expect(unhex(MONGODB_HELLO))
                .send(unhex(MONGODB_REPLY)),
        )
        .await
        .unwrap();
        let r = check_declared("databases::mongodb", server.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["max_wire_version"], "21");
        assert_eq!(r.facts["server_release"], "7.0");
        assert_eq!(r.facts["role"], "standalone");
    }

    #[tokio::test]
    async fn mongodb_failures_name_the_cause() {
        // ok: 0 from a node shutting down.
        let recovering = ScriptedServer::start(
            Script::new()
                .expect(unhex(MONGODB_HELLO))
                .send(unhex(MONGODB_RECOVERING)),
        )
        .await
        .unwrap();
        let r = check_declared("databases::mongodb", recovering.addr()).await;
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::ServiceUnavailable);
        assert!(error.message.contains("node is recovering"), "{error:?}");
        // A server closing after the hello does not speak OP_MSG.
        let closed = ScriptedServer::start(Script::new().expect("hello").close())
            .await
            .unwrap();
        let r = check_declared("databases::mongodb", closed.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ProtocolMismatch);
    }
}
