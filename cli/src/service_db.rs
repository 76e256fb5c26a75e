//! A service's database opened by an operator command for reading, on either backend
//! (`kit::database::Backend`): SQLite read-only (WAL readers never block the running service),
//! or a small PostgreSQL pool. Queries come in two spellings, one per backend ([`Sql`]), that
//! return the same columns as text.

use anyhow::Context;
use kit::database::Backend;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, SqlitePool};

/// One query in each backend's dialect.
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub enum ServiceDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl ServiceDb {
    /// Opens the existing database at `url` for reading; never creates or migrates it.
    pub async fn open(url: &str) -> anyhow::Result<ServiceDb> {
        Ok(match Backend::of_url(url)? {
            Backend::Sqlite => ServiceDb::Sqlite(kit::sqlite::open_read_only(url).await?),
            Backend::Postgres => ServiceDb::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await
                    .with_context(|| format!("cannot connect to {}", kit::config::mask_url(url)))?,
            ),
        })
    }

    /// Every row of `sql`, a text column and a second column of type `T`.
    pub async fn pairs<T>(&self, sql: Sql) -> Result<Vec<(String, T)>, sqlx::Error>
    where
        T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            ServiceDb::Sqlite(pool) => sqlx::query_as(sql.sqlite).fetch_all(pool).await,
            ServiceDb::Postgres(pool) => sqlx::query_as(sql.postgres).fetch_all(pool).await,
        }
    }

    /// How many rows `table` holds.
    pub async fn count(&self, table: &'static str) -> Result<i64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self {
            ServiceDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            ServiceDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
    }

    pub async fn close(&self) {
        match self {
            ServiceDb::Sqlite(pool) => pool.close().await,
            ServiceDb::Postgres(pool) => pool.close().await,
        }
    }
}
