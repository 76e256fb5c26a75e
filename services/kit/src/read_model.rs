//! Read-models fed by a durable JetStream consumer (DESIGN.md, "Reads across services").
//!
//! A service that needs another service's data keeps its own tables of it, built from
//! `HOSPITAL_EVENTS`. The [`ReadModel`] runner consumes the events with one durable consumer per
//! service (never one per instance), applies each through a [`Projection`] inside a transaction
//! that also stores the consumer's position, commits, then acknowledges. So a crash between
//! commit and ack only causes a redelivery, which the projection's version check turns into a
//! no-op.
//!
//! [`CatchUp`] answers "have I seen everything up to now?": it looks up the stream's last sequence
//! for the consumer's subjects and waits (bounded) until the runner has applied it. A service
//! asks it when its read-model does not know an id, so a client that creates a patient and at
//! once books an appointment for it succeeds.
//!
//! Poison events: an event that cannot be applied must neither block the consumer forever nor
//! vanish. A permanent failure (the payload is not an envelope, or its `data` does not decode)
//! is parked at once; any other failure is retried (NAK with back-off) and parked on its
//! [`MAX_DELIVERIES`]th delivery; a transient one (database busy or locked, pool or I/O errors)
//! is retried for as long as it lasts. Parking writes the event, its error and payload to
//! `read_model_parked`, stores the position past it in the same transaction, acknowledges it and
//! logs at error level. [`rebuild`] (`hospital replay`) clears the parked rows and applies them
//! again like every other event.
//!
//! Every service with a read-model has these tables in its migrations:
//! `read_model_position(consumer TEXT PRIMARY KEY, stream_sequence INTEGER NOT NULL)` and
//! `read_model_parked(consumer, stream_sequence, subject, event_id, error, payload, parked_at)`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use shared_events::EventEnvelope;
use shared_events::subjects::EVENT_STREAM;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::EventPublisher;
use crate::outbox::OutboxRow;

/// What a read-model does with one event. `apply` runs inside the runner's transaction; any
/// events it causes (a cascade) are appended to the outbox in that transaction and returned, and
/// the runner publishes them after the commit. An event whose `data` cannot be decoded is a
/// permanent failure: return `sqlx::Error::Decode` and the runner parks it.
/// `apply` must be idempotent: an event seen again, or one older than what the read-model
/// holds, changes nothing (compare aggregate versions).
pub trait Projection: Send + Sync + 'static {
    fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, sqlx::Error>> + Send;

    /// Applies several events in order inside the caller's transaction, as a rebuild does; what
    /// they cause goes to the outbox. The default applies them one by one; a projection may do
    /// it in fewer statements, with the same result.
    fn apply_batch(
        &self,
        conn: &mut SqliteConnection,
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
        conn: &mut SqliteConnection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The delivery on which an event that keeps failing is parked instead of retried again.
pub const MAX_DELIVERIES: i64 = 5;

/// At most this many events already delivered are applied in one transaction by the live runner.
const LIVE_BATCH: usize = 256;

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
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            if matches!(code & 0xff, 5 | 6) {
                FailureKind::Transient
            } else {
                FailureKind::Repeatable
            }
        }
        _ => FailureKind::Repeatable,
    }
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

/// Writes a parked event inside the caller's transaction.
async fn park_row(
    conn: &mut SqliteConnection,
    consumer: &str,
    sequence: u64,
    subject: &str,
    payload: &[u8],
    error: &str,
) -> Result<(), sqlx::Error> {
    let event_id = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("event_id")
                .and_then(|id| id.as_str())
                .map(str::to_owned)
        });
    sqlx::query(
        "INSERT INTO read_model_parked (consumer, stream_sequence, subject, event_id, error, payload, parked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (consumer, stream_sequence) DO UPDATE SET error = excluded.error,
                                                              parked_at = excluded.parked_at",
    )
    .bind(consumer)
    .bind(sequence as i64)
    .bind(subject)
    .bind(event_id)
    .bind(error)
    .bind(String::from_utf8_lossy(payload).into_owned())
    .bind(crate::events::format_timestamp(crate::events::now()))
    .execute(conn)
    .await?;
    Ok(())
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

