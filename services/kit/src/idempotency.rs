//! Safe retries: the client's `Idempotency-Key` on a write (`create`, `update`, `delete`).
//!
//! A repeat of a write with the same key and the same request gets the original reply (and so
//! the gateway's original status and body) without a second change or event; the same key with
//! a different request is refused (422). Keys live in the owning service's database, table
//! `idempotency_keys`, keyed by (actor, key): one user's key never replays another user's reply.
//!
//! How it fits together:
//! - [`crate::command`] builds an [`IdempotencyClaim`] (actor, key, fingerprint of the action and
//!   the exact payload bytes) for a write that carries a key, and [looks it up](KeyStore::lookup)
//!   before running the handler: a stored reply is replayed, a different fingerprint refused.
//! - Otherwise the claim travels in [`RequestContext::idempotency`] to the store, which calls
//!   [`remember`] inside the write transaction that makes the change, next to
//!   [`crate::outbox::append`]: the key exists if and only if the change does, whatever crashes.
//! - Two concurrent requests with one key: the second write transaction finds the first one's
//!   key (the write lock serialises them), fails and rolls back; the command runner then looks
//!   the key up again and replays the first reply instead of answering with the error.
//! - Errors are not stored: nothing changed, so a retry runs again. A write that changes
//!   nothing (no event) stores nothing either; its repeat again changes nothing.
//! - Keys are purged once older than the retention (at least 24 hours, [`RETENTION_VAR`]).
//! - Work the system does on its own (cascades, bootstrap) carries no key.
//!
//! The table is created by every owning service's migration `0002_idempotency_keys.sql`.

use std::fmt;
use std::time::Duration;

use blake2::{Blake2b256, Digest};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared_events::subjects::action;
use shared_events::{ErrorCode, ServiceError};
use sqlx::{PgConnection, PgPool};

use crate::command::RequestContext;
use crate::database::Database;
use crate::events::format_timestamp;
use crate::handle::{Db, WriteError};

/// `HOSPITAL_IDEMPOTENCY_RETENTION_HOURS`: how long keys are kept.
pub const RETENTION_VAR: &str = "HOSPITAL_IDEMPOTENCY_RETENTION_HOURS";
/// Keys are kept at least this long (and by default exactly this long).
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How often expired keys are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Whether `action` changes state, so that its `Idempotency-Key` is honoured. Reads and
/// `authenticate` ignore a key.
pub fn is_write(action: &str) -> bool {
    matches!(action, action::CREATE | action::UPDATE | action::DELETE)
}

/// A request's claim on an idempotency key: who, which key, and what exactly was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub actor_id: String,
    pub key: String,
    pub action: String,
    /// [`fingerprint`] of the action and the payload.
    pub fingerprint: String,
}

impl IdempotencyClaim {
    pub fn new(actor_id: &str, key: &str, action: &str, payload: &[u8]) -> Self {
        IdempotencyClaim {
            actor_id: actor_id.to_owned(),
            key: key.to_owned(),
            action: action.to_owned(),
            fingerprint: fingerprint(action, payload),
        }
    }
}

