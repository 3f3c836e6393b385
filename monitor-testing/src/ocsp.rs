//! A test PKI for OCSP: a CA, a responder it delegated OCSP signing to and a stranger's
//! responder (rcgen), written with an OpenSSL CA `index.txt` to a temp dir; answers made
//! by `openssl ocsp` acting as the responder, served by a loopback HTTP front (`openssl
//! ocsp -port` binds every interface) and stapled by rustls servers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::days_from_now;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest HTTP request the responder front reads.
const MAX_REQUEST: usize = 16 * 1024;

/// Who signs an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The CA itself.
    Ca,
    /// A responder certificate the CA issued with the OCSPSigning extended key usage.
    Delegated,
    /// A responder certificate with OCSPSigning issued by another CA.
    Stranger,
}

/// What `index.txt` says of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Valid.
    Valid,
    /// Revoked at that time, for that RFC 5280 reason (`keyCompromise`, ...).
    Revoked(OffsetDateTime, &'static str),
}

/// A CA with its responders, in a temp dir removed on drop.
#[derive(Debug)]
pub struct OcspPki {
    dir: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_pem: String,
}

/// A server certificate the CA issued, with its key.
#[derive(Debug, Clone)]
pub struct OcspLeaf {
    /// The certificate.
    pub cert: CertificateDer<'static>,
    /// Its serial number in hex, as `index.txt` and `openssl` write it.
    pub serial: String,
    /// The certificate as PEM.
    pub cert_pem: String,
    /// Its private key as PEM (PKCS#8).
    pub key_pem: String,
    /// The RFC 2253-like subject written to `index.txt`.
    subject: String,
    file: PathBuf,
    key_der: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), BoxError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl ({e}): install the Debian package `openssl`"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn authority(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = days_from_now(-2);
    params.not_after = days_from_now(3650);
    Ok(params)
}

fn responder_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    params.not_before = days_from_now(-1);
    params.not_after = days_from_now(365);
    Ok(params)
}

/// The Authority Information Access extension naming an OCSP responder.
fn aia(url: &str) -> CustomExtension {
    fn tlv(tag: u8, data: &[u8]) -> Vec<u8> {
        // Short URLs only: a one-byte length is enough for tests.
        let mut out = vec![tag, data.len() as u8];
        out.extend_from_slice(data);
        out
    }
    let method = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
    let location = tlv(0x86, url.as_bytes());
    let description = tlv(0x30, &[method, location].concat());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &description))
}

