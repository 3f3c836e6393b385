//! The MySQL login's `caching_sha2_password` (MySQL 8; MariaDB has no server side) against
//! a server scripted here from the documented exchange (MySQL 8 manual, "Caching SHA-2
//! Pluggable Authentication"; the client/server protocol's AuthMoreData): fast auth, full
//! auth over TLS (the password NUL-terminated), full auth without TLS through the RSA key
//! exchange (the server decrypts with its private key and checks the password), a wrong
//! password; `sha256_password` and `mysql_clear_password` after an AuthSwitchRequest; and
//! hostile servers (truncated packets, huge lengths, bad keys) that must never panic.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use monitor_core::model::login::Login;
use monitor_core::{
    CheckResult, Engine, ErrorKind, PemSource, Recipe, Status, TcpMonitor, TlsMode,
};
use monitor_testing::{TestPki, days_from_now};
use ring::digest::{Context as Hash, SHA256, digest};
use rsa::PrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const PASSWORD: &str = "sha2-secret-0b7e";
const VAR: &str = "MONITORS_SECRET_MY8";
const USER: &str = "app_monitor";

/// The operating system's random numbers (ring's), for the test key.
struct Os;

impl rsa::rand_core::TryRng for Os {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        use ring::rand::SecureRandom;
        ring::rand::SystemRandom::new()
            .fill(dst)
            .expect("the system's random numbers");
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for Os {}

/// The server's RSA key pair, made once (2048 bits, as MySQL's own).
fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::new(&mut Os, 2048).expect("an RSA key"))
}

/// The server's public key as MySQL sends it (PEM, `BEGIN PUBLIC KEY`).
fn public_pem() -> String {
    key()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM")
}

/// The test PKI: a leaf for `localhost` and the root PEM.
fn pki() -> &'static (Arc<rustls::ServerConfig>, String) {
    static PKI: OnceLock<(Arc<rustls::ServerConfig>, String)> = OnceLock::new();
    PKI.get_or_init(|| {
        let pki = TestPki::new().expect("test PKI");
        let leaf = pki
            .leaf(&["localhost"], days_from_now(-1), days_from_now(90))
            .expect("leaf");
        (leaf.server_config(true).expect("config"), pki.root_pem())
    })
}

/// What the scripted server does after the Handshake Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Fast auth: the scramble checked against the cached SHA256(SHA256(password)).
    Fast,
    /// Full auth (AuthMoreData 4): the password in TLS, or the RSA exchange without.
    Full,
    /// AuthSwitchRequest to `sha256_password` with a new nonce.
    SwitchSha256,
    /// AuthSwitchRequest to `mysql_clear_password`.
    SwitchClear,
}

