//! Protocol recipes as spec data: the first words of each protocol a TCP monitor watches,
//! spoken after the connection (and TLS) to prove the service really serves.
//!
//! A [`Recipe`] is plain data in the spec (`"recipe": {"protocol": "redis"}`); the engine
//! speaks it before the monitor's own steps, so a recipe is extended with the builder:
//!
//! ```
//! use monitor_spec::{Recipe, TcpMonitor};
//!
//! let monitor = TcpMonitor::new("cache", "127.0.0.1", 6379)
//!     .recipe(Recipe::redis_auth("MONITORS_SECRET_REDIS_PASSWORD"))
//!     .send("*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
//!     .expect("role:master");
//! assert!(monitor.validate().is_ok());
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::login::Login;

/// A protocol dialog that proves a service serves and reports what it learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "protocol",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "RecipeWire"
)]
#[schemars(with = "RecipeWire")]
pub enum Recipe {
    /// PostgreSQL: a startup message (after SSLRequest with STARTTLS); an authentication
    /// request or an error answer proves the server is up.
    Postgres {
        /// The user named in the startup message.
        #[serde(default = "default_pg_user")]
        user: String,
        /// The database named in the startup message (the user's name when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        /// Log in (trust, md5 or SCRAM-SHA-256) and run a query; without it the recipe
        /// stops at the authentication request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// MySQL and MariaDB: the server's initial handshake packet, parsed.
    Mysql,
    /// MongoDB: an OP_MSG `hello`, answered with `ok: 1` and the wire versions.
    Mongodb,
    /// SMTP: the 220 banner, EHLO, QUIT.
    Smtp {
        /// The name sent with EHLO.
        #[serde(default = "default_helo")]
        helo: String,
    },
    /// IMAP: the `* OK` greeting, CAPABILITY, LOGOUT.
    Imap,
    /// POP3: the `+OK` greeting, CAPA, QUIT.
    Pop3,
    /// Redis: AUTH when a password is configured, PING answered by `+PONG`, INFO server.
    Redis {
        /// The environment variable holding the password, read on the machine that runs
        /// the check (never written into a bundle).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// The ACL user (Redis 6 and later); the default user when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    /// Memcached: `version` answered by `VERSION x.y.z`.
    Memcached,
    /// SSH: the `SSH-2.0-` identification line, with the software and version.
    Ssh,
    /// FTP: the 220 banner, QUIT.
    Ftp,
}

/// The JSON form of [`Recipe`] as read: the recipes without settings are empty struct
/// variants, so that serde refuses unknown fields beside them too (a unit variant of an
/// internally tagged enum ignores them).
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "protocol", rename_all = "snake_case", deny_unknown_fields)]
enum RecipeWire {
    /// PostgreSQL: a startup message (after SSLRequest with STARTTLS); an authentication
    /// request or an error answer proves the server is up.
    Postgres {
        /// The user named in the startup message.
        #[serde(default = "default_pg_user")]
        user: String,
        /// The database named in the startup message (the user's name when absent).
        #[serde(default)]
        database: Option<String>,
        /// Log in (trust, md5 or SCRAM-SHA-256) and run a query; without it the recipe
        /// stops at the authentication request.
        #[serde(default)]
        login: Option<Login>,
    },
    /// MySQL and MariaDB: the server's initial handshake packet, parsed.
    Mysql {},
    /// MongoDB: an OP_MSG `hello`, answered with `ok: 1` and the wire versions.
    Mongodb {},
    /// SMTP: the 220 banner, EHLO, QUIT.
    Smtp {
        /// The name sent with EHLO.
        #[serde(default = "default_helo")]
        helo: String,
    },
    /// IMAP: the `* OK` greeting, CAPABILITY, LOGOUT.
    Imap {},
    /// POP3: the `+OK` greeting, CAPA, QUIT.
    Pop3 {},
    /// Redis: AUTH when a password is configured, PING answered by `+PONG`, INFO server.
    Redis {
        /// The environment variable holding the password, read on the machine that runs
        /// the check (never written into a bundle).
        #[serde(default)]
        password_env: Option<String>,
        /// The ACL user (Redis 6 and later); the default user when absent.
        #[serde(default)]
        username: Option<String>,
    },
    /// Memcached: `version` answered by `VERSION x.y.z`.
    Memcached {},
    /// SSH: the `SSH-2.0-` identification line, with the software and version.
    Ssh {},
    /// FTP: the 220 banner, QUIT.
    Ftp {},
}

