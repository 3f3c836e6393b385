//! Speaks a monitor's [`Recipe`] over a ready connection: each protocol's first words,
//! the answer judged (serving, unavailable, asking for credentials, not this protocol),
//! and the facts it tells recorded.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::classify::{error, place};
use super::dialog::{DialogError, Session};
use super::starttls::Negotiated;
use crate::recipes::{self as wire, Bson, Learned, MysqlGreeting, Recipe};
use crate::result::ErrorKind;
use crate::spec::TcpMonitor;

/// How long a goodbye (QUIT, LOGOUT) waits for the server to close.
const GOODBYE: Duration = Duration::from_millis(500);

/// The most lines read while looking for one reply (a greeting, a capability list).
const MAX_LINES: usize = 256;

/// What a recipe needs besides the connection.
pub(crate) struct Context<'a> {
    pub spec: &'a TcpMonitor,
    /// The recipe's password, or the name of the unset variable that should hold it.
    pub secret: Option<&'a Result<String, String>>,
    /// The plaintext dialog STARTTLS already ran (greeting and capabilities included).
    pub upgraded: Option<&'a Negotiated>,
    /// Whether steps follow; without them the recipe says goodbye.
    pub steps_follow: bool,
    /// Where the connection goes, for messages.
    pub addr: std::net::SocketAddr,
}

type Outcome = Result<(), DialogError>;

/// Speaks `recipe` on `session`, recording what it learns in `learned`.
pub(crate) async fn speak<S: AsyncRead + AsyncWrite + Unpin>(
    recipe: &Recipe,
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    match recipe {
        Recipe::Redis {
            password_env,
            username,
        } => redis(s, cx, password_env.as_deref(), username.as_deref(), learned).await,
        Recipe::Memcached => memcached(s, cx, learned).await,
        Recipe::Ssh => ssh(s, cx, learned).await,
        Recipe::Smtp { helo } => smtp(s, cx, helo, learned).await,
        Recipe::Ftp => ftp(s, cx, learned).await,
        Recipe::Imap => imap(s, cx, learned).await,
        Recipe::Pop3 => pop3(s, cx, learned).await,
        Recipe::Postgres { user, database } => {
            postgres(s, cx, user, database.as_deref().unwrap_or(user), learned).await
        }
        Recipe::Mysql => mysql(s, cx, learned).await,
        Recipe::Mongodb => mongodb(s, cx, learned).await,
    }
}

/// A failure a recipe understood.
fn said(cx: &Context<'_>, kind: ErrorKind, message: String, hints: Vec<String>) -> DialogError {
    DialogError::Said(error(kind, message, hints, cx.spec))
}

/// The server answered in another protocol.
fn mismatch(cx: &Context<'_>, protocol: &str, got: &str) -> DialogError {
    let target = place(cx.spec, Some(cx.addr));
    said(
        cx,
        ErrorKind::ProtocolMismatch,
        format!(
            "{target} answered `{}`, which is not {protocol}",
            got.escape_debug()
                .to_string()
                .chars()
                .take(120)
                .collect::<String>()
        ),
        vec![
            format!(
                "another service may listen on port {}: check which process owns it",
                cx.spec.target.port
            ),
            if cx.spec.tls.mode == crate::spec::TlsMode::None {
                "the service may expect TLS on this port: set tls.mode to direct".to_owned()
            } else {
                "the service may not expect TLS on this port: check tls.mode".to_owned()
            },
        ],
    )
}

/// The server speaks the protocol but turned us away for now.
fn unavailable(cx: &Context<'_>, protocol: &str, text: &str, hints: Vec<String>) -> DialogError {
    let target = place(cx.spec, Some(cx.addr));
    said(
        cx,
        ErrorKind::ServiceUnavailable,
        format!("{protocol} at {target} is not serving: {text}"),
        hints,
    )
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Says goodbye when no steps follow; the answer is not judged.
async fn goodbye<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    bytes: &[u8],
) -> Outcome {
    if !cx.steps_follow {
        // A server that already closed has nothing left to say; that is not a failure.
        if s.send(bytes, "sending the goodbye").await.is_ok() {
            s.drain(GOODBYE).await;
        }
    }
    Ok(())
}

