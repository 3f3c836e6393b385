//! PEM text of certificates and keys, parsed without I/O: validation checks inline PEM
//! with it and the engine builds its TLS settings from it.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Parses every certificate of a PEM text.
pub fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no `-----BEGIN CERTIFICATE-----` block".to_owned());
    }
    Ok(certs)
}

/// Parses the private key of a PEM text.
pub fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("holds no usable private key (PKCS#8, PKCS#1 or SEC1): {e}"))
}