/// What the server saw, for the test to assert on.
#[derive(Debug, Default, Clone)]
struct Seen {
    user: String,
    database: Option<String>,
    plugin: String,
    capabilities: u32,
    /// Whether the password checked out.
    accepted: bool,
    /// Every packet payload the client sent after the Handshake Response.
    after: Vec<Vec<u8>>,
    queries: Vec<String>,
    quit: bool,
    tls: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn read_packet(io: &mut (dyn Io + '_)) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 4];
    io.read_exact(&mut head).await.ok()?;
    let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
    let mut payload = vec![0; len];
    io.read_exact(&mut payload).await.ok()?;
    Some((head[3], payload))
}

async fn write_packet(io: &mut (dyn Io + '_), seq: u8, payload: &[u8]) {
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    let _ = io.write_all(&p).await;
    let _ = io.flush().await;
}

/// 20 random printable bytes, as MySQL makes its scrambles.
fn nonce() -> Vec<u8> {
    let mut bytes = [0u8; 20];
    rsa::rand_core::TryRng::try_fill_bytes(&mut Os, &mut bytes).unwrap();
    bytes.iter().map(|b| 0x21 + b % 0x5e).collect()
}

const CAPS: u32 = 0x0000_0001 // LONG_PASSWORD
    | 0x0000_0008 // CONNECT_WITH_DB
    | 0x0000_0200 // PROTOCOL_41
    | 0x0000_2000 // TRANSACTIONS
    | 0x0000_8000 // SECURE_CONNECTION
    | 0x0002_0000 // MULTI_RESULTS
    | 0x0008_0000; // PLUGIN_AUTH
const CLIENT_SSL: u32 = 0x0800;

/// A MySQL 8.0 Initial Handshake (protocol 10) with `nonce`, naming
/// `caching_sha2_password`.
fn handshake(nonce: &[u8], tls: bool) -> Vec<u8> {
    let caps = CAPS | if tls { CLIENT_SSL } else { 0 };
    let mut p = vec![10];
    p.extend_from_slice(b"8.0.36\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(&nonce[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0xff); // utf8mb4_0900_ai_ci
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&nonce[8..]);
    p.push(0);
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

fn ok_packet() -> Vec<u8> {
    vec![0, 0, 0, 2, 0, 0, 0]
}

fn err_packet(code: u16, state: &str, message: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(message.as_bytes());
    p
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Hash::new(&SHA256);
    for p in parts {
        h.update(p);
    }
    h.finish().as_ref().to_vec()
}

/// The server's fast-auth check: SHA256(stored, nonce) XOR the scramble is SHA256(password),
/// whose SHA-256 is the stored SHA256(SHA256(password)).
fn fast_auth_ok(scramble: &[u8], nonce: &[u8]) -> bool {
    let stored = digest(&SHA256, digest(&SHA256, PASSWORD.as_bytes()).as_ref());
    let mask = sha256(&[stored.as_ref(), nonce]);
    let stage1: Vec<u8> = scramble.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    scramble.len() == 32 && digest(&SHA256, &stage1).as_ref() == stored.as_ref()
}

/// The server's RSA check: OAEP(SHA-1) decryption, XOR the nonce, the password and a NUL.
fn rsa_ok(cipher: &[u8], nonce: &[u8]) -> bool {
    let Ok(plain) = key().oaep_decrypt::<sha1::Sha1>(cipher) else {
        return false;
    };
    let plain: Vec<u8> = plain
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ nonce[i % nonce.len()])
        .collect();
    plain == [PASSWORD.as_bytes(), b"\0"].concat()
}

/// A one-column text result set holding `value`.
async fn result_set(io: &mut (dyn Io + '_), value: &str) {
    write_packet(io, 1, &[1]).await;
    let mut column = Vec::new();
    for part in ["def", "", "", "", "v", ""] {
        column.push(part.len() as u8);
        column.extend_from_slice(part.as_bytes());
    }
    column.extend_from_slice(&[0x0c, 0x21, 0, 0, 1, 0, 0, 0xfd, 0, 0, 0x1f, 0, 0]);
    write_packet(io, 2, &column).await;
    write_packet(io, 3, &[0xfe, 0, 0, 2, 0]).await;
    let mut row = vec![value.len() as u8];
    row.extend_from_slice(value.as_bytes());
    write_packet(io, 4, &row).await;
    write_packet(io, 5, &[0xfe, 0, 0, 2, 0]).await;
}

/// Serves one connection as a MySQL 8 server with `flow`; what it saw.
async fn serve(stream: tokio::net::TcpStream, flow: Flow, tls: bool) -> Seen {
    let mut seen = Seen::default();
    let mut io: Box<dyn Io> = Box::new(stream);
    let mut nonce = nonce();
    write_packet(&mut *io, 0, &handshake(&nonce, tls)).await;
    let Some((mut seq, mut p)) = read_packet(&mut *io).await else {
        return seen;
    };
    if p.len() == 32 && u32::from_le_bytes(p[..4].try_into().unwrap()) & CLIENT_SSL != 0 {
        let Ok(stream) = TlsAcceptor::from(pki().0.clone()).accept(io).await else {
            return seen;
        };
        io = Box::new(stream);
        seen.tls = true;
        let Some(next) = read_packet(&mut *io).await else {
            return seen;
        };
        (seq, p) = next;
    }
    // Handshake Response 41.
    seen.capabilities = u32::from_le_bytes(p[..4].try_into().unwrap());
    let rest = &p[32..];
    let end = rest.iter().position(|b| *b == 0).unwrap();
    seen.user = String::from_utf8_lossy(&rest[..end]).into_owned();
    let rest = &rest[end + 1..];
    let auth = rest[1..1 + usize::from(rest[0])].to_vec();
    let mut rest = &rest[1 + usize::from(rest[0])..];
    if seen.capabilities & 0x08 != 0 {
        let end = rest.iter().position(|b| *b == 0).unwrap();
        seen.database = Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        rest = &rest[end + 1..];
    }
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    seen.plugin = String::from_utf8_lossy(&rest[..end]).into_owned();
    let next = |seen: &mut Seen, p: Vec<u8>| {
        seen.after.push(p.clone());
        p
    };
    seq = seq.wrapping_add(1);
    let accepted = match flow {
        Flow::Fast => {
            let ok = fast_auth_ok(&auth, &nonce);
            if ok {
                write_packet(&mut *io, seq, &[1, 3]).await;
                seq = seq.wrapping_add(1);
            }
            ok
        }
        Flow::Full | Flow::SwitchSha256 => {
            if flow == Flow::Full {
                write_packet(&mut *io, seq, &[1, 4]).await;
            } else {
                nonce = self::nonce();
                let mut switch = b"\xfesha256_password\0".to_vec();
                switch.extend_from_slice(&nonce);
                switch.push(0);
                write_packet(&mut *io, seq, &switch).await;
            }
            let Some((s, p)) = read_packet(&mut *io).await else {
                return seen;
            };
            let p = next(&mut seen, p);
            seq = s.wrapping_add(1);
            let key_request: &[u8] = if flow == Flow::Full { &[2] } else { &[1] };
            if seen.tls {
                p == [PASSWORD.as_bytes(), b"\0"].concat()
            } else if p == key_request {
                let mut more = vec![1];
                more.extend_from_slice(public_pem().as_bytes());
                write_packet(&mut *io, seq, &more).await;
                let Some((s, cipher)) = read_packet(&mut *io).await else {
                    return seen;
                };
                let cipher = next(&mut seen, cipher);
                seq = s.wrapping_add(1);
                rsa_ok(&cipher, &nonce)
            } else {
                false
            }
        }
        Flow::SwitchClear => {
            write_packet(&mut *io, seq, b"\xfemysql_clear_password\0").await;
            let Some((s, p)) = read_packet(&mut *io).await else {
                return seen;
            };
            let p = next(&mut seen, p);
            seq = s.wrapping_add(1);
            p == [PASSWORD.as_bytes(), b"\0"].concat()
        }
    };
    seen.accepted = accepted;
    if !accepted {
        let message = format!(
            "Access denied for user '{}'@'localhost' (using password: YES)",
            seen.user
        );
        write_packet(&mut *io, seq, &err_packet(1045, "28000", &message)).await;
        return seen;
    }
    write_packet(&mut *io, seq, &ok_packet()).await;
    while let Some((_, p)) = read_packet(&mut *io).await {
        match p.first() {
            Some(3) => {
                let query = String::from_utf8_lossy(&p[1..]).into_owned();
                seen.queries.push(query.clone());
                if query == "SELECT @@global.read_only" {
                    result_set(&mut *io, "0").await;
                } else if query.contains("missing") {
                    let message = "Table 'app.missing' doesn't exist";
                    write_packet(&mut *io, 1, &err_packet(1146, "42S02", message)).await;
                } else {
                    result_set(&mut *io, "42").await;
                }
            }
            Some(1) => {
                seen.quit = true;
                break;
            }
            _ => break,
        }
    }
    seen
}

/// A scripted MySQL 8 server serving one connection with `flow`, offering TLS when `tls`.
struct Mysql8 {
    port: u16,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl Mysql8 {
    async fn start(flow: Flow, tls: bool) -> Mysql8 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        tokio::spawn(async move {
            if let Ok((stream, _)) = listener.accept().await {
                let s = serve(stream, flow, tls).await;
                *record.lock().unwrap() = Some(s);
            }
        });
        Mysql8 { port, seen }
    }

    /// What the server saw (waiting for it to finish).
    async fn seen(&self) -> Seen {
        for _ in 0..200 {
            if let Some(seen) = self.seen.lock().unwrap().clone() {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the scripted server never finished");
    }
}

fn monitor(port: u16, login: Login) -> TcpMonitor {
    TcpMonitor::new("my-sha2", "127.0.0.1", port)
        .recipe(Recipe::mysql().with_login(login))
        .timeouts(5_000, 5_000, 15_000)
}

fn login() -> Login {
    Login::password_env(VAR).user(USER).database("app")
}

fn over_tls(spec: TcpMonitor) -> TcpMonitor {
    let root = pki().1.clone();
    spec.tls_with(|t| {
        t.mode = TlsMode::Starttls;
        t.ca = Some(PemSource::Pem(root));
        t.server_name = Some("localhost".into());
    })
}

/// Checks `spec` with `password` in [`VAR`]; asserts the password is in neither the
/// result nor the spec.
async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    let engine = Engine::new().with_secrets(move |name| (name == VAR).then(|| password.to_owned()));
    let r = engine.check(&spec.validate().expect("valid monitor")).await;
    for secret in [PASSWORD, password] {
        assert!(!r.to_json().contains(secret), "{}", r.to_json());
        assert!(!spec.to_json().contains(secret));
    }
    r
}

fn passed(r: &CheckResult) {
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(r.facts["auth_method"], "caching_sha2_password");
    assert_eq!(r.facts["read_only"], "no");
    assert_eq!(r.facts["query_first_value"], "42");
    assert_eq!(r.facts["server_version"], "8.0.36");
}

#[tokio::test]
async fn fast_auth_logs_in_without_sending_the_password() {
    let server = Mysql8::start(Flow::Fast, false).await;
    let r = check(monitor(server.port, login()), PASSWORD).await;
    passed(&r);
    let seen = server.seen().await;
    assert!(seen.accepted);
    assert_eq!(seen.user, USER);
    assert_eq!(seen.database.as_deref(), Some("app"));
    assert_eq!(seen.plugin, "caching_sha2_password");
    assert!(seen.after.is_empty(), "{:?}", seen.after);
    assert_eq!(seen.queries, ["SELECT @@global.read_only", "SELECT 1"]);
    assert!(seen.quit);
}

#[tokio::test]
async fn full_auth_over_tls_sends_the_password_in_the_tls_session() {
    let server = Mysql8::start(Flow::Full, true).await;
    let r = check(over_tls(monitor(server.port, login())), PASSWORD).await;
    passed(&r);
    assert!(r.tls.as_ref().unwrap().verified);
    let seen = server.seen().await;
    assert!(seen.tls && seen.accepted);
    assert_ne!(seen.capabilities & CLIENT_SSL, 0);
    assert_eq!(seen.after, [[PASSWORD.as_bytes(), b"\0"].concat()]);
}

#[tokio::test]
async fn full_auth_without_tls_encrypts_the_password_with_the_servers_key() {
    let server = Mysql8::start(Flow::Full, false).await;
    let r = check(monitor(server.port, login()), PASSWORD).await;
    passed(&r);
    let seen = server.seen().await;
    assert!(seen.accepted && !seen.tls);
    // The key request, then the ciphertext: 256 bytes (2048 bits), never the password.
    assert_eq!(seen.after[0], [2]);
    assert_eq!(seen.after[1].len(), 256);
    let plain = PASSWORD.as_bytes();
    assert!(!seen.after[1].windows(plain.len()).any(|w| w == plain));
}

#[tokio::test]
async fn a_wrong_password_is_authentication_failed_on_every_path() {
    for (flow, tls) in [(Flow::Fast, false), (Flow::Full, false), (Flow::Full, true)] {
        let server = Mysql8::start(flow, tls).await;
        let mut spec = monitor(server.port, login());
        if tls {
            spec = over_tls(spec);
        }
        let r = check(spec, "not-the-password").await;
        let e = r.error.as_ref().expect("an error");
        assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "{}", r.to_json());
        assert!(e.message.contains("error 1045 (28000)"), "{}", e.message);
        assert!(e.message.contains("Access denied"), "{}", e.message);
        let last = e.hints.last().unwrap();
        assert!(
            last.contains(&format!("MYSQL_PWD=\"${VAR}\" mysql --host=127.0.0.1 --port={} --user={USER} --database=app", server.port)),
            "{last}"
        );
        assert_eq!(tls, last.contains("--ssl"), "{last}");
        assert!(!server.seen().await.accepted);
    }
}

#[tokio::test]
async fn a_failing_query_is_query_failed_and_sha256_password_uses_rsa() {
    let server = Mysql8::start(Flow::SwitchSha256, false).await;
    let r = check(
        monitor(server.port, login().query("SELECT * FROM missing")),
        PASSWORD,
    )
    .await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::QueryFailed, "{}", r.to_json());
    assert!(
        e.hints[0].starts_with("error 1146 (42S02)"),
        "{:?}",
        e.hints
    );
    assert!(e.message.contains("SELECT * FROM missing"), "{}", e.message);
    assert_eq!(r.facts["auth_method"], "sha256_password");
    assert_eq!(r.facts["read_only"], "no");
    let seen = server.seen().await;
    assert!(seen.accepted);
    assert_eq!(seen.after[0], [1]);
}

#[tokio::test]
async fn the_clear_password_plugin_needs_tls_or_allow_plaintext() {
    let server = Mysql8::start(Flow::SwitchClear, false).await;
    let r = check(monitor(server.port, login()), PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "{}", r.to_json());
    assert!(e.message.contains("mysql_clear_password"), "{}", e.message);
    assert!(e.hints[0].contains("use TLS"), "{:?}", e.hints);
    let seen = server.seen().await;
    assert!(
        seen.after.is_empty(),
        "the password was sent: {:?}",
        seen.after
    );
    // Allowed in plain text, or over TLS, it is sent NUL-terminated.
    let server = Mysql8::start(Flow::SwitchClear, false).await;
    let r = check(monitor(server.port, login().allow_plaintext()), PASSWORD).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(r.facts["auth_method"], "mysql_clear_password");
    let server = Mysql8::start(Flow::SwitchClear, true).await;
    let r = check(over_tls(monitor(server.port, login())), PASSWORD).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert!(server.seen().await.tls);
}

/// A packet with `seq` and `payload`.
fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

/// Where a hostile server sends its bytes.
#[derive(Debug, Clone, Copy)]
enum At {
    /// In answer to the Handshake Response.
    Auth,
    /// After full auth (AuthMoreData 4) and the client's key request.
    Key,
    /// After OK, in answer to the first query.
    Query,
}

/// A server that greets with a valid handshake, plays along until `at`, sends `tail` and
/// closes its side, then reads until the client goes away (so nothing it sent is lost to
/// a reset).
async fn hostile(at: At, tail: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let mut io: Box<dyn Io> = Box::new(stream);
        write_packet(&mut *io, 0, &handshake(&nonce(), false)).await;
        let _ = read_packet(&mut *io).await;
        match at {
            At::Auth => {}
            At::Key => {
                write_packet(&mut *io, 2, &[1, 4]).await;
                let _ = read_packet(&mut *io).await;
            }
            At::Query => {
                write_packet(&mut *io, 2, &ok_packet()).await;
                let _ = read_packet(&mut *io).await;
            }
        }
        let _ = io.write_all(&tail).await;
        let _ = io.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    port
}

#[tokio::test]
async fn hostile_servers_fail_the_check_and_never_panic() {
    let key = |body: &str| {
        let mut p = b"\x01-----BEGIN PUBLIC KEY-----\n".to_vec();
        p.extend_from_slice(body.as_bytes());
        p.extend_from_slice(b"\n-----END PUBLIC KEY-----\n");
        packet(4, &p)
    };
    let columns = |rest: &[Vec<u8>]| {
        [vec![packet(1, &[1]), packet(2, b"x")], rest.to_vec()]
            .concat()
            .concat()
    };
    let eof = packet(3, &[0xfe, 0, 0, 2, 0]);
    let cases: Vec<(At, Vec<u8>)> = vec![
        (At::Auth, vec![]),                                  // closed
        (At::Auth, vec![5, 0, 0]),                           // truncated header
        (At::Auth, vec![0xff, 0xff, 0xff, 2]),               // 16 MiB announced
        (At::Auth, packet(2, &[])),                          // empty packet
        (At::Auth, packet(2, &[0xff, 0x15])),                // truncated error
        (At::Auth, packet(2, &[0xfe])),                      // old password switch
        (At::Auth, packet(2, b"\xfeno_nul_plugin")),         // switch, no NUL
        (At::Auth, packet(2, b"\xfeclient_ed25519\0short")), // a short ed25519 nonce
        (At::Auth, packet(2, b"\xfeauth_gssapi_client\0x")), // an unknown plugin
        (At::Auth, packet(2, &[1, 9])),                      // unknown AuthMoreData
        (At::Auth, packet(2, &[0x42])),                      // not an auth packet
        (At::Auth, packet(2, &[1, 3]).repeat(9)),            // endless fast-auth success
        (At::Key, key(&"A".repeat(3000))),                   // a key that is no key
        (At::Key, key("not base64")),                        // not base64
        (At::Key, packet(4, b"\x01\xff\xfe not text")),      // not text
        (At::Key, packet(4, &[1])),                          // empty
        (At::Query, packet(1, &[0xfb])),                     // LOCAL INFILE
        (At::Query, packet(1, &[0xfc, 0xff, 0xff])),         // 65535 columns
        (
            At::Query,
            packet(1, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ),
        (At::Query, packet(1, &[0xff])),             // an empty error
        (At::Query, packet(1, &[0x00, 0xfe])),       // OK cut in its affected rows
        (At::Query, packet(1, &[0x00, 0, 0, 8, 0])), // more results, then nothing
        (At::Query, columns(&[packet(3, b"not eof")])), // no EOF after the columns
        (
            At::Query,
            columns(&[eof.clone(), packet(4, &[0xfd, 0xff, 0xff])]),
        ), // cut row
        (
            At::Query,
            columns(&[
                eof.clone(),
                packet(4, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            ]),
        ),
        (
            At::Query,
            columns(&[eof.clone(), packet(4, b"\x01x").repeat(5000)]),
        ), // endless rows
    ];
    for (at, tail) in cases {
        let shown = format!("{at:?} {}", monitor_core::escape::escape_excerpt(&tail, 40));
        let port = hostile(at, tail).await;
        let spec = monitor(port, login().query("SELECT 1")).timeouts(2_000, 1_000, 5_000);
        let r = check(spec, PASSWORD).await;
        assert_eq!(r.status, Status::Failed, "{shown}: {}", r.to_json());
        let e = r.error.as_ref().unwrap();
        // Each fails on what it sent, not on a timeout.
        assert_ne!(e.kind, ErrorKind::ReadTimeout, "{shown}: {}", e.message);
    }
}
