//! Judging the certificate chain a server presented: each certificate's facts (names,
//! validity, key, signature) and the problems the monitor's policy sees in them.

use std::net::IpAddr;

use rustls::CertificateError;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

use super::tls::{Negotiated, Problem, Setup, s_client, words};
use monitor_spec::result::{CertInfo, ErrorKind, TlsReport};
use monitor_spec::spec::TcpMonitor;

/// Judges the presented chain: every certificate's facts, and every problem (trust,
/// name, validity, expiry policy), most serious first.
pub(crate) fn judge_chain(
    spec: &TcpMonitor,
    setup: &Setup,
    chain: &[CertificateDer<'static>],
    negotiated: &Negotiated,
    now: OffsetDateTime,
) -> (TlsReport, Vec<Problem>) {
    let target = spec.target.to_string();
    let look = s_client(spec, &setup.name);
    let mut parsed = chain.iter().map(|c| cert_info(c, now));
    let leaf_info = parsed.next().flatten();
    // Unknown for a leaf x509-parser refused: `is_pinned` then looks for itself.
    let leaf_self_issued = leaf_info.as_ref().is_none_or(|c| c.self_issued);
    let infos: Vec<CertInfo> = leaf_info.into_iter().chain(parsed.flatten()).collect();
    let mut problems: Vec<Problem> = Vec::new();
    let push = |problems: &mut Vec<Problem>, kind, message: String, mut hints: Vec<String>| {
        hints.push(look.clone());
        problems.push(Problem::new(kind, message, hints));
    };
    let describe = |i: usize, c: &CertInfo| {
        let role = if i == 0 {
            "the server certificate".to_owned()
        } else {
            format!("certificate #{i} of the chain")
        };
        format!("{role} `{}`", c.subject)
    };
    // Validity of every presented certificate.
    for (i, c) in infos.iter().enumerate() {
        if c.not_after < now {
            push(
                &mut problems,
                ErrorKind::CertificateExpired,
                format!(
                    "{} presented by {target} expired on {} ({})",
                    describe(i, c),
                    rfc3339(c.not_after),
                    monitor_spec::result::expired_ago(c.days_left)
                ),
                vec![
                    "renew the certificate and reload the service".to_owned(),
                    "if a renewed certificate exists, the service may still serve the old file: restart it".to_owned(),
                ],
            );
        } else if c.not_before > now {
            push(
                &mut problems,
                ErrorKind::CertificateNotYetValid,
                format!(
                    "{} presented by {target} is not valid before {}",
                    describe(i, c),
                    rfc3339(c.not_before)
                ),
                vec![
                    "the certificate was issued with a start date in the future".to_owned(),
                    "check the clocks of this machine and of the issuing CA (timedatectl)"
                        .to_owned(),
                ],
            );
        }
    }
    // The name.
    if let Some(leaf) = chain.first() {
        let name_ok = rustls::server::ParsedCertificate::try_from(leaf)
            .and_then(|parsed| rustls::client::verify_server_name(&parsed, &setup.server_name));
        if name_ok.is_err() {
            let names = infos.first().map(|c| c.sans.join(", ")).unwrap_or_default();
            push(
                &mut problems,
                ErrorKind::HostnameMismatch,
                format!(
                    "the certificate of {target} is not valid for `{}`: it names {}",
                    setup.name,
                    if names.is_empty() { "no subject alternative names".to_owned() } else { names }
                ),
                vec![
                    "the service may serve the certificate of another site: check its TLS configuration".to_owned(),
                    "if the monitor connects by another name or address, set tls.server_name to the certificate's name".to_owned(),
                ],
            );
        }
    }
    // Trust: a leaf pinned in tls.ca is trusted as it is (its dates and name were judged
    // above); any other chain must lead to a trust anchor.
    let pinned = chain
        .first()
        .is_some_and(|leaf| setup.is_pinned(leaf, leaf_self_issued));
    let trust = match (chain.split_first(), &setup.verifier) {
        _ if pinned => Ok(()),
        (None, _) => Err(rustls::Error::NoCertificatesPresented),
        (Some(_), None) => Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )),
        (Some((leaf, rest)), Some(verifier)) => {
            // Every certificate parsed, and each within its dates now.
            let in_dates = infos.len() == chain.len()
                && infos
                    .iter()
                    .all(|c| c.not_before <= now && now <= c.not_after);
            setup.accepted.verify(chain, in_dates, || {
                verifier
                    .verify_server_cert(
                        leaf,
                        rest,
                        &setup.server_name,
                        &[],
                        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                            u64::try_from(now.unix_timestamp()).unwrap_or_default(),
                        )),
                    )
                    .map(|_| ())
            })
        }
    };
    let verified = trust.is_ok() && (!pinned || problems.is_empty());
    if let Err(e) = trust {
        let kinds: Vec<ErrorKind> = problems.iter().map(|p| p.kind).collect();
        let already = |k| kinds.contains(&k);
        match e {
            rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
                | CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. },
            ) if already(ErrorKind::CertificateExpired)
                || already(ErrorKind::CertificateNotYetValid)
                || already(ErrorKind::HostnameMismatch) => {}
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                trust_problem(&infos, setup, &target, &mut |k, m, h| {
                    push(&mut problems, k, m, h)
                });
            }
            // A self-signed CA:TRUE certificate (what `openssl req -x509` makes) that is
            // not pinned: webpki objects to its CA rights before looking for an issuer, but
            // what is wrong is that nobody vouches for it.
            ref e
                if words::is_ca_used_as_leaf(e) && infos.first().is_some_and(|c| c.self_issued) =>
            {
                trust_problem(
                    infos.get(..1).unwrap_or_default(),
                    setup,
                    &target,
                    &mut |k, m, h| push(&mut problems, k, m, h),
                );
            }
            other => {
                let (kind, why) = words::error(&other);
                push(
                    &mut problems,
                    kind,
                    format!("the certificate chain of {target} is not valid: {why}"),
                    vec![
                        "check the certificate's key usage, signature and revocation status"
                            .to_owned(),
                    ],
                );
            }
        }
    }
    // Expiry policy on the earliest expiry of the whole chain.
    let earliest = monitor_spec::result::earliest_expiring(&infos);
    if let Some(c) = earliest {
        let tls = &spec.tls;
        let days = c.days_left;
        if days >= 0 && days < i64::from(tls.expiry_warn_days) {
            let fail = days < i64::from(tls.expiry_fail_days);
            push(
                &mut problems,
                ErrorKind::CertificateExpiring,
                format!(
                    "`{}` presented by {target} expires in {days} days, on {} ({} window: fewer than {} days)",
                    c.subject,
                    rfc3339(c.not_after),
                    if fail { "fail" } else { "warn" },
                    if fail {
                        tls.expiry_fail_days
                    } else {
                        tls.expiry_warn_days
                    },
                ),
                vec![
                    "renew the certificate before it expires and reload the service".to_owned(),
                    "if renewal is automated (certbot, cert-manager), check why it did not run"
                        .to_owned(),
                ],
            );
        }
    }
    problems.sort_by_key(|p| severity(p.kind));
    let report = TlsReport {
        version: negotiated.version.clone(),
        cipher: negotiated.cipher.clone(),
        alpn: negotiated.alpn.clone(),
        server_name: setup.name.clone(),
        verified,
        problems: problems.iter().map(|p| p.kind).collect(),
        earliest_expiry: earliest.map(|c| c.not_after),
        days_left: earliest.map(|c| c.days_left),
        earliest_expiry_subject: earliest.map(|c| c.subject.clone()),
        chain: infos,
        legacy: None,
        ocsp: None,
        policy: None,
    };
    (report, problems)
}

