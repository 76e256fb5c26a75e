//! A service's own database, on either backend (DESIGN.md, "Scaling past one machine"): SQLite
//! (the default, one machine, one writer instance) or PostgreSQL (several instances sharing it).
//! The URL in `DATABASE_URL_<SERVICE>` chooses: `sqlite://...` or `postgres://...`.
//!
//! Each service's store is one interface over both (an enum with a SQLite and a PostgreSQL
//! implementation); the machinery here (outbox, idempotency keys, lists) serves both.

use sqlx::migrate::Migrator;
use sqlx::{PgPool, SqlitePool};

use crate::group_commit::Writer;
pub use crate::sqlite::OpenError;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Backend, OpenError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if crate::postgres::is_postgres_url(url) {
            Ok(Backend::Postgres)
        } else {
            Err(OpenError::UnknownBackend {
                url: crate::config::mask_url(url),
            })
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A service's migrations, one directory per backend (`migrations/<service>/{sqlite,postgres}`).
#[derive(Clone, Copy)]
pub struct Migrations {
    pub service: &'static str,
    /// The variable naming the database, for the messages.
    pub database_var: &'static str,
    pub sqlite: &'static Migrator,
    /// `None` while the service has no PostgreSQL store: a `postgres://` URL is then refused.
    pub postgres: Option<&'static Migrator>,
}

impl Migrations {
    /// The migrations of a service whose store is written for SQLite only (so far).
    pub const fn sqlite_only(
        service: &'static str,
        database_var: &'static str,
        sqlite: &'static Migrator,
    ) -> Self {
        Migrations {
            service,
            database_var,
            sqlite,
            postgres: None,
        }
    }
}

/// An opened, migrated database. Cheap to clone.
#[derive(Clone)]
pub enum Database {
    /// The pool for reads, and the one group committer every write goes through
    /// (`kit::group_commit`).
    Sqlite { pool: SqlitePool, writer: Writer },
    /// The pool shared by reads and writes; each write is its own transaction.
    Postgres(PgPool),
}

impl Database {
    /// Opens the database `url` names and applies its backend's migrations. A SQLite database
    /// takes its single-writer lock (a second instance is refused, see `kit::sqlite`).
    pub async fn open(url: &str, migrations: Migrations) -> Result<Database, OpenError> {
        match Backend::of_url(url)? {
            Backend::Sqlite => {
                let pool = crate::sqlite::open(url, migrations.sqlite).await?;
                let writer = Writer::start(pool.clone());
                Ok(Database::Sqlite { pool, writer })
            }
            Backend::Postgres => {
                let migrator = migrations.postgres.ok_or(OpenError::NoPostgresStore {
                    service: migrations.service,
                    var: migrations.database_var,
                })?;
                Ok(Database::Postgres(
                    crate::postgres::open(url, migrator).await?,
                ))
            }
        }
    }

    /// A SQLite database already opened and migrated (a replay's, a test's), with a group
    /// committer of its own.
    pub fn from_sqlite_pool(pool: SqlitePool) -> Database {
        Database::Sqlite {
            writer: Writer::start(pool.clone()),
            pool,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite { .. } => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite pool and writer, for the parts still written for SQLite only; `None` on
    /// PostgreSQL (which [`Database::open`] refuses for those services).
    pub fn sqlite(&self) -> Option<(&SqlitePool, &Writer)> {
        match self {
            Database::Sqlite { pool, writer } => Some((pool, writer)),
            Database::Postgres(_) => None,
        }
    }

    /// Closes the pool (and so, on SQLite, releases the single-writer lock).
    pub async fn close(&self) {
        match self {
            Database::Sqlite { pool, .. } => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    fn sqlite_only() -> Migrations {
        Migrations {
            service: "record",
            database_var: "DATABASE_URL_RECORD",
            sqlite: &NO_MIGRATIONS,
            postgres: None,
        }
    }

    #[test]
    fn the_url_chooses_the_backend() {
        assert_eq!(
            Backend::of_url("sqlite://data/x.db?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::of_url("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        let error = Backend::of_url("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("neither") && error.contains("mysql://u:***@h/db"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_service_without_a_postgres_store_refuses_a_postgres_url() {
        let Err(error) = Database::open("postgres://u:p@127.0.0.1:1/db", sqlite_only()).await
        else {
            panic!("a postgres URL was accepted");
        };
        let message = error.to_string();
        assert!(
            message.contains("record service runs on SQLite only")
                && message.contains("DATABASE_URL_RECORD"),
            "{message}"
        );
    }
}
