//! Plain words for what rustls and webpki report: every TLS and certificate error becomes
//! an error kind and a lower-case sentence an on-call engineer understands, never debug text.

use rustls::{AlertDescription, CertificateError, Error, OtherError, PeerIncompatible};

use monitor_spec::result::ErrorKind;

/// The kind and the sentence for a rustls error.
pub(crate) fn error(e: &Error) -> (ErrorKind, String) {
    use ErrorKind as K;
    let hs = |s: String| (K::HandshakeFailure, s);
    match e {
        Error::InappropriateMessage { got_type, .. } => hs(format!(
            "the server sent a TLS {} message where the protocol expects another",
            words(&format!("{got_type:?}"))
        )),
        Error::InappropriateHandshakeMessage { got_type, .. } => hs(format!(
            "the server sent a {} handshake message where the protocol expects another",
            words(&format!("{got_type:?}"))
        )),
        Error::InvalidEncryptedClientHello(why) => hs(format!(
            "encrypted client hello failed: {}",
            words(&format!("{why:?}"))
        )),
        Error::InvalidMessage(why) => hs(format!(
            "the server sent a malformed TLS message ({})",
            words(&format!("{why:?}"))
        )),
        Error::NoCertificatesPresented => (
            K::InvalidCertificate,
            "the server presented no certificate".to_owned(),
        ),
        Error::UnsupportedNameType => (
            K::TlsConfig,
            "the server name is of a type TLS cannot verify".to_owned(),
        ),
        Error::DecryptError => hs(
            "a message from the server could not be decrypted (corrupted on the way, or a faulty TLS implementation)"
                .to_owned(),
        ),
        Error::EncryptError => hs("a message to the server could not be encrypted".to_owned()),
        Error::PeerIncompatible(why) => (K::NoCommonProtocol, incompatible(why)),
        Error::PeerMisbehaved(why) => hs(format!(
            "the server broke the TLS protocol: {}",
            words(&format!("{why:?}"))
        )),
        Error::AlertReceived(alert) => {
            let kind = match alert {
                AlertDescription::ProtocolVersion => K::NoCommonProtocol,
                _ => K::HandshakeFailure,
            };
            (kind, format!("the server sent alert {}", alert_text(*alert)))
        }
        Error::InvalidCertificate(why) => certificate(why),
        Error::InvalidCertRevocationList(why) => (
            K::InvalidCertificate,
            format!(
                "the certificate revocation list is not valid: {}",
                words(&format!("{why:?}"))
            ),
        ),
        Error::General(text) => hs(format!("an unexpected TLS error: {text}")),
        Error::FailedToGetCurrentTime => (
            K::Io,
            "the monitor could not read the system clock".to_owned(),
        ),
        Error::FailedToGetRandomBytes => (
            K::Io,
            "the monitor could not get random bytes from the system".to_owned(),
        ),
        Error::HandshakeNotComplete => hs("the TLS handshake did not complete".to_owned()),
        Error::PeerSentOversizedRecord => {
            hs("the server sent a TLS record larger than the protocol allows".to_owned())
        }
        Error::NoApplicationProtocol => hs(
            "the server supports none of the application protocols (ALPN) the monitor offers: check tls.alpn"
                .to_owned(),
        ),
        Error::BadMaxFragmentSize => (
            K::TlsConfig,
            "the maximum TLS fragment size is too small or too large".to_owned(),
        ),
        Error::InconsistentKeys(_) => (
            K::TlsConfig,
            "the client certificate does not match its private key".to_owned(),
        ),
        Error::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(w) => (K::InvalidCertificate, webpki_error(w)),
            None => hs(format!(
                "the TLS handshake failed ({})",
                words(&other.0.to_string())
            )),
        },
        other => hs(format!("the TLS handshake failed ({})", words(&other.to_string()))),
    }
}

