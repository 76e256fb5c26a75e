//! Read-models fed by a durable JetStream consumer (DESIGN.md, "Reads across services"), on
//! SQLite or PostgreSQL.
//!
//! A service that needs another service's data keeps its own tables of it, built from
//! `HOSPITAL_EVENTS`. The [`ReadModel`] runner consumes the events with one durable consumer per
//! service (never one per instance), applies the events through a [`Projection`] inside a
//! transaction that also stores the consumer's position (what has already arrived, up to 256
//! events, together; one at a time when quiet), commits, then acknowledges. So a crash between
//! commit and ack only causes a redelivery, which the projection's version check turns into a
//! no-op. [`rebuild`] and [`restore`] (in `rebuild.rs`) rebuild from the stream's first event.
//!
//! One consumer per service, also across instances: on PostgreSQL several instances share the
//! database and the consumer name, and only the one holding the consumer's session advisory
//! lock consumes; the others try again every second and take over when its session ends
//! (`postgres.rs`). On SQLite there is one instance (its file lock refuses a second), which
//! always leads (`sqlite.rs`). What differs per backend is behind [`ReadModelDb`] (`backend.rs`).
//!
//! [`CatchUp`] (`catch_up.rs`) answers "have I seen everything up to now?": it looks up the
//! stream's last sequence and waits (bounded) until the runner has handled it, or, on an
//! instance that does not lead, until the position the leader stores has reached it. A service
//! asks it when its read-model does not know an id, so a client that creates a patient and at
//! once books an appointment for it succeeds.
//!
//! Poison events: an event that cannot be applied must neither block the consumer forever nor
//! vanish. A permanent failure (the payload is not an envelope, or its `data` does not decode)
//! is parked at once; any other failure is retried (NAK with back-off) and parked on its
//! [`MAX_DELIVERIES`]th delivery; a transient one (database busy, locked or unreachable, a lost
//! serialization race or deadlock, pool or I/O errors) is retried for as long as it lasts.
//! Parking writes the event, its error and payload to `read_model_parked`, stores the position
//! past it in the same transaction, acknowledges it and logs at error level. [`rebuild`]
//! (`hospital replay`) clears the parked rows and applies them again like every other event.
//!
//! Every service with a read-model has these tables in its migrations:
//! `read_model_position(consumer TEXT PRIMARY KEY, stream_sequence INTEGER NOT NULL)` and
//! `read_model_parked(consumer, stream_sequence, subject, event_id, error, payload, parked_at)`
//! (on PostgreSQL the payload is bytea, byte for byte, and `parked_at` a timestamptz).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use shared_events::EventEnvelope;
use shared_events::subjects::EVENT_STREAM;
use sqlx::{Pool, Sqlite};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::EventPublisher;
use crate::outbox::OutboxRow;

mod backend;
mod catch_up;
mod on_database;
mod postgres;
mod rebuild;
mod sqlite;
use backend::Parked;
pub use backend::ReadModelDb;
pub use catch_up::CatchUp;
use catch_up::SharedPosition;
pub use on_database::ReadModelOn;
pub use postgres::consumer_lock;
pub use rebuild::{Progress, REBUILD_BATCH, RebuildError, Rebuilt, rebuild, restore};

