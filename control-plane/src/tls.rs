//! Serving TLS directly (`serve --tls-cert FILE --tls-key FILE`): the certificate chain and
//! its key are read from PEM files into a rustls configuration that each new connection's
//! handshake uses ([`Tls`] is the server's [`Handshake`]); on SIGHUP both files are read
//! again and the new configuration replaces the old one for new handshakes, while open
//! connections keep theirs. A file that does not load leaves the old configuration in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::server::Handshake;

/// The certificate a configuration serves, as logged when it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The leaf certificate's subject, such as `CN=status.example.com`.
    pub subject: String,
    /// When the leaf certificate expires (RFC 3339).
    pub not_after: String,
    /// Whole days until then (negative once expired).
    pub days_left: i64,
    /// Certificates in the chain file, the leaf first.
    pub chain: usize,
}

/// The TLS side of the server: where the files are, and the configuration in use.
#[derive(Clone)]
pub struct Tls {
    cert: Arc<PathBuf>,
    key: Arc<PathBuf>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate chain and key; the error names the file and what is wrong.
    pub fn load(cert: &Path, key: &Path) -> Result<(Tls, Served), String> {
        let (config, served) = read_config(cert, key)?;
        let tls = Tls {
            cert: Arc::new(cert.to_path_buf()),
            key: Arc::new(key.to_path_buf()),
            current: Arc::new(RwLock::new(config)),
        };
        Ok((tls, served))
    }

    /// Reads both files again and, when they load, uses them for new handshakes; when they
    /// do not, the configuration in use stays and the error names the file.
    pub fn reload(&self) -> Result<Served, String> {
        let (config, served) = read_config(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(served)
    }

    /// The configuration new handshakes use.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reloads on every SIGHUP until the task is aborted, logging the certificate now
    /// served or why the files were not taken (on Unix; elsewhere the task does nothing).
    pub fn reload_on_hangup(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        #[cfg(unix)]
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            #[cfg(unix)]
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(served) => log_served("reloaded the tls certificate", &tls.cert, &served),
                    Err(e) => tracing::error!(
                        error = %e,
                        "reloading the tls certificate failed; the previous one is still served"
                    ),
                }
            }
        }))
    }

    /// The certificate file's path.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl Handshake for Tls {
    type Stream = TlsStream<TcpStream>;

    async fn handshake(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        TlsAcceptor::from(self.current()).accept(stream).await
    }
}

/// Logs the certificate a configuration serves, warning when it expires within 14 days.
pub fn log_served(what: &str, cert: &Path, served: &Served) {
    let file = cert.display().to_string();
    if served.days_left < 14 {
        tracing::warn!(
            file, subject = %served.subject, not_after = %served.not_after,
            days_left = served.days_left, chain = served.chain, "{what}; it expires soon"
        );
    } else {
        tracing::info!(
            file, subject = %served.subject, not_after = %served.not_after,
            days_left = served.days_left, chain = served.chain, "{what}"
        );
    }
}

/// The rustls configuration of a certificate chain file and a key file.
pub fn read_config(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, Served), String> {
    let cert_name = cert.display();
    let key_name = key.display();
    let cert_pem = std::fs::read(cert)
        .map_err(|e| format!("cannot read the certificate file {cert_name}: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file {cert_name} is not valid pem: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "the certificate file {cert_name} holds no `-----BEGIN CERTIFICATE-----` block"
        ));
    };
    let served = served(leaf, chain.len()).map_err(|e| {
        format!("the certificate file {cert_name} holds a certificate that does not parse: {e}")
    })?;
    let key_pem =
        std::fs::read(key).map_err(|e| format!("cannot read the key file {key_name}: {e}"))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!("the key file {key_name} holds no usable private key (pkcs#8, pkcs#1 or sec1): {e}")
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!("the key file {key_name} does not fit the certificate file {cert_name}: {e}")
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), served))
}

fn served(leaf: &CertificateDer<'_>, chain: usize) -> Result<Served, String> {
    let (_, parsed) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| e.to_string())?;
    let not_after = parsed.validity().not_after.to_datetime();
    let days_left = (not_after - OffsetDateTime::now_utc()).whole_days();
    Ok(Served {
        subject: parsed.subject().to_string(),
        not_after: not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        days_left,
        chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("cp-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let missing = Path::new("/nonexistent/cert.pem");
        let key = temp("key.pem", "not a key");
        let err = read_config(missing, &key).unwrap_err();
        assert!(
            err.starts_with("cannot read the certificate file /nonexistent/cert.pem: "),
            "{err}"
        );

        let empty = temp("empty.pem", "hello\n");
        let err = read_config(&empty, &key).unwrap_err();
        assert_eq!(
            err,
            format!(
                "the certificate file {} holds no `-----BEGIN CERTIFICATE-----` block",
                empty.display()
            )
        );

        let garbage = temp(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let err = read_config(&garbage, &key).unwrap_err();
        assert!(
            err.contains(&format!(
                "certificate file {} holds a certificate that does not parse",
                garbage.display()
            )),
            "{err}"
        );
        for path in [key, empty, garbage] {
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn a_chain_and_its_key_load_and_a_foreign_key_does_not() {
        let pki = monitor_testing::TestPki::new().unwrap();
        let leaf = pki.leaf_for(&["status.example.test"], 30).unwrap();
        let other = pki.leaf_for(&["other.example.test"], 30).unwrap();
        let cert = temp("chain.pem", &leaf.cert_pem);
        let key = temp("leaf-key.pem", &leaf.key_pem);
        let foreign = temp("other-key.pem", &other.key_pem);

        let (tls, served) = Tls::load(&cert, &key).unwrap();
        assert_eq!(served.subject, "CN=status.example.test");
        assert_eq!(served.chain, 2);
        assert!((29..=30).contains(&served.days_left), "{served:?}");
        assert_eq!(tls.current().alpn_protocols, [b"http/1.1".to_vec()]);

        let err = read_config(&cert, &foreign).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "the key file {} does not fit the certificate file {}",
                foreign.display(),
                cert.display()
            )),
            "{err}"
        );
        // A failed reload keeps the configuration in use.
        let before = tls.current();
        std::fs::write(&cert, "garbage").unwrap();
        assert!(
            tls.reload()
                .unwrap_err()
                .contains("holds no `-----BEGIN CERTIFICATE-----` block")
        );
        assert!(Arc::ptr_eq(&before, &tls.current()));
        std::fs::write(&cert, &other.cert_pem).unwrap();
        std::fs::copy(&foreign, &key).unwrap();
        assert_eq!(tls.reload().unwrap().subject, "CN=other.example.test");
        assert!(!Arc::ptr_eq(&before, &tls.current()));
        for path in [cert, key, foreign] {
            let _ = std::fs::remove_file(path);
        }
    }
}
