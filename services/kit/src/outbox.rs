//! The transactional outbox (DESIGN.md, "Writes: nothing acknowledged is lost").
//!
//! A command appends its event to the `outbox` table in the same transaction as its change
//! ([`append`]). After the commit, the handler asks the [`EventPublisher`] to publish those
//! events at once (so the event is normally in the stream before the client sees 2xx); the row is
//! deleted after JetStream's acknowledgement, off the request's path and many rows per
//! transaction ([`Forgetter`]): one fsync'd delete per event would halve a service's writes. Whatever is left (NATS was down, the process died
//! between commit and publish) is published by the [`OutboxRelay`] at start and on a timer.
//! `Nats-Msg-Id` = event id, so a repeat is dropped by the stream's duplicate window.
//!
//! Every service's migrations create the same table:
//! `outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, subject TEXT, payload TEXT, created_at TEXT)`
//! (on PostgreSQL: `seq` an identity, `event_id` a uuid, `created_at` a timestamptz).
//!
//! On PostgreSQL several instances share the outbox: each publishes the events it just
//! committed, and the relay's drain runs in one instance at a time, the one holding the
//! [`RELAY_LOCK`] advisory lock, so events left behind go out once and in commit order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;

use crate::batch_publish::{BatchPublisher, Outgoing};
use crate::database::Database;
use crate::group_commit::Writer;
use crate::handle::{Db, WriteError};
use async_nats::jetstream;
use serde::Serialize;
use shared_events::EventEnvelope;
use shared_events::headers::MSG_ID;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a reply waits for the first publish of its event (normally a few milliseconds).
pub const FIRST_ATTEMPT_WAIT: Duration = Duration::from_secs(1);

/// One event waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub event_id: String,
    pub subject: String,
    pub payload: String,
}

/// Appends `event` to the outbox inside the caller's transaction.
pub fn append<T: Serialize>(db: &Db, event: &EventEnvelope<T>) -> Result<OutboxRow, WriteError> {
    let row = OutboxRow {
        event_id: event.event_id.to_string(),
        subject: event.subject(),
        payload: serde_json::to_string(event)?,
    };
    db.prepare_cached(
        "INSERT INTO outbox (event_id, subject, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((
        &row.event_id,
        &row.subject,
        &row.payload,
        event.occurred_at.to_rfc3339(),
    ))?;
    Ok(row)
}

