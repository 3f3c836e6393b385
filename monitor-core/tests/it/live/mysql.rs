//! MariaDB for the MySQL login tests: the acceptance harness's server
//! ([`super::data::mariadb`]) with SQL run as `root` over its Unix socket by the `mariadb`
//! client, and connections held open as a user to fill its connection limit.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::data::mariadb;
use super::{Live, TlsFiles, require};

/// A MariaDB server started for a test, stopped by its process id on drop.
pub struct MariaDb {
    /// The server.
    pub live: Live,
}

impl MariaDb {
    /// A fresh server (with `tls`, offering TLS with that certificate).
    pub fn start(tls: Option<&TlsFiles>) -> MariaDb {
        MariaDb { live: mariadb(tls) }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.live.port
    }

    /// Runs `sql` as `root` over the Unix socket; its output (tab-separated, no column
    /// names), or the client's error.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        let client = require("mariadb", "mariadb-server");
        let output = Command::new(client)
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.live.dir.join("mysqld.sock").display()
            ))
            .args(["--user=root", "--batch", "--skip-column-names", "-e", sql])
            .output()
            .map_err(|e| format!("cannot start mariadb: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "mariadb failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// [`MariaDb::sql`], panicking with the server's log when it fails.
    pub fn must(&self, sql: &str) -> String {
        self.sql(sql)
            .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", self.live.log()))
    }

    /// Holds a session of `user` (password `password`) open over TCP until the returned
    /// handle drops, waiting until the server lists it.
    pub fn hold(&self, user: &str, password: &str) -> Held {
        let client = require("mariadb", "mariadb-server");
        let child = Command::new(client)
            .arg("--no-defaults")
            .args(["--host=127.0.0.1", &format!("--port={}", self.port())])
            .arg(format!("--user={user}"))
            .env("MYSQL_PWD", password)
            .args(["-e", "SELECT SLEEP(120)"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the mariadb client");
        let held = Held { child };
        let count = format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}' AND INFO LIKE 'SELECT SLEEP%'"
        );
        let start = Instant::now();
        while self.must(&count).trim() != "1" {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the held session of {user} never showed up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        held
    }
}

/// A session held open by a `mariadb` client process, ended by its process id on drop.
pub struct Held {
    child: Child,
}

impl Drop for Held {
    fn drop(&mut self) {
        monitor_testing::stop_process(&mut self.child, "-KILL");
    }
}

impl MariaDb {
    /// Stops the server when this process exits, even if `self` is never dropped (kept in
    /// a `static`): a watchdog shell waits for this process to end, then stops the server
    /// by its process id and removes its directory.
    pub fn stop_at_exit(&self) -> std::io::Result<()> {
        let Some(pid) = self.live.pid() else {
            return Ok(());
        };
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
             kill -TERM {pid} 2>/dev/null; \
             for _ in $(seq 100); do kill -0 {pid} 2>/dev/null || break; sleep 0.1; done; \
             kill -KILL {pid} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            dir = self.live.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }
}
