//! Unit tests of the OCSP reader and checker on a real `openssl ocsp` answer (fixed
//! bytes, fixed clock) and on malformed input, which must never panic.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

// Made by `openssl ocsp` 3.0 (see the notes): a P-256 CA `/CN=TestCA`, a leaf it
// issued with serial 0x1001, and the CA's answer that the leaf was revoked on
// 2024-12-01T00:00:00Z (keyCompromise), thisUpdate 2026-12-05T20:29:08Z, nextUpdate a
// minute later.
const CA: &str = concat!(
    "308201773082011da00302010202143e7d2541651cad27ec139fc0fe8dd2deb2c377ca300a06082a8648ce3d04030230",
    "11310f300d06035504030c06546573744341301e170d3236313230353230323930385a170d3236313231353230323930",
    "385a3011310f300d06035504030c065465737443413059301306072a8648ce3d020106082a8648ce3d03010703420004",
    "5fd89503b407d227f395776c14fca230bd7149fe48a2bf30f9393583bd0c027e713859aed67eaa5c8ffb5d47a6c7d2fb",
    "a191ae25c304daeea0ff6f29286013bba3533051301d0603551d0e04160414a3dd685f9cebb4b32d82f74e0a3ff51568",
    "4596c1301f0603551d23041830168014a3dd685f9cebb4b32d82f74e0a3ff515684596c1300f0603551d130101ff0405",
    "30030101ff300a06082a8648ce3d04030203480030450220141413599d0a1cf3cd19c47e4ae19203698a3a5cd4c0fc46",
    "53a0e54783a3525e02210087932db43f22fa1b3f3fee6e792e598c290cb403a4212b2391199ffa55bc9909",
);
const LEAF: &str = concat!(
    "3082010d3081b402021001300a06082a8648ce3d0403023011310f300d06035504030c06546573744341301e170d3236",
    "313230353230323930385a170d3236313231303230323930385a30143112301006035504030c096c6f63616c686f7374",
    "3059301306072a8648ce3d020106082a8648ce3d03010703420004ddd4bd229e71aaafb6139d3e6c61694efc92c9d58e",
    "b9539bd206aeaa6157ee09e565d98337ca216c19bb6fd392f1487cba564e00e0b1b5e7c6334d9d8f38fc0b300a06082a",
    "8648ce3d04030203480030450220344b480197269499510e0d58ca05d12098da5837e95d5b1cbe00593ae08610f10221",
    "00bb0f8958fd7cb7f610fd09a8fba665299922962f3e171aa6a414252b91e17d31",
);
const REVOKED: &str = concat!(
    "3082029c0a0100a08202953082029106092b0601050507300101048202823082027e3081a3a1133011310f300d060355",
    "04030c06546573744341180f32303236313230353230323930385a307b3079303b300906052b0e03021a05000414d08c",
    "e9dae861987de0483e887955106165f6f7d40414a3dd685f9cebb4b32d82f74e0a3ff515684596c102021001a116180f",
    "32303234313230313030303030305aa0030a0101180f32303236313230353230323930385aa011180f32303236313230",
    "353230333030385a300a06082a8648ce3d04030203470030440220440f9fa2d18bf872d27ec2d82af1d38e53c2125ac7",
    "a0ab7ee6fced4ca076732c02204d510c4a1bc588d20480186abc82e9e960084ae9923d9cf63e1d51401aa6b5c2a08201",
    "7f3082017b308201773082011da00302010202143e7d2541651cad27ec139fc0fe8dd2deb2c377ca300a06082a8648ce",
    "3d0403023011310f300d06035504030c06546573744341301e170d3236313230353230323930385a170d323631323135",
    "3230323930385a3011310f300d06035504030c065465737443413059301306072a8648ce3d020106082a8648ce3d0301",
    "07034200045fd89503b407d227f395776c14fca230bd7149fe48a2bf30f9393583bd0c027e713859aed67eaa5c8ffb5d",
    "47a6c7d2fba191ae25c304daeea0ff6f29286013bba3533051301d0603551d0e04160414a3dd685f9cebb4b32d82f74e",
    "0a3ff515684596c1301f0603551d23041830168014a3dd685f9cebb4b32d82f74e0a3ff515684596c1300f0603551d13",
    "0101ff040530030101ff300a06082a8648ce3d04030203480030450220141413599d0a1cf3cd19c47e4ae19203698a3a",
    "5cd4c0fc4653a0e54783a3525e02210087932db43f22fa1b3f3fee6e792e598c290cb403a4212b2391199ffa55bc9909",
);

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

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
