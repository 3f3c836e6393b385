//! STARTTLS negotiation: each protocol's real opening dialog scripted on loopback, its
//! failures (not offered, refused, not the protocol, closed, too large), the exact bytes the
//! client sends, and mangled server bytes that must never panic.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use monitor_core::engine::starttls::{
    MAX_PLAINTEXT_BYTES, Negotiated, Stage, StartTlsError, StartTlsFailure, negotiate,
};
use monitor_core::spec::StartTls;
use monitor_testing::{Script, ScriptedServer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The name the client sends in EHLO.
const CLIENT: &str = "monitor.example.net";

/// Bound on every test's waiting, so that a bug fails a test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Helpers

/// A scripted dialog that also remembers every byte each side sends.
#[derive(Default)]
struct Dialog {
    script: Script,
    server: Vec<u8>,
    client: Vec<u8>,
}

impl Dialog {
    fn new() -> Self {
        Self::default()
    }
    /// The server sends these bytes.
    fn server(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.script = self.script.send(bytes.as_ref());
        self.server.extend_from_slice(bytes.as_ref());
        self
    }
    /// The server waits for exactly these bytes from the client.
    fn client(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.script = self.script.expect(bytes.as_ref());
        self.client.extend_from_slice(bytes.as_ref());
        self
    }
}

/// Connects to a server playing `script` and negotiates with the default client name.
async fn run(
    protocol: StartTls,
    script: Script,
) -> (Result<Negotiated, StartTlsError>, TcpStream, ScriptedServer) {
    run_as(protocol, script, CLIENT).await
}

/// Connects to a server playing `script` and negotiates as `client_name`.
async fn run_as(
    protocol: StartTls,
    script: Script,
    client_name: &str,
) -> (Result<Negotiated, StartTlsError>, TcpStream, ScriptedServer) {
    let server = ScriptedServer::start(script).await.expect("server starts");
    let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
    let result = tokio::time::timeout(LIMIT, negotiate(&mut stream, protocol, client_name))
        .await
        .expect("negotiate finishes in time");
    (result, stream, server)
}

/// Plays a successful dialog: checks the greeting and the transcript, then proves the
/// streams are in sync: the server, having seen every expected command, waits for a
/// marker from the client (standing in for the ClientHello) and answers `DONE`.
async fn succeed(protocol: StartTls, dialog: Dialog, greeting: Option<&str>) {
    let script = dialog.script.expect("HELLO").send("DONE");
    let (result, mut stream, _server) = run(protocol, script).await;
    let negotiated = result.unwrap_or_else(|e| panic!("{protocol:?} negotiation failed: {e}"));
    assert_eq!(negotiated.greeting.as_deref(), greeting, "{protocol:?}");
    assert_eq!(negotiated.transcript, dialog.server, "{protocol:?}");
    stream.write_all(b"HELLO").await.expect("marker sent");
    let mut done = [0u8; 4];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut done))
        .await
        .expect("server answers the marker in time")
        .expect("server answers the marker");
    assert_eq!(&done, b"DONE", "{protocol:?}");
}

/// Negotiates against `script`, checks the failure's class, protocol and that its message
/// holds every one of `words`; returns the error for further checks.
async fn check(
    protocol: StartTls,
    script: Script,
    kind: StartTlsFailure,
    words: &[&str],
) -> StartTlsError {
    let (result, _stream, _server) = run(protocol, script).await;
    let error = match result {
        Ok(n) => panic!("{protocol:?}: expected {kind:?}, negotiated {n:?}"),
        Err(e) => e,
    };
    let message = error.to_string();
    assert_eq!(error.kind(), kind, "{message}");
    assert_eq!(error.protocol(), protocol, "{message}");
    assert!(
        message.contains(protocol.openssl_name()),
        "names the protocol: {message}"
    );
    for word in words {
        assert!(message.contains(word), "{word:?} not in: {message}");
    }
    assert!(!message.ends_with('.'), "no final period: {message}");
    error
}

/// An in-memory stream: reads give `input` in chunks of at most `chunk` bytes, then end;
/// writes are recorded.
struct Canned {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
    written: Vec<u8>,
}

impl Canned {
    fn new(input: &[u8], chunk: usize) -> Self {
        Canned {
            input: input.to_vec(),
            at: 0,
            chunk: chunk.max(1),
            written: Vec::new(),
        }
    }
}