/// Blake2b-256 (hex) of the action and the exact payload bytes. The action is length-prefixed,
/// so no action/payload split can collide with another.
pub fn fingerprint(action: &str, payload: &[u8]) -> String {
    let mut hasher = Blake2b256::new();
    hasher.update((action.len() as u64).to_be_bytes());
    hasher.update(action.as_bytes());
    hasher.update(payload);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of a JSON reply as sent: the command runner sends exactly these for a fresh reply,
/// and a replay sends the stored copy, so both are byte-for-byte the same.
pub fn reply_bytes<T: Serialize>(reply: &T) -> Result<Vec<u8>, serde_json::Error> {
    // Through `Value`, as the handlers' replies are, so map keys come out in the same order.
    serde_json::to_vec(&serde_json::to_value(reply)?)
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Not used yet (or purged): run the request.
    Fresh,
    /// Used by this same request: its reply, to send again.
    Replay(Bytes),
    /// Used by a different request.
    Mismatch,
}

/// The error for a key reused with a different request.
pub fn key_reused() -> ServiceError {
    ServiceError::new(
        ErrorCode::Validation,
        "this Idempotency-Key was already used for a different request",
    )
}

/// The in-transaction refusal when the key was stored after [`KeyStore::lookup`] said it was
/// fresh: a concurrent request with the same key committed first. The store's transaction
/// fails and rolls back; the command runner then replays that other request's reply.
#[derive(Debug, thiserror::Error)]
#[error("{KEY_TAKEN}: {key:?}")]
pub struct KeyTaken {
    pub key: String,
}

/// The start of [`KeyTaken`]'s message, by which [`crate::events::storage_failure`] tells this
/// expected outcome of a race from a real storage failure.
pub const KEY_TAKEN: &str = "Idempotency-Key recorded by a concurrent request, rolled back";

/// Records the claim of `context` (if any) with `reply`, the body the handler is about to
/// answer with, inside the caller's write transaction: call it next to
/// [`crate::outbox::append`] in every transaction a keyed command commits. Fails with
/// [`KeyTaken`] (so the transaction rolls back) when the key is already stored.
pub fn remember<T: Serialize>(
    db: &Db,
    context: &RequestContext,
    reply: &T,
) -> Result<(), WriteError> {
    let Some(claim) = &context.idempotency else {
        return Ok(());
    };
    let body = String::from_utf8(reply_bytes(reply)?)
        .map_err(|error| WriteError::Corrupt(error.to_string()))?;
    // A write transaction holds SQLite's write lock, so this check and the insert see every
    // committed key; the primary key still refuses a duplicate should anything slip past.
    let taken = db
        .prepare_cached("SELECT 1 FROM idempotency_keys WHERE actor_id = ?1 AND key = ?2")?
        .exists((&claim.actor_id, &claim.key))?;
    if taken {
        return Err(KeyTaken {
            key: claim.key.clone(),
        }
        .into());
    }
    db.prepare_cached(
        "INSERT INTO idempotency_keys (actor_id, key, action, fingerprint, reply, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        &claim.actor_id,
        &claim.key,
        &claim.action,
        &claim.fingerprint,
        body,
        format_timestamp(crate::events::now()),
    ))?;
    Ok(())
}

/// As [`remember`], inside the caller's PostgreSQL transaction. A concurrent request with the
/// same key that committed first (or is about to: the insert waits for it) makes this fail
/// with [`KeyTaken`], which rolls the transaction back.
pub async fn remember_pg<T: Serialize>(
    conn: &mut PgConnection,
    context: &RequestContext,
    reply: &T,
) -> Result<(), sqlx::Error> {
    let Some(claim) = &context.idempotency else {
        return Ok(());
    };
    let body = String::from_utf8(reply_bytes(reply).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (actor_id, key, action, fingerprint, reply, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&claim.actor_id)
    .bind(&claim.key)
    .bind(&claim.action)
    .bind(&claim.fingerprint)
    .bind(body)
    .bind(crate::events::now())
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(error) if crate::postgres::is_unique_violation_of(&error, "idempotency_keys_pkey") => {
            Err(sqlx::Error::Protocol(
                KeyTaken {
                    key: claim.key.clone(),
                }
                .to_string(),
            ))
        }
        Err(error) => Err(error),
    }
}

/// The keys of one service's database.
#[derive(Clone)]
pub struct KeyStore {
    database: Database,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyStore")
    }
}

impl KeyStore {
    pub fn new(database: Database) -> Self {
        KeyStore { database }
    }

    #[cfg(test)]
    fn test_pool(&self) -> &sqlx::SqlitePool {
        self.database.sqlite().expect("a SQLite test database").0
    }

    /// What the stored key says about `claim`.
    pub async fn lookup(&self, claim: &IdempotencyClaim) -> Result<Lookup, sqlx::Error> {
        let row: Option<(String, String)> = match &self.database {
            Database::Sqlite { pool, .. } => {
                sqlx::query_as(LOOKUP)
                    .bind(&claim.actor_id)
                    .bind(&claim.key)
                    .fetch_optional(pool)
                    .await?
            }
            Database::Postgres(pool) => lookup_pg(pool, claim).await?,
        };
        Ok(match row {
            None => Lookup::Fresh,
            Some((fingerprint, reply)) if fingerprint == claim.fingerprint => {
                Lookup::Replay(Bytes::from(reply.into_bytes()))
            }
            Some(_) => Lookup::Mismatch,
        })
    }

