//! The PostgreSQL login's SCRAM-SHA-256 exchange against known values: a reference
//! computation of RFC 5802 (ring's PBKDF2 and HMAC) checked against RFC 7677's example,
//! then a loopback server that speaks the PostgreSQL side with that reference and RFC
//! 7677's salt, iteration count and password, judging the engine's proof and signing (or
//! forging) its final message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use monitor_core::model::login::Login;
use monitor_core::{CheckResult, Engine, ErrorKind, Recipe, TcpMonitor};

/// RFC 7677 section 3: the password, salt and iteration count.
const PASSWORD: &str = "pencil";
const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const ITERATIONS: u32 = 4096;
/// The server's part of the nonce in RFC 7677's example.
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// RFC 5802's client proof and server signature for `auth_message`.
fn proof_and_signature(password: &str, auth_message: &str) -> (Vec<u8>, Vec<u8>) {
    let salt = B64.decode(SALT).unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(ITERATIONS).unwrap(),
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = hmac256(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, &client_key);
    let client_signature = hmac256(stored_key.as_ref(), auth_message.as_bytes());
    let proof = client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac256(&salted, b"Server Key");
    (proof, hmac256(&server_key, auth_message.as_bytes()))
}

#[test]
fn the_reference_computation_matches_rfc_7677() {
    let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first = format!("r=rOprNGfwEbeRWgbNEkqO{SERVER_NONCE},s={SALT},i={ITERATIONS}");
    let client_final_bare = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO{SERVER_NONCE}");
    let auth = format!("{client_first_bare},{server_first},{client_final_bare}");
    let (proof, signature) = proof_and_signature(PASSWORD, &auth);
    assert_eq!(
        B64.encode(proof),
        "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(
        B64.encode(signature),
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}

/// One backend message: its type, then Int32 length and `body`.
fn backend(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn auth(code: u32, data: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(data);
    backend(b'R', &body)
}

/// Reads one frontend message (`typed`: with a type byte); its body.
async fn read_message(s: &mut TcpStream, typed: bool) -> Vec<u8> {
    if typed {
        s.read_u8().await.unwrap();
    }
    let len = s.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.unwrap();
    body
}

/// What the fake server does with the client's final SCRAM message.
#[derive(Clone, Copy, PartialEq)]
enum Finale {
    /// Checks the proof and signs honestly.
    Honest,
    /// Accepts any proof and sends a signature made with another password.
    Forged,
}

/// Serves one SCRAM login as PostgreSQL does (without channel binding), then answers
/// the two queries with one value each; the client's proof must match [`PASSWORD`].
async fn serve(listener: TcpListener, finale: Finale) {
    let (mut s, _) = listener.accept().await.unwrap();
    read_message(&mut s, false).await; // startup
    s.write_all(&auth(10, b"SCRAM-SHA-256\0\0")).await.unwrap();
    let initial = read_message(&mut s, true).await;
    let mechanism_end = initial.iter().position(|b| *b == 0).unwrap();
    assert_eq!(&initial[..mechanism_end], b"SCRAM-SHA-256");
    let client_first = String::from_utf8(initial[mechanism_end + 5..].to_vec()).unwrap();
    // Without TLS the client says it does not support channel binding.
    let bare = client_first.strip_prefix("n,,").expect("gs2 header n,,");
    let nonce = bare.split(",r=").nth(1).unwrap();
    let server_first = format!("r={nonce}{SERVER_NONCE},s={SALT},i={ITERATIONS}");
    s.write_all(&auth(11, server_first.as_bytes()))
        .await
        .unwrap();
    let client_final = String::from_utf8(read_message(&mut s, true).await).unwrap();
    let (without_proof, proof) = client_final.split_once(",p=").unwrap();
    assert_eq!(
        without_proof,
        format!("c=biws,r={nonce}{SERVER_NONCE}"),
        "c= is base64 of n,,"
    );
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let (expected, signature) = proof_and_signature(PASSWORD, &auth_message);
    if finale == Finale::Honest && B64.decode(proof).unwrap() != expected {
        let error =
            b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"monitor\"\0\0";
        s.write_all(&backend(b'E', error)).await.unwrap();
        return;
    }
    let signature = match finale {
        Finale::Honest => signature,
        Finale::Forged => proof_and_signature("not pencil", &auth_message).1,
    };
    let last = format!("v={}", B64.encode(signature));
    s.write_all(&auth(12, last.as_bytes())).await.unwrap();
    if finale == Finale::Forged {
        // The client must hang up rather than go on.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        return;
    }
    s.write_all(&auth(0, b"")).await.unwrap();
    s.write_all(&backend(b'S', b"server_version\x0015.99 (rfc 7677)\0"))
        .await
        .unwrap();
    s.write_all(&backend(b'Z', b"I")).await.unwrap();
    for value in [&b"f"[..], b"1"] {
        read_message(&mut s, true).await; // Query
        let mut row = 1u16.to_be_bytes().to_vec();
        row.extend_from_slice(&(value.len() as u32).to_be_bytes());
        row.extend_from_slice(value);
        s.write_all(&backend(b'D', &row)).await.unwrap();
        s.write_all(&backend(b'C', b"SELECT 1\0")).await.unwrap();
        s.write_all(&backend(b'Z', b"I")).await.unwrap();
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
}

async fn login(password: &'static str, finale: Finale) -> CheckResult {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve(listener, finale));
    let spec = TcpMonitor::new("scram", "127.0.0.1", port)
        .recipe(Recipe::postgres_login(
            "monitor",
            None,
            Login::password_env("PG_PW"),
        ))
        .validate()
        .unwrap();
    let engine =
        Engine::new().with_secrets(move |name| (name == "PG_PW").then(|| password.to_owned()));
    let r = engine.check(&spec).await;
    server.await.unwrap();
    assert!(!r.to_json().contains(password), "{}", r.to_json());
    r
}

#[tokio::test]
async fn the_right_password_passes_rfc_7677s_exchange() {
    let r = login(PASSWORD, Finale::Honest).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(r.facts["auth_method"], "scram-sha-256");
    assert_eq!(r.facts["server_version"], "15.99 (rfc 7677)");
    assert_eq!(r.facts["in_recovery"], "no");
    assert_eq!(r.facts["query_first_value"], "1");
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_the_server() {
    let r = login("not pencil", Finale::Honest).await;
    let e = r.error.expect("an error");
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed);
    assert!(
        e.message.contains("28P01") || e.message.contains("password authentication failed"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_server_that_cannot_sign_is_not_trusted() {
    let r = login(PASSWORD, Finale::Forged).await;
    let e = r.error.expect("an error");
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed);
    assert!(e.message.contains("does not verify"), "{}", e.message);
}

/// A server that reads the startup message, then sends each of `replies` after reading
/// one more client message (the first right away), then closes.
async fn hostile(replies: Vec<Vec<u8>>) -> CheckResult {
    hostile_with(Login::password_env("PG_PW"), replies).await
}

/// [`hostile`] for a monitor logging in with `login`; the password never in the result.
async fn hostile_with(login: Login, replies: Vec<Vec<u8>>) -> CheckResult {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_message(&mut s, false).await;
        for (i, reply) in replies.into_iter().enumerate() {
            if i > 0 {
                read_message(&mut s, true).await;
            }
            s.write_all(&reply).await.unwrap();
        }
    });
    let spec = TcpMonitor::new("hostile", "127.0.0.1", port)
        .recipe(Recipe::postgres_login("monitor", None, login))
        .timeouts(2_000, 2_000, 5_000)
        .thresholds(4_000, 5_000)
        .validate()
        .unwrap();
    let engine = Engine::new().with_secrets(|_| Some(PASSWORD.to_owned()));
    let r = engine.check(&spec).await;
    server.await.unwrap();
    assert!(!r.to_json().contains(PASSWORD), "{}", r.to_json());
    r
}

#[tokio::test]
async fn broken_authentication_messages_fail_the_login_without_panicking() {
    // md5 without its salt.
    let r = hostile(vec![auth(5, b"")]).await;
    assert_eq!(r.error.unwrap().kind, ErrorKind::AuthenticationFailed);
    // A SCRAM server-first message that is not one.
    let r = hostile(vec![
        auth(10, b"SCRAM-SHA-256\0\0"),
        auth(11, b"r=,s=!!,i=x"),
    ])
    .await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "{}", e.message);
    // SASLFinal before any SASL exchange, and a method the monitor cannot answer.
    let r = hostile(vec![auth(12, b"v=AAAA")]).await;
    assert_eq!(r.error.unwrap().kind, ErrorKind::AuthenticationFailed);
    let r = hostile(vec![auth(7, b"")]).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed);
    assert!(e.message.contains("gss"), "{}", e.message);
}

#[tokio::test]
async fn a_row_shorter_than_it_says_is_not_a_value() {
    let mut short_row = 1u16.to_be_bytes().to_vec();
    short_row.extend_from_slice(&1000u32.to_be_bytes());
    short_row.extend_from_slice(b"abc");
    let answer = [
        backend(b'D', &short_row),
        backend(b'C', b"SELECT 1\0"),
        backend(b'Z', b"I"),
    ]
    .concat();
    let r = hostile(vec![
        [auth(5, b"salt")].concat(),
        [auth(0, b""), backend(b'Z', b"I")].concat(),
        answer.clone(),
        answer,
    ])
    .await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(r.facts["auth_method"], "md5");
    assert_eq!(r.facts["in_recovery"], "no");
    assert_eq!(r.facts["query_first_value"], "NULL");
}

/// One DataRow of `values` (`None`: NULL), its CommandComplete and ReadyForQuery.
fn answer(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut row = (values.len() as u16).to_be_bytes().to_vec();
    for value in values {
        match value {
            Some(v) => {
                row.extend_from_slice(&(v.len() as u32).to_be_bytes());
                row.extend_from_slice(v);
            }
            None => row.extend_from_slice(&u32::MAX.to_be_bytes()),
        }
    }
    [
        backend(b'D', &row),
        backend(b'C', b"SELECT 1\0"),
        backend(b'Z', b"I"),
    ]
    .concat()
}

/// A server asking for the password in clear, then (if it gets one) serving `recovery`
/// as the answer to the recovery query; what it read of the password is returned.
async fn cleartext(login: Login, startup: Vec<u8>, recovery: Vec<u8>) -> (CheckResult, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_message(&mut s, false).await;
        s.write_all(&auth(3, b"")).await.unwrap();
        let mut got = Vec::new();
        if s.read_u8().await.is_err() {
            return got; // the monitor hung up without answering
        }
        let len = s.read_u32().await.unwrap() as usize;
        got = vec![0; len - 4];
        s.read_exact(&mut got).await.unwrap();
        s.write_all(&[auth(0, b""), startup, backend(b'Z', b"I")].concat())
            .await
            .unwrap();
        read_message(&mut s, true).await;
        s.write_all(&recovery).await.unwrap();
        read_message(&mut s, true).await;
        s.write_all(&answer(&[Some(b"1")])).await.unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        got
    });
    let spec = TcpMonitor::new("cleartext", "127.0.0.1", port)
        .recipe(Recipe::postgres_login("monitor", None, login))
        .timeouts(2_000, 2_000, 5_000)
        .thresholds(4_000, 5_000)
        .validate()
        .unwrap();
    let engine = Engine::new().with_secrets(|_| Some(PASSWORD.to_owned()));
    let r = engine.check(&spec).await;
    let got = server.await.unwrap();
    assert!(!r.to_json().contains(PASSWORD), "{}", r.to_json());
    (r, got)
}

