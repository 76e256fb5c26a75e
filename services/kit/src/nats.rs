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

/// Connects to NATS. With `retry_on_initial_connect` a component started before NATS waits for
/// it instead of dying; reconnects are unlimited and a ping every 10 s notices a dead link.
pub async fn connect(
    config: &NatsConfig,
    client_name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
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
}
