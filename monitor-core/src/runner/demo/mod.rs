//! `demo`: starts small services on loopback (a Redis-like PING service, an SMTP server
//! with STARTTLS whose certificate expires in 10 days, a slow banner, a wrong answer and a
//! port that refuses) and checks a monitor against each, so a newcomer sees passed,
//! degraded and failed results with their hints from one command.

use std::time::Duration;

use crate::CheckResult;
use crate::prelude::*;
use monitor_spec::spec::PemSource;

mod services;

use services::{Conversation, Service};

/// Services kept alive while the demo's monitors run.
pub struct Services {
    _running: Vec<Service>,
    /// The monitors pointed at them.
    pub monitors: Vec<TcpMonitor>,
}

/// Starts the demo services and returns monitors of them.
pub async fn start() -> Result<Services, String> {
    let fail = |what: &str, e: std::io::Error| format!("cannot start the demo {what}: {e}");
    let pong = Service::start(Conversation {
        plain: &[("PING\r\n", "+PONG\r\n")],
        ..Conversation::default()
    })
    .await
    .map_err(|e| fail("PING service", e))?;
    let (root_pem, config) = services::tls_for("mail.demo.test", 10)?;
    let smtp = Service::start(Conversation {
        plain: &[
            ("", "220 mail.demo.test ESMTP\r\n"),
            ("EHLO ", "250-mail.demo.test\r\n250 STARTTLS\r\n"),
            ("STARTTLS\r\n", "220 ready to start TLS\r\n"),
        ],
        tls: Some(config),
        secure: &[("QUIT\r\n", "221 bye\r\n")],
        ..Conversation::default()
    })
    .await
    .map_err(|e| fail("SMTP service", e))?;
    let slow = Service::start(Conversation {
        delay: Duration::from_millis(300),
        plain: &[("", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")],
        ..Conversation::default()
    })
    .await
    .map_err(|e| fail("slow service", e))?;
    let wrong = Service::start(Conversation {
        plain: &[("AUTH ", "-WRONGPASS invalid username-password pair\r\n")],
        ..Conversation::default()
    })
    .await
    .map_err(|e| fail("Redis with a password", e))?;
    let refused = services::refused_port().map_err(|e| fail("refusing port", e))?;
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
                t.ca = Some(PemSource::Pem(root_pem.clone()));
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
        _running: vec![pong, smtp, slow, wrong],
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