/// Why an unknown issuer is unknown: a self-signed certificate, a missing intermediate,
/// or a root that is not trusted.
fn trust_problem(
    infos: &[CertInfo],
    setup: &Setup,
    target: &str,
    push: &mut impl FnMut(ErrorKind, String, Vec<String>),
) {
    let Some(top) = infos.last() else {
        return;
    };
    let store = if setup.anchors == 0 {
        " (the trust store is empty: install ca-certificates or set SSL_CERT_FILE, or give tls.ca)"
    } else {
        ""
    };
    if infos.len() == 1 && top.self_issued {
        push(
            ErrorKind::SelfSigned,
            format!("{target} presented a self-signed certificate `{}` that is not trusted{store}", top.subject),
            vec![
                "if the certificate is expected, trust it with tls.ca (its PEM) or set tls.allow_invalid".to_owned(),
                "otherwise install a certificate issued by a trusted CA".to_owned(),
            ],
        );
    } else if infos.len() == 1 {
        push(
            ErrorKind::IncompleteChain,
            format!(
                "{target} sent only its own certificate, issued by `{}`, which is neither sent nor trusted: the intermediate certificate is probably missing{store}",
                top.issuer
            ),
            vec![
                "configure the service with the full chain (leaf followed by intermediates, for example fullchain.pem)".to_owned(),
                "or trust the issuing CA with tls.ca if it is a private CA".to_owned(),
            ],
        );
    } else if top.self_issued {
        push(
            ErrorKind::UnknownIssuer,
            format!(
                "the chain of {target} ends at the root `{}`, which is not trusted{store}",
                top.subject
            ),
            vec![
                "trust that root with tls.ca if it is your private CA".to_owned(),
                "otherwise the service uses a certificate from an untrusted CA".to_owned(),
            ],
        );
    } else {
        push(
            ErrorKind::UnknownIssuer,
            format!(
                "the chain of {target} ends at `{}`, issued by `{}`, which is not trusted{store}",
                top.subject, top.issuer
            ),
            vec![
                "trust the issuing root with tls.ca if it is your private CA".to_owned(),
                "or an intermediate certificate may be missing from the service's chain".to_owned(),
            ],
        );
    }
}

