//! The MySQL/MariaDB login on the engine's own connection: the Handshake Response 41,
//! the plugin exchange (AuthSwitchRequest, AuthMoreData, the RSA key request), then
//! `SELECT @@global.read_only` and the monitor's query read as bounded text result sets,
//! COM_QUIT, and the server's errors sorted into the kinds a pager acts on.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{Context, Learned, Outcome, mismatch, said, unavailable, yes_no};
use super::mysql_auth::{
    CLIENT_CONNECT_WITH_DB, CLIENT_LONG_PASSWORD, CLIENT_MULTI_RESULTS, CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_TRANSACTIONS, COM_QUIT,
    ED25519_NONCE_BYTES, Plugin, SERVER_MORE_RESULTS_EXISTS, ServerError, caching_sha2_scramble,
    column_count, ed25519_signature, eof_status, first_value, frame, handshake_response, header,
    is_eof, native_password, ok_status, password_nul, query_packet, read_only, rsa_encrypt,
    scramble, server_error,
};
use super::postgres_login::MAX_FIRST_VALUE_BYTES;
use monitor_spec::escape::escape_excerpt;
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;
use monitor_spec::spec::TlsMode;

/// The query of a login that names none.
pub const DEFAULT_QUERY: &str = "SELECT 1";

/// The query that tells a writable server from a read-only one.
pub const READ_ONLY_QUERY: &str = "SELECT @@global.read_only";

/// The most packets one authentication exchange reads (switch, more data, key, OK).
const MAX_AUTH_PACKETS: usize = 8;

/// The most packets one query's answer may take (columns, rows, further result sets);
/// the connection's byte cap bounds them too.
pub const MAX_RESULT_PACKETS: usize = 4096;

/// The most columns a result set may have.
const MAX_COLUMNS: u64 = 4096;

/// What the server's handshake gave the login.
pub(crate) struct Greeted<'a> {
    /// The server's capability flags.
    pub capabilities: u32,
    /// The auth-plugin-data (the scramble).
    pub auth_data: &'a [u8],
    /// The server's default authentication plugin.
    pub plugin: Option<&'a str>,
    /// The sequence id of the Handshake Response (1, or 2 after the SSL Request).
    pub sequence: u8,
}

/// Where a session is, for the meaning of an ERR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Authenticating.
    Auth,
    /// `SELECT @@global.read_only` sent.
    ReadOnly,
    /// The monitor's query sent.
    Query,
}

/// A login in progress: the user, the password, whether it travels in TLS, the plugin
/// being answered and its scramble.
struct Session<'a> {
    login: &'a Login,
    user: &'a str,
    password: &'a [u8],
    /// Whether the connection is encrypted (STARTTLS or direct TLS).
    tls: bool,
    plugin: Plugin,
    scramble: Vec<u8>,
    /// Whether the server's public key was asked for (`caching_sha2_password`,
    /// `sha256_password` without TLS).
    awaiting_key: bool,
}

/// The answer to one packet of the exchange.
enum Answer {
    /// Send this payload (the sequence id follows the server's).
    Send(Vec<u8>),
    /// Nothing to send: the server's next packet follows.
    Wait,
}

/// The first value of a statement's answer: `None` without rows, `Some(None)` for NULL.
type FirstValue = Option<Option<Vec<u8>>>;

