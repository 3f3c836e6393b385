//! Redis (RESP): the codec (commands, INFO fields, bounded replies) and the recipe (AUTH,
//! PING, INFO and, with `role`, ROLE and INFO replication: the role, read-only and the
//! replication lag).

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::place::place;
use super::super::speak::{
    Context, Learned, Outcome, goodbye, mismatch, said, unavailable, yes_no,
};
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

/// The most scalar values of one reply read (ROLE on a sentinel lists its primaries).
pub const MAX_REPLY_VALUES: usize = 4096;

/// The Redis recipe: AUTH when a password is configured, PING answered by `+PONG`, INFO
/// server for the version and, with `role`, ROLE and INFO replication ([`role_facts`]).
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    password_env: Option<&str>,
    username: Option<&str>,
    role: bool,
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
    if role {
        role_facts(s, cx, learned).await?;
    }
    goodbye(s, cx, &resp_command(&[b"QUIT"])).await
}

/// A reply read whole: its scalar values in order (arrays flattened), or the error line
/// it was (without its `-`).
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    what: &str,
) -> Result<Result<Vec<String>, String>, DialogError> {
    let mut values = Vec::new();
    let mut pending = 1usize;
    while pending > 0 {
        if values.len() >= MAX_REPLY_VALUES {
            return Err(mismatch(
                cx,
                "a Redis reply of bounded size",
                "too many values",
            ));
        }
        pending -= 1;
        let line = s.line(what).await?;
        // The type byte; the rest is empty when it starts a multibyte character.
        let kind = line.as_bytes().first().copied().unwrap_or_default();
        let rest = line.get(1..).unwrap_or_default();
        match kind {
            b'-' if values.is_empty() && pending == 0 => return Ok(Err(rest.to_owned())),
            b'+' | b':' | b',' | b'#' | b'-' | b'(' => values.push(rest.to_owned()),
            b'_' => values.push(String::new()),
            b'*' | b'%' | b'~' | b'>' => {
                let n: i64 = rest
                    .parse()
                    .map_err(|_| mismatch(cx, "a Redis reply", &line))?;
                let n = usize::try_from(n).unwrap_or(0);
                let n = if kind == b'%' { n.saturating_mul(2) } else { n };
                pending = pending.saturating_add(n);
            }
            b'$' | b'=' | b'!' => {
                let n: i64 = rest
                    .parse()
                    .map_err(|_| mismatch(cx, "a Redis reply", &line))?;
                match usize::try_from(n) {
                    // A length near usize::MAX asks for more than the cap allows.
                    Ok(n) => {
                        let body = s.take(n.saturating_add(2), what).await?;
                        let body = body.get(..n).unwrap_or_default();
                        values.push(String::from_utf8_lossy(body).into_owned());
                    }
                    Err(_) => values.push(String::new()), // $-1: nil
                }
            }
            _ => return Err(mismatch(cx, "a Redis reply", &line)),
        }
    }
    Ok(Ok(values))
}

/// The failure of a command the server refused: `-NOPERM` is `access_denied` (the ACL
/// user may not run it), anything else `unexpected_response`.
fn refused(cx: &Context<'_>, command: &str, text: &str) -> DialogError {
    let target = place(cx.spec, Some(cx.addr));
    if text.starts_with("NOPERM") {
        return said(
            cx,
            ErrorKind::AccessDenied,
            format!("Redis at {target} refused {command} to the monitor's user: {text}"),
            vec![
                "grant the user the command: ACL SETUSER <user> +role +info (or +@slow)".to_owned(),
                "or drop role = true from the recipe".to_owned(),
            ],
        );
    }
    said(
        cx,
        ErrorKind::UnexpectedResponse,
        format!("Redis at {target} answered {command} with the error {text}"),
        vec!["check whether the command is renamed or disabled (rename-command)".to_owned()],
    )
}

/// ROLE: `master` is role `primary` (read_only `no`, lag 0), `slave` is `replica`
/// (read_only from `slave_read_only`, `yes` by default), `sentinel` stays `sentinel`. On a
/// replica, INFO replication gives `master_link_status` and, while the link is up,
/// `replication_lag_ms` from `master_last_io_seconds_ago` (whole seconds; on an idle
/// primary it grows up to the primary's `repl-ping-replica-period`, 10 s by default); a
/// link down is `service_unavailable`.
async fn role_facts<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    s.send(&resp_command(&[b"ROLE"]), "sending ROLE").await?;
    let values = read_reply(s, cx, "the reply to ROLE")
        .await?
        .map_err(|text| refused(cx, "ROLE", &text))?;
    let role = match values.first().map(String::as_str) {
        Some("master") => "primary",
        Some("slave") => "replica",
        Some("sentinel") => "sentinel",
        other => {
            return Err(mismatch(
                cx,
                "a Redis ROLE reply (master, slave or sentinel)",
                other.unwrap_or("an empty array"),
            ));
        }
    };
    learned.insert("role".into(), role.into());
    match role {
        "primary" => {
            learned.insert("read_only".into(), "no".into());
            learned.insert("replication_lag_ms".into(), "0".into());
            return Ok(());
        }
        "sentinel" => return Ok(()),
        _ => {}
    }
    s.send(
        &resp_command(&[b"INFO", b"replication"]),
        "sending INFO replication",
    )
    .await?;
    let body = read_reply(s, cx, "the reply to INFO replication")
        .await?
        .map_err(|text| refused(cx, "INFO replication", &text))?
        .concat();
    let info = redis_info(&body);
    let read_only = info
        .get("slave_read_only")
        .or_else(|| info.get("replica_read_only"))
        .is_none_or(|v| *v != "0");
    learned.insert("read_only".into(), yes_no(read_only));
    let link = info.get("master_link_status").copied().unwrap_or("unknown");
    learned.insert("master_link_status".into(), link.to_owned());
    if link != "up" {
        let target = place(cx.spec, Some(cx.addr));
        let primary = match (info.get("master_host"), info.get("master_port")) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            _ => "its primary".to_owned(),
        };
        let mut hints = vec![format!(
            "check that the primary {primary} is up and reachable from the replica"
        )];
        if let Some(since) = info.get("master_link_down_since_seconds") {
            hints.push(format!(
                "the link has been down for {since} s; read the replica's log"
            ));
        }
        return Err(said(
            cx,
            ErrorKind::ServiceUnavailable,
            format!(
                "the replica at {target} lost its primary {primary} (master_link_status {link})"
            ),
            hints,
        ));
    }
    if let Some(seconds) = info
        .get("master_last_io_seconds_ago")
        .and_then(|v| v.parse::<u64>().ok())
    {
        learned.insert(
            "replication_lag_ms".into(),
            seconds.saturating_mul(1000).to_string(),
        );
    }
    Ok(())
}