/// Appends `event` to the outbox inside the caller's PostgreSQL transaction.
pub async fn append_pg<T: Serialize>(
    conn: &mut PgConnection,
    event: &EventEnvelope<T>,
) -> Result<OutboxRow, sqlx::Error> {
    let row = OutboxRow {
        event_id: event.event_id.to_string(),
        subject: event.subject(),
        payload: serde_json::to_string(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
    };
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(event.event_id)
    .bind(&row.subject)
    .bind(&row.payload)
    .bind(event.occurred_at)
    .execute(conn)
    .await?;
    Ok(row)
}

/// The advisory lock the PostgreSQL relay's drain holds: one instance drains at a time.
pub const RELAY_LOCK: i64 = crate::postgres::lock_key("hospital outbox relay");

/// Publishes committed outbox rows to JetStream and clears them on acknowledgement.
/// Cheap to clone; shared by the command handlers and the relay.
#[derive(Clone)]
pub struct EventPublisher {
    /// Concurrent commands' events go out together in JetStream atomic batches: one fsync'd
    /// message per event would cap every service at the disk's fsync rate.
    batches: BatchPublisher,
    /// The service's own database, which holds its outbox table.
    database: Database,
    /// Wakes the relay when a publish failed, so it retries without waiting for its timer.
    wake_relay: Arc<Notify>,
    forgetter: Forgetter,
}

impl EventPublisher {
    /// On SQLite, published rows are deleted through the database's group committer (the one
    /// its store writes through), so the deletes share its fsyncs and never invalidate its
    /// connection's page cache, as a commit from another connection would.
    pub fn new(js: jetstream::Context, database: Database) -> Self {
        EventPublisher {
            // HOSPITAL_EVENTS is made with atomic batches allowed (`event_stream::config`); on an
            // older stream a refused batch is published again message by message.
            batches: BatchPublisher::start(js.client(), js, true),
            forgetter: Forgetter::new(database.clone()),
            database,
            wake_relay: Arc::new(Notify::new()),
        }
    }

    /// The first publish attempt for rows that were just committed. Never fails the command:
    /// the change is committed, and on any error the relay takes over. Waited for at most
    /// [`FIRST_ATTEMPT_WAIT`]: while JetStream elects a new leader it acknowledges nothing for
    /// seconds, and the caller's reply must not wait that out (the gateway would answer 504 for
    /// a write that was made). The attempt carries on meanwhile, and the relay retries it.
    pub async fn publish_committed(&self, rows: &[OutboxRow]) {
        let publisher = self.clone();
        let rows = rows.to_vec();
        let attempt = tokio::spawn(async move {
            if let Err(error) = publisher.publish(&rows).await {
                tracing::warn!(%error, "event publish failed; the outbox relay will retry");
                publisher.wake_relay.notify_one();
            }
        });
        if tokio::time::timeout(FIRST_ATTEMPT_WAIT, attempt)
            .await
            .is_err()
        {
            tracing::warn!(
                wait_ms = FIRST_ATTEMPT_WAIT.as_millis() as u64,
                "JetStream is slow to acknowledge; replying before the event is in the stream"
            );
        }
    }

    /// The end of every successful change: the first publish attempt of its event (if it made
    /// one), then the reply with the new state. The reply goes out after the commit and after
    /// that attempt, so the event of an acknowledged write is normally already in the stream.
    pub async fn publish_then_reply<T: Serialize>(
        &self,
        event: Option<&OutboxRow>,
        state: &T,
    ) -> Result<serde_json::Value, shared_events::ServiceError> {
        if let Some(event) = event {
            self.publish_committed(std::slice::from_ref(event)).await;
        }
        crate::command::to_json(state)
    }

    /// Publishes `rows` in order, in one atomic batch with whatever other events are waiting
    /// ([`BatchPublisher`]), and once they are acknowledged has their rows deleted. On an error
    /// the rows stay in the outbox (some may be in the stream already: the relay's republish is
    /// then dropped as a duplicate).
    async fn publish(&self, rows: &[OutboxRow]) -> Result<usize, async_nats::Error> {
        let messages = rows
            .iter()
            .map(|row| {
                let mut headers = HeaderMap::new();
                headers.insert(MSG_ID, row.event_id.as_str());
                Outgoing {
                    subject: row.subject.clone(),
                    headers,
                    payload: row.payload.clone().into(),
                }
            })
            .collect();
        self.batches.publish(messages).await?;
        self.forgetter
            .forget(rows.iter().map(|row| row.event_id.clone()).collect());
        Ok(rows.len())
    }

    /// The oldest rows still waiting after position `after` (`seq`), at most `limit`, with
    /// their positions.
    async fn waiting(&self, after: i64, limit: i64) -> Result<Vec<(i64, OutboxRow)>, sqlx::Error> {
        let rows: Vec<(i64, String, String, String)> = match &self.database {
            Database::Sqlite { pool, .. } => {
                sqlx::query_as(
                    "SELECT seq, event_id, subject, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT seq, event_id::text, subject, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(seq, event_id, subject, payload)| {
                (
                    seq,
                    OutboxRow {
                        event_id,
                        subject,
                        payload,
                    },
                )
            })
            .collect())
    }

    /// Publishes everything the outbox holds. Returns how many events were published. On
    /// PostgreSQL only the instance holding [`RELAY_LOCK`] drains; the others return 0.
    pub async fn drain(&self) -> Result<usize, async_nats::Error> {
        let Database::Postgres(pool) = &self.database else {
            return self.drain_all().await;
        };
        let Some(leader) = crate::postgres::try_lead(pool, RELAY_LOCK).await? else {
            return Ok(0);
        };
        let drained = self.drain_all().await;
        // The rows it published are deleted before another instance may drain, so that one
        // does not publish them again (the stream would drop them, but only as duplicates).
        let _ = tokio::time::timeout(Duration::from_secs(5), self.forgetter.settled()).await;
        crate::postgres::release(leader, RELAY_LOCK).await;
        drained
    }

    async fn drain_all(&self) -> Result<usize, async_nats::Error> {
        // Rows already acknowledged are deleted first, so they are not published again (for at
        // most a second: under sustained load the deleter is never idle, and a duplicate is
        // only dropped by the stream).
        let _ = tokio::time::timeout(Duration::from_secs(1), self.forgetter.settled()).await;
        const BATCH: i64 = 256;
        let mut total = 0;
        // Pages by position: the rows just published are deleted in the background, so reading
        // from the start again would publish them a second time.
        let mut after = 0;
        loop {
            let page = self.waiting(after, BATCH).await?;
            let Some(&(last, _)) = page.last() else {
                return Ok(total);
            };
            after = last;
            let rows: Vec<OutboxRow> = page.into_iter().map(|(_, row)| row).collect();
            total += self.publish(&rows).await?;
            if (rows.len() as i64) < BATCH {
                return Ok(total);
            }
        }
    }
}

/// Deletes acknowledged outbox rows in the background, all that have piled up in one
/// transaction: under load one delete (and one fsync) serves many events. A row whose delete is
/// lost (the process died first) is published again by the relay and dropped by the stream's
/// duplicate window (`Nats-Msg-Id`).
#[derive(Clone)]
struct Forgetter {
    database: Database,
    shared: Arc<ForgetterState>,
}

#[derive(Default)]
struct ForgetterState {
    waiting: Mutex<Vec<String>>,
    /// Whether a deleting task is running.
    running: AtomicBool,
    /// Signalled whenever the deleting task finds nothing left to delete.
    idle: Notify,
}

impl Forgetter {
    fn new(database: Database) -> Self {
        Forgetter {
            database,
            shared: Arc::default(),
        }
    }

    fn forget(&self, event_ids: Vec<String>) {
        if event_ids.is_empty() {
            return;
        }
        self.shared
            .waiting
            .lock()
            .expect("not poisoned")
            .extend(event_ids);
        if !self.shared.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().delete_until_empty());
        }
    }

    async fn delete_until_empty(self) {
        loop {
            let batch = std::mem::take(&mut *self.shared.waiting.lock().expect("not poisoned"));
            if batch.is_empty() {
                self.shared.running.store(false, Ordering::Release);
                // A row added between the take and the store above would be stranded: look
                // again, and carry on unless another task has started meanwhile.
                let more = !self.shared.waiting.lock().expect("not poisoned").is_empty();
                if more && !self.shared.running.swap(true, Ordering::AcqRel) {
                    continue;
                }
                self.shared.idle.notify_waiters();
                return;
            }
            let rows = batch.len();
            if let Err(error) = delete_rows(&self.database, batch).await {
                // Not lost: the rows stay in the outbox and the relay publishes them again
                // (the stream drops the duplicates).
                tracing::warn!(%error, rows, "could not delete published outbox rows");
            }
        }
    }

    async fn settled(&self) {
        loop {
            let idle = self.shared.idle.notified();
            if !self.shared.running.load(Ordering::Acquire) {
                return;
            }
            idle.await;
        }
    }
}

