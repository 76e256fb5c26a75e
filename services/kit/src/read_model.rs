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
//! Every service with a read-model has this table in its migrations:
//! `read_model_position(consumer TEXT PRIMARY KEY, stream_sequence INTEGER NOT NULL)`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use shared_events::EventEnvelope;
use shared_events::subjects::EVENT_STREAM;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::EventPublisher;
use crate::outbox::OutboxRow;

/// What a read-model does with one event. `apply` runs inside the runner's transaction; any
/// events it causes (a cascade) are appended to the outbox in that transaction and returned, and
/// the runner publishes them after the commit.
/// `apply` must be idempotent: an event seen again, or one older than what the read-model
/// holds, changes nothing (compare aggregate versions).
pub trait Projection: Send + Sync + 'static {
    fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, sqlx::Error>> + Send;
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
    /// cannot be applied is logged and retried later (not acknowledged), never skipped.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = self.consume() => outcome,
            };
            if let Err(error) = outcome {
                tracing::warn!(consumer = %self.subscription.consumer, %error, "read-model consumer failed; retrying");
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
        let consumer = stream
            .get_or_create_consumer(
                &self.subscription.consumer,
                consumer::pull::Config {
                    durable_name: Some(self.subscription.consumer.clone()),
                    description: Some("read-model of a hospital service".to_owned()),
                    filter_subjects: self.subscription.subjects.clone(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    deliver_policy: consumer::DeliverPolicy::All,
                    // After a crash, what was delivered but not acknowledged comes back this soon.
                    ack_wait: Duration::from_secs(10),
                    max_ack_pending: 1024,
                    ..Default::default()
                },
            )
            .await?;
        let mut messages = consumer.messages().await?;
        tracing::info!(consumer = %self.subscription.consumer, "read-model consuming");
        while let Some(message) = messages.next().await {
            let message = message?;
            let sequence = message.info()?.stream_sequence;
            if let Err(error) = self.apply(sequence, &message.payload).await {
                // Ask for it again (after the back-off) rather than wait out the ack timeout.
                let _ = message
                    .ack_with(jetstream::AckKind::Nak(Some(Duration::from_millis(500))))
                    .await;
                return Err(error);
            }
            message.ack().await?;
        }
        Ok(())
    }

    /// Applies the event at `sequence` and stores the position, in one transaction; then
    /// publishes what the projection caused.
    ///
    /// Redeliveries do not come in stream order: after a crash, what was delivered but not
    /// acknowledged comes back only after `ack_wait`, behind newer events. So a sequence at or
    /// below the stored position may never have been applied, and skipping it would lose it for
    /// good; every event goes to the projection, which skips what is not newer than what it
    /// holds (aggregate versions). The position only moves forward.
    async fn apply(&self, sequence: u64, payload: &[u8]) -> Result<(), async_nats::Error> {
        let mut tx = crate::sqlite::begin_write(&self.pool).await?;
        let caused = match serde_json::from_slice::<EventEnvelope>(payload) {
            Ok(event) => self.projection.apply(&mut tx, &event).await?,
            Err(error) => {
                // Not ours to fix: skip it (and say so) rather than block every later event.
                tracing::error!(sequence, %error, "skipping an event that is not an envelope");
                Vec::new()
            }
        };
        sqlx::query(
            "INSERT INTO read_model_position (consumer, stream_sequence) VALUES ($1, $2)
             ON CONFLICT (consumer) DO UPDATE
             SET stream_sequence = MAX(stream_sequence, excluded.stream_sequence)",
        )
        .bind(&self.subscription.consumer)
        .bind(sequence as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.applied.send_if_modified(|applied| {
            let newer = sequence > *applied;
            *applied = (*applied).max(sequence);
            newer
        });
        if !caused.is_empty() {
            self.publisher.publish_committed(&caused).await;
        }
        Ok(())
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
        let stream = self.js.get_stream_no_info(EVENT_STREAM).await?;
        let mut target = 0;
        for subject in &self.subjects {
            match stream.get_last_raw_message_by_subject(subject).await {
                Ok(message) => target = target.max(message.sequence),
                Err(error)
                    if error.kind()
                        == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(target)
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