/// Which events a read-model consumes, under which durable consumer name.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The durable consumer's name, one per service: `appointment-read-model`, ...
    pub consumer: String,
    /// Subject filters, such as `hospital.events.patient.>`.
    pub subjects: Vec<String>,
}

/// Runs a projection over the event stream. Owned by the service's run loop.
pub struct ReadModel<P> {
    js: jetstream::Context,
    pool: SqlitePool,
    projection: Arc<P>,
    publisher: EventPublisher,
    subscription: Subscription,
    /// The last stream sequence applied; [`CatchUp`] handles watch it.
    applied: watch::Sender<u64>,
}

impl<P: Projection> ReadModel<P> {
    /// Prepares the runner; reads the stored position so [`CatchUp`] is right from the start.
    pub async fn new(
        js: jetstream::Context,
        pool: SqlitePool,
        projection: Arc<P>,
        publisher: EventPublisher,
        subscription: Subscription,
    ) -> Result<Self, sqlx::Error> {
        let position = stored_position(&pool, &subscription.consumer).await?;
        let (applied, _) = watch::channel(position);
        Ok(ReadModel {
            js,
            pool,
            projection,
            publisher,
            subscription,
            applied,
        })
    }

    /// A handle for waiting until the read-model has caught up.
    pub fn catch_up(&self) -> CatchUp {
        CatchUp {
            js: self.js.clone(),
            subjects: self.subscription.subjects.clone(),
            applied: self.applied.subscribe(),
        }
    }