/// Lower is more serious.
pub(crate) fn severity(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::CertificateExpired | ErrorKind::CertificateRevoked => 0,
        ErrorKind::CertificateNotYetValid => 1,
        ErrorKind::HostnameMismatch => 2,
        ErrorKind::SelfSigned => 3,
        ErrorKind::IncompleteChain => 4,
        ErrorKind::UnknownIssuer => 5,
        ErrorKind::InvalidCertificate => 6,
        ErrorKind::CertificateExpiring => 7,
        _ => 8,
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The facts of one certificate; `None` when it does not parse as X.509.
pub(crate) fn cert_info(der: &CertificateDer<'_>, now: OffsetDateTime) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let validity = cert.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    let days_left = monitor_spec::result::days_until(not_after, now);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(n) => sans.push((*n).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        sans.push(IpAddr::from(octets).to_string());
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        sans.push(IpAddr::from(octets).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let (key_type, key_bits) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA", Some(rsa.key_size() as u32)),
        Ok(PublicKey::EC(ec)) => ("EC", Some(ec.key_size() as u32)),
        Ok(PublicKey::DSA(_)) => ("DSA", None),
        Ok(PublicKey::GostR3410(_) | PublicKey::GostR3410_2012(_)) => ("GOST", None),
        _ => {
            let oid = cert.public_key().algorithm.algorithm.to_id_string();
            match oid.as_str() {
                "1.3.101.112" => ("Ed25519", Some(256)),
                "1.3.101.113" => ("Ed448", Some(456)),
                _ => ("unknown", None),
            }
        }
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    let sha256 = hex_colons(digest.as_ref(), b"0123456789ABCDEF");
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    Some(CertInfo {
        subject_rfc2253: go_name(cert.subject()),
        issuer_rfc2253: go_name(cert.issuer()),
        self_issued: subject == issuer,
        subject,
        issuer,
        sans,
        // As x509-parser's `raw_serial_as_string` writes it.
        serial: hex_colons(cert.raw_serial(), b"0123456789abcdef"),
        not_before,
        not_after,
        days_left,
        sha256,
        key_type: key_type.to_owned(),
        key_bits,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
    })
}

/// `bytes` in hex with `digits`, two a byte, separated by colons (`AB:CD`), without the
/// formatting machinery (a fingerprint took more than its hash).
fn hex_colons(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        text.push(char::from(digits[usize::from(b >> 4)]));
        text.push(char::from(digits[usize::from(b & 0xf)]));
    }
    text
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        other => other,
    }
    .to_owned()
}

