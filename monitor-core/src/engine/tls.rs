//! TLS for a check: the rustls client settings (trust, client certificate, versions, ALPN),
//! a handshake that always captures the presented chain, the facts of every certificate,
//! and the classification of what went wrong into kinds with hints.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::classify;
use super::kernel::Watched;
use monitor_spec::escape::escape_excerpt;
use monitor_spec::result::ErrorKind;
use monitor_spec::spec::{PemSource, TcpMonitor, TlsMode, TlsVersion};

pub(crate) mod accepted;
pub(crate) mod ocsp;
pub mod policy;
pub(crate) mod shared;
pub(crate) mod words;

/// A TLS problem: its kind, what it is in words, and what to try.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub kind: ErrorKind,
    pub message: String,
    pub hints: Vec<String>,
}

impl Problem {
    pub fn new(kind: ErrorKind, message: String, hints: Vec<String>) -> Self {
        Problem {
            kind,
            message,
            hints,
        }
    }
}

/// A monitor's TLS settings made ready for handshakes. Built once per monitor.
pub(crate) struct Setup {
    /// The provider's signature algorithms, for each handshake's verifier.
    algorithms: WebPkiSupportedAlgorithms,
    /// The chain verifier over the trust anchors; `None` when `tls.ca` holds only
    /// certificates that can be trusted pinned and none as a CA.
    pub verifier: Option<Arc<WebPkiServerVerifier>>,
    /// The certificates of `tls.ca`: a server presenting exactly one of them as its leaf
    /// is trusted, as Go's crypto/tls and OpenSSL do.
    pinned: Vec<CertificateDer<'static>>,
    /// The trust anchors (each a subject and a public key), to recognise a self-signed
    /// leaf that is itself an anchor.
    roots: Arc<RootCertStore>,
    client: Option<Arc<CertifiedKey>>,
    /// The name verified and (for DNS names) sent as SNI.
    pub server_name: ServerName<'static>,
    /// The same, as text.
    pub name: String,
    /// How many trust anchors the verifier has.
    pub anchors: usize,
    /// The client configuration every handshake starts from, built once: building one
    /// makes rustls allocate a 256-server session cache (some 70 KB) that a check would
    /// only throw away, resumption being off.
    base: Result<ClientConfig, rustls::Error>,
    /// The chains `verifier` accepted, not verified again while in their dates.
    pub accepted: accepted::Accepted,
}

