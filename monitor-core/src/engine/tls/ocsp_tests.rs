//! Unit tests of the OCSP reader and checker on a real `openssl ocsp` answer (fixed
//! bytes, fixed clock) and on malformed input, which must never panic.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::fixtures::{BY_DELEGATED_RESPONDER, BY_RESPONDER_WITHOUT_EKU, CA, LEAF, REVOKED, unhex};
use super::*;

/// The CA's key for the leaf.
fn issuer() -> IssuerKey {
    let der = unhex(CA);
    let (_, ca) = X509Certificate::from_der(&der).expect("the CA parses");
    IssuerKey {
        name: ca.subject().as_raw().to_vec(),
        spki: ca.public_key().raw.to_vec(),
    }
}

/// Checks `answer` about the leaf at `now` and compares status and problem (a part of
/// it) with what is expected.
fn check_at(answer: &[u8], now: OffsetDateTime, status: OcspStatus, problem: Option<&str>) {
    let leaf_der = unhex(LEAF);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).expect("the leaf parses");
    let report = check(answer, &leaf, &issuer(), now, OcspSource::Stapled);
    assert_eq!(report.status, status, "{report:?}");
    match problem {
        None => assert_eq!(report.problem, None),
        Some(part) => {
            let got = report.problem.unwrap_or_default();
            assert!(got.contains(part), "`{got}` should contain `{part}`");
        }
    }
}

/// A time in RFC 3339.
fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time")
}

/// While the answer is current.
fn current() -> OffsetDateTime {
    at("2026-12-05T20:29:30Z")
}

#[test]
fn a_current_answer_says_revoked_with_time_and_reason() {
    let leaf_der = unhex(LEAF);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).expect("the leaf parses");
    let report = check(
        &unhex(REVOKED),
        &leaf,
        &issuer(),
        current(),
        OcspSource::Stapled,
    );
    assert_eq!(report.status, OcspStatus::Revoked);
    assert_eq!(report.source, Some(OcspSource::Stapled));
    assert_eq!(report.revoked_at, Some(at("2024-12-01T00:00:00Z")));
    assert_eq!(report.reason.as_deref(), Some("keyCompromise"));
    assert_eq!(report.this_update, Some(at("2026-12-05T20:29:08Z")));
    assert_eq!(report.next_update, Some(at("2026-12-05T20:30:08Z")));
}

#[test]
fn dates_are_checked_with_a_few_minutes_of_skew() {
    let answer = unhex(REVOKED);
    check_at(
        &answer,
        at("2026-12-05T20:25:00Z"),
        OcspStatus::Revoked,
        None,
    );
    check_at(
        &answer,
        at("2026-12-05T20:20:00Z"),
        OcspStatus::Invalid,
        Some("not valid before 2026-12-05T20:29:08Z"),
    );
    check_at(
        &answer,
        at("2026-12-05T20:31:00Z"),
        OcspStatus::Invalid,
        Some("expired at 2026-12-05T20:30:08Z: the server's stapling cache is stale"),
    );
}

#[test]
fn a_changed_byte_in_the_signed_data_is_not_trusted() {
    let mut answer = unhex(REVOKED);
    // The last byte of producedAt's text ("...08Z" becomes "...09Z" or similar).
    let at = answer
        .windows(15)
        .position(|w| w == b"20261205202908Z")
        .expect("producedAt is in the answer");
    answer[at + 13] = b'9';
    check_at(
        &answer,
        current(),
        OcspStatus::Invalid,
        Some("signed by neither the issuer"),
    );
}

#[test]
fn another_issuer_does_not_match_the_cert_id() {
    let leaf_der = unhex(LEAF);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).expect("the leaf parses");
    let mut other = issuer();
    other.name = tlv(0x30, &[]);
    let report = check(
        &unhex(REVOKED),
        &leaf,
        &other,
        current(),
        OcspSource::Stapled,
    );
    // The signature is still the issuer's key, so the CertID is what fails.
    assert_eq!(report.status, OcspStatus::Invalid);
    assert!(
        report
            .problem
            .unwrap_or_default()
            .contains("about another certificate (serial 10:01)")
    );
}

