//! A mock MongoDB (mockupdb from PyPI, driven by `mockupdb_scram.py`) doing the server side
//! of SCRAM-SHA-256 with a known password, salt and iteration count, and pymongo's own
//! SCRAM client run on chosen inputs to compare the monitor's with.

use std::path::PathBuf;
use std::process::Command;

use super::{Live, free_port, scratch_dir};

/// The script, written into each server's scratch directory.
const SCRIPT: &str = include_str!("mockupdb_scram.py");

/// The pinned requirements of the Python that runs the script.
const REQUIREMENTS: [&str; 2] = ["mockupdb==1.8.1", "pymongo==4.20.1"];

/// The Python of a virtual environment holding mockupdb and pymongo.
pub fn python() -> PathBuf {
    monitor_testing::pypi::program_with("python3", &REQUIREMENTS)
        .unwrap_or_else(|e| panic!("cannot make a python with mockupdb and pymongo: {e}"))
}

/// What the mock server is: its user (on `db`), password, salt (base64) and iterations,
/// its role (`primary`, `secondary` or `standalone`), and its misbehaviours.
#[derive(Debug, Clone)]
pub struct MockMongo {
    /// The user that may log in.
    pub user: &'static str,
    /// Its password.
    pub password: &'static str,
    /// Its authentication database.
    pub db: &'static str,
    /// `primary`, `secondary` or `standalone`.
    pub role: &'static str,
    /// Send a server signature that does not verify.
    pub bad_signature: bool,
    /// Ask for an empty `saslContinue` round after the signature.
    pub empty_round: bool,
    /// Answer `ping` with this error code and code name.
    pub ping_error: Option<(i32, &'static str)>,
}

impl MockMongo {
    /// Starts the server on a free port.
    pub fn start(&self) -> Live {
        let python = python();
        let dir = scratch_dir("mockupdb");
        let script = dir.join("mockupdb_scram.py");
        std::fs::write(&script, SCRIPT).expect("write the mockupdb script");
        let port = free_port();
        let cfg = serde_json::json!({
            "port": port,
            "user": self.user,
            "password": self.password,
            "db": self.db,
            "role": self.role,
            "salt": "c2FsdC1mb3ItdGhlLW1vbml0b3I=",
            "iterations": 15000,
            "bad_signature": self.bad_signature,
            "empty_round": self.empty_round,
            "ping_code": self.ping_error.map(|(code, _)| code),
            "ping_code_name": self.ping_error.map(|(_, name)| name),
        });
        let mut command = Command::new(python);
        command.arg(&script).arg("serve").arg(cfg.to_string());
        Live::spawn("mockupdb", command, port, dir)
    }
}

/// pymongo's SCRAM-SHA-256 exchange on these inputs: (client-first, server-first,
/// client-final), pymongo's nonce being `nonce` (32 bytes) in base64.
pub fn pymongo_final(
    user: &str,
    password: &str,
    nonce: &[u8; 32],
    server_nonce: &str,
    salt_b64: &str,
    iterations: u32,
) -> (String, String, String) {
    let dir = scratch_dir("pymongo-scram");
    let script = dir.join("mockupdb_scram.py");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new(python())
        .arg(&script)
        .args([
            "pymongo-final",
            user,
            password,
            &hex,
            server_nonce,
            salt_b64,
        ])
        .arg(iterations.to_string())
        .output()
        .expect("run pymongo");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "pymongo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pymongo's json");
    let s = |k: &str| v[k].as_str().expect("a string").to_owned();
    (s("first"), s("server_first"), s("final"))
}
