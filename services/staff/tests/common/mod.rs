//! What the staff service's tests on both backends share: a fresh database of either kind,
//! opened and migrated as `hospital serve staff` opens it, and a macro that runs a test once
//! per backend.

use kit::database::Database;
use kit::postgres_test::FreshDatabase;
use staff_service::store::MIGRATIONS;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each test `name(backend)` once per backend, as `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// The service's own database at `url`, opened as the service opens it.
pub async fn open(url: &str) -> Database {
    Database::open(url, MIGRATIONS).await.unwrap()
}

/// A fresh, migrated database for one test; [`TestDatabase::close`] removes it.
pub struct TestDatabase {
    pub database: Database,
    storage: Storage,
}

enum Storage {
    /// The directory of the SQLite file.
    Sqlite(tempfile::TempDir),
    Postgres(FreshDatabase),
}

impl TestDatabase {
    pub async fn fresh(backend: Backend) -> TestDatabase {
        let (url, storage) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = kit::config::sqlite_url_in(dir.path(), "staff");
                (url, Storage::Sqlite(dir))
            }
            Backend::Postgres => {
                let database = FreshDatabase::create().await;
                (database.url().to_owned(), Storage::Postgres(database))
            }
        };
        TestDatabase {
            database: open(&url).await,
            storage,
        }
    }

    /// Closes the database and removes it (a PostgreSQL one is dropped; the SQLite file goes
    /// with its directory).
    pub async fn close(self) {
        self.database.close().await;
        match self.storage {
            Storage::Sqlite(_dir) => {}
            Storage::Postgres(database) => database.drop().await,
        }
    }
}
