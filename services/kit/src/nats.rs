//! The NATS connection every component uses.

use std::time::Duration;

use crate::config::{self, ConfigError};

/// How a component reaches NATS.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// One server or a comma-separated list (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
}

impl NatsConfig {
    pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

    /// `NATS_URL` (default `nats://127.0.0.1:4222`) and `NATS_REQUEST_TIMEOUT_MS` (default 5000).
    pub fn from_env() -> Result<Self, ConfigError> {
        let url = config::optional("NATS_URL").unwrap_or_else(|| Self::DEFAULT_URL.to_owned());
        if server_list(&url).is_empty() {
            return Err(ConfigError::Invalid {
                var: "NATS_URL",
                reason: "no server given".into(),
            });
        }
        let request_timeout = config::millis_or("NATS_REQUEST_TIMEOUT_MS", Duration::from_secs(5))?;
        Ok(NatsConfig {
            url,
            request_timeout,
        })
    }

    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Display for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        config::write_setting(f, "NATS_URL", config::mask_url(&self.url))?;
        config::write_setting(
            f,
            "NATS_REQUEST_TIMEOUT_MS",
            self.request_timeout.as_millis(),
        )
    }
}

fn server_list(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The longest pause between two reconnect attempts.
///
/// async-nats' default back-off doubles up to 4 s, so after an outage of a few seconds a
/// component could sit idle for up to 4 s after NATS is back; the front desk would see 503s
/// for that long. One attempt per second per client is no load on a server (on a cluster each
/// attempt tries the next server of `NATS_URL`).
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The pause before reconnect attempt `attempts` (counted from 1 since the last success): none
/// for the first, then 50 ms doubling up to [`MAX_RECONNECT_DELAY`].
pub fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    (Duration::from_millis(50) * 2u32.pow(doublings)).min(MAX_RECONNECT_DELAY)
}

/// Connects to NATS. With `retry_on_initial_connect` a component started before NATS waits for
/// it instead of dying; reconnects are unlimited, at most [`MAX_RECONNECT_DELAY`] apart, and a
/// ping every 10 s notices a dead link (a server that dies outright is noticed at once: its
/// socket closes).
pub async fn connect(
    config: &NatsConfig,
    client_name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(reconnect_delay)
        .ping_interval(Duration::from_secs(10))
        .request_timeout(Some(config.request_timeout))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                other => tracing::debug!(event = %other, "NATS event"),
            }
        })
        .connect(server_list(&config.url))
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_list_splits_on_commas() {
        assert_eq!(
            super::server_list("nats://a:1, nats://b:2,"),
            vec!["nats://a:1", "nats://b:2"]
        );
    }

    #[test]
    fn reconnect_attempts_back_off_to_at_most_a_second() {
        use super::{MAX_RECONNECT_DELAY, reconnect_delay};
        use std::time::Duration;
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(50));
        assert_eq!(reconnect_delay(3), Duration::from_millis(100));
        assert_eq!(reconnect_delay(6), Duration::from_millis(800));
        assert_eq!(reconnect_delay(7), MAX_RECONNECT_DELAY);
        assert_eq!(reconnect_delay(usize::MAX), MAX_RECONNECT_DELAY);
    }
}
