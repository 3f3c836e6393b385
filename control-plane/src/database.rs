//! Choosing the backend from a database URL: [`open_store`] opens a [`SqliteStore`] for
//! `sqlite:PATH` or a bare path, and a [`PgStore`] for `postgres://...` or
//! `postgresql://...` (libpq's URL form, see [`crate::postgres`]).

use std::sync::Arc;

use crate::postgres::{PgStore, redact};
use crate::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// What a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created if missing).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, by its URL (which may hold a password: show it with
    /// [`redact`]).
    Postgres(String),
}

/// The accepted forms, for error messages.
const FORMS: &str = "use sqlite:PATH, a file path, or postgres://USER@HOST:PORT/DATABASE \
                     (postgresql:// too)";

impl Database {
    /// Parses `sqlite:PATH`, a bare path (a SQLite file), `postgres://...` or
    /// `postgresql://...`; [`StoreError::InvalidUrl`] for anything else (an empty string,
    /// another scheme), naming the accepted forms and never showing a password.
    pub fn parse(url: &str) -> Result<Database, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(StoreError::InvalidUrl(format!(
                    "`sqlite:` without a path; {FORMS}"
                )));
            }
            return Ok(Database::Sqlite(path.into()));
        }
        if url.is_empty() {
            return Err(StoreError::InvalidUrl(format!("(empty); {FORMS}")));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(StoreError::InvalidUrl(format!(
                "{}: unknown scheme `{}`; {FORMS}",
                redact(url),
                scheme.escape_default()
            )));
        }
        Ok(Database::Sqlite(url.into()))
    }

    /// How logs and errors show it: the path, or the URL with its password masked.
    pub fn shown(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite:{}", path.display()),
            Database::Postgres(url) => redact(url),
        }
    }
}

/// Opens the store a database URL names (see [`Database::parse`]), applying pending
/// migrations.
pub fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_store_with_password(url, None)
}

/// Like [`open_store`], with a PostgreSQL password given apart from the URL (used over the
/// URL's); [`StoreError::InvalidUrl`] when one is given for a SQLite file.
pub fn open_store_with_password(
    url: &str,
    password: Option<&str>,
) -> Result<Arc<dyn Store>, StoreError> {
    match Database::parse(url)? {
        Database::Sqlite(path) => {
            if password.is_some() {
                return Err(StoreError::InvalidUrl(format!(
                    "sqlite:{}: a password is only for postgres databases",
                    path.display()
                )));
            }
            Ok(Arc::new(SqliteStore::open(path)?))
        }
        Database::Postgres(url) => Ok(Arc::new(PgStore::open_with_password(&url, password)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Database::parse("sqlite:/var/lib/cp.db").unwrap(),
            Database::Sqlite("/var/lib/cp.db".into())
        );
        assert_eq!(
            Database::parse("cp.db").unwrap(),
            Database::Sqlite("cp.db".into())
        );
        for url in [
            "postgres://u@h/db",
            "postgresql://h:5432/db?sslmode=require",
        ] {
            assert_eq!(
                Database::parse(url).unwrap(),
                Database::Postgres(url.to_owned())
            );
        }
    }

    #[test]
    fn other_urls_are_refused_naming_the_forms() {
        for url in ["", "sqlite:", "mysql://root:hunter2@h/db"] {
            let e = Database::parse(url).unwrap_err().to_string();
            assert!(
                e.contains("sqlite:PATH") && e.contains("postgres://"),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_password_is_not_for_sqlite() {
        let e = open_store_with_password("sqlite:/nonexistent/x.db", Some("pw")).err();
        assert!(matches!(e, Some(StoreError::InvalidUrl(_))), "{e:?}");
    }
}
