//! PostgreSQL (frontend/backend protocol 3.0): the codec (startup message, ErrorResponse
//! fields, authentication names), the STARTTLS upgrade (SSLRequest) and the recipe.

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, MAX_LINES, Outcome, mismatch, unavailable, yes_no};
use super::super::upgrade::{MAX_EXCERPT_BYTES, Stage, StartTlsError, Upgrade};
use super::bytes::be32;
use super::postgres_login::{
    DEFAULT_QUERY, MAX_FIRST_VALUE_BYTES, Phase, RECOVERY_COLUMNS, RECOVERY_QUERY, Session, message,
};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::login::Login;
use postgres_protocol::message::frontend;

/// SSLRequest: length 8, then the code 1234 5679.
const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// How much of an ErrorResponse is read to show it.
const PG_ERROR_BYTES: usize = 1024;

/// PostgreSQL: the startup message (protocol 3.0) for `user` and `database`.
pub fn postgres_startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // 3 << 16
    for (k, v) in [
        ("user", user),
        ("database", database),
        ("application_name", "monitors"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// The fields of a PostgreSQL ErrorResponse or NoticeResponse body, in order: each field's
/// code (`S` severity, `C` SQLSTATE, `M` message, ...) and its NUL-terminated value, up to
/// the terminating NUL (or a field left unterminated).
pub fn error_fields(body: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = body;
    std::iter::from_fn(move || {
        let (&kind, tail) = rest.split_first()?;
        if kind == 0 {
            return None;
        }
        let end = memchr::memchr(0, tail)?;
        let value = tail.get(..end)?;
        rest = tail.get(end + 1..)?;
        Some((kind, value))
    })
}

/// The value of field `kind` of an ErrorResponse body, if it has one.
fn error_field(body: &[u8], kind: u8) -> Option<&[u8]> {
    error_fields(body).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

/// The fields of a PostgreSQL ErrorResponse or NoticeResponse body, by field code
/// (`S` severity, `C` SQLSTATE, `M` message, ...).
pub fn postgres_fields(body: &[u8]) -> BTreeMap<char, String> {
    error_fields(body)
        .map(|(k, v)| (k as char, String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// The name of a PostgreSQL authentication request code.
pub fn postgres_auth_name(code: u32, body: &[u8]) -> String {
    match code {
        0 => "trust".to_owned(),
        2 => "kerberos".to_owned(),
        3 => "password".to_owned(),
        5 => "md5".to_owned(),
        7 => "gss".to_owned(),
        9 => "sspi".to_owned(),
        10 => {
            let mechanisms: Vec<String> = body
                .split(|b| *b == 0)
                .filter(|m| !m.is_empty())
                .map(|m| String::from_utf8_lossy(m).to_lowercase())
                .collect();
            mechanisms.join(" ")
        }
        other => format!("method {other}"),
    }
}

/// SQLSTATEs that mean the server is up but not serving new sessions: starting up, shutting
/// down or in recovery (57P0x), too many connections (53300), out of resources (53xxx).
pub fn postgres_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("57P") || sqlstate.starts_with("53")
}

/// PostgreSQL: SSLRequest, answered by one byte.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    conn.send(Stage::Upgrade, &PG_SSL_REQUEST).await?;
    conn.begin();
    let answer = conn.exact(Stage::Upgrade, 1).await?;
    match answer.first() {
        Some(b'S') => {
            conn.drained("the S answer to SSLRequest")?;
            Ok(None)
        }
        Some(b'N') => Err(conn.not_offered("it answered N to SSLRequest")),
        Some(b'E') => {
            // An ErrorResponse: Int32 length, then fields. Read what there is to show it;
            // the server closes after sending it, so a failed read ends the attempt.
            loop {
                let unread = conn.unread();
                let want = unread
                    .get(..4)
                    .and_then(be32)
                    .map_or(4, |len| usize::try_from(len).unwrap_or(usize::MAX))
                    .clamp(4, PG_ERROR_BYTES);
                if unread.len() >= want || conn.fill(Stage::Upgrade).await.is_err() {
                    break;
                }
            }
            let message = conn
                .unread()
                .get(4..)
                .and_then(|body| error_field(body, b'M'))
                .map(|m| escape_excerpt(m, MAX_EXCERPT_BYTES));
            Err(conn.unexpected(match message {
                Some(m) => format!("S or N in answer to SSLRequest, not the error \"{m}\""),
                None => "S or N in answer to SSLRequest, not an error message".to_owned(),
            }))
        }
        _ => Err(conn.unexpected("S or N in answer to SSLRequest")),
    }
}

/// The most messages a PostgreSQL recipe reads (startup and, with a login, two queries):
/// the query should return few rows; the connection's byte cap bounds them too.
pub const MAX_PG_MESSAGES: usize = 4096;

/// The PostgreSQL recipe: the startup message, answered by an authentication request,
/// an error, or (trusted) the server's parameters and ReadyForQuery. With a login it
/// answers the authentication request, then asks whether the server is in recovery and
/// runs the login's query ([`super::postgres_login`]).
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    user: &str,
    database: &str,
    login: Option<&Login>,
    learned: &mut Learned,
) -> Outcome {
    if cx.upgraded.is_some() {
        learned.insert("ssl".into(), yes_no(true));
    }
    let mut session = login.map(|l| Session::new(l, user, database, cx.secret));
    s.send(
        &postgres_startup(user, database),
        "sending the startup message",
    )
    .await?;
    let limit = if session.is_some() {
        MAX_PG_MESSAGES
    } else {
        MAX_LINES
    };
    for _ in 0..limit {
        let head = s.take(5, "a PostgreSQL message").await?;
        let kind = head[0];
        let len = head.get(1..5).and_then(be32).unwrap_or_default() as usize;
        if !(b"REZSKNvTDCIAn".contains(&kind)) || !(4..=1 << 20).contains(&len) {
            return Err(mismatch(
                cx,
                "a PostgreSQL message",
                &escape_excerpt(&head, 16),
            ));
        }
        let body = s.take(len - 4, "the body of a PostgreSQL message").await?;
        match kind {
            b'R' => {
                let code = body.get(..4).and_then(be32).unwrap_or(u32::MAX);
                let data = body.get(4..).unwrap_or_default();
                let Some(session) = session.as_mut() else {
                    if code != 0 {
                        learned.insert("auth_method".into(), postgres_auth_name(code, data));
                        // Authentication requested: the server serves; we have no password.
                        return Ok(());
                    }
                    learned.insert("auth_method".into(), "trust".into());
                    continue;
                };
                let mut method = None;
                let name = postgres_auth_name(code, data);
                let answer = session.answer(cx, code, data, &name, &mut method)?;
                if let Some(method) = method {
                    learned.insert("auth_method".into(), method);
                }
                if code == 0 {
                    learned
                        .entry("auth_method".into())
                        .or_insert_with(|| "trust".into());
                }
                if let Some(answer) = answer {
                    s.send(&answer, "answering the authentication request")
                        .await?;
                }
            }
            b'S' => {
                let mut parts = body.split(|b| *b == 0);
                match (parts.next(), parts.next()) {
                    (Some(b"server_version"), Some(v)) => {
                        learned.insert(
                            "server_version".into(),
                            String::from_utf8_lossy(v).into_owned(),
                        );
                    }
                    (Some(b"default_transaction_read_only" | b"in_hot_standby"), Some(b"on")) => {
                        if let Some(session) = session.as_mut() {
                            session.read_only_said = true;
                        }
                    }
                    _ => {}
                }
            }
            b'D' => {
                let Some(session) = session.as_mut() else {
                    continue;
                };
                if session.row_seen {
                    continue;
                }
                session.row_seen = true;
                match session.phase {
                    Phase::Recovery => recovery_facts(&body, session.read_only_said, learned),
                    Phase::Query => {
                        let value = row_values(&body, 1).into_iter().next().flatten();
                        learned.insert(
                            "query_first_value".into(),
                            match value {
                                Some(v) => escape_excerpt(&v, MAX_FIRST_VALUE_BYTES),
                                None => "NULL".into(),
                            },
                        );
                    }
                    Phase::Startup => {}
                }
            }
            b'E' => {
                let fields = postgres_fields(&body);
                let get = |c: char| fields.get(&c).cloned().unwrap_or_default();
                let (severity, code, message) = (get('V'), get('C'), get('M'));
                let text = format!("{severity} {code}: {message}");
                learned.insert("server_error".into(), text.clone());
                if postgres_unavailable(&code) {
                    let hints = vec![
                        "57P03: the server is starting up, shutting down or in recovery; 53300: too many connections".to_owned(),
                        "check the server's log and max_connections".to_owned(),
                    ];
                    return Err(unavailable(cx, "PostgreSQL", &text, hints));
                }
                if let Some(session) = &session {
                    return Err(session.error(cx, &code, &message));
                }
                // Refused for this user or database (no pg_hba entry, no such role):
                // the server is up and answering, which is what the recipe proves.
                return Ok(());
            }
            b'Z' => {
                let next = match session.as_mut() {
                    None => None,
                    Some(session) => {
                        session.row_seen = false;
                        match session.phase {
                            Phase::Startup => {
                                session.phase = Phase::Recovery;
                                Some(RECOVERY_QUERY)
                            }
                            Phase::Recovery => {
                                session.phase = Phase::Query;
                                Some(session.login.query_or(DEFAULT_QUERY))
                            }
                            Phase::Query => None,
                        }
                    }
                };
                if let Some(query) = next {
                    let bytes = message(|b| frontend::query(query, b))
                        .map_err(|why| mismatch(cx, "a query the monitor can send", &why))?;
                    s.send(&bytes, "sending the query").await?;
                    continue;
                }
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

/// The facts of the recovery query's row ([`RECOVERY_QUERY`]): `in_recovery`, `role`
/// (`primary` or `replica`), `replication_lag_ms` when known, and `read_only` (`yes` in
/// recovery, or when the session's `default_transaction_read_only` is on, as the row or
/// the startup parameters (`read_only_said`) tell).
fn recovery_facts(body: &[u8], read_only_said: bool, learned: &mut Learned) {
    let values = row_values(body, RECOVERY_COLUMNS);
    let column = |i: usize| values.get(i).and_then(Option::as_deref);
    let in_recovery = column(0) == Some(b"t".as_slice());
    learned.insert("in_recovery".into(), yes_no(in_recovery));
    learned.insert(
        "role".into(),
        if in_recovery { "replica" } else { "primary" }.into(),
    );
    let lag = column(1)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok());
    match lag {
        Some(ms) => learned.insert("replication_lag_ms".into(), ms.to_string()),
        // A row of one column (an older query) on a primary: no lag.
        None if !in_recovery && values.len() < 2 => {
            learned.insert("replication_lag_ms".into(), "0".into())
        }
        None => None,
    };
    let read_only_setting = column(2) == Some(b"on".as_slice());
    learned.insert(
        "read_only".into(),
        yes_no(in_recovery || read_only_said || read_only_setting),
    );
}

/// The first `most` columns of a DataRow body, each `None` for NULL; a row shorter than
/// it says ends the list (a column that does not fit is `None`).
fn row_values(body: &[u8], most: usize) -> Vec<Option<Vec<u8>>> {
    let count = body
        .get(..2)
        .and_then(|c| <[u8; 2]>::try_from(c).ok())
        .map_or(0, u16::from_be_bytes);
    let mut values = Vec::new();
    let mut at = 2usize;
    for _ in 0..usize::from(count).min(most) {
        let Some(len) = body.get(at..at + 4).and_then(be32) else {
            values.push(None);
            break;
        };
        at += 4;
        if len == u32::MAX {
            values.push(None); // -1: NULL
            continue;
        }
        let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l));
        let Some(value) = end.and_then(|end| body.get(at..end)) else {
            values.push(None);
            break;
        };
        values.push(Some(value.to_vec()));
        at += value.len();
    }
    values
}
