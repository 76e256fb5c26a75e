//! Provisioning of the `HOSPITAL_EVENTS` stream: the one place that defines it, idempotent, so
//! every service may call it at start.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use shared_events::subjects::{ALL_EVENTS, EVENT_STREAM};

/// How long JetStream remembers a `Nats-Msg-Id`: a re-publish within it (after a crash between
/// commit and acknowledgement) is dropped.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The stream's configuration. `replicas` is 1 on a single server, 3 on a cluster.
pub fn config(replicas: usize) -> stream::Config {
    stream::Config {
        name: EVENT_STREAM.to_owned(),
        description: Some("Every change to patients, staff, appointments and records".to_owned()),
        subjects: vec![ALL_EVENTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        allow_direct: true,
        // Lets publishers group messages into atomic batches (crate::batch_publish): a few
        // fsyncs per batch instead of one per message.
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// Creates the stream if it does not exist; leaves an existing one as it is.
pub async fn ensure(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, async_nats::Error> {
    Ok(js.get_or_create_stream(config(replicas)).await?)
}

/// Whether the stream takes atomic batches. A stream created before the option (or by a server
/// older than 2.12) does not, and [`ensure`] leaves it as it is: publishers then publish one
/// message at a time.
pub fn atomic_enabled(info: &stream::Info) -> bool {
    info.config.allow_atomic_publish
}

/// `HOSPITAL_STREAM_REPLICAS` (default 1).
pub fn replicas_from_env() -> Result<usize, crate::config::ConfigError> {
    crate::config::parsed_or("HOSPITAL_STREAM_REPLICAS", 1usize)
}

/// A JetStream context with the event stream in place. Retries until the stream can be
/// provisioned: a service started before NATS (or during a JetStream leader election) waits
/// here instead of failing.
pub async fn provision(client: &async_nats::Client, replicas: usize) -> jetstream::Context {
    let js = jetstream::new(client.clone());
    let mut backoff = Duration::from_millis(100);
    loop {
        match ensure(&js, replicas).await {
            Ok(stream) => {
                if !atomic_enabled(stream.cached_info()) {
                    tracing::info!(
                        "{EVENT_STREAM} does not allow atomic batches; events are published one by one"
                    );
                }
                return js;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot provision {EVENT_STREAM} yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
