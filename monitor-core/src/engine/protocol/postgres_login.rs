//! The PostgreSQL login: answering the server's authentication request (trust, cleartext,
//! md5, SCRAM-SHA-256 with `tls-server-end-point` channel binding over TLS) with the
//! `postgres-protocol` crate, then one query telling the role, the replication lag and
//! whether the session is read-only, then the monitor's query, and the server's errors
//! sorted into the kinds a pager acts on.

use ::bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;

use super::super::dialog::DialogError;
use super::super::speak::{Context, said};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;
use monitor_spec::spec::TlsMode;

/// The query of a login that names none.
pub use monitor_spec::login::DEFAULT_POSTGRES_QUERY as DEFAULT_QUERY;

/// The query that tells a primary from a standby, in one round trip: whether the server
/// is in recovery, the replication lag in milliseconds (0 on a primary and on a standby
/// that replayed all it received; NULL when unknown) and the session's
/// `default_transaction_read_only`.
pub const RECOVERY_QUERY: &str = "SELECT pg_is_in_recovery(), \
CASE WHEN NOT pg_is_in_recovery() THEN 0 \
WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
ELSE greatest(0, (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint) END, \
current_setting('default_transaction_read_only')";

/// The most columns of the recovery query's row read.
pub const RECOVERY_COLUMNS: usize = 3;

/// The most bytes of the query's first value kept as `query_first_value`.
pub const MAX_FIRST_VALUE_BYTES: usize = 256;

/// The SCRAM mechanism with channel binding.
const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Where a logged-in session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Startup: authentication and the server's parameters.
    Startup,
    /// `SELECT pg_is_in_recovery()` sent.
    Recovery,
    /// The monitor's query sent.
    Query,
}

/// The state of a login: the password, the SCRAM exchange under way, the phase.
pub(crate) struct Session<'a> {
    pub login: &'a Login,
    pub user: &'a str,
    pub database: &'a str,
    password: Option<&'a str>,
    scram: Option<ScramSha256>,
    pub phase: Phase,
    /// Whether the first row of the current query was seen.
    pub row_seen: bool,
    /// Whether the server said at startup (ParameterStatus `default_transaction_read_only`
    /// or `in_hot_standby`, sent since PostgreSQL 14) that sessions are read-only.
    pub read_only_said: bool,
}

/// A frontend message built by `build` into bytes.
pub(crate) fn message(
    build: impl FnOnce(&mut BytesMut) -> std::io::Result<()>,
) -> Result<Vec<u8>, String> {
    let mut buf = BytesMut::new();
    build(&mut buf).map_err(|e| format!("cannot encode the message: {e}"))?;
    Ok(buf.to_vec())
}