impl AsyncRead for Canned {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.input[this.at..];
        let n = rest.len().min(this.chunk).min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Canned {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().written.extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Negotiates over a [`Canned`] stream; returns the result and what the client wrote.
fn run_canned(
    protocol: StartTls,
    input: &[u8],
    chunk: usize,
) -> (Result<Negotiated, StartTlsError>, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut stream = Canned::new(input, chunk);
    let result = runtime.block_on(negotiate(&mut stream, protocol, CLIENT));
    (result, stream.written)
}

// ---------------------------------------------------------------------------------------
// The real dialogs

const POSTFIX_GREETING: &str = "220 mail.example.com ESMTP Postfix (Debian/GNU)";
const POSTFIX_EHLO: &str = "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";

fn smtp_postfix() -> Dialog {
    Dialog::new()
        .server(format!("{POSTFIX_GREETING}\r\n"))
        .client("EHLO monitor.example.net\r\n")
        .server(POSTFIX_EHLO)
        .client("STARTTLS\r\n")
        .server("220 2.0.0 Ready to start TLS\r\n")
}

const DOVECOT_IMAP_GREETING: &str = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.";

fn imap_dovecot() -> Dialog {
    Dialog::new()
        .server(format!("{DOVECOT_IMAP_GREETING}\r\n"))
        .client("a002 STARTTLS\r\n")
        .server("a002 OK Begin TLS negotiation now.\r\n")
}

fn imap_capability_command() -> Dialog {
    Dialog::new()
        .server("* OK IMAP4rev1 Service Ready\r\n")
        .client("a001 CAPABILITY\r\n")
        .server("* CAPABILITY IMAP4rev1 starttls LOGINDISABLED\r\na001 OK CAPABILITY completed\r\n")
        .client("a002 STARTTLS\r\n")
        .server("* OK still here\r\na002 OK Begin TLS negotiation now\r\n")
}

const DOVECOT_POP3_CAPA: &str = "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL PLAIN\r\n.\r\n";

fn pop3_dovecot() -> Dialog {
    Dialog::new()
        .server("+OK Dovecot (Debian) ready.\r\n")
        .client("CAPA\r\n")
        .server(DOVECOT_POP3_CAPA)
        .client("STLS\r\n")
        .server("+OK Begin TLS negotiation now.\r\n")
}

fn ftp_vsftpd() -> Dialog {
    Dialog::new()
        .server("220 (vsFTPd 3.0.3)\r\n")
        .client("AUTH TLS\r\n")
        .server("234 Proceed with negotiation.\r\n")
}

fn ftp_multiline() -> Dialog {
    Dialog::new()
        .server("120 Service ready in 1 minute.\r\n")
        .server("220-Welcome to the archive\r\n  mirrors are listed in /pub/MIRRORS\r\n500 is not the end\r\n220 ProFTPD Server ready.\r\n")
        .client("AUTH TLS\r\n")
        .server("234-Starting TLS\r\n234 AUTH TLS successful\r\n")
}

/// The SSLRequest: length 8, code 80877103.
const PG_SSL_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f];

fn postgres_ok() -> Dialog {
    Dialog::new().client(PG_SSL_REQUEST).server("S")
}

/// A MySQL packet: 3-byte little-endian length, sequence id, payload.
fn mysql_packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small packet")
        .to_le_bytes();
    let mut packet = vec![len[0], len[1], len[2], sequence];
    packet.extend_from_slice(payload);
    packet
}

const MARIADB_VERSION: &str = "5.5.5-10.11.6-MariaDB-0+deb12u1";
/// [`MARIADB_VERSION`] without the MySQL compatibility prefix, as the recipe reports it.
const MARIADB_REAL_VERSION: &str = "10.11.6-MariaDB-0+deb12u1";

/// A MariaDB 10.11 initial handshake; `caps_low` 0xfffe with TLS, 0xf7fe without.
fn mariadb_handshake(caps_low: u16) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(MARIADB_VERSION.as_bytes());
    p.push(0);
    p.extend_from_slice(&42u32.to_le_bytes()); // connection id
    p.extend_from_slice(b"Ab3$kL9q"); // auth-plugin-data part 1
    p.push(0); // filler
    p.extend_from_slice(&caps_low.to_le_bytes());
    p.push(0x2d); // utf8mb4_general_ci
    p.extend_from_slice(&2u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    p.extend_from_slice(&0x81ffu16.to_le_bytes()); // capabilities, upper half
    p.push(21); // auth-plugin-data length
    p.extend_from_slice(&[0; 6]); // filler
    p.extend_from_slice(&0x1du32.to_le_bytes()); // MariaDB extended capabilities
    p.extend_from_slice(b"x7#Pq2!mZ9@w\0"); // auth-plugin-data part 2
    p.extend_from_slice(b"mysql_native_password\0");
    mysql_packet(0, &p)
}

/// The SSL Request the client must send, spelled out byte by byte.
fn mysql_ssl_request() -> Vec<u8> {
    let mut packet = vec![0x20, 0x00, 0x00, 0x01];
    // CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION |
    // CLIENT_PLUGIN_AUTH = 0x00088a01.
    packet.extend_from_slice(&[0x01, 0x8a, 0x08, 0x00]);
    packet.extend_from_slice(&[0x00, 0x00, 0x00, 0x01]); // 16 MiB
    packet.push(0x21); // utf8_general_ci
    packet.extend_from_slice(&[0; 23]);
    packet
}

fn mysql_ok() -> Dialog {
    Dialog::new()
        .server(mariadb_handshake(0xfffe))
        .client(mysql_ssl_request())
}

