//! OCSP end to end: answers made by `openssl ocsp` from an OpenSSL CA `index.txt` (good,
//! revoked, unknown, expired, signed by a stranger, about another certificate) stapled by
//! rustls servers and by `openssl s_server -status_file`, none stapled under each mode,
//! and `query` mode against a responder on loopback and against a closed port.
//!
//! The tests need the `openssl` command line tool (Debian package `openssl`).

use std::time::Duration;

use monitor_core::prelude::*;
use monitor_core::result::OcspSource;
use monitor_core::{OcspMode, OcspReport, OcspStatus, PemSource};
use monitor_testing::ocsp::{Entry, OcspLeaf, OcspPki, Signer};
use monitor_testing::{Script, ScriptedServer, TlsServer, days_from_now, refusing_port};
use time::OffsetDateTime;

use crate::legacy::OpensslServer;
use crate::servers::{kind, run, run_with};

const NAME: &str = "ocsp.test";

/// A direct-TLS monitor of 127.0.0.1:`port` trusting `pki`'s CA, with `mode`.
fn monitor(port: u16, pki: &OcspPki, mode: OcspMode) -> TcpMonitor {
    TcpMonitor::new("ocsp", "127.0.0.1", port)
        .tls_direct()
        .tls_with(|t| {
            t.ca = Some(PemSource::Pem(pki.ca_pem()));
            t.server_name = Some(NAME.to_owned());
            t.ocsp = mode;
        })
        .expect("hello")
}

/// A server presenting `leaf` and stapling `stapled` (nothing when empty).
async fn serve(leaf: &OcspLeaf, stapled: Vec<u8>) -> ScriptedServer {
    let config = leaf.server_config(stapled).expect("a server configuration");
    ScriptedServer::start_tls(Script::new().send("hello\r\n"), TlsServer::direct(config))
        .await
        .expect("the TLS server starts")
}

/// Serves `leaf` stapling `stapled`, checks it with `mode` and returns the result and
/// its OCSP report.
async fn check(
    pki: &OcspPki,
    leaf: &OcspLeaf,
    stapled: Vec<u8>,
    mode: OcspMode,
) -> (CheckResult, OcspReport) {
    let server = serve(leaf, stapled).await;
    let r = run(monitor(server.port(), pki, mode)).await;
    let ocsp = r
        .tls
        .as_ref()
        .and_then(|t| t.ocsp.clone())
        .unwrap_or_else(|| panic!("an OCSP report: {r:?}"));
    (r, ocsp)
}

