//! The SMTP, IMAP, POP3 and FTP logins against scripted servers: the exact commands sent
//! (PLAIN and LOGIN in base64, IMAP quoting and literals, AUTHENTICATE PLAIN under
//! `LOGINDISABLED`) and the answers real servers rarely give on demand (534, 454, `BYE`,
//! `[IN-USE]`, 421 after PASS), each with its error kind; the password in no result.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use monitor_core::model::login::Login;
use monitor_core::{CheckResult, Engine, ErrorKind, Recipe, Status, TcpMonitor};
use monitor_testing::{NoWaitClock, Script, ScriptedServer};

const VAR: &str = "MONITORS_SECRET_SCRIPTED";

/// Serves `script`, checks `recipe` logging in as `user` with `password` (plaintext
/// allowed), asserts the kind of error (`None`: passed) and that the password is in no
/// form in the result.
async fn check(
    script: Script,
    recipe: Recipe,
    user: &str,
    password: &'static str,
    kind: Option<ErrorKind>,
) -> CheckResult {
    let server = ScriptedServer::start(script).await.unwrap();
    let login = Login::password_env(VAR).user(user).allow_plaintext();
    let spec = TcpMonitor::new("scripted-login", "127.0.0.1", server.port())
        .recipe(recipe.with_login(login))
        .timeouts(2_000, 1_000, 5_000);
    let engine = Engine::new()
        .with_clock(NoWaitClock)
        .with_secrets(move |name| (name == VAR).then(|| password.to_owned()));
    let r = engine.check(&spec.validate().unwrap()).await;
    assert_eq!(r.error.as_ref().map(|e| e.kind), kind, "{}", r.to_json());
    if kind.is_none() {
        assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    }
    let json = r.to_json();
    for form in [
        password.to_owned(),
        STANDARD.encode(password),
        STANDARD.encode(format!("\0{user}\0{password}")),
    ] {
        assert!(!json.contains(&form), "password in the result: {json}");
    }
    r
}

fn fact<'a>(r: &'a CheckResult, name: &str) -> &'a str {
    r.facts
        .get(name)
        .unwrap_or_else(|| panic!("no fact `{name}` in {}", r.to_json()))
}

const IMAP_GREETING: &str = "* OK ready\r\n";

fn imap_caps(caps: &str) -> Script {
    Script::new()
        .send(IMAP_GREETING)
        .expect("m1 CAPABILITY\r\n")
        .send(format!("* CAPABILITY IMAP4rev1 {caps}\r\nm1 OK done\r\n"))
}

fn examine_ok(script: Script, mailbox: &str, exists: u32) -> Script {
    script
        .expect(format!("m3 EXAMINE {mailbox}\r\n"))
        .send(format!(
            "* FLAGS (\\Seen)\r\n* {exists} EXISTS\r\n* 0 RECENT\r\nm3 OK [READ-ONLY] done\r\n"
        ))
        .expect("m4 LOGOUT\r\n")
        .send("* BYE bye\r\nm4 OK done\r\n")
        .close()
}

#[tokio::test]
async fn imap_quotes_escapes_and_sends_literals() {
    let script = imap_caps("AUTH=PLAIN")
        .expect("m2 LOGIN \"u\" \"pa \\\"ss\\\\\"\r\n")
        .send("m2 OK logged in\r\n");
    let r = check(
        examine_ok(script, "\"INBOX\"", 7),
        Recipe::imap(),
        "u",
        "pa \"ss\\",
        None,
    )
    .await;
    assert_eq!(fact(&r, "entry_count"), "7");
    assert_eq!(fact(&r, "mailbox"), "INBOX");
    assert_eq!(fact(&r, "auth_method"), "login");

    // Not ASCII: a synchronizing literal, sent after the server's +.
    let password = "pässwörd";
    let script = imap_caps("")
        .expect(format!("m2 LOGIN \"u\" {{{}}}\r\n", password.len()))
        .send("+ go ahead\r\n")
        .expect(format!("{password}\r\n"))
        .send("m2 OK logged in\r\n");
    check(
        examine_ok(script, "\"INBOX\"", 0),
        Recipe::imap(),
        "u",
        "pässwörd",
        None,
    )
    .await;
}