/// A BER element with a short-form length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(content.len()).expect("short form")];
    out.extend_from_slice(content);
    out
}

/// A BER element with a four-byte long-form length, as Active Directory writes them.
fn tlv_long(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, 0x84];
    out.extend_from_slice(&u32::try_from(content.len()).expect("fits").to_be_bytes());
    out.extend_from_slice(content);
    out
}

/// An LDAP ExtendedResponse to messageID 1 with the result code and diagnostic message.
fn ldap_response(code: u8, diagnostic: &str) -> Vec<u8> {
    let op = [
        tlv(0x0a, &[code]),
        tlv(0x04, b""),
        tlv(0x04, diagnostic.as_bytes()),
    ]
    .concat();
    tlv(0x30, &[tlv(0x02, &[1]), tlv(0x78, &op)].concat())
}

/// The StartTLS ExtendedRequest, spelled out.
fn ldap_request() -> Vec<u8> {
    let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
    request.extend_from_slice(b"1.3.6.1.4.1.1466.20037");
    request
}

fn ldap_ok() -> Dialog {
    Dialog::new()
        .client(ldap_request())
        .server(ldap_response(0, ""))
}

fn ldap_active_directory() -> Dialog {
    let op = [
        tlv_long(0x0a, &[0]),
        tlv_long(0x04, b""),
        tlv_long(0x04, b""),
        tlv_long(0x8a, b"1.3.6.1.4.1.1466.20037"),
    ]
    .concat();
    let response = tlv_long(0x30, &[tlv_long(0x02, &[1]), tlv_long(0x78, &op)].concat());
    Dialog::new().client(ldap_request()).server(response)
}

/// Every successful dialog with its protocol and greeting.
fn successes() -> Vec<(StartTls, Dialog, Option<&'static str>)> {
    vec![
        (StartTls::Smtp, smtp_postfix(), Some(POSTFIX_GREETING)),
        (StartTls::Imap, imap_dovecot(), Some(DOVECOT_IMAP_GREETING)),
        (
            StartTls::Imap,
            imap_capability_command(),
            Some("* OK IMAP4rev1 Service Ready"),
        ),
        (
            StartTls::Pop3,
            pop3_dovecot(),
            Some("+OK Dovecot (Debian) ready."),
        ),
        (StartTls::Ftp, ftp_vsftpd(), Some("220 (vsFTPd 3.0.3)")),
        (
            StartTls::Ftp,
            ftp_multiline(),
            Some("220-Welcome to the archive"),
        ),
        (StartTls::Postgres, postgres_ok(), None),
        (StartTls::Mysql, mysql_ok(), Some(MARIADB_REAL_VERSION)),
        (StartTls::Ldap, ldap_ok(), None),
        (StartTls::Ldap, ldap_active_directory(), None),
    ]
}

// ---------------------------------------------------------------------------------------
// Success, and the bytes on the wire

#[tokio::test]
async fn every_protocol_upgrades_and_stays_in_sync() {
    for (protocol, dialog, greeting) in successes() {
        succeed(protocol, dialog, greeting).await;
    }
}

#[test]
fn the_client_sends_exactly_the_protocol_commands() {
    for (protocol, dialog, _) in successes() {
        let (result, written) = run_canned(protocol, &dialog.server, usize::MAX);
        let negotiated = result.unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!(negotiated.transcript, dialog.server, "{protocol:?}");
        assert_eq!(written, dialog.client, "{protocol:?}");
    }
}

#[test]
fn the_wire_constants_are_the_documented_bytes() {
    assert_eq!(
        ldap_response(0, ""),
        [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00
        ]
    );
    assert_eq!(ldap_request().len(), 31);
    assert_eq!(mysql_ssl_request().len(), 36);
    assert_eq!(i32::from_be_bytes([4, 0xd2, 0x16, 0x2f]), 80877103);
}

#[test]
fn every_truncated_dialog_is_a_closed_connection() {
    for (protocol, dialog, _) in successes() {
        for cut in 0..dialog.server.len() {
            let (result, _) = run_canned(protocol, &dialog.server[..cut], usize::MAX);
            match result {
                Err(e) => assert_eq!(
                    e.kind(),
                    StartTlsFailure::Closed,
                    "{protocol:?} at {cut}: {e}"
                ),
                Ok(n) => panic!("{protocol:?} cut at {cut} negotiated {n:?}"),
            }
        }
    }
}

#[test]
fn dialogs_delivered_a_byte_at_a_time_still_upgrade() {
    for (protocol, dialog, greeting) in successes() {
        let (result, _) = run_canned(protocol, &dialog.server, 1);
        let negotiated = result.unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!(negotiated.greeting.as_deref(), greeting, "{protocol:?}");
    }
}

// ---------------------------------------------------------------------------------------
// SMTP

