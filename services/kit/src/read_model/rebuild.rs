//! Rebuilding from the stream: a read-model from its first event ([`rebuild`], `hospital
//! replay`) and an owning service's own tables from its own events ([`restore`], `hospital
//! restore`). Both read with batched direct gets in a task of their own, so reading and decoding
//! run beside the database work, and write [`REBUILD_BATCH`] events per transaction. On either
//! backend ([`ReadModelDb`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use shared_events::EventEnvelope;
use shared_events::subjects::EVENT_STREAM;
use sqlx::Pool;
use sqlx::pool::PoolConnection;

use super::backend::{Parked, ReadModelDb};
use super::{FailureKind, Projection, Subscription, classify, last_sequence, subject_matches};
use crate::EventPublisher;
use crate::direct_batch::DirectReader;

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
#[derive(Debug, Clone, Copy, Default)]
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
    #[error(
        "another process consumes {consumer} (an instance of the service is running): stop \
         every instance first"
    )]
    Running { consumer: String },
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
/// parked rows (one transaction), reads `subscription`'s subjects from sequence 1 with
/// batched direct gets up to the last sequence they had when it started, applies them
/// [`REBUILD_BATCH`] per transaction with the position in the same transaction, and at the end
/// publishes whatever the projection put in the outbox. An event that cannot be applied is
/// parked, as by the runner. The service must not be running: on SQLite its database lock says
/// so; on PostgreSQL the rebuild holds the consumer's lock throughout, and is refused
/// ([`RebuildError::Running`]) while an instance holds it.
pub async fn rebuild<DB: ReadModelDb, P: Projection<DB>>(
    js: &jetstream::Context,
    pool: &Pool<DB>,
    projection: &P,
    subscription: &Subscription,
    progress: impl FnMut(&Progress),
) -> Result<Rebuilt, RebuildError> {
    let consumer = subscription.consumer.as_str();
    let Some(lease) = DB::lead(pool, consumer).await? else {
        return Err(RebuildError::Running {
            consumer: consumer.to_owned(),
        });
    };
    let rebuilt = rebuild_leading(js, pool, projection, subscription, progress).await;
    DB::release(lease).await;
    rebuilt
}

async fn rebuild_leading<DB: ReadModelDb, P: Projection<DB>>(
    js: &jetstream::Context,
    pool: &Pool<DB>,
    projection: &P,
    subscription: &Subscription,
    mut progress: impl FnMut(&Progress),
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let consumer = subscription.consumer.as_str();
    let target = last_sequence(js, &subscription.subjects)
        .await
        .map_err(RebuildError::Stream)?;

    let mut tx = DB::begin_on_pool(pool).await?;
    projection.reset(&mut *tx).await?;
    DB::forget(&mut *tx, consumer).await?;
    tx.commit().await?;

    let mut rebuilt = Rebuilt::default();
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
        DB::tune_for_rebuild(&mut *conn).await?;
        while receiver.recv_many(&mut batch, REBUILD_BATCH).await > 0 {
            // Fill the batch, waiting a moment for more rather than committing a few at a time
            // (taking what has arrived at once, not one wake-up per event).
            let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
            while batch.len() < REBUILD_BATCH {
                let room = REBUILD_BATCH - batch.len();
                match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room)).await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
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
        DB::untune(&mut *conn).await?;
        drop(conn);
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(RebuildError::Stream(error)),
            Err(error) => return Err(RebuildError::Stream(error.into())),
        }
    }
    rebuilt.published = EventPublisher::new(js.clone(), DB::database(pool))
        .drain()
        .await
        .map_err(RebuildError::Stream)?;
    rebuilt.elapsed = started.elapsed();
    Ok(rebuilt)
}

