//! The store suite: every case is a function of `&dyn Store` and runs once per backend,
//! as `MODULE::sqlite::CASE` on a fresh SQLite file and as `MODULE::postgres::CASE` on a
//! fresh database of the test PostgreSQL server (so `cargo test --test store postgres::`
//! runs the PostgreSQL half). Results, rollups and retention are in [`results`]; tokens,
//! deploys, versions, agent ids and the PostgreSQL specifics (replicas, migrations, TLS) in
//! [`core`]; what replicas share in [`replica`]; maintenance windows in [`maintenance`].
//!
//! The PostgreSQL server is one per test process, started on first use (see
//! `monitor_testing::postgres`) and stopped when the process exits; each case gets a
//! database of its own, dropped with its [`Db`].

#[path = "store/core.rs"]
mod core;
#[path = "store/maintenance.rs"]
mod maintenance;
#[path = "store/replica.rs"]
mod replica;
#[path = "store/results.rs"]
mod results;
#[path = "store/usage.rs"]
mod usage;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use control_plane::{PgStore, SqliteStore, Store};
use monitor_testing::postgres::PostgresServer;

/// Declares each listed case, a `fn(&dyn Store)` of the invoking module, as two tests:
/// `sqlite::CASE` and `postgres::CASE`.
#[macro_export]
macro_rules! store_cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let db = $crate::Db::sqlite();
                    super::$case(&*db.store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $case() {
                    let db = $crate::Db::postgres();
                    super::$case(&*db.store);
                }
            )*
        }
    };
}

/// A fresh store of one backend, with what it lives in; removed on drop.
pub struct Db {
    /// The store.
    pub store: Arc<dyn Store>,
    dir: Option<PathBuf>,
    /// The PostgreSQL database's name, `None` for SQLite.
    database: Option<String>,
}

/// The test process's PostgreSQL server, started on first use.
pub fn server() -> &'static PostgresServer {
    monitor_testing::postgres::shared()
}

impl Db {
    /// A store on a new SQLite file in the target's temporary directory.
    pub fn sqlite() -> Db {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "store-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("control-plane.db")).unwrap();
        Db {
            store: Arc::new(store),
            dir: Some(dir),
            database: None,
        }
    }

    /// A store on a new database of the test PostgreSQL server.
    pub fn postgres() -> Db {
        let server = server();
        let database = server.create_database().unwrap();
        let store = PgStore::open(&server.url(&database)).unwrap();
        Db {
            store: Arc::new(store),
            dir: None,
            database: Some(database),
        }
    }

    /// The URL of the PostgreSQL database (`None` for SQLite): for a second store on it.
    pub fn url(&self) -> Option<String> {
        self.database.as_ref().map(|db| server().url(db))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(database) = &self.database {
            // Ends the store's sessions too.
            let _ = server().drop_database(database);
        }
    }
}