fn message(r: &CheckResult) -> String {
    r.error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// A PKI with one leaf for `NAME` (serial 0x1001) in `index.txt` as `entry`.
fn pki_with(label: &str, entry: Entry, url: Option<&str>) -> (OcspPki, OcspLeaf) {
    let pki = OcspPki::new(label).expect("the OCSP test PKI");
    let leaf = pki.leaf(NAME, 0x1001, url).expect("a leaf");
    pki.set_index(&[(&leaf, entry)]).expect("index.txt");
    (pki, leaf)
}

#[tokio::test]
async fn a_good_answer_stapled_passes_and_is_reported() {
    let (pki, leaf) = pki_with("good", Entry::Valid, None);
    let answer = pki.answer(&leaf, Signer::Delegated, 60).expect("an answer");
    let (r, ocsp) = check(&pki, &leaf, answer, OcspMode::Report).await;
    assert_eq!(r.status, Status::Passed, "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::Good);
    assert_eq!(ocsp.source, Some(OcspSource::Stapled));
    let (this, next) = (ocsp.this_update.unwrap(), ocsp.next_update.unwrap());
    assert!(this <= OffsetDateTime::now_utc());
    assert_eq!((next - this).whole_minutes(), 60, "openssl ocsp -nmin 60");
    assert_eq!(ocsp.problem, None);

    let text = monitor_core::report::prometheus(&[&r], &[]);
    for line in [
        r#"monitor_ssl_ocsp_status{monitor="ocsp",status="good"} 1"#.to_owned(),
        r#"monitor_ssl_ocsp_status{monitor="ocsp",status="revoked"} 0"#.to_owned(),
        format!(
            r#"monitor_ssl_ocsp_next_update_timestamp_seconds{{monitor="ocsp"}} {}"#,
            next.unix_timestamp()
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
}

#[tokio::test]
async fn answers_stapled_by_openssl_s_server_are_read_over_tls_1_2_and_1_3() {
    let revoked_at = days_from_now(-2).replace_nanosecond(0).unwrap();
    let (pki, leaf) = pki_with(
        "s_server",
        Entry::Revoked(revoked_at, "keyCompromise"),
        None,
    );
    let answer = pki.answer(&leaf, Signer::Delegated, 60).expect("an answer");
    let file = leaf.write_answer(&answer).expect("the answer file");
    let file = file.to_string_lossy().into_owned();
    for (version, flags) in [("TLSv1.2", ["-tls1_2"]), ("TLSv1.3", ["-tls1_3"])] {
        let server = OpensslServer::start_with(
            "ocsp",
            &leaf.cert_pem,
            &leaf.key_pem,
            &[&flags[..], &["-status_file", &file]].concat(),
        );
        let r = run(monitor(server.port, &pki, OcspMode::Report)).await;
        let tls = r.tls.clone().expect("a TLS report");
        assert_eq!(tls.version.as_deref(), Some(version));
        assert_eq!(
            kind(&r),
            Some(ErrorKind::CertificateRevoked),
            "{version}: {r:?}"
        );
        let ocsp = tls.ocsp.expect("an OCSP report");
        assert_eq!(
            (ocsp.status, ocsp.source),
            (OcspStatus::Revoked, Some(OcspSource::Stapled))
        );
        assert_eq!(ocsp.revoked_at, Some(revoked_at));
    }
}

#[tokio::test]
async fn a_revoked_answer_fails_with_the_time_and_reason() {
    let revoked_at =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::from_secs(3 * 86400);
    let (pki, leaf) = pki_with("revoked", Entry::Revoked(revoked_at, "keyCompromise"), None);
    let answer = pki.answer(&leaf, Signer::Ca, 60).expect("an answer");
    let (r, ocsp) = check(&pki, &leaf, answer.clone(), OcspMode::Report).await;
    assert_eq!(r.status, Status::Failed);
    assert_eq!(kind(&r), Some(ErrorKind::CertificateRevoked));
    assert_eq!(ocsp.status, OcspStatus::Revoked);
    assert_eq!(ocsp.revoked_at, Some(revoked_at));
    assert_eq!(ocsp.reason.as_deref(), Some("keyCompromise"));
    let text = message(&r);
    let when = revoked_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(
        text.contains(&when) && text.contains("keyCompromise"),
        "{text}"
    );
    let tls = r.tls.as_ref().unwrap();
    assert!(tls.problems.contains(&ErrorKind::CertificateRevoked));
    let hints = &r.error.as_ref().unwrap().hints;
    assert!(hints.iter().any(|h| h.contains("-status")), "{hints:?}");

    // allow_invalid: reported, not failed.
    let server = serve(&leaf, answer).await;
    let r =
        run(monitor(server.port(), &pki, OcspMode::Report).tls_with(|t| t.allow_invalid = true))
            .await;
    assert_eq!(r.status, Status::Passed, "{r:?}");
    assert_eq!(r.tls.unwrap().ocsp.unwrap().status, OcspStatus::Revoked);
}

#[tokio::test]
async fn a_certificate_the_responder_does_not_know_is_reported_unknown() {
    let pki = OcspPki::new("unknown").expect("the OCSP test PKI");
    let leaf = pki.leaf(NAME, 0x1001, None).expect("a leaf");
    // index.txt stays empty.
    let answer = pki.answer(&leaf, Signer::Ca, 60).expect("an answer");
    let (r, ocsp) = check(&pki, &leaf, answer, OcspMode::Report).await;
    assert_eq!(r.status, Status::Passed, "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::Unknown);
}

#[tokio::test]
async fn an_expired_answer_is_a_stale_stapling_cache() {
    let (pki, leaf) = pki_with("expired", Entry::Valid, None);
    // Current for one minute; the monitor's clock reads two hours later.
    let answer = pki.answer(&leaf, Signer::Delegated, 1).expect("an answer");
    let server = serve(&leaf, answer).await;
    let engine =
        Engine::new().with_clock(monitor_testing::ShiftedWall::new(time::Duration::hours(2)));
    let r = run_with(&engine, monitor(server.port(), &pki, OcspMode::Report)).await;
    assert_eq!(kind(&r), Some(ErrorKind::InvalidCertificate), "{r:?}");
    let ocsp = r.tls.as_ref().unwrap().ocsp.clone().unwrap();
    assert_eq!(ocsp.status, OcspStatus::Invalid);
    let problem = ocsp.problem.unwrap();
    assert!(
        problem.contains("the server's stapling cache is stale"),
        "{problem}"
    );
    assert!(message(&r).contains(&problem), "{}", message(&r));
}

#[tokio::test]
async fn an_answer_signed_by_a_stranger_is_not_trusted() {
    let (pki, leaf) = pki_with("stranger", Entry::Valid, None);
    let answer = pki.answer(&leaf, Signer::Stranger, 60).expect("an answer");
    let (r, ocsp) = check(&pki, &leaf, answer, OcspMode::Report).await;
    assert_eq!(kind(&r), Some(ErrorKind::InvalidCertificate), "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::Invalid);
    assert_eq!(
        ocsp.problem.as_deref(),
        Some("the answer is signed by neither the issuer nor a responder it delegated to")
    );
}

#[tokio::test]
async fn an_answer_about_another_certificate_is_not_trusted() {
    let pki = OcspPki::new("another").expect("the OCSP test PKI");
    let leaf = pki.leaf(NAME, 0x1001, None).expect("a leaf");
    let other = pki.leaf(NAME, 0x1002, None).expect("another leaf");
    pki.set_index(&[(&leaf, Entry::Valid), (&other, Entry::Valid)])
        .expect("index.txt");
    let answer = pki
        .answer(&other, Signer::Delegated, 60)
        .expect("an answer");
    let (r, ocsp) = check(&pki, &leaf, answer, OcspMode::Report).await;
    assert_eq!(kind(&r), Some(ErrorKind::InvalidCertificate), "{r:?}");
    assert_eq!(
        ocsp.problem.as_deref(),
        Some(
            "the answer is about another certificate (serial 10:02), not the server's (serial 10:01)"
        )
    );
}

#[tokio::test]
async fn nothing_stapled_passes_under_report_and_fails_under_require_staple() {
    let (pki, leaf) = pki_with("none", Entry::Valid, None);
    let (r, ocsp) = check(&pki, &leaf, Vec::new(), OcspMode::Report).await;
    assert_eq!(r.status, Status::Passed, "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::NotStapled);
    assert_eq!(ocsp.source, None);

    let (r, ocsp) = check(&pki, &leaf, Vec::new(), OcspMode::RequireStaple).await;
    assert_eq!(kind(&r), Some(ErrorKind::InvalidCertificate), "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::NotStapled);
    assert!(
        message(&r).starts_with("the server stapled no OCSP response; "),
        "{}",
        message(&r)
    );

    let server = serve(&leaf, Vec::new()).await;
    let r = run(monitor(server.port(), &pki, OcspMode::Off)).await;
    assert_eq!(r.status, Status::Passed);
    assert_eq!(r.tls.unwrap().ocsp, None);
}

#[tokio::test]
async fn query_mode_asks_the_responder_in_the_certificate() {
    let pki = OcspPki::new("query").expect("the OCSP test PKI");
    let responder = pki.responder(Signer::Delegated).await.expect("a responder");
    let url = responder.url();
    let good = pki.leaf(NAME, 0x1001, Some(&url)).expect("a leaf");
    let revoked = pki.leaf(NAME, 0x1002, Some(&url)).expect("a leaf");
    let at = days_from_now(-1).replace_nanosecond(0).unwrap();
    pki.set_index(&[
        (&good, Entry::Valid),
        (&revoked, Entry::Revoked(at, "superseded")),
    ])
    .expect("index.txt");

    let (r, ocsp) = check(&pki, &good, Vec::new(), OcspMode::Query).await;
    assert_eq!(r.status, Status::Passed, "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::Good, "{ocsp:?}");
    assert_eq!(ocsp.source, Some(OcspSource::Queried));
    assert_eq!(ocsp.responder.as_deref(), Some(url.as_str()));
    assert_eq!(responder.served(), 1);

    let (r, ocsp) = check(&pki, &revoked, Vec::new(), OcspMode::Query).await;
    assert_eq!(kind(&r), Some(ErrorKind::CertificateRevoked), "{r:?}");
    assert_eq!(
        (ocsp.revoked_at, ocsp.reason.as_deref()),
        (Some(at), Some("superseded"))
    );
    assert!(
        message(&r).contains(&format!("says the OCSP responder {url}")),
        "{}",
        message(&r)
    );
    let hints = &r.error.as_ref().unwrap().hints;
    assert!(
        hints.iter().any(|h| h.contains("openssl ocsp -issuer")),
        "{hints:?}"
    );

    // A stapled answer is used as it is: the responder is not asked.
    let answer = pki.answer(&good, Signer::Ca, 60).expect("an answer");
    let (_, ocsp) = check(&pki, &good, answer, OcspMode::Query).await;
    assert_eq!(
        (ocsp.status, ocsp.source),
        (OcspStatus::Good, Some(OcspSource::Stapled))
    );
    assert_eq!(responder.served(), 2);
}

#[tokio::test]
async fn query_mode_with_the_responder_down_is_unavailable_and_passes() {
    let port = refusing_port().expect("a closed port");
    let url = format!("http://127.0.0.1:{port}/");
    let (pki, leaf) = pki_with("down", Entry::Valid, Some(&url));
    let (r, ocsp) = check(&pki, &leaf, Vec::new(), OcspMode::Query).await;
    assert_eq!(r.status, Status::Passed, "{r:?}");
    assert_eq!(ocsp.status, OcspStatus::Unavailable);
    assert_eq!(ocsp.responder.as_deref(), Some(url.as_str()));
    let problem = ocsp.problem.unwrap();
    assert!(
        problem.starts_with(&format!("the responder {url} could not be asked: ")),
        "{problem}"
    );
}