/// The kind and the sentence for a certificate rejected by verification.
pub(crate) fn certificate(e: &CertificateError) -> (ErrorKind, String) {
    use CertificateError as C;
    use ErrorKind as K;
    let invalid = |s: &str| (K::InvalidCertificate, s.to_owned());
    match e {
        C::BadEncoding => invalid("a certificate is not valid DER and cannot be parsed"),
        C::Expired => (
            K::CertificateExpired,
            "the certificate has expired".to_owned(),
        ),
        C::ExpiredContext { not_after, .. } => (
            K::CertificateExpired,
            format!("the certificate expired on {}", unix(not_after)),
        ),
        C::NotValidYet => (
            K::CertificateNotYetValid,
            "the certificate is not valid yet".to_owned(),
        ),
        C::NotValidYetContext { not_before, .. } => (
            K::CertificateNotYetValid,
            format!("the certificate is not valid before {}", unix(not_before)),
        ),
        C::Revoked => invalid("the certificate has been revoked by its CA"),
        C::UnhandledCriticalExtension => {
            invalid("a certificate has a critical extension the monitor does not understand")
        }
        C::UnknownIssuer => (
            K::UnknownIssuer,
            "the certificate was issued by a CA the monitor does not trust".to_owned(),
        ),
        C::UnknownRevocationStatus => {
            invalid("the revocation status of the certificate is unknown")
        }
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
            invalid("the certificate revocation list has expired")
        }
        C::BadSignature => {
            invalid("a certificate's signature does not verify with its issuer's public key")
        }
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            invalid("a certificate is signed with an algorithm the monitor does not support")
        }
        C::NotValidForName => (
            K::HostnameMismatch,
            "the certificate is not valid for the name the monitor verifies".to_owned(),
        ),
        C::NotValidForNameContext { presented, .. } => (
            K::HostnameMismatch,
            format!(
                "the certificate is not valid for the name the monitor verifies: it names {}",
                if presented.is_empty() {
                    "no names".to_owned()
                } else {
                    presented.join(", ")
                }
            ),
        ),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => invalid(
            "the certificate is not issued for TLS servers (its extended key usage lacks server authentication)",
        ),
        C::InvalidOcspResponse => invalid("the stapled OCSP response is not valid"),
        C::ApplicationVerificationFailure => invalid("the certificate failed a custom check"),
        C::Other(other) => other_error(other),
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm => {
            invalid("a certificate is signed with an algorithm the monitor does not support")
        }
        other => (
            K::InvalidCertificate,
            format!(
                "the certificate is not valid ({})",
                words(&other.to_string())
            ),
        ),
    }
}

/// Whether webpki refused a leaf because it is a CA certificate (CA:TRUE).
pub(crate) fn is_ca_used_as_leaf(e: &Error) -> bool {
    let Error::InvalidCertificate(CertificateError::Other(other)) = e else {
        return false;
    };
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// An error rustls passes through from webpki or elsewhere.
fn other_error(e: &OtherError) -> (ErrorKind, String) {
    match e.0.downcast_ref::<webpki::Error>() {
        Some(w) => (ErrorKind::InvalidCertificate, webpki_error(w)),
        None => (
            ErrorKind::InvalidCertificate,
            format!("the certificate is not valid ({})", words(&e.0.to_string())),
        ),
    }
}

/// A webpki verification error that rustls does not translate itself.
pub(crate) fn webpki_error(e: &webpki::Error) -> String {
    use webpki::Error as W;
    let s = match e {
        W::CaUsedAsEndEntity => {
            "the server presented a CA certificate (basic constraints CA:TRUE) as its own certificate: pin exactly that certificate in tls.ca, or serve a certificate made for a server"
        }
        W::CertDistrusted => "the certificate is distrusted",
        W::EndEntityUsedAsCa => {
            "a certificate that is not a CA (CA:FALSE) issued another certificate of the chain"
        }
        W::BadDer | W::BadDerTime | W::TrailingData(_) => {
            "a certificate is not valid DER and cannot be parsed"
        }
        W::ExtensionValueInvalid | W::MalformedExtensions => {
            "a certificate has a malformed extension"
        }
        W::InvalidNetworkMaskConstraint | W::MalformedNameConstraint => {
            "a CA certificate has a malformed name constraint"
        }
        W::InvalidSerialNumber => "a certificate has an invalid serial number",
        W::InvalidCertValidity => "a certificate's validity period is malformed",
        W::MalformedDnsIdentifier => "the certificate names a malformed DNS name",
        W::MaximumNameConstraintComparisonsExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumPathDepthExceeded
        | W::MaximumSignatureChecksExceeded => {
            "the chain is too long or too tangled to verify (a path building limit was reached)"
        }
        W::NameConstraintViolation => {
            "the certificate names a host its CA may not issue for (name constraints)"
        }
        W::PathLenConstraintViolated => {
            "the chain is longer than a CA's path length constraint allows"
        }
        W::EmptyEkuExtension => "the certificate's extended key usage extension is empty",
        #[allow(deprecated)]
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
            "the certificate is not issued for TLS servers (its extended key usage lacks server authentication)"
        }
        W::SignatureAlgorithmMismatch => {
            "a certificate's signature algorithm differs from the one its body declares"
        }
        W::UnsupportedCertVersion => "a certificate is not X.509 version 3",
        W::UnsupportedCriticalExtension => {
            "a certificate has a critical extension the monitor does not understand"
        }
        W::UnsupportedNameType => "the certificate names a host in a form that is not supported",
        W::CertExpired { .. } => "the certificate has expired",
        W::CertNotValidYet { .. } => "the certificate is not valid yet",
        W::CertNotValidForName(_) => {
            "the certificate is not valid for the name the monitor verifies"
        }
        W::CertRevoked => "the certificate has been revoked by its CA",
        W::UnknownIssuer => "the certificate was issued by a CA the monitor does not trust",
        W::InvalidSignatureForPublicKey => {
            "a certificate's signature does not verify with its issuer's public key"
        }
        W::UnknownRevocationStatus => "the revocation status of the certificate is unknown",
        W::InvalidCrlNumber
        | W::InvalidCrlSignatureForPublicKey
        | W::IssuerNotCrlSigner
        | W::UnsupportedCrlIssuingDistributionPoint
        | W::UnsupportedCrlVersion
        | W::UnsupportedDeltaCrl
        | W::UnsupportedIndirectCrl
        | W::UnsupportedRevocationReason
        | W::UnsupportedRevocationReasonsPartitioning => {
            return format!(
                "a certificate revocation list cannot be used ({})",
                words(&e.to_string())
            );
        }
        other => {
            return format!(
                "the certificate is not valid ({})",
                words(&other.to_string())
            );
        }
    };
    s.to_owned()
}

