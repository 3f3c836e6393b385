//! Replicated servers for the login tests: a Redis primary and a replica of it
//! (`replicaof`), each with the same ACL users, on free loopback ports.

use std::process::Command;

use super::{Live, free_port, require, scratch_dir};

/// The password of the ACL users [`redis_with_users`] creates.
pub const REDIS_USER_PASSWORD: &str = "probe-secret-5d1e";

/// The ACL user allowed PING, INFO and ROLE.
pub const REDIS_PROBE_USER: &str = "probe";

/// The ACL user allowed PING and INFO, not ROLE.
pub const REDIS_NO_ROLE_USER: &str = "norole";

/// redis-server on 127.0.0.1 without persistence, with the default user open (so a
/// replica can sync without a password) and the users [`REDIS_PROBE_USER`] and
/// [`REDIS_NO_ROLE_USER`]; with `primary` (a port), a replica of that server.
pub fn redis_with_users(primary: Option<u16>) -> Live {
    let program = require("redis-server", "redis-server");
    let dir = scratch_dir(if primary.is_some() {
        "redis-replica"
    } else {
        "redis-primary"
    });
    let port = free_port();
    let mut command = Command::new(&program);
    command
        .args(["--bind", "127.0.0.1", "--daemonize", "no", "--dir"])
        .arg(&dir)
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .args(["--port", &port.to_string()]);
    users(&mut command);
    // The primary pings its replicas every second (10 s by default), so on an idle
    // primary a replica's master_last_io_seconds_ago, its lag, stays small.
    command.args(["--repl-ping-replica-period", "1"]);
    if let Some(primary) = primary {
        command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        // Reconnect quickly once the primary is back; notice a lost one quickly.
        command.args(["--repl-timeout", "5"]);
    }
    let name = if primary.is_some() {
        "redis-server (replica)"
    } else {
        "redis-server (primary)"
    };
    Live::spawn(name, command, port, dir)
}

fn users(command: &mut Command) {
    let password = format!(">{REDIS_USER_PASSWORD}");
    command
        .args(["--user", REDIS_PROBE_USER, "on", &password])
        .args(["+ping", "+info", "+role", "+quit"]);
    command
        .args(["--user", REDIS_NO_ROLE_USER, "on", &password])
        .args(["+ping", "+info", "+quit"]);
}
