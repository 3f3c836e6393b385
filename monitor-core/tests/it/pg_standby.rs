//! The PostgreSQL login on a standby: a replica of the shared test server made with
//! `pg_basebackup -R` and started on a free port, where the login reports
//! `in_recovery = yes`, role `replica`, read-only and a small replication lag (the primary
//! says `no`, `primary`, writable, lag 0, see `pg_login`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use monitor_core::TcpMonitor;
use monitor_core::model::assertion::{replication_lag, role, seconds, writable};
use monitor_core::model::login::Login;
use monitor_core::{ErrorKind, Recipe, Status};
use monitor_testing::postgres::{PASSWORD, as_postgres, bin_dir, running_as_root};

use crate::pg_login::{SCRAM_PASSWORD, VAR, check, server};

/// A standby server, stopped by its process id and removed when dropped.
struct Standby {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Drop for Standby {
    fn drop(&mut self) {
        monitor_testing::stop_process(&mut self.child, "-INT");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(what: &str, command: &mut Command) {
    let out = command.stdin(Stdio::null()).output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the shared server with `pg_basebackup -R` and starts the copy as a standby.
fn standby() -> Standby {
    let primary = server();
    let bin = bin_dir().expect("PostgreSQL is installed");
    let dir = std::env::temp_dir().join(format!("pg-standby-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if running_as_root() {
        run(
            "chown",
            Command::new("chown").arg("postgres:postgres").arg(&dir),
        );
    }
    let data = dir.join("data");
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres password={PASSWORD} sslmode=disable",
        primary.port()
    );
    run(
        "pg_basebackup",
        as_postgres(&bin.join("pg_basebackup"))
            .arg("-D")
            .arg(&data)
            .args(["-R", "-X", "stream", "--no-sync", "--checkpoint=fast"])
            .args(["-d", &conninfo]),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.join("standby.log")).unwrap();
    let child = as_postgres(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "ssl=off",
            "-c",
            "fsync=off",
        ])
        .args(["-c", "max_connections=200", "-c", "hot_standby=on"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the standby");
    Standby { port, dir, child }
}

#[tokio::test]
async fn a_standby_reports_it_is_in_recovery() {
    let standby = standby();
    let spec = || {
        TcpMonitor::new("pg-standby", "127.0.0.1", standby.port)
            .recipe(Recipe::postgres_login(
                "scram_user",
                Some("login_app"),
                Login::password_env(VAR),
            ))
            .timeouts(5_000, 5_000, 15_000)
            .thresholds(10_000, 15_000)
            .assert(role().equals("replica"))
            .assert(replication_lag().less_than(seconds(10)))
    };
    // The standby accepts sessions once it reached a consistent state, and knows its
    // lag once it streams.
    let mut last = None;
    for _ in 0..240 {
        let r = check(spec(), SCRAM_PASSWORD).await;
        if r.status == Status::Passed {
            last = Some(r);
            break;
        }
        last = Some(r);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let r = last.unwrap();
    assert_eq!(
        r.status,
        Status::Passed,
        "{}\n{}",
        r.to_json(),
        std::fs::read_to_string(standby.dir.join("standby.log")).unwrap_or_default()
    );
    assert_eq!(r.facts["in_recovery"], "yes");
    assert_eq!(r.facts["auth_method"], "scram-sha-256");
    assert_eq!(r.facts["role"], "replica");
    assert_eq!(r.facts["read_only"], "yes");
    let lag: u64 = r.facts["replication_lag_ms"].parse().expect("a number");
    assert!(lag < 10_000, "{lag}");
    // Asserting it takes writes fails as the pager reads it: not serving.
    let r = check(spec().assert(writable()), SCRAM_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
    assert!(e.message.contains("read-only"), "{}", e.message);
    assert!(e.hints[0].contains("standby or replica"), "{:?}", e.hints);
    assert!(
        e.hints
            .last()
            .unwrap()
            .contains("PGPASSWORD=\"$MONITORS_SECRET_PG\" psql"),
        "{:?}",
        e.hints
    );
}
