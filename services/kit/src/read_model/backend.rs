//! What the read-model runner needs of its database, once per backend ([`ReadModelDb`]): how it
//! begins a write, stores its position and parks an event, and how an instance comes to be the
//! one that consumes. The projection's own SQL is the projection's; this is only the runner's.
//!
//! SQLite (`sqlite.rs`) is one instance per database, so it always leads and its lease is the
//! pool. PostgreSQL (`postgres.rs`) is shared by several instances: the one holding the
//! consumer's session advisory lock consumes, and makes every write on the connection that holds
//! it (see [`ReadModelDb::Lease`]).

use std::future::Future;

use sqlx::{Pool, Transaction};

use super::catch_up::SharedPosition;
use crate::database::Database;

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Sqlite {}
    impl Sealed for sqlx::Postgres {}
}

/// A database the read-model runner can keep a read-model in: SQLite or PostgreSQL.
pub trait ReadModelDb: sqlx::Database + sealed::Sealed {
    /// What an instance holds while it consumes. On SQLite the pool: one instance only (its file
    /// lock refuses a second). On PostgreSQL a connection holding the consumer's session advisory
    /// lock; the runner writes on it, so nothing commits once the lock is lost (the lock only
    /// ends with its session, and a write on a dead session fails).
    type Lease: Send + Sync + 'static;

    /// The lease for `consumer`, or `None` while another instance holds it.
    fn lead(
        pool: &Pool<Self>,
        consumer: &str,
    ) -> impl Future<Output = Result<Option<Self::Lease>, sqlx::Error>> + Send;

    /// Gives the lease up, so another instance may take over at once.
    fn release(lease: Self::Lease) -> impl Future<Output = ()> + Send;

    /// Resolves only when the lease is lost while idle (the session holding the lock ended).
    /// Never on SQLite.
    fn lost(lease: &mut Self::Lease) -> impl Future<Output = sqlx::Error> + Send + '_;

    /// Begins one of the runner's write transactions on its lease.
    fn begin(
        lease: &mut Self::Lease,
    ) -> impl Future<Output = Result<Transaction<'_, Self>, sqlx::Error>> + Send + '_;

    /// Begins a write transaction on a pool (a restore's) or on one connection (a rebuild's).
    fn begin_on_pool(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send + '_;
    fn begin_on(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<Transaction<'_, Self>, sqlx::Error>> + Send + '_;

    /// Moves `consumer`'s stored position forward to `sequence` (never back).
    fn store_position<'c>(
        conn: &'c mut Self::Connection,
        consumer: &'c str,
        sequence: u64,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;

    /// `consumer`'s stored position (0 when it has none).
    fn stored_position<'c>(
        pool: &'c Pool<Self>,
        consumer: &'c str,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'c;

    /// Writes a parked event: its row in `read_model_parked`.
    fn park<'c>(
        conn: &'c mut Self::Connection,
        parked: Parked<'c>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;

    /// Deletes `consumer`'s position and parked events (a rebuild starts from nothing).
    fn forget<'c>(
        conn: &'c mut Self::Connection,
        consumer: &'c str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;

    /// Session settings for a rebuild's connection, and back to the usual ones after it.
    fn tune_for_rebuild(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + '_;
    fn untune(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + '_;

    /// The database as the outbox publisher takes it.
    fn database(pool: &Pool<Self>) -> Database;

    /// Where instances that do not lead read the position the leader stores; `None` when no
    /// other instance can exist (SQLite).
    fn shared_position(pool: &Pool<Self>, consumer: &str) -> Option<SharedPosition>;
}

/// An event the read-model cannot apply, as `read_model_parked` keeps it.
pub struct Parked<'a> {
    pub consumer: &'a str,
    pub sequence: u64,
    pub subject: &'a str,
    pub payload: &'a [u8],
    pub error: &'a str,
}

impl Parked<'_> {
    /// The payload's `event_id` when it is an envelope (a poison payload may not be).
    pub fn event_id(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(self.payload)
            .ok()
            .and_then(|v| {
                v.get("event_id")
                    .and_then(|id| id.as_str())
                    .map(str::to_owned)
            })
    }
}