#[tokio::test]
async fn smtp_multiline_greeting_shows_its_first_line() {
    let dialog = Dialog::new()
        .server("220-mx.example.org ESMTP Exim 4.96\r\n220 No UCE\r\n")
        .client("EHLO monitor.example.net\r\n")
        .server("250-mx.example.org Hello\r\n250 starttls\r\n")
        .client("STARTTLS\r\n")
        .server("220 TLS go ahead\r\n");
    succeed(
        StartTls::Smtp,
        dialog,
        Some("220-mx.example.org ESMTP Exim 4.96"),
    )
    .await;
}

#[tokio::test]
async fn smtp_client_name_cannot_inject_commands() {
    let script = Script::new()
        .send("220 mail.example.com ESMTP\r\n")
        .expect("EHLO host.exampleRCPTTO:<x>\r\n")
        .send("250-mail.example.com\r\n250 STARTTLS\r\n")
        .expect("STARTTLS\r\n")
        .send("220 go\r\n");
    let (result, _stream, _server) =
        run_as(StartTls::Smtp, script, "host.example\r\nRCPT TO:<x>").await;
    result.expect("negotiates with the cleaned name");

    let script = Script::new()
        .send("220 mail.example.com ESMTP\r\n")
        .expect("EHLO localhost\r\n")
        .send("250-mail.example.com\r\n250 STARTTLS\r\n")
        .expect("STARTTLS\r\n")
        .send("220 go\r\n");
    let (result, _stream, _server) = run_as(StartTls::Smtp, script, " \r\n").await;
    result.expect("an empty name becomes localhost");
}

#[tokio::test]
async fn smtp_not_offered_reads_as_documented() {
    let script = Script::new()
        .send("220 mail.example.com ESMTP\r\n")
        .expect("EHLO monitor.example.net\r\n")
        .send("250-mail.example.com\r\n250 SIZE 1000\r\n");
    let error = check(StartTls::Smtp, script, StartTlsFailure::NotOffered, &[]).await;
    assert_eq!(
        error.to_string(),
        r#"smtp server does not offer STARTTLS: its EHLO reply lists no STARTTLS (received "250-mail.example.com\r\n250 SIZE 1000\r\n")"#
    );
    assert_eq!(
        error.received(),
        r"250-mail.example.com\r\n250 SIZE 1000\r\n"
    );
}

#[tokio::test]
async fn smtp_failures() {
    let greeting = format!("{POSTFIX_GREETING}\r\n");
    let ehlo = "EHLO monitor.example.net\r\n";
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            // Offered, then refused.
            Script::new()
                .send(&greeting)
                .expect(ehlo)
                .send(POSTFIX_EHLO)
                .expect("STARTTLS\r\n")
                .send("454 4.7.0 TLS not available due to local problem\r\n"),
            StartTlsFailure::Refused,
            vec![
                "smtp server refused STARTTLS: it answered 454 to STARTTLS",
                r#"(received "454 4.7.0 TLS not available due to local problem\r\n")"#,
            ],
        ),
        (
            // A web server on the SMTP port.
            Script::new().send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["unexpected reply: expected a 220 greeting", "HTTP/1.1 400"],
        ),
        (
            // Binary bytes without a line end are rejected at once, not at the cap.
            Script::new().send([0x16, 0x03, 0x01, 0x00]),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a 220 greeting", r"\x16\x03\x01\x00"],
        ),
        (
            Script::new().send("554 5.7.1 No SMTP service here\r\n"),
            StartTlsFailure::TurnedAway,
            vec!["it greeted with 554 instead of 220"],
        ),
        (
            Script::new()
                .send(&greeting)
                .expect(ehlo)
                .send("502 5.5.2 Error: command not recognized\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a 250 reply to EHLO", "502 5.5.2"],
        ),
        (
            // A continuation line with another code.
            Script::new()
                .send(&greeting)
                .expect(ehlo)
                .send("250-mail.example.com\r\n251 STARTTLS\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a 250 reply to EHLO"],
        ),
        (
            Script::new()
                .send(&greeting)
                .expect(ehlo)
                .send(POSTFIX_EHLO)
                .expect("STARTTLS\r\n")
                .send("250 2.0.0 Ok\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a 220 reply to STARTTLS"],
        ),
        (
            // Bytes after the go-ahead would be taken for TLS.
            Script::new()
                .send(&greeting)
                .expect(ehlo)
                .send(POSTFIX_EHLO)
                .expect("STARTTLS\r\n")
                .send("220 2.0.0 Ready to start TLS\r\n250 injected\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec![
                "expected nothing after the 220 reply to STARTTLS until the TLS handshake",
                r#"(received "250 injected\r\n")"#,
            ],
        ),
        (
            Script::new().close(),
            StartTlsFailure::Closed,
            vec!["closed the connection during the greeting (received nothing)"],
        ),
        (
            Script::new().send("220 mail.exa").close(),
            StartTlsFailure::Closed,
            vec![r#"during the greeting (received "220 mail.exa")"#],
        ),
        (
            Script::new().send(&greeting).expect(ehlo).close(),
            StartTlsFailure::Closed,
            vec!["during the capability query"],
        ),
        (
            Script::new()
                .send(&greeting)
                .expect(ehlo)
                .send(POSTFIX_EHLO)
                .expect("STARTTLS\r\n")
                .close(),
            StartTlsFailure::Closed,
            vec!["during the upgrade command"],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Smtp, script, kind, &words).await;
    }
}