async fn redis<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    password_env: Option<&str>,
    username: Option<&str>,
    learned: &mut Learned,
) -> Outcome {
    let target = place(cx.spec, Some(cx.addr));
    if let (Some(var), Some(secret)) = (password_env, cx.secret) {
        let password = secret.as_ref().map_err(|var| {
            said(
                cx,
                ErrorKind::Config,
                format!("the redis recipe reads its password from the environment variable {var}, which is not set on this machine"),
                vec![format!("set {var} in the environment of the process that runs the monitors")],
            )
        })?;
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = username {
            args.push(user.as_bytes());
        }
        args.push(password.as_bytes());
        s.send(&wire::resp_command(&args), "sending AUTH").await?;
        let reply = s.line("the reply to AUTH").await?;
        learned.insert("auth".into(), "password".into());
        if reply != "+OK" {
            let upper = reply.to_ascii_uppercase();
            let hint = if upper.contains("WRONGPASS") || upper.contains("INVALID") {
                format!(
                    "the password in {var} is not the server's: compare it with requirepass or the ACL user"
                )
            } else if upper.contains("NO PASSWORD") || upper.contains("WITHOUT ANY PASSWORD") {
                format!(
                    "the server has no password set: remove password_env, or set requirepass on the server to the value of {var}"
                )
            } else {
                "check the user's ACL rules (ACL GETUSER)".to_owned()
            };
            return Err(match reply.as_bytes().first() {
                Some(b'-') => said(
                    cx,
                    ErrorKind::AuthenticationFailed,
                    format!(
                        "Redis at {target} refused AUTH: {}",
                        reply.trim_start_matches('-')
                    ),
                    vec![hint],
                ),
                _ => mismatch(cx, "a Redis reply", &reply),
            });
        }
    }
    s.send(&wire::resp_command(&[b"PING"]), "sending PING")
        .await?;
    let reply = s.line("the reply to PING").await?;
    match reply.as_bytes().first() {
        _ if reply == "+PONG" => {}
        Some(b'-') => {
            let text = reply.trim_start_matches('-');
            let code = text.split(' ').next().unwrap_or_default();
            return Err(match code {
                "NOAUTH" => said(
                    cx,
                    ErrorKind::AuthenticationFailed,
                    format!("Redis at {target} requires a password: {text}"),
                    vec![
                        "set recipe password_env to the name of an environment variable holding the password".to_owned(),
                        "and set that variable where the monitors run".to_owned(),
                    ],
                ),
                "WRONGPASS" => said(
                    cx,
                    ErrorKind::AuthenticationFailed,
                    format!("Redis at {target} refused the credentials: {text}"),
                    vec!["check the password and user against the server's ACL".to_owned()],
                ),
                "LOADING" => unavailable(
                    cx,
                    "Redis",
                    text,
                    vec!["the server is loading its dataset after a restart; it serves once loading completes".to_owned()],
                ),
                _ => unavailable(
                    cx,
                    "Redis",
                    text,
                    vec!["read the error: the server may be out of memory, read-only, or have a master down".to_owned()],
                ),
            });
        }
        _ => return Err(mismatch(cx, "a Redis reply to PING", &reply)),
    }
    // The version, when the server lets us ask; a renamed or forbidden INFO is no failure.
    s.send(
        &wire::resp_command(&[b"INFO", b"server"]),
        "sending INFO server",
    )
    .await?;
    let header = s.line("the reply to INFO").await?;
    if let Some(len) = header
        .strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
    {
        let body = s.take(len + 2, "the body of the INFO reply").await?;
        let body = String::from_utf8_lossy(&body);
        let info = wire::redis_info(&body);
        for (from, to) in [
            ("redis_version", "server_version"),
            ("redis_mode", "mode"),
            ("os", "os"),
        ] {
            if let Some(v) = info.get(from) {
                learned.insert(to.into(), (*v).to_owned());
            }
        }
    }
    goodbye(s, cx, &wire::resp_command(&[b"QUIT"])).await
}

