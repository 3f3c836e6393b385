//! The MongoDB login: after `hello`, `saslStart`/`saslContinue` with SCRAM-SHA-256
//! ([`super::scram`]) on the login's authentication database, the server's signature
//! checked, then `ping`; the server's command errors sorted into the kinds a pager acts on.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{Context, Learned, Outcome, mismatch, said, yes_no};
use super::mongodb::{self, Bson, op_msg, read_reply};
use super::scram::{SCRAM_SHA_256, ScramClient, ScramError, random_nonce};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;
use std::collections::BTreeMap;

/// The authentication database of a login that names none.
pub const DEFAULT_AUTH_DATABASE: &str = "admin";

/// MongoDB's AuthenticationFailed error code.
const AUTHENTICATION_FAILED: i64 = 18;

/// MongoDB's Unauthorized error code.
const UNAUTHORIZED: i64 = 13;

/// The most `saslContinue` rounds after the client-final message (a server that does not
/// honour `skipEmptyExchange` asks for one empty round).
const MAX_EMPTY_ROUNDS: usize = 2;

/// A BSON value the login sends.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// int32.
    Int(i32),
    /// UTF-8 string.
    Str(&'a str),
    /// binary, subtype 0.
    Bin(&'a [u8]),
    /// boolean.
    Bool(bool),
    /// embedded document.
    Doc(Vec<(&'a str, Value<'a>)>),
}

/// A BSON document of `fields`, in order.
pub fn bson(fields: &[(&str, Value<'_>)]) -> Vec<u8> {
    let mut doc = Vec::new();
    for (name, value) in fields {
        let kind = match value {
            Value::Int(_) => 0x10,
            Value::Str(_) => 0x02,
            Value::Bin(_) => 0x05,
            Value::Bool(_) => 0x08,
            Value::Doc(_) => 0x03,
        };
        doc.push(kind);
        doc.extend_from_slice(name.as_bytes());
        doc.push(0);
        match value {
            Value::Int(n) => doc.extend_from_slice(&n.to_le_bytes()),
            Value::Str(s) => {
                doc.extend_from_slice(&((s.len() + 1) as i32).to_le_bytes());
                doc.extend_from_slice(s.as_bytes());
                doc.push(0);
            }
            Value::Bin(b) => {
                doc.extend_from_slice(&(b.len() as i32).to_le_bytes());
                doc.push(0);
                doc.extend_from_slice(b);
            }
            Value::Bool(b) => doc.push(u8::from(*b)),
            Value::Doc(fields) => doc.extend(bson(fields)),
        }
    }
    doc.push(0);
    let mut out = ((doc.len() + 4) as i32).to_le_bytes().to_vec();
    out.extend(doc);
    out
}

/// The login's password, or the failure saying why there is none (naming the variable or
/// file, never a value).
pub(crate) fn password<'a>(
    cx: &Context<'a>,
    login: &Login,
    recipe: &str,
) -> Result<&'a str, DialogError> {
    let source = match (&login.password_env, &login.password_file) {
        (Some(var), _) => {
            format!("the environment variable {var}, which is not set on this machine")
        }
        (None, Some(file)) => format!("the file {file}, which this machine does not hand out"),
        (None, None) => String::new(),
    };
    match cx.secret {
        Some(Ok(password)) => Ok(password.as_str()),
        _ if source.is_empty() => Err(said(
            cx,
            ErrorKind::Config,
            format!("the {recipe} login names no password"),
            vec!["name the password in recipe.login.password_env or password_file".to_owned()],
        )),
        _ => Err(said(
            cx,
            ErrorKind::Config,
            format!("the {recipe} login reads its password from {source}"),
            vec![
                "set the variable (or hand out the file) on the machine that runs the check"
                    .to_owned(),
            ],
        )),
    }
}

/// The failure a command's `ok: 0` reply means: code 18 a refused login, 13 a refused
/// command, anything else a failed command named by its code name.
fn command_failed(
    cx: &Context<'_>,
    command: &str,
    user: &str,
    database: &str,
    fields: &BTreeMap<String, Bson>,
) -> DialogError {
    let code = match fields.get("code") {
        Some(Bson::Number(n)) => Some(*n as i64),
        _ => None,
    };
    let text = |k: &str| match fields.get(k) {
        Some(Bson::Text(t)) => Some(escape_excerpt(t.as_bytes(), 200)),
        _ => None,
    };
    let errmsg = text("errmsg").unwrap_or_else(|| "ok is not 1".to_owned());
    let name = text("codeName").unwrap_or_else(|| "no codeName".to_owned());
    match code {
        Some(AUTHENTICATION_FAILED) => said(
            cx,
            ErrorKind::AuthenticationFailed,
            format!("MongoDB refused user {user} on database {database}: {errmsg}"),
            vec!["check the password (rotated?), the user and its authentication database (recipe.login.database)".to_owned()],
        ),
        Some(UNAUTHORIZED) => said(
            cx,
            ErrorKind::AccessDenied,
            format!("MongoDB refused {command} to user {user}: {errmsg}"),
            vec!["grant the user the role the command needs".to_owned()],
        ),
        _ => said(
            cx,
            ErrorKind::QueryFailed,
            format!(
                "the MongoDB command {command} failed with {name} ({}): {errmsg}",
                code.map_or_else(|| "no code".to_owned(), |c| c.to_string())
            ),
            vec![format!("run the command by hand as user {user}")],
        ),
    }
}

/// Sends `body` as request `id` and reads the reply, which must say `ok: 1`.
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    (id, name): (i32, &str),
    body: &[u8],
    (user, database): (&str, &str),
) -> Result<BTreeMap<String, Bson>, DialogError> {
    s.send(&op_msg(id, body), &format!("sending {name}"))
        .await?;
    let fields = read_reply(s, cx, name).await?;
    if !matches!(fields.get("ok"), Some(Bson::Number(n)) if *n == 1.0) {
        return Err(command_failed(cx, name, user, database, &fields));
    }
    Ok(fields)
}

