//! The JetStream side of one client's feed: an ephemeral ordered pull consumer on
//! `HOSPITAL_EVENTS`, filtered by aggregate, and the task that pumps its events through the
//! role check into a small queue the HTTP response reads.
//!
//! The task ends, and deletes its consumer, when the client goes away (the queue's reader is
//! dropped), when the token expires, when the gateway stops, or when the client reads too
//! slowly: the queue is bounded, and a client that leaves it full too long is dropped rather
//! than buffered for. It reconnects with `Last-Event-ID` and loses nothing.

use std::time::Duration;

use async_nats::connection::State as ConnectionState;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::{self, Message};
use axum::response::sse::Event;
use futures::StreamExt;
use shared_events::subjects::{EVENT_STREAM, events_of};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::access::may_read;
use super::message::{aggregate_of, event_message};
use super::params::FeedRequest;
use crate::auth::Caller;
use crate::error::ApiError;

/// Events waiting for a client to read them; beyond this the pump waits (backpressure).
const QUEUE_CAPACITY: usize = 64;
/// How long the queue may stay full before the client counts as too slow and is dropped.
const SLOW_CLIENT_PATIENCE: Duration = Duration::from_secs(10);
/// Most messages one pull asks JetStream for, so a stalled feed holds little in memory.
const MAX_BATCH: i64 = 100;

/// A feed whose consumer is in place.
pub struct OpenFeed {
    /// The stream's last sequence when the feed opened (the `ready` message).
    pub last_sequence: u64,
    /// The events for the client, in stream order.
    pub events: mpsc::Receiver<Event>,
}

/// Opens the consumer and starts the pump. NATS or JetStream unreachable is a 503.
pub async fn open(
    nats: &async_nats::Client,
    request: &FeedRequest,
    caller: Caller,
    expires_at: Instant,
    closing: CancellationToken,
) -> Result<OpenFeed, ApiError> {
    if nats.connection_state() != ConnectionState::Connected {
        return Err(unavailable("NATS is not connected"));
    }
    let js = jetstream::new(nats.clone());
    let stream = js.get_stream(EVENT_STREAM).await.map_err(unavailable)?;
    let last_sequence = stream.cached_info().state.last_sequence;
    // Start right after what `ready` reports, so nothing falls between the two. A resume point
    // past the end (the stream was reset) resumes from now rather than skipping future events.
    let floor = request.after.unwrap_or(last_sequence).min(last_sequence);
    let name = format!("gateway-feed-{}", Uuid::now_v7());
    let config = OrderedConfig {
        name: Some(name.clone()),
        description: Some(format!("live feed of staff {}", caller.claims().sub)),
        filter_subjects: request.aggregates.iter().map(|&a| events_of(a)).collect(),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: floor + 1,
        },
        max_batch: MAX_BATCH,
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(unavailable)?;
    let messages = match consumer.messages().await {
        Ok(messages) => messages,
        Err(error) => {
            delete_consumer(&js, &name).await;
            return Err(unavailable(error));
        }
    };
    let (queue, events) = mpsc::channel(QUEUE_CAPACITY);
    tracing::info!(consumer = %name, staff_id = %caller.claims().sub, start_sequence = floor + 1,
        aggregates = ?request.aggregates, "live feed opened");
    let pump = Pump {
        js,
        consumer: name,
        caller,
        queue,
        last_seen: floor,
    };
    tokio::spawn(pump.run(messages, expires_at, closing));
    Ok(OpenFeed {
        last_sequence,
        events,
    })
}

fn unavailable(cause: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%cause, "cannot open a live feed");
    ApiError::service_unavailable("the live event feed is unavailable; try again shortly")
}

/// Why a feed ended (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    ClientGone,
    TokenExpired,
    GatewayStopping,
    ClientTooSlow,
    ConsumerFailed,
}

/// One client's pump: consumer in, checked SSE messages out.
struct Pump {
    js: jetstream::Context,
    /// The consumer's current name (the ordered consumer renames itself when it recreates).
    consumer: String,
    caller: Caller,
    queue: mpsc::Sender<Event>,
    /// The last stream sequence handled; anything at or below it is a replay and is skipped.
    last_seen: u64,
}

impl Pump {
    async fn run(mut self, mut messages: Ordered, expires_at: Instant, closing: CancellationToken) {
        let expiry = tokio::time::sleep_until(expires_at);
        tokio::pin!(expiry);
        let end = loop {
            let next = tokio::select! {
                () = self.queue.closed() => break End::ClientGone,
                () = &mut expiry => break End::TokenExpired,
                () = closing.cancelled() => break End::GatewayStopping,
                next = messages.next() => next,
            };
            let outcome = match next {
                Some(Ok(message)) => self.forward(message).await,
                Some(Err(error)) => {
                    tracing::warn!(consumer = %self.consumer, %error, "live feed consumer failed");
                    Err(End::ConsumerFailed)
                }
                None => Err(End::ConsumerFailed),
            };
            if let Err(end) = outcome {
                break end;
            }
        };
        // Stop pulling before the consumer goes, so it is not recreated behind our back.
        drop(messages);
        tracing::info!(consumer = %self.consumer, reason = ?end, "live feed closed");
        delete_consumer(&self.js, &self.consumer).await;
    }

    /// Sends one message on if it is new, readable and the caller may see it.
    async fn forward(&mut self, message: Message) -> Result<(), End> {
        let Ok(info) = message.info() else {
            tracing::warn!(subject = %message.subject, "live feed message without JetStream metadata");
            return Ok(());
        };
        if info.consumer != self.consumer {
            self.consumer = info.consumer.to_owned();
        }
        let sequence = info.stream_sequence;
        // A recreated ordered consumer may start over from the beginning of the stream.
        if sequence <= self.last_seen {
            return Ok(());
        }
        self.last_seen = sequence;
        let subject = message.subject.as_str();
        let event = match aggregate_of(subject) {
            Ok(aggregate) if !may_read(&self.caller, aggregate) => return Ok(()),
            Ok(_) => event_message(subject, sequence, &message.payload),
            Err(problem) => Err(problem),
        };
        match event {
            Ok(event) => self.send(event).await,
            Err(problem) => {
                tracing::warn!(sequence, subject, %problem, "live feed skips an unreadable event");
                Ok(())
            }
        }
    }

    async fn send(&self, event: Event) -> Result<(), End> {
        match tokio::time::timeout(SLOW_CLIENT_PATIENCE, self.queue.send(event)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientGone),
            Err(_) => Err(End::ClientTooSlow),
        }
    }
}

/// Deletes the ephemeral consumer now rather than leaving it to the server's inactivity
/// timeout (30 s); a failure only means the server removes it later.
async fn delete_consumer(js: &jetstream::Context, name: &str) {
    if let Err(error) = js.delete_consumer_from_stream(name, EVENT_STREAM).await {
        tracing::debug!(consumer = name, %error, "live feed consumer not deleted; it times out");
    }
}
