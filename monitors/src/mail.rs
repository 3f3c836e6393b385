//! Monitors of the mail system, each speaking its protocol's recipe: SMTP with STARTTLS,
//! IMAP and POP3 (greeting and capabilities).

use monitor_core::prelude::*;

/// SMTP relay offers STARTTLS.
///
/// Proves the relay accepts mail sessions over TLS: reads the 220 banner, sends EHLO and
/// STARTTLS, checks the certificate (degraded 21 days before expiry), then sends EHLO again
/// over TLS and says QUIT. A relay that lists no STARTTLS fails; one that turns sessions
/// away (421, 554) fails as service unavailable. Records the `banner` and the `extensions`
/// offered over TLS.
#[tcp_monitor(host = "mail.example.com", port = 25,
              recipe = smtp(helo = "monitor.example.com"), tls = "starttls",
              tags = ["mail", "prod"], expiry_warn_days = 21)]
fn smtp(m: TcpMonitor) -> TcpMonitor {
    m
}

/// IMAP server greets.
///
/// Proves the IMAP server accepts sessions: requires the `* OK` greeting, asks for
/// CAPABILITY and logs out. `* BYE` (too many connections) fails as service unavailable,
/// another protocol as a mismatch. Records the `greeting`, the `capabilities` and whether
/// STARTTLS is offered (`starttls_offered`).
#[tcp_monitor(host = "imap.example.com", port = 143, recipe = imap, tags = ["mail"])]
fn imap(m: TcpMonitor) -> TcpMonitor {
    m
}

/// POP3 server greets.
///
/// Proves the POP3 server accepts sessions: requires the `+OK` greeting, asks for CAPA and
/// says QUIT. A `-ERR` greeting (busy, locked) fails as service unavailable. Records the
/// `greeting`, the `capabilities` and whether STLS is offered (`starttls_offered`).
#[tcp_monitor(host = "pop.example.com", port = 110, recipe = pop3, tags = ["mail"])]
fn pop3(m: TcpMonitor) -> TcpMonitor {
    m
}

#[cfg(test)]
mod tests {
    use monitor_core::prelude::*;
    use monitor_testing::{
        Script, ScriptedServer, TestPki, TlsServer, check, check_declared, declared,
    };

    const BANNER: &str = "mail.example.com ESMTP Postfix (Debian/GNU)";

    /// Postfix before TLS: banner, EHLO with STARTTLS listed, STARTTLS accepted.
    fn smtp_plaintext() -> Script {
        Script::new()
            .send(format!("220 {BANNER}\r\n"))
            .expect("EHLO ")
            .send("250-mail.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            .expect("STARTTLS\r\n")
            .send("220 2.0.0 Ready to start TLS\r\n")
    }

    /// Postfix over TLS: EHLO with the monitor's name, then QUIT.
    fn smtp_over_tls() -> Script {
        Script::new()
            .expect("EHLO monitor.example.com\r\n")
            .send("250-mail.example.com\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            .expect("QUIT\r\n")
            .send("221 2.0.0 Bye\r\n")
            .close()
    }

    #[tokio::test]
    async fn smtp_starttls_and_certificate_expiry() {
        let pki = TestPki::new().unwrap();
        for (days, status) in [
            (200, Status::Passed),
            (14, Status::Degraded),
            (3, Status::Failed),
        ] {
            let leaf = pki.leaf_for(&["mail.example.com"], days).unwrap();
            let server = ScriptedServer::start_tls(
                smtp_over_tls(),
                TlsServer::after(smtp_plaintext(), leaf.server_config(true).unwrap()),
            )
            .await
            .unwrap();
            let spec = declared("mail::smtp")
                .pointed_at(server.addr())
                .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
            let r = check(spec).await;
            assert_eq!(r.status, status, "{days} days: {}", r.to_json());
            if status != Status::Failed {
                assert_eq!(r.facts["banner"], BANNER);
                assert_eq!(r.facts["extensions"], "PIPELINING AUTH 8BITMIME");
                assert_eq!(r.facts["starttls_offered"], "yes");
            }
        }
    }

    #[tokio::test]
    async fn smtp_without_starttls_fails() {
        let server = ScriptedServer::start(
            Script::new()
                .send(format!("220 {BANNER}\r\n"))
                .expect("EHLO ")
                .send("250-mail.example.com\r\n250 8BITMIME\r\n"),
        )
        .await
        .unwrap();
        let r = check_declared("mail::smtp", server.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::StarttlsNotOffered);
    }

    #[tokio::test]
    async fn imap_greeting_and_capabilities() {
        let imap = ScriptedServer::start(
            Script::new()
                .send("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n")
                .expect("m1 CAPABILITY\r\n")
                .send("* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE STARTTLS LOGINDISABLED\r\nm1 OK Pre-login capabilities listed.\r\n")
                .expect("m2 LOGOUT\r\n")
                .send("* BYE Logging out\r\nm2 OK Logout completed.\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("mail::imap", imap.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(
            r.facts["greeting"],
            "OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready."
        );
        assert_eq!(r.facts["starttls_offered"], "yes");
        assert!(r.facts["capabilities"].contains("IDLE"), "{:?}", r.facts);

        let busy = ScriptedServer::start(
            Script::new()
                .send("* BYE Too many connections, try later\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("mail::imap", busy.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
    }

    #[tokio::test]
    async fn pop3_greeting_and_capabilities() {
        let pop = ScriptedServer::start(
            Script::new()
                .send("+OK Dovecot (Debian) ready.\r\n")
                .expect("CAPA\r\n")
                .send("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nSTLS\r\nSASL PLAIN\r\n.\r\n")
                .expect("QUIT\r\n")
                .send("+OK Logging out.\r\n")
                .close(),
        )
        .await
        .unwrap();
        let r = check_declared("mail::pop3", pop.addr()).await;
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
        assert_eq!(r.facts["greeting"], "Dovecot (Debian) ready.");
        assert_eq!(r.facts["starttls_offered"], "yes");
        assert_eq!(
            r.facts["capabilities"],
            "CAPA TOP UIDL RESP-CODES STLS SASL PLAIN"
        );

        let busy = ScriptedServer::start(Script::new().send("-ERR [SYS/TEMP] busy\r\n").close())
            .await
            .unwrap();
        let r = check_declared("mail::pop3", busy.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
        // Another service on the port is a protocol mismatch.
        let ssh = ScriptedServer::start(Script::new().send("SSH-2.0-OpenSSH_9.2p1\r\n"))
            .await
            .unwrap();
        let r = check_declared("mail::pop3", ssh.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ProtocolMismatch);
    }
}