impl Setup {
    /// The trust anchors.
    pub fn roots(&self) -> &RootCertStore {
        &self.roots
    }
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The name a monitor's handshake verifies (and sends as SNI when it is a DNS name):
/// `tls.server_name`, or the target's host.
pub(crate) fn verified_name(spec: &TcpMonitor) -> &str {
    spec.tls.server_name.as_deref().unwrap_or(&spec.target.host)
}

static TLS12_AND_13: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

/// Loads the system trust store (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured).
pub(crate) fn system_roots() -> Arc<RootCertStore> {
    let loaded = rustls_native_certs::load_native_certs();
    for e in &loaded.errors {
        tracing::warn!(error = %e, "could not load some system CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    tracing::debug!(added, ignored, "loaded system CA certificates");
    Arc::new(roots)
}

pub(crate) use monitor_spec::pem::{parse_certs, parse_key};

impl Setup {
    /// Builds the settings; `system` gives the system trust store when the monitor names
    /// no CA, `pem` the text of a PEM setting (its field, its source: a file is read on
    /// the machine's secret policy). Errors say which setting could not be loaded.
    pub fn new(
        spec: &TcpMonitor,
        system: impl FnOnce() -> Arc<RootCertStore>,
        pem: impl Fn(&str, &PemSource) -> Result<String, String>,
    ) -> Result<Setup, String> {
        let tls = &spec.tls;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut pinned = Vec::new();
        let roots = match &tls.ca {
            None => system(),
            Some(source) => {
                let text = pem("tls.ca", source)?;
                let mut roots = RootCertStore::empty();
                for cert in parse_certs(&text).map_err(|e| format!("tls.ca: {e}"))? {
                    // A certificate that cannot anchor a chain (an X.509 v1 certificate,
                    // say) can still be pinned: it is trusted when the server presents it.
                    if let Err(e) = roots.add(cert.clone()) {
                        tracing::debug!(
                            error = %words::error(&e).1,
                            "a tls.ca certificate is only usable pinned"
                        );
                    }
                    pinned.push(cert);
                }
                Arc::new(roots)
            }
        };
        let anchors = roots.len();
        let kept = roots.clone();
        let verifier = if roots.is_empty() && !pinned.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("tls.ca: {e}"))?,
            )
        };
        let client = match &tls.client_cert {
            None => None,
            Some(cc) => {
                let chain = parse_certs(&pem("tls.client_cert.cert", &cc.cert)?)
                    .map_err(|e| format!("tls.client_cert.cert: {e}"))?;
                let key = parse_key(&pem("tls.client_cert.key", &cc.key)?)
                    .map_err(|e| format!("tls.client_cert.key: {e}"))?;
                let key = provider
                    .key_provider
                    .load_private_key(key)
                    .map_err(|e| format!("tls.client_cert.key: {e}"))?;
                Some(Arc::new(CertifiedKey::new(chain, key)))
            }
        };
        let name = verified_name(spec).to_owned();
        let server_name = match name.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(name.clone())
                .map_err(|e| format!("tls.server_name: `{name}` is not a valid name: {e}"))?,
        };
        let versions: &'static [&'static rustls::SupportedProtocolVersion] = match tls.min_version {
            TlsVersion::Tls12 => &TLS12_AND_13,
            TlsVersion::Tls13 => &TLS13_ONLY,
        };
        let alpn: Vec<Vec<u8>> = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let base = base_config(&provider, versions, alpn);
        Ok(Setup {
            algorithms: provider.signature_verification_algorithms,
            verifier,
            pinned,
            roots: kept,
            client,
            server_name,
            name,
            anchors,
            base,
            accepted: accepted::Accepted::default(),
        })
    }

    /// Whether `leaf` is, byte for byte, a certificate given in `tls.ca`.
    /// Also true for a self-signed leaf whose subject and public key are those of a trust
    /// anchor (the same certificate re-issued, or one installed in the system store): the
    /// handshake proved the server holds the anchor's key, as OpenSSL and Go accept.
    /// `self_issued` is what the leaf's parsed information says (false only when its
    /// subject and issuer differ): a leaf issued by another never matches an anchor, and
    /// is not parsed again to learn so.
    pub fn is_pinned(&self, leaf: &CertificateDer<'_>, self_issued: bool) -> bool {
        if self.pinned.iter().any(|p| p.as_ref() == leaf.as_ref()) {
            return true;
        }
        if !self_issued {
            return false;
        }
        use x509_parser::prelude::{FromDer, X509Certificate};
        let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else {
            return false;
        };
        let subject = cert.subject().as_raw();
        if subject != cert.issuer().as_raw() {
            return false;
        }
        let (Some(subject), Some(spki)) =
            (der_contents(subject), der_contents(cert.public_key().raw))
        else {
            return false;
        };
        self.roots.roots.iter().any(|anchor| {
            anchor.subject.as_ref() == subject && anchor.subject_public_key_info.as_ref() == spki
        })
    }

    /// A client configuration for one handshake, capturing into `capture`: the base
    /// configuration with this handshake's verifier and client certificate resolver.
    fn config(&self, capture: &Arc<Capture>) -> Result<ClientConfig, rustls::Error> {
        let mut config = self.base.clone()?;
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(Capturing {
                capture: capture.clone(),
                algorithms: self.algorithms,
            }));
        config.client_auth_cert_resolver = Arc::new(ClientAuth {
            capture: capture.clone(),
            key: self.client.clone(),
        });
        Ok(config)
    }
}

