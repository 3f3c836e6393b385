//! A demo of the engine with nothing to install: starts loopback services (a Redis-like
//! PING server, a slow one, a port that refuses, one that answers wrongly), checks a
//! monitor against each, and prints one line per result with the error and hints.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use monitor_core::prelude::*;
use monitor_core::run_all;
use monitor_core::testing::{Script, ScriptedServer, refusing_port};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pong = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n")).await?;
    let slow = ScriptedServer::start(
        Script::new()
            .sleep(Duration::from_millis(300))
            .send("220 mail.demo ESMTP\r\n"),
    )
    .await?;
    let wrong = ScriptedServer::start(Script::new().send("-ERR wrong password\r\n")).await?;
    let refused = refusing_port()?;

    let specs = [
        TcpMonitor::new("redis-ping", "127.0.0.1", pong.port())
            .name("Redis answers PING")
            .send("PING\\r\\n")
            .expect("+PONG")
            .assert(response_time().less_than(ms(500))),
        TcpMonitor::new("smtp-banner", "127.0.0.1", slow.port())
            .name("SMTP banner (slow)")
            .expect_regex(r"^220 ")
            .thresholds(200, 2000),
        TcpMonitor::new("redis-auth", "127.0.0.1", wrong.port())
            .name("Redis with the wrong password")
            .read(ReadUntil::Any)
            .assert(response_data().contains("+OK")),
        TcpMonitor::new("postgres-down", "127.0.0.1", refused).name("PostgreSQL that is down"),
    ];
    let monitors = specs
        .iter()
        .map(TcpMonitor::validate)
        .collect::<Result<Vec<_>, _>>()?;
    let results = run_all(&Engine::new(), &monitors, 8).await;
    for r in &results {
        let status = format!("{:?}", r.status).to_lowercase();
        let t = &r.timings;
        println!(
            "{status:<9} {:<32} {:<22} connect {} first byte {} total {:.1} ms",
            r.name,
            r.address.as_deref().unwrap_or(&r.target),
            t.connect_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
            t.first_byte_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
            t.total_ms,
        );
        if let Some(e) = &r.error {
            println!("          {}: {}", e.kind.as_str(), e.message);
            for hint in &e.hints {
                println!("            - {hint}");
            }
        }
    }
    if std::env::args().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}