async fn delete_rows(database: &Database, event_ids: Vec<String>) -> Result<(), WriteError> {
    match database {
        Database::Sqlite { writer, .. } => delete_sqlite_rows(writer, event_ids).await,
        Database::Postgres(pool) => delete_pg_rows(pool, event_ids)
            .await
            .map_err(|error| WriteError::NotCommitted(crate::handle::NotCommitted::because(error))),
    }
}

async fn delete_pg_rows(pool: &PgPool, event_ids: Vec<String>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1::text[]::uuid[])")
        .bind(event_ids)
        .execute(pool)
        .await?;
    Ok(())
}

async fn delete_sqlite_rows(writer: &Writer, event_ids: Vec<String>) -> Result<(), WriteError> {
    writer
        .write(move |db| {
            let mut delete = db.prepare_cached("DELETE FROM outbox WHERE event_id = ?1")?;
            for id in &event_ids {
                delete.execute([id])?;
            }
            Ok(())
        })
        .await
}

/// Publishes what the outbox still holds: at start, when a publish failed, and on a timer.
pub struct OutboxRelay {
    publisher: EventPublisher,
    /// How often the outbox is checked when nothing wakes the relay.
    interval: Duration,
}

impl OutboxRelay {
    pub fn new(publisher: EventPublisher, interval: Duration) -> Self {
        OutboxRelay {
            publisher,
            interval,
        }
    }

    /// Runs until `shutdown`. Failures back off (up to 5 s) and are retried: a row is never
    /// dropped, only deleted on acknowledgement.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let wait = match self.publisher.drain().await {
                Ok(published) => {
                    if published > 0 {
                        tracing::info!(published, "outbox relay published pending events");
                    }
                    backoff = Duration::from_millis(100);
                    self.interval
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay could not publish");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.publisher.wake_relay.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
