//! PostgreSQL, the scale-out backend (DESIGN.md, "Scaling past one machine"): opening a
//! service's database, and telling the database's refusals (a constraint, a lost race) from real
//! failures.
//!
//! Unlike SQLite, several instances of a service may share one PostgreSQL database: every write
//! is its own transaction (row locks and constraints keep the invariants), and the work only one
//! instance may do at a time (draining the outbox) takes an advisory lock ([`try_lead`]).

use std::str::FromStr;
use std::time::Duration;

use shared_events::ServiceError;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::sqlite::OpenError;

/// The SQLSTATEs the stores tell apart.
pub mod sqlstate {
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const EXCLUSION_VIOLATION: &str = "23P01";
    /// A trigger's `RAISE ... USING ERRCODE = 'integrity_constraint_violation'`.
    pub const INTEGRITY_CONSTRAINT_VIOLATION: &str = "23000";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
}

/// Connections per instance: several instances share the server's `max_connections` (100 by
/// default), so each keeps a modest pool.
const MAX_CONNECTIONS: u32 = 16;

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Connects to the database at `url` and applies `migrator`. Several instances may start at
/// once: sqlx's migrator takes an advisory lock, so one applies the migrations and the others
/// find them applied.
pub async fn open(url: &str, migrator: &Migrator) -> Result<PgPool, OpenError> {
    let options = PgConnectOptions::from_str(url).map_err(|source| OpenError::Url {
        url: crate::config::mask_url(url),
        source,
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(OpenError::Connect)?;
    migrator.run(&pool).await?;
    Ok(pool)
}

/// The SQLSTATE and constraint name of an error the database raised (`None` when it is no
/// refusal by the database): `("23P01", Some("appointments_doctor_never_double_booked"))`.
pub fn refusal(error: &sqlx::Error) -> Option<(String, Option<String>)> {
    let database = error.as_database_error()?;
    Some((
        database.code()?.into_owned(),
        database.constraint().map(str::to_owned),
    ))
}

/// Whether the database refused the write with `state` (one of [`sqlstate`]).
pub fn is_refused_with(error: &sqlx::Error, state: &str) -> bool {
    refusal(error).is_some_and(|(code, _)| code == state)
}

/// Whether a UNIQUE constraint named `constraint` refused the write.
pub fn is_unique_violation_of(error: &sqlx::Error, constraint: &str) -> bool {
    refusal(error).is_some_and(|(code, name)| {
        code == sqlstate::UNIQUE_VIOLATION && name.as_deref() == Some(constraint)
    })
}

/// Whether `error` says the database could not be reached or is going away (the connection,
/// the pool, a server shutting down or out of resources, as during a failover), rather than
/// anything about the statement.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => refusal(error).is_some_and(|(code, _)| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
        }),
    }
}

/// The error of a failed read or write that is not one of the refusals a store maps itself:
/// a lost serialization race or deadlock is a conflict the client may retry (409); an
/// unreachable database (a failover) is a 503 the client may retry with its
/// `Idempotency-Key` (the write may or may not have committed); anything else is a storage
/// failure (logged, 500).
pub fn failure(error: sqlx::Error) -> ServiceError {
    if is_refused_with(&error, sqlstate::SERIALIZATION_FAILURE)
        || is_refused_with(&error, sqlstate::DEADLOCK_DETECTED)
    {
        tracing::info!(%error, "write lost a race with a concurrent one");
        return ServiceError::conflict("a concurrent change got there first; try again");
    }
    if is_unavailable(&error) {
        tracing::warn!(%error, "the database is unavailable");
        return ServiceError::new(
            shared_events::ErrorCode::Unavailable,
            "the database is unavailable; try again",
        );
    }
    crate::events::storage_failure(error)
}

/// A connection holding the session advisory lock `key`, or `None` while another connection
/// (another instance) holds it. The lock is released when the connection is returned
/// ([`release`]) or, if the process dies, when the server drops the session.
pub async fn try_lead(
    pool: &PgPool,
    key: i64,
) -> Result<Option<PoolConnection<Postgres>>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let led: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    Ok(led.then_some(conn))
}

/// Gives up the advisory lock `key` taken by [`try_lead`] on `conn`. If that fails the
/// connection is closed instead, which releases it too.
pub async fn release(mut conn: PoolConnection<Postgres>, key: i64) {
    let released = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await;
    if !matches!(released, Ok(true)) {
        let _ = conn.close().await;
    }
}

/// A stable advisory lock key for `name` (FNV-1a): the same in every instance and release.
pub const fn lock_key(name: &str) -> i64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_recognised() {
        assert!(is_postgres_url("postgres://u:p@db/hospital"));
        assert!(is_postgres_url("postgresql://db/hospital"));
        assert!(!is_postgres_url("sqlite://data/patient.db"));
        assert!(!is_postgres_url("mysql://db/hospital"));
    }

    #[test]
    fn an_unreachable_database_is_a_503_and_other_failures_a_500() {
        let status = |error| failure(error).code.http_status();
        assert_eq!(status(sqlx::Error::PoolTimedOut), 503);
        assert_eq!(status(sqlx::Error::PoolClosed), 503);
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(status(sqlx::Error::Io(reset)), 503);
        assert_eq!(status(sqlx::Error::RowNotFound), 500);
        assert_eq!(status(sqlx::Error::Protocol("garbled".into())), 500);
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("outbox relay"), lock_key("outbox relay"));
        assert_ne!(lock_key("outbox relay"), lock_key("read model"));
    }
}