#[tokio::test]
async fn imap_authenticates_plain_when_login_is_disabled() {
    let blob = STANDARD.encode("\0u\0pw-7");
    let script = imap_caps("LOGINDISABLED AUTH=PLAIN")
        .expect("m2 AUTHENTICATE PLAIN\r\n")
        .send("+ \r\n")
        .expect(format!("{blob}\r\n"))
        .send("m2 OK logged in\r\n");
    let r = check(
        examine_ok(script, "\"INBOX\"", 2),
        Recipe::imap(),
        "u",
        "pw-7",
        None,
    )
    .await;
    assert_eq!(fact(&r, "auth_method"), "plain");
    // With SASL-IR the credentials ride on the command.
    let script = imap_caps("LOGINDISABLED AUTH=PLAIN SASL-IR")
        .expect(format!("m2 AUTHENTICATE PLAIN {blob}\r\n"))
        .send("m2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    check(
        script,
        Recipe::imap(),
        "u",
        "pw-7",
        Some(ErrorKind::AuthenticationFailed),
    )
    .await;
    // Neither LOGIN nor PLAIN.
    check(
        imap_caps("LOGINDISABLED"),
        Recipe::imap(),
        "u",
        "pw-7",
        Some(ErrorKind::AuthenticationFailed),
    )
    .await;
}

#[tokio::test]
async fn imap_unavailable_answers() {
    for answer in [
        "m2 NO [UNAVAILABLE] Temporary authentication failure\r\n",
        "* BYE Too many connections\r\n",
    ] {
        let script = imap_caps("")
            .expect("m2 LOGIN \"u\" \"pw\"\r\n")
            .send(answer)
            .close();
        check(
            script,
            Recipe::imap(),
            "u",
            "pw",
            Some(ErrorKind::ServiceUnavailable),
        )
        .await;
    }
    // A password with a line break cannot be sent.
    check(
        imap_caps(""),
        Recipe::imap(),
        "u",
        "p\r\nw",
        Some(ErrorKind::Config),
    )
    .await;
}

fn smtp_ehlo(auth: &str) -> Script {
    Script::new()
        .send("220 mail.test ESMTP\r\n")
        .expect("EHLO monitor.invalid\r\n")
        .send(format!("250-mail.test\r\n250-{auth}\r\n250 HELP\r\n"))
}

#[tokio::test]
async fn smtp_answers_sort_into_kinds() {
    let blob = STANDARD.encode("\0u\0pw");
    for (code, kind) in [
        ("235 2.7.0 ok", None),
        (
            "534 5.7.9 mechanism too weak",
            Some(ErrorKind::AuthenticationFailed),
        ),
        (
            "538 5.7.11 encryption required",
            Some(ErrorKind::AuthenticationFailed),
        ),
        (
            "454 4.7.0 temporary failure",
            Some(ErrorKind::ServiceUnavailable),
        ),
        (
            "535 5.7.8 bad credentials",
            Some(ErrorKind::AuthenticationFailed),
        ),
    ] {
        let script = smtp_ehlo("AUTH LOGIN PLAIN")
            .expect(format!("AUTH PLAIN {blob}\r\n"))
            .send(format!("{code}\r\n"))
            .expect("QUIT\r\n")
            .send("221 bye\r\n")
            .close();
        let r = check(script, Recipe::smtp(), "u", "pw", kind).await;
        if let Some(e) = &r.error {
            assert!(e.message.contains(code), "{}", e.message);
        } else {
            assert_eq!(fact(&r, "auth_method"), "plain");
        }
    }
    // LOGIN: the user and the password each in base64 after a 334.
    let script = smtp_ehlo("AUTH=LOGIN")
        .expect("AUTH LOGIN\r\n")
        .send("334 VXNlcm5hbWU6\r\n")
        .expect(format!("{}\r\n", STANDARD.encode("u")))
        .send("334 UGFzc3dvcmQ6\r\n")
        .expect(format!("{}\r\n", STANDARD.encode("pw")))
        .send("235 ok\r\n")
        .expect("QUIT\r\n")
        .close();
    let r = check(script, Recipe::smtp(), "u", "pw", None).await;
    assert_eq!(fact(&r, "auth_method"), "login");
}

