//! Recipes against scripted servers: each protocol's dialog, the verdict, the error kind
//! and the facts learned; the wire formats byte for byte (MongoDB OP_MSG, PROXY protocol,
//! MySQL handshake, PostgreSQL startup).

use std::net::SocketAddr;

use monitor_core::engine::protocol::mongodb::{self, Bson};
use monitor_core::engine::protocol::mysql::{self, MysqlGreeting};
use monitor_core::engine::protocol::{postgres, proxy};
use monitor_core::model::recipe::{self as recipes, ProxyProtocol, Recipe};
use monitor_core::{CheckResult, Engine, ErrorKind, PemSource, StartTls, Status, TcpMonitor};
use monitor_testing::{NoWaitClock, Script, ScriptedServer, TestPki, TlsServer};

/// Serves `script`, checks a monitor speaking `recipe` against it, and asserts the verdict
/// and every expected fact.
async fn check(
    script: Script,
    recipe: Recipe,
    expected: (Status, Option<ErrorKind>),
    facts: &[(&str, &str)],
) -> CheckResult {
    let server = ScriptedServer::start(script).await.unwrap();
    let spec = TcpMonitor::new("recipe", "127.0.0.1", server.port())
        .recipe(recipe)
        .timeouts(2_000, 1_000, 5_000);
    let result = run(spec).await;
    assert_eq!(
        (result.status, result.error.as_ref().map(|e| e.kind)),
        expected,
        "{}",
        result.to_json()
    );
    for (name, value) in facts {
        assert_eq!(
            result.facts.get(*name).map(String::as_str),
            Some(*value),
            "fact `{name}` in {}",
            result.to_json()
        );
    }
    result
}

/// Checks `spec` with secrets from a fixed table instead of the process environment.
async fn run(spec: TcpMonitor) -> CheckResult {
    let engine = Engine::new()
        .with_clock(NoWaitClock)
        .with_secrets(|name| (name == "RECIPE_TEST_REDIS_PASSWORD").then(|| "s3cret".to_owned()));
    engine.check(&spec.validate().unwrap()).await
}

const PASSED: (Status, Option<ErrorKind>) = (Status::Passed, None);

fn failed(kind: ErrorKind) -> (Status, Option<ErrorKind>) {
    (Status::Failed, Some(kind))
}

fn redis_info(version: &str) -> String {
    let body =
        format!("# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\nos:Linux\r\n");
    format!("${}\r\n{body}\r\n", body.len())
}