#[test]
fn a_responder_the_ca_issued_must_have_the_ocsp_signing_eku() {
    check_at(
        &unhex(BY_DELEGATED_RESPONDER),
        at("2026-12-05T20:57:30Z"),
        OcspStatus::Revoked,
        None,
    );
    check_at(
        &unhex(BY_RESPONDER_WITHOUT_EKU),
        at("2026-12-05T20:57:30Z"),
        OcspStatus::Invalid,
        Some("signed by neither the issuer nor a responder it delegated to"),
    );
}

/// What `parse` makes of `input`: Ok with how many SingleResponses, or the error.
fn parsed(input: &[u8], expected: Result<usize, OcspError>) {
    assert_eq!(
        parse(input).map(|p| p.singles.len()),
        expected,
        "{input:02x?}"
    );
}

#[test]
fn malformed_answers_are_errors() {
    let m = OcspError::Malformed;
    parsed(&unhex(REVOKED), Ok(1));
    parsed(b"", Err(m("OCSPResponse")));
    parsed(&[0x30], Err(m("OCSPResponse")));
    parsed(&[0x30, 0x00], Err(m("responseStatus")));
    parsed(
        &[0x30, 0x03, 0x0a, 0x01, 0x03],
        Err(OcspError::Unsuccessful("tryLater")),
    );
    parsed(
        &[0x30, 0x03, 0x0a, 0x01, 0x06],
        Err(OcspError::Unsuccessful("unauthorized")),
    );
    parsed(
        &[0x30, 0x03, 0x0a, 0x01, 0x00],
        Err(m("a successful answer without responseBytes")),
    );
    parsed(
        &[0x30, 0x03, 0x0a, 0x01, 0x00, 0x00],
        Err(m("bytes after the OCSPResponse")),
    );
    // An indefinite length is BER, not DER.
    parsed(
        &[0x30, 0x80, 0x0a, 0x01, 0x00, 0x00, 0x00],
        Err(m("OCSPResponse")),
    );
    // A length far beyond the input.
    parsed(
        &[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x0a],
        Err(m("OCSPResponse")),
    );
    parsed(&vec![0u8; MAX_RESPONSE + 1], Err(OcspError::TooLarge));
    // responseBytes of another type (1.2.3).
    parsed(
        &[
            0x30, 0x0d, 0x0a, 0x01, 0x00, 0xa0, 0x08, 0x30, 0x06, 0x06, 0x02, 0x2a, 0x03, 0x04,
            0x00,
        ],
        Err(OcspError::NotBasic("1.2.3".to_owned())),
    );
}

#[test]
fn truncations_and_flips_of_a_real_answer_never_panic() {
    let answer = unhex(REVOKED);
    let leaf_der = unhex(LEAF);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).expect("the leaf parses");
    let issuer = issuer();
    for end in 0..answer.len() {
        assert!(
            parse(&answer[..end]).is_err(),
            "a truncation at {end} parsed"
        );
        let report = check(
            &answer[..end],
            &leaf,
            &issuer,
            current(),
            OcspSource::Stapled,
        );
        assert_eq!(report.status, OcspStatus::Invalid);
    }
    // Every single-byte change: never a panic, never `revoked` or `good` from a changed
    // signed part (the signature covers it), whatever else it becomes.
    let mut seed = 0x9e37_79b9_u32;
    for i in 0..answer.len() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let mut changed = answer.clone();
        changed[i] ^= (seed as u8) | 1;
        let _ = check(&changed, &leaf, &issuer, current(), OcspSource::Stapled);
    }
}

#[test]
fn reasons_have_their_rfc_5280_names() {
    assert_eq!(reason_name(1), "keyCompromise");
    assert_eq!(reason_name(4), "superseded");
    assert_eq!(reason_name(7), "reason 7");
}
