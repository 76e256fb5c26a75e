//! Synchronous SQL on a pooled connection's own SQLite handle.
//!
//! Every sqlx statement on SQLite is a round trip to the connection's worker thread: two thread
//! switches, which under load cost far more than the statement itself. Profiled in the patient
//! service registering at 64 connections: half its CPU time was spent switching between the
//! writer and the worker thread, and a write of four statements took about 450 µs, where SQLite's
//! own work is a few µs a statement. So writes run their statements through rusqlite on the same
//! handle, locked away from the worker while they do ([`with_handle`]): one round trip for the
//! lock, then plain function calls. Reads, which are one statement each, stay on sqlx.
//!
//! Write SQL here uses numbered parameters (`?1`); rusqlite binds by position, and a `$1` is a
//! *named* parameter to SQLite, numbered by where it first appears in the text.

use std::sync::Arc;

use shared_events::ServiceError;
use sqlx::SqliteConnection;
use sqlx::sqlite::LockedSqliteHandle;

use crate::idempotency::KeyTaken;

/// A connection to run synchronous SQL on (a borrowed handle, see [`with_handle`]).
pub type Db = rusqlite::Connection;

/// Runs `work` on `conn`'s SQLite handle, with sqlx's worker thread locked out until it returns.
/// A transaction sqlx began on `conn` is the one `work` runs in.
pub async fn with_handle<T>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&Db) -> T,
) -> Result<T, sqlx::Error> {
    let mut locked = conn.lock_handle().await?;
    let db = BorrowedDb::new(&mut locked)?;
    Ok(work(&db))
}

/// A rusqlite connection over a locked sqlx handle; it cannot outlive the lock it borrows.
/// Dropping it finalizes the statements it prepared (rusqlite's statement cache), and does not
/// close the handle, which stays sqlx's.
pub struct BorrowedDb<'lock> {
    db: Db,
    _locked: std::marker::PhantomData<&'lock mut ()>,
}

impl<'lock> BorrowedDb<'lock> {
    pub fn new(locked: &'lock mut LockedSqliteHandle<'_>) -> Result<Self, sqlx::Error> {
        let raw = locked.as_raw_handle();
        // SAFETY: `locked` keeps sqlx's worker thread off the handle for as long as it lives,
        // and `'lock` ties this connection to that borrow, so it is dropped first.
        // `from_handle` does not take ownership: the handle is not closed on drop.
        let db = unsafe { Db::from_handle(raw.as_ptr()) }
            .map_err(|error| sqlx::Error::Protocol(format!("borrow the SQLite handle: {error}")))?;
        Ok(BorrowedDb {
            db,
            _locked: std::marker::PhantomData,
        })
    }
}

impl std::ops::Deref for BorrowedDb<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

/// The error of a write run on the handle.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// The write's Idempotency-Key was stored by a concurrent request (see `idempotency`).
    #[error(transparent)]
    KeyTaken(#[from] KeyTaken),
    /// The write's own statements succeeded but its transaction did not commit.
    #[error(transparent)]
    NotCommitted(#[from] NotCommitted),
    #[error("cannot encode the row: {0}")]
    Encode(#[from] serde_json::Error),
    /// A stored value that does not parse (a corrupt row).
    #[error("unreadable stored value: {0}")]
    Corrupt(String),
}

impl WriteError {
    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        self.sqlite_extended_code().is_some_and(|code| {
            code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        })
    }

    /// A trigger refused the write with `RAISE(ABORT, message)`.
    pub fn is_raised(&self, message: &str) -> bool {
        match self {
            WriteError::Sql(rusqlite::Error::SqliteFailure(error, Some(text))) => {
                error.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
                    && text.contains(message)
            }
            _ => false,
        }
    }

    fn sqlite_extended_code(&self) -> Option<i32> {
        match self {
            WriteError::Sql(rusqlite::Error::SqliteFailure(error, _)) => Some(error.extended_code),
            _ => None,
        }
    }
}

impl From<WriteError> for ServiceError {
    fn from(error: WriteError) -> Self {
        crate::events::storage_failure(error)
    }
}

/// For read-model projections, whose errors are sqlx's: kept in the kinds
/// [`crate::read_model::classify`] tells apart, so a projection that writes on the handle parks
/// and retries exactly as one that writes through sqlx (an unreadable value is permanent, a busy
/// database transient, anything else repeatable).
impl From<WriteError> for sqlx::Error {
    fn from(error: WriteError) -> Self {
        use rusqlite::{Error as E, ErrorCode};
        match error {
            WriteError::Corrupt(message) => sqlx::Error::Decode(message.into()),
            WriteError::Sql(
                error @ (E::FromSqlConversionFailure(..)
                | E::InvalidColumnType(..)
                | E::IntegralValueOutOfRange(..)),
            ) => sqlx::Error::Decode(Box::new(error)),
            WriteError::Sql(E::SqliteFailure(failure, message))
                if matches!(
                    failure.code,
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
                ) =>
            {
                let message = message.unwrap_or_else(|| failure.to_string());
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ResourceBusy,
                    message,
                ))
            }
            WriteError::Encode(error) => sqlx::Error::Encode(Box::new(error)),
            other => sqlx::Error::Protocol(other.to_string()),
        }
    }
}

/// The error of a write whose own work succeeded but whose transaction did not commit (or
/// that never ran: the writer had stopped).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the write was not committed: {0}")]
pub struct NotCommitted(pub Arc<str>);

impl NotCommitted {
    pub fn because(error: impl std::fmt::Display) -> Self {
        NotCommitted(error.to_string().into())
    }
}

impl From<NotCommitted> for ServiceError {
    fn from(error: NotCommitted) -> Self {
        crate::events::storage_failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::migrate::Migrator;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    #[tokio::test]
    async fn statements_on_the_handle_share_sqlx_connection_and_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url_in(dir.path(), "handle");
        let pool = crate::sqlite::open(&url, &NO_MIGRATIONS).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY, word TEXT UNIQUE)")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
        let inserted = with_handle(&mut conn, |db| {
            db.execute("INSERT INTO t (n, word) VALUES (?1, ?2)", (1, "one"))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(inserted, 1);
        let duplicate = with_handle(&mut conn, |db| {
            db.execute("INSERT INTO t (n, word) VALUES (?1, ?2)", (2, "one"))
                .map_err(WriteError::from)
        })
        .await
        .unwrap()
        .unwrap_err();
        assert!(duplicate.is_unique_violation(), "{duplicate}");
        // sqlx sees the row inside the same transaction, and the rollback undoes it.
        let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(seen, 1);
        sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
        let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(after, 0);
    }

    #[test]
    fn projection_errors_keep_the_kind_the_read_model_runner_acts_on() {
        use crate::read_model::{FailureKind, classify};
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let kind = |error: WriteError| classify(&sqlx::Error::from(error));
        assert_eq!(kind(WriteError::Sql(busy)), FailureKind::Transient);
        assert_eq!(
            kind(WriteError::Corrupt("id x".into())),
            FailureKind::Permanent
        );
        assert_eq!(
            kind(WriteError::Sql(rusqlite::Error::InvalidColumnType(
                0,
                "id".into(),
                rusqlite::types::Type::Null
            ))),
            FailureKind::Permanent
        );
        assert_eq!(
            kind(WriteError::Sql(rusqlite::Error::QueryReturnedNoRows)),
            FailureKind::Repeatable
        );
    }
}
