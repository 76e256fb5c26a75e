//! The failed logins on PostgreSQL, where several instances share the table. Recording an
//! attempt is one transaction that first takes transaction-scoped advisory locks on its username
//! and then on its address, so the counts and the insert of concurrent attempts for one username
//! (or one address) run one after the other, from whichever instance, as they do behind
//! SQLite's one writer. Every transaction takes the locks in that order, so none waits for a
//! lock held by one that waits for its own.

use std::time::Duration;

use kit::postgres::failure;
use shared_events::ServiceError;
use sqlx::{PgConnection, PgPool};

use super::{Attempt, Key, NthRecent, PURGE_BATCH};

/// `address` is `inet`: the text of an `IpAddr` is cast.
const NTH_RECENT: NthRecent = NthRecent {
    by_username: "SELECT failed_at FROM login_failures
         WHERE username = $1 AND failed_at > $2 ORDER BY failed_at DESC LIMIT 1 OFFSET $3",
    by_address: "SELECT failed_at FROM login_failures
         WHERE address = $1::inet AND failed_at > $2 ORDER BY failed_at DESC LIMIT 1 OFFSET $3",
};

/// The advisory lock on one username (held until the transaction ends). The prefixes keep a
/// username's lock apart from an address's.
const LOCK_USERNAME: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('login:user:' || $1, 0))";
/// The advisory lock on one client address.
const LOCK_ADDRESS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('login:address:' || $1, 0))";

/// Records `key`'s attempt, or says how long it must wait when the count (taken again under
/// the locks) is at a limit.
pub(super) async fn record(
    pool: &PgPool,
    key: Key,
) -> Result<Result<Attempt, Duration>, ServiceError> {
    let mut tx = pool.begin().await.map_err(failure)?;
    lock(&mut tx, LOCK_USERNAME, &key.username).await?;
    if let Some(address) = &key.address {
        lock(&mut tx, LOCK_ADDRESS, address).await?;
    }
    purge_expired(&mut tx, key.cutoff_ms).await?;
    let decided = match wait_in(&mut tx, &key).await? {
        Some(wait) => Err(wait),
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO login_failures (username, address, failed_at)
                 VALUES ($1, $2::inet, $3) RETURNING id",
            )
            .bind(&key.username)
            .bind(&key.address)
            .bind(key.now_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(failure)?;
            Ok(Attempt {
                id,
                username: key.username,
            })
        }
    };
    // Committed even when refused, as on SQLite: the purge stands.
    tx.commit().await.map_err(failure)?;
    Ok(decided)
}

pub(super) async fn forgive(pool: &PgPool, attempt: Attempt) -> Result<(), ServiceError> {
    let mut tx = pool.begin().await.map_err(failure)?;
    // Under the username's lock, taken before any row lock: two successful logins of one
    // username then update its rows one after the other, never each waiting for the other.
    lock(&mut tx, LOCK_USERNAME, &attempt.username).await?;
    sqlx::query("DELETE FROM login_failures WHERE id = $1")
        .bind(attempt.id)
        .execute(&mut *tx)
        .await
        .map_err(failure)?;
    // Without a username or an address a row counts for no one.
    sqlx::query("DELETE FROM login_failures WHERE username = $1 AND address IS NULL")
        .bind(&attempt.username)
        .execute(&mut *tx)
        .await
        .map_err(failure)?;
    sqlx::query("UPDATE login_failures SET username = NULL WHERE username = $1")
        .bind(&attempt.username)
        .execute(&mut *tx)
        .await
        .map_err(failure)?;
    tx.commit().await.map_err(failure)
}

pub(super) async fn rows(pool: &PgPool) -> Result<i64, ServiceError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM login_failures")
        .fetch_one(pool)
        .await
        .map_err(failure)
}

/// The wait of `key` read outside any write.
pub(super) async fn wait_of(pool: &PgPool, key: &Key) -> Result<Option<Duration>, ServiceError> {
    let mut conn = pool.acquire().await.map_err(failure)?;
    wait_in(&mut conn, key).await
}

/// The wait of `key` on `conn` (inside [`record`]'s transaction, under its locks).
async fn wait_in(conn: &mut PgConnection, key: &Key) -> Result<Option<Duration>, ServiceError> {
    let mut oldest_counted = Vec::with_capacity(2);
    for (sql, value, limit) in key.lookups(&NTH_RECENT) {
        let found: Option<i64> = sqlx::query_scalar(sql)
            .bind(value)
            .bind(key.cutoff_ms)
            .bind(i64::from(limit) - 1)
            .fetch_optional(&mut *conn)
            .await
            .map_err(failure)?;
        oldest_counted.extend(found);
    }
    Ok(key.wait_for(oldest_counted))
}

async fn lock(conn: &mut PgConnection, sql: &'static str, value: &str) -> Result<(), ServiceError> {
    sqlx::query(sql)
        .bind(value)
        .execute(conn)
        .await
        .map_err(failure)?;
    Ok(())
}

/// Deletes up to [`PURGE_BATCH`] failures that left the window at `cutoff_ms`, oldest first.
/// `SKIP LOCKED`: rows another transaction is deleting or forgiving are left to it, so purges
/// running at once never wait for each other (nor deadlock, each locking rows in its own order).
async fn purge_expired(conn: &mut PgConnection, cutoff_ms: i64) -> Result<(), ServiceError> {
    sqlx::query(
        "DELETE FROM login_failures WHERE id IN
           (SELECT id FROM login_failures WHERE failed_at <= $1 ORDER BY failed_at LIMIT $2
            FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoff_ms)
    .bind(PURGE_BATCH)
    .execute(conn)
    .await
    .map_err(failure)?;
    Ok(())
}