async fn memcached<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    s.send(b"version\r\n", "sending `version`").await?;
    let reply = s.line("the reply to `version`").await?;
    if let Some(version) = reply.strip_prefix("VERSION ") {
        learned.insert("server_version".into(), version.trim().to_owned());
        return goodbye(s, cx, b"quit\r\n").await;
    }
    if reply.starts_with("SERVER_ERROR") || reply == "ERROR" {
        return Err(unavailable(
            cx,
            "memcached",
            &reply,
            vec!["check the server's logs and memory limits".to_owned()],
        ));
    }
    Err(mismatch(cx, "a memcached reply", &reply))
}

async fn ssh<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    // RFC 4253 4.2: a server may send other lines before its identification.
    let mut before = Vec::new();
    for _ in 0..MAX_LINES {
        let line = match s.line("the SSH identification line").await {
            Ok(line) => line,
            Err(DialogError::Closed { .. }) if !before.is_empty() => {
                let text: String = before.join(" ");
                return Err(unavailable(
                    cx,
                    "SSH",
                    &text,
                    vec!["the server turned the connection away before identifying itself: check MaxStartups and its access rules".to_owned()],
                ));
            }
            Err(e) => return Err(e),
        };
        if let Some(ident) = wire::ssh_ident(&line) {
            learned.insert("protocol_version".into(), ident.protocol.to_owned());
            learned.insert("software".into(), ident.software.to_owned());
            if let Some(c) = ident.comments {
                learned.insert("comments".into(), c.to_owned());
            }
            if !matches!(ident.protocol, "2.0" | "1.99") {
                return Err(unavailable(
                    cx,
                    "SSH",
                    &format!(
                        "the server speaks only SSH protocol {}, which is insecure and unsupported",
                        ident.protocol
                    ),
                    vec!["upgrade the SSH server".to_owned()],
                ));
            }
            return Ok(());
        }
        if line.starts_with("SSH-") || before.len() > 8 {
            return Err(mismatch(cx, "an SSH identification line", &line));
        }
        before.push(line);
    }
    Err(mismatch(
        cx,
        "an SSH identification line",
        &before.join(" "),
    ))
}

/// One reply of a protocol with three-digit codes (SMTP, FTP), multi-line replies joined.
async fn coded_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    protocol: &str,
    what: &str,
) -> Result<(u16, Vec<String>), DialogError> {
    let first = s.line(what).await?;
    let code = first
        .get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| mismatch(cx, protocol, &first))?;
    let mut lines = vec![strip_code(&first)];
    if first.as_bytes().get(3) == Some(&b'-') {
        let (end, bare) = (format!("{code} "), code.to_string());
        loop {
            let line = s.line(what).await?;
            let done = line.starts_with(&end) || line == bare;
            lines.push(if line.starts_with(&bare) {
                strip_code(&line)
            } else {
                line
            });
            if done {
                break;
            }
            if lines.len() > MAX_LINES {
                return Err(mismatch(cx, protocol, "a reply of too many lines"));
            }
        }
    }
    Ok((code, lines))
}

async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    helo: &str,
    learned: &mut Learned,
) -> Outcome {
    match cx.upgraded {
        Some(pre) => {
            learned.insert(
                "banner".into(),
                strip_code(pre.greeting.as_deref().unwrap_or_default()),
            );
            learned.insert("starttls_offered".into(), yes_no(true));
        }
        None => {
            let (code, lines) = coded_reply(s, cx, "an SMTP greeting", "the SMTP greeting").await?;
            let text = lines.join(" ");
            learned.insert("banner".into(), lines[0].clone());
            if code != 220 {
                return Err(unavailable(
                    cx,
                    "SMTP",
                    &format!("{code} {text}"),
                    vec!["the server refuses mail sessions now (421 busy, 554 not accepting): check its logs and limits".to_owned()],
                ));
            }
        }
    }
    s.send(format!("EHLO {helo}\r\n").as_bytes(), "sending EHLO")
        .await?;
    let (code, lines) = coded_reply(s, cx, "an SMTP reply", "the reply to EHLO").await?;
    if code == 250 {
        let extensions: Vec<String> = lines[1..]
            .iter()
            .filter_map(|l| l.split(' ').next())
            .map(str::to_ascii_uppercase)
            .collect();
        if cx.upgraded.is_none() {
            learned.insert(
                "starttls_offered".into(),
                yes_no(extensions.iter().any(|e| e == "STARTTLS")),
            );
        }
        learned.insert("extensions".into(), extensions.join(" "));
    } else {
        return Err(unavailable(
            cx,
            "SMTP",
            &format!("EHLO answered {code} {}", lines.join(" ")),
            vec![format!(
                "check that the server accepts EHLO {helo} from this address"
            )],
        ));
    }
    goodbye(s, cx, b"QUIT\r\n").await
}