/// What a read-model does with one event, on the backend `DB` (SQLite unless said otherwise;
/// a type may be a projection on both). `apply` runs inside the runner's transaction; any
/// events it causes (a cascade) are appended to the outbox in that transaction and returned, and
/// the runner publishes them after the commit. An event whose `data` cannot be decoded is a
/// permanent failure: return `sqlx::Error::Decode` and the runner parks it.
/// `apply` must be idempotent: an event seen again, or one older than what the read-model
/// holds, changes nothing (compare aggregate versions).
pub trait Projection<DB: ReadModelDb = Sqlite>: Send + Sync + 'static {
    fn apply(
        &self,
        conn: &mut DB::Connection,
        event: &EventEnvelope,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, sqlx::Error>> + Send;

    /// Applies several events in order inside the caller's transaction, as a rebuild does; what
    /// they cause goes to the outbox. The default applies them one by one; a projection may do
    /// it in fewer statements, with the same result.
    fn apply_batch(
        &self,
        conn: &mut DB::Connection,
        events: &[&EventEnvelope],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async move {
            for event in events {
                self.apply(&mut *conn, event).await?;
            }
            Ok(())
        }
    }

    /// Empties every table the projection fills, inside the caller's transaction (a rebuild
    /// then applies the stream from its first event). The position and parked rows are the
    /// runner's to reset.
    fn reset(
        &self,
        conn: &mut DB::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The delivery on which an event that keeps failing is parked instead of retried again.
pub const MAX_DELIVERIES: i64 = 5;

/// At most this many events already delivered are applied in one transaction by the live runner.
const LIVE_BATCH: usize = 256;

/// How often an instance that does not lead tries to take the consumer's lock.
const FOLLOWER_RETRY: Duration = Duration::from_secs(1);

/// How a failure to apply an event is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// It cannot succeed however often it is tried: park it now.
    Permanent,
    /// The database is busy or unreachable: retry with back-off for as long as it lasts.
    Transient,
    /// Anything else: retry, and park it on the [`MAX_DELIVERIES`]th delivery.
    Repeatable,
}

/// Classifies a projection's error (see [`FailureKind`]).
pub fn classify(error: &sqlx::Error) -> FailureKind {
    match error {
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => FailureKind::Permanent,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => FailureKind::Transient,
        sqlx::Error::Database(db) => {
            let transient = match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                Some(pg) => is_transient_sqlstate(pg.code()),
                None => {
                    // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
                    let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
                    matches!(code & 0xff, 5 | 6)
                }
            };
            if transient {
                FailureKind::Transient
            } else {
                FailureKind::Repeatable
            }
        }
        _ => FailureKind::Repeatable,
    }
}

/// The PostgreSQL errors that say nothing of the event: the connection or the server (class 08
/// connection exceptions, class 53 insufficient resources, a shutdown or restart), or a
/// concurrent transaction (a serialization failure, a deadlock, a lock not available).
fn is_transient_sqlstate(code: &str) -> bool {
    use crate::postgres::sqlstate::{DEADLOCK_DETECTED, SERIALIZATION_FAILURE};
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "55P03")
        || code == SERIALIZATION_FAILURE
        || code == DEADLOCK_DETECTED
}

/// An event that could not be applied, and why.
#[derive(Debug)]
struct Failure {
    kind: FailureKind,
    error: String,
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure {
            kind: classify(&error),
            error: error.to_string(),
        }
    }
}

/// Which events a read-model consumes, under which durable consumer name.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The durable consumer's name, one per service: `appointment-read-model`, ...
    pub consumer: String,
    /// Subject filters, such as `hospital.events.patient.>`.
    pub subjects: Vec<String>,
}

/// Runs a projection over the event stream. Owned by the service's run loop.
pub struct ReadModel<P, DB: ReadModelDb = Sqlite> {
    js: jetstream::Context,
    pool: Pool<DB>,
    projection: Arc<P>,
    publisher: EventPublisher,
    subscription: Subscription,
    /// The last stream sequence applied; [`CatchUp`] handles watch it.
    applied: watch::Sender<u64>,
    /// Whether this instance consumes (holds the lease); [`CatchUp`] handles watch it.
    leading: watch::Sender<bool>,
    /// Where the other instances read the position (PostgreSQL): it then also covers the events
    /// that are not the read-model's own, or they would wait for a position that never comes.
    shared: Option<SharedPosition>,
}

impl<DB: ReadModelDb, P: Projection<DB>> ReadModel<P, DB> {
    /// Prepares the runner; reads the stored position so [`CatchUp`] is right from the start.
    pub async fn new(
        js: jetstream::Context,
        pool: Pool<DB>,
        projection: Arc<P>,
        publisher: EventPublisher,
        subscription: Subscription,
    ) -> Result<Self, sqlx::Error> {
        let position = DB::stored_position(&pool, &subscription.consumer).await?;
        let (applied, _) = watch::channel(position);
        let (leading, _) = watch::channel(false);
        let shared = DB::shared_position(&pool, &subscription.consumer);
        Ok(ReadModel {
            js,
            pool,
            projection,
            publisher,
            subscription,
            applied,
            leading,
            shared,
        })
    }