    /// Consumes until `shutdown`. Connection problems are retried with back-off; an event that
    /// cannot be applied is retried later (not acknowledged) or, when it never can be, parked
    /// (see the module's documentation); never skipped silently.
    pub async fn run(self, shutdown: CancellationToken) {
        const FIRST_RETRY: Duration = Duration::from_millis(100);
        let mut backoff = FIRST_RETRY;
        loop {
            let started = tokio::time::Instant::now();
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = self.consume() => outcome,
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

    async fn consume(&self) -> Result<(), async_nats::Error> {
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
        let mut messages = consumer.messages().await?;
        tracing::info!(consumer = %self.subscription.consumer, "read-model consuming");
        while let Some(first) = messages.next().await {
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
            self.handle(batch).await?;
            if let Some(error) = failed {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Applies the read-model's events of `batch` together when they all apply, else one by
    /// one (to park or retry exactly the one that fails); acknowledges the others unread.
    async fn handle(&self, batch: Vec<jetstream::Message>) -> Result<(), async_nats::Error> {
        let (ours, others): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|message| self.wants(&message.subject));
        if ours.len() > 1 && self.apply_together(&ours).await.is_ok() {
            for message in &ours {
                message.ack().await?;
            }
        } else {
            for message in ours {
                self.handle_one(message).await?;
            }
        }
        for message in others {
            message.ack().await?;
        }
        Ok(())
    }

    /// Applies one event; one that fails is retried (NAK) or, when it never can be applied,
    /// parked (see the module's documentation).
    async fn handle_one(&self, message: jetstream::Message) -> Result<(), async_nats::Error> {
        let info = message.info()?;
        let (sequence, delivered) = (info.stream_sequence, info.delivered);
        if let Err(failure) = self.apply(sequence, &message.payload).await {
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
            self.park(sequence, &message.subject, &message.payload, &failure.error)
                .await?;
        }
        message.ack().await?;
        Ok(())
    }

    /// Applies `messages` in one transaction with the position after the newest of them, then
    /// publishes what they caused. Any failure rolls the whole transaction back (the caller
    /// then goes one by one).
    async fn apply_together(&self, messages: &[jetstream::Message]) -> Result<(), Failure> {
        let mut tx = crate::sqlite::begin_write(&self.pool).await?;
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
            caused.extend(self.projection.apply(&mut tx, &event).await?);
            newest = newest.max(sequence);
        }
        store_position(&mut tx, &self.subscription.consumer, newest).await?;
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
    async fn apply(&self, sequence: u64, payload: &[u8]) -> Result<(), Failure> {
        let mut tx = crate::sqlite::begin_write(&self.pool).await?;
        let event = serde_json::from_slice::<EventEnvelope>(payload).map_err(|error| Failure {
            kind: FailureKind::Permanent,
            error: format!("not an event envelope: {error}"),
        })?;
        let caused = self.projection.apply(&mut tx, &event).await?;
        store_position(&mut tx, &self.subscription.consumer, sequence).await?;
        tx.commit().await?;
        self.advance_applied(sequence);
        if !caused.is_empty() {
            self.publisher.publish_committed(&caused).await;
        }
        Ok(())
    }
}

impl<P: Projection> ReadModel<P> {
    /// Parks the event at `sequence`: its row in `read_model_parked` and the position past it,
    /// in one transaction. The caller then acknowledges it.
    async fn park(
        &self,
        sequence: u64,
        subject: &str,
        payload: &[u8],
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let consumer = &self.subscription.consumer;
        let mut tx = crate::sqlite::begin_write(&self.pool).await?;
        park_row(&mut tx, consumer, sequence, subject, payload, error).await?;
        store_position(&mut tx, consumer, sequence).await?;
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

async fn stored_position(pool: &SqlitePool, consumer: &str) -> Result<u64, sqlx::Error> {
    let position: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(stream_sequence), 0) FROM read_model_position WHERE consumer = $1",
    )
    .bind(consumer)
    .fetch_one(pool)
    .await?;
    Ok(position.max(0) as u64)
}

/// Waits until a read-model has applied every event that exists now. Cheap to clone.
#[derive(Clone)]
pub struct CatchUp {
    js: jetstream::Context,
    subjects: Vec<String>,
    applied: watch::Receiver<u64>,
}

impl CatchUp {
    /// The stream's last sequence among the read-model's subjects (0 when there is none).
    async fn target(&self) -> Result<u64, async_nats::Error> {
        last_sequence(&self.js, &self.subjects).await
    }

    /// Waits (at most `patience`) until everything in the stream now has been applied. Returns
    /// whether it got there; either way the caller then decides on what it knows.
    pub async fn wait(&self, patience: Duration) -> bool {
        let waiting = async {
            let target = match self.target().await {
                Ok(target) => target,
                Err(error) => {
                    tracing::warn!(%error, "cannot learn the stream's last sequence");
                    return false;
                }
            };
            let mut applied = self.applied.clone();
            applied
                .wait_for(|position| *position >= target)
                .await
                .is_ok()
        };
        tokio::time::timeout(patience, waiting)
            .await
            .unwrap_or(false)
    }

    /// The last stream sequence applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
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

/// Events applied per transaction during a rebuild.
pub const REBUILD_BATCH: usize = 1_000;

/// How far a rebuild has got; handed to its progress callback about once a second.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Events applied (or parked) so far.
    pub events: u64,
    /// The stream sequence reached, and the one the rebuild stops at.
    pub sequence: u64,
    pub target: u64,
    pub elapsed: Duration,
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// Events read and applied (including those parked).
    pub events: u64,
    /// Events that could not be applied and are parked in `read_model_parked`.
    pub parked: u64,
    /// Events the projection caused (cascades) and that were published at the end.
    pub published: usize,
    /// The stream sequence the rebuild stopped at, now the stored position.
    pub last_sequence: u64,
    pub elapsed: Duration,
}

impl Rebuilt {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event stream {EVENT_STREAM}: {0}")]
    Stream(async_nats::Error),
}

/// One message read for a rebuild.
struct Read {
    sequence: u64,
    subject: async_nats::Subject,
    payload: bytes::Bytes,
    /// The payload decoded, by the reading task: decoding then runs beside the database work.
    event: Result<EventEnvelope, String>,
}

/// Rebuilds a read-model from the stream's first event: empties its tables, its position and
/// parked rows (one transaction), reads `subscription`'s subjects from sequence 1 with an
/// ordered (ephemeral) consumer up to the last sequence they had when it started, applies them
/// [`REBUILD_BATCH`] per transaction with the position in the same transaction, and at the end
/// publishes whatever the projection put in the outbox. An event that cannot be applied is
/// parked, as by the runner. The service must not be running (its database lock says so).
pub async fn rebuild<P: Projection>(
    js: &jetstream::Context,
    pool: &SqlitePool,
    projection: &P,
    subscription: &Subscription,
    mut progress: impl FnMut(&Progress),
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let consumer = subscription.consumer.as_str();
    let target = last_sequence(js, &subscription.subjects)
        .await
        .map_err(RebuildError::Stream)?;

    let mut tx = crate::sqlite::begin_write(pool).await?;
    projection.reset(&mut tx).await?;
    for sql in [
        "DELETE FROM read_model_position WHERE consumer = $1",
        "DELETE FROM read_model_parked WHERE consumer = $1",
    ] {
        sqlx::query(sql).bind(consumer).execute(&mut *tx).await?;
    }
    tx.commit().await?;

    let mut rebuilt = Rebuilt {
        events: 0,
        parked: 0,
        published: 0,
        last_sequence: 0,
        elapsed: Duration::ZERO,
    };
    if target > 0 {
        // Read in a task of its own, so the network and the database work at the same time.
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Read>(4 * REBUILD_BATCH);
        let reader = tokio::spawn(read_until(
            js.clone(),
            subscription.subjects.clone(),
            target,
            sender,
        ));
        let mut batch = Vec::with_capacity(REBUILD_BATCH);
        let mut last_report = Instant::now();
        let mut conn = pool.acquire().await?;
        // The rebuild can be run again from the start, so it need not wait for the disk on every
        // batch; the pool's other connections keep `synchronous = FULL`.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        while let Some(first) = receiver.recv().await {
            batch.push(first);
            // Fill the batch, waiting a moment for more rather than committing a few at a time.
            let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
            while batch.len() < REBUILD_BATCH {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(read)) => batch.push(read),
                    Ok(None) | Err(_) => break,
                }
            }
            rebuilt.parked += apply_batch(&mut conn, projection, consumer, &batch).await?;
            rebuilt.events += batch.len() as u64;
            rebuilt.last_sequence = batch.last().map_or(0, |r| r.sequence);
            batch.clear();
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(&Progress {
                    events: rebuilt.events,
                    sequence: rebuilt.last_sequence,
                    target,
                    elapsed: started.elapsed(),
                });
            }
        }
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        drop(conn);
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(RebuildError::Stream(error)),
            Err(error) => return Err(RebuildError::Stream(error.into())),
        }
    }
    rebuilt.published = EventPublisher::new(js.clone(), pool.clone())
        .drain()
        .await
        .map_err(RebuildError::Stream)?;
    rebuilt.elapsed = started.elapsed();
    Ok(rebuilt)
}