/// A greeting line without its reply code.
fn strip_code(line: &str) -> String {
    line.get(3..)
        .unwrap_or_default()
        .trim_start_matches(['-', ' '])
        .to_owned()
}

async fn ftp<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    match cx.upgraded {
        Some(pre) => {
            learned.insert(
                "banner".into(),
                strip_code(pre.greeting.as_deref().unwrap_or_default()),
            );
            learned.insert("auth_tls".into(), yes_no(true));
        }
        None => {
            let (code, lines) = coded_reply(s, cx, "an FTP greeting", "the FTP greeting").await?;
            learned.insert("banner".into(), lines[0].clone());
            match code {
                220 => {}
                120 | 421 => {
                    return Err(unavailable(
                        cx,
                        "FTP",
                        &format!("{code} {}", lines.join(" ")),
                        vec![
                            "the server is busy or starting: check its connection limits and logs"
                                .to_owned(),
                        ],
                    ));
                }
                _ => {
                    return Err(mismatch(
                        cx,
                        "an FTP greeting (220)",
                        &format!("{code} {}", lines.join(" ")),
                    ));
                }
            }
        }
    }
    goodbye(s, cx, b"QUIT\r\n").await
}

async fn imap<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    let greeting = match cx.upgraded {
        Some(pre) => pre.greeting.clone().unwrap_or_default(),
        None => s.line("the IMAP greeting").await?,
    };
    learned.insert(
        "greeting".into(),
        greeting.trim_start_matches("* ").to_owned(),
    );
    if let Some(text) = greeting.strip_prefix("* BYE") {
        return Err(unavailable(
            cx,
            "IMAP",
            text.trim(),
            vec![
                "the server turned the session away: check its connection limits and logs"
                    .to_owned(),
            ],
        ));
    }
    if !(greeting.starts_with("* OK") || greeting.starts_with("* PREAUTH")) {
        return Err(mismatch(cx, "an IMAP greeting (`* OK`)", &greeting));
    }
    s.send(b"m1 CAPABILITY\r\n", "sending CAPABILITY").await?;
    for _ in 0..MAX_LINES {
        let line = s.line("the reply to CAPABILITY").await?;
        if let Some(caps) = line.strip_prefix("* CAPABILITY ") {
            learned.insert("capabilities".into(), caps.to_owned());
            if cx.upgraded.is_none() {
                let offered = caps.split(' ').any(|c| c.eq_ignore_ascii_case("STARTTLS"));
                learned.insert("starttls_offered".into(), yes_no(offered));
            }
        } else if line.starts_with("m1 ") {
            if !line.starts_with("m1 OK") {
                return Err(mismatch(cx, "an IMAP answer to CAPABILITY", &line));
            }
            if cx.upgraded.is_some() {
                learned.insert("starttls_offered".into(), yes_no(true));
            }
            return goodbye(s, cx, b"m2 LOGOUT\r\n").await;
        }
    }
    Err(mismatch(
        cx,
        "an IMAP answer to CAPABILITY",
        "too many lines",
    ))
}

