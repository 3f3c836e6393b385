//! A throwaway PostgreSQL server for tests: freshly initialised in its own directory,
//! listening on a free 127.0.0.1 port with TLS (a certificate of a [`TestPki`]) and
//! password authentication, `fsync` off; fresh databases on demand; stopped by its process
//! id when dropped or, for a server kept in a `static`, when the test process exits.
//!
//! ```no_run
//! let server = monitor_testing::postgres::PostgresServer::start().unwrap();
//! let db = server.create_database().unwrap();
//! let url = server.url(&db); // postgres://postgres:...@127.0.0.1:PORT/DB?sslmode=disable
//! # let _ = url;
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::TestPki;

/// The password of the `postgres` superuser of every [`PostgresServer`].
pub const PASSWORD: &str = "monitor-testing";

/// The most client connections a server accepts (several control planes, each with a pool
/// of up to 16, and the suites' own connections).
pub const MAX_CONNECTIONS: u32 = 200;

/// How long starting a server may take before [`PostgresServer::start`] gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server of its own, in a scratch directory.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    root_cert: PathBuf,
}

/// The directory of the newest installed PostgreSQL's programs
/// (`/usr/lib/postgresql/N/bin`), `None` when none is installed.
pub fn bin_dir() -> Option<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// The server this test process shares among its tests: started on first use, stopped
/// when the process exits ([`PostgresServer::stop_at_exit`]). Panics, saying why, when it
/// cannot start.
pub fn shared() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = PostgresServer::start()
            .unwrap_or_else(|e| panic!("cannot start the test PostgreSQL server: {e}"));
        server
            .stop_at_exit()
            .unwrap_or_else(|e| panic!("cannot watch the test PostgreSQL server: {e}"));
        server
    })
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid).
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` run as the `postgres` user when we are root (setpriv execs it, keeping the
/// process id), as ourselves otherwise: PostgreSQL refuses to run as root.
pub fn as_postgres(program: &Path) -> Command {
    if !running_as_root() {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--reset-env",
        ])
        .arg(program);
    command
}

fn other(message: String) -> io::Error {
    io::Error::other(message)
}

fn scratch_dir() -> io::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "monitor-testing-postgres-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run(what: &str, mut command: Command) -> io::Result<()> {
    let out = command.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl PostgresServer {
    /// Initialises and starts a server; an error names what failed (PostgreSQL missing,
    /// initdb, or the server not answering within a minute, with its log).
    pub fn start() -> io::Result<PostgresServer> {
        let bin = bin_dir().ok_or_else(|| {
            other(
                "PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/postgres): the \
                 tests need the Debian package postgresql"
                    .to_owned(),
            )
        })?;
        let dir = scratch_dir()?;
        let port = crate::free_port();
        let data = dir.join("data");
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, format!("{PASSWORD}\n"))?;

        let pki = TestPki::new().map_err(|e| other(format!("test pki: {e}")))?;
        let leaf = pki
            .leaf_for(&["localhost", "127.0.0.1"], 30)
            .map_err(|e| other(format!("test certificate: {e}")))?;
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        let root_cert = dir.join("root.crt");
        fs::write(&cert, &leaf.cert_pem)?;
        fs::write(&key, &leaf.key_pem)?;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
        fs::write(&root_cert, pki.root_pem())?;

        if running_as_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            run("chown", chown)?;
        }
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--auth=scram-sha-256",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]);
        run("initdb", initdb)?;

        let log = fs::File::create(dir.join("server.log"))?;
        let mut server = as_postgres(&bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir);
        for setting in [
            "listen_addresses=127.0.0.1".to_owned(),
            "fsync=off".to_owned(),
            "synchronous_commit=off".to_owned(),
            "full_page_writes=off".to_owned(),
            "shared_buffers=32MB".to_owned(),
            format!("max_connections={MAX_CONNECTIONS}"),
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ] {
            server.args(["-c", &setting]);
        }
        let child = server
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = PostgresServer {
            port,
            dir,
            bin,
            child: Some(child),
            root_cert,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(other(format!(
                    "postgres exited at start ({status}): {}",
                    self.log()
                )));
            }
            if self.psql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(other(format!(
                    "postgres did not answer within {START_TIMEOUT:?}: {}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the postmaster.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The PEM file of the root that issued the server's certificate (valid for
    /// `localhost` and `127.0.0.1`).
    pub fn root_cert(&self) -> &Path {
        &self.root_cert
    }

    /// The URL of database `db` as the superuser, without TLS (`sslmode=disable`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The URL of database `db` without its password (give it apart, as
    /// [`PASSWORD`]), with `query` appended (such as `sslmode=disable`).
    pub fn url_without_password(&self, host: &str, db: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}?{query}", self.port)
    }

    /// Runs `sql` on database `db` with psql; its output (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db, "-X", "-A", "-t", "-q"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(other(format!(
                "psql `{sql}` on {db}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Creates a new empty database with a unique name; its name.
    pub fn create_database(&self) -> io::Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(name)
    }

    /// Drops database `name`, ending its sessions first.
    pub fn drop_database(&self, name: &str) -> io::Result<()> {
        self.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .map(drop)
    }

    /// Every row of every table of database `db`, one `INSERT` statement each (pg_dump's
    /// data), sorted: to compare a database before and after, or to search it.
    pub fn dump(&self, db: &str) -> io::Result<Vec<String>> {
        let out = Command::new(self.bin.join("pg_dump"))
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "disable")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "postgres",
                "--data-only",
                "--inserts",
                "--no-owner",
                db,
            ])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(other(format!(
                "pg_dump {db}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("INSERT INTO "))
            .map(str::to_owned)
            .collect();
        rows.sort();
        Ok(rows)
    }

    /// Stops the server at once when this process exits, even if `self` is never dropped
    /// (kept in a `static`): a watchdog shell waits for this process to end, then stops the
    /// postmaster by its process id and removes the directory.
    pub fn stop_at_exit(&self) -> io::Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
             kill -INT {pid} 2>/dev/null; \
             for _ in $(seq 100); do kill -0 {pid} 2>/dev/null || break; sleep 0.1; done; \
             kill -KILL {pid} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }

    /// Stops the server ("fast" shutdown: sessions are ended) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::stop_process(&mut child, "-INT");
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