impl From<RecipeWire> for Recipe {
    fn from(wire: RecipeWire) -> Self {
        match wire {
            RecipeWire::Postgres {
                user,
                database,
                login,
            } => Recipe::Postgres {
                user,
                database,
                login,
            },
            RecipeWire::Mysql {} => Recipe::Mysql,
            RecipeWire::Mongodb {} => Recipe::Mongodb,
            RecipeWire::Smtp { helo } => Recipe::Smtp { helo },
            RecipeWire::Imap {} => Recipe::Imap,
            RecipeWire::Pop3 {} => Recipe::Pop3,
            RecipeWire::Redis {
                password_env,
                username,
            } => Recipe::Redis {
                password_env,
                username,
            },
            RecipeWire::Memcached {} => Recipe::Memcached,
            RecipeWire::Ssh {} => Recipe::Ssh,
            RecipeWire::Ftp {} => Recipe::Ftp,
        }
    }
}

fn default_pg_user() -> String {
    "monitor".to_owned()
}

fn default_helo() -> String {
    "monitor.invalid".to_owned()
}

/// The recipe names, as the DSL and JSON spell them.
pub const RECIPES: [&str; 10] = [
    "postgres",
    "mysql",
    "mongodb",
    "smtp",
    "imap",
    "pop3",
    "redis",
    "memcached",
    "ssh",
    "ftp",
];

impl Recipe {
    /// PostgreSQL as user `monitor`.
    pub fn postgres() -> Self {
        Recipe::Postgres {
            user: default_pg_user(),
            database: None,
            login: None,
        }
    }

    /// PostgreSQL as `user` on `database` (the user's name when `None`), logging in with
    /// `login` and running its query.
    pub fn postgres_login(user: &str, database: Option<&str>, login: Login) -> Self {
        Recipe::Postgres {
            user: user.to_owned(),
            database: database.map(str::to_owned),
            login: Some(login),
        }
    }

    /// SMTP with EHLO `monitor.invalid`.
    pub fn smtp() -> Self {
        Recipe::Smtp {
            helo: default_helo(),
        }
    }

    /// Redis without a password.
    pub fn redis() -> Self {
        Recipe::Redis {
            password_env: None,
            username: None,
        }
    }

    /// Redis with the password in the environment variable `var`.
    pub fn redis_auth(var: &str) -> Self {
        Recipe::Redis {
            password_env: Some(var.to_owned()),
            username: None,
        }
    }

    /// The recipe's name, as in [`RECIPES`].
    pub fn name(&self) -> &'static str {
        match self {
            Recipe::Postgres { .. } => "postgres",
            Recipe::Mysql => "mysql",
            Recipe::Mongodb => "mongodb",
            Recipe::Smtp { .. } => "smtp",
            Recipe::Imap => "imap",
            Recipe::Pop3 => "pop3",
            Recipe::Redis { .. } => "redis",
            Recipe::Memcached => "memcached",
            Recipe::Ssh => "ssh",
            Recipe::Ftp => "ftp",
        }
    }

    /// The STARTTLS protocol of the service, when it has one.
    pub fn starttls(&self) -> Option<StartTls> {
        match self {
            Recipe::Postgres { .. } => Some(StartTls::Postgres),
            Recipe::Mysql => Some(StartTls::Mysql),
            Recipe::Smtp { .. } => Some(StartTls::Smtp),
            Recipe::Imap => Some(StartTls::Imap),
            Recipe::Pop3 => Some(StartTls::Pop3),
            Recipe::Ftp => Some(StartTls::Ftp),
            Recipe::Mongodb | Recipe::Redis { .. } | Recipe::Memcached | Recipe::Ssh => None,
        }
    }

    /// Whether the service can be spoken to over direct TLS.
    pub fn allows_direct_tls(&self) -> bool {
        !matches!(self, Recipe::Ssh)
    }
}

/// Which PROXY protocol header a check sends right after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProxyProtocol {
    /// The text header: `PROXY TCP4 src dst sport dport\r\n`.
    V1,
    /// The binary header with the 12-byte signature.
    V2,
}

/// A protocol with a STARTTLS upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// SMTP: banner, EHLO, STARTTLS.
    Smtp,
    /// IMAP: greeting, CAPABILITY, STARTTLS.
    Imap,
    /// POP3: greeting, CAPA, STLS.
    Pop3,
    /// FTP: banner, AUTH TLS.
    Ftp,
    /// PostgreSQL: SSLRequest.
    Postgres,
    /// MySQL and MariaDB: SSL request inside the handshake.
    Mysql,
    /// LDAP: the StartTLS extended operation.
    Ldap,
}

impl StartTls {
    /// The name `openssl s_client -starttls` uses for the protocol.
    pub fn openssl_name(self) -> &'static str {
        match self {
            StartTls::Smtp => "smtp",
            StartTls::Imap => "imap",
            StartTls::Pop3 => "pop3",
            StartTls::Ftp => "ftp",
            StartTls::Postgres => "postgres",
            StartTls::Mysql => "mysql",
            StartTls::Ldap => "ldap",
        }
    }
}
