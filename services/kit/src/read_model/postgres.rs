//! The read-model runner on PostgreSQL, where several instances of a service share the database
//! and the durable consumer: only the instance holding the consumer's session advisory lock
//! consumes ([`PgLease`]), and it makes every write on the connection holding that lock. The
//! others wait to take over, and answer their catch-up waits from the position it stores
//! ([`SharedPosition`]).

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use super::backend::{Parked, ReadModelDb};
use super::catch_up::SharedPosition;
use crate::database::Database;

/// How often an idle leader makes sure its session (and so its lock) is still there.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The advisory lock of a read-model's durable consumer: one per consumer name.
pub fn consumer_lock(consumer: &str) -> i64 {
    crate::postgres::lock_key(&format!("hospital read-model {consumer}"))
}

/// A connection holding a consumer's advisory lock. Should it be dropped rather than released
/// (the runner's task aborted), the connection is closed, not returned to the pool: a pooled
/// session would keep the lock, and no instance could take over.
pub struct PgLease {
    conn: PoolConnection<Postgres>,
    key: i64,
}

impl ReadModelDb for Postgres {
    type Lease = PgLease;

    async fn lead(pool: &PgPool, consumer: &str) -> Result<Option<PgLease>, sqlx::Error> {
        let key = consumer_lock(consumer);
        Ok(crate::postgres::try_lead(pool, key).await?.map(|mut conn| {
            conn.close_on_drop();
            PgLease { conn, key }
        }))
    }

    async fn release(lease: PgLease) {
        crate::postgres::release(lease.conn, lease.key).await;
    }

    async fn lost(lease: &mut PgLease) -> sqlx::Error {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if let Err(error) = lease.conn.ping().await {
                return error;
            }
        }
    }

    async fn begin(lease: &mut PgLease) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        lease.conn.begin().await
    }

    async fn begin_on_pool(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn begin_on(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        conn.begin().await
    }

    async fn store_position(
        conn: &mut PgConnection,
        consumer: &str,
        sequence: u64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO read_model_position (consumer, stream_sequence) VALUES ($1, $2)
             ON CONFLICT (consumer) DO UPDATE
             SET stream_sequence = GREATEST(read_model_position.stream_sequence,
                                            excluded.stream_sequence)",
        )
        .bind(consumer)
        .bind(sequence as i64)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn stored_position(pool: &PgPool, consumer: &str) -> Result<u64, sqlx::Error> {
        stored_position(pool, consumer).await
    }

    /// The payload is kept byte for byte (bytea: text cannot hold a NUL byte), the time as a
    /// timestamptz.
    async fn park(conn: &mut PgConnection, parked: Parked<'_>) -> Result<(), sqlx::Error> {
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
        .bind(parked.payload)
        .bind(crate::events::now())
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn forget(conn: &mut PgConnection, consumer: &str) -> Result<(), sqlx::Error> {
        for sql in [
            "DELETE FROM read_model_position WHERE consumer = $1",
            "DELETE FROM read_model_parked WHERE consumer = $1",
        ] {
            sqlx::query(sql).bind(consumer).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// A rebuild can be run again from the start, so its commits need not wait for the WAL
    /// flush (what is committed stays consistent; only the last moments could be lost in a
    /// crash). This session only.
    async fn tune_for_rebuild(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SET synchronous_commit = off")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn untune(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("RESET synchronous_commit")
            .execute(conn)
            .await?;
        Ok(())
    }

    fn database(pool: &PgPool) -> Database {
        Database::Postgres(pool.clone())
    }

    fn shared_position(pool: &PgPool, consumer: &str) -> Option<SharedPosition> {
        Some(SharedPosition::new(pool.clone(), consumer))
    }
}

/// `consumer`'s stored position in the shared database (0 when it has none).
pub(super) async fn stored_position(pool: &PgPool, consumer: &str) -> Result<u64, sqlx::Error> {
    let position: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(stream_sequence), 0) FROM read_model_position WHERE consumer = $1",
    )
    .bind(consumer)
    .fetch_one(pool)
    .await?;
    Ok(position.max(0) as u64)
}
