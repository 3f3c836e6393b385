//! The login a recipe may perform after its greeting: where the password is read on the
//! machine that runs the check (an environment variable or a file under its secret
//! directory, never the bundle) and what to ask once logged in. One shape for every recipe
//! that logs in.
//!
//! What each field means by recipe:
//!
//! | recipe | `user` | `database` | `query` | sends the password |
//! | --- | --- | --- | --- | --- |
//! | postgres | on the recipe | on the recipe | SQL, `SELECT 1` | md5/SCRAM: never; cleartext: only over TLS |
//! | mysql | required | default schema | SQL, `SELECT 1` | never (challenge, RSA or TLS); cleartext plugin: only over TLS |
//! | mongodb | required | authentication database, `admin` | (none: `ping`) | never (SCRAM) |
//! | smtp | required | | | AUTH PLAIN/LOGIN: over TLS |
//! | imap | required | | mailbox, `INBOX` | LOGIN: over TLS |
//! | pop3 | required | | | USER/PASS: over TLS |
//! | ftp | required | | | USER/PASS: over TLS |
//! | ldap | bind DN (anonymous when absent) | | base DN to search, the root DSE | simple bind: over TLS |
//!
//! A password sent as it is needs TLS (`tls.mode` `direct` or `starttls`) unless the
//! login says `allow_plaintext = true`; validation refuses it otherwise.
//!
//! ```
//! use monitor_spec::login::Login;
//! use monitor_spec::{Recipe, TcpMonitor};
//!
//! let monitor = TcpMonitor::new("db", "127.0.0.1", 5432).recipe(Recipe::postgres_login(
//!     "monitor",
//!     Some("app"),
//!     Login::password_env("MONITORS_SECRET_PG").query("SELECT count(*) FROM jobs"),
//! ));
//! assert!(monitor.validate().is_ok());
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The query a PostgreSQL login runs when it names none.
pub const DEFAULT_POSTGRES_QUERY: &str = "SELECT 1";

/// The longest key a Memcached round trip may name, in bytes (Memcached's own limit).
pub const MAX_MEMCACHED_KEY_BYTES: usize = 250;

/// The longest query a login may run, in bytes.
pub const MAX_LOGIN_QUERY_BYTES: usize = 4096;

/// A recipe's login: the password's source (at most one; none for a server that trusts
/// the user) and the query run once logged in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user to log in as (an LDAP bind DN); PostgreSQL names it on the recipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The environment variable holding the password, read on the machine that runs the
    /// check (never written into a bundle or a result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// The file holding the password (its first line), relative to the agent's secret
    /// directory; read on the machine that runs the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// What to run once logged in (PostgreSQL: a simple query, `SELECT 1` when absent);
    /// its first value is reported as `query_first_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The database: MySQL's default schema, MongoDB's authentication database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Send a password that travels as it is (SMTP, IMAP, POP3, FTP, LDAP, PostgreSQL's
    /// and MySQL's cleartext methods) without TLS; refused unless set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plaintext: bool,
}

impl Login {
    /// A login without a password (the server trusts the user).
    pub fn trust() -> Self {
        Login::default()
    }

    /// A login with the password in the environment variable `var`.
    pub fn password_env(var: &str) -> Self {
        Login {
            password_env: Some(var.to_owned()),
            ..Login::default()
        }
    }

    /// A login with the password in the file `path` (under the secret directory).
    pub fn password_file(path: &str) -> Self {
        Login {
            password_file: Some(path.to_owned()),
            ..Login::default()
        }
    }

    /// The same login running `query` once logged in.
    pub fn query(mut self, query: &str) -> Self {
        self.query = Some(query.to_owned());
        self
    }

    /// The same login as `user`.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// The same login on `database`.
    pub fn database(mut self, database: &str) -> Self {
        self.database = Some(database.to_owned());
        self
    }

    /// The same login, allowed to send its password without TLS.
    pub fn allow_plaintext(mut self) -> Self {
        self.allow_plaintext = true;
        self
    }

    /// Whether a password is configured.
    pub fn has_password(&self) -> bool {
        self.password_env.is_some() || self.password_file.is_some()
    }

    /// The query to run: the configured one, else `default`.
    pub fn query_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.query.as_deref().unwrap_or(default)
    }
}
