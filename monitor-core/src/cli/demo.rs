//! `demo`: starts small services on loopback (a Redis-like PING service, an SMTP server
//! with STARTTLS whose certificate expires in 10 days, a slow banner, a wrong answer and a
//! port that refuses) and checks a monitor against each, so a newcomer sees passed,
//! degraded and failed results with their hints from one command.

use std::time::Duration;

use crate::CheckResult;
use crate::prelude::*;
use crate::spec::PemSource;
use crate::testing::{Script, ScriptedServer, TestPki, TlsServer, refusing_port};

/// Services kept alive while the demo's monitors run.
pub struct Services {
    _servers: Vec<ScriptedServer>,
    /// The monitors pointed at them.
    pub monitors: Vec<TcpMonitor>,
}

/// Starts the demo services and returns monitors of them.
pub async fn start() -> Result<Services, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot start the demo {what}: {e}");
    let pong = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n"))
        .await
        .map_err(|e| fail("PING service", &e))?;
    let pki = TestPki::new().map_err(|e| fail("certificates", &e))?;
    let leaf = pki
        .leaf_for(&["mail.demo.test"], 10)
        .map_err(|e| fail("certificates", &e))?;
    let config = leaf
        .server_config(true)
        .map_err(|e| fail("TLS service", &e))?;
    let smtp = ScriptedServer::start_tls(
        Script::new().expect("QUIT\r\n").send("221 bye\r\n"),
        TlsServer::after(
            Script::new()
                .send("220 mail.demo.test ESMTP\r\n")
                .expect("EHLO ")
                .send("250-mail.demo.test\r\n250 STARTTLS\r\n")
                .expect("STARTTLS\r\n")
                .send("220 ready to start TLS\r\n"),
            config,
        ),
    )
    .await
    .map_err(|e| fail("SMTP service", &e))?;
    let slow = ScriptedServer::start(
        Script::new()
            .sleep(Duration::from_millis(300))
            .send("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
    )
    .await
    .map_err(|e| fail("slow service", &e))?;
    let wrong = ScriptedServer::start(
        Script::new()
            .expect("AUTH ")
            .send("-WRONGPASS invalid username-password pair\r\n"),
    )
    .await
    .map_err(|e| fail("Redis with a password", &e))?;
    let refused = refusing_port().map_err(|e| fail("refusing port", &e))?;
    let local = "127.0.0.1";
    let monitors = vec![
        TcpMonitor::new("demo-redis-ping", local, pong.port())
            .name("Redis answers PING")
            .send("PING\r\n")
            .expect("+PONG")
            .assert(response_time().less_than(ms(500))),
        TcpMonitor::new("demo-smtp-starttls", local, smtp.port())
            .name("SMTP with STARTTLS")
            .starttls(StartTls::Smtp)
            .tls_with(|t| {
                t.ca = Some(PemSource::Pem(pki.root_pem()));
                t.server_name = Some("mail.demo.test".into());
            })
            .send("QUIT\r\n")
            .expect("221"),
        TcpMonitor::new("demo-ssh-banner", local, slow.port())
            .name("SSH banner (slow)")
            .expect_regex(r"^SSH-2\.0-")
            .thresholds(200, 2000),
        TcpMonitor::new("demo-redis-auth", local, wrong.port())
            .name("Redis AUTH")
            .send("AUTH monitor secret\r\n")
            .expect("+OK")
            .timeouts(1000, 300, 2000)
            .thresholds(2000, 2000),
        TcpMonitor::new("demo-postgres-down", local, refused).name("PostgreSQL that is down"),
    ];
    Ok(Services {
        _servers: vec![pong, smtp, slow, wrong],
        monitors,
    })
}

/// Runs the demo monitors once.
pub async fn run(services: &Services) -> Result<Vec<CheckResult>, String> {
    let valid = services
        .monitors
        .iter()
        .map(TcpMonitor::validate)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(crate::run_all(&crate::Engine::new(), &valid, 8).await)
}
