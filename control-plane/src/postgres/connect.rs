//! From a `postgres://` URL to a connection configuration: the libpq URL less the TLS
//! parameters this module handles itself (`sslmode`, `sslrootcert`), and the rustls client
//! configuration each `sslmode` calls for. Nothing here ever shows a password.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// How long opening one connection may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What TLS a connection uses and what it checks (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `disable`: plain TCP only.
    Disable,
    /// `prefer` (the default, as with libpq): TLS when the server offers it, plain
    /// otherwise; the certificate is not checked (encryption against passive eavesdroppers
    /// only).
    Prefer,
    /// `require`: TLS or no connection; the certificate is not checked (like libpq,
    /// `require` with `sslrootcert` checks as `verify-ca`).
    Require,
    /// `verify-ca`: TLS, with a certificate chain to a trusted root; any name.
    VerifyCa,
    /// `verify-full`: TLS, with a certificate chain to a trusted root, valid for the host
    /// connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(text: &str) -> Option<TlsMode> {
        Some(match text {
            "disable" => TlsMode::Disable,
            "prefer" | "allow" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A parsed database URL, ready to connect.
pub(super) struct Target {
    /// The connection configuration (host, port, user, password, database, options).
    pub(super) config: tokio_postgres::Config,
    /// The TLS connector the mode calls for.
    pub(super) tls: MakeRustlsConnect,
    /// The mode.
    pub(super) mode: TlsMode,
}

/// `url` with the password of its user information (and of a `password=` parameter)
/// replaced by `***`: what logs and errors show. It errs on the side of masking: a
/// password with an unescaped `/`, `?` or `@` is masked whole all the same.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user information ends at the last `@`; what follows is host, path and query.
    let (userinfo, tail) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at..]),
        None => (None, rest),
    };
    let mut shown = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => {
                shown.push_str(user);
                shown.push_str(":***");
            }
            None => shown.push_str(userinfo),
        }
    }
    match tail.split_once('?') {
        Some((before, query)) => {
            shown.push_str(before);
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => p.to_owned(),
                })
                .collect();
            shown.push('?');
            shown.push_str(&params.join("&"));
        }
        None => shown.push_str(tail),
    }
    shown
}

fn invalid(url: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidUrl(format!("{}: {why}", redact(url)))
}

/// Parses a `postgres://` or `postgresql://` URL (libpq's form, with `sslmode` and
/// `sslrootcert` in its query), using `password` when given over the URL's.
pub(super) fn parse(url: &str, password: Option<&str>) -> Result<Target, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| invalid(url, format!("`{key}` is not UTF-8")))?;
        match key {
            "sslmode" => {
                mode = Some(TlsMode::parse(&decoded).ok_or_else(|| {
                    invalid(
                        url,
                        format!(
                            "unknown sslmode `{}`; use disable, prefer, require, verify-ca or verify-full",
                            decoded.escape_default()
                        ),
                    )
                })?);
            }
            "sslrootcert" => root = Some(decoded.into_owned()),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(|e| {
        let why = std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
        invalid(url, format!("{e}{why}"))
    })?;
    if let Some(password) = password {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("control-plane");
    }
    let mut mode = mode.unwrap_or(TlsMode::Prefer);
    if mode == TlsMode::Require && root.is_some() {
        mode = TlsMode::VerifyCa;
    }
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    let tls = MakeRustlsConnect::new(client_config(url, mode, root.as_deref())?);
    Ok(Target { config, tls, mode })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration of a mode: which certificates it accepts.
fn client_config(url: &str, mode: TlsMode, root: Option<&str>) -> Result<ClientConfig, StoreError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(url, format!("tls: {e}")))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = Arc::new(roots(url, root)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| invalid(url, format!("tls roots: {e}")))?;
            if mode == TlsMode::VerifyCa {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName(webpki)))
                    .with_no_client_auth()
            } else {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            }
        }
    };
    Ok(config)
}

/// The roots of `sslrootcert` (a PEM file), or the system's when it is absent or `system`.
fn roots(url: &str, file: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(Path::new(path))
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(url, format!("sslrootcert {path}: {e}")))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(invalid(
                    url,
                    format!("sslrootcert {path} holds no usable certificate"),
                ));
            }
        }
        _ => {
            let native = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(native.certs);
            if store.is_empty() {
                return Err(invalid(
                    url,
                    "no system root certificate found; give sslrootcert=FILE",
                ));
            }
        }
    }
    Ok(store)
}

/// Accepts any certificate (modes that do not check it), still checking the handshake's
/// signatures with the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must reach a trusted root; the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(redact("postgres://u:p@ss:w@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?password=x&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://u:a/b?c@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let t = parse(
            "postgres://u:pw@h:1/db?sslmode=verify-full&sslrootcert=system",
            None,
        );
        // Without system roots on the machine this fails with a clear message instead.
        match t {
            Ok(t) => {
                assert_eq!(t.mode, TlsMode::VerifyFull);
                assert_eq!(t.config.get_dbname(), Some("db"));
                assert_eq!(t.config.get_ports(), &[1]);
            }
            Err(e) => assert!(e.to_string().contains("no system root"), "{e}"),
        }
        let t = parse(
            "postgres://u@h/db?sslmode=disable&application_name=x",
            Some("pw"),
        )
        .unwrap();
        assert_eq!(t.mode, TlsMode::Disable);
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(
            parse("postgres://h/db", None).unwrap().mode,
            TlsMode::Prefer
        );
    }

    #[test]
    fn bad_urls_are_refused_without_the_password() {
        for (url, want) in [
            (
                "postgres://u:hunter2@h/db?sslmode=sometimes",
                "unknown sslmode `sometimes`",
            ),
            ("postgres://u:hunter2@h:notaport/db", "invalid"),
            (
                "postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=/nonexistent",
                "sslrootcert /nonexistent",
            ),
        ] {
            let e = parse(url, None).err().unwrap().to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