#[tokio::test]
async fn redis_ping_reports_the_version() {
    let script = Script::new()
        .expect("*1\r\n$4\r\nPING\r\n")
        .send("+PONG\r\n")
        .expect("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .send(redis_info("7.0.15"))
        .expect("QUIT\r\n")
        .send("+OK\r\n")
        .close();
    check(
        script,
        Recipe::redis(),
        PASSED,
        &[("server_version", "7.0.15"), ("mode", "standalone")],
    )
    .await;
}

#[tokio::test]
async fn redis_failures_name_the_cause() {
    let cases = [
        (
            "-NOAUTH Authentication required.\r\n",
            ErrorKind::AuthenticationFailed,
        ),
        (
            "-LOADING Redis is loading the dataset in memory\r\n",
            ErrorKind::ServiceUnavailable,
        ),
        (
            "HTTP/1.1 400 Bad Request\r\n\r\n",
            ErrorKind::ProtocolMismatch,
        ),
    ];
    for (reply, kind) in cases {
        let script = Script::new().expect("PING\r\n").send(reply).close();
        let r = check(script, Recipe::redis(), failed(kind), &[]).await;
        let error = r.error.unwrap();
        assert!(
            error
                .hints
                .last()
                .unwrap()
                .contains("redis-cli -h 127.0.0.1"),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn redis_auth_reads_the_password_from_the_environment() {
    let script = Script::new()
        .expect("*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n")
        .send("+OK\r\n")
        .expect("PING\r\n")
        .send("+PONG\r\n")
        .expect("INFO")
        .send("-NOPERM this user has no permissions to run the 'info' command\r\n");
    let r = check(
        script,
        Recipe::redis_auth("RECIPE_TEST_REDIS_PASSWORD"),
        PASSED,
        &[("auth", "password")],
    )
    .await;
    assert!(!r.facts.contains_key("server_version"));
    assert!(
        !r.to_json().contains("s3cret"),
        "the password leaked: {}",
        r.to_json()
    );

    let wrong = Script::new()
        .expect("AUTH")
        .send("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    let r = check(
        wrong,
        Recipe::redis_auth("RECIPE_TEST_REDIS_PASSWORD"),
        failed(ErrorKind::AuthenticationFailed),
        &[],
    )
    .await;
    assert!(r.error.unwrap().hints[0].contains("RECIPE_TEST_REDIS_PASSWORD"));

    let unset = Script::new().expect("PING");
    let r = check(
        unset,
        Recipe::redis_auth("RECIPE_TEST_UNSET_VARIABLE"),
        failed(ErrorKind::Config),
        &[],
    )
    .await;
    assert!(
        r.error
            .unwrap()
            .message
            .contains("RECIPE_TEST_UNSET_VARIABLE")
    );
}

#[tokio::test]
async fn memcached_ssh_and_ftp_report_what_they_are() {
    check(
        Script::new()
            .expect("version\r\n")
            .send("VERSION 1.6.18\r\n")
            .expect("quit\r\n")
            .close(),
        Recipe::memcached(),
        PASSED,
        &[("server_version", "1.6.18")],
    )
    .await;
    check(
        Script::new()
            .send("a notice before the identification\r\n")
            .send("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
        Recipe::Ssh,
        PASSED,
        &[
            ("protocol_version", "2.0"),
            ("software", "OpenSSH_9.2p1"),
            ("comments", "Debian-2+deb12u3"),
        ],
    )
    .await;
    check(
        Script::new().send("Too many connections\r\n").close(),
        Recipe::Ssh,
        failed(ErrorKind::ServiceUnavailable),
        &[],
    )
    .await;
    check(
        Script::new()
            .send("220-Welcome\r\n more text\r\n220 (vsFTPd 3.0.3)\r\n")
            .expect("QUIT\r\n")
            .send("221 Goodbye.\r\n")
            .close(),
        Recipe::ftp(),
        PASSED,
        &[("banner", "Welcome")],
    )
    .await;
    check(
        Script::new()
            .send("421 Too many users, try later.\r\n")
            .close(),
        Recipe::ftp(),
        failed(ErrorKind::ServiceUnavailable),
        &[("banner", "Too many users, try later.")],
    )
    .await;
}

#[tokio::test]
async fn mail_recipes_read_greetings_and_capabilities() {
    check(
        Script::new()
            .send("220 mail.test ESMTP Exim 4.96\r\n")
            .expect("EHLO monitor.invalid\r\n")
            .send("250-mail.test Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 HELP\r\n")
            .expect("QUIT\r\n")
            .send("221 closing\r\n")
            .close(),
        Recipe::smtp(),
        PASSED,
        &[
            ("banner", "mail.test ESMTP Exim 4.96"),
            ("starttls_offered", "yes"),
            ("extensions", "SIZE PIPELINING STARTTLS HELP"),
        ],
    )
    .await;
    check(
        Script::new()
            .send("421 mail.test Service not available, closing channel\r\n")
            .close(),
        Recipe::smtp(),
        failed(ErrorKind::ServiceUnavailable),
        &[],
    )
    .await;
    check(
        Script::new()
            .send("* OK [CAPABILITY IMAP4rev1] Dovecot (Debian) ready.\r\n")
            .expect("m1 CAPABILITY\r\n")
            .send("* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN\r\nm1 OK Pre-login capabilities listed, post-login capabilities have more.\r\n")
            .expect("m2 LOGOUT\r\n")
            .send("* BYE Logging out\r\nm2 OK Logout completed.\r\n")
            .close(),
        Recipe::imap(),
        PASSED,
        &[("starttls_offered", "yes"), ("greeting", "OK [CAPABILITY IMAP4rev1] Dovecot (Debian) ready.")],
    )
    .await;
    check(
        Script::new().send("* BYE Too many connections\r\n").close(),
        Recipe::imap(),
        failed(ErrorKind::ServiceUnavailable),
        &[],
    )
    .await;
    check(
        Script::new()
            .send("+OK Dovecot (Debian) ready.\r\n")
            .expect("CAPA\r\n")
            .send("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nSASL PLAIN\r\n.\r\n")
            .expect("QUIT\r\n")
            .send("+OK Logging out.\r\n")
            .close(),
        Recipe::pop3(),
        PASSED,
        &[
            ("starttls_offered", "no"),
            ("capabilities", "CAPA TOP UIDL RESP-CODES SASL PLAIN"),
        ],
    )
    .await;
    check(
        Script::new().send("SSH-2.0-OpenSSH_9.2p1\r\n"),
        Recipe::pop3(),
        failed(ErrorKind::ProtocolMismatch),
        &[],
    )
    .await;
}

/// A PostgreSQL backend message.
fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn pg_error(code: &str, message: &str) -> Vec<u8> {
    pg(
        b'E',
        format!("SFATAL\0VFATAL\0C{code}\0M{message}\0\0").as_bytes(),
    )
}

#[tokio::test]
async fn postgres_answers_prove_the_server_is_up() {
    let startup = postgres::postgres_startup("monitor", "monitor");
    let sasl = pg(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
    check(
        Script::new().expect(&startup).send(sasl),
        Recipe::postgres(),
        PASSED,
        &[("auth_method", "scram-sha-256-plus scram-sha-256")],
    )
    .await;
    check(
        Script::new().expect(&startup).send(pg_error(
            "28000",
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"monitor\"",
        )),
        Recipe::postgres(),
        PASSED,
        &[(
            "server_error",
            "FATAL 28000: no pg_hba.conf entry for host \"127.0.0.1\", user \"monitor\"",
        )],
    )
    .await;
    check(
        Script::new()
            .expect(&startup)
            .send(pg_error("57P03", "the database system is starting up")),
        Recipe::postgres(),
        failed(ErrorKind::ServiceUnavailable),
        &[],
    )
    .await;
    // Trust: the server says its version before it is ready for queries.
    let mut trusted = pg(b'R', &0u32.to_be_bytes());
    trusted.extend(pg(
        b'S',
        b"server_version\x0015.18 (Debian 15.18-0+deb12u1)\0",
    ));
    trusted.extend(pg(b'K', &[0; 8]));
    trusted.extend(pg(b'Z', b"I"));
    check(
        Script::new()
            .expect(&startup)
            .send(trusted)
            .expect("X\0\0\0\x04"),
        Recipe::postgres(),
        PASSED,
        &[
            ("auth_method", "trust"),
            ("server_version", "15.18 (Debian 15.18-0+deb12u1)"),
        ],
    )
    .await;
}

#[test]
fn postgres_startup_is_the_documented_message() {
    // Int32 length, Int32 196608 (protocol 3.0), then name/value pairs and a final NUL.
    let expected: Vec<u8> = [
        &[0, 0, 0, 0x3d][..],
        &[0, 3, 0, 0],
        b"user\0monitor\0database\0app\0application_name\0monitors\0\0",
    ]
    .concat();
    assert_eq!(postgres::postgres_startup("monitor", "app"), expected);
}

/// A MariaDB 10.11 handshake (protocol 10) as the server sends it, header included.
fn mariadb_handshake(ssl: bool) -> Vec<u8> {
    let lower: u16 = if ssl { 0xfffe } else { 0xf7fe };
    let mut p = vec![10];
    p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&lower.to_le_bytes());
    p.push(45); // charset
    p.extend_from_slice(&2u16.to_le_bytes()); // status
    p.extend_from_slice(&0x81ffu16.to_le_bytes()); // upper capabilities (plugin auth)
    p.push(21);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&[0x1d, 0, 0, 0]); // MariaDB extended capabilities
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"mysql_native_password\0");
    let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend(p);
    packet
}

#[tokio::test]
async fn mysql_handshake_is_parsed() {
    check(
        Script::new().send(mariadb_handshake(true)),
        Recipe::mysql(),
        PASSED,
        &[
            ("protocol_version", "10"),
            ("server_version", "10.11.6-MariaDB-0+deb12u1"),
            ("ssl", "yes"),
            ("auth_plugin", "mysql_native_password"),
        ],
    )
    .await;
    let mut error = vec![0xff];
    error.extend_from_slice(&1040u16.to_le_bytes());
    error.extend_from_slice(b"Too many connections");
    let mut packet = vec![error.len() as u8, 0, 0, 0];
    packet.extend(error);
    let r = check(
        Script::new().send(packet).close(),
        Recipe::mysql(),
        failed(ErrorKind::ServiceUnavailable),
        &[("server_error", "error 1040: Too many connections")],
    )
    .await;
    assert!(r.error.unwrap().hints[0].contains("max_connections"));
    match mysql::mysql_greeting(&mariadb_handshake(false)[4..]).unwrap() {
        MysqlGreeting::Handshake(h) => {
            assert_eq!(h.capabilities & mysql::MYSQL_CLIENT_SSL, 0);
            assert_eq!(h.connection_id, 42);
        }
        other => panic!("{other:?}"),
    }
}

/// The documented OP_MSG `hello` (header: length, requestID 1, responseTo 0, opCode 2013;
/// flagBits 0; a kind-0 section holding `{hello: 1, $db: "admin"}`).
const MONGODB_HELLO: &str = "340000000100000000000000dd07000000000000001f0000001068656c6c6f000100000002246462000600000061646d696e0000";

/// A MongoDB 7.0 standalone's reply to `hello`: isWritablePrimary, topologyVersion (a
/// nested document), the size limits, localTime (a date), minWireVersion 0,
/// maxWireVersion 21, readOnly, ok 1.0.
const MONGODB_REPLY: &str = "390100005d00000001000000dd0700000000000000240100000869735772697461626c655072696d617279000103746f706f6c6f677956657273696f6e002d0000000770726f636573734964006563a1b2c3d4e5f60123456712636f756e74657200000000000000000000106d617842736f6e4f626a65637453697a650000000001106d61784d65737361676553697a65427974657300006cdc02106d61785772697465426174636853697a6500a0860100096c6f63616c54696d6500009c5cbb9a010000106c6f676963616c53657373696f6e54696d656f75744d696e75746573001e00000010636f6e6e656374696f6e49640007000000106d696e5769726556657273696f6e0000000000106d61785769726556657273696f6e001500000008726561644f6e6c790000016f6b00000000000000f03f00";

/// A node shutting down: ok 0 with errmsg and code 11600.
const MONGODB_ERROR: &str = "730000005e00000001000000dd07000000000000005e000000016f6b000000000000000000026572726d736700130000006e6f6465206973207265636f766572696e670010636f646500502d000002636f64654e616d650016000000496e746572727570746564417453687574646f776e0000";

fn unhex(s: &str) -> Vec<u8> {
    monitor_core::escape::from_hex(s).unwrap()
}

#[test]
fn mongodb_wire_format_byte_for_byte() {
    assert_eq!(mongodb::mongodb_hello(1), unhex(MONGODB_HELLO));
    let fields = mongodb::mongodb_reply(&unhex(MONGODB_REPLY)).unwrap();
    assert_eq!(fields["ok"], Bson::Number(1.0));
    assert_eq!(fields["maxWireVersion"], Bson::Number(21.0));
    assert_eq!(fields["isWritablePrimary"], Bson::Bool(true));
    assert_eq!(fields["topologyVersion"], Bson::Other("document"));
    assert_eq!(fields["localTime"], Bson::Other("date"));
    let mut truncated = unhex(MONGODB_REPLY);
    truncated.truncate(100);
    assert!(
        mongodb::mongodb_reply(&truncated)
            .unwrap_err()
            .contains("length")
    );
}

#[tokio::test]
async fn mongodb_hello_against_captured_replies() {
    check(
        Script::new()
            .expect(unhex(MONGODB_HELLO))
            .send(unhex(MONGODB_REPLY)),
        Recipe::mongodb(),
        PASSED,
        &[
            ("max_wire_version", "21"),
            ("server_release", "7.0"),
            ("role", "standalone"),
        ],
    )
    .await;
    check(
        Script::new()
            .expect(unhex(MONGODB_HELLO))
            .send(unhex(MONGODB_ERROR)),
        Recipe::mongodb(),
        failed(ErrorKind::ServiceUnavailable),
        &[],
    )
    .await;
    check(
        Script::new().expect(unhex(MONGODB_HELLO)).close(),
        Recipe::mongodb(),
        failed(ErrorKind::ProtocolMismatch),
        &[],
    )
    .await;
}

#[test]
fn proxy_headers_are_the_documented_bytes() {
    let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
    let (src, dst) = (v4("192.0.2.10:51000"), v4("198.51.100.7:6379"));
    assert_eq!(
        proxy::proxy_header(ProxyProtocol::V1, src, dst),
        b"PROXY TCP4 192.0.2.10 198.51.100.7 51000 6379\r\n"
    );
    let v2 = proxy::proxy_header(ProxyProtocol::V2, src, dst);
    let expected: Vec<u8> = [
        &proxy::PROXY_V2_SIGNATURE[..],
        &[0x21, 0x11, 0x00, 0x0c],
        &[192, 0, 2, 10, 198, 51, 100, 7],
        &51000u16.to_be_bytes(),
        &6379u16.to_be_bytes(),
    ]
    .concat();
    assert_eq!(v2, expected);
    let (src6, dst6) = (v4("[2001:db8::1]:40000"), v4("[2001:db8::2]:443"));
    assert_eq!(
        proxy::proxy_header(ProxyProtocol::V1, src6, dst6),
        b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n"
    );
    let v2 = proxy::proxy_header(ProxyProtocol::V2, src6, dst6);
    assert_eq!(&v2[12..16], &[0x21, 0x21, 0x00, 0x24]);
    assert_eq!(v2.len(), 16 + 36);
    // A v4-mapped address on a dual-stack socket is shown as IPv4.
    let mapped = v4("[::ffff:127.0.0.1]:5000");
    assert_eq!(
        proxy::proxy_header(ProxyProtocol::V1, mapped, v4("127.0.0.1:80")),
        b"PROXY TCP4 127.0.0.1 127.0.0.1 5000 80\r\n"
    );
}

#[tokio::test]
async fn proxy_header_goes_first_on_the_wire() {
    for (version, opening) in [
        (
            ProxyProtocol::V1,
            b"PROXY TCP4 127.0.0.1 127.0.0.1 ".to_vec(),
        ),
        (
            ProxyProtocol::V2,
            [&proxy::PROXY_V2_SIGNATURE[..], &[0x21, 0x11, 0, 12]].concat(),
        ),
    ] {
        let server = ScriptedServer::start(
            Script::new()
                .expect(&opening)
                .expect("version\r\n")
                .send("VERSION 1.6.18\r\n"),
        )
        .await
        .unwrap();
        let spec = TcpMonitor::new("proxied", "127.0.0.1", server.port())
            .proxy_protocol(version)
            .recipe(Recipe::memcached());
        let r = monitor_testing::check(spec).await;
        assert_eq!(r.status, Status::Passed, "{version:?}: {}", r.to_json());
    }
}

#[tokio::test]
async fn smtp_recipe_continues_after_starttls() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["mail.test"], 90).unwrap();
    let plaintext = Script::new()
        .send("220 mail.test ESMTP Postfix (Debian/GNU)\r\n")
        .expect("EHLO ")
        .send("250-mail.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
        .expect("STARTTLS\r\n")
        .send("220 2.0.0 Ready to start TLS\r\n");
    let over_tls = Script::new()
        .expect("EHLO monitor.invalid\r\n")
        .send("250-mail.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
        .expect("QUIT\r\n")
        .send("221 2.0.0 Bye\r\n");
    let server = ScriptedServer::start_tls(
        over_tls,
        TlsServer::after(plaintext, leaf.server_config(true).unwrap()),
    )
    .await
    .unwrap();
    let spec = TcpMonitor::new("mail", "127.0.0.1", server.port())
        .recipe(Recipe::smtp())
        .tls_with(|t| {
            t.mode = monitor_core::TlsMode::Starttls;
            t.ca = Some(PemSource::Pem(pki.root_pem()));
            t.server_name = Some("mail.test".into());
        });
    let r = monitor_testing::check(spec.clone()).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(r.facts["banner"], "mail.test ESMTP Postfix (Debian/GNU)");
    assert_eq!(r.facts["extensions"], "PIPELINING AUTH 8BITMIME");
    assert!(r.tls.unwrap().verified);
    // The recipe supplied the STARTTLS protocol; an explicit one must agree with it.
    let clash = spec
        .starttls(StartTls::Imap)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(clash.contains("does not match recipe `smtp`"), "{clash}");
}

#[test]
fn recipe_settings_are_validated() {
    let base = || TcpMonitor::new("x", "127.0.0.1", 1);
    let cases: [(TcpMonitor, &str); 5] = [
        (
            base().recipe(Recipe::redis_auth("1BAD")),
            "recipe.password_env: `1BAD` is not an environment variable name",
        ),
        (
            base().recipe(Recipe::Redis {
                password_env: None,
                username: Some("ops".into()),
                role: false,
            }),
            "recipe.username: needs recipe.password_env",
        ),
        (
            base().recipe(Recipe::memcached()).starttls(StartTls::Smtp),
            "tls.mode: `starttls` is not possible with recipe `memcached`",
        ),
        (
            base().recipe(Recipe::Ssh).tls_direct(),
            "tls.mode: `direct` is not possible with recipe `ssh`",
        ),
        (
            base().recipe(Recipe::Smtp {
                helo: "not a name".into(),
                login: None,
            }),
            "recipe.helo:",
        ),
    ];
    for (spec, expected) in cases {
        let errors = spec.validate().unwrap_err().to_string();
        assert!(errors.contains(expected), "{errors} lacks {expected}");
    }
}

#[test]
fn recipes_round_trip_through_json() {
    for recipe in [
        Recipe::postgres(),
        Recipe::Postgres {
            user: "ops".into(),
            database: Some("app".into()),
            login: None,
        },
        Recipe::postgres_login(
            "ops",
            None,
            monitor_spec::login::Login::password_file("pg.pass").query("SELECT 2"),
        ),
        Recipe::mysql(),
        Recipe::mongodb(),
        Recipe::smtp(),
        Recipe::imap(),
        Recipe::pop3(),
        Recipe::redis(),
        Recipe::redis_auth("REDIS_PASSWORD"),
        Recipe::memcached(),
        Recipe::Ssh,
        Recipe::ftp(),
    ] {
        let spec = TcpMonitor::new("x", "h", 1).recipe(recipe.clone());
        let back = TcpMonitor::from_json(&spec.to_json()).unwrap();
        assert_eq!(back.recipe, Some(recipe));
        assert!(recipes::RECIPES.contains(&back.recipe.unwrap().name()));
    }
    let typo = r#"{"schema_version":1,"id":"x","name":"x","target":{"host":"h","port":1},"recipe":{"protocol":"redis","pasword_env":"X"}}"#;
    let e = TcpMonitor::from_json(typo).unwrap_err();
    assert_eq!(e.path, "recipe");
    assert!(e.message.contains("pasword_env"), "{}", e.message);
}