#[tokio::test]
async fn a_cleartext_request_without_tls_gets_no_password() {
    let primary = answer(&[Some(b"f"), Some(b"0"), Some(b"off")]);
    let (r, got) = cleartext(Login::password_env("PG_PW"), Vec::new(), primary.clone()).await;
    assert!(got.is_empty(), "the password was sent");
    let e = r.error.expect("an error");
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "{}", e.message);
    assert!(e.message.contains("in clear"), "{}", e.message);
    let hints = e.hints.join("\n");
    for hint in ["starttls", "scram-sha-256", "allow_plaintext"] {
        assert!(hints.contains(hint), "{hints}");
    }
    // allow_plaintext sends it, and the recovery row's facts are learned.
    let login = Login::password_env("PG_PW").allow_plaintext();
    let (r, got) = cleartext(login, Vec::new(), primary).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(got, format!("{PASSWORD}\0").into_bytes());
    assert_eq!(r.facts["auth_method"], "password");
    assert_eq!(r.facts["role"], "primary");
    assert_eq!(r.facts["read_only"], "no");
    assert_eq!(r.facts["replication_lag_ms"], "0");
}

#[tokio::test]
async fn the_recovery_row_and_startup_parameters_give_role_read_only_and_lag() {
    let login = || Login::password_env("PG_PW").allow_plaintext();
    // A standby behind by 1500 ms.
    let standby = answer(&[Some(b"t"), Some(b"1500"), Some(b"off")]);
    let (r, _) = cleartext(login(), Vec::new(), standby).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(r.facts["in_recovery"], "yes");
    assert_eq!(r.facts["role"], "replica");
    assert_eq!(r.facts["read_only"], "yes");
    assert_eq!(r.facts["replication_lag_ms"], "1500");
    // A standby whose lag is unknown (NULL) reports none.
    let unknown = answer(&[Some(b"t"), None, Some(b"off")]);
    let (r, _) = cleartext(login(), Vec::new(), unknown).await;
    assert_eq!(r.facts["role"], "replica");
    assert!(
        !r.facts.contains_key("replication_lag_ms"),
        "{}",
        r.to_json()
    );
    // A primary whose sessions are read-only, by the row or by the startup parameters.
    let read_only = answer(&[Some(b"f"), Some(b"0"), Some(b"on")]);
    let (r, _) = cleartext(login(), Vec::new(), read_only).await;
    assert_eq!(r.facts["role"], "primary");
    assert_eq!(r.facts["read_only"], "yes");
    let said = backend(b'S', b"default_transaction_read_only\0on\0");
    let writable = answer(&[Some(b"f"), Some(b"0"), Some(b"off")]);
    let (r, _) = cleartext(login(), said, writable).await;
    assert_eq!(r.facts["read_only"], "yes", "{}", r.to_json());
}
