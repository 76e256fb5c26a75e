//! Publishing to JetStream in atomic batches: many callers, few fsyncs.
//!
//! nats-server runs JetStream with `sync_interval: always`, so every stored message costs one
//! fsync and one-message-per-publish caps the stream at a few thousand messages a second. An
//! atomic batch (server 2.12+, stream option `allow_atomic_publish`) costs about four fsyncs
//! whatever its size. The [`BatchPublisher`] runs one task that takes every call waiting when
//! the previous batch was acknowledged and publishes them as one batch, then answers each caller.
//! Under load batches grow by themselves; when quiet a lone message goes out at once (no timer).
//!
//! A batch is all-or-nothing on the server, but one caller's bad message must not fail everyone
//! else's: a refused batch is retried one message at a time, and each caller gets the result of
//! its own messages. A repeated `Nats-Msg-Id` is a success there (JetStream acknowledges it as a
//! duplicate), which the outbox relies on when it republishes rows whose acknowledgement was lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// The most messages the server takes in one atomic batch.
pub const MAX_BATCH: usize = 1000;

/// Below this many messages, plain pipelined publishes cost fewer fsyncs than a batch (~4).
const MIN_ATOMIC_BATCH: usize = 4;

const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// One message to publish to JetStream.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

/// Why a caller's messages were not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The publishing task has ended (every other handle dropped, or it panicked).
    #[error("the batch publisher has stopped")]
    Stopped,
    /// JetStream refused a message or did not acknowledge it in time (NATS down, no stream).
    #[error("JetStream did not acknowledge the message: {0}")]
    NotAcknowledged(Arc<jetstream::context::PublishError>),
}

impl PublishError {
    /// The JetStream error kind, if JetStream (not the publisher) failed the publish.
    pub fn kind(&self) -> Option<PublishErrorKind> {
        match self {
            PublishError::Stopped => None,
            PublishError::NotAcknowledged(error) => Some(error.kind()),
        }
    }
}

/// What the publishing task has done so far, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Atomic batches the server committed.
    atomic_batches: AtomicU64,
    /// Rounds published one message at a time (small rounds, non-atomic streams, retries).
    plain_rounds: AtomicU64,
    /// Atomic batches the server refused, whose messages were then retried one by one.
    refused_batches: AtomicU64,
}

/// One caller's messages and where to send their outcome.
struct Call {
    messages: Vec<Outgoing>,
    answer: oneshot::Sender<Result<(), PublishError>>,
}

/// Queues messages for the one publishing task. Cheap to clone.
#[derive(Clone)]
pub struct BatchPublisher {
    queue: mpsc::UnboundedSender<Call>,
    stats: Arc<PublishStats>,
}

impl BatchPublisher {
    /// Starts the publishing task. `js` must be a context over `client` (the batch's first
    /// messages go out on the client and its last on the context; one connection keeps them in
    /// order). `atomic` says whether the stream allows atomic batches
    /// ([`crate::event_stream::atomic_enabled`]); without it every message is published alone,
    /// pipelined. The task ends when every handle is dropped.
    pub fn start(client: async_nats::Client, js: jetstream::Context, atomic: bool) -> Self {
        let (queue, calls) = mpsc::unbounded_channel();
        let stats = Arc::new(PublishStats::default());
        let task = Task {
            client,
            js,
            atomic,
            stats: stats.clone(),
        };
        tokio::spawn(task.run(calls));
        BatchPublisher { queue, stats }
    }

    /// Publishes `messages` in the next batch and returns once JetStream has stored them all
    /// (or failed one of them). More than [`MAX_BATCH`] messages are split over several batches.
    pub async fn publish(&self, mut messages: Vec<Outgoing>) -> Result<(), PublishError> {
        let mut answers = Vec::with_capacity(messages.len().div_ceil(MAX_BATCH));
        while !messages.is_empty() {
            let rest = messages.split_off(messages.len().min(MAX_BATCH));
            let (answer, answered) = oneshot::channel();
            self.queue
                .send(Call { messages, answer })
                .map_err(|_| PublishError::Stopped)?;
            answers.push(answered);
            messages = rest;
        }
        for answered in answers {
            answered.await.map_err(|_| PublishError::Stopped)??;
        }
        Ok(())
    }

    /// Atomic batches the server has committed.
    pub fn batches_published(&self) -> u64 {
        self.stats.atomic_batches.load(Ordering::Relaxed)
    }

    /// Rounds published one message at a time.
    pub fn plain_rounds(&self) -> u64 {
        self.stats.plain_rounds.load(Ordering::Relaxed)
    }

    /// Atomic batches the server refused (their messages were retried one by one).
    pub fn batches_refused(&self) -> u64 {
        self.stats.refused_batches.load(Ordering::Relaxed)
    }
}