/// Why the server and the monitor could not agree.
fn incompatible(why: &PeerIncompatible) -> String {
    use PeerIncompatible as P;
    let s = match why {
        P::NoCipherSuitesInCommon => "the server shares no cipher suite with the monitor",
        P::NoKxGroupsInCommon => "the server shares no key exchange group with the monitor",
        P::NoSignatureSchemesInCommon => {
            "the server shares no signature algorithm with the monitor"
        }
        P::NoEcPointFormatsInCommon | P::UncompressedEcPointsRequired => {
            "the server does not accept uncompressed elliptic curve points"
        }
        P::ServerDoesNotSupportTls12Or13 => "the server supports neither TLS 1.2 nor TLS 1.3",
        P::ServerTlsVersionIsDisabledByOurConfig => {
            "the server chose a TLS version that tls.min_version does not allow"
        }
        P::Tls12NotOffered | P::Tls12NotOfferedOrEnabled => {
            "the server needs TLS 1.2, which the monitor does not offer"
        }
        P::ExtendedMasterSecretExtensionRequired => {
            "the server does not support the extended master secret extension (RFC 7627), which TLS 1.2 requires here"
        }
        P::NullCompressionRequired => "the server insists on TLS compression",
        other => {
            return format!(
                "the server is incompatible with the monitor ({})",
                words(&format!("{other:?}"))
            );
        }
    };
    s.to_owned()
}

/// An alert as the RFCs name it, with its code: `handshake_failure (40)`.
pub(crate) fn alert_text(alert: AlertDescription) -> String {
    let code = u8::from(alert);
    match super::super::legacy::alert_name(code) {
        Some(name) => format!("{name} ({code})"),
        None => format!("number {code}"),
    }
}

fn unix(t: &rustls::pki_types::UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(
            || format!("{} seconds after 1970", t.as_secs()),
            |t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            },
        )
}