/// The SCRAM payload and conversation of a `saslStart`/`saslContinue` reply.
fn sasl_reply(
    cx: &Context<'_>,
    fields: &BTreeMap<String, Bson>,
) -> Result<(Vec<u8>, i32, bool), DialogError> {
    let payload = match fields.get("payload") {
        Some(Bson::Binary(b)) => b.clone(),
        _ => return Err(mismatch(cx, "a MongoDB SASL reply", "no binary payload")),
    };
    let conversation = match fields.get("conversationId") {
        Some(Bson::Number(n)) if n.fract() == 0.0 && n.abs() <= f64::from(i32::MAX) => *n as i32,
        _ => return Err(mismatch(cx, "a MongoDB SASL reply", "no conversationId")),
    };
    let done = matches!(fields.get("done"), Some(Bson::Bool(true)));
    Ok((payload, conversation, done))
}

/// The MongoDB recipe with a login: the `hello` of [`super::mongodb::recipe`] (its role
/// telling `read_only`: `no` on a writable primary, a standalone server or a mongos), then
/// SCRAM-SHA-256 as `login.user` on `login.database` (`admin` when absent), the server's
/// signature verified, then `ping`.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: &Login,
    learned: &mut Learned,
) -> Outcome {
    mongodb::recipe(s, cx, learned).await?;
    let writable = matches!(
        learned.get("role").map(String::as_str),
        Some("primary" | "standalone" | "mongos")
    );
    learned.insert("read_only".into(), yes_no(!writable));
    let database = login.database.as_deref().unwrap_or(DEFAULT_AUTH_DATABASE);
    let Some(user) = login.user.as_deref() else {
        return Err(said(
            cx,
            ErrorKind::Config,
            "the mongodb login names no user".to_owned(),
            vec!["name the user in recipe.login.user".to_owned()],
        ));
    };
    let password = password(cx, login, "mongodb")?;
    let who = (user, database);
    let refused = |e: ScramError| {
        let kind = match e {
            ScramError::Prep(_) => ErrorKind::Config,
            _ => ErrorKind::AuthenticationFailed,
        };
        let hint = match e {
            ScramError::Signature => {
                "the server may not know the password, or something sits between: check the user on the server"
            }
            ScramError::Prep(_) => {
                "SCRAM-SHA-256 prepares the password with SASLprep (RFC 4013): remove control and unassigned characters"
            }
            _ => "check the server's log for the session",
        };
        said(
            cx,
            kind,
            format!("the MongoDB login of user {user} on database {database} failed: {e}"),
            vec![hint.to_owned()],
        )
    };
    let mut scram = ScramClient::new(user, password, &random_nonce()).map_err(refused)?;
    learned.insert("auth_method".into(), SCRAM_SHA_256.to_lowercase());
    let first = scram.client_first();
    let start = bson(&[
        ("saslStart", Value::Int(1)),
        ("mechanism", Value::Str(SCRAM_SHA_256)),
        ("payload", Value::Bin(first.as_bytes())),
        ("autoAuthorize", Value::Int(1)),
        (
            "options",
            Value::Doc(vec![("skipEmptyExchange", Value::Bool(true))]),
        ),
        ("$db", Value::Str(database)),
    ]);
    let reply = command(s, cx, (2, "saslStart"), &start, who).await?;
    let (server_first, conversation, _) = sasl_reply(cx, &reply)?;
    let last = scram.client_final(&server_first).map_err(refused)?;
    let next = bson(&[
        ("saslContinue", Value::Int(1)),
        ("conversationId", Value::Int(conversation)),
        ("payload", Value::Bin(last.as_bytes())),
        ("$db", Value::Str(database)),
    ]);
    let reply = command(s, cx, (3, "saslContinue"), &next, who).await?;
    let (server_final, conversation, mut done) = sasl_reply(cx, &reply)?;
    scram.verify(&server_final).map_err(refused)?;
    for round in 0..MAX_EMPTY_ROUNDS {
        if done {
            break;
        }
        let empty = bson(&[
            ("saslContinue", Value::Int(1)),
            ("conversationId", Value::Int(conversation)),
            ("payload", Value::Bin(b"")),
            ("$db", Value::Str(database)),
        ]);
        let reply = command(s, cx, (4 + round as i32, "saslContinue"), &empty, who).await?;
        done = sasl_reply(cx, &reply)?.2;
    }
    if !done {
        return Err(refused(ScramError::Malformed(
            "did not end the exchange after the signature".into(),
        )));
    }
    let ping = bson(&[("ping", Value::Int(1)), ("$db", Value::Str(database))]);
    command(s, cx, (10, "ping"), &ping, who).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::mongodb::{bson_document, mongodb_reply};
    use super::*;

    #[test]
    fn built_commands_read_back() {
        let body = bson(&[
            ("saslStart", Value::Int(1)),
            ("payload", Value::Bin(b"n,,n=u,r=abc")),
            (
                "options",
                Value::Doc(vec![("skipEmptyExchange", Value::Bool(true))]),
            ),
            ("$db", Value::Str("admin")),
        ]);
        let fields = bson_document(&body).unwrap();
        assert_eq!(fields["saslStart"], Bson::Number(1.0));
        assert_eq!(fields["payload"], Bson::Binary(b"n,,n=u,r=abc".to_vec()));
        assert_eq!(fields["options"], Bson::Other("document"));
        assert_eq!(fields["$db"], Bson::Text("admin".into()));
        let message = op_msg(7, &body);
        assert_eq!(mongodb_reply(&message).unwrap(), fields);
        // A binary whose length runs past the document is refused, not read.
        let mut bad = body.clone();
        let at = bad.windows(7).position(|w| w == b"payload").unwrap() + 8;
        bad[at..at + 4].copy_from_slice(&1000i32.to_le_bytes());
        assert!(bson_document(&bad).is_err());
    }
}
