//! The failed logins on SQLite: reads on the pool; recording and forgiving on the database's
//! one group committer, whose single writer serialises every count-and-record.

use std::time::Duration;

use kit::events::storage_failure;
use kit::group_commit::{Db, WriteError, Writer};
use shared_events::ServiceError;
use sqlx::SqlitePool;

use super::{Attempt, Key, NthRecent, PURGE_BATCH};

/// Shared by the read (sqlx) and the write (rusqlite); SQLite numbers `?N` parameters the same
/// for both.
const NTH_RECENT: NthRecent = NthRecent {
    by_username: "SELECT failed_at FROM login_failures
         WHERE username = ?1 AND failed_at > ?2 ORDER BY failed_at DESC LIMIT 1 OFFSET ?3",
    by_address: "SELECT failed_at FROM login_failures
         WHERE address = ?1 AND failed_at > ?2 ORDER BY failed_at DESC LIMIT 1 OFFSET ?3",
};

/// Records `key`'s attempt, or says how long it must wait when the count (taken again inside
/// the write) is at a limit.
pub(super) async fn record(
    writer: &Writer,
    key: Key,
) -> Result<Result<Attempt, Duration>, ServiceError> {
    writer
        .write(move |db| -> Result<_, WriteError> {
            purge_expired(db, key.cutoff_ms)?;
            if let Some(wait) = wait_in(db, &key)? {
                return Ok(Err(wait));
            }
            db.prepare_cached(
                "INSERT INTO login_failures (username, address, failed_at) VALUES (?1, ?2, ?3)",
            )?
            .execute((&key.username, &key.address, key.now_ms))?;
            Ok(Ok(Attempt {
                id: db.last_insert_rowid(),
                username: key.username,
            }))
        })
        .await
        .map_err(ServiceError::from)
}

pub(super) async fn forgive(writer: &Writer, attempt: Attempt) -> Result<(), ServiceError> {
    writer
        .write(move |db| -> Result<(), WriteError> {
            db.prepare_cached("DELETE FROM login_failures WHERE id = ?1")?
                .execute([attempt.id])?;
            // Without a username or an address a row counts for no one.
            db.prepare_cached(
                "DELETE FROM login_failures WHERE username = ?1 AND address IS NULL",
            )?
            .execute([&attempt.username])?;
            db.prepare_cached("UPDATE login_failures SET username = NULL WHERE username = ?1")?
                .execute([&attempt.username])?;
            Ok(())
        })
        .await
        .map_err(ServiceError::from)
}

pub(super) async fn rows(pool: &SqlitePool) -> Result<i64, ServiceError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM login_failures")
        .fetch_one(pool)
        .await
        .map_err(storage_failure)
}

/// The wait of `key` read on the pool, outside any write.
pub(super) async fn wait_of(
    pool: &SqlitePool,
    key: &Key,
) -> Result<Option<Duration>, ServiceError> {
    let mut oldest_counted = Vec::with_capacity(2);
    for (sql, value, limit) in key.lookups(&NTH_RECENT) {
        let found: Option<i64> = sqlx::query_scalar(sql)
            .bind(value)
            .bind(key.cutoff_ms)
            .bind(i64::from(limit) - 1)
            .fetch_optional(pool)
            .await
            .map_err(storage_failure)?;
        oldest_counted.extend(found);
    }
    Ok(key.wait_for(oldest_counted))
}

/// [`wait_of`] inside a write transaction.
fn wait_in(db: &Db, key: &Key) -> rusqlite::Result<Option<Duration>> {
    let mut oldest_counted = Vec::with_capacity(2);
    for (sql, value, limit) in key.lookups(&NTH_RECENT) {
        let mut statement = db.prepare_cached(sql)?;
        let mut rows = statement.query((value, key.cutoff_ms, i64::from(limit) - 1))?;
        if let Some(row) = rows.next()? {
            oldest_counted.push(row.get(0)?);
        }
    }
    Ok(key.wait_for(oldest_counted))
}

/// Deletes up to [`PURGE_BATCH`] failures that left the window at `cutoff_ms`, oldest first.
fn purge_expired(db: &Db, cutoff_ms: i64) -> rusqlite::Result<usize> {
    db.prepare_cached(
        "DELETE FROM login_failures WHERE id IN
           (SELECT id FROM login_failures WHERE failed_at <= ?1 ORDER BY failed_at LIMIT ?2)",
    )?
    .execute((cutoff_ms, PURGE_BATCH))
}
