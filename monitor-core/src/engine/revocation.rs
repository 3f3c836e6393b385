//! The OCSP verdict of a check: the stapled answer, or in `query` mode the responder's
//! (asked over HTTP with reqwest), judged by `tls.ocsp` into a report and a problem.

use std::time::Duration;

use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::time::{Instant, timeout_at};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use super::chain;
use super::tls::ocsp::{self, IssuerKey, OcspError};
use super::tls::{Problem, Setup, s_client};
use monitor_spec::result::{ErrorKind, OcspReport, OcspSource, OcspStatus, TlsReport};
use monitor_spec::spec::{OcspMode, TcpMonitor};

/// The longest responder URL used (longer ones are reported unavailable).
const MAX_URL: usize = 2048;

/// Fills `report.ocsp` and adds the problem OCSP shows (revoked, untrusted answer,
/// required staple missing) to `problems`, keeping them most serious first.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn judge(
    spec: &TcpMonitor,
    setup: &Setup,
    chain: &[CertificateDer<'static>],
    stapled: &[u8],
    now: OffsetDateTime,
    until: Instant,
    report: &mut TlsReport,
    problems: &mut Vec<Problem>,
) {
    let mode = spec.tls.ocsp;
    if mode == OcspMode::Off {
        return;
    }
    let Some(leaf_der) = chain.first() else {
        return;
    };
    let Ok((_, leaf)) = X509Certificate::from_der(leaf_der.as_ref()) else {
        return;
    };
    // Only an answer to check needs the issuer (most handshakes staple none).
    let issuer = if stapled.is_empty() && mode != OcspMode::Query {
        None
    } else {
        issuer_of(&leaf, chain, setup)
    };
    let no_issuer = "the issuer's certificate is neither in the chain nor a trust anchor, so the answer cannot be checked";
    let found = if !stapled.is_empty() {
        match &issuer {
            Some(issuer) => ocsp::check(stapled, &leaf, issuer, now, OcspSource::Stapled),
            None => ocsp::bare(
                OcspStatus::Invalid,
                Some(OcspSource::Stapled),
                Some(no_issuer.to_owned()),
            ),
        }
    } else if mode == OcspMode::Query {
        match &issuer {
            Some(issuer) => {
                let limit = Duration::from_millis(spec.timeouts.read_ms.into());
                query(&leaf, issuer, now, until.min(Instant::now() + limit)).await
            }
            None => ocsp::bare(OcspStatus::Unavailable, None, Some(no_issuer.to_owned())),
        }
    } else {
        ocsp::bare(OcspStatus::NotStapled, None, None)
    };
    if let Some(problem) = problem(spec, setup, &leaf, &found) {
        problems.push(problem);
        problems.sort_by_key(|p| chain::severity(p.kind));
        report.problems = problems.iter().map(|p| p.kind).collect();
    }
    report.ocsp = Some(found);
}

/// The issuer of `leaf`: the first certificate of the chain whose subject is the leaf's
/// issuer, else a trust anchor with that subject.
fn issuer_of(
    leaf: &X509Certificate<'_>,
    chain: &[CertificateDer<'static>],
    setup: &Setup,
) -> Option<IssuerKey> {
    let wanted = leaf.issuer().as_raw();
    for der in chain.iter().skip(1) {
        if let Ok((_, cert)) = X509Certificate::from_der(der.as_ref())
            && cert.subject().as_raw() == wanted
        {
            return Some(IssuerKey {
                name: wanted.to_vec(),
                spki: cert.public_key().raw.to_vec(),
            });
        }
    }
    // Anchors keep the contents of the subject and key, without their SEQUENCE header.
    setup.roots().roots.iter().find_map(|anchor| {
        let name = ocsp::tlv(0x30, anchor.subject.as_ref());
        (name == wanted).then(|| IssuerKey {
            name,
            spki: ocsp::tlv(0x30, anchor.subject_public_key_info.as_ref()),
        })
    })
}

/// The OCSP responder URL in the leaf's Authority Information Access.
pub(crate) fn responder_url(leaf: &X509Certificate<'_>) -> Option<String> {
    leaf.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                aia.accessdescs.iter().find_map(|d| {
                    match (&d.access_location, d.access_method.to_id_string().as_str()) {
                        (GeneralName::URI(url), "1.3.6.1.5.5.7.48.1") => Some((*url).to_owned()),
                        _ => None,
                    }
                })
            }
            _ => None,
        })
}

/// Asks the responder named in the leaf, by POST, until `until`. A responder that cannot
/// be reached or does not answer a status is `unavailable` (soft-fail, as browsers do).
async fn query(
    leaf: &X509Certificate<'_>,
    issuer: &IssuerKey,
    now: OffsetDateTime,
    until: Instant,
) -> OcspReport {
    let unavailable = |why: String| ocsp::bare(OcspStatus::Unavailable, None, Some(why));
    let Some(url) = responder_url(leaf) else {
        return unavailable(
            "the certificate names no OCSP responder (no OCSP URL in its Authority Information Access)"
                .to_owned(),
        );
    };
    if url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
        let mut r = unavailable("the certificate's OCSP URL is not an HTTP URL".to_owned());
        r.responder = Some(url.chars().take(200).collect());
        return r;
    }
    let mut report = match timeout_at(until, fetch(&url, leaf, issuer)).await {
        Err(_) => unavailable(format!(
            "the responder {url} did not answer within the read timeout"
        )),
        Ok(Err(why)) => unavailable(format!("the responder {url} could not be asked: {why}")),
        Ok(Ok(body)) => match ocsp::parse(&body) {
            Err(e @ OcspError::Unsuccessful(_)) => unavailable(e.to_string()),
            _ => ocsp::check(&body, leaf, issuer, now, OcspSource::Queried),
        },
    };
    report.responder = Some(url);
    report
}

