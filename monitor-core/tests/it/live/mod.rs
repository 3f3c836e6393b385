//! The acceptance harness: real Debian servers started on free loopback ports with
//! throwaway directories, each stopped by its process id when its handle drops.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running server: its port, its process, and the directory it owns.
pub struct Live {
    /// What it is, for messages (`redis-server`).
    pub name: String,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The throwaway directory holding its configuration, data and log.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Live {
    /// Starts `command` (already given its arguments, with its output going to
    /// `dir/server.log`) and waits until `port` accepts connections.
    pub fn spawn(name: &str, mut command: Command, port: u16, dir: PathBuf) -> Live {
        let log = fs::File::create(dir.join("server.log")).expect("create server log");
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut live = Live {
            name: name.to_owned(),
            port,
            dir,
            child: Some(child),
        };
        live.wait_listening(Duration::from_secs(30));
        live
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Waits until the port accepts a connection; panics with the log if the process
    /// exits or the time runs out.
    pub fn wait_listening(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited ({status}) before listening on {}:\n{}",
                    self.name,
                    self.port,
                    self.log()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "{} did not listen on {} within {limit:?}:\n{}",
                    self.name,
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server by its process id (SIGTERM, then SIGKILL after 10 s) and waits
    /// for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            monitor_testing::stop_process(&mut child, "-TERM");
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub use monitor_testing::free_port;

/// A new empty directory under the system temp dir, named after `name`.
pub fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "monitors-live-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The path of a program a test needs; panics naming the Debian package that has it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let candidates = [
        PathBuf::from(program),
        Path::new("/usr/sbin").join(program),
        Path::new("/usr/bin").join(program),
        Path::new("/usr/lib/nagios/plugins").join(program),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_absolute() && p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: the acceptance suite needs the Debian package \
                 {package} (`cargo xtask test` installs the packages of .ci/packages.toml as root, or skips this suite and names it)"
            )
        })
}

/// A certificate and key written to files for a server's configuration.
pub struct TlsFiles {
    /// The certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8).
    pub key: PathBuf,
    /// The chain followed by the key in one file, as haproxy wants it.
    pub combined: PathBuf,
}

/// Writes `leaf` into `dir` as `name.crt`, `name.key` and `name.pem`, readable by a
/// server that drops privileges.
pub fn write_tls(dir: &Path, name: &str, leaf: &monitor_testing::Leaf) -> TlsFiles {
    use std::os::unix::fs::PermissionsExt;
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
        combined: dir.join(format!("{name}.pem")),
    };
    fs::write(&files.cert, &leaf.cert_pem).expect("write certificate");
    fs::write(&files.key, &leaf.key_pem).expect("write key");
    fs::write(
        &files.combined,
        format!("{}{}", leaf.cert_pem, leaf.key_pem),
    )
    .expect("write combined pem");
    for path in [&files.cert, &files.key, &files.combined] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    files
}

/// A fresh test PKI's leaf for `localhost` and `127.0.0.1` (valid from a day ago for 30
/// days), written with its root into a throwaway directory removed on drop.
pub struct TestCerts {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The leaf's certificate chain, key and combined PEM.
    pub tls: TlsFiles,
    /// The root certificate (PEM) that issued the chain.
    pub root_pem: String,
    /// [`TestCerts::root_pem`] as a file, for `-CAfile`.
    pub ca: PathBuf,
}

impl TestCerts {
    /// Generates the PKI and writes the files into a new scratch directory named after
    /// `name`.
    pub fn new(name: &str) -> TestCerts {
        Self::valid(name, -1, 90)
    }

    /// Like [`TestCerts::new`], the leaf valid from `from` days to `to` days from now
    /// (negative: in the past), for expired and not-yet-valid certificates.
    pub fn valid(name: &str, from: i64, to: i64) -> TestCerts {
        use monitor_testing::days_from_now;
        let pki = monitor_testing::TestPki::new().expect("generate test PKI");
        let leaf = pki
            .leaf(
                &["localhost", "127.0.0.1"],
                days_from_now(from),
                days_from_now(to),
            )
            .expect("issue leaf");
        let dir = scratch_dir(&format!("{name}-certs"));
        let tls = write_tls(&dir, name, &leaf);
        let ca = dir.join("root.crt");
        let root_pem = pki.root_pem();
        fs::write(&ca, &root_pem).expect("write root certificate");
        TestCerts {
            dir,
            tls,
            root_pem,
            ca,
        }
    }

    /// `s_client` arguments trusting only the root and failing unless the chain verifies
    /// for `localhost`.
    pub fn verify_args(&self) -> Vec<&str> {
        vec![
            "-CAfile",
            self.ca.to_str().expect("utf-8 temp path"),
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
        ]
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub mod data;
pub mod edge;
pub mod mail;
pub mod mail_login;
pub mod mockupdb;
pub mod mysql;
pub mod replicas;
pub mod shell;
pub mod slapd;
