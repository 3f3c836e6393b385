//! The store suite: every case is a function of `&dyn Store` and runs once per backend,
//! as `MODULE::sqlite::CASE` on a fresh SQLite file and as `MODULE::postgres::CASE` on a
//! fresh database of the test PostgreSQL server (so `cargo test --test store postgres::`
//! runs the PostgreSQL half). Results, rollups and retention are in [`results`].

#[path = "store/results.rs"]
mod results;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use control_plane::{SqliteStore, Store};

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
        }
    }

    /// A store on a new database of the test PostgreSQL server.
    pub fn postgres() -> Db {
        panic!("the PostgreSQL backend is not built yet")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
