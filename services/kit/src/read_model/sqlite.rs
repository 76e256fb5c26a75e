//! The read-model runner on SQLite: one instance per database file (its lock refuses a second),
//! so the runner always leads and writes through the pool, `BEGIN IMMEDIATE` as every writer.

use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::backend::{Parked, ReadModelDb};
use super::catch_up::SharedPosition;
use crate::database::Database;

impl ReadModelDb for Sqlite {
    type Lease = SqlitePool;

    async fn lead(pool: &SqlitePool, _consumer: &str) -> Result<Option<SqlitePool>, sqlx::Error> {
        Ok(Some(pool.clone()))
    }

    async fn release(_lease: SqlitePool) {}

    async fn lost(_lease: &mut SqlitePool) -> sqlx::Error {
        std::future::pending().await
    }

    async fn begin(lease: &mut SqlitePool) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        crate::sqlite::begin_write(lease).await
    }

    async fn begin_on_pool(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        crate::sqlite::begin_write(pool).await
    }

    async fn begin_on(conn: &mut SqliteConnection) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        conn.begin_with("BEGIN IMMEDIATE").await
    }

    async fn store_position(
        conn: &mut SqliteConnection,
        consumer: &str,
        sequence: u64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO read_model_position (consumer, stream_sequence) VALUES ($1, $2)
             ON CONFLICT (consumer) DO UPDATE
             SET stream_sequence = MAX(stream_sequence, excluded.stream_sequence)",
        )
        .bind(consumer)
        .bind(sequence as i64)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn stored_position(pool: &SqlitePool, consumer: &str) -> Result<u64, sqlx::Error> {
        let position: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_sequence), 0) FROM read_model_position WHERE consumer = $1",
        )
        .bind(consumer)
        .fetch_one(pool)
        .await?;
        Ok(position.max(0) as u64)
    }

    /// The payload is kept as text (lossy UTF-8), the time as RFC 3339 text.
    async fn park(conn: &mut SqliteConnection, parked: Parked<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO read_model_parked (consumer, stream_sequence, subject, event_id, error, payload, parked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (consumer, stream_sequence) DO UPDATE SET error = excluded.error,
                                                                  parked_at = excluded.parked_at",
        )
        .bind(parked.consumer)
        .bind(parked.sequence as i64)
        .bind(parked.subject)
        .bind(parked.event_id())
        .bind(parked.error)
        .bind(String::from_utf8_lossy(parked.payload).into_owned())
        .bind(crate::events::format_timestamp(crate::events::now()))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn forget(conn: &mut SqliteConnection, consumer: &str) -> Result<(), sqlx::Error> {
        for sql in [
            "DELETE FROM read_model_position WHERE consumer = $1",
            "DELETE FROM read_model_parked WHERE consumer = $1",
        ] {
            sqlx::query(sql).bind(consumer).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn tune_for_rebuild(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        // The rebuild can be run again from the start, so it need not wait for the disk on every
        // batch; the pool's other connections keep `synchronous = FULL`.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        // A directory of a million people outgrows SQLite's default 2 MB page cache, and every
        // upsert then reads its B-tree pages back through the kernel.
        sqlx::query("PRAGMA cache_size = -65536")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn untune(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        sqlx::raw_sql("PRAGMA synchronous = FULL; PRAGMA cache_size = -2000")
            .execute(conn)
            .await?;
        Ok(())
    }

    fn database(pool: &SqlitePool) -> Database {
        Database::from_sqlite_pool(pool.clone())
    }

    fn shared_position(_pool: &SqlitePool, _consumer: &str) -> Option<SharedPosition> {
        None
    }
}
