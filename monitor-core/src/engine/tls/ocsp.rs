//! OCSP (RFC 6960) about the server's certificate: reads a DER OCSPResponse with asn1-rs
//! and checks it against the leaf and its issuer (signer, CertID, dates) with ring.

use std::fmt::Write as _;

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use time::OffsetDateTime;
use x509_parser::asn1_rs::{Any, Class, FromDer};
use x509_parser::prelude::X509Certificate;
use x509_parser::x509::SubjectPublicKeyInfo;

use monitor_spec::result::{OcspReport, OcspSource, OcspStatus};

/// The largest OCSP answer read, stapled or queried (real ones are 1 to 4 KiB).
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;
/// How far in the future `thisUpdate` may be (clock skew between responder and monitor).
pub(crate) const MAX_SKEW: time::Duration = time::Duration::minutes(5);
/// How many SingleResponses of one answer are looked at.
const MAX_SINGLES: usize = 64;
/// How many certificates an answer may carry to find a delegated responder.
const MAX_CERTS: usize = 8;

/// Why an OCSP answer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OcspError {
    /// Longer than [`MAX_RESPONSE`].
    #[error("the answer is larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    /// Not the DER of an OCSPResponse.
    #[error("the answer is not a valid OCSP response ({0})")]
    Malformed(&'static str),
    /// A responseStatus other than successful.
    #[error("the responder answered `{0}` instead of a status")]
    Unsuccessful(&'static str),
    /// A responseType other than id-pkix-ocsp-basic.
    #[error("the answer is of type {0}, not a basic OCSP response")]
    NotBasic(String),
}

/// The status of one certificate in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertStatus {
    Good,
    Revoked {
        at: OffsetDateTime,
        reason: Option<u8>,
    },
    Unknown,
}

/// One SingleResponse.
#[derive(Debug, Clone)]
pub(crate) struct Single<'a> {
    hash_alg: String,
    name_hash: &'a [u8],
    key_hash: &'a [u8],
    serial: &'a [u8],
    pub status: CertStatus,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
}

/// A successful BasicOCSPResponse, read but not yet checked.
#[derive(Debug, Clone)]
pub(crate) struct Parsed<'a> {
    tbs: &'a [u8],
    sig_alg: String,
    signature: &'a [u8],
    certs: Vec<&'a [u8]>,
    pub singles: Vec<Single<'a>>,
}

/// A cursor over DER elements, one level deep.
struct Der<'a> {
    rest: &'a [u8],
}

const SEQUENCE: u32 = 16;