/// Reads `subjects` from the first event with an ordered consumer until `target` is reached.
async fn read_until(
    js: jetstream::Context,
    subjects: Vec<String>,
    target: u64,
    sender: tokio::sync::mpsc::Sender<Read>,
) -> Result<(), async_nats::Error> {
    let stream = js.get_stream(EVENT_STREAM).await?;
    // nats-server delivers a consumer with several filter subjects far more slowly (about 2k
    // messages/s here, against 160k/s with one filter) when the stream holds many distinct
    // subjects, as ours does (one per aggregate): read them all with one wildcard filter and
    // keep the wanted subjects here.
    let (filter, keep) = match subjects.as_slice() {
        [one] => (one.clone(), None),
        _ => (
            shared_events::subjects::ALL_EVENTS.to_owned(),
            Some(subjects),
        ),
    };
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = ordered.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let sequence = message.info()?.stream_sequence;
        let (message, _) = message.split();
        let wanted = keep.as_ref().is_none_or(|filters| {
            filters
                .iter()
                .any(|filter| subject_matches(filter, &message.subject))
        });
        if !wanted {
            if sequence >= target {
                return Ok(());
            }
            continue;
        }
        let event = serde_json::from_slice(&message.payload)
            .map_err(|e| format!("not an event envelope: {e}"));
        let read = Read {
            sequence,
            subject: message.subject,
            payload: message.payload,
            event,
        };
        if sender.send(read).await.is_err() {
            return Ok(()); // the rebuild stopped
        }
        if sequence >= target {
            return Ok(());
        }
    }
    Err("the ordered consumer ended before the last event".into())
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

