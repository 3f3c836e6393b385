//! Launchers for the data stores of the acceptance suite (redis, memcached, PostgreSQL,
//! MariaDB): each a real Debian server in the foreground on a free loopback port, with
//! everything it writes kept in its own throwaway directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use monitor_testing::postgres::{as_postgres, running_as_root};

use super::{Live, TlsFiles, free_port, require, scratch_dir};

/// The password of the `postgres` superuser in [`postgres`] servers.
pub const POSTGRES_PASSWORD: &str = "monitors-live";

/// redis-server on 127.0.0.1 with no persistence, requiring `password` (`AUTH`) when
/// one is given.
pub fn redis(password: Option<&str>) -> Live {
    let program = require("redis-server", "redis-server");
    let dir = scratch_dir("redis");
    let port = free_port();
    let mut command = redis_command(&program, &dir);
    command.args(["--port", &port.to_string()]);
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    Live::spawn("redis-server", command, port, dir)
}

/// redis-server speaking only TLS (`tls-port`, the plain port disabled) on 127.0.0.1,
/// presenting `tls` and not asking clients for certificates.
pub fn redis_tls(tls: &TlsFiles) -> Live {
    let program = require("redis-server", "redis-server");
    let dir = scratch_dir("redis-tls");
    let port = free_port();
    let mut command = redis_command(&program, &dir);
    command
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(&tls.cert)
        .arg("--tls-key-file")
        .arg(&tls.key)
        .args(["--tls-auth-clients", "no"]);
    Live::spawn("redis-server (tls)", command, port, dir)
}

fn redis_command(program: &Path, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .args(["--bind", "127.0.0.1", "--daemonize", "no", "--dir"])
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--logfile", ""]);
    command
}

/// memcached on 127.0.0.1 (TCP only, no UDP), dropping root privileges to `nobody`.
/// It notices SIGTERM on its once-a-second clock tick, so stopping takes up to 1 s.
pub fn memcached() -> Live {
    let program = require("memcached", "memcached");
    let dir = scratch_dir("memcached");
    let port = free_port();
    let mut command = Command::new(program);
    command.args([
        "-u",
        "nobody",
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-m",
        "16",
    ]);
    Live::spawn("memcached", command, port, dir)
}

/// PostgreSQL, freshly initialised in its scratch directory (`data/`), listening on
/// 127.0.0.1 and on a Unix socket in the scratch directory. Clients authenticate with
/// SCRAM-SHA-256 as `postgres` / [`POSTGRES_PASSWORD`], so an unauthenticated startup
/// message gets an authentication request. With `tls`, the server accepts SSLRequest
/// (`ssl=on`) presenting that certificate; without, it answers `N`.
///
/// As root, initdb and the server run as the `postgres` user through `setpriv`, which
/// execs: the process id [`Live::stop`] signals is the postmaster's. SIGTERM is a
/// "smart" shutdown that waits for open sessions, so close connections before the
/// handle drops.
pub fn postgres(tls: Option<&TlsFiles>) -> Live {
    let bin = postgres_bin();
    let dir = scratch_dir("postgres");
    let port = free_port();
    let data = dir.join("data");
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, format!("{POSTGRES_PASSWORD}\n")).expect("write postgres pwfile");
    let mut settings = vec![
        "listen_addresses=127.0.0.1".to_owned(),
        "fsync=off".to_owned(),
        "shared_buffers=16MB".to_owned(),
        "max_connections=20".to_owned(),
        "authentication_timeout=10s".to_owned(),
    ];
    let tls_files = tls.map(|tls| {
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        fs::copy(&tls.cert, &cert).expect("copy postgres certificate");
        fs::copy(&tls.key, &key).expect("copy postgres key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod key");
        (cert, key)
    });
    match &tls_files {
        Some((cert, key)) => {
            settings.push("ssl=on".to_owned());
            settings.push(format!("ssl_cert_file={}", cert.display()));
            settings.push(format!("ssl_key_file={}", key.display()));
        }
        None => settings.push("ssl=off".to_owned()),
    }
    if running_as_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("run chown");
        assert!(
            status.success(),
            "cannot chown {} to postgres",
            dir.display()
        );
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
    run_setup("initdb (postgres)", initdb);

    let mut server = as_postgres(&bin.join("postgres"));
    server
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir);
    for setting in &settings {
        server.args(["-c", setting]);
    }
    let live = Live::spawn("postgres", server, port, dir);
    // Listening is not serving: until recovery ends, a startup gets FATAL 57P03 ("the
    // database system is starting up"), which a loaded machine shows for a while.
    accepting_connections(&bin, port, &live);
    live
}