impl<'a> Der<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Der { rest }
    }

    /// The next element and its whole encoding.
    fn next(&mut self, what: &'static str) -> Result<(Any<'a>, &'a [u8]), OcspError> {
        let (rest, any) = Any::from_der(self.rest).map_err(|_| OcspError::Malformed(what))?;
        let raw = &self.rest[..self.rest.len() - rest.len()];
        self.rest = rest;
        Ok((any, raw))
    }

    /// The next element, which must be universal `tag`.
    fn universal(&mut self, tag: u32, what: &'static str) -> Result<Any<'a>, OcspError> {
        let (any, _) = self.next(what)?;
        if any.header.class() != Class::Universal || any.header.tag().0 != tag {
            return Err(OcspError::Malformed(what));
        }
        Ok(any)
    }

    /// The contents of the next element, a SEQUENCE.
    fn sequence(&mut self, what: &'static str) -> Result<Der<'a>, OcspError> {
        Ok(Der::new(self.universal(SEQUENCE, what)?.data))
    }

    /// The next element if it is context-specific `[n]`.
    fn tagged(&mut self, n: u32, what: &'static str) -> Result<Option<Any<'a>>, OcspError> {
        match self.rest.first() {
            Some(b) if b & 0xc0 == 0x80 && u32::from(b & 0x1f) == n => Ok(Some(self.next(what)?.0)),
            _ => Ok(None),
        }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

fn oid_of(any: &Any<'_>, what: &'static str) -> Result<String, OcspError> {
    if any.header.tag().0 != 6 {
        return Err(OcspError::Malformed(what));
    }
    any.clone()
        .oid()
        .map(|o| o.to_id_string())
        .map_err(|_| OcspError::Malformed(what))
}

/// The OID of an AlgorithmIdentifier.
fn algorithm(der: &mut Der<'_>, what: &'static str) -> Result<String, OcspError> {
    let mut alg = der.sequence(what)?;
    oid_of(&alg.next(what)?.0, what)
}

/// A GeneralizedTime's contents (`YYYYMMDDHHMMSS[.f]Z`).
fn generalized_time(any: &Any<'_>, what: &'static str) -> Result<OffsetDateTime, OcspError> {
    let bad = OcspError::Malformed(what);
    if any.header.tag().0 != 24 {
        return Err(bad);
    }
    let text = std::str::from_utf8(any.data).map_err(|_| bad.clone())?;
    let text = text.strip_suffix('Z').ok_or(bad.clone())?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.len() != 14
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad);
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<u16>().unwrap_or(0);
    let month = time::Month::try_from(n(4..6) as u8).map_err(|_| bad.clone())?;
    let date = time::Date::from_calendar_date(i32::from(n(0..4)), month, n(6..8) as u8)
        .map_err(|_| bad.clone())?;
    let clock = time::Time::from_hms(n(8..10) as u8, n(10..12) as u8, n(12..14) as u8)
        .map_err(|_| bad.clone())?;
    Ok(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

fn status_name(code: u8) -> &'static str {
    match code {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an unknown status",
    }
}

/// Reads a DER OCSPResponse; only a successful basic response is `Ok`.
pub(crate) fn parse(der: &[u8]) -> Result<Parsed<'_>, OcspError> {
    if der.len() > MAX_RESPONSE {
        return Err(OcspError::TooLarge);
    }
    let mut top = Der::new(der);
    let mut response = top.sequence("OCSPResponse")?;
    if !top.is_empty() {
        return Err(OcspError::Malformed("bytes after the OCSPResponse"));
    }
    let status = response.universal(10, "responseStatus")?;
    match status.data {
        [0] => {}
        [code] => return Err(OcspError::Unsuccessful(status_name(*code))),
        _ => return Err(OcspError::Malformed("responseStatus")),
    }
    let bytes = response
        .tagged(0, "responseBytes")?
        .ok_or(OcspError::Malformed(
            "a successful answer without responseBytes",
        ))?;
    let mut bytes = Der::new(bytes.data).sequence("responseBytes")?;
    let kind = oid_of(&bytes.next("responseType")?.0, "responseType")?;
    if kind != "1.3.6.1.5.5.7.48.1.1" {
        return Err(OcspError::NotBasic(kind));
    }
    let octets = bytes.universal(4, "response")?;
    let mut basic = Der::new(octets.data).sequence("BasicOCSPResponse")?;
    let (tbs_any, tbs) = basic.next("tbsResponseData")?;
    if tbs_any.header.tag().0 != SEQUENCE {
        return Err(OcspError::Malformed("tbsResponseData"));
    }
    let sig_alg = algorithm(&mut basic, "signatureAlgorithm")?;
    let signature = bit_string(&basic.universal(3, "signature")?, "signature")?;
    let mut certs = Vec::new();
    if let Some(list) = basic.tagged(0, "certs")? {
        let mut list = Der::new(list.data).sequence("certs")?;
        while !list.is_empty() && certs.len() < MAX_CERTS {
            certs.push(list.next("certs")?.1);
        }
    }
    let mut data = Der::new(tbs_any.data);
    data.tagged(0, "version")?;
    let responder = data.next("responderID")?.0;
    if responder.header.class() != Class::ContextSpecific {
        return Err(OcspError::Malformed("responderID"));
    }
    generalized_time(&data.next("producedAt")?.0, "producedAt")?;
    let mut list = data.sequence("responses")?;
    let mut singles = Vec::new();
    while !list.is_empty() && singles.len() < MAX_SINGLES {
        singles.push(single(&mut list)?);
    }
    if singles.is_empty() {
        return Err(OcspError::Malformed("no SingleResponse"));
    }
    Ok(Parsed {
        tbs,
        sig_alg,
        signature,
        certs,
        singles,
    })
}

fn bit_string<'a>(any: &Any<'a>, what: &'static str) -> Result<&'a [u8], OcspError> {
    match any.data.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(OcspError::Malformed(what)),
    }
}

fn single<'a>(list: &mut Der<'a>) -> Result<Single<'a>, OcspError> {
    let mut s = list.sequence("SingleResponse")?;
    let mut id = s.sequence("certID")?;
    let hash_alg = algorithm(&mut id, "certID hashAlgorithm")?;
    let name_hash = id.universal(4, "issuerNameHash")?.data;
    let key_hash = id.universal(4, "issuerKeyHash")?.data;
    let serial = id.universal(2, "serialNumber")?.data;
    let (status_any, _) = s.next("certStatus")?;
    if status_any.header.class() != Class::ContextSpecific {
        return Err(OcspError::Malformed("certStatus"));
    }
    let status = match status_any.header.tag().0 {
        0 => CertStatus::Good,
        1 => {
            let mut info = Der::new(status_any.data);
            let at = generalized_time(&info.next("revocationTime")?.0, "revocationTime")?;
            let reason = match info.tagged(0, "revocationReason")? {
                Some(r) => match Der::new(r.data).universal(10, "revocationReason")?.data {
                    [code] => Some(*code),
                    _ => return Err(OcspError::Malformed("revocationReason")),
                },
                None => None,
            };
            CertStatus::Revoked { at, reason }
        }
        2 => CertStatus::Unknown,
        _ => return Err(OcspError::Malformed("certStatus")),
    };
    let this_update = generalized_time(&s.next("thisUpdate")?.0, "thisUpdate")?;
    let next_update = match s.tagged(0, "nextUpdate")? {
        Some(t) => Some(generalized_time(
            &Der::new(t.data).next("nextUpdate")?.0,
            "nextUpdate",
        )?),
        None => None,
    };
    Ok(Single {
        hash_alg,
        name_hash,
        key_hash,
        serial,
        status,
        this_update,
        next_update,
    })
}

