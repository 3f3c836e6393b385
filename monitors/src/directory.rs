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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use monitor_core::model::secret::SecretPolicy;
    use monitor_core::prelude::*;
    use monitor_testing::{NoWaitClock, TestPki, declared};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The password the directory expects of the monitor's DN.
    const PASSWORD: &str = "s3cret-bind";

    /// A BER element: `tag`, its definite length, `content`.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=127 => out.push(n as u8),
            n => {
                let bytes = (n as u32).to_be_bytes();
                let skip = bytes.iter().take_while(|b| **b == 0).count();
                out.push(0x80 | (4 - skip) as u8);
                out.extend_from_slice(&bytes[skip..]);
            }
        }
        out.extend_from_slice(content);
        out
    }

    /// The element at the start of `data`: its tag, content and what follows.
    fn element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = data.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            let len = rest
                .get(..n)?
                .iter()
                .fold(0usize, |a, b| a << 8 | usize::from(*b));
            (len, &rest[n..])
        };
        Some((tag, rest.get(..len)?, &rest[len..]))
    }

    /// An LDAPMessage answering message `id` with the operation `op`.
    fn message(id: &[u8], op: Vec<u8>) -> Vec<u8> {
        let mut body = tlv(0x02, id);
        body.extend(op);
        tlv(0x30, &body)
    }

    /// An LDAPResult (`resultCode`, empty matchedDN, `diagnostic`) under `tag`.
    fn result(tag: u8, code: u8, diagnostic: &str) -> Vec<u8> {
        let mut body = tlv(0x0a, &[code]);
        body.extend(tlv(0x04, b""));
        body.extend(tlv(0x04, diagnostic.as_bytes()));
        tlv(tag, &body)
    }

    /// A directory holding `entries`: binds check the DN and password, a base search of an
    /// entry it holds returns it, of another DN noSuchObject; what it was asked is logged.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        entries: &[&str],
        asked: &std::sync::Mutex<Vec<String>>,
    ) {
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 4096];
            let n = match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some((0x30, body, rest)) = element(&buf) {
                let consumed = buf.len() - rest.len();
                let Some((0x02, id, op)) = element(body) else {
                    return;
                };
                let id = id.to_vec();
                let answer = match element(op) {
                    Some((0x60, bind, _)) => {
                        let (_, _, after_version) = element(bind).unwrap();
                        let (_, dn, after_dn) = element(after_version).unwrap();
                        let (_, password, _) = element(after_dn).unwrap();
                        let dn = String::from_utf8_lossy(dn).into_owned();
                        asked.lock().unwrap().push(format!("bind {dn}"));
                        let ok = dn == "cn=monitor,ou=services,dc=example,dc=org"
                            && password == PASSWORD.as_bytes();
                        let (code, why) = if ok {
                            (0, "")
                        } else {
                            (49, "80090308: data 52e")
                        };
                        message(&id, result(0x61, code, why))
                    }
                    Some((0x63, search, _)) => {
                        let (_, base, _) = element(search).unwrap();
                        let base = String::from_utf8_lossy(base).into_owned();
                        asked.lock().unwrap().push(format!("search {base}"));
                        let mut out = Vec::new();
                        if entries.contains(&base.as_str()) {
                            let mut entry = tlv(0x04, base.as_bytes());
                            entry.extend(tlv(0x30, b""));
                            out.extend(message(&id, tlv(0x64, &entry)));
                            out.extend(message(&id, result(0x65, 0, "")));
                        } else {
                            out.extend(message(&id, result(0x65, 32, "no such object")));
                        }
                        out
                    }
                    _ => return, // unbind, or anything else: hang up
                };
                if s.write_all(&answer).await.is_err() {
                    return;
                }
                buf.drain(..consumed);
            }
        }
    }

    /// Checks the declared LDAP monitor against a directory over TLS holding `entries`,
    /// with `password` in the agent's secret directory; returns the result and what the
    /// directory was asked.
    async fn check_ldap(
        password: &str,
        entries: &'static [&'static str],
    ) -> (CheckResult, Vec<String>) {
        let pki = TestPki::new().unwrap();
        let leaf = pki.leaf_for(&["ldap.internal"], 200).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(leaf.server_config(true).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, entries, &log).await;
                }
            }
        });
        let dir =
            std::env::temp_dir().join(format!("monitors-ldap-{}-{password}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ldap-monitor.pass"), format!("{password}\n")).unwrap();
        let spec = declared("directory::ldap")
            .pointed_at(addr)
            .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
        let result = Engine::new()
            .with_clock(NoWaitClock)
            .with_secret_policy(SecretPolicy::agent(None, Some(dir.clone())))
            .check(&spec.validate().unwrap())
            .await;
        remove(&dir);
        let asked = asked.lock().unwrap().clone();
        (result, asked)
    }

    fn remove(dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn ldap_binds_as_the_monitor_and_finds_the_people() {
        let (r, asked) = check_ldap(PASSWORD, &["ou=people,dc=example,dc=org"]).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["entry_count"], "1");
        assert_eq!(
            asked,
            [
                "bind cn=monitor,ou=services,dc=example,dc=org",
                "search ou=people,dc=example,dc=org"
            ]
        );
        assert!(!r.to_json().contains(PASSWORD));
    }

    #[tokio::test]
    async fn ldap_failures_say_what_the_directory_refused() {
        let (r, asked) = check_ldap("rotated-yesterday", &["ou=people,dc=example,dc=org"]).await;
        let error = r.error.clone().unwrap();
        assert_eq!(
            error.kind,
            ErrorKind::AuthenticationFailed,
            "{}",
            r.to_json()
        );
        assert!(error.message.contains("data 52e"), "{error:?}");
        // Each attempt (the project retries twice) binds and, refused, searches nothing.
        assert_eq!(r.attempts.len(), 3, "{}", r.to_json());
        assert_eq!(
            asked, ["bind cn=monitor,ou=services,dc=example,dc=org"; 3],
            "no search after a refused bind"
        );
        assert!(!r.to_json().contains("rotated-yesterday"));
        // The people moved: the bind works, the entry is gone.
        let (r, _) = check_ldap(PASSWORD, &[]).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::AccessDenied);
    }
}