/// Without the `ocsp-query` feature there is no HTTP client: the query cannot be made.
#[cfg(not(feature = "ocsp-query"))]
async fn fetch(
    _url: &str,
    leaf: &X509Certificate<'_>,
    issuer: &IssuerKey,
) -> Result<Vec<u8>, String> {
    ocsp::request(leaf, issuer).ok_or("the issuer's key cannot be read")?;
    Err(
        "this build of the engine has no OCSP queries (monitor-core's feature `ocsp-query`)"
            .to_owned(),
    )
}

/// POSTs the request and reads at most [`ocsp::MAX_RESPONSE`] bytes of the answer.
#[cfg(feature = "ocsp-query")]
async fn fetch(
    url: &str,
    leaf: &X509Certificate<'_>,
    issuer: &IssuerKey,
) -> Result<Vec<u8>, String> {
    let body = ocsp::request(leaf, issuer).ok_or("the issuer's key cannot be read")?;
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| deepest(&e))?;
    let mut response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
        .body(body)
        .send()
        .await
        .map_err(|e| deepest(&e))?;
    if !response.status().is_success() {
        return Err(format!("it answered HTTP {}", response.status()));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| deepest(&e))? {
        if out.len() + chunk.len() > ocsp::MAX_RESPONSE {
            return Err(format!(
                "its answer is larger than {} bytes",
                ocsp::MAX_RESPONSE
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The innermost cause of an error, which says what happened (connection refused, ...).
#[cfg(feature = "ocsp-query")]
fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The problem an OCSP report shows under the monitor's mode, if any.
fn problem(
    spec: &TcpMonitor,
    setup: &Setup,
    leaf: &X509Certificate<'_>,
    found: &OcspReport,
) -> Option<Problem> {
    let shown = match found.status {
        OcspStatus::Revoked | OcspStatus::Invalid => true,
        OcspStatus::NotStapled => spec.tls.ocsp == OcspMode::RequireStaple,
        _ => false,
    };
    if !shown {
        return None;
    }
    let target = spec.target.to_string();
    let status_look = s_client(spec, &setup.name).replace(" -showcerts", " -status");
    let said_by = match (&found.source, &found.responder) {
        (Some(OcspSource::Queried), Some(url)) => format!("the OCSP responder {url}"),
        _ => "the OCSP answer the server stapled".to_owned(),
    };
    let by_hand = match &found.responder {
        Some(url) => format!(
            "look by hand: openssl ocsp -issuer issuer.pem -cert server.pem -url {url} -resp_text"
        ),
        None => status_look.clone(),
    };
    let subject = leaf.subject().to_string();
    match found.status {
        OcspStatus::Revoked => Some(Problem::new(
            ErrorKind::CertificateRevoked,
            format!(
                "the certificate of {target} `{subject}` was revoked on {}{}, says {said_by}",
                found.revoked_at.map(ocsp::rfc3339).unwrap_or_default(),
                found
                    .reason
                    .as_ref()
                    .map(|r| format!(" (reason: {r})"))
                    .unwrap_or_default(),
            ),
            vec![
                "the CA revoked this certificate: issue a new one (with a new key if the key was compromised) and install it".to_owned(),
                by_hand,
            ],
        )),
        OcspStatus::Invalid => Some(Problem::new(
            ErrorKind::InvalidCertificate,
            format!(
                "{said_by} about the certificate of {target} cannot be trusted: {}",
                found.problem.as_deref().unwrap_or("it is not valid")
            ),
            vec![
                "restart or reload the service so that it fetches a fresh answer, and check that it can reach its CA's OCSP responder (nginx: ssl_stapling and resolver; Apache: SSLUseStapling)".to_owned(),
                "the server may staple an answer meant for another certificate after a renewal: check its stapling file or cache".to_owned(),
                by_hand,
            ],
        )),
        OcspStatus::NotStapled if spec.tls.ocsp == OcspMode::RequireStaple => Some(Problem::new(
            ErrorKind::InvalidCertificate,
            format!(
                "the server stapled no OCSP response; tls.ocsp = \"require_staple\" requires {target} to staple one"
            ),
            vec![
                "turn OCSP stapling on in the service (nginx: ssl_stapling on; Apache: SSLUseStapling on; HAProxy: ocsp-update on)".to_owned(),
                "a server fetches its first answer only after start or the first handshakes: check again a minute later".to_owned(),
                status_look,
            ],
        )),
        _ => None,
    }
}