/// The attributes Go's `pkix.Name` parses into named fields, in the order
/// `Name.ToRDNSequence` writes them, with their short names.
const GO_NAMED: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// The last arc of each of [`GO_NAMED`]'s OIDs, all under 2.5.4.
const GO_NAMED_ARCS: [u8; 9] = [6, 8, 7, 9, 17, 10, 11, 3, 5];

/// A distinguished name as Go's `pkix.Name.String()` writes it, which blackbox_exporter
/// puts in its labels: the named attributes in Go's fixed order (several values of one
/// attribute joined by `+`; the last common name and serial number only), the others
/// as `OID=#DER` in hex, then the whole sequence reversed and joined by `,`.
pub(crate) fn go_name(name: &X509Name<'_>) -> String {
    let mut named: [Vec<String>; 9] = Default::default();
    // Other attributes come first in Go's sequence, so last in the string.
    let mut rdns: Vec<Vec<String>> = Vec::new();
    for atv in name.iter().flat_map(|rdn| rdn.iter()) {
        // Every named attribute is 2.5.4.x (DER 55 04 x): no OID text for them.
        let named_at = match atv.attr_type().as_bytes() {
            [0x55, 0x04, arc] => GO_NAMED_ARCS.iter().position(|a| a == arc),
            _ => None,
        };
        match named_at {
            Some(i) => {
                // Go leaves non-string values of named attributes out.
                if let Ok(value) = atv.as_str() {
                    if i >= 7 {
                        named[i] = vec![value.to_owned()];
                    } else {
                        named[i].push(value.to_owned());
                    }
                }
            }
            None => {
                let oid = atv.attr_type().to_id_string();
                let any = atv.attr_value();
                let der = match atv.as_str() {
                    Ok(text) => go_string_der(text),
                    Err(_) => der_of(any.tag().0, any.data),
                };
                rdns.push(vec![format!("{oid}=#{}", crate::escape::to_hex(&der))]);
            }
        }
    }
    for ((_, short), values) in GO_NAMED.iter().zip(&named) {
        if !values.is_empty() {
            rdns.push(
                values
                    .iter()
                    .map(|v| format!("{short}={}", go_escape(v)))
                    .collect(),
            );
        }
    }
    rdns.iter()
        .rev()
        .map(|rdn| rdn.join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A value escaped as Go's `RDNSequence.String()` does: `,+"\<>;` always, a space at
/// either end, a `#` at the start.
fn go_escape(value: &str) -> String {
    let last = value.len().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (k, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A string as Go's `asn1.Marshal` encodes it: a PrintableString when every character
/// is allowed there, else a UTF8String.
fn go_string_der(text: &str) -> Vec<u8> {
    let printable = text.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/'
            )
            || matches!(b, b':' | b'=' | b'?')
    });
    der_of(if printable { 19 } else { 12 }, text.as_bytes())
}

/// A primitive universal DER element of `tag` holding `data`.
fn der_of(tag: u32, data: &[u8]) -> Vec<u8> {
    super::tls::ocsp::tlv(u8::try_from(tag).unwrap_or(4), data)
}

#[cfg(test)]
mod tests {
    use super::hex_colons;

    #[test]
    fn the_named_arcs_are_those_of_the_named_oids() {
        for ((oid, _), arc) in super::GO_NAMED.iter().zip(super::GO_NAMED_ARCS) {
            assert_eq!(*oid, format!("2.5.4.{arc}"));
        }
    }

    #[test]
    fn fingerprints_and_serials_are_written_as_before() {
        for bytes in [&[][..], &[0x00], &[0x00, 0x0a, 0xff, 0x7b, 0x10]] {
            let upper: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
            assert_eq!(hex_colons(bytes, b"0123456789ABCDEF"), upper.join(":"));
            let lower: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex_colons(bytes, b"0123456789abcdef"), lower.join(":"));
        }
    }
}
