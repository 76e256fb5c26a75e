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
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
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
            Backend::Postgres => Ok(Database::Postgres(
                crate::postgres::open(url, migrations.postgres).await?,
            )),
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

    /// The SQLite pool and writer; `None` on PostgreSQL.
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
}