    /// A handle for waiting until the read-model has caught up.
    pub fn catch_up(&self) -> CatchUp {
        CatchUp {
            js: self.js.clone(),
            applied: self.applied.subscribe(),
            leading: self.leading.subscribe(),
            shared: self.shared.clone(),
        }
    }

    /// Consumes until `shutdown`, once this instance leads (at once on SQLite; on PostgreSQL
    /// once it holds the consumer's lock, tried every second). Connection problems are retried
    /// with back-off, the lease given up meanwhile so a healthy instance can take over; an
    /// event that cannot be applied is retried later (not acknowledged) or, when it never can
    /// be, parked (see the module's documentation); never skipped silently.
    pub async fn run(self, shutdown: CancellationToken) {
        const FIRST_RETRY: Duration = Duration::from_millis(100);
        let mut backoff = FIRST_RETRY;
        loop {
            let Some(mut lease) = self.lead(&shutdown).await else {
                return;
            };
            let started = tokio::time::Instant::now();
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => None,
                outcome = self.consume(&mut lease) => Some(outcome),
            };
            self.leading.send_replace(false);
            DB::release(lease).await;
            let Some(outcome) = outcome else {
                return;
            };
            if let Err(error) = outcome {
                tracing::warn!(consumer = %self.subscription.consumer, %error, "read-model consumer failed; retrying");
            }
            // A consumer that ran for a while was healthy: its failure starts a new series of
            // retries, rather than waiting as long as the last outage's longest back-off.
            if started.elapsed() > Duration::from_secs(30) {
                backoff = FIRST_RETRY;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Waits until this instance holds the consumer's lease (`None` at shutdown). While another
    /// instance leads, this one's [`CatchUp`] reads the position that one stores.
    async fn lead(&self, shutdown: &CancellationToken) -> Option<DB::Lease> {
        let consumer = &self.subscription.consumer;
        let mut standing_by = false;
        loop {
            match DB::lead(&self.pool, consumer).await {
                Ok(Some(lease)) => {
                    if standing_by {
                        tracing::info!(%consumer, "taking over the read-model's consumer");
                    }
                    // Whatever the former leader applied is this instance's starting point.
                    match DB::stored_position(&self.pool, consumer).await {
                        Ok(position) => self.advance_applied(position),
                        Err(error) => {
                            tracing::warn!(%consumer, %error, "cannot read the read-model's position")
                        }
                    }
                    self.leading.send_replace(true);
                    return Some(lease);
                }
                Ok(None) if !standing_by => {
                    standing_by = true;
                    tracing::info!(%consumer, "another instance consumes the read-model's events; standing by");
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%consumer, %error, "cannot take the read-model's lock; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(FOLLOWER_RETRY) => {}
            }
        }
    }

    async fn consume(&self, lease: &mut DB::Lease) -> Result<(), async_nats::Error> {
        let stream = self.js.get_stream(EVENT_STREAM).await?;
        // One wildcard filter, the wanted subjects picked here: nats-server delivers a consumer
        // with several filter subjects far more slowly on a stream with one subject per
        // aggregate (see `read_until`). `create_consumer` creates or updates, so a consumer made
        // with the former filter list is changed in place, keeping its position.
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(self.subscription.consumer.clone()),
                description: Some("read-model of a hospital service".to_owned()),
                filter_subject: shared_events::subjects::ALL_EVENTS.to_owned(),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                // After a crash, what was delivered but not acknowledged comes back this soon.
                ack_wait: Duration::from_secs(10),
                max_ack_pending: 1024,
                ..Default::default()
            })
            .await?;
        // Everything at or below the ack floor was handled in an earlier run, the events that
        // were not ours included (their handling left no position behind).
        self.handled_others(lease, consumer.cached_info().ack_floor.stream_sequence)
            .await?;
        let mut messages = consumer.messages().await?;
        tracing::info!(consumer = %self.subscription.consumer, "read-model consuming");
        loop {
            let first = tokio::select! {
                first = messages.next() => first,
                // An idle leader notices at once when its lock is gone, and stops consuming.
                lost = DB::lost(lease) => return Err(lost.into()),
            };
            let Some(first) = first else {
                return Ok(());
            };
            // With a backlog (a restart after downtime) take what has already arrived, up to
            // `LIVE_BATCH`, and apply it in one transaction; when quiet, one event at a time.
            let mut batch = vec![first?];
            let mut failed = None;
            while batch.len() < LIVE_BATCH {
                match messages.next().now_or_never() {
                    Some(Some(Ok(message))) => batch.push(message),
                    Some(Some(Err(error))) => {
                        failed = Some(error);
                        break;
                    }
                    Some(None) | None => break,
                }
            }
            self.handle(lease, batch).await?;
            if let Some(error) = failed {
                return Err(error.into());
            }
        }
    }

    /// Applies the read-model's events of `batch` together when they all apply, else one by
    /// one (to park or retry exactly the one that fails); acknowledges the others unread.
    async fn handle(
        &self,
        lease: &mut DB::Lease,
        batch: Vec<jetstream::Message>,
    ) -> Result<(), async_nats::Error> {
        let (ours, others): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|message| self.wants(&message.subject));
        if ours.len() > 1 && self.apply_together(lease, &ours).await.is_ok() {
            for message in &ours {
                message.ack().await?;
            }
        } else {
            for message in ours {
                self.handle_one(lease, message).await?;
            }
        }
        let mut newest_other = 0;
        for message in others {
            message.ack().await?;
            if let Ok(info) = message.info() {
                newest_other = newest_other.max(info.stream_sequence);
            }
        }
        // Everything up to here is handled (ours applied or parked, the rest not ours), which
        // is what `CatchUp` compares with the stream's last sequence.
        self.handled_others(lease, newest_other).await?;
        Ok(())
    }

