//! The engine by protocol: each file holds one protocol's codec (the pure builders and
//! parsers of its wire messages), its STARTTLS step (`starttls`) when it has one, and its
//! recipe (`recipe`) when it has one.
//!
//! | module | codec | STARTTLS | recipe |
//! | --- | --- | --- | --- |
//! | [`smtp`] | EHLO name | STARTTLS | banner, EHLO, QUIT |
//! | [`imap`] | capability lists, tagged replies | STARTTLS | greeting, CAPABILITY, LOGOUT |
//! | [`pop3`] | `+OK`/`-ERR` | STLS | greeting, CAPA, QUIT |
//! | [`ftp`] | | AUTH TLS | banner, QUIT |
//! | [`postgres`] | startup, ErrorResponse fields | SSLRequest | startup answer; login: role, read-only, lag, query |
//! | [`mysql`] | first packet, SSL Request | SSL Request | handshake; login ([`mysql_login`], codec [`mysql_auth`]) |
//! | [`ldap`] | BER ExtendedResponse | StartTLS extended operation | |
//! | [`redis`] | RESP commands, INFO | | AUTH, PING, INFO; ROLE, INFO replication |
//! | [`memcached`] | | | `version`; `set`/`get`/`delete` round trip |
//! | [`ssh`] | identification line | | identification |
//! | [`mongodb`] | OP_MSG, BSON | | `hello` |
//! | [`proxy`] | PROXY v1/v2 header | | (sent before any) |
//!
//! Shared by several: `reply` (SMTP/FTP reply codes) and `bytes` (a byte cursor, word
//! tests). The engine's `starttls` and `recipe` modules pick the protocol's step; the
//! pieces every step needs come from `conn`, `upgrade` (STARTTLS) and `speak` (recipes),
//! none of which imports a protocol, so no import runs in a loop.

mod bytes;
pub mod ftp;
pub mod imap;
mod imap_login;
pub mod ldap;
pub mod ldap_login;
mod mail_login;
pub mod memcached;
pub mod mongodb;
pub mod mongodb_login;
pub mod mysql;
pub mod mysql_auth;
pub mod mysql_login;
pub mod pop3;
pub mod postgres;
pub mod postgres_login;
pub mod proxy;
pub mod redis;
mod reply;
pub mod scram;
pub mod smtp;
pub mod ssh;

#[cfg(feature = "fuzz")]
pub(crate) mod fuzz;