/// The configuration [`Setup::config`] completes: the versions, ALPN, no resumption (a
/// check sees the full handshake every time), and a verifier and resolver that each
/// handshake replaces.
fn base_config(
    provider: &Arc<CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, rustls::Error> {
    let unused = Arc::new(Capture::default());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Capturing {
            capture: unused.clone(),
            algorithms: provider.signature_verification_algorithms,
        }))
        .with_client_cert_resolver(Arc::new(ClientAuth {
            capture: unused,
            key: None,
        }));
    config.alpn_protocols = alpn;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The contents of a DER element (what follows its tag and length), as webpki keeps a
/// trust anchor's subject and key.
fn der_contents(element: &[u8]) -> Option<&[u8]> {
    let first = *element.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        let bytes = element.get(2..2 + n)?;
        if n == 0 || n > 4 {
            return None;
        }
        (
            2 + n,
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
        )
    };
    element.get(header..header.checked_add(len)?)
}

/// What one handshake saw, filled in while it runs.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    /// The stapled OCSP answer (empty when none; rustls bounds it by its handshake
    /// message size, 64 KiB).
    ocsp: Mutex<Vec<u8>>,
    asked_for_client_cert: AtomicBool,
}

impl Capture {
    /// Whether the server asked for a client certificate.
    pub fn asked(&self) -> bool {
        self.asked_for_client_cert.load(Ordering::Relaxed)
    }

