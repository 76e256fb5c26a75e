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

/// The variable that says how many servers keep a copy of each stream the system makes
/// (`HOSPITAL_EVENTS`, and the gateway's `HOSPITAL_AUDIT` and revoked-tokens bucket).
pub const REPLICAS_VAR: &str = "HOSPITAL_STREAM_REPLICAS";
/// JetStream keeps at most five copies of a stream.
pub const MAX_REPLICAS: usize = 5;

/// `HOSPITAL_STREAM_REPLICAS` (default 1): 1 on a single server, 3 on a cluster of three.
pub fn replicas_from_env() -> Result<usize, crate::config::ConfigError> {
    check_replicas(crate::config::parsed_or(REPLICAS_VAR, 1usize)?)
}

/// Refused at start rather than by JetStream at the first stream creation, which a component
/// would only retry.
fn check_replicas(replicas: usize) -> Result<usize, crate::config::ConfigError> {
    if (1..=MAX_REPLICAS).contains(&replicas) {
        Ok(replicas)
    } else {
        Err(crate::config::ConfigError::Invalid {
            var: REPLICAS_VAR,
            reason: format!(
                "{replicas} is not between 1 and {MAX_REPLICAS} (1 on a single server, 3 on a cluster of three)"
            ),
        })
    }
}

/// Warns when an existing stream is kept by another number of servers than `configured`:
/// streams are made once and then used as they are (one made before the cluster was, say);
/// changing the count is an operator's step (`nats stream edit <stream> --replicas N`, see
/// docs/scale-out.md).
pub fn warn_if_other_replicas(info: &stream::Info, configured: usize) {
    let kept = info.config.num_replicas.max(1);
    if kept != configured {
        tracing::warn!(
            stream = info.config.name,
            replicas = kept,
            configured,
            "the stream exists with another replica count than {REPLICAS_VAR}; it is used as it is"
        );
    }
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
                warn_if_other_replicas(stream.cached_info(), replicas);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_count_is_one_to_five() {
        assert_eq!(check_replicas(1).unwrap(), 1);
        assert_eq!(check_replicas(3).unwrap(), 3);
        for bad in [0, MAX_REPLICAS + 1] {
            let error = check_replicas(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("HOSPITAL_STREAM_REPLICAS is invalid"),
                "{error}"
            );
        }
        assert_eq!(config(3).num_replicas, 3);
    }
}