fn pop3_capa() -> Script {
    Script::new()
        .send("+OK ready\r\n")
        .expect("CAPA\r\n")
        .send("+OK\r\nUSER\r\n.\r\n")
}

#[tokio::test]
async fn pop3_stat_and_refusals() {
    let script = pop3_capa()
        .expect("USER u\r\n")
        .send("+OK\r\n")
        .expect("PASS pw\r\n")
        .send("+OK logged in\r\n")
        .expect("STAT\r\n")
        .send("+OK 4 1234\r\n")
        .expect("QUIT\r\n")
        .send("+OK bye\r\n")
        .close();
    let r = check(script, Recipe::pop3(), "u", "pw", None).await;
    assert_eq!(fact(&r, "entry_count"), "4");
    assert_eq!(fact(&r, "maildrop_bytes"), "1234");
    for (answer, kind) in [
        (
            "-ERR [IN-USE] maildrop locked",
            ErrorKind::ServiceUnavailable,
        ),
        ("-ERR [SYS/TEMP] try later", ErrorKind::ServiceUnavailable),
        ("-ERR [AUTH] bad password", ErrorKind::AuthenticationFailed),
        ("-ERR no", ErrorKind::AuthenticationFailed),
    ] {
        let script = pop3_capa()
            .expect("USER u\r\n")
            .send("+OK\r\n")
            .expect("PASS pw\r\n")
            .send(format!("{answer}\r\n"))
            .close();
        check(script, Recipe::pop3(), "u", "pw", Some(kind)).await;
    }
}

#[tokio::test]
async fn ftp_pwd_and_refusals() {
    let script = Script::new()
        .send("220 ftp ready\r\n")
        .expect("USER u\r\n")
        .send("331 password please\r\n")
        .expect("PASS pw\r\n")
        .send("230-welcome\r\n230 logged in\r\n")
        .expect("PWD\r\n")
        .send("257 \"/srv/\"\"q\"\"\" is current\r\n")
        .expect("QUIT\r\n")
        .send("221 bye\r\n")
        .close();
    let r = check(script, Recipe::ftp(), "u", "pw", None).await;
    assert_eq!(fact(&r, "directory"), "/srv/\"q\"");
    for (answer, kind) in [
        ("421 too many users", ErrorKind::ServiceUnavailable),
        ("530 Login incorrect.", ErrorKind::AuthenticationFailed),
    ] {
        let script = Script::new()
            .send("220 ftp ready\r\n")
            .expect("USER u\r\n")
            .send("331 password please\r\n")
            .expect("PASS pw\r\n")
            .send(format!("{answer}\r\n"))
            .close();
        check(script, Recipe::ftp(), "u", "pw", Some(kind)).await;
    }
}

#[tokio::test]
async fn a_password_file_is_named_in_the_curl_command_never_read_into_it() {
    let dir = std::env::temp_dir().join(format!("monitors-mail-scripted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create dir");
    let file = dir.join("pop3-password");
    std::fs::write(&file, "file-secret-5c\nsecond line\n").expect("write password file");
    let script = pop3_capa()
        .expect("USER u\r\n")
        .send("+OK\r\n")
        .expect("PASS file-secret-5c\r\n")
        .send("-ERR [AUTH] no\r\n")
        .close();
    let server = ScriptedServer::start(script).await.unwrap();
    let path = file.display().to_string();
    let login = Login::password_file(&path).user("u").allow_plaintext();
    let spec = TcpMonitor::new("scripted-login", "127.0.0.1", server.port())
        .recipe(Recipe::pop3().with_login(login))
        .timeouts(2_000, 1_000, 5_000);
    let r = Engine::new()
        .with_clock(NoWaitClock)
        .check(&spec.validate().unwrap())
        .await;
    let e = r.error.as_ref().expect("error");
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "{}", r.to_json());
    let last = e.hints.last().expect("hints");
    let want = format!(
        "curl --url pop3://127.0.0.1:{} --user \"u:$(head -n1 {path})\"",
        server.port()
    );
    assert!(last.ends_with(&want), "{last}");
    assert!(!r.to_json().contains("file-secret-5c"), "{}", r.to_json());
    let _ = std::fs::remove_dir_all(&dir);
}