/// The `tls-server-end-point` channel binding data of a server certificate (RFC 5929
/// section 4.1): its hash with the hash of its signature algorithm, SHA-256 for MD5 and
/// SHA-1; `None` when the certificate cannot be read.
pub fn server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    use ring::digest::{SHA256, SHA384, SHA512, digest};
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let algorithm = match oid.as_str() {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => &SHA384,
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => &SHA512,
        _ => &SHA256,
    };
    Some(digest(algorithm, cert_der).as_ref().to_vec())
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        login: &'a Login,
        user: &'a str,
        database: &'a str,
        secret: Option<&'a Result<String, String>>,
    ) -> Self {
        Session {
            login,
            user,
            database,
            password: secret.and_then(|s| s.as_deref().ok()),
            scram: None,
            phase: Phase::Startup,
            row_seen: false,
            read_only_said: false,
        }
    }

    /// The password, or the failure saying why there is none.
    fn password(&self, cx: &Context<'_>, method: &str) -> Result<&'a str, DialogError> {
        if let Some(password) = self.password {
            return Ok(password);
        }
        let (kind, source) = match (&self.login.password_env, &self.login.password_file) {
            (Some(var), _) => (
                ErrorKind::Config,
                format!("the environment variable {var}, which is not set on this machine"),
            ),
            (None, Some(file)) => (
                ErrorKind::Config,
                format!("the file {file}, which this machine does not hand out"),
            ),
            (None, None) => (ErrorKind::AuthenticationFailed, String::new()),
        };
        let message = if source.is_empty() {
            format!(
                "PostgreSQL asks user {} for a password ({method}) and the login names none",
                self.user
            )
        } else {
            format!("the postgres login reads its password from {source}")
        };
        Err(said(
            cx,
            kind,
            message,
            vec![
                "name the password in recipe.login.password_env or password_file, or trust the user in pg_hba.conf".to_owned(),
            ],
        ))
    }

    /// The answer to authentication request `code` (named `name`) with `data` (what
    /// follows the code), or `None` when the request needs no answer (AuthenticationOk).
    /// `method` is set to the method's name when the request starts one.
    pub(crate) fn answer(
        &mut self,
        cx: &Context<'_>,
        code: u32,
        data: &[u8],
        name: &str,
        method: &mut Option<String>,
    ) -> Result<Option<Vec<u8>>, DialogError> {
        let broken = |why: String| {
            said(
                cx,
                ErrorKind::AuthenticationFailed,
                format!("the PostgreSQL login failed: {why}"),
                vec!["check the server's log for the session".to_owned()],
            )
        };
        let encode = |r: Result<Vec<u8>, String>| r.map(Some).map_err(broken);
        match code {
            0 => Ok(None),
            3 => {
                *method = Some("password".into());
                if cx.spec.tls.mode == TlsMode::None && !self.login.allow_plaintext {
                    return Err(said(
                        cx,
                        ErrorKind::AuthenticationFailed,
                        format!(
                            "the server asked for the password of user {} in clear over a connection without TLS; the monitor did not send it",
                            self.user
                        ),
                        vec![
                            "use TLS (tls = \"starttls\") so the password travels encrypted".to_owned(),
                            "or set the user's method to scram-sha-256 in pg_hba.conf".to_owned(),
                            "or, on a trusted network only, set recipe.login.allow_plaintext = true".to_owned(),
                        ],
                    ));
                }
                let password = self.password(cx, "password")?;
                encode(message(|b| {
                    frontend::password_message(password.as_bytes(), b)
                }))
            }
            5 => {
                *method = Some("md5".into());
                let password = self.password(cx, "md5")?;
                let salt: [u8; 4] = data
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| broken("the md5 request has no salt".into()))?;
                let hash = md5_hash(self.user.as_bytes(), password.as_bytes(), salt);
                encode(message(|b| frontend::password_message(hash.as_bytes(), b)))
            }
            10 => {
                let offered: Vec<&[u8]> =
                    data.split(|b| *b == 0).filter(|m| !m.is_empty()).collect();
                let leaf = cx.server_cert.and_then(server_end_point);
                let plus = offered.contains(&SCRAM_SHA_256_PLUS.as_bytes());
                let (mechanism, binding) = match leaf {
                    Some(hash) if plus => (
                        SCRAM_SHA_256_PLUS,
                        ChannelBinding::tls_server_end_point(hash),
                    ),
                    Some(_) => (SCRAM_SHA_256, ChannelBinding::unrequested()),
                    None => (SCRAM_SHA_256, ChannelBinding::unsupported()),
                };
                if !offered.contains(&SCRAM_SHA_256.as_bytes()) && mechanism == SCRAM_SHA_256 {
                    return Err(broken(format!(
                        "the server offers SASL mechanisms {}, not SCRAM-SHA-256",
                        escape_excerpt(data, 120)
                    )));
                }
                *method = Some(mechanism.to_lowercase());
                let password = self.password(cx, "scram-sha-256")?;
                let scram = ScramSha256::new(password.as_bytes(), binding);
                let first =
                    message(|b| frontend::sasl_initial_response(mechanism, scram.message(), b));
                self.scram = Some(scram);
                encode(first)
            }
            11 => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| broken("SASLContinue without a SASL exchange".into()))?;
                scram
                    .update(data)
                    .map_err(|e| broken(format!("the server's SCRAM message: {e}")))?;
                let answer = message(|b| frontend::sasl_response(scram.message(), b));
                encode(answer)
            }
            12 => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| broken("SASLFinal without a SASL exchange".into()))?;
                scram.finish(data).map_err(|e| {
                    broken(format!(
                        "the server's SCRAM signature does not verify ({e}): it may not know the password, or something sits between"
                    ))
                })?;
                Ok(None)
            }
            _ => Err(broken(format!(
                "the server asks for {name}, which the monitor cannot answer"
            ))),
        }
    }

    /// The failure an ErrorResponse means in this phase: `sqlstate`, `text` the server's
    /// own words.
    pub(crate) fn error(&self, cx: &Context<'_>, sqlstate: &str, text: &str) -> DialogError {
        let query = match self.phase {
            Phase::Recovery => RECOVERY_QUERY,
            _ => self.login.query_or(DEFAULT_QUERY),
        };
        let (kind, message, hint) = match (sqlstate, self.phase) {
            ("28P01" | "28000", _) => (
                ErrorKind::AuthenticationFailed,
                format!("PostgreSQL refused user {}: {text}", self.user),
                "check the password (rotated?) and the pg_hba.conf line for this user, database and address".to_owned(),
            ),
            ("3D000", _) => (
                ErrorKind::AccessDenied,
                format!("PostgreSQL has no database {}: {text}", self.database),
                "check recipe.database, or create the database".to_owned(),
            ),
            ("42501", _) => (
                ErrorKind::AccessDenied,
                format!("PostgreSQL refused user {}: {text}", self.user),
                "grant the user what the login needs (CONNECT on the database, SELECT on the tables)".to_owned(),
            ),
            (_, Phase::Startup) => (
                ErrorKind::AuthenticationFailed,
                format!("PostgreSQL refused the login of user {}: {text}", self.user),
                "check the server's log for the session".to_owned(),
            ),
            _ => (
                ErrorKind::QueryFailed,
                format!("the PostgreSQL query `{}` failed: {text}", escape_excerpt(query.as_bytes(), 120)),
                format!("SQLSTATE {sqlstate}: check the query as user {}", self.user),
            ),
        };
        said(cx, kind, message, vec![hint])
    }
}
