//! The demo's loopback services: each answers a few fixed turns of its protocol, and the
//! SMTP one upgrades to TLS with a certificate made at start that expires in 10 days.
//! Product code of `demo`, kept apart from the test helpers of `monitor-testing`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// One turn of a demo conversation: wait until the client has sent `wait_for` (nothing
/// for a greeting), then answer `reply`.
pub(super) type Turn = (&'static str, &'static str);

/// What a demo service says on each connection.
#[derive(Default)]
pub(super) struct Conversation {
    /// A pause before the first turn, to look slow.
    pub delay: Duration,
    /// The turns in plain text.
    pub plain: &'static [Turn],
    /// When set, a TLS handshake after `plain` with this configuration, then `secure`.
    pub tls: Option<Arc<ServerConfig>>,
    /// The turns over TLS.
    pub secure: &'static [Turn],
}

/// A running demo service; stops when dropped.
pub(super) struct Service {
    port: u16,
    task: JoinHandle<()>,
}

impl Service {
    /// Starts `conversation` on a free port of 127.0.0.1.
    pub async fn start(conversation: Conversation) -> io::Result<Service> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        let conversation = Arc::new(conversation);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conversation = conversation.clone();
                // A client that goes away early is normal for the demo.
                tokio::spawn(async move { drop(converse(stream, &conversation).await) });
            }
        });
        Ok(Service { port, task })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port on which nothing listens.
pub(super) fn refused_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

async fn converse(mut stream: TcpStream, c: &Conversation) -> io::Result<()> {
    tokio::time::sleep(c.delay).await;
    turns(&mut stream, c.plain).await?;
    match &c.tls {
        None => hold(stream).await,
        Some(config) => {
            let mut tls = TlsAcceptor::from(config.clone()).accept(stream).await?;
            turns(&mut tls, c.secure).await?;
            hold(tls).await
        }
    }
}

async fn turns<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, turns: &[Turn]) -> io::Result<()> {
    for (wait_for, reply) in turns {
        // Byte by byte, so nothing past the awaited text (a ClientHello) is consumed.
        let mut heard = Vec::new();
        while !heard.ends_with(wait_for.as_bytes()) {
            let mut byte = [0u8];
            if s.read(&mut byte).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            heard.push(byte[0]);
        }
        s.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// Keeps the connection open until the client closes it.
async fn hold<S: AsyncRead + Unpin>(mut s: S) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    while s.read(&mut sink).await? > 0 {}
    Ok(())
}

/// A demo CA and a server configuration for `name` whose certificate expires in `days`.
pub(super) fn tls_for(name: &str, days: i64) -> Result<(String, Arc<ServerConfig>), String> {
    let now = OffsetDateTime::now_utc();
    let made = |e: rcgen::Error| format!("cannot make the demo certificates: {e}");
    let ca_key = KeyPair::generate().map_err(made)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(made)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Monitor Demo CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(made)?;
    let key = KeyPair::generate().map_err(made)?;
    let mut leaf = CertificateParams::new(vec![name.to_owned()]).map_err(made)?;
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(days);
    let cert = leaf
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .map_err(made)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, der))
            .map_err(|e| format!("cannot configure the demo TLS service: {e}"))?;
    Ok((ca_cert.pem(), Arc::new(config)))
}
