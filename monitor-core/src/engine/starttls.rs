//! STARTTLS: the plaintext dialog of each protocol that asks a server to switch the
//! connection to TLS, read within a byte cap and checked so that no stray byte is left to
//! corrupt the TLS handshake that follows.
//!
//! [`negotiate`] runs the dialog of one [`StartTls`] protocol on a connected stream and
//! returns once the server has agreed to start TLS: the next bytes on the stream are the
//! client's TLS ClientHello. It has no timeout of its own; the caller wraps it in one.
//!
//! Each protocol's dialog lives with the protocol, in [`super::protocol`]; this module
//! picks it, and names the types they share (defined in `upgrade`).

use tokio::io::{AsyncRead, AsyncWrite};

use super::protocol::{ftp, imap, ldap, mysql, pop3, postgres, smtp};
use super::upgrade::Upgrade;
pub use super::upgrade::{
    MAX_EXCERPT_BYTES, MAX_PLAINTEXT_BYTES, Negotiated, Stage, StartTlsError, StartTlsFailure,
};
use monitor_spec::spec::StartTls;

/// Runs the plaintext dialog of `protocol` on `stream` until the server has agreed to
/// start TLS; the caller then starts the TLS handshake on the same stream.
///
/// `client_name` is the name sent in SMTP `EHLO`; characters other than printable ASCII
/// (spaces, control characters, non-ASCII) are left out, and an empty name becomes
/// `localhost`. The other protocols do not send it.
///
/// The server's bytes are read in chunks and parsed line by line (or by exact lengths);
/// if a chunk holds anything after the answer to the upgrade command, that is an
/// unexpected reply, since TLS would take those bytes for its handshake. For MySQL the
/// upgrade is the client's SSL Request, which has no answer: this returns once it is
/// written. No more than [`MAX_PLAINTEXT_BYTES`] are read in all. There is no timeout
/// here: wrap the call in one.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    protocol: StartTls,
    client_name: &str,
) -> Result<Negotiated, StartTlsError> {
    let mut conn = Upgrade::new(stream, protocol);
    let greeting = match protocol {
        StartTls::Smtp => smtp::starttls(&mut conn, client_name).await?,
        StartTls::Imap => imap::starttls(&mut conn).await?,
        StartTls::Pop3 => pop3::starttls(&mut conn).await?,
        StartTls::Ftp => ftp::starttls(&mut conn).await?,
        StartTls::Postgres => postgres::starttls(&mut conn).await?,
        StartTls::Mysql => mysql::starttls(&mut conn).await?,
        StartTls::Ldap => ldap::starttls(&mut conn).await?,
    };
    Ok(conn.negotiated(greeting))
}
