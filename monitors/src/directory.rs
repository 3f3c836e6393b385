//! Monitors of the directory: LDAP over TLS, proven by a bind as the monitor's own DN and
//! a search that must find the entry applications look up.

use monitor_core::prelude::*;

/// The directory binds and finds the people.
///
/// Connects with LDAPS, checks the certificate against the internal CA, binds as
/// `cn=monitor,ou=services,dc=example,dc=org` with the password in `ldap-monitor.pass` of
/// the agent's `--secret-dir`, then searches the base entry `ou=people,dc=example,dc=org`.
/// A wrong or expired password fails as authentication failed (with the server's
/// diagnostic), a missing entry or a refused search as access denied, a busy or
/// unwilling server as service unavailable.
#[tcp_monitor(host = "ldap.internal", port = 636, tls = "direct", ca_file = "internal-ca.pem",
              recipe = ldap(login = login(user = "cn=monitor,ou=services,dc=example,dc=org",
                                          password_file = "ldap-monitor.pass",
                                          query = "ou=people,dc=example,dc=org")),
              tags = ["directory", "prod"], frequency = "1m")]
fn ldap(m: TcpMonitor) -> TcpMonitor {
    m.target_from_env("LDAP_ADDR")
        .assert(entry_count().equals(1))
}