    /// Records that everything up to `sequence` is handled, though nothing of ours was applied
    /// (the events were not the read-model's): here, and where other instances read it.
    async fn handled_others(
        &self,
        lease: &mut DB::Lease,
        sequence: u64,
    ) -> Result<(), sqlx::Error> {
        if sequence == 0 || sequence <= *self.applied.borrow() {
            return Ok(());
        }
        if self.shared.is_some() {
            let mut tx = DB::begin(lease).await?;
            DB::store_position(&mut *tx, &self.subscription.consumer, sequence).await?;
            tx.commit().await?;
        }
        self.advance_applied(sequence);
        Ok(())
    }

    /// Applies one event; one that fails is retried (NAK) or, when it never can be applied,
    /// parked (see the module's documentation).
    async fn handle_one(
        &self,
        lease: &mut DB::Lease,
        message: jetstream::Message,
    ) -> Result<(), async_nats::Error> {
        let info = message.info()?;
        let (sequence, delivered) = (info.stream_sequence, info.delivered);
        if let Err(failure) = self.apply(lease, sequence, &message.payload).await {
            let park = match failure.kind {
                FailureKind::Permanent => true,
                FailureKind::Repeatable => delivered >= MAX_DELIVERIES,
                FailureKind::Transient => false,
            };
            if !park {
                tracing::warn!(consumer = %self.subscription.consumer, sequence, delivered,
                               error = %failure.error, "cannot apply an event yet; retrying");
                // Ask for it again (after the back-off) rather than wait out the ack timeout.
                let _ = message
                    .ack_with(jetstream::AckKind::Nak(Some(Duration::from_millis(500))))
                    .await;
                return Err(failure.error.into());
            }
            self.park(
                lease,
                sequence,
                &message.subject,
                &message.payload,
                &failure.error,
            )
            .await?;
        }
        message.ack().await?;
        Ok(())
    }

    /// Applies `messages` in one transaction with the position after the newest of them, then
    /// publishes what they caused. Any failure rolls the whole transaction back (the caller
    /// then goes one by one).
    async fn apply_together(
        &self,
        lease: &mut DB::Lease,
        messages: &[jetstream::Message],
    ) -> Result<(), Failure> {
        let mut tx = DB::begin(lease).await?;
        let mut caused = Vec::new();
        let mut newest = 0;
        for message in messages {
            let sequence = message
                .info()
                .map_err(|error| Failure {
                    kind: FailureKind::Permanent,
                    error: error.to_string(),
                })?
                .stream_sequence;
            let event =
                serde_json::from_slice::<EventEnvelope>(&message.payload).map_err(|error| {
                    Failure {
                        kind: FailureKind::Permanent,
                        error: format!("not an event envelope: {error}"),
                    }
                })?;
            caused.extend(self.projection.apply(&mut *tx, &event).await?);
            newest = newest.max(sequence);
        }
        DB::store_position(&mut *tx, &self.subscription.consumer, newest).await?;
        tx.commit().await?;
        self.advance_applied(newest);
        if !caused.is_empty() {
            self.publisher.publish_committed(&caused).await;
        }
        Ok(())
    }

