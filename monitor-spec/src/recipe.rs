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

use crate::assertion::Source;
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
    /// MySQL and MariaDB: the server's initial handshake packet, parsed; with a login,
    /// authentication and a query.
    Mysql {
        /// Log in (`caching_sha2_password`, `mysql_native_password`, `client_ed25519`)
        /// and run a query (`SELECT 1` when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// MongoDB: an OP_MSG `hello`, answered with `ok: 1` and the wire versions; with a
    /// login, SCRAM-SHA-256 and `ping`.
    Mongodb {
        /// Log in with SCRAM-SHA-256 (`database`: the authentication database, `admin`
        /// when absent) and run `ping`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// SMTP: the 220 banner, EHLO, QUIT; with a login, AUTH PLAIN or LOGIN.
    Smtp {
        /// The name sent with EHLO.
        #[serde(default = "default_helo")]
        helo: String,
        /// Authenticate with AUTH PLAIN (or LOGIN when PLAIN is not offered).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// IMAP: the `* OK` greeting, CAPABILITY, LOGOUT; with a login, LOGIN (or
    /// AUTHENTICATE PLAIN) and SELECT of a mailbox.
    Imap {
        /// Log in and select `query` (the mailbox, `INBOX` when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// POP3: the `+OK` greeting, CAPA, QUIT; with a login, USER/PASS and STAT.
    Pop3 {
        /// Log in with USER/PASS and run STAT.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// Redis: AUTH when a password is configured, PING answered by `+PONG`, INFO server.
    Redis {
        /// The environment variable holding the password, read on the machine that runs
        /// the check (never written into a bundle).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// The ACL user (Redis 6 and later); the default user when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// Also ask `ROLE` (and `INFO replication`): the role, whether the server is
        /// read-only and, on a replica, its replication lag.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        role: bool,
    },
    /// Memcached: `version` answered by `VERSION x.y.z`; optionally a set/get round trip.
    Memcached {
        /// A key to set to a fresh value and read back (opt-in: the check writes it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// SSH: the `SSH-2.0-` identification line, with the software and version.
    Ssh,
    /// FTP: the 220 banner, QUIT; with a login, USER/PASS and PWD.
    Ftp {
        /// Log in with USER/PASS and run PWD.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// LDAP: an anonymous bind answered by a BindResponse; with a login, a simple bind
    /// as `user` (a DN) and a base search of `query` (a DN), reporting the entry count.
    Ldap {
        /// Bind as `user` (anonymous when absent) and search the entry `query` (the root
        /// DSE when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
}

/// The JSON form of [`Recipe`] as read: the recipes without settings are empty struct
/// variants, so that serde refuses unknown fields beside them too (a unit variant of an
/// internally tagged enum ignores them).
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "protocol", rename_all = "snake_case", deny_unknown_fields)]
enum RecipeWire {
    /// PostgreSQL: a startup message (after SSLRequest with STARTTLS); an authentication
    /// request or an error answer proves the server is up; with a login, a query.
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
    /// MySQL and MariaDB: the server's initial handshake packet, parsed; with a login,
    /// authentication and a query.
    Mysql {
        /// Log in (`caching_sha2_password`, `mysql_native_password`, `client_ed25519`)
        /// and run a query (`SELECT 1` when absent).
        #[serde(default)]
        login: Option<Login>,
    },
    /// MongoDB: an OP_MSG `hello`, answered with `ok: 1` and the wire versions; with a
    /// login, SCRAM-SHA-256 and `ping`.
    Mongodb {
        /// Log in with SCRAM-SHA-256 (`database`: the authentication database, `admin`
        /// when absent) and run `ping`.
        #[serde(default)]
        login: Option<Login>,
    },
    /// SMTP: the 220 banner, EHLO, QUIT; with a login, AUTH PLAIN or LOGIN.
    Smtp {
        /// The name sent with EHLO.
        #[serde(default = "default_helo")]
        helo: String,
        /// Authenticate with AUTH PLAIN (or LOGIN when PLAIN is not offered).
        #[serde(default)]
        login: Option<Login>,
    },
    /// IMAP: the `* OK` greeting, CAPABILITY, LOGOUT; with a login, LOGIN and SELECT.
    Imap {
        /// Log in and select `query` (the mailbox, `INBOX` when absent).
        #[serde(default)]
        login: Option<Login>,
    },
    /// POP3: the `+OK` greeting, CAPA, QUIT; with a login, USER/PASS and STAT.
    Pop3 {
        /// Log in with USER/PASS and run STAT.
        #[serde(default)]
        login: Option<Login>,
    },
    /// Redis: AUTH when a password is configured, PING answered by `+PONG`, INFO server.
    Redis {
        /// The environment variable holding the password, read on the machine that runs
        /// the check (never written into a bundle).
        #[serde(default)]
        password_env: Option<String>,
        /// The ACL user (Redis 6 and later); the default user when absent.
        #[serde(default)]
        username: Option<String>,
        /// Also ask `ROLE` (and `INFO replication`): the role, whether the server is
        /// read-only and, on a replica, its replication lag.
        #[serde(default)]
        role: bool,
    },
    /// Memcached: `version` answered by `VERSION x.y.z`; optionally a set/get round trip.
    Memcached {
        /// A key to set to a fresh value and read back (opt-in: the check writes it).
        #[serde(default)]
        key: Option<String>,
    },
    /// SSH: the `SSH-2.0-` identification line, with the software and version.
    Ssh {},
    /// FTP: the 220 banner, QUIT; with a login, USER/PASS and PWD.
    Ftp {
        /// Log in with USER/PASS and run PWD.
        #[serde(default)]
        login: Option<Login>,
    },
    /// LDAP: an anonymous bind answered by a BindResponse; with a login, a simple bind
    /// as `user` (a DN) and a base search of `query` (a DN), reporting the entry count.
    Ldap {
        /// Bind as `user` (anonymous when absent) and search the entry `query` (the root
        /// DSE when absent).
        #[serde(default)]
        login: Option<Login>,
    },
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
            RecipeWire::Mysql { login } => Recipe::Mysql { login },
            RecipeWire::Mongodb { login } => Recipe::Mongodb { login },
            RecipeWire::Smtp { helo, login } => Recipe::Smtp { helo, login },
            RecipeWire::Imap { login } => Recipe::Imap { login },
            RecipeWire::Pop3 { login } => Recipe::Pop3 { login },
            RecipeWire::Redis {
                password_env,
                username,
                role,
            } => Recipe::Redis {
                password_env,
                username,
                role,
            },
            RecipeWire::Memcached { key } => Recipe::Memcached { key },
            RecipeWire::Ssh {} => Recipe::Ssh,
            RecipeWire::Ftp { login } => Recipe::Ftp { login },
            RecipeWire::Ldap { login } => Recipe::Ldap { login },
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
pub const RECIPES: [&str; 11] = [
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
    "ldap",
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

    /// MySQL or MariaDB, stopping at the handshake.
    pub fn mysql() -> Self {
        Recipe::Mysql { login: None }
    }

    /// MongoDB, stopping at `hello`.
    pub fn mongodb() -> Self {
        Recipe::Mongodb { login: None }
    }

    /// SMTP with EHLO `monitor.invalid`.
    pub fn smtp() -> Self {
        Recipe::Smtp {
            helo: default_helo(),
            login: None,
        }
    }

    /// IMAP, stopping at CAPABILITY.
    pub fn imap() -> Self {
        Recipe::Imap { login: None }
    }

    /// POP3, stopping at CAPA.
    pub fn pop3() -> Self {
        Recipe::Pop3 { login: None }
    }

    /// FTP, stopping at the banner.
    pub fn ftp() -> Self {
        Recipe::Ftp { login: None }
    }

    /// LDAP, with an anonymous bind.
    pub fn ldap() -> Self {
        Recipe::Ldap { login: None }
    }

    /// Memcached, asking `version`.
    pub fn memcached() -> Self {
        Recipe::Memcached { key: None }
    }

    /// Redis without a password.
    pub fn redis() -> Self {
        Recipe::Redis {
            password_env: None,
            username: None,
            role: false,
        }
    }

    /// Redis with the password in the environment variable `var`.
    pub fn redis_auth(var: &str) -> Self {
        Recipe::Redis {
            password_env: Some(var.to_owned()),
            username: None,
            role: false,
        }
    }

    /// The same recipe logging in with `login` (for Redis: its variable and user; for
    /// Memcached and SSH, which have no login, the recipe unchanged).
    pub fn with_login(mut self, with: Login) -> Self {
        match &mut self {
            Recipe::Postgres { login, .. }
            | Recipe::Mysql { login }
            | Recipe::Mongodb { login }
            | Recipe::Smtp { login, .. }
            | Recipe::Imap { login }
            | Recipe::Pop3 { login }
            | Recipe::Ftp { login }
            | Recipe::Ldap { login } => *login = Some(with),
            Recipe::Redis {
                password_env,
                username,
                ..
            } => {
                *password_env = with.password_env;
                *username = with.user;
            }
            Recipe::Memcached { .. } | Recipe::Ssh => {}
        }
        self
    }

    /// The recipe's login, when it logs in.
    pub fn login(&self) -> Option<&Login> {
        match self {
            Recipe::Postgres { login, .. }
            | Recipe::Mysql { login }
            | Recipe::Mongodb { login }
            | Recipe::Smtp { login, .. }
            | Recipe::Imap { login }
            | Recipe::Pop3 { login }
            | Recipe::Ftp { login }
            | Recipe::Ldap { login } => login.as_ref(),
            Recipe::Redis { .. } | Recipe::Memcached { .. } | Recipe::Ssh => None,
        }
    }

    /// The recipe's name, as in [`RECIPES`].
    pub fn name(&self) -> &'static str {
        match self {
            Recipe::Postgres { .. } => "postgres",
            Recipe::Mysql { .. } => "mysql",
            Recipe::Mongodb { .. } => "mongodb",
            Recipe::Smtp { .. } => "smtp",
            Recipe::Imap { .. } => "imap",
            Recipe::Pop3 { .. } => "pop3",
            Recipe::Redis { .. } => "redis",
            Recipe::Memcached { .. } => "memcached",
            Recipe::Ssh => "ssh",
            Recipe::Ftp { .. } => "ftp",
            Recipe::Ldap { .. } => "ldap",
        }
    }

    /// The STARTTLS protocol of the service, when it has one.
    pub fn starttls(&self) -> Option<StartTls> {
        match self {
            Recipe::Postgres { .. } => Some(StartTls::Postgres),
            Recipe::Mysql { .. } => Some(StartTls::Mysql),
            Recipe::Smtp { .. } => Some(StartTls::Smtp),
            Recipe::Imap { .. } => Some(StartTls::Imap),
            Recipe::Pop3 { .. } => Some(StartTls::Pop3),
            Recipe::Ftp { .. } => Some(StartTls::Ftp),
            Recipe::Ldap { .. } => Some(StartTls::Ldap),
            Recipe::Mongodb { .. }
            | Recipe::Redis { .. }
            | Recipe::Memcached { .. }
            | Recipe::Ssh => None,
        }
    }

    /// Whether the recipe, as configured, reports the fact an assertion on `source`
    /// reads (the login facts: a query's value, the role, read-only, an entry count, the
    /// replication lag). Sources that are not login facts are always reported.
    pub fn reports(&self, source: Source) -> bool {
        use Source::*;
        if source.fact().is_none() {
            return true;
        }
        let logs_in = self.login().is_some();
        match self {
            Recipe::Postgres { .. } => {
                logs_in && matches!(source, QueryValue | Role | ReadOnly | ReplicationLag)
            }
            Recipe::Mysql { .. } => logs_in && matches!(source, QueryValue | ReadOnly),
            // `hello` tells the role; the login adds whether writes are taken.
            Recipe::Mongodb { .. } => source == Role || (logs_in && source == ReadOnly),
            Recipe::Imap { .. } | Recipe::Pop3 { .. } | Recipe::Ldap { .. } => {
                logs_in && source == EntryCount
            }
            Recipe::Redis { role, .. } => {
                *role && matches!(source, Role | ReadOnly | ReplicationLag)
            }
            Recipe::Smtp { .. } | Recipe::Ftp { .. } | Recipe::Memcached { .. } | Recipe::Ssh => {
                false
            }
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
