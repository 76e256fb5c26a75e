//! Which database the suite's services run on: SQLite files in the app's data directory (the
//! default), or, with `HOSPITAL_TEST_BACKEND=postgres`, a fresh PostgreSQL database per service
//! and app on the server `scripts/test` provides (`kit::postgres_test`) for every service that
//! has a PostgreSQL store. `scripts/test` runs this suite once on each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kit::database::{Database, Migrations};
use kit::postgres_test::FreshDatabase;

pub const BACKEND_VAR: &str = "HOSPITAL_TEST_BACKEND";

/// The services whose store has a PostgreSQL implementation; the others stay on SQLite.
pub const ON_POSTGRES: &[&str] = &["patient", "staff", "appointment", "record"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The backend [`BACKEND_VAR`] names; SQLite when unset.
pub fn backend() -> TestBackend {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => TestBackend::Sqlite,
        Ok("postgres") => TestBackend::Postgres,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected sqlite or postgres"),
    }
}

/// The databases of one test app's services.
pub struct ServiceDatabases {
    /// The app's data directory, where the SQLite files are.
    dir: PathBuf,
    /// The PostgreSQL database of each service on PostgreSQL, dropped after the test.
    postgres: HashMap<&'static str, FreshDatabase>,
}

impl ServiceDatabases {
    pub async fn new(dir: &Path) -> Self {
        let mut postgres = HashMap::new();
        if backend() == TestBackend::Postgres {
            for service in ON_POSTGRES {
                postgres.insert(*service, FreshDatabase::create().await);
            }
        }
        ServiceDatabases {
            dir: dir.to_owned(),
            postgres,
        }
    }

    /// The URL `service` is configured with.
    pub fn url(&self, service: &str) -> String {
        match self.postgres.get(service) {
            Some(database) => database.url().to_owned(),
            None => kit::config::sqlite_url_in(&self.dir, service),
        }
    }

    pub fn is_postgres(&self, service: &str) -> bool {
        self.postgres.contains_key(service)
    }

    /// The database of `service`, opened beside the running service as a second process
    /// would: on SQLite without the single-writer lock (the service holds it).
    pub async fn open_beside(&self, migrations: Migrations) -> Database {
        let url = self.url(migrations.service);
        if self.is_postgres(migrations.service) {
            return Database::open(&url, migrations)
                .await
                .expect("the service's PostgreSQL database opens");
        }
        let pool = kit::sqlite::open_shared(&url, migrations.sqlite)
            .await
            .expect("the service's SQLite database opens");
        Database::from_sqlite_pool(pool)
    }
}

/// How many rows `table` of `database` holds.
pub async fn count_rows(database: &Database, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    match database {
        Database::Sqlite { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("the table is readable")
}

/// A service's database opened beside it by a test, to look at (or tamper with) its tables on
/// whichever backend it is. Statements are written to run on both where they can.
pub enum TestDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl TestDb {
    pub async fn open(databases: &ServiceDatabases, service: &str) -> TestDb {
        let url = databases.url(service);
        if databases.is_postgres(service) {
            TestDb::Postgres(sqlx::PgPool::connect(&url).await.unwrap())
        } else {
            TestDb::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap())
        }
    }

    pub async fn execute(&self, sql: &str) {
        let statement = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            TestDb::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(drop),
            TestDb::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// The one number `sql` selects.
    pub async fn number(&self, sql: &str) -> i64 {
        let statement = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            TestDb::Sqlite(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
            TestDb::Postgres(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// The row `sql` selects for the entity `id` (its one parameter).
    pub async fn by_id<T>(&self, sql: &str, id: uuid::Uuid) -> Option<T>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let statement = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            TestDb::Sqlite(pool) => {
                sqlx::query_as(statement)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await
            }
            TestDb::Postgres(pool) => {
                sqlx::query_as(statement)
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Every row of `table` in `order`, each as one line of text, for comparing tables.
    pub async fn table(&self, table: &str, order: &str) -> Vec<String> {
        match self {
            TestDb::Sqlite(pool) => {
                let sql = format!("SELECT * FROM {table} ORDER BY {order}");
                sqlite_rows(pool, &sql).await
            }
            TestDb::Postgres(pool) => {
                let sql = format!("SELECT t::text FROM {table} t ORDER BY {order}");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
        }
    }

    pub async fn close(&self) {
        match self {
            TestDb::Sqlite(pool) => pool.close().await,
            TestDb::Postgres(pool) => pool.close().await,
        }
    }
}

/// Every row of `sql` on SQLite, its columns joined with `|`.
pub async fn sqlite_rows(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
    use sqlx::Row;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (0..row.columns().len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or_else(|| "NULL".into()))
                        .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                        .unwrap_or_else(|_| "?".into())
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}