#[tokio::test]
async fn a_reset_is_an_io_error_with_its_kind() {
    let script = Script::new()
        .send("220 mail.example.com ESMTP\r\n")
        .expect("EHLO monitor.example.net\r\n")
        .reset();
    let error = check(
        StartTls::Smtp,
        script,
        StartTlsFailure::Io,
        &["i/o error with the smtp server during the capability query"],
    )
    .await;
    match error {
        StartTlsError::Io { error, stage, .. } => {
            assert_eq!(stage, Stage::Capabilities);
            assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        }
        other => panic!("not an i/o error: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// IMAP

#[tokio::test]
async fn imap_failures() {
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            Script::new()
                .send("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE AUTH=PLAIN] Dovecot ready.\r\n")
                .expect("a001 CAPABILITY\r\n")
                .send("* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE AUTH=PLAIN\r\na001 OK Pre-login capabilities listed, post-login capabilities have more.\r\n"),
            StartTlsFailure::NotOffered,
            vec![
                "imap server does not offer STARTTLS: its CAPABILITY response lists no STARTTLS",
                "* CAPABILITY IMAP4rev1",
            ],
        ),
        (
            Script::new()
                .send(format!("{DOVECOT_IMAP_GREETING}\r\n"))
                .expect("a002 STARTTLS\r\n")
                .send("a002 NO [UNAVAILABLE] TLS support isn't enabled.\r\n"),
            StartTlsFailure::Refused,
            vec!["it answered NO to STARTTLS", "a002 NO [UNAVAILABLE]"],
        ),
        (
            Script::new()
                .send(format!("{DOVECOT_IMAP_GREETING}\r\n"))
                .expect("a002 STARTTLS\r\n")
                .send("a002 BAD Unknown command\r\n"),
            StartTlsFailure::Refused,
            vec!["it answered BAD to STARTTLS"],
        ),
        (
            Script::new().send("* BYE Too many connections from your IP\r\n"),
            StartTlsFailure::TurnedAway,
            vec!["it greeted with BYE", "Too many connections"],
        ),
        (
            Script::new().send("220 mail.example.com ESMTP Postfix\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected an IMAP greeting (* OK)", "220 mail.example.com"],
        ),
        (
            Script::new()
                .send("* OK ready\r\n")
                .expect("a001 CAPABILITY\r\n")
                .send("+OK what\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected untagged lines and a tagged a001 reply to CAPABILITY"],
        ),
        (
            Script::new()
                .send("* OK ready\r\n")
                .expect("a001 CAPABILITY\r\n")
                .send("a001 BAD no\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a tagged OK reply to CAPABILITY"],
        ),
        (
            Script::new()
                .send(format!("{DOVECOT_IMAP_GREETING}\r\n"))
                .expect("a002 STARTTLS\r\n")
                .send("a002 OK Begin TLS negotiation now.\r\n* BYE\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected nothing after the tagged OK reply to STARTTLS"],
        ),
        (
            Script::new()
                .send("* OK ready\r\n")
                .expect("a001 CAPABILITY\r\n")
                .send("* CAPABILITY IMAP4rev1 STARTTLS\r\n")
                .close(),
            StartTlsFailure::Closed,
            vec![
                "during the capability query",
                r#"(received "* CAPABILITY IMAP4rev1 STARTTLS\r\n")"#,
            ],
        ),
        (
            Script::new()
                .send(format!("{DOVECOT_IMAP_GREETING}\r\n"))
                .expect("a002 STARTTLS\r\n")
                .close(),
            StartTlsFailure::Closed,
            vec!["during the upgrade command"],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Imap, script, kind, &words).await;
    }
}

#[tokio::test]
async fn imap_preauth_greeting_is_accepted() {
    let dialog = Dialog::new()
        .server("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] logged in as admin\r\n")
        .client("a002 STARTTLS\r\n")
        .server("a002 OK go\r\n");
    succeed(
        StartTls::Imap,
        dialog,
        Some("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] logged in as admin"),
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// POP3

#[tokio::test]
async fn pop3_failures() {
    let greeting = "+OK Dovecot (Debian) ready.\r\n";
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            Script::new()
                .send(greeting)
                .expect("CAPA\r\n")
                .send("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n"),
            StartTlsFailure::NotOffered,
            vec!["pop3 server does not offer STARTTLS: its CAPA list has no STLS"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect("CAPA\r\n")
                .send("-ERR unknown command\r\n"),
            StartTlsFailure::NotOffered,
            vec!["it answered -ERR to CAPA, so it lists no STLS"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect("CAPA\r\n")
                .send(DOVECOT_POP3_CAPA)
                .expect("STLS\r\n")
                .send("-ERR [SYS/TEMP] TLS initialization failed.\r\n"),
            StartTlsFailure::Refused,
            vec![
                "pop3 server refused STARTTLS: it answered -ERR to STLS",
                "TLS initialization failed",
            ],
        ),
        (
            Script::new().send("-ERR [SYS/TEMP] Maximum number of connections exceeded\r\n"),
            StartTlsFailure::TurnedAway,
            vec!["it greeted with -ERR"],
        ),
        (
            Script::new().send("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a +OK greeting", "SSH-2.0-OpenSSH"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect("CAPA\r\n")
                .send(DOVECOT_POP3_CAPA)
                .expect("STLS\r\n")
                .send("+OKAY\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a +OK reply to STLS"],
        ),
        (
            Script::new().close(),
            StartTlsFailure::Closed,
            vec!["during the greeting"],
        ),
        (
            // The CAPA list never ends.
            Script::new()
                .send(greeting)
                .expect("CAPA\r\n")
                .send("+OK\r\nTOP\r\nSTLS\r\n")
                .close(),
            StartTlsFailure::Closed,
            vec!["during the capability query"],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Pop3, script, kind, &words).await;
    }
}

// ---------------------------------------------------------------------------------------
// FTP

#[tokio::test]
async fn ftp_failures() {
    let greeting = "220 (vsFTPd 3.0.3)\r\n";
    let auth = "AUTH TLS\r\n";
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            Script::new()
                .send(greeting)
                .expect(auth)
                .send("502 Command not implemented.\r\n"),
            StartTlsFailure::NotOffered,
            vec!["ftp server does not offer STARTTLS: it answered 502 to AUTH TLS"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect(auth)
                .send("500 AUTH not understood\r\n"),
            StartTlsFailure::NotOffered,
            vec!["it answered 500 to AUTH TLS"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect(auth)
                .send("530 Please login with USER and PASS.\r\n"),
            StartTlsFailure::NotOffered,
            vec!["ftp server does not offer STARTTLS: it answered 530 to AUTH TLS"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect(auth)
                .send("534 Request denied for policy reasons.\r\n"),
            StartTlsFailure::Refused,
            vec!["ftp server refused STARTTLS: it answered 534 to AUTH TLS"],
        ),
        (
            Script::new().send("421 Too many users, try later.\r\n"),
            StartTlsFailure::TurnedAway,
            vec!["it greeted with 421 instead of 220"],
        ),
        (
            Script::new().send("+OK POP3 ready\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a 220 greeting", "+OK POP3 ready"],
        ),
        (
            Script::new()
                .send(greeting)
                .expect(auth)
                .send("334 ADAT=abc\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a 234 reply to AUTH TLS"],
        ),
        (
            Script::new().send(greeting).expect(auth).close(),
            StartTlsFailure::Closed,
            vec!["during the upgrade command"],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Ftp, script, kind, &words).await;
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test]
async fn postgres_failures() {
    let mut error = vec![b'E'];
    let fields = b"SFATAL\0VFATAL\0C0A000\0Munsupported frontend protocol 1234.5679: server supports 3.0 to 3.0\0Fpostmaster.c\0L2188\0RProcessStartupPacket\0\0";
    error.extend_from_slice(&(u32::try_from(fields.len()).unwrap() + 4).to_be_bytes());
    error.extend_from_slice(fields);
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            Script::new().expect(PG_SSL_REQUEST).send("N"),
            StartTlsFailure::NotOffered,
            vec![
                r#"postgres server does not offer STARTTLS: it answered N to SSLRequest (received "N")"#,
            ],
        ),
        (
            Script::new().expect(PG_SSL_REQUEST).send(&error),
            StartTlsFailure::UnexpectedReply,
            vec![
                "expected S or N in answer to SSLRequest",
                "unsupported frontend protocol 1234.5679",
            ],
        ),
        (
            Script::new()
                .expect(PG_SSL_REQUEST)
                .send("HTTP/1.1 400 Bad Request\r\n\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected S or N in answer to SSLRequest", "HTTP/1.1"],
        ),
        (
            Script::new().expect(PG_SSL_REQUEST).send("SE"),
            StartTlsFailure::UnexpectedReply,
            vec![
                r#"expected nothing after the S answer to SSLRequest until the TLS handshake (received "E")"#,
            ],
        ),
        (
            Script::new().expect(PG_SSL_REQUEST).close(),
            StartTlsFailure::Closed,
            vec![
                "postgres server closed the connection during the upgrade command (received nothing)",
            ],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Postgres, script, kind, &words).await;
    }
}

// ---------------------------------------------------------------------------------------
// MySQL and MariaDB

#[tokio::test]
async fn mysql_failures() {
    let mut host_not_allowed = vec![0xff];
    host_not_allowed.extend_from_slice(&1130u16.to_le_bytes());
    host_not_allowed
        .extend_from_slice(b"Host '172.17.0.1' is not allowed to connect to this MariaDB server");
    let mut too_many = vec![0xff];
    too_many.extend_from_slice(&1040u16.to_le_bytes());
    too_many.extend_from_slice(b"#08004Too many connections");
    let mut truncated = mariadb_handshake(0xfffe);
    truncated.truncate(30);
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            Script::new().send(mariadb_handshake(0xf7fe)),
            StartTlsFailure::NotOffered,
            vec![
                "mysql server does not offer STARTTLS: its handshake lacks the CLIENT_SSL capability flag",
            ],
        ),
        (
            Script::new().send(mysql_packet(0, &host_not_allowed)),
            StartTlsFailure::TurnedAway,
            vec!["it sent error 1130 instead of a handshake: Host '172.17.0.1' is not allowed"],
        ),
        (
            Script::new().send(mysql_packet(0, &too_many)),
            StartTlsFailure::TurnedAway,
            vec!["it sent error 1040 instead of a handshake: Too many connections ("],
        ),
        (
            Script::new().send("220 mail.example.com ESMTP\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a MySQL handshake packet", "220 mail.example.com"],
        ),
        (
            Script::new().send(mysql_packet(0, b"\x09old")),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a MySQL handshake packet of protocol version 10"],
        ),
        (
            Script::new().send(mysql_packet(0, b"\x0a5.7.44\0\x01\x02")),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a complete MySQL handshake packet"],
        ),
        (
            Script::new().send([0xff, 0xff, 0xff, 0x00]),
            StartTlsFailure::TooLarge,
            vec!["mysql server sent more than 16384 bytes in plaintext during the greeting"],
        ),
        (
            Script::new().send(truncated).close(),
            StartTlsFailure::Closed,
            vec!["during the greeting"],
        ),
        (
            Script::new().send([mariadb_handshake(0xfffe), b"junk".to_vec()].concat()),
            StartTlsFailure::UnexpectedReply,
            vec![
                r#"expected nothing after the handshake packet until the TLS handshake (received "junk")"#,
            ],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Mysql, script, kind, &words).await;
    }
}

// ---------------------------------------------------------------------------------------
// LDAP

#[tokio::test]
async fn ldap_failures() {
    let request = ldap_request();
    let notice = {
        let op = [
            tlv(0x0a, &[52]),
            tlv(0x04, b""),
            tlv(0x04, b"server shutting down"),
            tlv(0x8a, b"1.3.6.1.4.1.1466.20036"),
        ]
        .concat();
        tlv(0x30, &[tlv(0x02, &[0]), tlv(0x78, &op)].concat())
    };
    let cases: Vec<(Script, StartTlsFailure, Vec<&str>)> = vec![
        (
            Script::new()
                .expect(&request)
                .send(ldap_response(2, "unsupported extended operation")),
            StartTlsFailure::NotOffered,
            vec![r#"ldap server does not offer STARTTLS: it answered the StartTLS extended request with resultCode 2 (protocolError): "unsupported extended operation""#],
        ),
        (
            Script::new()
                .expect(&request)
                .send(ldap_response(52, "00000000: LdapErr: DSID-0C091311, comment: Error initializing SSL/TLS, data 0, v4563")),
            StartTlsFailure::NotOffered,
            vec!["resultCode 52 (unavailable)", "Error initializing SSL/TLS"],
        ),
        (
            Script::new()
                .expect(&request)
                .send(ldap_response(1, "TLS already started")),
            StartTlsFailure::Refused,
            vec!["ldap server refused STARTTLS: it answered the StartTLS extended request with resultCode 1 (operationsError)"],
        ),
        (
            Script::new().expect(&request).send(ldap_response(99, "")),
            StartTlsFailure::Refused,
            vec!["resultCode 99 (received"],
        ),
        (
            Script::new().expect(&request).send(notice),
            StartTlsFailure::NotOffered,
            vec!["it sent a notice of disconnection with resultCode 52 (unavailable): \"server shutting down\""],
        ),
        (
            // The protocolOp length runs past the message.
            Script::new()
                .expect(&request)
                .send([0x30, 0x07, 0x02, 0x01, 0x01, 0x78, 0x09, 0x0a, 0x01]),
            StartTlsFailure::UnexpectedReply,
            vec!["expected a well-formed LDAP ExtendedResponse"],
        ),
        (
            // A BindResponse is not an ExtendedResponse.
            Script::new()
                .expect(&request)
                .send([0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]),
            StartTlsFailure::UnexpectedReply,
            vec!["expected an ExtendedResponse (BER tag 0x78)"],
        ),
        (
            Script::new()
                .expect(&request)
                .send(tlv(0x30, &[tlv(0x02, &[7]), tlv(0x78, &[0x0a, 0x01, 0x00])].concat())),
            StartTlsFailure::UnexpectedReply,
            vec!["expected an LDAP reply with messageID 1"],
        ),
        (
            Script::new()
                .expect(&request)
                .send("HTTP/1.1 400 Bad Request\r\n\r\n"),
            StartTlsFailure::UnexpectedReply,
            vec!["expected an LDAPMessage (a BER SEQUENCE)", "HTTP"],
        ),
        (
            // Indefinite length, which LDAP forbids.
            Script::new().expect(&request).send([0x30, 0x80, 0x00, 0x00]),
            StartTlsFailure::UnexpectedReply,
            vec!["expected an LDAPMessage (a BER SEQUENCE)"],
        ),
        (
            Script::new()
                .expect(&request)
                .send([0x30, 0x84, 0x00, 0x01, 0x00, 0x00]),
            StartTlsFailure::TooLarge,
            vec!["during the upgrade command"],
        ),
        (
            Script::new()
                .expect(&request)
                .send([ldap_response(0, ""), vec![0x15, 0x03, 0x03]].concat()),
            StartTlsFailure::UnexpectedReply,
            vec![r#"expected nothing after the StartTLS extended response until the TLS handshake (received "\x15\x03\x03")"#],
        ),
        (
            Script::new().expect(&request).send([0x30, 0x0c, 0x02]).close(),
            StartTlsFailure::Closed,
            vec![r#"during the upgrade command (received "0\x0c\x02")"#],
        ),
    ];
    for (script, kind, words) in cases {
        check(StartTls::Ldap, script, kind, &words).await;
    }
}

// ---------------------------------------------------------------------------------------
// The plaintext cap

#[tokio::test]
async fn a_flood_without_line_ends_hits_the_cap() {
    // A line that could still become a greeting, and never ends.
    let error = check(
        StartTls::Smtp,
        Script::new().send("220 ").flood(),
        StartTlsFailure::TooLarge,
        &[
            "smtp server sent more than 16384 bytes in plaintext during the greeting",
            "(received \"220 xxxx",
        ],
    )
    .await;
    assert!(error.received().ends_with("..."), "excerpt is cut");
    assert!(error.received().len() < 300, "excerpt is bounded");
}

#[tokio::test]
async fn endless_lines_hit_the_cap() {
    let lines = "250-SIZE 10240000\r\n".repeat(MAX_PLAINTEXT_BYTES / 10);
    let script = Script::new()
        .send("220 mail.example.com ESMTP\r\n")
        .expect("EHLO monitor.example.net\r\n")
        .send(format!("250-mail.example.com\r\n{lines}"));
    check(
        StartTls::Smtp,
        script,
        StartTlsFailure::TooLarge,
        &["during the capability query"],
    )
    .await;

    let lines = "X-JUNK\r\n".repeat(MAX_PLAINTEXT_BYTES / 4);
    let script = Script::new()
        .send("+OK ready\r\n")
        .expect("CAPA\r\n")
        .send(format!("+OK\r\n{lines}"));
    check(
        StartTls::Pop3,
        script,
        StartTlsFailure::TooLarge,
        &["pop3 server sent more than 16384 bytes"],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Arbitrary bytes

const PROTOCOLS: [StartTls; 7] = [
    StartTls::Smtp,
    StartTls::Imap,
    StartTls::Pop3,
    StartTls::Ftp,
    StartTls::Postgres,
    StartTls::Mysql,
    StartTls::Ldap,
];

/// Server bytes: a real dialog with bytes overwritten, cut and appended, or plain noise.
fn mangled() -> impl Strategy<Value = (usize, Vec<u8>, usize)> {
    let dialogs: Vec<(usize, Vec<u8>)> = successes()
        .into_iter()
        .map(|(p, d, _)| {
            let index = PROTOCOLS.iter().position(|q| *q == p).expect("listed");
            (index, d.server)
        })
        .collect();
    let real = (
        proptest::sample::select(dialogs),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|((protocol, mut bytes), edits, cut, tail)| {
            for (at, byte) in edits {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend_from_slice(&tail);
            (protocol, bytes)
        });
    let noise = (
        0..PROTOCOLS.len(),
        prop::collection::vec(any::<u8>(), 0..600),
    );
    (prop_oneof![3 => real, 1 => noise], 1usize..64).prop_map(|((p, b), c)| (p, b, c))
}

#[test]
fn mangled_server_bytes_never_panic() {
    let mut runner = TestRunner::new(Config {
        cases: 2048,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&mangled(), |(protocol, input, chunk)| {
            let protocol = PROTOCOLS[protocol];
            let (result, _) = run_canned(protocol, &input, chunk);
            match result {
                Ok(n) => prop_assert!(input.starts_with(&n.transcript)),
                Err(e) => {
                    let message = e.to_string();
                    prop_assert!(
                        message.starts_with(protocol.openssl_name()) || message.starts_with("i/o")
                    );
                    prop_assert!(e.received().len() <= 4 * 200 + 3);
                }
            }
            Ok(())
        })
        .expect("no panic, and every outcome is well-formed");
}