/// Applies `batch` in one transaction with the position after it. An event that fails
/// permanently is parked: the transaction is rolled back and the batch applied again with that
/// event parked instead. Returns how many were parked.
async fn apply_batch<P: Projection>(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    projection: &P,
    consumer: &str,
    batch: &[Read],
) -> Result<u64, sqlx::Error> {
    let events: Vec<&Result<EventEnvelope, String>> =
        batch.iter().map(|read| &read.event).collect();
    // The fast path: the whole batch through the projection's batch apply. Should anything
    // fail, undo it and go event by event, to park only what fails.
    if events.iter().all(|event| event.is_ok()) {
        let all: Vec<&EventEnvelope> = events.iter().copied().flatten().collect();
        let mut tx = sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?;
        match projection.apply_batch(&mut tx, &all).await {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    store_position(&mut tx, consumer, last.sequence).await?;
                }
                tx.commit().await?;
                return Ok(0);
            }
            Err(error) if classify(&error) == FailureKind::Transient => return Err(error),
            Err(_) => tx.rollback().await?,
        }
    }
    let mut failed: HashMap<usize, String> = HashMap::new();
    'attempt: loop {
        let mut tx = sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?;
        for (i, (read, event)) in batch.iter().zip(&events).enumerate() {
            let error = match (failed.get(&i), event) {
                (Some(error), _) => error.clone(),
                (None, Err(error)) => error.clone(),
                (None, Ok(event)) => match projection.apply(&mut tx, event).await {
                    Ok(_) => continue,
                    Err(error) if classify(&error) == FailureKind::Transient => {
                        return Err(error);
                    }
                    Err(error) => {
                        // Undo the batch so far and apply it again without this event.
                        tx.rollback().await?;
                        failed.insert(i, error.to_string());
                        continue 'attempt;
                    }
                },
            };
            park_row(
                &mut tx,
                consumer,
                read.sequence,
                &read.subject,
                &read.payload,
                &error,
            )
            .await?;
        }
        if let Some(last) = batch.last() {
            store_position(&mut tx, consumer, last.sequence).await?;
        }
        tx.commit().await?;
        let mut parked = 0;
        for (i, (read, event)) in batch.iter().zip(&events).enumerate() {
            if let Some(error) = failed.get(&i).or(event.as_ref().err()) {
                parked += 1;
                tracing::error!(%consumer, sequence = read.sequence, subject = %read.subject, %error,
                                "parked an event the read-model cannot apply (see read_model_parked)");
            }
        }
        return Ok(parked);
    }
}

/// Restores an owning service's own tables from its own events (disaster recovery): reads
/// `subject` (such as `hospital.events.patient.>`) from the first event with an ordered
/// consumer up to its last sequence now, and hands each event to `restorer` ([`REBUILD_BATCH`]
/// per transaction). Any event that cannot be applied stops the restore: a recovered database
/// must be complete. No position is stored and nothing is published: the events already exist.
pub async fn restore<P: Projection>(
    js: &jetstream::Context,
    pool: &SqlitePool,
    subject: &str,
    restorer: &P,
    mut progress: impl FnMut(&Progress),
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let subjects = vec![subject.to_owned()];
    let target = last_sequence(js, &subjects)
        .await
        .map_err(RebuildError::Stream)?;
    let mut restored = Rebuilt {
        events: 0,
        parked: 0,
        published: 0,
        last_sequence: 0,
        elapsed: Duration::ZERO,
    };
    if target > 0 {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Read>(4 * REBUILD_BATCH);
        let reader = tokio::spawn(read_until(js.clone(), subjects, target, sender));
        let mut last_report = Instant::now();
        let mut tx = crate::sqlite::begin_write(pool).await?;
        let mut in_tx = 0;
        while let Some(read) = receiver.recv().await {
            let event = read.event.map_err(|e| {
                sqlx::Error::Decode(format!("event at sequence {}: {e}", read.sequence).into())
            })?;
            restorer.apply(&mut tx, &event).await?;
            restored.events += 1;
            restored.last_sequence = read.sequence;
            in_tx += 1;
            if in_tx == REBUILD_BATCH {
                tx.commit().await?;
                tx = crate::sqlite::begin_write(pool).await?;
                in_tx = 0;
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(&Progress {
                    events: restored.events,
                    sequence: restored.last_sequence,
                    target,
                    elapsed: started.elapsed(),
                });
            }
        }
        tx.commit().await?;
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(RebuildError::Stream(error)),
            Err(error) => return Err(RebuildError::Stream(error.into())),
        }
    }
    restored.elapsed = started.elapsed();
    Ok(restored)
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