/// Logs in as the login's user, runs `SELECT @@global.read_only` and the login's query,
/// recording `auth_method`, `read_only` and `query_first_value`, and says COM_QUIT unless
/// steps follow.
pub(crate) async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: &Login,
    greeted: Greeted<'_>,
    learned: &mut Learned,
) -> Outcome {
    let needed = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
    if greeted.capabilities & needed != needed {
        return Err(mismatch(
            cx,
            "a MySQL server speaking protocol 4.1 (CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION)",
            &format!("capabilities {:#010x}", greeted.capabilities),
        ));
    }
    let password = match cx.secret {
        None => &b""[..],
        Some(Ok(password)) => password.as_bytes(),
        Some(Err(why)) => return Err(no_password(cx, login, why)),
    };
    let mut session = Session {
        login,
        user: login.user.as_deref().unwrap_or_default(),
        password,
        tls: cx.upgraded.is_some() || cx.spec.tls.mode != TlsMode::None,
        plugin: Plugin::Native,
        scramble: Vec::new(),
        awaiting_key: false,
    };
    // Answer the server's default plugin when it is one whose first answer is a hash;
    // otherwise `mysql_native_password`, and the server switches to the user's plugin.
    let first = match greeted.plugin.and_then(Plugin::from_name) {
        Some(p @ (Plugin::Native | Plugin::CachingSha2)) => p,
        _ => Plugin::Native,
    };
    let auth = match session.start(first, greeted.auth_data) {
        Ok(Answer::Send(auth)) => auth,
        Ok(Answer::Wait) => Vec::new(),
        Err(e) => return Err(e.into_error(cx, &session)),
    };
    let mut capabilities = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_TRANSACTIONS
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH;
    if login.database.is_some() {
        capabilities |= CLIENT_CONNECT_WITH_DB;
    }
    // Only what the server offers; CLIENT_SSL when the SSL Request went first.
    capabilities &= greeted.capabilities;
    if cx.upgraded.is_some() {
        capabilities |= CLIENT_SSL;
    }
    let response = handshake_response(
        capabilities,
        session.user,
        &auth,
        login.database.as_deref(),
        first.name(),
    );
    s.send(
        &frame(greeted.sequence, &response),
        "sending the handshake response",
    )
    .await?;
    session.authenticate(s, cx, learned).await?;
    learned.insert("auth_method".into(), session.plugin.name().into());
    for phase in [Phase::ReadOnly, Phase::Query] {
        let query = session.query(phase);
        s.send(&query_packet(query), "sending the query").await?;
        let value = match answer(s, cx).await? {
            Ok(value) => value,
            Err(e) => return Err(session.refused(cx, phase, &e, learned)),
        };
        match (phase, value) {
            (Phase::ReadOnly, Some(Some(v))) => {
                learned.insert("read_only".into(), yes_no(read_only(&v)));
            }
            (Phase::Query, Some(v)) => {
                learned.insert(
                    "query_first_value".into(),
                    match v {
                        Some(v) => escape_excerpt(&v, MAX_FIRST_VALUE_BYTES),
                        None => "NULL".into(),
                    },
                );
            }
            _ => {}
        }
    }
    if !cx.steps_follow {
        // The server closes without answering; one that already closed has nothing to say.
        let _ = s.send(&frame(0, &[COM_QUIT]), "sending COM_QUIT").await;
    }
    Ok(())
}

/// The failure of a login whose password is not available here (never its value).
fn no_password(cx: &Context<'_>, login: &Login, why: &str) -> DialogError {
    let message = match &login.password_env {
        Some(var) => format!(
            "the mysql login reads its password from the environment variable {var}, which is not set on this machine"
        ),
        None => format!("the mysql login cannot read its password: {why}"),
    };
    said(
        cx,
        ErrorKind::Config,
        message,
        vec![
            "set the password where the check runs (recipe.login.password_env or password_file)"
                .to_owned(),
        ],
    )
}

/// Reads one packet: its sequence id and payload (not empty, under 16 MiB; the
/// connection's byte cap bounds it).
async fn packet<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    what: &str,
) -> Result<(u8, Vec<u8>), DialogError> {
    let head = s.take(4, what).await?;
    let Some((len, sequence)) = header(&head).filter(|(len, _)| (1..0x00ff_ffff).contains(len))
    else {
        return Err(mismatch(cx, "a MySQL packet", &escape_excerpt(&head, 16)));
    };
    Ok((sequence, s.take(len, what).await?))
}