/// A revocation reason as RFC 5280 names it.
pub(crate) fn reason_name(code: u8) -> String {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        other => return format!("reason {other}"),
    }
    .to_owned()
}

/// The certificate that issued the leaf: its subject (DER of the Name) and public key
/// (DER of the SubjectPublicKeyInfo).
#[derive(Debug, Clone)]
pub(crate) struct IssuerKey {
    pub name: Vec<u8>,
    pub spki: Vec<u8>,
}

fn digest(alg: &str, data: &[u8]) -> Option<ring::digest::Digest> {
    let alg = match alg {
        "1.3.14.3.2.26" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        "2.16.840.1.101.3.4.2.1" => &ring::digest::SHA256,
        "2.16.840.1.101.3.4.2.2" => &ring::digest::SHA384,
        "2.16.840.1.101.3.4.2.3" => &ring::digest::SHA512,
        _ => return None,
    };
    Some(ring::digest::digest(alg, data))
}

/// ring's algorithm for a signature algorithm OID and a key (its algorithm and curve).
fn verification(
    spki: &SubjectPublicKeyInfo<'_>,
    sig: &str,
) -> Option<&'static dyn VerificationAlgorithm> {
    let key = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.clone().oid().ok())
        .map(|o| o.to_id_string());
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    Some(match (key.as_str(), curve.as_deref(), sig) {
        ("1.2.840.113549.1.1.1", _, "1.2.840.113549.1.1.5") => {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        ("1.2.840.113549.1.1.1", _, "1.2.840.113549.1.1.11") => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        ("1.2.840.113549.1.1.1", _, "1.2.840.113549.1.1.12") => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        ("1.2.840.113549.1.1.1", _, "1.2.840.113549.1.1.13") => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        ("1.2.840.10045.2.1", Some(P256), "1.2.840.10045.4.3.2") => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        ("1.2.840.10045.2.1", Some(P256), "1.2.840.10045.4.3.3") => {
            &signature::ECDSA_P256_SHA384_ASN1
        }
        ("1.2.840.10045.2.1", Some(P384), "1.2.840.10045.4.3.2") => {
            &signature::ECDSA_P384_SHA256_ASN1
        }
        ("1.2.840.10045.2.1", Some(P384), "1.2.840.10045.4.3.3") => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        ("1.3.101.112", _, "1.3.101.112") => &signature::ED25519,
        _ => return None,
    })
}

