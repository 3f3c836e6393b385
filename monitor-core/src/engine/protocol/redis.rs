//! Redis (RESP): the codec (commands, INFO fields) and the recipe (AUTH, PING, INFO).

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::place::place;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, said, unavailable};
use monitor_spec::result::ErrorKind;

/// Redis: a command as a RESP array of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Redis: the fields of an `INFO` reply body (`key:value` lines; `#` lines are headers).
pub fn redis_info(body: &str) -> BTreeMap<&str, &str> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// The Redis recipe: AUTH when a password is configured, PING answered by `+PONG`, INFO
/// server for the version.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
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
        s.send(&resp_command(&args), "sending AUTH").await?;
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
    s.send(&resp_command(&[b"PING"]), "sending PING").await?;
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
    s.send(&resp_command(&[b"INFO", b"server"]), "sending INFO server")
        .await?;
    let header = s.line("the reply to INFO").await?;
    if let Some(len) = header
        .strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
    {
        // A length near usize::MAX must not overflow: it asks for more than the cap allows.
        let body = s
            .take(len.saturating_add(2), "the body of the INFO reply")
            .await?;
        let body = String::from_utf8_lossy(&body);
        let info = redis_info(&body);
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
    goodbye(s, cx, &resp_command(&[b"QUIT"])).await
}