    /// Whether an event on `subject` is one of the read-model's.
    fn wants(&self, subject: &str) -> bool {
        self.subscription
            .subjects
            .iter()
            .any(|filter| subject_matches(filter, subject))
    }

    /// Applies the event at `sequence` and stores the position, in one transaction; then
    /// publishes what the projection caused.
    ///
    /// Redeliveries do not come in stream order: after a crash, what was delivered but not
    /// acknowledged comes back only after `ack_wait`, behind newer events. So a sequence at or
    /// below the stored position may never have been applied, and skipping it would lose it for
    /// good; every event goes to the projection, which skips what is not newer than what it
    /// holds (aggregate versions). The position only moves forward.
    async fn apply(
        &self,
        lease: &mut DB::Lease,
        sequence: u64,
        payload: &[u8],
    ) -> Result<(), Failure> {
        let mut tx = DB::begin(lease).await?;
        let event = serde_json::from_slice::<EventEnvelope>(payload).map_err(|error| Failure {
            kind: FailureKind::Permanent,
            error: format!("not an event envelope: {error}"),
        })?;
        let caused = self.projection.apply(&mut *tx, &event).await?;
        DB::store_position(&mut *tx, &self.subscription.consumer, sequence).await?;
        tx.commit().await?;
        self.advance_applied(sequence);
        if !caused.is_empty() {
            self.publisher.publish_committed(&caused).await;
        }
        Ok(())
    }

    /// Parks the event at `sequence`: its row in `read_model_parked` and the position past it,
    /// in one transaction. The caller then acknowledges it.
    async fn park(
        &self,
        lease: &mut DB::Lease,
        sequence: u64,
        subject: &str,
        payload: &[u8],
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let consumer = &self.subscription.consumer;
        let mut tx = DB::begin(lease).await?;
        let parked = Parked {
            consumer,
            sequence,
            subject,
            payload,
            error,
        };
        DB::park(&mut *tx, parked).await?;
        DB::store_position(&mut *tx, consumer, sequence).await?;
        tx.commit().await?;
        tracing::error!(%consumer, sequence, subject, error,
                        "parked an event the read-model cannot apply (see read_model_parked)");
        self.advance_applied(sequence);
        Ok(())
    }

    /// Moves the applied position forward (never back: redeliveries come behind newer events).
    fn advance_applied(&self, sequence: u64) {
        self.applied.send_if_modified(|applied| {
            let newer = sequence > *applied;
            *applied = (*applied).max(sequence);
            newer
        });
    }
}

/// The stream's last sequence among `subjects` (0 when none of them has an event).
pub async fn last_sequence(
    js: &jetstream::Context,
    subjects: &[String],
) -> Result<u64, async_nats::Error> {
    let stream = js.get_stream_no_info(EVENT_STREAM).await?;
    let mut target = 0;
    for subject in subjects {
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => target = target.max(message.sequence),
            Err(error)
                if error.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(target)
}

/// Whether `subject` matches the NATS subject `filter` (`*` one token, `>` the rest).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (wanted, Some(got)) if wanted == got => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_nats_wildcards() {
        let subject = "hospital.events.patient.abc.created";
        assert!(subject_matches("hospital.events.patient.>", subject));
        assert!(subject_matches("hospital.events.*.*.created", subject));
        assert!(subject_matches(subject, subject));
        assert!(!subject_matches("hospital.events.staff.>", subject));
        assert!(!subject_matches("hospital.events.*.*", subject));
        assert!(!subject_matches(
            "hospital.events.patient.abc.created.x",
            subject
        ));
        assert!(!subject_matches(
            "hospital.events.patient.abc.created.>",
            subject
        ));
    }
}