/// Whether `sig` over `msg` verifies with the key `spki` under algorithm OID `alg`.
fn verifies(spki: &SubjectPublicKeyInfo<'_>, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
    verification(spki, alg).is_some_and(|v| {
        UnparsedPublicKey::new(v, spki.subject_public_key.data.as_ref())
            .verify(msg, sig)
            .is_ok()
    })
}

/// Whether the answer is signed by the issuer, or by a certificate in it that the issuer
/// signed for OCSP signing (id-kp-OCSPSigning) and that is valid at `now`.
fn signed_by_issuer(parsed: &Parsed<'_>, issuer: &IssuerKey, now: OffsetDateTime) -> bool {
    let Ok((_, issuer_key)) = SubjectPublicKeyInfo::from_der(&issuer.spki) else {
        return false;
    };
    if verifies(&issuer_key, &parsed.sig_alg, parsed.tbs, parsed.signature) {
        return true;
    }
    parsed.certs.iter().any(|der| {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return false;
        };
        let validity = cert.validity();
        cert.issuer().as_raw() == issuer.name.as_slice()
            && validity.not_before.to_datetime() <= now
            && now <= validity.not_after.to_datetime()
            && matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing)
            && verifies(
                &issuer_key,
                &cert.signature_algorithm.algorithm.to_id_string(),
                cert.tbs_certificate.as_ref(),
                cert.signature_value.data.as_ref(),
            )
            && verifies(
                cert.public_key(),
                &parsed.sig_alg,
                parsed.tbs,
                parsed.signature,
            )
    })
}

