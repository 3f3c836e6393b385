//! What the SMTP, IMAP, POP3 and FTP logins share: the user and password (or the `config`
//! failure naming where the password should come from), the server's words with the
//! password scrubbed out, and the failures of a refused or turned-away login.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::super::dialog::DialogError;
use super::super::place::place;
use super::super::speak::{Context, said, unavailable};
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;

/// The most characters of the server's words kept in a message.
const MAX_TEXT_CHARS: usize = 200;

/// The credentials of a login, ready to be sent.
pub(crate) struct Credentials<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

impl Credentials<'_> {
    /// SASL PLAIN (RFC 4616), base64: no authorization identity, the user, the password.
    pub fn plain(&self) -> String {
        STANDARD.encode(format!("\0{}\0{}", self.user, self.password))
    }

    /// `text` with the password (as it is and in base64) replaced by `***`, for a server
    /// that repeats what it was sent; cut to a readable length.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.trim().to_owned();
        if !self.password.is_empty() {
            // The longest first: the PLAIN blob may end with the password's own base64.
            for secret in [
                self.plain(),
                STANDARD.encode(self.password),
                self.password.to_owned(),
            ] {
                text = text.replace(&secret, "***");
            }
        }
        text.chars().take(MAX_TEXT_CHARS).collect()
    }
}

/// The user and password of `login` for `protocol`: a `config` failure when the
/// password's variable or file is not available here (named, never shown) or when either
/// holds a CR, LF or NUL, which no line protocol can carry.
pub(crate) fn credentials<'a>(
    cx: &Context<'a>,
    login: &'a Login,
    protocol: &str,
) -> Result<Credentials<'a>, DialogError> {
    let hint = "name the password in recipe.login.password_env or password_file".to_owned();
    let password = match cx.secret {
        Some(Ok(password)) => password.as_str(),
        Some(Err(_)) | None => {
            let message = match (&login.password_env, &login.password_file) {
                (Some(var), _) => format!(
                    "the {protocol} login reads its password from the environment variable {var}, which is not set on this machine"
                ),
                (None, Some(file)) => format!(
                    "the {protocol} login reads its password from the file {file}, which this machine does not hand out"
                ),
                (None, None) => format!("the {protocol} login names no password"),
            };
            return Err(said(cx, ErrorKind::Config, message, vec![hint]));
        }
    };
    let user = login.user.as_deref().unwrap_or_default();
    let bad = |s: &str| s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
    if bad(user) || bad(password) {
        return Err(said(
            cx,
            ErrorKind::Config,
            format!(
                "the {protocol} login's user or password holds a line break or NUL, which {protocol} cannot send"
            ),
            vec!["check recipe.login.user and the password's first line".to_owned()],
        ));
    }
    Ok(Credentials { user, password })
}

/// The server refused the login: `text` is its reason (scrubbed), `hint` what to check.
pub(crate) fn refused(
    cx: &Context<'_>,
    protocol: &str,
    creds: &Credentials<'_>,
    text: &str,
    hint: &str,
) -> DialogError {
    let target = place(cx.spec, Some(cx.addr));
    said(
        cx,
        ErrorKind::AuthenticationFailed,
        format!(
            "{protocol} at {target} refused the login of user {}: {}",
            creds.user,
            creds.scrub(text)
        ),
        vec![hint.to_owned()],
    )
}

/// The server is up but will not let the user in now (busy, at a connection limit,
/// temporarily failing): `text` its words (scrubbed).
pub(crate) fn busy(
    cx: &Context<'_>,
    protocol: &str,
    creds: &Credentials<'_>,
    text: &str,
) -> DialogError {
    unavailable(
        cx,
        protocol,
        &creds.scrub(text),
        vec![format!(
            "the server turned the login of user {} away for now: check its connection limits (per user and address), load and logs",
            creds.user
        )],
    )
}

/// The response code of a reply's text (`[AUTH] bad password` gives `AUTH`), upper-cased.
pub(crate) fn response_code(text: &str) -> Option<String> {
    let inner = text.trim_start().strip_prefix('[')?;
    let end = inner.find(']')?;
    let code = inner.get(..end)?;
    Some(
        code.split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_the_password_in_every_form() {
        let c = Credentials {
            user: "u",
            password: "pw-1",
        };
        let said = format!("no {} {} {}", "pw-1", STANDARD.encode("pw-1"), c.plain());
        assert_eq!(c.scrub(&said), "no *** *** ***");
        assert_eq!(c.plain(), STANDARD.encode("\0u\0pw-1"));
    }

    #[test]
    fn response_codes_are_read() {
        assert_eq!(response_code("[AUTH] no").as_deref(), Some("AUTH"));
        assert_eq!(
            response_code("[sys/temp] later").as_deref(),
            Some("SYS/TEMP")
        );
        assert_eq!(
            response_code("[NONEXISTENT Mailbox] x").as_deref(),
            Some("NONEXISTENT")
        );
        assert_eq!(response_code("no code"), None);
        assert_eq!(response_code("[unterminated"), None);
    }
}