/// Waits until `pg_isready` says the server on `port` accepts connections (exit 0; 1 is
/// "rejecting", such as while starting up), for up to 60 s.
fn accepting_connections(bin: &Path, port: u16, live: &Live) {
    let start = std::time::Instant::now();
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "postgres on port {port} never accepted connections:\n{}",
            live.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The directory of the newest installed PostgreSQL's programs
/// (`/usr/lib/postgresql/N/bin`; see `monitor_testing::postgres`, which also runs the
/// control plane's PostgreSQL tests).
fn postgres_bin() -> PathBuf {
    monitor_testing::postgres::bin_dir().unwrap_or_else(|| {
        let postgres = require("/usr/lib/postgresql/15/bin/postgres", "postgresql");
        postgres.parent().expect("bin directory").to_path_buf()
    })
}

/// Runs a setup step to completion; panics with its output if it fails.
fn run_setup(what: &str, command: Command) {
    if let Err(why) = try_setup(command) {
        panic!("{what} failed {why}");
    }
}

/// Runs a setup step to completion; its status and output when it fails.
fn try_setup(mut command: Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("to start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// MariaDB, freshly installed in its scratch directory (`data/`) with small InnoDB
/// files, listening on 127.0.0.1 and on `mysqld.sock` in the scratch directory, with
/// the normal grant tables: `root` (`root@127.0.0.1` over TCP) has no password. With
/// `tls`, the server offers TLS (CLIENT_SSL) presenting that certificate; without, it
/// offers none (MariaDB 10.11 generates no certificate of its own). Installing the
/// system tables takes most of the 1–5 s start.
pub fn mariadb(tls: Option<&TlsFiles>) -> Live {
    let install = require("mariadb-install-db", "mariadb-server");
    let program = require("mariadbd", "mariadb-server");
    let dir = scratch_dir("mariadb");
    let port = free_port();
    let data = dir.join("data");
    // Small files, no native AIO (io_uring may be missing in a sandbox), no syncing:
    // the data is thrown away.
    let innodb = [
        "--innodb-log-file-size=4M",
        "--innodb-buffer-pool-size=16M",
        "--innodb-use-native-aio=0",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--innodb-flush-method=nosync",
    ];

    let setup = || {
        let mut setup = Command::new(&install);
        setup
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            // `-uroot` reaches the bootstrap server as is; the script's own `--user=`
            // would also chown and chmod the system's auth_pam_tool_dir.
            .args([
                "-uroot",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(innodb);
        setup
    };
    // The bootstrap fails now and then when the machine is loaded (seen once in many
    // runs, with every CPU busy compiling): one clean retry before giving up.
    if try_setup(setup()).is_err() {
        let _ = fs::remove_dir_all(&data);
        run_setup("mariadb-install-db", setup());
    }

    let mut server = Command::new(program);
    server
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
        .arg(format!("--port={port}"))
        .args([
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-name-resolve",
            "--skip-log-bin",
        ])
        .args(innodb);
    if let Some(tls) = tls {
        server
            .arg(format!("--ssl-cert={}", tls.cert.display()))
            .arg(format!("--ssl-key={}", tls.key.display()));
    }
    Live::spawn("mariadbd", server, port, dir)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::super::TestCerts;
    use super::super::edge::s_client;
    use super::*;

    /// Connects to `live`, sends `send`, and reads until `done` holds for what arrived
    /// (or the server closes, or 5 s pass).
    fn exchange(live: &Live, send: &[u8], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut stream = TcpStream::connect(live.addr())
            .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", live.name, live.log()));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        stream.write_all(send).expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !done(&got) {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    }

    fn line(got: &[u8]) -> bool {
        got.ends_with(b"\r\n")
    }

    #[test]
    fn redis_answers_ping() {
        let server = redis(None);
        let got = exchange(&server, b"PING\r\n", line);
        assert_eq!(got, b"+PONG\r\n", "redis:\n{}", server.log());
    }

    #[test]
    fn redis_with_password_wants_auth() {
        let server = redis(Some("sesame"));
        let got = exchange(&server, b"PING\r\n", line);
        assert!(
            got.starts_with(b"-NOAUTH"),
            "redis: {got:?}\n{}",
            server.log()
        );
        let got = exchange(&server, b"AUTH sesame\r\nPING\r\n", |g| {
            g.ends_with(b"+PONG\r\n")
        });
        assert_eq!(got, b"+OK\r\n+PONG\r\n", "redis:\n{}", server.log());
    }

    #[test]
    fn redis_tls_verifies() {
        let certs = TestCerts::new("redis-tls");
        let server = redis_tls(&certs.tls);
        let (ok, out) = s_client(server.port, &certs.verify_args());
        assert!(ok, "s_client to redis tls:\n{out}\n{}", server.log());
    }

    #[test]
    fn memcached_answers_version() {
        let server = memcached();
        let got = exchange(&server, b"version\r\n", line);
        assert!(got.starts_with(b"VERSION "), "memcached: {got:?}");
    }

    /// A PostgreSQL StartupMessage (protocol 3.0) for user and database `postgres`.
    fn startup_message() -> Vec<u8> {
        let mut body = 196_608u32.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0postgres\0database\0postgres\0\0");
        let mut message = u32::try_from(body.len() + 4)
            .expect("short message")
            .to_be_bytes()
            .to_vec();
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn postgres_tls_and_scram() {
        let certs = TestCerts::new("postgres");
        let server = postgres(Some(&certs.tls));
        let pid_file = fs::read_to_string(server.dir.join("data/postmaster.pid"))
            .expect("read postmaster.pid");
        assert_eq!(
            pid_file.lines().next().and_then(|l| l.parse().ok()),
            server.pid(),
            "the process we stop is the postmaster"
        );
        let (ok, out) = s_client(
            server.port,
            &[&["-starttls", "postgres"], &certs.verify_args()[..]].concat(),
        );
        assert!(ok, "s_client -starttls postgres:\n{out}\n{}", server.log());
        // R, length 23, AuthenticationSASL (10), mechanisms list naming SCRAM-SHA-256.
        let got = exchange(&server, &startup_message(), |g| g.len() >= 24);
        assert_eq!(
            got.first(),
            Some(&b'R'),
            "postgres: {got:?}\n{}",
            server.log()
        );
        assert_eq!(got.get(5..9), Some(&10u32.to_be_bytes()[..]), "{got:?}");
        let output = Command::new(postgres_bin().join("psql"))
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full \
                 sslrootcert={} password={POSTGRES_PASSWORD}",
                server.port,
                certs.ca.display()
            ))
            .args([
                "-X",
                "-A",
                "-t",
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            .env("PGHOST", "localhost")
            .output()
            .expect("run psql");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "t",
            "psql over TLS with SCRAM: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            server.log()
        );
    }

    #[test]
    fn postgres_without_tls_refuses_ssl() {
        let server = postgres(None);
        // SSLRequest: length 8, code 80877103.
        let mut request = 8u32.to_be_bytes().to_vec();
        request.extend_from_slice(&80_877_103u32.to_be_bytes());
        let got = exchange(&server, &request, |g| !g.is_empty());
        assert_eq!(got, b"N", "postgres:\n{}", server.log());
    }

    /// The first packet's payload starts at byte 4; protocol version 10.
    fn mariadb_greeting(server: &Live) -> Vec<u8> {
        let got = exchange(server, b"", |g| g.len() >= 5);
        assert_eq!(
            got.get(4),
            Some(&0x0a),
            "mariadb: {got:?}\n{}",
            server.log()
        );
        got
    }

    #[test]
    fn mariadb_greets() {
        let server = mariadb(None);
        mariadb_greeting(&server);
        let client = require("mariadb", "mariadb-client");
        let output = Command::new(client)
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-N",
                "-e",
                "SELECT 6*7",
            ])
            .arg(format!("--port={}", server.port))
            .output()
            .expect("run mariadb client");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "42",
            "mariadb client as root: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            server.log()
        );
    }

    #[test]
    fn mariadb_tls_verifies() {
        let certs = TestCerts::new("mariadb");
        let server = mariadb(Some(&certs.tls));
        mariadb_greeting(&server);
        let (ok, out) = s_client(
            server.port,
            &[&["-starttls", "mysql"], &certs.verify_args()[..]].concat(),
        );
        assert!(ok, "s_client -starttls mysql:\n{out}\n{}", server.log());
    }
}