async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    let greeting = match cx.upgraded {
        Some(pre) => pre.greeting.clone().unwrap_or_default(),
        None => s.line("the POP3 greeting").await?,
    };
    if let Some(text) = greeting.strip_prefix("-ERR") {
        return Err(unavailable(
            cx,
            "POP3",
            text.trim(),
            vec![
                "the server turned the session away: check its connection limits and logs"
                    .to_owned(),
            ],
        ));
    }
    let Some(text) = greeting.strip_prefix("+OK") else {
        return Err(mismatch(cx, "a POP3 greeting (`+OK`)", &greeting));
    };
    learned.insert("greeting".into(), text.trim().to_owned());
    s.send(b"CAPA\r\n", "sending CAPA").await?;
    let status = s.line("the reply to CAPA").await?;
    if status.starts_with("+OK") {
        let mut caps = Vec::new();
        for _ in 0..MAX_LINES {
            let line = s.line("the capability list").await?;
            if line == "." {
                break;
            }
            caps.push(line);
        }
        if cx.upgraded.is_none() {
            let offered = caps.iter().any(|c| c.eq_ignore_ascii_case("STLS"));
            learned.insert("starttls_offered".into(), yes_no(offered));
        } else {
            learned.insert("starttls_offered".into(), yes_no(true));
        }
        learned.insert("capabilities".into(), caps.join(" "));
    } else if !status.starts_with("-ERR") {
        return Err(mismatch(cx, "a POP3 answer to CAPA", &status));
    }
    goodbye(s, cx, b"QUIT\r\n").await
}

async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    user: &str,
    database: &str,
    learned: &mut Learned,
) -> Outcome {
    if cx.upgraded.is_some() {
        learned.insert("ssl".into(), yes_no(true));
    }
    s.send(
        &wire::postgres_startup(user, database),
        "sending the startup message",
    )
    .await?;
    for _ in 0..MAX_LINES {
        let head = s.take(5, "a PostgreSQL message").await?;
        let kind = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(b"REZSKNv".contains(&kind)) || !(4..=1 << 20).contains(&len) {
            return Err(mismatch(
                cx,
                "a PostgreSQL message",
                &crate::escape::escape_excerpt(&head, 16),
            ));
        }
        let body = s.take(len - 4, "the body of a PostgreSQL message").await?;
        match kind {
            b'R' => {
                let code = body
                    .get(..4)
                    .map_or(u32::MAX, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                if code != 0 {
                    learned.insert(
                        "auth_method".into(),
                        wire::postgres_auth_name(code, body.get(4..).unwrap_or_default()),
                    );
                    // Authentication requested: the server serves; we have no password.
                    return Ok(());
                }
                learned.insert("auth_method".into(), "trust".into());
            }
            b'S' => {
                let mut parts = body.split(|b| *b == 0);
                if let (Some(b"server_version"), Some(v)) = (parts.next(), parts.next()) {
                    learned.insert(
                        "server_version".into(),
                        String::from_utf8_lossy(v).into_owned(),
                    );
                }
            }
            b'E' => {
                let fields = wire::postgres_fields(&body);
                let get = |c: char| fields.get(&c).cloned().unwrap_or_default();
                let (severity, code, message) = (get('V'), get('C'), get('M'));
                let text = format!("{severity} {code}: {message}");
                learned.insert("server_error".into(), text.clone());
                if wire::postgres_unavailable(&code) {
                    return Err(unavailable(
                        cx,
                        "PostgreSQL",
                        &text,
                        vec![
                            "57P03: the server is starting up, shutting down or in recovery; 53300: too many connections".to_owned(),
                            "check the server's log and max_connections".to_owned(),
                        ],
                    ));
                }
                // Refused for this user or database (no pg_hba entry, no such role):
                // the server is up and answering, which is what the recipe proves.
                return Ok(());
            }
            b'Z' => {
                if !cx.steps_follow {
                    s.send(b"X\0\0\0\x04", "sending Terminate").await?;
                }
                return Ok(());
            }
            _ => {}
        }
    }
    Err(mismatch(
        cx,
        "a PostgreSQL startup answer",
        "too many messages",
    ))
}

async fn mysql<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    let payload = match cx.upgraded {
        // STARTTLS already read the handshake: it opens the plaintext transcript.
        Some(pre) => pre.transcript.get(4..).unwrap_or_default().to_vec(),
        None => {
            let head = s.take(4, "the MySQL handshake packet header").await?;
            let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
            if len == 0 || head[3] != 0 {
                return Err(mismatch(
                    cx,
                    "a MySQL handshake",
                    &crate::escape::escape_excerpt(&head, 16),
                ));
            }
            s.take(len, "the MySQL handshake packet").await?
        }
    };
    match wire::mysql_greeting(&payload) {
        Ok(MysqlGreeting::Handshake(h)) => {
            learned.insert("protocol_version".into(), h.protocol_version.to_string());
            learned.insert("server_version".into(), h.server_version);
            learned.insert("capabilities".into(), format!("{:#010x}", h.capabilities));
            learned.insert(
                "ssl".into(),
                yes_no(h.capabilities & wire::MYSQL_CLIENT_SSL != 0),
            );
            if let Some(plugin) = h.auth_plugin {
                learned.insert("auth_plugin".into(), plugin);
            }
            Ok(())
        }
        Ok(MysqlGreeting::Error { code, message }) => {
            let text = format!("error {code}: {message}");
            learned.insert("server_error".into(), text.clone());
            Err(unavailable(
                cx,
                "MySQL",
                &text,
                vec![match code {
                    1040 => "too many connections: raise max_connections or find the client holding them".to_owned(),
                    1129 => "this host is blocked after connection errors: run `mysqladmin flush-hosts` and raise max_connect_errors".to_owned(),
                    1130 => "this host may not connect: grant access to a user for this address".to_owned(),
                    _ => "read the error text and the server's error log".to_owned(),
                }],
            ))
        }
        Err(why) => Err(mismatch(
            cx,
            "a MySQL handshake",
            &format!("{why}: {}", crate::escape::escape_excerpt(&payload, 64)),
        )),
    }
}

