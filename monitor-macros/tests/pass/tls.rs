//! TLS keys: direct TLS with every option, STARTTLS with inline CA certificates, and TLS
//! switched off explicitly.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::validate_all;

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    tls = "direct",
    server_name = "db.example.com",
    ca_file = "/etc/ssl/private-ca.pem",
    client_cert_file = "/etc/ssl/client.pem",
    client_key_file = "/etc/ssl/client.key",
    min_tls = "1.3",
    alpn = ["postgresql"],
    allow_invalid = true,
    expiry_warn_days = 20,
    expiry_fail_days = 5,
    legacy_probe = "degrade",
    ocsp = "require_staple",
    tls_policy = "fail",
)]
fn direct(m: TcpMonitor) -> TcpMonitor {
    m
}

// Validation reads only the PEM framing of inline certificates.
#[tcp_monitor(
    host = "mail.internal",
    port = 25,
    starttls = "smtp",
    ca_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    min_tls = "1.2",
    legacy_probe = "fail"
)]
fn smtp(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "web.internal", port = 80, tls = "none")]
fn plain(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {
    let valid = validate_all().expect("all valid");
    let tls = |id: &str| {
        valid
            .iter()
            .find(|(d, _)| d.monitor.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .0
            .monitor
            .tls
            .clone()
    };
    assert_eq!(
        tls("direct"),
        Tls {
            mode: TlsMode::Direct,
            starttls: None,
            server_name: Some("db.example.com".into()),
            ca: Some(PemSource::Path("/etc/ssl/private-ca.pem".into())),
            client_cert: Some(ClientCert {
                cert: PemSource::Path("/etc/ssl/client.pem".into()),
                key: PemSource::Path("/etc/ssl/client.key".into()),
            }),
            min_version: TlsVersion::Tls13,
            alpn: vec!["postgresql".into()],
            allow_invalid: true,
            expiry_warn_days: 20,
            expiry_fail_days: 5,
            legacy_probe: LegacyProbe::Degrade,
            ocsp: OcspMode::RequireStaple,
            policy: TlsPolicy::Fail,
        }
    );
    let smtp = tls("smtp");
    assert_eq!(
        (smtp.mode, smtp.starttls),
        (TlsMode::Starttls, Some(StartTls::Smtp))
    );
    assert_eq!(
        smtp.ca,
        Some(PemSource::Pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()
        ))
    );
    assert_eq!(smtp.min_version, TlsVersion::Tls12);
    assert_eq!(smtp.legacy_probe, LegacyProbe::Fail);
    assert_eq!((smtp.expiry_warn_days, smtp.expiry_fail_days), (30, 7));
    assert_eq!(tls("plain"), Tls::default());
}
