//! Configuration and start-up of the record service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kit::command::{ServiceSpec, serve_commands};
use kit::config::{self, ConfigError, write_setting};
use kit::directory::Directory;
use kit::nats::NatsConfig;
use kit::read_model::ReadModel;
use kit::runtime::{BoxError, Component};
use kit::{EventPublisher, OutboxRelay};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, RecordCommands};
use crate::read_model::{self, KnownAppointments, RecordReadModel};
use crate::store::{MIGRATOR, RecordStore};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `DATABASE_URL_RECORD`; default `sqlite://<data dir>/record.db`.
    pub database_url: String,
    /// `HOSPITAL_STREAM_REPLICAS`: 1 on a single server, 3 on a cluster.
    pub stream_replicas: usize,
    /// `HOSPITAL_OUTBOX_INTERVAL_MS`: how often the outbox is checked for events left behind.
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

/// A started record service: connected, migrated, stream provisioned, read-model ready to run.
pub struct RecordService {
    client: async_nats::Client,
    store: RecordStore,
    publisher: EventPublisher,
    /// Feeds the directory and the known appointments; runs until shutdown.
    read_model: ReadModel<RecordReadModel>,
    directory: Directory,
    appointments: KnownAppointments,
    outbox_interval: Duration,
}

impl RecordService {
    pub fn store(&self) -> &RecordStore {
        &self.store
    }
}

impl Component for RecordService {
    type Config = Config;
    const NAME: &'static str = service::RECORD;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let pool = kit::sqlite::open(&config.database_url, &MIGRATOR).await?;
        let client = kit::nats::connect(&config.nats, "record-service").await?;
        let js = kit::event_stream::provision(&client, config.stream_replicas).await;
        let publisher = EventPublisher::new(js.clone(), pool.clone());
        let read_model = ReadModel::new(
            js,
            pool.clone(),
            Arc::new(RecordReadModel),
            publisher.clone(),
            read_model::subscription(),
        )
        .await?;
        Ok(RecordService {
            client,
            store: RecordStore::new(pool.clone()),
            publisher,
            directory: Directory::new(pool.clone(), read_model.catch_up()),
            appointments: KnownAppointments::new(pool, read_model.catch_up()),
            read_model,
            outbox_interval: config.outbox_interval,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let relay = OutboxRelay::new(self.publisher.clone(), self.outbox_interval);
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        let read_model = tokio::spawn(self.read_model.run(shutdown.clone()));
        let commands = Arc::new(RecordCommands {
            store: self.store.clone(),
            publisher: self.publisher,
            directory: self.directory,
            appointments: self.appointments,
        });
        let spec = ServiceSpec {
            name: service::RECORD,
            description: "Medical records: notes, diagnoses, vitals; amendments with full history",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        let served = serve_commands(self.client.clone(), spec, commands, shutdown).await;
        let _ = relay.await;
        let _ = read_model.await;
        let _ = self.client.flush().await;
        self.store.pool().close().await;
        served
    }
}