    /// The OCSP answer the server stapled (empty when none).
    pub fn ocsp(&self) -> Vec<u8> {
        self.ocsp.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The chain the server presented, leaf first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Accepts any chain during the handshake (signatures are still checked) and keeps it, so
/// that it can be reported and judged after the handshake even when it is invalid.
#[derive(Debug)]
struct Capturing {
    capture: Arc<Capture>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Capturing {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut ocsp) = self.capture.ocsp.lock() {
            ocsp.clear();
            ocsp.extend_from_slice(ocsp_response);
        }
        if let Ok(mut chain) = self.capture.chain.lock() {
            chain.clear();
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Offers the configured client certificate and notes that the server asked for one.
#[derive(Debug)]
struct ClientAuth {
    capture: Arc<Capture>,
    key: Option<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for ClientAuth {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.capture
            .asked_for_client_cert
            .store(true, Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// A stream that remembers the first bytes the server sent, to recognise a server that
/// answers a ClientHello in plaintext.
#[derive(Debug)]
pub(crate) struct Recording<S> {
    inner: S,
    first: Vec<u8>,
}

const RECORDED: usize = 128;

impl<S> Recording<S> {
    pub fn new(inner: S) -> Self {
        Recording {
            inner,
            first: Vec::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let first = &mut self.first;
        if first.len() < RECORDED {
            let new = buf.filled().get(before..).unwrap_or_default();
            let take = new.len().min(RECORDED - first.len());
            first.extend_from_slice(&new[..take]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    // rustls queues a flight's records (ChangeCipherSpec and Finished) as separate
    // buffers: written together they leave in one system call and one segment, where
    // `poll_write`'s default would send each on its own.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The TLS stream a dialog continues over.
pub(crate) type Stream<'w> = TlsStream<Recording<Watched<'w>>>;

/// What a completed handshake negotiated.
#[derive(Debug)]
pub(crate) struct Negotiated {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
}

/// A failed handshake: the problem, what was captured, and whether the failure looks like
/// a protocol version mismatch (worth asking the legacy probe about).
#[derive(Debug)]
pub(crate) struct Failed {
    pub problem: Problem,
    pub version_mismatch: bool,
}

/// Runs the handshake on a connected (and, for STARTTLS, upgraded) stream.
pub(crate) async fn handshake<'w>(
    setup: &Setup,
    capture: &Arc<Capture>,
    stream: Watched<'w>,
    spec: &TcpMonitor,
) -> Result<(Stream<'w>, Negotiated), Failed> {
    let config = setup.config(capture).map_err(|e| Failed {
        problem: Problem::new(
            ErrorKind::TlsConfig,
            format!("the TLS settings cannot be used: {}", words::error(&e).1),
            vec![],
        ),
        version_mismatch: false,
    })?;
    let connector = TlsConnector::from(Arc::new(config));
    let connecting = connector
        .connect(setup.server_name.clone(), Recording::new(stream))
        .into_fallible();
    match connecting.await {
        Ok(stream) => {
            let (_, conn) = stream.get_ref();
            let negotiated = Negotiated {
                version: conn.protocol_version().map(version_name),
                cipher: conn
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite())),
                alpn: conn
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
            };
            Ok((stream, negotiated))
        }
        Err((error, recorded)) => Err(classify_handshake(
            spec,
            setup,
            capture,
            &error,
            &recorded.first,
        )),
    }
}

/// `TLSv1.3` and so on, as openssl names versions.
pub(crate) fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".to_owned(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The command that shows the handshake by hand.
pub(crate) fn s_client(spec: &TcpMonitor, name: &str) -> String {
    let t = &spec.target;
    let connect = t.to_string();
    let starttls = match (spec.tls.mode, spec.tls.starttls) {
        (TlsMode::Starttls, Some(p)) => format!(" -starttls {}", p.openssl_name()),
        _ => String::new(),
    };
    let sni = if name.parse::<IpAddr>().is_ok() {
        String::new()
    } else {
        format!(" -servername {name}")
    };
    format!(
        "look by hand: openssl s_client -connect {connect}{sni}{starttls} -showcerts </dev/null"
    )
}

/// The rustls error inside an I/O error, if any.
pub(crate) fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

fn classify_handshake(
    spec: &TcpMonitor,
    setup: &Setup,
    capture: &Capture,
    error: &io::Error,
    first: &[u8],
) -> Failed {
    let target = spec.target.to_string();
    let look = s_client(spec, &setup.name);
    let fail = |kind, message: String, mut hints: Vec<String>, version_mismatch| {
        hints.push(look.clone());
        Failed {
            problem: Problem::new(kind, message, hints),
            version_mismatch,
        }
    };
    // A TLS record starts with a content type 20..=23 and major version 3.
    let is_tls = |b: &[u8]| b.len() < 2 || ((0x14..=0x17).contains(&b[0]) && b[1] == 3);
    if !first.is_empty() && !is_tls(first) {
        return fail(
            ErrorKind::PlaintextResponse,
            format!(
                "{target} answered the TLS handshake in plaintext: `{}`",
                escape_excerpt(first, 80)
            ),
            vec![
                "the service may expect STARTTLS: set tls.mode to starttls with its protocol"
                    .to_owned(),
                "TLS may be served on another port (465 SMTPS, 993 IMAPS, 995 POP3S, 636 LDAPS)"
                    .to_owned(),
                "or TLS is not enabled on the service at all".to_owned(),
            ],
            false,
        );
    }
    let asked = capture.asked();
    let no_cert = spec.tls.client_cert.is_none();
    match rustls_error(error) {
        Some(rustls::Error::AlertReceived(alert)) => {
            let alert_name = format!("alert {}", words::alert_text(*alert));
            if asked
                && matches!(
                    alert,
                    AlertDescription::CertificateRequired
                        | AlertDescription::HandshakeFailure
                        | AlertDescription::BadCertificate
                        | AlertDescription::UnknownCA
                        | AlertDescription::AccessDenied
                        | AlertDescription::CertificateUnknown
                )
            {
                return client_cert_problem(spec, &look, &alert_name, no_cert);
            }
            match alert {
                AlertDescription::ProtocolVersion => fail(
                    ErrorKind::NoCommonProtocol,
                    format!(
                        "{target} shares no TLS version with the monitor (it sent {alert_name}; the monitor offers {})",
                        offered(spec)
                    ),
                    vec![
                        "the server may speak only TLS 1.0 or 1.1, which are deprecated: upgrade its TLS configuration".to_owned(),
                        "or tls.min_version is set higher than the server supports".to_owned(),
                    ],
                    true,
                ),
                _ => fail(
                    ErrorKind::HandshakeFailure,
                    format!("the TLS handshake with {target} failed: the server sent {alert_name}"),
                    vec![
                        "the server and the monitor may share no cipher suite or signature algorithm".to_owned(),
                        "the server may reject the SNI name; set tls.server_name to the name it serves".to_owned(),
                    ],
                    matches!(alert, AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity),
                ),
            }
        }
        Some(error @ rustls::Error::PeerIncompatible(_)) => fail(
            ErrorKind::NoCommonProtocol,
            format!(
                "{target} has no TLS version or cipher in common with the monitor: {}",
                words::error(error).1
            ),
            vec![
                "upgrade the server's TLS configuration to TLS 1.2 or 1.3 with modern ciphers"
                    .to_owned(),
            ],
            true,
        ),
        Some(other) => fail(
            words::error(other).0,
            format!(
                "the TLS handshake with {target} failed: {}",
                words::error(other).1
            ),
            vec![
                "the server's TLS implementation sent something the monitor cannot accept"
                    .to_owned(),
            ],
            false,
        ),
        None if asked
            && matches!(
                error.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            client_cert_problem(spec, &look, "a closed connection", no_cert)
        }
        None => {
            let what = match error.kind() {
                io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
                io::ErrorKind::ConnectionReset => "the server reset the connection".to_owned(),
                _ => error.to_string(),
            };
            let mut hints = vec![
                "the port may not serve TLS, or the server may reject the SNI name".to_owned(),
                "the server may speak only TLS 1.0 or 1.1, which the monitor does not offer"
                    .to_owned(),
            ];
            if matches!(
                error.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) {
                classify::proxy_hint(spec, first.is_empty(), &mut hints);
            }
            fail(
                ErrorKind::HandshakeFailure,
                format!("the TLS handshake with {target} failed: {what}"),
                hints,
                true,
            )
        }
    }
}

fn offered(spec: &TcpMonitor) -> &'static str {
    match spec.tls.min_version {
        TlsVersion::Tls12 => "TLS 1.2 and 1.3",
        TlsVersion::Tls13 => "TLS 1.3 only",
    }
}

fn client_cert_problem(spec: &TcpMonitor, look: &str, answer: &str, no_cert: bool) -> Failed {
    let target = spec.target.to_string();
    let (message, hints) = if no_cert {
        (
            format!(
                "{target} requires a client certificate and the monitor sent none (it answered with {answer})"
            ),
            vec![
                "set tls.client_cert with a certificate the server's CA issued, and its key"
                    .to_owned(),
            ],
        )
    } else {
        (
            format!("{target} rejected the monitor's client certificate (it answered with {answer})"),
            vec![
                "the client certificate may be expired, or issued by a CA the server does not trust".to_owned(),
                "check the server's client CA list: openssl s_client shows `Acceptable client certificate CA names`".to_owned(),
            ],
        )
    };
    let mut hints = hints;
    hints.push(look.to_owned());
    Failed {
        problem: Problem::new(ErrorKind::ClientCertificateRequired, message, hints),
        version_mismatch: false,
    }
}

/// A failure after the handshake that is the server rejecting the client certificate
/// (TLS 1.3 servers send that alert after the handshake).
pub(crate) fn post_handshake_client_cert(
    spec: &TcpMonitor,
    setup: &Setup,
    capture: &Capture,
    error: &io::Error,
) -> Option<Problem> {
    if !capture.asked() {
        return None;
    }
    let answer = match rustls_error(error) {
        Some(rustls::Error::AlertReceived(alert)) => format!("alert {}", words::alert_text(*alert)),
        None if matches!(
            error.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ) =>
        {
            "a closed connection".to_owned()
        }
        _ => return None,
    };
    let look = s_client(spec, &setup.name);
    Some(client_cert_problem(spec, &look, &answer, spec.tls.client_cert.is_none()).problem)
}
