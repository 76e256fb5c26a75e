//! The record service (being built). Public API fixed for the CLI and the tests:
//! [`Config`] and [`RecordService`], a [`kit::runtime::Component`].

use std::fmt;
use std::time::Duration;

use kit::config::{self, ConfigError, write_setting};
use kit::nats::NatsConfig;
use kit::runtime::{BoxError, Component};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `DATABASE_URL_RECORD`; default `sqlite://<data dir>/record.db`.
    pub database_url: String,
    pub stream_replicas: usize,
    pub outbox_interval: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            nats: NatsConfig::from_env()?,
            database_url: config::database_url("DATABASE_URL_RECORD", service::RECORD),
            stream_replicas: kit::event_stream::replicas_from_env()?,
            outbox_interval: config::millis_or(
                "HOSPITAL_OUTBOX_INTERVAL_MS",
                Duration::from_secs(2),
            )?,
        })
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nats)?;
        write_setting(
            f,
            "DATABASE_URL_RECORD",
            config::mask_url(&self.database_url),
        )?;
        write_setting(f, "HOSPITAL_STREAM_REPLICAS", self.stream_replicas)?;
        write_setting(
            f,
            "HOSPITAL_OUTBOX_INTERVAL_MS",
            self.outbox_interval.as_millis(),
        )
    }
}

pub struct RecordService {
    _config: Config,
}

impl Component for RecordService {
    type Config = Config;
    const NAME: &'static str = service::RECORD;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        Ok(RecordService { _config: config })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        shutdown.cancelled().await;
        Ok(())
    }
}