/// Reads the answer to a statement: the first value of its first row, or the server's
/// error. Text result sets (column count, column definitions, EOF, rows, EOF) and OK
/// packets, further result sets while the server says more exist, within
/// [`MAX_RESULT_PACKETS`].
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
) -> Result<Result<FirstValue, ServerError>, DialogError> {
    let broken = |why: String| mismatch(cx, "a MySQL result set", &why);
    let mut first: FirstValue = None;
    let mut budget = MAX_RESULT_PACKETS;
    loop {
        let head = next(s, cx, &mut budget).await?;
        let status = match head.first() {
            Some(0xff) => return Ok(Err(server_error(&head).map_err(broken)?)),
            Some(0x00) => ok_status(&head).map_err(broken)?,
            Some(0xfb) => return Err(broken("a LOCAL INFILE request, never asked for".into())),
            _ => {
                let columns = column_count(&head).map_err(broken)?;
                if columns == 0 || columns > MAX_COLUMNS {
                    return Err(broken(format!("a result set of {columns} columns")));
                }
                for _ in 0..columns {
                    let column = next(s, cx, &mut budget).await?;
                    if column.first() == Some(&0xff) {
                        return Ok(Err(server_error(&column).map_err(broken)?));
                    }
                }
                let eof = next(s, cx, &mut budget).await?;
                if !is_eof(&eof) {
                    return Err(broken(format!(
                        "`{}` after the column definitions, not EOF",
                        escape_excerpt(&eof, 16)
                    )));
                }
                loop {
                    let row = next(s, cx, &mut budget).await?;
                    if is_eof(&row) {
                        break eof_status(&row);
                    }
                    if row.first() == Some(&0xff) {
                        return Ok(Err(server_error(&row).map_err(broken)?));
                    }
                    if first.is_none() {
                        let value = first_value(&row).map_err(broken)?;
                        first = Some(value.map(<[u8]>::to_vec));
                    }
                }
            }
        };
        if status & SERVER_MORE_RESULTS_EXISTS == 0 {
            return Ok(Ok(first));
        }
    }
}

/// The next packet of a statement's answer, one of `budget`.
async fn next<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    budget: &mut usize,
) -> Result<Vec<u8>, DialogError> {
    *budget = budget.checked_sub(1).ok_or_else(|| {
        mismatch(
            cx,
            "a MySQL result set",
            &format!("more than {MAX_RESULT_PACKETS} packets"),
        )
    })?;
    packet(s, cx, "the answer to the query")
        .await
        .map(|(_, p)| p)
}

/// Why an authentication exchange cannot go on, before it becomes a failure.
enum Stop {
    /// The exchange broke: the server's data cannot be answered.
    Broken(String),
    /// The server asks for a plugin the monitor does not know.
    Unknown(String),
    /// The server asks for the password as it is, without TLS.
    Plaintext,
}

impl Stop {
    fn into_error(self, cx: &Context<'_>, session: &Session<'_>) -> DialogError {
        let user = session.user;
        let (message, hint) = match self {
            Stop::Broken(why) => (
                format!("the MySQL login of user {user} failed: {why}"),
                "check the server's error log for the session".to_owned(),
            ),
            Stop::Unknown(plugin) => (
                format!(
                    "MySQL asks user {user} to log in with the authentication plugin {plugin}, which the monitor cannot answer"
                ),
                "give the user a plugin the monitor speaks: mysql_native_password, caching_sha2_password, sha256_password, ed25519 (MariaDB) or, over TLS, mysql_clear_password".to_owned(),
            ),
            Stop::Plaintext => (
                format!(
                    "MySQL asks user {user} for the password as it is (mysql_clear_password) and the connection is not encrypted: the monitor does not send it"
                ),
                "use TLS: set tls.mode to starttls (or allow_plaintext = true in the login to send it anyway)".to_owned(),
            ),
        };
        said(cx, ErrorKind::AuthenticationFailed, message, vec![hint])
    }
}