fn index_time(t: OffsetDateTime) -> String {
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl OcspPki {
    /// A CA named after `label`, a delegated responder and a stranger's responder.
    pub fn new(label: &str) -> Result<Self, BoxError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "monitor-ocsp-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)?;
        let ca_key = KeyPair::generate()?;
        let ca_params = authority(&format!("OCSP Test CA {label}"))?;
        let ca = ca_params.self_signed(&ca_key)?;
        std::fs::write(dir.join("ca.pem"), ca.pem())?;
        std::fs::write(dir.join("ca.key"), ca_key.serialize_pem())?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let delegated_key = KeyPair::generate()?;
        let delegated =
            responder_params("OCSP Test Responder")?.signed_by(&delegated_key, &issuer)?;
        std::fs::write(dir.join("delegated.pem"), delegated.pem())?;
        std::fs::write(dir.join("delegated.key"), delegated_key.serialize_pem())?;
        let other_key = KeyPair::generate()?;
        let other_params = authority("A Stranger's CA")?;
        let stranger_key = KeyPair::generate()?;
        let stranger = responder_params("A Stranger's Responder")?.signed_by(
            &stranger_key,
            &Issuer::from_params(&other_params, &other_key),
        )?;
        std::fs::write(dir.join("stranger.pem"), stranger.pem())?;
        std::fs::write(dir.join("stranger.key"), stranger_key.serialize_pem())?;
        std::fs::write(dir.join("index.txt"), "")?;
        Ok(OcspPki {
            dir,
            ca_params,
            ca_key,
            ca_pem: ca.pem(),
        })
    }

    /// The CA certificate as PEM, to trust with `tls.ca`.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A certificate for `name` with serial `serial`, naming `ocsp_url` as its responder.
    pub fn leaf(
        &self,
        name: &str,
        serial: u16,
        ocsp_url: Option<&str>,
    ) -> Result<OcspLeaf, BoxError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(90);
        if let Some(url) = ocsp_url {
            params.custom_extensions.push(aia(url));
        }
        let cert = params.signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key))?;
        let file = self.dir.join(format!("leaf-{serial:04X}.pem"));
        std::fs::write(&file, cert.pem())?;
        Ok(OcspLeaf {
            cert: cert.der().clone(),
            serial: format!("{serial:04X}"),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            subject: format!("/CN={name}"),
            file,
            key_der: key.serialize_der(),
        })
    }

    /// Writes `index.txt` with these certificates (others are unknown to the responder).
    pub fn set_index(&self, entries: &[(&OcspLeaf, Entry)]) -> Result<(), BoxError> {
        let expiry = index_time(days_from_now(90));
        let mut text = String::new();
        for (leaf, entry) in entries {
            let (flag, revoked) = match entry {
                Entry::Valid => ("V", String::new()),
                Entry::Revoked(at, reason) => ("R", format!("{},{reason}", index_time(*at))),
            };
            text.push_str(&format!(
                "{flag}\t{expiry}\t{revoked}\t{}\tunknown\t{}\n",
                leaf.serial, leaf.subject
            ));
        }
        std::fs::write(self.dir.join("index.txt"), text)?;
        // Two certificates for one name (a renewal) may both be listed.
        std::fs::write(self.dir.join("index.txt.attr"), "unique_subject = no\n")?;
        Ok(())
    }

    /// The answer `openssl ocsp` gives about `leaf`, signed by `signer`, current for
    /// `minutes` minutes.
    pub fn answer(
        &self,
        leaf: &OcspLeaf,
        signer: Signer,
        minutes: u32,
    ) -> Result<Vec<u8>, BoxError> {
        let file = leaf.file.to_string_lossy().into_owned();
        let req = format!("req-{}.der", leaf.serial);
        openssl(
            &self.dir,
            &[
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                &file,
                "-reqout",
                &req,
                "-no_nonce",
            ],
        )?;
        self.respond(&req, signer, minutes)
    }

    fn respond(&self, req: &str, signer: Signer, minutes: u32) -> Result<Vec<u8>, BoxError> {
        respond(&self.dir, req, signer, minutes)
    }

    /// An OCSP responder on 127.0.0.1 answering from `index.txt` as `openssl ocsp` does
    /// (each POSTed request is handed to `openssl ocsp -reqin`), stopped on drop.
    pub async fn responder(&self, signer: Signer) -> io::Result<Responder> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let dir = self.dir.clone();
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let dir = dir.clone();
                tokio::spawn(async move {
                    let Some(body) = read_post(&mut stream).await else {
                        return;
                    };
                    let req = format!("http-{n}.der");
                    let answer = tokio::task::spawn_blocking(move || {
                        std::fs::write(dir.join(&req), body)
                            .map_err(BoxError::from)
                            .and_then(|()| respond(&dir, &req, signer, 60))
                    })
                    .await;
                    let reply = match answer {
                        Ok(Ok(der)) => [
                            format!(
                                "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\n\r\n",
                                der.len()
                            )
                            .into_bytes(),
                            der,
                        ]
                        .concat(),
                        _ => b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&reply).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Responder { addr, served, task })
    }
}

fn respond(dir: &Path, req: &str, signer: Signer, minutes: u32) -> Result<Vec<u8>, BoxError> {
    let (cert, key) = match signer {
        Signer::Ca => ("ca.pem", "ca.key"),
        Signer::Delegated => ("delegated.pem", "delegated.key"),
        Signer::Stranger => ("stranger.pem", "stranger.key"),
    };
    let out = format!("{req}.resp");
    let minutes = minutes.to_string();
    openssl(
        dir,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-CA",
            "ca.pem",
            "-rsigner",
            cert,
            "-rkey",
            key,
            "-reqin",
            req,
            "-respout",
            &out,
            "-nmin",
            &minutes,
        ],
    )?;
    Ok(std::fs::read(dir.join(out))?)
}

/// Reads an HTTP POST's body (by its Content-Length), bounded by [`MAX_REQUEST`].
async fn read_post(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())?;
        if buf.len() >= end + 4 + length {
            return Some(buf[end + 4..end + 4 + length].to_vec());
        }
    }
}

impl Drop for OcspPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running OCSP responder.
#[derive(Debug)]
pub struct Responder {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Responder {
    /// Its URL, for a certificate's Authority Information Access.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// How many requests it received.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OcspLeaf {
    /// A rustls server configuration presenting this certificate and stapling `stapled`
    /// (nothing when empty).
    pub fn server_config(&self, stapled: Vec<u8>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert_with_ocsp(vec![self.cert.clone()], key, stapled)?;
        Ok(Arc::new(config))
    }

    /// The certificate file (PEM) in the PKI's directory.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Writes `answer` to a file beside the certificate and returns its path (for
    /// `openssl s_server -status_file`).
    pub fn write_answer(&self, answer: &[u8]) -> io::Result<PathBuf> {
        let path = self.file.with_extension("ocsp.der");
        std::fs::write(&path, answer)?;
        Ok(path)
    }
}