async fn mongodb<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    s.send(&wire::mongodb_hello(1), "sending the OP_MSG hello")
        .await?;
    let mut message = s.take(16, "the MongoDB reply header").await.map_err(|e| match e {
        DialogError::Closed { .. } => said(
            cx,
            ErrorKind::ProtocolMismatch,
            format!(
                "{} closed the connection after an OP_MSG hello",
                place(cx.spec, Some(cx.addr))
            ),
            vec!["MongoDB before 3.6 does not speak OP_MSG; otherwise the port may not be MongoDB".to_owned()],
        ),
        other => other,
    })?;
    let len = i32::from_le_bytes([message[0], message[1], message[2], message[3]]);
    let Some(rest) = usize::try_from(len)
        .ok()
        .filter(|l| (21..=48 << 20).contains(l))
    else {
        return Err(mismatch(
            cx,
            "a MongoDB reply",
            &crate::escape::escape_excerpt(&message, 16),
        ));
    };
    message.extend(s.take(rest - 16, "the MongoDB reply").await?);
    let fields = wire::mongodb_reply(&message)
        .map_err(|why| mismatch(cx, "a MongoDB OP_MSG reply", &why))?;
    let number = |k: &str| match fields.get(k) {
        Some(Bson::Number(n)) => Some(*n),
        _ => None,
    };
    let text = |k: &str| match fields.get(k) {
        Some(Bson::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let flag = |k: &str| matches!(fields.get(k), Some(Bson::Bool(true)));
    if let Some(max) = number("maxWireVersion") {
        learned.insert("max_wire_version".into(), (max as i64).to_string());
        if let Some(release) = wire::mongodb_release(max as i64) {
            learned.insert("server_release".into(), release.to_owned());
        }
    }
    if let Some(min) = number("minWireVersion") {
        learned.insert("min_wire_version".into(), (min as i64).to_string());
    }
    if let Some(set) = text("setName") {
        learned.insert("replica_set".into(), set);
    }
    let role = if text("msg").as_deref() == Some("isdbgrid") {
        "mongos"
    } else if flag("isWritablePrimary") || flag("ismaster") {
        if fields.contains_key("setName") {
            "primary"
        } else {
            "standalone"
        }
    } else if flag("secondary") {
        "secondary"
    } else if flag("arbiterOnly") {
        "arbiter"
    } else {
        "other"
    };
    learned.insert("role".into(), role.to_owned());
    if number("ok") != Some(1.0) {
        let why = text("errmsg").unwrap_or_else(|| "ok is not 1".to_owned());
        return Err(unavailable(
            cx,
            "MongoDB",
            &why,
            vec!["read the error and the server's log".to_owned()],
        ));
    }
    Ok(())
}