/// The name of an identifier as words: `CaUsedAsEndEntity` → `ca used as end entity`.
/// Anything after the name (a payload in brackets) is left out.
pub(crate) fn words(text: &str) -> String {
    let name: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ' ' || *c == ':')
        .collect();
    let mut out = String::with_capacity(name.len() + 8);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !out.ends_with(' ') {
            out.push(' ');
        }
        if c == '_' {
            out.push(' ');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{
        CertRevocationListError, ContentType, EncryptedClientHelloError, ExtendedKeyPurpose,
        HandshakeType, InconsistentKeys, InvalidMessage, PeerMisbehaved,
    };

    use super::*;

    fn other(e: impl std::error::Error + Send + Sync + 'static) -> OtherError {
        OtherError(Arc::new(e))
    }

    /// Every webpki error rustls passes through as `Other`, and some it translates.
    fn webpki_errors() -> Vec<webpki::Error> {
        use webpki::Error as W;
        vec![
            W::BadDer,
            W::BadDerTime,
            W::CaUsedAsEndEntity,
            W::CertDistrusted,
            W::CertRevoked,
            W::EmptyEkuExtension,
            W::EndEntityUsedAsCa,
            W::ExtensionValueInvalid,
            W::InvalidCertValidity,
            W::InvalidCrlNumber,
            W::InvalidNetworkMaskConstraint,
            W::InvalidSerialNumber,
            W::InvalidCrlSignatureForPublicKey,
            W::InvalidSignatureForPublicKey,
            W::IssuerNotCrlSigner,
            W::MalformedDnsIdentifier,
            W::MalformedExtensions,
            W::MalformedNameConstraint,
            W::MaximumNameConstraintComparisonsExceeded,
            W::MaximumPathBuildCallsExceeded,
            W::MaximumPathDepthExceeded,
            W::MaximumSignatureChecksExceeded,
            W::NameConstraintViolation,
            W::PathLenConstraintViolated,
            W::SignatureAlgorithmMismatch,
            W::UnknownIssuer,
            W::UnknownRevocationStatus,
            W::UnsupportedCertVersion,
            W::UnsupportedCriticalExtension,
            W::UnsupportedCrlIssuingDistributionPoint,
            W::UnsupportedCrlVersion,
            W::UnsupportedDeltaCrl,
            W::UnsupportedIndirectCrl,
            W::UnsupportedNameType,
            W::UnsupportedRevocationReason,
            W::UnsupportedRevocationReasonsPartitioning,
        ]
    }

    #[allow(deprecated)]
    fn certificate_errors() -> Vec<CertificateError> {
        use CertificateError as C;
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000));
        let mut all = vec![
            C::BadEncoding,
            C::Expired,
            C::ExpiredContext {
                time: t,
                not_after: t,
            },
            C::NotValidYet,
            C::NotValidYetContext {
                time: t,
                not_before: t,
            },
            C::Revoked,
            C::UnhandledCriticalExtension,
            C::UnknownIssuer,
            C::UnknownRevocationStatus,
            C::ExpiredRevocationList,
            C::ExpiredRevocationListContext {
                time: t,
                next_update: t,
            },
            C::BadSignature,
            C::UnsupportedSignatureAlgorithm,
            C::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: vec![1, 2],
                supported_algorithms: vec![],
            },
            C::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: vec![1],
                public_key_algorithm_id: vec![2],
            },
            C::NotValidForName,
            C::NotValidForNameContext {
                expected: ServerName::try_from("monitor.test").unwrap(),
                presented: vec!["other.test".to_owned()],
            },
            C::InvalidPurpose,
            C::InvalidPurposeContext {
                required: ExtendedKeyPurpose::ServerAuth,
                presented: vec![ExtendedKeyPurpose::ClientAuth],
            },
            C::InvalidOcspResponse,
            C::ApplicationVerificationFailure,
            C::Other(other(std::io::Error::other("SomethingOdd"))),
        ];
        all.extend(webpki_errors().into_iter().map(|w| C::Other(other(w))));
        all
    }

    fn errors() -> Vec<Error> {
        use PeerIncompatible as P;
        let mut all = vec![
            Error::InappropriateMessage {
                expect_types: vec![ContentType::Handshake],
                got_type: ContentType::ApplicationData,
            },
            Error::InappropriateHandshakeMessage {
                expect_types: vec![HandshakeType::ServerHello],
                got_type: HandshakeType::HelloRetryRequest,
            },
            Error::InvalidEncryptedClientHello(EncryptedClientHelloError::InvalidConfigList),
            Error::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge),
            Error::InvalidMessage(InvalidMessage::MissingData("ServerName")),
            Error::NoCertificatesPresented,
            Error::UnsupportedNameType,
            Error::DecryptError,
            Error::EncryptError,
            Error::PeerMisbehaved(PeerMisbehaved::AttemptedDowngradeToTls12WhenTls13IsSupported),
            Error::PeerMisbehaved(PeerMisbehaved::BadCertChainExtensions),
            Error::InvalidCertRevocationList(CertRevocationListError::BadSignature),
            Error::General("something went wrong".to_owned()),
            Error::FailedToGetCurrentTime,
            Error::FailedToGetRandomBytes,
            Error::HandshakeNotComplete,
            Error::PeerSentOversizedRecord,
            Error::NoApplicationProtocol,
            Error::BadMaxFragmentSize,
            Error::InconsistentKeys(InconsistentKeys::KeyMismatch),
            Error::Other(other(webpki::Error::CaUsedAsEndEntity)),
            Error::Other(other(std::io::Error::other("boom"))),
        ];
        for p in [
            P::EcPointsExtensionRequired,
            P::ExtendedMasterSecretExtensionRequired,
            P::IncorrectCertificateTypeExtension,
            P::KeyShareExtensionRequired,
            P::NamedGroupsExtensionRequired,
            P::NoCertificateRequestSignatureSchemesInCommon,
            P::NoCipherSuitesInCommon,
            P::NoEcPointFormatsInCommon,
            P::NoKxGroupsInCommon,
            P::NoSignatureSchemesInCommon,
            P::NullCompressionRequired,
            P::ServerDoesNotSupportTls12Or13,
            P::ServerSentHelloRetryRequestWithUnknownExtension,
            P::ServerTlsVersionIsDisabledByOurConfig,
            P::SignatureAlgorithmsExtensionRequired,
            P::SupportedVersionsExtensionRequired,
            P::Tls12NotOffered,
            P::Tls12NotOfferedOrEnabled,
            P::Tls13RequiredForQuic,
            P::UncompressedEcPointsRequired,
            P::UnsolicitedCertificateTypeExtension,
            P::ServerRejectedEncryptedClientHello(None),
        ] {
            all.push(Error::PeerIncompatible(p));
        }
        for code in 0..=255u8 {
            all.push(Error::AlertReceived(AlertDescription::from(code)));
        }
        all.extend(
            certificate_errors()
                .into_iter()
                .map(Error::InvalidCertificate),
        );
        all
    }

    /// A word with a lower-case letter followed by an upper-case one: a Rust type name.
    fn type_name(message: &str) -> Option<&str> {
        message.split(|c: char| !c.is_alphanumeric()).find(|w| {
            w.chars()
                .zip(w.chars().skip(1))
                .any(|(a, b)| a.is_lowercase() && b.is_uppercase())
        })
    }

    fn check(message: &str) {
        for bad in [
            "Other(",
            "OtherError",
            "Some(",
            "None",
            "{",
            "}",
            "[",
            "::",
            "Context",
        ] {
            assert!(!message.contains(bad), "{message:?} contains {bad:?}");
        }
        assert_eq!(type_name(message), None, "{message:?} names a type");
        assert!(
            message.starts_with(|c: char| c.is_lowercase()),
            "{message:?} does not start in lower case"
        );
        assert!(!message.ends_with('.'), "{message:?} ends with a period");
    }

    #[test]
    fn every_error_reads_as_a_sentence() {
        let all = errors();
        assert!(all.len() > 300, "{}", all.len());
        for e in &all {
            let (_, message) = error(e);
            check(&message);
        }
    }

    #[test]
    fn kinds_and_sentences() {
        let cases = [
            (
                Error::InvalidCertificate(CertificateError::Other(other(
                    webpki::Error::CaUsedAsEndEntity,
                ))),
                ErrorKind::InvalidCertificate,
                "CA:TRUE",
            ),
            (
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                ErrorKind::UnknownIssuer,
                "issued by a CA the monitor does not trust",
            ),
            (
                Error::InvalidCertificate(CertificateError::Expired),
                ErrorKind::CertificateExpired,
                "expired",
            ),
            (
                Error::AlertReceived(AlertDescription::HandshakeFailure),
                ErrorKind::HandshakeFailure,
                "alert handshake_failure (40)",
            ),
            (
                Error::AlertReceived(AlertDescription::ProtocolVersion),
                ErrorKind::NoCommonProtocol,
                "alert protocol_version (70)",
            ),
            (
                Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                ErrorKind::NoCommonProtocol,
                "no cipher suite",
            ),
            (
                Error::PeerMisbehaved(PeerMisbehaved::BadCertChainExtensions),
                ErrorKind::HandshakeFailure,
                "broke the TLS protocol: bad cert chain extensions",
            ),
            (
                Error::Other(other(std::io::Error::other("boom"))),
                ErrorKind::HandshakeFailure,
                "the TLS handshake failed (boom)",
            ),
            (
                Error::Other(other(webpki::Error::IssuerNotCrlSigner)),
                ErrorKind::InvalidCertificate,
                "revocation list cannot be used (issuer not crl signer)",
            ),
        ];
        for (e, kind, contains) in cases {
            let (k, message) = error(&e);
            assert_eq!(k, kind, "{message}");
            assert!(message.contains(contains), "{message:?} lacks {contains:?}");
        }
    }

    #[test]
    fn identifiers_as_words() {
        for (input, expected) in [
            ("CaUsedAsEndEntity", "ca used as end entity"),
            ("Tls12NotOffered", "tls12 not offered"),
            (
                "ServerRejectedEncryptedClientHello(None)",
                "server rejected encrypted client hello",
            ),
            ("MissingData(\"x\")", "missing data"),
            ("HTTPError", "http error"),
            ("other error: BadDer", "other error: bad der"),
        ] {
            assert_eq!(words(input), expected, "{input}");
        }
    }
}