/// Reads `subjects` from the first event until `target` is reached, with batched direct gets
/// (see [`crate::direct_batch`] for why not a consumer), decoding each event for the applier.
async fn read_until(
    js: jetstream::Context,
    subjects: Vec<String>,
    target: u64,
    sender: tokio::sync::mpsc::Sender<Read>,
) -> Result<(), async_nats::Error> {
    // Every event is read and the wanted ones kept here: asked to filter, nats-server counts
    // what is left to match the filter for each batch, over every aggregate's subject (one per
    // patient), which cost more than the reading itself.
    let mut reader = DirectReader::open(&js.client(), EVENT_STREAM, 1, target).await?;
    let mut last = 0;
    while let Some(stored) = reader.next().await? {
        last = stored.sequence;
        if !subjects
            .iter()
            .any(|filter| subject_matches(filter, &stored.subject))
        {
            continue;
        }
        let event = serde_json::from_slice(&stored.payload)
            .map_err(|e| format!("not an event envelope: {e}"));
        let read = Read {
            sequence: stored.sequence,
            subject: stored.subject,
            payload: stored.payload,
            event,
        };
        if sender.send(read).await.is_err() {
            return Ok(()); // the rebuild stopped
        }
    }
    if last < target {
        return Err(format!(
            "the stream ended at sequence {last}, before the last event ({target})"
        )
        .into());
    }
    Ok(())
}

/// Applies `batch` in one transaction with the position after it. An event that fails
/// permanently is parked: the transaction is rolled back and the batch applied again with that
/// event parked instead. Returns how many were parked.
async fn apply_batch<DB: ReadModelDb, P: Projection<DB>>(
    conn: &mut PoolConnection<DB>,
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
        let mut tx = DB::begin_on(&mut **conn).await?;
        match projection.apply_batch(&mut *tx, &all).await {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    DB::store_position(&mut *tx, consumer, last.sequence).await?;
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
        let mut tx = DB::begin_on(&mut **conn).await?;
        for (i, (read, event)) in batch.iter().zip(&events).enumerate() {
            let error = match (failed.get(&i), event) {
                (Some(error), _) => error.clone(),
                (None, Err(error)) => error.clone(),
                (None, Ok(event)) => match projection.apply(&mut *tx, event).await {
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
            let parked = Parked {
                consumer,
                sequence: read.sequence,
                subject: &read.subject,
                payload: &read.payload,
                error: &error,
            };
            DB::park(&mut *tx, parked).await?;
        }
        if let Some(last) = batch.last() {
            DB::store_position(&mut *tx, consumer, last.sequence).await?;
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
/// `subject` (such as `hospital.events.patient.>`) from the first event with batched direct gets
/// up to its last sequence now, and hands each event to `restorer` ([`REBUILD_BATCH`]
/// per transaction). Any event that cannot be applied stops the restore: a recovered database
/// must be complete. No position is stored and nothing is published: the events already exist.
pub async fn restore<DB: ReadModelDb, P: Projection<DB>>(
    js: &jetstream::Context,
    pool: &Pool<DB>,
    subject: &str,
    restorer: &P,
    mut progress: impl FnMut(&Progress),
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let subjects = vec![subject.to_owned()];
    let target = last_sequence(js, &subjects)
        .await
        .map_err(RebuildError::Stream)?;
    let mut restored = Rebuilt::default();
    if target > 0 {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Read>(4 * REBUILD_BATCH);
        let reader = tokio::spawn(read_until(js.clone(), subjects, target, sender));
        let mut last_report = Instant::now();
        let mut tx = DB::begin_on_pool(pool).await?;
        let mut in_tx = 0;
        while let Some(read) = receiver.recv().await {
            let event = read.event.map_err(|e| {
                sqlx::Error::Decode(format!("event at sequence {}: {e}", read.sequence).into())
            })?;
            restorer.apply(&mut *tx, &event).await?;
            restored.events += 1;
            restored.last_sequence = read.sequence;
            in_tx += 1;
            if in_tx == REBUILD_BATCH {
                tx.commit().await?;
                tx = DB::begin_on_pool(pool).await?;
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