    /// Deletes the keys stored before `cutoff`. Returns how many.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        const SQL: &str = "DELETE FROM idempotency_keys WHERE created_at < $1";
        let done = match &self.database {
            Database::Sqlite { pool, .. } => sqlx::query(SQL)
                .bind(format_timestamp(cutoff))
                .execute(pool)
                .await?
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query(SQL)
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    /// Deletes the keys older than `retention`. Returns how many.
    pub async fn purge_expired(&self, retention: Duration) -> Result<u64, sqlx::Error> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = Utc::now()
            .checked_sub_signed(retention)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.purge_before(cutoff).await
    }

    /// Purges expired keys now and then every [`PURGE_INTERVAL`] until `shutdown`.
    pub async fn run_purge(
        self,
        retention: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            match self.purge_expired(retention).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not purge idempotency keys"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PURGE_INTERVAL) => {}
            }
        }
    }
}

/// A stored key's fingerprint and reply, by actor and key (both backends).
const LOOKUP: &str =
    "SELECT fingerprint, reply FROM idempotency_keys WHERE actor_id = $1 AND key = $2";

/// PostgreSQL text cannot hold NUL: a key or actor with one was never stored.
async fn lookup_pg(
    pool: &PgPool,
    claim: &IdempotencyClaim,
) -> Result<Option<(String, String)>, sqlx::Error> {
    if claim.actor_id.contains('\0') || claim.key.contains('\0') {
        return Ok(None);
    }
    sqlx::query_as(LOOKUP)
        .bind(&claim.actor_id)
        .bind(&claim.key)
        .fetch_optional(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_events::Actor;
    use sqlx::sqlite::SqlitePoolOptions;

    /// Every service's migration creates the same table; the patient one stands for all.
    const TABLE: &str =
        include_str!("../../../migrations/patient/sqlite/0002_idempotency_keys.sql");

    async fn database() -> (tempfile::TempDir, KeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url_in(dir.path(), "keys");
        let pool = SqlitePoolOptions::new().connect(&url).await.unwrap();
        sqlx::raw_sql(TABLE).execute(&pool).await.unwrap();
        (dir, KeyStore::new(Database::from_sqlite_pool(pool)))
    }

    fn context(claim: &IdempotencyClaim) -> RequestContext {
        RequestContext {
            actor: Actor {
                id: claim.actor_id.clone(),
                role: "admin".into(),
            },
            request_id: None,
            idempotency_key: Some(claim.key.clone()),
            idempotency: Some(claim.clone()),
        }
    }

    async fn remember_in_tx(
        store: &KeyStore,
        claim: &IdempotencyClaim,
        reply: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        let mut tx = crate::sqlite::begin_write(store.test_pool()).await?;
        crate::handle::with_handle(&mut tx, |db| remember(db, &context(claim), reply)).await??;
        tx.commit().await
    }

    #[test]
    fn fingerprints_cover_the_action_and_every_payload_byte() {
        let base = fingerprint("create", br#"{"fields":{"name":"Ann"}}"#);
        assert_eq!(base.len(), 64);
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(base, fingerprint("create", br#"{"fields":{"name":"Ann"}}"#));
        assert_ne!(base, fingerprint("update", br#"{"fields":{"name":"Ann"}}"#));
        assert_ne!(
            base,
            fingerprint("create", br#"{"fields":{"name":"Anne"}}"#)
        );
        // The split between action and payload is part of the input.
        assert_ne!(fingerprint("ab", b"c"), fingerprint("a", b"bc"));
    }

    #[test]
    fn only_writes_honour_a_key() {
        for write in ["create", "update", "delete"] {
            assert!(is_write(write), "{write}");
        }
        for read in ["get", "list", "history", "authenticate"] {
            assert!(!is_write(read), "{read}");
        }
    }

    #[test]
    fn a_reused_key_is_a_422() {
        let error = key_reused();
        assert_eq!(error.code.http_status(), 422);
        assert!(error.message.contains("different request"));
    }

    #[tokio::test]
    async fn a_remembered_reply_is_replayed_byte_for_byte_and_a_different_request_refused() {
        let (_dir, store) = database().await;
        let claim = IdempotencyClaim::new("user-1", "k-1", "create", b"{\"a\":1}");
        assert_eq!(store.lookup(&claim).await.unwrap(), Lookup::Fresh);

        let reply = serde_json::json!({"id": "x", "name": "Ann", "version": 1, "height": 1.7});
        remember_in_tx(&store, &claim, &reply).await.unwrap();
        let sent = reply_bytes(&reply).unwrap();
        assert_eq!(
            store.lookup(&claim).await.unwrap(),
            Lookup::Replay(Bytes::from(sent))
        );

        let other_body = IdempotencyClaim::new("user-1", "k-1", "create", b"{\"a\":2}");
        assert_eq!(store.lookup(&other_body).await.unwrap(), Lookup::Mismatch);
        let other_action = IdempotencyClaim::new("user-1", "k-1", "delete", b"{\"a\":1}");
        assert_eq!(store.lookup(&other_action).await.unwrap(), Lookup::Mismatch);
        // Another user's key of the same name is theirs alone.
        let other_user = IdempotencyClaim::new("user-2", "k-1", "create", b"{\"a\":1}");
        assert_eq!(store.lookup(&other_user).await.unwrap(), Lookup::Fresh);
    }

    #[tokio::test]
    async fn a_second_remember_of_one_key_fails_and_rolls_back() {
        let (_dir, store) = database().await;
        let claim = IdempotencyClaim::new("user-1", "k-1", "create", b"{}");
        remember_in_tx(&store, &claim, &serde_json::json!({"n": 1}))
            .await
            .unwrap();
        let second = remember_in_tx(&store, &claim, &serde_json::json!({"n": 2})).await;
        assert!(
            second
                .unwrap_err()
                .to_string()
                .contains("concurrent request")
        );
        // The first reply stands.
        assert_eq!(
            store.lookup(&claim).await.unwrap(),
            Lookup::Replay(Bytes::from_static(br#"{"n":1}"#))
        );
    }

    #[tokio::test]
    async fn without_a_claim_nothing_is_remembered() {
        let (_dir, store) = database().await;
        let mut tx = crate::sqlite::begin_write(store.test_pool()).await.unwrap();
        crate::handle::with_handle(&mut tx, |db| {
            remember(db, &RequestContext::system(), &serde_json::json!({}))
        })
        .await
        .unwrap()
        .unwrap();
        tx.commit().await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
            .fetch_one(store.test_pool())
            .await
            .unwrap();
        assert_eq!(count, 0);
    }

    #[tokio::test]
    async fn keys_older_than_the_retention_are_purged() {
        let (_dir, store) = database().await;
        let old = IdempotencyClaim::new("user-1", "old", "create", b"{}");
        let new = IdempotencyClaim::new("user-1", "new", "create", b"{}");
        remember_in_tx(&store, &old, &serde_json::json!({}))
            .await
            .unwrap();
        remember_in_tx(&store, &new, &serde_json::json!({}))
            .await
            .unwrap();
        let two_days_ago = Utc::now() - chrono::Duration::hours(48);
        sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE key = 'old'")
            .bind(format_timestamp(two_days_ago))
            .execute(store.test_pool())
            .await
            .unwrap();

        assert_eq!(store.purge_expired(MIN_RETENTION).await.unwrap(), 1);
        assert_eq!(store.lookup(&old).await.unwrap(), Lookup::Fresh);
        assert!(matches!(
            store.lookup(&new).await.unwrap(),
            Lookup::Replay(_)
        ));
        // A key just under the retention stays.
        let almost = Utc::now() - chrono::Duration::hours(23);
        sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE key = 'new'")
            .bind(format_timestamp(almost))
            .execute(store.test_pool())
            .await
            .unwrap();
        assert_eq!(store.purge_expired(MIN_RETENTION).await.unwrap(), 0);
    }
}
