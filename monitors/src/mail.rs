//! Monitors of the mail system: SMTP with STARTTLS, IMAP and POP3 greetings.

use monitor_core::prelude::*;

/// SMTP relay offers STARTTLS.
///
/// Greets with EHLO, upgrades with STARTTLS, checks the certificate and says QUIT.
#[tcp_monitor(host = "mail.example.com", port = 25, starttls = "smtp",
              send = "QUIT\r\n", expect = "221", tags = ["mail", "prod"],
              expiry_warn_days = 21)]
fn smtp(m: TcpMonitor) -> TcpMonitor {
    m
}

/// IMAP server greets.
#[tcp_monitor(host = "imap.example.com", port = 143, expect_regex = "^\\* OK", tags = ["mail"])]
fn imap(m: TcpMonitor) -> TcpMonitor {
    m
}

/// POP3 server greets.
#[tcp_monitor(host = "pop.example.com", port = 110, expect = "+OK", tags = ["mail"])]
fn pop3(m: TcpMonitor) -> TcpMonitor {
    m
}

#[cfg(test)]
mod tests {
    use monitor_core::prelude::*;
    use monitor_core::testing::{
        Script, ScriptedServer, TestPki, TlsServer, check, check_declared, declared,
    };

    fn smtp_opening() -> Script {
        Script::new()
            .send("220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n")
            .expect("EHLO ")
            .send("250-mail.example.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            .expect("STARTTLS\r\n")
            .send("220 2.0.0 Ready to start TLS\r\n")
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
                Script::new().expect("QUIT\r\n").send("221 2.0.0 Bye\r\n"),
                TlsServer::after(smtp_opening(), leaf.server_config(true).unwrap()),
            )
            .await
            .unwrap();
            let spec = declared("mail::smtp")
                .pointed_at(server.addr())
                .tls_with(|t| t.ca = Some(PemSource::Pem(pki.root_pem())));
            let r = check(spec).await;
            assert_eq!(r.status, status, "{days} days: {}", r.to_json());
        }
    }

    #[tokio::test]
    async fn imap_and_pop3_greetings() {
        let imap = ScriptedServer::start(
            Script::new().send("* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"),
        )
        .await
        .unwrap();
        assert_eq!(
            check_declared("mail::imap", imap.addr()).await.status,
            Status::Passed
        );
        let pop = ScriptedServer::start(Script::new().send("+OK Dovecot ready.\r\n"))
            .await
            .unwrap();
        assert_eq!(
            check_declared("mail::pop3", pop.addr()).await.status,
            Status::Passed
        );
        let busy = ScriptedServer::start(Script::new().send("-ERR [SYS/TEMP] busy\r\n").close())
            .await
            .unwrap();
        let r = check_declared("mail::pop3", busy.addr()).await;
        assert_eq!(r.error.unwrap().kind, ErrorKind::ClosedEarly);
    }
}