/// The publishing task's state.
struct Task {
    client: async_nats::Client,
    js: jetstream::Context,
    /// Whether the stream takes atomic batches; fixed at start.
    atomic: bool,
    stats: Arc<PublishStats>,
}

impl Task {
    async fn run(self, mut calls: mpsc::UnboundedReceiver<Call>) {
        // A call that did not fit in the previous batch opens the next one.
        let mut held: Option<Call> = None;
        loop {
            let first = match held.take() {
                Some(call) => call,
                None => match calls.recv().await {
                    Some(call) => call,
                    None => return,
                },
            };
            let mut size = first.messages.len();
            let mut round = vec![first];
            while size < MAX_BATCH {
                match calls.try_recv() {
                    Ok(call) if size + call.messages.len() > MAX_BATCH => {
                        held = Some(call);
                        break;
                    }
                    Ok(call) => {
                        size += call.messages.len();
                        round.push(call);
                    }
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            self.publish_round(round, size).await;
            tracing::debug!(
                messages = size,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "batch published"
            );
        }
    }

    /// Publishes one round of calls and answers each caller.
    async fn publish_round(&self, round: Vec<Call>, size: usize) {
        let (messages, callers) = flatten(round);
        if self.atomic && size >= MIN_ATOMIC_BATCH {
            match self.publish_atomic(&messages).await {
                Ok(()) => {
                    self.stats.atomic_batches.fetch_add(1, Ordering::Relaxed);
                    for (answer, _) in callers {
                        let _ = answer.send(Ok(()));
                    }
                    return;
                }
                Err(error) if unreachable_server(&error) => {
                    // Retrying one by one would only wait out the same timeout again.
                    tracing::warn!(%error, messages = size, "atomic batch not acknowledged");
                    let error = PublishError::NotAcknowledged(Arc::new(error));
                    for (answer, _) in callers {
                        let _ = answer.send(Err(error.clone()));
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, messages = size, "atomic batch refused; publishing its messages one by one");
                    self.stats.refused_batches.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let mut outcomes = self.publish_each(&messages).await.into_iter();
        self.stats.plain_rounds.fetch_add(1, Ordering::Relaxed);
        for (answer, count) in callers {
            // The caller's first failure, after consuming all its outcomes (the next caller's follow).
            let mut outcome = Ok(());
            for next in outcomes.by_ref().take(count) {
                if outcome.is_ok() {
                    outcome = next;
                }
            }
            let _ = answer.send(outcome);
        }
    }

    /// One atomic batch: every message but the last is a core publish carrying the batch
    /// headers; the last commits the batch and its acknowledgement covers them all.
    async fn publish_atomic(
        &self,
        messages: &[Outgoing],
    ) -> Result<(), jetstream::context::PublishError> {
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let last = messages.len();
        for (index, message) in messages.iter().enumerate() {
            let sequence = index + 1;
            let mut headers = message.headers.clone();
            headers.insert(BATCH_ID, batch_id.as_str());
            headers.insert(BATCH_SEQUENCE, sequence.to_string());
            let subject = message.subject.clone();
            let payload = message.payload.clone();
            if sequence < last {
                self.client
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| {
                        jetstream::context::PublishError::with_source(
                            PublishErrorKind::BrokenPipe,
                            e,
                        )
                    })?;
            } else {
                headers.insert(BATCH_COMMIT, "1");
                self.js
                    .publish_with_headers(subject, headers, payload)
                    .await?
                    .await?;
            }
        }
        Ok(())
    }

    /// Publishes each message alone, pipelined (all sent, then all acknowledgements awaited).
    /// Returns one outcome per message, in order; a duplicate is a success.
    async fn publish_each(&self, messages: &[Outgoing]) -> Vec<Result<(), PublishError>> {
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            pending.push(
                self.js
                    .publish_with_headers(
                        message.subject.clone(),
                        message.headers.clone(),
                        message.payload.clone(),
                    )
                    .await,
            );
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for sent in pending {
            let acknowledged = match sent {
                Ok(ack) => ack.await.map(drop),
                Err(error) => Err(error),
            };
            outcomes.push(acknowledged.map_err(|e| PublishError::NotAcknowledged(Arc::new(e))));
        }
        outcomes
    }
}

/// The round's messages in order, and each caller with how many of them are its own.
#[allow(clippy::type_complexity)]
fn flatten(
    round: Vec<Call>,
) -> (
    Vec<Outgoing>,
    Vec<(oneshot::Sender<Result<(), PublishError>>, usize)>,
) {
    let mut messages = Vec::new();
    let mut callers = Vec::with_capacity(round.len());
    for call in round {
        callers.push((call.answer, call.messages.len()));
        messages.extend(call.messages);
    }
    (messages, callers)
}

/// Whether the batch failed because the server could not be reached, not because it refused it.
fn unreachable_server(error: &jetstream::context::PublishError) -> bool {
    matches!(
        error.kind(),
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
    )
}