impl Session<'_> {
    /// The query of a phase.
    fn query(&self, phase: Phase) -> &str {
        match phase {
            Phase::ReadOnly => READ_ONLY_QUERY,
            _ => self.login.query_or(DEFAULT_QUERY),
        }
    }

    /// The answer to the first data of `plugin` (the handshake's, or an
    /// AuthSwitchRequest's).
    fn start(&mut self, plugin: Plugin, data: &[u8]) -> Result<Answer, Stop> {
        self.plugin = plugin;
        self.awaiting_key = false;
        self.scramble = scramble(data).to_vec();
        let password = self.password;
        Ok(Answer::Send(match plugin {
            Plugin::Native => native_password(password, &self.scramble),
            Plugin::CachingSha2 => caching_sha2_scramble(password, &self.scramble),
            Plugin::Ed25519 => {
                let nonce = data
                    .get(..ED25519_NONCE_BYTES)
                    .filter(|_| data.len() == ED25519_NONCE_BYTES)
                    .ok_or_else(|| {
                        Stop::Broken(format!(
                            "the ed25519 nonce has {} bytes, not {ED25519_NONCE_BYTES}",
                            data.len()
                        ))
                    })?;
                ed25519_signature(password, nonce).to_vec()
            }
            Plugin::Sha256 if self.tls || password.is_empty() => password_nul(password),
            Plugin::Sha256 => {
                // The public key first (sha256_password asks with 1).
                self.awaiting_key = true;
                vec![1]
            }
            Plugin::Clear if self.tls || self.login.allow_plaintext => password_nul(password),
            Plugin::Clear => return Err(Stop::Plaintext),
        }))
    }

    /// The answer to AuthMoreData carrying `data`.
    fn more(&mut self, data: &[u8]) -> Result<Answer, Stop> {
        if self.awaiting_key {
            self.awaiting_key = false;
            return rsa_encrypt(data, self.password, &self.scramble)
                .map(Answer::Send)
                .map_err(Stop::Broken);
        }
        match (self.plugin, data) {
            // Fast authentication succeeded: OK follows.
            (Plugin::CachingSha2, [3]) => Ok(Answer::Wait),
            // Full authentication: the password in TLS, else the public key first.
            (Plugin::CachingSha2, [4]) if self.tls => Ok(Answer::Send(password_nul(self.password))),
            (Plugin::CachingSha2, [4]) => {
                self.awaiting_key = true;
                Ok(Answer::Send(vec![2]))
            }
            _ => Err(Stop::Broken(format!(
                "unexpected AuthMoreData `{}` for {}",
                escape_excerpt(data, 32),
                self.plugin.name()
            ))),
        }
    }

    /// Reads the server's packets after the Handshake Response until OK, answering
    /// AuthSwitchRequest and AuthMoreData.
    async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut Conn<'_, S>,
        cx: &Context<'_>,
        learned: &mut Learned,
    ) -> Outcome {
        for _ in 0..MAX_AUTH_PACKETS {
            let (sequence, p) = packet(s, cx, "the answer to the login").await?;
            let answer = match p.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => {
                    let e = server_error(&p)
                        .map_err(|why| mismatch(cx, "a MySQL error packet", &why))?;
                    return Err(self.refused(cx, Phase::Auth, &e, learned));
                }
                Some(0xfe) if p.len() == 1 => Err(Stop::Unknown("mysql_old_password".into())),
                Some(0xfe) => {
                    let rest = &p[1..];
                    let end = memchr::memchr(0, rest).unwrap_or(rest.len());
                    let name = String::from_utf8_lossy(&rest[..end]).into_owned();
                    let data = rest.get(end + 1..).unwrap_or_default();
                    match Plugin::from_name(&name) {
                        Some(plugin) => self.start(plugin, data),
                        None => Err(Stop::Unknown(escape_excerpt(name.as_bytes(), 64))),
                    }
                }
                Some(0x01) => self.more(&p[1..]),
                _ => {
                    return Err(mismatch(
                        cx,
                        "a MySQL authentication packet",
                        &escape_excerpt(&p, 32),
                    ));
                }
            };
            match answer.map_err(|e| e.into_error(cx, self))? {
                Answer::Send(bytes) => {
                    s.send(
                        &frame(sequence.wrapping_add(1), &bytes),
                        "answering the authentication request",
                    )
                    .await?;
                }
                Answer::Wait => {}
            }
        }
        Err(mismatch(
            cx,
            "a MySQL login",
            &format!("more than {MAX_AUTH_PACKETS} authentication packets"),
        ))
    }

    /// The failure an ERR packet means in `phase`; `server_error` recorded in `learned`.
    fn refused(
        &self,
        cx: &Context<'_>,
        phase: Phase,
        e: &ServerError,
        learned: &mut Learned,
    ) -> DialogError {
        learned.insert("server_error".into(), e.to_string());
        let user = self.user;
        let code = e.code;
        let text = e.to_string();
        let database = self.login.database.as_deref().unwrap_or("(none)");
        let (kind, message, hint) = match code {
            // Access denied, no password given, unsupported method, password expired,
            // SET PASSWORD first, account locked (MySQL, MariaDB).
            1045 | 1698 | 1251 | 1275 | 1820 | 1862 | 3118 | 4151 => (
                ErrorKind::AuthenticationFailed,
                format!("MySQL refused user {user}: {text}"),
                if self.password.is_empty() && !self.login.has_password() {
                    "the login names no password: set recipe.login.password_env or password_file"
                        .to_owned()
                } else {
                    format!(
                        "check the password (rotated? expired?) and that {user} may log in from this address: SELECT user, host, plugin FROM mysql.user"
                    )
                },
            ),
            // Insecure transport refused.
            3159 => (
                ErrorKind::AuthenticationFailed,
                format!("MySQL refused user {user}: {text}"),
                "the user requires TLS: set tls.mode to starttls".to_owned(),
            ),
            1049 => (
                ErrorKind::AccessDenied,
                format!("MySQL has no database {database}: {text}"),
                "check recipe.login.database, or create the database".to_owned(),
            ),
            // No grant on the database, table, column, routine; needs a privilege; host
            // not allowed.
            1044 | 1142 | 1143 | 1227 | 1370 | 1130 => (
                ErrorKind::AccessDenied,
                format!("MySQL refused user {user} access: {text}"),
                format!(
                    "grant the user what the login needs: GRANT SELECT ON {database}.* TO {user}; SHOW GRANTS FOR {user}"
                ),
            ),
            // Too many connections, the user's connection or resource limit, shutting
            // down, this host blocked.
            1040 | 1203 | 1226 | 1053 | 1129 => {
                let hints = vec![
                    match code {
                        1040 => "too many connections: raise max_connections or find the client holding them (SHOW PROCESSLIST)".to_owned(),
                        1203 | 1226 => format!("user {user} is at its connection or resource limit (MAX_USER_CONNECTIONS, max_user_connections): find the sessions holding them (SHOW PROCESSLIST)"),
                        1129 => "this host is blocked after connection errors: run `mysqladmin flush-hosts` and raise max_connect_errors".to_owned(),
                        _ => "the server is shutting down: check its error log".to_owned(),
                    },
                ];
                return said_unavailable(cx, &text, hints);
            }
            // The server refuses writes (--read-only, read-only mode).
            1290 | 1836 => {
                let hints = vec![
                    "the server is read-only (read_only, super_read_only): point the monitor at the primary".to_owned(),
                ];
                return said_unavailable(cx, &text, hints);
            }
            _ if phase == Phase::Auth => (
                ErrorKind::AuthenticationFailed,
                format!("MySQL refused the login of user {user}: {text}"),
                "check the server's error log for the session".to_owned(),
            ),
            _ => (
                ErrorKind::QueryFailed,
                format!(
                    "the MySQL query `{}` failed: {}",
                    escape_excerpt(self.query(phase).as_bytes(), 120),
                    e.message
                ),
                format!(
                    "error {code} ({}): check the query as user {user}",
                    e.sqlstate
                ),
            ),
        };
        said(cx, kind, message, vec![hint])
    }
}

/// The server is up and turned the session away.
fn said_unavailable(cx: &Context<'_>, text: &str, hints: Vec<String>) -> DialogError {
    unavailable(cx, "MySQL", text, hints)
}