/// Whether a SingleResponse's CertID names the leaf.
fn about(single: &Single<'_>, leaf: &X509Certificate<'_>, issuer: &IssuerKey) -> bool {
    let Ok((_, key)) = SubjectPublicKeyInfo::from_der(&issuer.spki) else {
        return false;
    };
    let (Some(name), Some(key)) = (
        digest(&single.hash_alg, &issuer.name),
        digest(&single.hash_alg, key.subject_public_key.data.as_ref()),
    ) else {
        return false;
    };
    single.serial == leaf.raw_serial()
        && single.name_hash == name.as_ref()
        && single.key_hash == key.as_ref()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A report with only a status (and a problem in words).
pub(crate) fn bare(
    status: OcspStatus,
    source: Option<OcspSource>,
    problem: Option<String>,
) -> OcspReport {
    OcspReport {
        status,
        source,
        responder: None,
        this_update: None,
        next_update: None,
        revoked_at: None,
        reason: None,
        problem,
    }
}

/// Checks an answer (`der`) about `leaf` issued by `issuer` at `now`: its signer, that
/// it is about the leaf, and its dates. Every failure is an `invalid` report whose
/// problem says why in words; `source` words the staleness of an expired answer.
pub(crate) fn check(
    der: &[u8],
    leaf: &X509Certificate<'_>,
    issuer: &IssuerKey,
    now: OffsetDateTime,
    source: OcspSource,
) -> OcspReport {
    let invalid = |why: String| bare(OcspStatus::Invalid, Some(source), Some(why));
    let parsed = match parse(der) {
        Ok(p) => p,
        Err(e) => return invalid(e.to_string()),
    };
    if !signed_by_issuer(&parsed, issuer, now) {
        return invalid(
            "the answer is signed by neither the issuer nor a responder it delegated to".to_owned(),
        );
    }
    let Some(single) = parsed.singles.iter().find(|s| about(s, leaf, issuer)) else {
        let other = parsed
            .singles
            .first()
            .map(|s| hex(s.serial))
            .unwrap_or_default();
        return invalid(format!(
            "the answer is about another certificate (serial {other}), not the server's (serial {})",
            hex(leaf.raw_serial())
        ));
    };
    let mut report = bare(OcspStatus::Good, Some(source), None);
    report.this_update = Some(single.this_update);
    report.next_update = single.next_update;
    if single.this_update > now + MAX_SKEW {
        report.status = OcspStatus::Invalid;
        report.problem = Some(format!(
            "the answer is not valid before {}: the responder's clock or this machine's is wrong",
            rfc3339(single.this_update)
        ));
        return report;
    }
    if let Some(next) = single.next_update.filter(|n| *n < now) {
        report.status = OcspStatus::Invalid;
        report.problem = Some(match source {
            OcspSource::Stapled => format!(
                "the answer expired at {}: the server's stapling cache is stale",
                rfc3339(next)
            ),
            OcspSource::Queried => format!(
                "the answer expired at {}: the responder serves a stale answer",
                rfc3339(next)
            ),
        });
        return report;
    }
    match single.status {
        CertStatus::Good => {}
        CertStatus::Unknown => report.status = OcspStatus::Unknown,
        CertStatus::Revoked { at, reason } => {
            report.status = OcspStatus::Revoked;
            report.revoked_at = Some(at);
            report.reason = reason.map(reason_name);
        }
    }
    report
}

/// The DER of an OCSPRequest for the leaf (CertID with SHA-1, as RFC 5019 responders
/// expect), without a nonce.
pub(crate) fn request(leaf: &X509Certificate<'_>, issuer: &IssuerKey) -> Option<Vec<u8>> {
    let (_, key) = SubjectPublicKeyInfo::from_der(&issuer.spki).ok()?;
    let sha1 = |d: &[u8]| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, d);
    let alg = tlv(
        0x30,
        &[tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), vec![0x05, 0x00]].concat(),
    );
    let cert_id = tlv(
        0x30,
        &[
            alg,
            tlv(0x04, sha1(&issuer.name).as_ref()),
            tlv(0x04, sha1(key.subject_public_key.data.as_ref()).as_ref()),
            tlv(0x02, leaf.raw_serial()),
        ]
        .concat(),
    );
    let request = tlv(0x30, &cert_id);
    let list = tlv(0x30, &request);
    let tbs = tlv(0x30, &list);
    Some(tlv(0x30, &tbs))
}

/// One DER element of `tag` holding `data`.
pub(crate) fn tlv(tag: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(data);
    out
}

/// Reads `input` as an answer and checks it against the fixture leaf and CA at a time
/// inside and one outside the answer's window: nothing may panic.
#[cfg(feature = "fuzz")]
pub(crate) fn fuzz_check(input: &[u8]) {
    use fixtures::{CA, LEAF, unhex};
    let (ca, leaf) = (unhex(CA), unhex(LEAF));
    let (Ok((_, ca)), Ok((_, leaf))) = (
        X509Certificate::from_der(&ca),
        X509Certificate::from_der(&leaf),
    ) else {
        return;
    };
    let issuer = IssuerKey {
        name: ca.subject().as_raw().to_vec(),
        spki: ca.public_key().raw.to_vec(),
    };
    for unix in [1_796_502_570, 0] {
        if let Ok(now) = OffsetDateTime::from_unix_timestamp(unix) {
            let report = check(input, &leaf, &issuer, now, OcspSource::Stapled);
            let _ = report.problem;
        }
    }
    if let Ok(parsed) = parse(input) {
        for single in &parsed.singles {
            let _ = (single.this_update, single.next_update, &single.status);
        }
    }
}

#[cfg(any(test, feature = "fuzz"))]
#[path = "ocsp_fixtures.rs"]
mod fixtures;

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;
